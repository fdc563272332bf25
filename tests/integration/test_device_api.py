#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The device API over HTTPS against a real dpsd on loopback: X.509 group and
individual registrations with TLS client certificates, symmetric-key
individual and derived-group registrations, the operation lookup, the
registration record and the attempt history with its reasons, a negative
matrix, and bad input (malformed JSON, oversized body, missing or mismatched
ids, odd characters, a chain of 50 certificates, a 2 MB certificate) that
must get a 4xx in the Azure shape, write nothing and leave dpsd healthy."""
import base64
import hashlib
import hmac
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

DPSD = os.environ["DPSD"]
DPSCTL = os.environ.get("DPSCTL", "dpsctl")
TMP = os.environ.get("DPS_TEST_TMP", tempfile.gettempdir())
os.makedirs(TMP, exist_ok=True)
BASE = tempfile.mkdtemp(prefix="test_device_api.", dir=TMP)
PKI = os.path.join(BASE, "pki")
os.makedirs(PKI)

passed = failed = 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sas(sr, key, se=None, skn=None, quote_sr=False):
    se = str(int(se if se is not None else time.time() + 3600))
    mac = hmac.new(base64.b64decode(key), ("%s\n%s" % (sr, se)).encode(), hashlib.sha256)
    sig = urllib.parse.quote(base64.b64encode(mac.digest()).decode(), safe="")
    tok = "SharedAccessSignature sr=%s&sig=%s&se=%s" % (sr, sig, se)
    return tok + ("&skn=%s" % skn if skn else "")


def derive(group_key, rid):
    mac = hmac.new(base64.b64decode(group_key), rid.encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


class Dpsd:
    def __init__(self):
        self.dir = os.path.join(BASE, "data")
        self.port = free_port()
        self.err = open(os.path.join(BASE, "dpsd.err"), "a+")
        self.proc = subprocess.Popen(
            [DPSD, "--data-dir", self.dir, "--https-listen", "127.0.0.1:%d" % self.port,
             "--mqtt-listen", "127.0.0.1:0",
             "--workers", "2", "--hostname", "localhost",
             "--linked-hub", "hub-a.example.net", "--linked-hub", "hub-b.example.net,weight=2"],
            stdout=subprocess.DEVNULL, stderr=self.err)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("dpsd exited with %d" % self.proc.returncode)
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            self.proc.kill()
            raise AssertionError("dpsd did not start listening")
        with open(os.path.join(self.dir, "connection-string")) as f:
            parts = dict(p.split("=", 1) for p in f.read().strip().split(";"))
        self.host, self.policy, self.key = (parts["HostName"], parts["SharedAccessKeyName"],
                                            parts["SharedAccessKey"])
        with open(os.path.join(self.dir, "id-scope")) as f:
            self.scope = f.read().strip()
        self.ca = os.path.join(self.dir, "tls", "ca.pem")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


class Reply:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.raw = status, headers, body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return "<%d %s>" % (self.status, self.raw[:400])


def call(method, path, body=None, cert=None, headers=None):
    ctx = ssl.create_default_context(cafile=D.ca)
    if cert:
        ctx.load_cert_chain(cert[0], cert[1])
    conn = http.client.HTTPSConnection("localhost", D.port, context=ctx, timeout=30)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        hdrs = {"Content-Type": "application/json; charset=utf-8"}
        hdrs.update(headers or {})
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


def service(method, path, body=None):
    tok = "SharedAccessSignature sr=%s&sig=%s&skn=%s&se=%s"
    se = str(int(time.time() + 3600))
    mac = hmac.new(base64.b64decode(D.key), ("%s\n%s" % (D.host, se)).encode(), hashlib.sha256)
    sig = urllib.parse.quote(base64.b64encode(mac.digest()).decode(), safe="")
    auth = tok % (D.host, sig, D.policy, se)
    sep = "&" if "?" in path else "?"
    return call(method, path + sep + "api-version=2021-10-01", body, headers={"Authorization": auth})


def register(rid, cert=None, token=None, body=None, scope=None):
    headers = {"Authorization": token} if token else {}
    if body is None:
        body = {"registrationId": rid}
    return call("PUT", "/%s/registrations/%s/register?api-version=2019-03-31" % (scope or D.scope, rid),
                body, cert=cert, headers=headers)


def attempts(rid):
    r = service("GET", "/registrations/%s/attempts" % rid)
    assert r.status == 200, r
    return r.json


def last_reason(rid):
    a = attempts(rid)[0]
    t = a["trace"]
    return a, t["summary"] + "\n" + "\n".join(t["steps"])


def pki(*args):
    subprocess.run([DPSCTL, "cert"] + list(args), cwd=PKI, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def dev(name, ca, rid=None):
    pki("create-device", "--ca", ca, "--registration-id", rid or name, "--out", name)
    return (os.path.join(PKI, name + ".chain.pem"), os.path.join(PKI, name + ".key"))


def read(name):
    with open(os.path.join(PKI, name)) as f:
        return f.read()


def x509_group(gid, pem, status="enabled"):
    r = service("PUT", "/enrollmentGroups/" + gid, {
        "enrollmentGroupId": gid, "provisioningStatus": status,
        "attestation": {"type": "x509", "x509": {"signingCertificates": {
            "primary": {"certificate": pem}}}}})
    assert r.status in (200, 201), r
    return r.json


def error_of(r, status, *words):
    assert r.status == status, r
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    assert r.json["errorCode"] // 1000 == status, r.json
    assert r.json.get("trackingId") and r.json.get("timestampUtc"), r.json
    for w in words:
        assert w in r.json["message"], (w, r.json)


def healthy():
    r = call("GET", "/healthz")
    assert r.status == 200, r


def no_record(rid):
    r = service("GET", "/registrations/" + rid)
    assert r.status == 404, r


def test_x509_group_root_device_under_intermediate():
    pki("create-root", "--subject", "CN=Device Test Root", "--out", "root")
    pki("create-intermediate", "--ca", "root", "--subject", "CN=Device Test Inter", "--out", "inter")
    x509_group("root-group", read("root.pem"))
    cert = dev("dev-x1", "inter")
    r = register("dev-x1", cert=cert)
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
    g = call("GET", "/%s/registrations/dev-x1/operations/%s?api-version=2019-03-31"
             % (D.scope, op["operationId"]), cert=cert)
    assert g.status == 200 and g.json["status"] == "assigned", g
    assert g.json["registrationState"]["assignedHub"] == st["assignedHub"], g
    g = call("GET", "/%s/registrations/dev-x1/operations/1.0.nope?api-version=2019-03-31" % D.scope)
    error_of(g, 404)
    # The record through the service API, and the history.
    rec = service("GET", "/registrations/dev-x1")
    assert rec.status == 200, rec
    assert rec.json["status"] == "assigned" and rec.json["assignedHub"] == st["assignedHub"], rec
    assert rec.json["enrollmentGroupId"] == "root-group", rec
    a = attempts("dev-x1")
    assert a[0]["status"] == "assigned" and a[0]["success"] is True, a
    assert a[0]["operationId"] == op["operationId"], a
    # Registering again keeps the hub (hashed, same hub set).
    r2 = register("dev-x1", cert=cert)
    assert r2.json["registrationState"]["assignedHub"] == st["assignedHub"], r2
    assert len(attempts("dev-x1")) == 2
    # The status lookup.
    s = call("POST", "/%s/registrations/dev-x1?api-version=2019-03-31" % D.scope,
             {"registrationId": "dev-x1"}, cert=cert)
    assert s.status == 200 and s.json["deviceId"] == "dev-x1", s


def test_x509_group_intermediate_and_disabled():
    pki("create-intermediate", "--ca", "root", "--subject", "CN=Device Test Inter 2", "--out", "inter2")
    x509_group("inter2-group", read("inter2.pem"))
    r = register("dev-i2", cert=dev("dev-i2", "inter2"))
    assert r.status == 200 and r.json["registrationState"]["x509"]["enrollmentGroupId"] == "inter2-group", r
    pki("create-intermediate", "--ca", "root", "--subject", "CN=Device Test Inter 3", "--out", "inter3")
    x509_group("inter3-group", read("inter3.pem"), status="disabled")
    r = register("dev-i3", cert=dev("dev-i3", "inter3"))
    assert r.status == 200 and r.json["status"] == "disabled", r
    a, why = last_reason("dev-i3")
    assert a["status"] == "disabled" and "inter3-group" in why, why


def test_x509_individual():
    pki("create-root", "--subject", "CN=Lonely Root", "--out", "lonely")
    cert = dev("dev-ind", "lonely")
    r = service("PUT", "/enrollments/dev-ind", {
        "registrationId": "dev-ind", "deviceId": "custom-device-id",
        "attestation": {"type": "x509", "x509": {"clientCertificates": {
            "primary": {"certificate": read("dev-ind.pem")}}}},
        "initialTwin": {"tags": {"line": "3"}}})
    assert r.status in (200, 201), r
    r = register("dev-ind", cert=cert, body={"registrationId": "dev-ind", "payload": {"fw": "1.2"}})
    assert r.status == 200 and r.json["status"] == "assigned", r
    assert r.json["registrationState"]["deviceId"] == "custom-device-id", r
    rec = service("GET", "/registrations/dev-ind").json
    assert rec["devicePayload"] == {"fw": "1.2"} and rec["initialTwin"]["tags"]["line"] == "3", rec


def test_x509_negatives():
    pki("create-root", "--subject", "CN=Stranger Root", "--out", "stranger")
    r = register("dev-unknown", cert=dev("dev-unknown", "stranger"))
    error_of(r, 401)
    assert r.json["errorCode"] == 401002, r.json
    a, why = last_reason("dev-unknown")
    assert a["status"] == "unauthorized" and a["trackingId"] == r.json["trackingId"], a
    assert "root-group" in why or "enrollment" in why, why
    no_record("dev-unknown")
    # CN different from the id in the path.
    cert = dev("dev-cn", "inter")
    r = register("dev-other", cert=cert)
    error_of(r, 401)
    _, why = last_reason("dev-other")
    assert "dev-cn" in why, why
    # No credential at all.
    r = register("dev-nocred")
    error_of(r, 401)


def openssl_device(name, cn, ca):
    """A device certificate made with the openssl CLI (dpsctl refuses an upper-case id)."""
    key, csr, pem = (os.path.join(PKI, name + ext) for ext in (".key", ".csr", ".pem"))
    ext = os.path.join(PKI, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=clientAuth\n")
    run = lambda *a: subprocess.run(["openssl"] + list(a), check=True, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
    run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
    run("req", "-new", "-key", key, "-subj", "/CN=" + cn, "-out", csr)
    run("x509", "-req", "-in", csr, "-CA", os.path.join(PKI, ca + ".pem"),
        "-CAkey", os.path.join(PKI, ca + ".key"), "-days", "30", "-extfile", ext, "-out", pem)
    chain = os.path.join(PKI, name + ".chain.pem")
    with open(chain, "w") as f:
        f.write(read(name + ".pem") + read(ca + ".chain.pem"))
    return (chain, key)


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
    pki("create-device", "--ca", "inter", "--registration-id", "dev-old", "--not-before",
        "2020-01-01", "--not-after", "2020-06-30", "--out", "dev-old")
    r = register("dev-old", cert=(os.path.join(PKI, "dev-old.chain.pem"),
                                  os.path.join(PKI, "dev-old.key")))
    denied("dev-old", r, "expired", "2020-06-30")
    pki("create-device", "--ca", "inter", "--registration-id", "dev-future", "--not-before",
        "2099-01-01", "--out", "dev-future")
    r = register("dev-future", cert=(os.path.join(PKI, "dev-future.chain.pem"),
                                     os.path.join(PKI, "dev-future.key")))
    denied("dev-future", r, "not yet valid", "2099-01-01")
    # A forged intermediate: the real one's subject, another key, under a look-alike root.
    pki("create-root", "--subject", "CN=Device Test Root", "--out", "fake-root")
    pki("create-intermediate", "--ca", "fake-root", "--subject", "CN=Device Test Inter",
        "--out", "fake-inter")
    r = register("dev-forged", cert=dev("dev-forged", "fake-inter"))
    why = denied("dev-forged", r, "root-group")
    assert "forged" in why or "different key" in why or "signature" in why, why
    # Upper case in the CN: registration ids are lower case.
    r = register("Dev-Upper", cert=openssl_device("dev-upper", "Dev-Upper", "inter"))
    why = denied("Dev-Upper", r, "not a valid registration id")
    assert "Dev-Upper" in why or "upper" in why or "lower" in why, why


def test_x509_disabled_individual_in_enabled_group():
    cert = dev("dev-blocked", "inter")
    r = register("dev-blocked", cert=cert)
    assert r.status == 200 and r.json["status"] == "assigned", r  # the group accepts it
    r = service("PUT", "/enrollments/dev-blocked", {
        "registrationId": "dev-blocked", "provisioningStatus": "disabled",
        "attestation": {"type": "x509", "x509": {"clientCertificates": {
            "primary": {"certificate": read("dev-blocked.pem")}}}}})
    assert r.status in (200, 201), r
    r = register("dev-blocked", cert=cert)
    assert r.status == 200 and r.json["status"] == "disabled", r
    a, why = last_reason("dev-blocked")
    assert a["status"] == "disabled", a
    assert "individual enrollment 'dev-blocked'" in why and "disabled" in why, why
    # Another device of the same group is not affected.
    r = register("dev-free", cert=dev("dev-free", "inter"))
    assert r.status == 200 and r.json["status"] == "assigned", r


def test_symmetric_key():
    key = base64.b64encode(os.urandom(32)).decode()
    r = service("PUT", "/enrollments/sym-ind", {
        "registrationId": "sym-ind",
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": key, "secondaryKey": key}}})
    assert r.status in (200, 201), r
    sr = "%s/registrations/sym-ind" % D.scope
    r = register("sym-ind", token=sas(sr, key, skn="registration"))
    assert r.status == 200 and r.json["status"] == "assigned", r
    # Encoded resource, no skn (the C and Python clients).
    r = register("sym-ind", token=sas(urllib.parse.quote(sr, safe=""), key))
    assert r.status == 200, r
    # Wrong key and expired token.
    r = register("sym-ind", token=sas(sr, base64.b64encode(os.urandom(32)).decode()))
    error_of(r, 401)
    r = register("sym-ind", token=sas(sr, key, se=time.time() - 3600))
    error_of(r, 401)
    _, why = last_reason("sym-ind")
    assert "expire" in why, why
    # A group with derived keys.
    global SYM_GROUP_KEY
    gkey = SYM_GROUP_KEY = base64.b64encode(os.urandom(64)).decode()
    r = service("PUT", "/enrollmentGroups/sym-group", {
        "enrollmentGroupId": "sym-group",
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": gkey, "secondaryKey": gkey}}})
    assert r.status in (200, 201), r
    sr = "%s/registrations/sym-dev-1" % D.scope
    r = register("sym-dev-1", token=sas(sr, derive(gkey, "sym-dev-1")))
    assert r.status == 200, r
    st = r.json["registrationState"]
    assert st["symmetricKey"]["enrollmentGroupId"] == "sym-group" and st["deviceId"] == "sym-dev-1", st
    r = register("sym-dev-1", token=sas(sr, gkey))
    error_of(r, 401)
    _, why = last_reason("sym-dev-1")
    assert "group key" in why, why


def test_bad_input():
    cert = (os.path.join(PKI, "dev-x1.chain.pem"), os.path.join(PKI, "dev-x1.key"))
    base = "/%s/registrations/%%s/register?api-version=2019-03-31" % D.scope
    before = len(attempts("dev-x1"))
    error_of(call("PUT", base % "dev-x1", "{not json", cert=cert), 400)
    error_of(call("PUT", base % "dev-x1", "[1,2]", cert=cert), 400)
    error_of(call("PUT", base % "dev-x1", {}, cert=cert), 400, "registrationId")
    error_of(call("PUT", base % "dev-x1", {"registrationId": "dev-x2"}, cert=cert), 400, "differs")
    error_of(call("PUT", base % "dev-x1", {"registrationId": "dev-x1", "tpm": {"endorsementKey": "AA=="}},
                  cert=cert), 400, "tpm")
    try:
        r = call("PUT", base % "dev-x1",
                 '{"registrationId":"dev-x1","payload":"%s"}' % ("x" * 200000), cert=cert)
        assert r.status == 413, r
    except (OSError, http.client.HTTPException):
        pass  # the server may answer 413 and close before the upload ends
    error_of(call("PUT", base % "bad%21id", {"registrationId": "bad!id"}, cert=cert), 400)
    error_of(call("PUT", base % "bad.", {"registrationId": "bad."}, cert=cert), 400)
    error_of(register("dev-x1", cert=cert, scope="0ne00000000"), 404)
    assert len(attempts("dev-x1")) == before, "bad input must write no attempt"
    # A chain of 50 certificates and a 2 MB certificate.
    with open(os.path.join(PKI, "dev-x1.pem")) as f:
        leaf = f.read()
    with open(os.path.join(PKI, "inter.pem")) as f:
        inter = f.read()
    long_chain = os.path.join(PKI, "long.chain.pem")
    with open(long_chain, "w") as f:
        f.write(leaf + inter * 49)
    r = register("dev-x1", cert=(long_chain, cert[1]))
    error_of(r, 401)
    _, why = last_reason("dev-x1")
    assert "50" in why or "chain" in why, why
    big = os.path.join(PKI, "big.pem")
    body = base64.b64encode(os.urandom(2 * 1024 * 1024)).decode()
    with open(big, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\n")
        for i in range(0, len(body), 64):
            f.write(body[i:i + 64] + "\n")
        f.write("-----END CERTIFICATE-----\n")
    try:
        r = register("dev-big", cert=(big, cert[1]))
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
    cert = dev("dev-cli", "inter")
    p = dpsctl_register("--registration-id", "dev-cli", "--cert", cert[0], "--key", cert[1],
                        "--payload", '{"fw":"2"}')
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "hub-" in p.stdout and "dev-cli" in p.stdout, p.stdout
    rec = service("GET", "/registrations/dev-cli").json
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
    a = attempts("dev-old")[0]
    assert "unauthorized (401002)" in p.stdout and a["trackingId"] in p.stdout, p.stdout
    assert "expired" in p.stdout and a["timeUtc"] in p.stdout, p.stdout
    p = dpsctl_service("registration", "history", "--registration-id", "dev-x1", "--json")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert json.loads(p.stdout) == attempts("dev-x1"), p.stdout
    # Paging: one attempt per request still yields every attempt, newest first.
    p = dpsctl_service("registration", "history", "dev-x1", "--page-size", "1", "--json")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert [x["attemptId"] for x in json.loads(p.stdout)] == \
        [x["attemptId"] for x in attempts("dev-x1")], p.stdout
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
    r = call("GET", "/registrations/dev-x1/attempts?api-version=2021-10-01")
    error_of(r, 401)


def test(fn):
    global passed, failed
    try:
        fn()
        passed += 1
        print("ok", fn.__name__)
    except Exception:
        failed += 1
        print("FAIL", fn.__name__)
        traceback.print_exc()


def main():
    global D
    D = Dpsd()
    try:
        for t in [test_x509_group_root_device_under_intermediate,
                  test_x509_group_intermediate_and_disabled, test_x509_individual,
                  test_x509_negatives, test_x509_negatives_dates_forgery_case,
                  test_x509_disabled_individual_in_enabled_group, test_symmetric_key, test_bad_input, test_dpsctl_register,
                  test_dpsctl_registration_history, test_attempts_need_rights]:
            test(t)
    finally:
        rc = D.stop()
        if rc != 0:
            print("FAIL dpsd exited with %s on SIGTERM" % rc)
            global failed
            failed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
