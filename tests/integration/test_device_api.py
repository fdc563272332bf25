#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The device API over HTTPS against a real dpsd on loopback: X.509 group and
individual registrations with TLS client certificates, symmetric-key
individual and derived-group registrations, the operation lookup, the
registration record and the attempt history with its reasons, a negative
matrix, and bad input (malformed JSON, oversized body, missing or mismatched
ids, odd characters, a chain of 50 certificates, a 2 MB certificate) that
must get a 4xx in the Azure shape, write nothing and leave dpsd healthy; and
linked hub options (apply=false) and --region rules driving geoLatency."""
import base64
import http.client
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DPSCTL, Dpsd, Runner, derive, error_of, sas, scratch  # noqa: E402

D = None


def last_reason(rid):
    a = D.attempts(rid)[0]
    t = a["trace"]
    return a, t["summary"] + "\n" + "\n".join(t["steps"])


def healthy():
    r = D.call("GET", "/healthz")
    assert r.status == 200, r


def no_record(rid):
    r = D.service("GET", "/registrations/" + rid)
    assert r.status == 404, r


def test_x509_group_root_device_under_intermediate():
    D.cert("create-root", "--subject", "CN=Device Test Root", "--out", "root")
    D.cert("create-intermediate", "--ca", "root", "--subject", "CN=Device Test Inter", "--out", "inter")
    D.x509_group("root-group", D.read("root.pem"))
    cert = D.device("dev-x1", "inter")
    r = D.register("dev-x1", cert=cert)
    assert r.status == 200, r
    op = r.json
    assert op["status"] == "assigned", op
    st = op["registrationState"]
    assert st["assignedHub"] in ("hub-a.example.net", "hub-b.example.net"), st
    assert st["deviceId"] == "dev-x1" and st["substatus"] == "initialAssignment", st
    assert st["x509"]["enrollmentGroupId"] == "root-group", st
    assert st["etag"] and st["createdDateTimeUtc"].endswith("Z"), st
    for c in op["operationId"]:
        assert c.isalnum() or c in ".-", op["operationId"]
    # The operation answers its final state.
    g = D.call("GET", "/%s/registrations/dev-x1/operations/%s?api-version=2019-03-31"
               % (D.scope, op["operationId"]), cert=cert)
    assert g.status == 200 and g.json["status"] == "assigned", g
    assert g.json["registrationState"]["assignedHub"] == st["assignedHub"], g
    g = D.call("GET", "/%s/registrations/dev-x1/operations/1.0.nope?api-version=2019-03-31" % D.scope)
    error_of(g, 404)
    # The record through the service API, and the history.
    rec = D.service("GET", "/registrations/dev-x1")
    assert rec.status == 200, rec
    assert rec.json["status"] == "assigned" and rec.json["assignedHub"] == st["assignedHub"], rec
    assert rec.json["enrollmentGroupId"] == "root-group", rec
    a = D.attempts("dev-x1")
    assert a[0]["status"] == "assigned" and a[0]["success"] is True, a
    assert a[0]["operationId"] == op["operationId"], a
    # Registering again keeps the hub (hashed, same hub set).
    r2 = D.register("dev-x1", cert=cert)
    assert r2.json["registrationState"]["assignedHub"] == st["assignedHub"], r2
    assert len(D.attempts("dev-x1")) == 2
    # The status lookup.
    s = D.call("POST", "/%s/registrations/dev-x1?api-version=2019-03-31" % D.scope,
               {"registrationId": "dev-x1"}, cert=cert)
    assert s.status == 200 and s.json["deviceId"] == "dev-x1", s


def test_x509_group_intermediate_and_disabled():
    D.cert("create-intermediate", "--ca", "root", "--subject", "CN=Device Test Inter 2", "--out", "inter2")
    D.x509_group("inter2-group", D.read("inter2.pem"))
    r = D.register("dev-i2", cert=D.device("dev-i2", "inter2"))
    assert r.status == 200 and r.json["registrationState"]["x509"]["enrollmentGroupId"] == "inter2-group", r
    D.cert("create-intermediate", "--ca", "root", "--subject", "CN=Device Test Inter 3", "--out", "inter3")
    D.x509_group("inter3-group", D.read("inter3.pem"), status="disabled")
    r = D.register("dev-i3", cert=D.device("dev-i3", "inter3"))
    assert r.status == 200 and r.json["status"] == "disabled", r
    a, why = last_reason("dev-i3")
    assert a["status"] == "disabled" and "inter3-group" in why, why


def test_x509_individual():
    D.cert("create-root", "--subject", "CN=Lonely Root", "--out", "lonely")
    cert = D.device("dev-ind", "lonely")
    r = D.service("PUT", "/enrollments/dev-ind", {
        "registrationId": "dev-ind", "deviceId": "custom-device-id",
        "attestation": {"type": "x509", "x509": {"clientCertificates": {
            "primary": {"certificate": D.read("dev-ind.pem")}}}},
        "initialTwin": {"tags": {"line": "3"}}})
    assert r.status in (200, 201), r
    r = D.register("dev-ind", cert=cert, body={"registrationId": "dev-ind", "payload": {"fw": "1.2"}})
    assert r.status == 200 and r.json["status"] == "assigned", r
    assert r.json["registrationState"]["deviceId"] == "custom-device-id", r
    rec = D.service("GET", "/registrations/dev-ind").json
    assert rec["devicePayload"] == {"fw": "1.2"} and rec["initialTwin"]["tags"]["line"] == "3", rec


def test_x509_negatives():
    D.cert("create-root", "--subject", "CN=Stranger Root", "--out", "stranger")
    r = D.register("dev-unknown", cert=D.device("dev-unknown", "stranger"))
    error_of(r, 401)
    assert r.json["errorCode"] == 401002, r.json
    a, why = last_reason("dev-unknown")
    assert a["status"] == "unauthorized" and a["trackingId"] == r.json["trackingId"], a
    assert "root-group" in why or "enrollment" in why, why
    no_record("dev-unknown")
    # CN different from the id in the path.
    cert = D.device("dev-cn", "inter")
    r = D.register("dev-other", cert=cert)
    error_of(r, 401)
    _, why = last_reason("dev-other")
    assert "dev-cn" in why, why
    # No credential at all.
    r = D.register("dev-nocred")
    error_of(r, 401)


def denied(rid, r, *words):
    """r is the device's 401 and the attempt recorded for rid gives the reason in words."""
    error_of(r, 401)
    assert r.json["errorCode"] == 401002, r.json
    a, why = last_reason(rid)
    assert a["status"] == "unauthorized" and a["trackingId"] == r.json["trackingId"], a
    for w in words:
        assert w in why, (w, why)
    no_record(rid)
    return why


