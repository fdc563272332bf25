#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Two dpsd nodes on one PostgreSQL store: a throwaway server started by the
test (tests/pg.sh), two dpsd processes with their own data directories and
ports on `--store postgres:...`. What one node writes (enrollments, groups,
registrations made by a device) the other reads, etags included, and
If-Match holds across nodes. Fails, naming `make deps`, when the PostgreSQL
server binaries are missing."""
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
SRC = os.environ.get("DPS_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
TMP = os.environ.get("DPS_TEST_TMP", tempfile.gettempdir())
os.makedirs(TMP, exist_ok=True)
BASE = tempfile.mkdtemp(prefix="test_postgres.", dir=TMP)
# The server runs as the postgres user when the test runs as root: it must reach its directory.
os.chmod(BASE, 0o711)
PG_DIR = os.path.join(BASE, "pg")
GROUP_KEY = base64.b64encode(b"postgres-scale-out-group-key-0123").decode()
HUB = "hub-pg.example.net"

passed = failed = 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg(*args):
    return subprocess.run(["bash", os.path.join(SRC, "tests", "pg.sh")] + list(args),
                          capture_output=True, text=True, timeout=120)


class Dpsd:
    """One dpsd node with its own data directory and port on the shared store."""

    def __init__(self, name, store):
        self.name = name
        self.dir = os.path.join(BASE, name)
        self.port = free_port()
        self.err_path = os.path.join(BASE, name + ".err")
        self.err = open(self.err_path, "a+")
        self.proc = subprocess.Popen(
            [DPSD, "--data-dir", self.dir, "--store", store,
             "--https-listen", "127.0.0.1:%d" % self.port, "--mqtt-listen", "127.0.0.1:0",
             "--workers", "2", "--hostname", "localhost", "--linked-hub", HUB],
            stdout=subprocess.DEVNULL, stderr=self.err)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("dpsd %s exited with %d: %s" %
                                     (name, self.proc.returncode, self.log()))
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
        self.ctx = ssl.create_default_context(cafile=os.path.join(self.dir, "tls", "ca.pem"))

    def log(self):
        with open(self.err_path) as f:
            return f.read()[-2000:]

    def call(self, method, path, body=None, headers=None):
        conn = http.client.HTTPSConnection("localhost", self.port, context=self.ctx, timeout=60)
        try:
            hdrs = {"Content-Type": "application/json; charset=utf-8"}
            hdrs.update(headers or {})
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers=hdrs)
            r = conn.getresponse()
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
        finally:
            conn.close()

    def service(self, method, path, body=None, headers=None):
        se = str(int(time.time() + 3600))
        mac = hmac.new(base64.b64decode(self.key), ("%s\n%s" % (self.host, se)).encode(),
                       hashlib.sha256)
        sig = urllib.parse.quote(base64.b64encode(mac.digest()).decode(), safe="")
        h = {"Authorization": "SharedAccessSignature sr=%s&sig=%s&skn=%s&se=%s" %
             (self.host, sig, self.policy, se)}
        h.update(headers or {})
        return self.call(method, path + "?api-version=2021-10-01", body, h)

    def register(self, rid):
        key = hmac.new(base64.b64decode(GROUP_KEY), rid.encode(), hashlib.sha256).digest()
        sr = "%s/registrations/%s" % (self.scope, rid)
        se = str(int(time.time() + 3600))
        mac = hmac.new(key, ("%s\n%s" % (sr, se)).encode(), hashlib.sha256)
        sig = urllib.parse.quote(base64.b64encode(mac.digest()).decode(), safe="")
        token = "SharedAccessSignature sr=%s&sig=%s&se=%s&skn=registration" % (sr, sig, se)
        return self.call("PUT", "/%s/registrations/%s/register?api-version=2019-03-31" %
                         (self.scope, rid), {"registrationId": rid}, {"Authorization": token})

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


A = B = None


def test_nodes_share_identity():
    # The second node adopted the first one's ID scope and owner key from the store.
    assert A.scope == B.scope, (A.scope, B.scope)
    assert A.key == B.key
    status, body = B.service("GET", "/enrollmentGroups/none")
    assert status == 404, (status, body)


def test_group_written_on_one_read_on_the_other():
    status, put = A.service("PUT", "/enrollmentGroups/pg-group", {
        "enrollmentGroupId": "pg-group",
        "attestation": {"type": "symmetricKey",
                        "symmetricKey": {"primaryKey": GROUP_KEY, "secondaryKey": GROUP_KEY}}})
    assert status == 200, (status, put)
    status, got = B.service("GET", "/enrollmentGroups/PG-GROUP")
    assert status == 200, (status, got)
    assert got["enrollmentGroupId"] == "pg-group" and got["etag"] == put["etag"], (put, got)


def test_enrollment_if_match_across_nodes():
    body = {"registrationId": "pg-dev-solo",
            "attestation": {"type": "symmetricKey",
                            "symmetricKey": {"primaryKey": GROUP_KEY,
                                             "secondaryKey": GROUP_KEY}}}
    status, first = A.service("PUT", "/enrollments/pg-dev-solo", body)
    assert status == 200, (status, first)
    status, got = B.service("GET", "/enrollments/pg-dev-solo")
    assert status == 200 and got["etag"] == first["etag"], (status, got)
    # Updated through B with the etag A returned ...
    body["etag"] = first["etag"]
    body["provisioningStatus"] = "disabled"
    status, second = B.service("PUT", "/enrollments/pg-dev-solo", body,
                               {"If-Match": first["etag"]})
    assert status == 200 and second["etag"] != first["etag"], (status, second)
    # ... which A now sees, and A's stale etag is refused.
    status, got = A.service("GET", "/enrollments/pg-dev-solo")
    assert status == 200 and got["provisioningStatus"] == "disabled", (status, got)
    status, refused = A.service("PUT", "/enrollments/pg-dev-solo", body,
                                {"If-Match": first["etag"]})
    assert status == 412, (status, refused)
    status, _ = B.service("DELETE", "/enrollments/pg-dev-solo", None,
                          {"If-Match": second["etag"]})
    assert status == 204, status
    status, _ = A.service("GET", "/enrollments/pg-dev-solo")
    assert status == 404, status


def test_registration_through_one_visible_on_the_other():
    for node, other, rid in ((B, A, "pg-dev-b"), (A, B, "pg-dev-a")):
        status, st = node.register(rid)
        assert status == 200, (node.name, status, st)
        assert st["status"] == "assigned", st
        status, rec = other.service("GET", "/registrations/" + rid)
        assert status == 200, (other.name, status, rec)
        assert rec["registrationId"] == rid and rec["assignedHub"] == HUB, rec
        assert rec["etag"] == st["registrationState"]["etag"], (rec, st)


def main():
    global A, B, passed, failed
    started = pg("start", PG_DIR, str(os.getpid()))
    if started.returncode != 0:
        print("the PostgreSQL test server did not start (run 'make deps' to install the "
              "server binaries):\n" + started.stderr, file=sys.stderr)
        print("0 passed, 1 failed")
        return 1
    store = "postgres:" + started.stdout.strip()
    try:
        A = Dpsd("a", store)
        B = Dpsd("b", store)
        for name, fn in sorted((n, f) for n, f in globals().items() if n.startswith("test_")):
            try:
                fn()
                passed += 1
                print("ok", name)
            except Exception:
                failed += 1
                print("FAILED", name)
                traceback.print_exc()
        if failed:
            for d in (A, B):
                print("--- dpsd %s log:\n%s" % (d.name, d.log()), file=sys.stderr)
    except Exception:
        failed += 1
        traceback.print_exc()
    finally:
        for d in (A, B):
            if d:
                d.stop()
        pg("stop", PG_DIR)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
