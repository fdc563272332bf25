#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The service API against a real dpsd on loopback: every route, PUT/GET/DELETE
semantics with etags, secrets only where they belong, computed X.509 info,
validation messages, paging (enrollments and a group's registration states),
bulk, odd ids, SAS authentication and policy
rights, and durability across SIGKILL."""
import base64
import hashlib
import http.client
import json
import os
import signal
import socket
import sqlite3
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Dpsd, Reply, Runner, error_of, sas, scratch  # noqa: E402

BASE = scratch("test_service_api")
JSON_TYPE = "application/json; charset=utf-8"


def start(name, data_dir=None):
    """A dpsd with one linked hub, for the devices whose registration states are read."""
    return Dpsd(BASE, name, data_dir=data_dir, hubs=("hub-a.example.net",))


def token(d, key=None, policy=None, se=None, sr=None):
    """A service token as a client URL-encoding sr and the policy name sends it."""
    return sas(sr if sr is not None else d.host, key or d.key, se, policy or d.policy, quote=True)


def client(d, tok=None):
    return Client(d, tok or token(d))


class Client:
    """A keep-alive HTTPS connection that sends one token."""

    def __init__(self, d, token):
        self.d, self.token = d, token
        ctx = ssl.create_default_context(cafile=d.ca)
        self.conn = http.client.HTTPSConnection("localhost", d.port, context=ctx, timeout=30)

    def call(self, method, path, body=None, headers=None, token=True):
        h = {"Accept": "application/json"}
        if token:
            h["Authorization"] = self.token if token is True else token
        if body is not None:
            h["Content-Type"] = "application/json; charset=utf-8"
            if not isinstance(body, (bytes, str)):
                body = json.dumps(body)
        h.update(headers or {})
        if "?" not in path:
            path += "?api-version=2021-10-01"
        self.conn.request(method, path, body=body, headers=h)
        r = self.conn.getresponse()
        data = r.read().decode()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        assert hdrs.get("content-type") == JSON_TYPE, (method, path, hdrs)
        assert int(hdrs["content-length"]) == len(data.encode())
        if r.will_close:
            self.conn.close()
        return Reply(r.status, hdrs, data)


def raw_put(d, path, body):
    """PUT of a body announced by Content-Length over a raw socket; returns (status, body)."""
    ctx = ssl.create_default_context(cafile=d.ca)
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", d.port), timeout=30),
                           server_hostname="localhost")
    head = ("PUT %s?api-version=2021-10-01 HTTP/1.1\r\nHost: localhost\r\nAuthorization: %s\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (path, token(d), len(body)))
    data = b""
    # The limit is checked on the headers' Content-Length: send no body, so that the
    # connection is not reset under the answer while the body is still on its way.
    sock.sendall(head.encode())
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    sock.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), rest.decode()


def pki(name, *args):
    D.cert(*args, "--out", name)
    return D.read(name + ".pem")


def sym(rid, **kw):
    b = {"registrationId": rid, "attestation": {"type": "symmetricKey"}}
    b.update(kw)
    return b


D = None  # the shared server


def test_enrollment_crud_and_etags():
    c = client(D)
    r = c.call("PUT", "/enrollments/dev-1", sym("dev-1", initialTwin={"tags": {"site": "a"}}))
    assert r.status == 200, r
    e = r.json
    keys = e["attestation"]["symmetricKey"]
    assert len(base64.b64decode(keys["primaryKey"])) == 64 and keys["secondaryKey"]
    assert e["deviceId"] == "dev-1" and e["provisioningStatus"] == "enabled"
    assert e["etag"] and e["createdDateTimeUtc"] and e["lastUpdatedDateTimeUtc"]
    assert e["initialTwin"]["tags"]["site"] == "a"
    g = c.call("GET", "/enrollments/dev-1")
    assert g.status == 200 and g.json["etag"] == e["etag"], g
    assert g.json["attestation"]["symmetricKey"] == {}, g
    a = c.call("POST", "/enrollments/dev-1/attestationmechanism", body=b"")
    assert a.status == 200 and a.json["symmetricKey"]["primaryKey"] == keys["primaryKey"], a
    q = c.call("POST", "/enrollments/query", {"query": "SELECT * FROM enrollments"})
    assert all(x["attestation"]["symmetricKey"] == {} for x in q.json), q
    # a stale etag is refused and nothing changes
    e2 = dict(e, provisioningStatus="disabled")
    u = c.call("PUT", "/enrollments/dev-1", e2, {"If-Match": '"stale"'})
    error_of(u, 412, "dev-1", "If-Match")
    assert c.call("GET", "/enrollments/dev-1").json["provisioningStatus"] == "enabled"
    time.sleep(0.01)
    u = c.call("PUT", "/enrollments/dev-1", e2, {"If-Match": e["etag"]})
    assert u.status == 200 and u.json["etag"] != e["etag"], u
    assert u.json["createdDateTimeUtc"] == e["createdDateTimeUtc"]
    assert u.json["lastUpdatedDateTimeUtc"] != e["lastUpdatedDateTimeUtc"]
    assert u.json["provisioningStatus"] == "disabled"
    # keys given by the client are kept as given
    assert u.json["attestation"]["symmetricKey"]["primaryKey"] == keys["primaryKey"]
    s = c.call("PUT", "/enrollments/dev-1", e2, {"If-Match": "*"})
    assert s.status == 200, s
    error_of(c.call("PUT", "/enrollments/nope-1", sym("nope-1"), {"If-Match": "*"}), 412)
    assert c.call("GET", "/enrollments/nope-1").status == 404
    error_of(c.call("DELETE", "/enrollments/dev-1", headers={"If-Match": u.json["etag"]}), 412)
    d = c.call("DELETE", "/enrollments/dev-1", headers={"If-Match": s.json["etag"]})
    assert d.status == 204 and d.raw == "", d
    error_of(c.call("DELETE", "/enrollments/dev-1"), 404, "dev-1")
    r = c.call("GET", "/enrollments/dev-1")
    error_of(r, 404, "enrollment 'dev-1' not found")
    assert r.json["errorCode"] == 404201


def test_group_x509_info_and_encodings():
    c = client(D)
    root = pki("root", "create-root", "--subject", "CN=Svc Root")
    inter = pki("inter", "create-intermediate", "--ca", D.path("root"),
                "--subject", "CN=Svc Intermediate")
    body = {"enrollmentGroupId": "line-3",
            "attestation": {"type": "x509", "x509": {"signingCertificates": {
                "primary": {"certificate": inter},
                "secondary": {"certificate": base64.b64encode(root.encode()).decode()}}}}}
    r = c.call("PUT", "/enrollmentGroups/line-3", body)
    assert r.status == 200, r
    info = r.json["attestation"]["x509"]["signingCertificates"]["primary"]["info"]
    assert info["subjectName"] == "CN=Svc Intermediate" and info["issuerName"] == "CN=Svc Root"
    assert len(info["sha1Thumbprint"]) == 40 and len(info["sha256Thumbprint"]) == 64
    assert info["version"] == 3 and info["notBeforeUtc"].endswith("Z") and info["serialNumber"]
    info2 = r.json["attestation"]["x509"]["signingCertificates"]["secondary"]["info"]
    assert info2["subjectName"] == "CN=Svc Root"
    der = ssl.PEM_cert_to_DER_cert(root)
    assert info2["sha1Thumbprint"] == hashlib.sha1(der).hexdigest().upper()
    # base64 DER also works
    body3 = json.loads(json.dumps(body))
    body3["attestation"]["x509"]["signingCertificates"]["secondary"]["certificate"] = \
        base64.b64encode(der).decode()
    assert c.call("PUT", "/enrollmentGroups/line-3", body3).status == 200
    g = c.call("GET", "/enrollmentGroups/line-3")
    assert g.status == 200 and "info" in g.json["attestation"]["x509"]["signingCertificates"][
        "primary"]
    # the Node client uses lower-case 'enrollmentgroups' for the attestation call
    a = c.call("POST", "/enrollmentgroups/line-3/attestationmechanism", body=b"")
    assert a.status == 200 and a.json["type"] == "x509", a
    q = c.call("POST", "/enrollmentGroups/query", {"query": "*"})
    assert q.status == 200 and q.headers["x-ms-item-type"] == "EnrollmentGroup", q
    assert "x-ms-continuation" not in q.headers
    assert [x["enrollmentGroupId"] for x in q.json] == ["line-3"]
    # a device (non-CA) certificate cannot sign a group
    dev = pki("dev", "create-device", "--ca", D.path("inter"),
              "--registration-id", "dev-x")
    bad = {"enrollmentGroupId": "bad-1", "attestation": {"type": "x509", "x509": {
        "signingCertificates": {"primary": {"certificate": dev}}}}}
    error_of(c.call("PUT", "/enrollmentGroups/bad-1", bad), 400, "signingCertificates")
    assert c.call("GET", "/enrollmentGroups/bad-1").status == 404
    # an individual X.509 enrollment with the device certificate
    ind = {"registrationId": "dev-x", "attestation": {"type": "x509", "x509": {
        "clientCertificates": {"primary": {"certificate": dev}}}}}
    r = c.call("PUT", "/enrollments/dev-x", ind)
    assert r.status == 200, r
    assert r.json["attestation"]["x509"]["clientCertificates"]["primary"]["info"][
        "subjectName"] == "CN=dev-x"
    assert c.call("DELETE", "/enrollments/dev-x").status == 204
    assert c.call("DELETE", "/enrollmentGroups/line-3").status == 204
    assert c.call("GET", "/enrollmentGroups/line-3").status == 404


def test_validation_messages():
    c = client(D)
    error_of(c.call("PUT", "/enrollments/dev-a", sym("dev-b")), 400, "'dev-a'", "'dev-b'",
             "registrationId")
    error_of(c.call("PUT", "/enrollments/dev-a", {"registrationId": "dev-a",
                                                  "attestation": {"type": "magic"}}),
             400, "attestation.type")
    error_of(c.call("PUT", "/enrollments/dev-a", {"registrationId": "dev-a"}), 400,
             "attestation")
    error_of(c.call("PUT", "/enrollments/dev-a", sym("dev-a", provisioningStatus="maybe")), 400,
             "provisioningStatus")
    bad_key = sym("dev-a")
    bad_key["attestation"]["symmetricKey"] = {"primaryKey": "c2hvcnQ="}
    error_of(c.call("PUT", "/enrollments/dev-a", bad_key), 400, "primaryKey")
    error_of(c.call("PUT", "/enrollments/dev-a", '{"registrationId": "dev-a",'), 400)
    error_of(c.call("PUT", "/enrollments/dev-a", "[" * 100 + "]" * 100), 400)
    error_of(c.call("POST", "/enrollments/query", {"query": 5}), 400, "query")
    error_of(c.call("POST", "/enrollments/query", {"query": "*"},
                    {"x-ms-max-item-count": "ten"}), 400, "x-ms-max-item-count")
    assert c.call("GET", "/enrollments/dev-a").status == 404
    # 96 KB is the body limit
    big = sym("dev-a", initialTwin={"tags": {"x": "y" * (97 * 1024)}})
    status, body = raw_put(D, "/enrollments/dev-a", json.dumps(big).encode())
    assert status == 413 and json.loads(body)["errorCode"] // 1000 == 413, (status, body)
    assert c.call("GET", "/enrollments/dev-a").status == 404
    # unknown route and method
    assert c.call("GET", "/nothing/here").status == 404
    assert c.call("PATCH", "/enrollments/dev-a").status == 405


def test_odd_ids():
    c = client(D)
    r = c.call("PUT", "/enrollmentGroups/grp%3A1", {"enrollmentGroupId": "grp:1",
                                                     "attestation": {"type": "symmetricKey"}})
    assert r.status == 200 and r.json["enrollmentGroupId"] == "grp:1", r
    assert c.call("GET", "/enrollmentGroups/grp:1").json["enrollmentGroupId"] == "grp:1"
    assert c.call("GET", "/ENROLLMENTGROUPS/GRP%3a1?api-version=2018-04-01").status == 200
    r = c.call("PUT", "/enrollments/Dev-UP", sym("Dev-UP"))
    assert r.status == 200 and r.json["registrationId"] == "Dev-UP", r
    assert c.call("GET", "/enrollments/dev-up").json["registrationId"] == "Dev-UP"
    assert c.call("PUT", "/enrollments/DEV-UP", sym("dev-up")).status == 200
    error_of(c.call("PUT", "/enrollments/a%2Fb", sym("a/b")), 400, "'/'")
    assert c.call("GET", "/enrollments/a%2Fb").status in (400, 404)
    assert c.call("DELETE", "/enrollments/dev-up").status == 204
    assert c.call("DELETE", "/enrollmentGroups/grp%3A1").status == 204


def test_bulk():
    c = client(D)
    items = [sym("bulk-%d" % i) for i in range(3)]
    r = c.call("POST", "/enrollments/", {"mode": "create", "enrollments": items})
    assert r.status == 200 and r.json["isSuccessful"] is True, r
    r = c.call("POST", "/enrollments", {"mode": "create", "enrollments": items[:1] + [
        sym("bulk-new"), {"registrationId": "bulk-bad", "attestation": {"type": "magic"}}]})
    assert r.status == 200 and r.json["isSuccessful"] is False, r
    errs = {e["registrationId"]: e for e in r.json["errors"]}
    assert errs["bulk-0"]["errorCode"] // 1000 == 409 and "exists" in errs["bulk-0"]["errorStatus"]
    assert errs["bulk-bad"]["errorCode"] // 1000 == 400
    assert "bulk-new" not in errs
    assert c.call("GET", "/enrollments/bulk-new").status == 200
    etag = c.call("GET", "/enrollments/bulk-1").json["etag"]
    r = c.call("POST", "/enrollments", {"mode": "updateIfMatchEtag", "enrollments": [
        dict(sym("bulk-1"), etag=etag), dict(sym("bulk-2"), etag='"old"')]})
    errs = {e["registrationId"]: e for e in r.json["errors"]}
    assert list(errs) == ["bulk-2"] and errs["bulk-2"]["errorCode"] // 1000 == 412, r
    r = c.call("POST", "/enrollments", {"mode": "update", "enrollments": [sym("bulk-2")]})
    assert r.json["isSuccessful"] is True, r
    error_of(c.call("POST", "/enrollments", {"mode": "create", "enrollments": [
        sym("bulk-x%d" % i) for i in range(11)]}), 400)
    assert c.call("GET", "/enrollments/bulk-x0").status == 404
    error_of(c.call("POST", "/enrollments", {"mode": "sideways", "enrollments": []}), 400, "mode")
    r = c.call("POST", "/enrollments", {"mode": "delete", "enrollments": [
        {"registrationId": x} for x in ("bulk-0", "bulk-1", "bulk-2", "bulk-new", "bulk-gone")]})
    errs = {e["registrationId"]: e for e in r.json["errors"]}
    assert list(errs) == ["bulk-gone"] and errs["bulk-gone"]["errorCode"] // 1000 == 404, r
    r = c.call("POST", "/enrollmentGroups", {"mode": "create", "enrollmentGroups": [
        {"enrollmentGroupId": "bg-1", "attestation": {"type": "symmetricKey"}}]})
    assert r.json["isSuccessful"] is True, r
    r = c.call("POST", "/enrollmentGroups/", {"mode": "delete", "enrollmentGroups": [
        {"enrollmentGroupId": "bg-1"}]})
    assert r.json["isSuccessful"] is True, r


def test_paging():
    c = client(D)
    ids = ["page-%03d" % i for i in range(250)]
    for i in range(0, 250, 10):
        r = c.call("POST", "/enrollments", {"mode": "create", "enrollments": [
            sym(x) for x in ids[i:i + 10]]})
        assert r.json["isSuccessful"] is True, r
    for size in (None, 7, 100, 249, 250, 1000, 5000):
        seen, cont, pages = [], None, 0
        while True:
            h = {}
            if size:
                h["x-ms-max-item-count"] = str(size)
            if cont:
                h["x-ms-continuation"] = cont
            r = c.call("POST", "/enrollments/query", {"query": "SELECT * FROM enrollments"}, h)
            assert r.status == 200 and r.headers["x-ms-item-type"] == "Enrollment", r
            pages += 1
            assert len(r.json) <= min(size or 100, 1000)
            seen += [x["registrationId"] for x in r.json]
            cont = r.headers.get("x-ms-continuation")
            if not cont:
                break
            assert len(r.json) == min(size or 100, 1000), (size, len(r.json))
        page = min(size or 100, 1000)
        assert seen == ids, (size, len(seen))
        assert pages == (250 + page - 1) // page, (size, pages)
    for i in range(0, 250, 10):
        r = c.call("POST", "/enrollments", {"mode": "delete", "enrollments": [
            {"registrationId": x} for x in ids[i:i + 10]]})
        assert r.json["isSuccessful"] is True, r


def test_registrations():
    c = client(D)
    error_of(c.call("GET", "/registrations/dev-none"), 404, "dev-none")
    assert c.call("GET", "/registrations/dev-none").json["errorCode"] == 404202
    error_of(c.call("DELETE", "/registrations/dev-none"), 404)
    r = c.call("POST", "/registrations/grp-none/query", {"query": "*"})
    assert r.status == 200 and r.json == [] and r.headers["x-ms-item-type"] == \
        "DeviceRegistration", r
    assert "x-ms-continuation" not in r.headers
    # the swagger sends no body at all
    r = c.call("POST", "/registrations/grp-none/query", body=b"")
    assert r.status == 200 and r.json == [], r


def test_registration_query_paging():
    c = client(D)
    r = c.call("PUT", "/enrollmentGroups/reg-grp", {"enrollmentGroupId": "reg-grp",
                                                     "attestation": {"type": "symmetricKey"}})
    assert r.status == 200, r
    gk = r.json["attestation"]["symmetricKey"]["primaryKey"]
    rids = ["reg-dev-%d" % i for i in range(5)]
    for rid in rids:
        a = D.register(rid, token=D.device_token(rid, group_key=gk))
        assert a.status == 200 and a.json["status"] == "assigned", a
    for size in (2, 5, 100):
        seen, cont, pages = [], None, 0
        while True:
            h = {"x-ms-max-item-count": str(size)}
            if cont:
                h["x-ms-continuation"] = cont
            q = c.call("POST", "/registrations/reg-grp/query", {"query": "*"}, h)
            assert q.status == 200 and q.headers["x-ms-item-type"] == "DeviceRegistration", q
            assert all(x["enrollmentGroupId"] == "reg-grp" and x["status"] == "assigned"
                       for x in q.json), q
            pages += 1
            seen += [x["registrationId"] for x in q.json]
            cont = q.headers.get("x-ms-continuation")
            if not cont:
                break
            assert len(q.json) == size, (size, q)
        assert sorted(seen) == rids and len(seen) == 5, (size, seen)
        assert pages == (5 + size - 1) // size, (size, pages)
    # a stale etag is refused, the record's own etag deletes it
    rec = c.call("GET", "/registrations/reg-dev-0")
    error_of(c.call("DELETE", "/registrations/reg-dev-0", headers={"If-Match": '"stale"'}), 412)
    d = c.call("DELETE", "/registrations/reg-dev-0", headers={"If-Match": rec.json["etag"]})
    assert d.status == 204, d
    for rid in rids[1:]:
        assert c.call("DELETE", "/registrations/" + rid).status == 204
    q = c.call("POST", "/registrations/reg-grp/query", {"query": "*"})
    assert q.json == [] and "x-ms-continuation" not in q.headers, q
    assert c.call("DELETE", "/enrollmentGroups/reg-grp").status == 204


def test_auth_failures():
    c = client(D)
    now = time.time()
    cases = [
        (None, "no 'Authorization' header"),
        ("Bearer abc", "malformed"),
        (token(D, se=now - 3600), "expired"),
        (token(D, base64.b64encode(b"k" * 32).decode()), "not signed"),
        (token(D, policy="nobody"), "unknown shared access policy 'nobody'"),
        (token(D, sr="other.example.net"), "other.example.net"),
    ]
    for tok, words in cases:
        r = c.call("GET", "/enrollments/dev-1", token=tok if tok else False)
        error_of(r, 401, words)
        assert r.json["errorCode"] == 401002, r
    # a longer sr at a segment boundary is fine
    r = c.call("GET", "/enrollments/dev-1", token=token(D, sr=D.host + "/enrollments"))
    assert r.status == 404, r


def test_policies_and_rights():
    c = client(D)
    r = c.call("PUT", "/policies/reader", {"name": "reader", "rights": "EnrollmentRead"})
    assert r.status == 200 and r.json["rights"] == "EnrollmentRead" and r.json["primaryKey"], r
    reader = r.json
    lst = c.call("GET", "/policies")
    names = [p["name"] for p in lst.json]
    assert "reader" in names and "provisioningserviceowner" in names, lst
    assert all("primaryKey" not in p for p in lst.json)
    assert c.call("GET", "/policies/reader").json["primaryKey"] == reader["primaryKey"]
    assert c.call("PUT", "/enrollments/dev-r", sym("dev-r")).status == 200
    rc = client(D, token(D, reader["primaryKey"], "reader"))
    assert rc.call("GET", "/enrollments/dev-r").status == 200
    assert rc.call("POST", "/enrollments/query", {"query": "*"}).status == 200
    error_of(rc.call("PUT", "/enrollments/dev-r", sym("dev-r")), 401, "reader", "EnrollmentWrite")
    error_of(rc.call("DELETE", "/enrollments/dev-r"), 401, "EnrollmentWrite")
    error_of(rc.call("GET", "/registrations/dev-r"), 401, "RegistrationStatusRead")
    error_of(rc.call("GET", "/policies"), 401, "ServiceConfig")
    # the secondary key signs too
    sc = client(D, token(D, reader["secondaryKey"], "reader"))
    assert sc.call("GET", "/enrollments/dev-r").status == 200
    # widen, then check, then revoke
    r = c.call("PUT", "/policies/reader", {"rights": "EnrollmentRead, EnrollmentWrite"},
               {"If-Match": reader["etag"]})
    assert r.status == 200 and r.json["primaryKey"] == reader["primaryKey"], r
    error_of(c.call("PUT", "/policies/reader", {"rights": "EnrollmentRead"},
                    {"If-Match": reader["etag"]}), 412)
    assert rc.call("PUT", "/enrollments/dev-r", sym("dev-r")).status == 200
    error_of(c.call("PUT", "/policies/bad", {"rights": "EnrollmentRead,Teleport"}), 400,
             "Teleport")
    error_of(c.call("PUT", "/policies/bad", {"rights": ""}), 400, "rights")
    error_of(c.call("PUT", "/policies/bad", {"name": "other", "rights": "EnrollmentRead"}), 400,
             "name")
    error_of(c.call("PUT", "/policies/b%20d", {"rights": "EnrollmentRead"}), 400, "policy name")
    error_of(c.call("PUT", "/policies/bad", {"rights": "EnrollmentRead", "primaryKey": "x"}), 400,
             "primaryKey")
    # the last ServiceConfig policy cannot go
    error_of(c.call("DELETE", "/policies/provisioningserviceowner"), 409, "ServiceConfig")
    error_of(c.call("PUT", "/policies/provisioningserviceowner", {"rights": "EnrollmentRead"}),
             409, "ServiceConfig")
    assert c.call("DELETE", "/policies/reader").status == 204
    error_of(c.call("DELETE", "/policies/reader"), 404)
    error_of(rc.call("GET", "/enrollments/dev-r"), 401, "unknown shared access policy 'reader'")
    assert c.call("DELETE", "/enrollments/dev-r").status == 204


def test_audit_rows():
    c = client(D)
    r = c.call("PUT", "/enrollments/audit-1", sym("audit-1"))
    assert c.call("DELETE", "/enrollments/audit-1").status == 204
    error_of(c.call("PUT", "/enrollments/audit-2", sym("audit-3")), 400)
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(D.dir, "dpsd.db"), uri=True)
    try:
        rows = db.execute("SELECT actor, action, kind, object_id, tracking_id, outcome FROM audit "
                          "WHERE object_id LIKE 'audit-%' ORDER BY id").fetchall()
    finally:
        db.close()
    assert rows == [("provisioningserviceowner", "put", "enrollment", "audit-1",
                     r.headers["x-ms-request-id"], "ok"),
                    ("provisioningserviceowner", "delete", "enrollment", "audit-1",
                     rows[1][4], "ok")], rows


def test_keep_alive():
    c = client(D)
    c.call("GET", "/enrollments/ka-1")
    sock = c.conn.sock
    for _ in range(5):
        c.call("GET", "/enrollments/ka-1")
    assert c.conn.sock is sock


def test_durability():
    d = start("durable")
    try:
        c = client(d)
        r = c.call("PUT", "/enrollments/durable-1", sym("durable-1"))
        assert r.status == 200, r
        d.stop(signal.SIGKILL)
        d2 = start("durable2", data_dir=d.dir)
        try:
            g = client(d2).call("GET", "/enrollments/durable-1")
            assert g.status == 200 and g.json["etag"] == r.json["etag"], g
        finally:
            assert d2.stop() == 0
    finally:
        d.stop(signal.SIGKILL)


def test_commit_reruns():
    """With --check-commit-reruns on (this file's -reruns variant) every group commit
    transaction of the tests above ran twice, and they got the same answers; without
    it, none of them had to run again."""
    m = D.metrics()
    commits, failures, reruns = (m["dpsd_store_%s_total" % k]
                                 for k in ("commits", "commit_failures", "batch_reruns"))
    print("  %d commits, %d failed, %d run twice" % (commits, failures, reruns))
    assert commits > 0 and failures == 0, m
    if os.environ.get("DPSD_CHECK_COMMIT_RERUNS") == "on":
        assert reruns == commits, m
    else:
        assert reruns == 0, m


def main():
    global D
    D = start("main")
    run = Runner()
    try:
        run.run_all([test_enrollment_crud_and_etags, test_group_x509_info_and_encodings,
                     test_validation_messages, test_odd_ids, test_bulk, test_paging,
                     test_registrations, test_registration_query_paging, test_auth_failures,
                     test_policies_and_rights,
                     test_audit_rows, test_keep_alive, test_durability, test_commit_reruns])
    finally:
        rc = run.finish(D, base=BASE)
    return rc


if __name__ == "__main__":
    sys.exit(main())