def test_x509_negatives_dates_forgery_case():
    # Expired and not yet valid, under the enrolled root's intermediate.
    D.cert("create-device", "--ca", "inter", "--registration-id", "dev-old", "--not-before",
        "2020-01-01", "--not-after", "2020-06-30", "--out", "dev-old")
    r = D.register("dev-old", cert=(D.path("dev-old.chain.pem"),
                                    D.path("dev-old.key")))
    denied("dev-old", r, "expired", "2020-06-30")
    D.cert("create-device", "--ca", "inter", "--registration-id", "dev-future", "--not-before",
        "2099-01-01", "--out", "dev-future")
    r = D.register("dev-future", cert=(D.path("dev-future.chain.pem"),
                                       D.path("dev-future.key")))
    denied("dev-future", r, "not yet valid", "2099-01-01")
    # A forged intermediate: the real one's subject, another key, under a look-alike root.
    D.cert("create-root", "--subject", "CN=Device Test Root", "--out", "fake-root")
    D.cert("create-intermediate", "--ca", "fake-root", "--subject", "CN=Device Test Inter",
        "--out", "fake-inter")
    r = D.register("dev-forged", cert=D.device("dev-forged", "fake-inter"))
    why = denied("dev-forged", r, "root-group")
    assert "forged" in why or "different key" in why or "signature" in why, why
    # Upper case in the CN: registration ids are lower case.
    r = D.register("Dev-Upper", cert=D.openssl_device("dev-upper", "Dev-Upper", "inter"))
    why = denied("Dev-Upper", r, "not a valid registration id")
    assert "Dev-Upper" in why or "upper" in why or "lower" in why, why


