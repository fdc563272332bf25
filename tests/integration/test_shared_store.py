#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Two dpsd processes on one SQLite store, as two nodes of one service: an
enrollment group written, changed or deleted through one is used by the
other at its next registration, and a shared access policy revoked or
rotated through one is refused by the other at once, without a restart
(the store's generation rows make each node's caches reload)."""
import base64
import hashlib
import hmac
import http.client
import json
import os
import shutil
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
TMP = os.environ.get("DPS_TEST_TMP", tempfile.gettempdir())
os.makedirs(TMP, exist_ok=True)
BASE = tempfile.mkdtemp(prefix="test_shared_store.", dir=TMP)
STORE = "sqlite:" + os.path.join(BASE, "shared.db")
KEY1 = base64.b64encode(b"k" * 32).decode()
KEY2 = base64.b64encode(b"q" * 32).decode()

passed = failed = 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sas(sr, key, skn=None):
    se = str(int(time.time() + 3600))
    mac = hmac.new(base64.b64decode(key), ("%s\n%s" % (sr, se)).encode(), hashlib.sha256)
    sig = urllib.parse.quote(base64.b64encode(mac.digest()).decode(), safe="")
    tok = "SharedAccessSignature sr=%s&sig=%s&se=%s" % (urllib.parse.quote(sr, safe=""), sig, se)
    return tok + ("&skn=%s" % skn if skn else "")


def derive(group_key, rid):
    mac = hmac.new(base64.b64decode(group_key), rid.encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


class Dpsd:
    """One node: its own data directory and port, the shared store."""

    def __init__(self, name):
        self.dir = os.path.join(BASE, name)
        self.port = free_port()
        self.err = open(os.path.join(BASE, name + ".err"), "a+")
        self.proc = subprocess.Popen(
            [DPSD, "--data-dir", self.dir, "--store", STORE,
             "--https-listen", "127.0.0.1:%d" % self.port, "--mqtt-listen", "127.0.0.1:0",
             "--workers", "2", "--hostname", "localhost", "--linked-hub", "hub.example.net"],
            stdout=subprocess.DEVNULL, stderr=self.err)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("dpsd %s exited with %d" % (name, self.proc.returncode))
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            self.proc.kill()
            raise AssertionError("dpsd %s did not start listening" % name)
        with open(os.path.join(self.dir, "connection-string")) as f:
            parts = dict(p.split("=", 1) for p in f.read().strip().split(";"))
        self.host, self.policy, self.key = (parts["HostName"], parts["SharedAccessKeyName"],
                                            parts["SharedAccessKey"])
        with open(os.path.join(self.dir, "id-scope")) as f:
            self.scope = f.read().strip()
        self.ca = os.path.join(self.dir, "tls", "ca.pem")

    def call(self, method, path, body=None, headers=None):
        ctx = ssl.create_default_context(cafile=self.ca)
        conn = http.client.HTTPSConnection("localhost", self.port, context=ctx, timeout=30)
        try:
            hdrs = {"Content-Type": "application/json; charset=utf-8"}
            hdrs.update(headers or {})
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers=hdrs)
            r = conn.getresponse()
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
        finally:
            conn.close()

    def service(self, method, path, body=None, policy=None, key=None):
        tok = sas(self.host, key or self.key, policy or self.policy)
        sep = "&" if "?" in path else "?"
        return self.call(method, path + sep + "api-version=2021-10-01", body,
                         {"Authorization": tok})

    def register(self, rid, group_key):
        tok = sas("%s/registrations/%s" % (self.scope, rid), derive(group_key, rid),
                  "registration")
        return self.call("PUT", "/%s/registrations/%s/register?api-version=2019-03-31" %
                         (self.scope, rid), {"registrationId": rid}, {"Authorization": tok})

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


def group(key, status="enabled"):
    return {"enrollmentGroupId": "shared-g", "provisioningStatus": status,
            "attestation": {"type": "symmetricKey",
                            "symmetricKey": {"primaryKey": key, "secondaryKey": key}}}


def test_nodes_share_scope_and_owner_key():
    assert A.scope == B.scope, (A.scope, B.scope)
    assert A.key == B.key


def test_group_written_on_one_node_is_used_by_the_other():
    # B reads (and caches) the groups before the group exists
    st, _ = B.register("dev-s1", KEY1)
    assert st == 401, st
    st, body = A.service("PUT", "/enrollmentGroups/shared-g", group(KEY1))
    assert st == 200, (st, body)
    st, body = B.register("dev-s1", KEY1)
    assert st == 200 and body["status"] == "assigned", (st, body)

    # a new key through A: B refuses the old one at once and takes the new one
    st, body = A.service("PUT", "/enrollmentGroups/shared-g", group(KEY2))
    assert st == 200, (st, body)
    st, _ = B.register("dev-s2", KEY1)
    assert st == 401, st
    st, body = B.register("dev-s2", KEY2)
    assert st == 200 and body["status"] == "assigned", (st, body)

    # disabled through B, seen by A
    st, body = B.service("PUT", "/enrollmentGroups/shared-g", group(KEY2, "disabled"))
    assert st == 200, (st, body)
    st, body = A.register("dev-s3", KEY2)
    assert st == 200 and body["status"] == "disabled", (st, body)

    # deleted through A: B has nothing to match
    st, _ = A.service("DELETE", "/enrollmentGroups/shared-g")
    assert st == 204, st
    st, _ = B.register("dev-s4", KEY2)
    assert st == 401, st


def test_bulk_group_write_is_seen():
    body = {"mode": "create", "enrollmentGroups": [group(KEY1)]}
    st, res = A.service("POST", "/enrollmentGroups", body)
    assert st == 200 and res["isSuccessful"], (st, res)
    st, res = B.register("dev-s5", KEY1)
    assert st == 200 and res["status"] == "assigned", (st, res)


def test_policy_revoked_on_one_node_is_refused_by_the_other():
    st, pol = A.service("PUT", "/policies/reader", {"rights": "EnrollmentRead"})
    assert st == 200, (st, pol)
    key = pol["primaryKey"]
    # both workers of B answer (each its own cache): several requests
    for _ in range(4):
        st, _ = B.service("GET", "/enrollmentGroups/shared-g", policy="reader", key=key)
        assert st == 200, st

    # rotated through A: the old key is refused by B at once
    st, pol2 = A.service("PUT", "/policies/reader", {"rights": "EnrollmentRead",
                                                     "primaryKey": KEY2})
    assert st == 200 and pol2["primaryKey"] == KEY2, (st, pol2)
    for _ in range(4):
        st, _ = B.service("GET", "/enrollmentGroups/shared-g", policy="reader", key=key)
        assert st == 401, st
        st, _ = B.service("GET", "/enrollmentGroups/shared-g", policy="reader", key=KEY2)
        assert st == 200, st

    # a right taken through B is missing on A at once
    st, _ = B.service("PUT", "/policies/reader", {"rights": "RegistrationStatusRead"})
    assert st == 200, st
    st, _ = A.service("GET", "/enrollmentGroups/shared-g", policy="reader", key=KEY2)
    assert st == 401, st

    # revoked through A
    st, _ = A.service("DELETE", "/policies/reader")
    assert st == 204, st
    for _ in range(4):
        st, body = B.service("GET", "/registrations/dev-s5", policy="reader", key=KEY2)
        assert st == 401, (st, body)
        assert "unknown shared access policy" in body["message"], body


def test_policy_writes_keep_their_checks():
    # If-Match is checked inside the write
    st, pol = A.service("PUT", "/policies/ops", {"rights": "ServiceConfig"})
    assert st == 200, (st, pol)
    st, body = B.call("PUT", "/policies/ops?api-version=2021-10-01", {"rights": "ServiceConfig"},
                      {"Authorization": sas(B.host, B.key, B.policy), "If-Match": '"stale"'})
    assert st == 412, (st, body)
    st, body = B.call("DELETE", "/policies/ops?api-version=2021-10-01", None,
                      {"Authorization": sas(B.host, B.key, B.policy), "If-Match": pol["etag"]})
    assert st == 204, (st, body)
    # the last policy with ServiceConfig cannot be deleted
    st, body = A.service("DELETE", "/policies/" + A.policy)
    assert st == 409 and "last one with the ServiceConfig right" in body["message"], (st, body)
    st, body = A.service("DELETE", "/policies/nope")
    assert st == 404, (st, body)


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
    global A, B, failed
    A = Dpsd("a")
    try:
        B = Dpsd("b")
    except Exception:
        A.stop()
        raise
    try:
        for t in [test_nodes_share_scope_and_owner_key,
                  test_group_written_on_one_node_is_used_by_the_other,
                  test_bulk_group_write_is_seen,
                  test_policy_revoked_on_one_node_is_refused_by_the_other,
                  test_policy_writes_keep_their_checks]:
            test(t)
    finally:
        for name, d in (("a", A), ("b", B)):
            rc = d.stop()
            if rc != 0:
                print("FAIL dpsd %s exited with %s on SIGTERM" % (name, rc))
                failed += 1
    print("%d passed, %d failed" % (passed, failed))
    if not failed:
        shutil.rmtree(BASE, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