def test_x509_disabled_individual_in_enabled_group():
    cert = D.device("dev-blocked", "inter")
    r = D.register("dev-blocked", cert=cert)
    assert r.status == 200 and r.json["status"] == "assigned", r  # the group accepts it
    r = D.service("PUT", "/enrollments/dev-blocked", {
        "registrationId": "dev-blocked", "provisioningStatus": "disabled",
        "attestation": {"type": "x509", "x509": {"clientCertificates": {
            "primary": {"certificate": D.read("dev-blocked.pem")}}}}})
    assert r.status in (200, 201), r
    r = D.register("dev-blocked", cert=cert)
    assert r.status == 200 and r.json["status"] == "disabled", r
    a, why = last_reason("dev-blocked")
    assert a["status"] == "disabled", a
    assert "individual enrollment 'dev-blocked'" in why and "disabled" in why, why
    # Another device of the same group is not affected.
    r = D.register("dev-free", cert=D.device("dev-free", "inter"))
    assert r.status == 200 and r.json["status"] == "assigned", r


def test_symmetric_key():
    key = base64.b64encode(os.urandom(32)).decode()
    r = D.service("PUT", "/enrollments/sym-ind", {
        "registrationId": "sym-ind",
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": key, "secondaryKey": key}}})
    assert r.status in (200, 201), r
    sr = "%s/registrations/sym-ind" % D.scope
    r = D.register("sym-ind", token=sas(sr, key, skn="registration"))
    assert r.status == 200 and r.json["status"] == "assigned", r
    # Encoded resource, no skn (the C and Python clients).
    r = D.register("sym-ind", token=sas(urllib.parse.quote(sr, safe=""), key))
    assert r.status == 200, r
    # Wrong key and expired token.
    r = D.register("sym-ind", token=sas(sr, base64.b64encode(os.urandom(32)).decode()))
    error_of(r, 401)
    r = D.register("sym-ind", token=sas(sr, key, se=time.time() - 3600))
    error_of(r, 401)
    _, why = last_reason("sym-ind")
    assert "expire" in why, why
    # A group with derived keys.
    global SYM_GROUP_KEY
    gkey = SYM_GROUP_KEY = base64.b64encode(os.urandom(64)).decode()
    r = D.service("PUT", "/enrollmentGroups/sym-group", {
        "enrollmentGroupId": "sym-group",
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": gkey, "secondaryKey": gkey}}})
    assert r.status in (200, 201), r
    sr = "%s/registrations/sym-dev-1" % D.scope
    r = D.register("sym-dev-1", token=sas(sr, derive(gkey, "sym-dev-1")))
    assert r.status == 200, r
    st = r.json["registrationState"]
    assert st["symmetricKey"]["enrollmentGroupId"] == "sym-group" and st["deviceId"] == "sym-dev-1", st
    r = D.register("sym-dev-1", token=sas(sr, gkey))
    error_of(r, 401)
    _, why = last_reason("sym-dev-1")
    assert "group key" in why, why


def test_bad_input():
    cert = (D.path("dev-x1.chain.pem"), D.path("dev-x1.key"))
    base = "/%s/registrations/%%s/register?api-version=2019-03-31" % D.scope
    before = len(D.attempts("dev-x1"))
    error_of(D.call("PUT", base % "dev-x1", "{not json", cert=cert), 400)
    error_of(D.call("PUT", base % "dev-x1", "[1,2]", cert=cert), 400)
    error_of(D.call("PUT", base % "dev-x1", {}, cert=cert), 400, "registrationId")
    error_of(D.call("PUT", base % "dev-x1", {"registrationId": "dev-x2"}, cert=cert), 400, "differs")
    error_of(D.call("PUT", base % "dev-x1", {"registrationId": "dev-x1", "tpm": {"endorsementKey": "AA=="}},
                    cert=cert), 400, "tpm")
    try:
        r = D.call("PUT", base % "dev-x1",
                   '{"registrationId":"dev-x1","payload":"%s"}' % ("x" * 200000), cert=cert)
        assert r.status == 413, r
    except (OSError, http.client.HTTPException):
        pass  # the server may answer 413 and close before the upload ends
    error_of(D.call("PUT", base % "bad%21id", {"registrationId": "bad!id"}, cert=cert), 400)
    error_of(D.call("PUT", base % "bad.", {"registrationId": "bad."}, cert=cert), 400)
    error_of(D.register("dev-x1", cert=cert, scope="0ne00000000"), 404)
    assert len(D.attempts("dev-x1")) == before, "bad input must write no attempt"
    # A chain of 50 certificates and a 2 MB certificate.
    with open(D.path("dev-x1.pem")) as f:
        leaf = f.read()
    with open(D.path("inter.pem")) as f:
        inter = f.read()
    long_chain = D.path("long.chain.pem")
    with open(long_chain, "w") as f:
        f.write(leaf + inter * 49)
    r = D.register("dev-x1", cert=(long_chain, cert[1]))
    error_of(r, 401)
    _, why = last_reason("dev-x1")
    assert "50" in why or "chain" in why, why
    big = D.path("big.pem")
    body = base64.b64encode(os.urandom(2 * 1024 * 1024)).decode()
    with open(big, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\n")
        for i in range(0, len(body), 64):
            f.write(body[i:i + 64] + "\n")
        f.write("-----END CERTIFICATE-----\n")
    try:
        r = D.register("dev-big", cert=(big, cert[1]))
        assert r.status >= 400, r
    except (ssl.SSLError, OSError):
        pass  # refused by the TLS layer: also fine
    no_record("dev-big")
    healthy()


def dpsctl_register(*args):
    return subprocess.run(
        [DPSCTL, "register", "--id-scope", D.scope, "--global-endpoint", "localhost",
         "--connect-to", "127.0.0.1:%d" % D.port, "--ca-file", D.ca] + list(args),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_dpsctl_register():
    cert = D.device("dev-cli", "inter")
    p = dpsctl_register("--registration-id", "dev-cli", "--cert", cert[0], "--key", cert[1],
                        "--payload", '{"fw":"2"}')
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "hub-" in p.stdout and "dev-cli" in p.stdout, p.stdout
    rec = D.service("GET", "/registrations/dev-cli").json
    assert rec["devicePayload"] == {"fw": "2"}, rec
    p = dpsctl_register("--registration-id", "sym-cli", "--group-key", SYM_GROUP_KEY, "--json")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert json.loads(p.stdout)["registrationState"]["deviceId"] == "sym-cli", p.stdout
    p = dpsctl_register("--registration-id", "sym-cli", "--symmetric-key", SYM_GROUP_KEY)
    assert p.returncode == 4 and "tracking id" in p.stderr, (p.returncode, p.stderr)
    p = dpsctl_register("--registration-id", "sym-cli")
    assert p.returncode == 2, (p.returncode, p.stderr)


def dpsctl_service(*args):
    cs = "HostName=%s;SharedAccessKeyName=%s;SharedAccessKey=%s" % (D.host, D.policy, D.key)
    return subprocess.run(
        [DPSCTL] + list(args) + ["--connection-string", cs, "--connect-to", "127.0.0.1:%d" % D.port,
                                 "--ca-file", D.ca],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_dpsctl_registration_history():
    # dev-old: one refused attempt with its reason; dev-x1: assigned attempts and a refusal.
    p = dpsctl_service("registration", "history", "dev-old")
    assert p.returncode == 0, (p.stdout, p.stderr)
    a = D.attempts("dev-old")[0]
    assert "unauthorized (401002)" in p.stdout and a["trackingId"] in p.stdout, p.stdout
    assert "expired" in p.stdout and a["timeUtc"] in p.stdout, p.stdout
    p = dpsctl_service("registration", "history", "--registration-id", "dev-x1", "--json")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert json.loads(p.stdout) == D.attempts("dev-x1"), p.stdout
    # Paging: one attempt per request still yields every attempt, newest first.
    p = dpsctl_service("registration", "history", "dev-x1", "--page-size", "1", "--json")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert [x["attemptId"] for x in json.loads(p.stdout)] == \
        [x["attemptId"] for x in D.attempts("dev-x1")], p.stdout
    p = dpsctl_service("registration", "history", "dev-x1", "--max", "2")
    assert p.returncode == 0 and p.stdout.count("Tracking id") == 2, p.stdout
    assert "assigned" in p.stdout and "root-group" in p.stdout and "hub-" in p.stdout, p.stdout
    # A device that never tried: no attempts, no error.
    p = dpsctl_service("registration", "history", "never-tried", "--json")
    assert p.returncode == 0 and json.loads(p.stdout) == [], (p.stdout, p.stderr)
    # Bad id and missing id.
    p = dpsctl_service("registration", "history", "bad!id")
    assert p.returncode != 0 and p.stderr, (p.returncode, p.stderr)
    p = dpsctl_service("registration", "history")
    assert p.returncode == 2, (p.returncode, p.stderr)
    p = subprocess.run([DPSCTL, "registration", "history", "--help"], stdout=subprocess.PIPE, text=True)
    assert p.returncode == 0 and "tracking id" in p.stdout, p.stdout


def test_attempts_need_rights():
    r = D.call("GET", "/registrations/dev-x1/attempts?api-version=2021-10-01")
    error_of(r, 401)


def all_attempts(failed, page_size=None):
    """Every attempt of every device through GET /attempts, following the continuation."""
    items, cont, pages = [], None, 0
    while True:
        h = {}
        if page_size:
            h["x-ms-max-item-count"] = str(page_size)
        if cont:
            h["x-ms-continuation"] = cont
        r = D.service("GET", "/attempts" + ("?failed=true" if failed else ""), headers=h)
        assert r.status == 200 and r.headers["x-ms-item-type"] == "RegistrationAttempt", r
        assert isinstance(r.json, list), r
        items += r.json
        pages += 1
        cont = r.headers.get("x-ms-continuation")
        if not cont:
            return items, pages
        assert r.json and pages < 1000, r


def test_attempts_of_every_device():
    # fleet-ok registers; fleet-nobody has no enrollment and is refused at attestation,
    # so it has an attempt but no registration record.
    key = base64.b64encode(os.urandom(32)).decode()
    r = D.service("PUT", "/enrollments/fleet-ok", {
        "registrationId": "fleet-ok",
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": key, "secondaryKey": key}}})
    assert r.status in (200, 201), r
    r = D.register("fleet-ok", token=D.device_token("fleet-ok", key))
    assert r.status == 200 and r.json["status"] == "assigned", r
    r = D.register("fleet-nobody", token=D.device_token("fleet-nobody", key))
    error_of(r, 401)
    no_record("fleet-nobody")
    refused = D.attempts("fleet-nobody")[0]
    ok = D.attempts("fleet-ok")[0]

    failed, _ = all_attempts(True)
    every, _ = all_attempts(False)
    # Newest first, the same items as the per-device route.
    assert failed[0] == refused, failed[0]
    assert every[0] == refused and every[1] == ok, every[:2]
    for lst in (failed, every):
        ids = [a["attemptId"] for a in lst]
        assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids), ids
    assert all(not a["success"] for a in failed), failed
    assert ok["attemptId"] not in [a["attemptId"] for a in failed], failed
    assert [a for a in every if not a["success"]] == failed
    assert len(every) > len(failed) > 2, (len(every), len(failed))
    assert {"dev-old", "sym-ind", "fleet-nobody"} <= {a["registrationId"] for a in failed}
    assert refused["trace"]["summary"] and refused["trackingId"], refused
    # failed=false is every attempt.
    r = D.service("GET", "/attempts?failed=false")
    assert r.status == 200 and r.json == every[:50], r
    # Paging: two per page yields the same list; no continuation on the last page.
    paged, pages = all_attempts(True, page_size=2)
    assert paged == failed and pages == (len(failed) + 1) // 2 + (len(failed) % 2 == 0), pages
    r = D.service("GET", "/attempts?failed=true", headers={"x-ms-max-item-count": "2"})
    assert len(r.json) == 2 and r.headers["x-ms-continuation"] == str(r.json[1]["attemptId"]), r
    assert r.headers["x-ms-max-item-count"] == "2", r.headers
    r = D.service("GET", "/attempts?failed=true",
                  headers={"x-ms-max-item-count": str(len(failed) + 1)})
    assert r.json == failed and "x-ms-continuation" not in r.headers, r.headers
    # Bad input.
    error_of(D.service("GET", "/attempts?failed=yes"), 400, "'failed'", "true or false")
    error_of(D.service("POST", "/attempts", {}), 405)


def test_attempts_of_every_device_need_rights():
    error_of(D.call("GET", "/attempts?failed=true&api-version=2021-10-01"), 401)
    error_of(D.call("GET", "/attempts?api-version=2021-10-01",
                    headers={"Authorization": D.token(key=base64.b64encode(os.urandom(32)).decode())}),
             401)
    for name, rights in (("att-reader", "RegistrationStatusRead"), ("enr-reader", "EnrollmentRead")):
        r = D.service("PUT", "/policies/" + name, {"name": name, "rights": rights})
        assert r.status == 200, r
    reader = D.service("GET", "/policies/att-reader").json["primaryKey"]
    other = D.service("GET", "/policies/enr-reader").json["primaryKey"]
    r = D.service("GET", "/attempts?failed=true", policy="att-reader", key=reader)
    assert r.status == 200 and r.json, r
    error_of(D.service("GET", "/attempts?failed=true", policy="enr-reader", key=other), 401,
             "RegistrationStatusRead")
    # dpsctl with the policy that lacks the right: exit 4 (refused).
    cs = "HostName=%s;SharedAccessKeyName=enr-reader;SharedAccessKey=%s" % (D.host, other)
    p = subprocess.run([DPSCTL, "registration", "failures", "--connection-string", cs,
                        "--connect-to", "127.0.0.1:%d" % D.port, "--ca-file", D.ca],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.returncode == 4 and "RegistrationStatusRead" in p.stderr, (p.returncode, p.stderr)


def test_dpsctl_registration_failures():
    failed, _ = all_attempts(True)
    p = dpsctl_service("registration", "failures", "--json")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert json.loads(p.stdout) == failed[:20], p.stdout
    p = dpsctl_service("registration", "failures", "--page-size", "1", "--max", "3", "--json")
    assert p.returncode == 0 and json.loads(p.stdout) == failed[:3], (p.stdout, p.stderr)
    p = dpsctl_service("registration", "failures", "--max", "1")
    assert p.returncode == 0, (p.stdout, p.stderr)
    a = failed[0]
    assert p.stdout.startswith(a["registrationId"] + "\n"), p.stdout
    assert a["trackingId"] in p.stdout and a["trace"]["summary"] in p.stdout, p.stdout
    assert p.stdout.count("Tracking id") == 1 and "unauthorized (401002)" in p.stdout, p.stdout
    p = dpsctl_service("registration", "failures", "some-id")
    assert p.returncode == 2, (p.returncode, p.stderr)
    p = subprocess.run([DPSCTL, "registration", "failures", "--help"], stdout=subprocess.PIPE,
                       text=True)
    assert p.returncode == 0 and "GET /attempts?failed=true" in p.stdout, p.stdout


def test_linked_hub_options_and_regions():
    # A second dpsd: hubs in two locations, one with applyAllocationPolicy false, and the
    # loopback network configured as westeurope.
    d2 = Dpsd(D.base, name="dpsd-geo",
              hubs=("hub-eu.example.net,location=westeurope",
                    "hub-us.example.net,location=eastus,weight=5",
                    "hub-off.example.net,apply=false,weight=1000"),
              extra=("--region", "127.0.0.0/8=westeurope", "--region", "10.0.0.0/8=eastus"))
    try:
        keys = {}
        for gid, policy in (("geo", "geoLatency"), ("hashed", "hashed")):
            keys[gid] = base64.b64encode(os.urandom(64)).decode()
            r = d2.service("PUT", "/enrollmentGroups/" + gid, {
                "enrollmentGroupId": gid, "allocationPolicy": policy,
                "attestation": {"type": "symmetricKey", "symmetricKey": {
                    "primaryKey": keys[gid], "secondaryKey": keys[gid]}}})
            assert r.status in (200, 201), r
        for i in range(8):
            rid = "geo-dev-%d" % i
            r = d2.register(rid, token=sas("%s/registrations/%s" % (d2.scope, rid),
                                           derive(keys["geo"], rid)))
            assert r.status == 200, r
            assert r.json["registrationState"]["assignedHub"] == "hub-eu.example.net", r
        steps = "\n".join(d2.attempts("geo-dev-0")[0]["trace"]["steps"])
        assert "client's region 'westeurope'" in steps, steps
        # Explain takes the region from clientAddress, as the live path does from the peer.
        for addr, hub in (("127.0.0.1", "hub-eu.example.net"), ("10.2.3.4", "hub-us.example.net")):
            r = d2.service("POST", "/explain", {"registrationId": "geo-dev-0",
                                                "symmetricKey": derive(keys["geo"], "geo-dev-0"),
                                                "clientAddress": addr})
            assert r.status == 200, r
            assert r.json["assignedHub"] == hub, r.json
        error_of(d2.service("POST", "/explain", {"registrationId": "geo-dev-0",
                                                 "symmetricKey": keys["geo"],
                                                 "clientAddress": "10.2.3"}), 400, "clientAddress")
        # hashed: hub-off (apply=false) is never chosen in spite of its weight.
        for i in range(8):
            rid = "hashed-dev-%d" % i
            r = d2.register(rid, token=sas("%s/registrations/%s" % (d2.scope, rid),
                                           derive(keys["hashed"], rid)))
            assert r.status == 200, r
            assert r.json["registrationState"]["assignedHub"] != "hub-off.example.net", r
        # Named in iotHubs, it is used.
        key = base64.b64encode(os.urandom(32)).decode()
        r = d2.service("PUT", "/enrollments/named-off", {
            "registrationId": "named-off", "iotHubs": ["hub-off.example.net"],
            "attestation": {"type": "symmetricKey", "symmetricKey": {
                "primaryKey": key, "secondaryKey": key}}})
        assert r.status in (200, 201), r
        r = d2.register("named-off", token=sas("%s/registrations/named-off" % d2.scope, key))
        assert r.status == 200, r
        assert r.json["registrationState"]["assignedHub"] == "hub-off.example.net", r
    finally:
        d2.stop()


def main():
    global D
    D = Dpsd(scratch("test_device_api"),
             hubs=("hub-a.example.net", "hub-b.example.net,weight=2"))
    run = Runner()
    try:
        run.run_all([test_x509_group_root_device_under_intermediate,
                     test_x509_group_intermediate_and_disabled, test_x509_individual,
                     test_x509_negatives, test_x509_negatives_dates_forgery_case,
                     test_x509_disabled_individual_in_enabled_group, test_symmetric_key,
                     test_bad_input, test_dpsctl_register, test_dpsctl_registration_history,
                     test_attempts_need_rights, test_attempts_of_every_device,
                     test_attempts_of_every_device_need_rights, test_dpsctl_registration_failures,
                     test_linked_hub_options_and_regions])
    finally:
        rc = run.finish(D)
    return rc


if __name__ == "__main__":
    sys.exit(main())
