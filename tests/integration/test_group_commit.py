#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The group commit against a real dpsd on loopback: many concurrent
symmetric-key registrations are all acknowledged, every acknowledged record
is in the store, and /metrics shows that they took fewer transactions than
registrations (one fsync for many). Also checks the /metrics page itself."""
import base64
import concurrent.futures
import hashlib
import hmac
import http.client
import json
import os
import re
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
BASE = tempfile.mkdtemp(prefix="test_group_commit.", dir=TMP)
GROUP_KEY = base64.b64encode(b"group-commit-test-key-32-bytes!!").decode()
N = 300
CONCURRENCY = 48

passed = failed = 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dpsd:
    def __init__(self):
        self.dir = os.path.join(BASE, "data")
        self.port = free_port()
        self.err = open(os.path.join(BASE, "dpsd.err"), "a+")
        self.proc = subprocess.Popen(
            [DPSD, "--data-dir", self.dir, "--https-listen", "127.0.0.1:%d" % self.port,
             "--mqtt-listen", "127.0.0.1:0",
             "--workers", "2", "--hostname", "localhost", "--linked-hub", "hub-a.example.net"],
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
        self.ctx = ssl.create_default_context(cafile=os.path.join(self.dir, "tls", "ca.pem"))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


def call(method, path, body=None, headers=None):
    conn = http.client.HTTPSConnection("localhost", D.port, context=D.ctx, timeout=60)
    try:
        hdrs = {"Content-Type": "application/json; charset=utf-8"}
        hdrs.update(headers or {})
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers=hdrs)
        r = conn.getresponse()
        raw = r.read()
        return r.status, raw
    finally:
        conn.close()


def service(method, path, body=None):
    se = str(int(time.time() + 3600))
    mac = hmac.new(base64.b64decode(D.key), ("%s\n%s" % (D.host, se)).encode(), hashlib.sha256)
    sig = urllib.parse.quote(base64.b64encode(mac.digest()).decode(), safe="")
    auth = "SharedAccessSignature sr=%s&sig=%s&skn=%s&se=%s" % (D.host, sig, D.policy, se)
    return call(method, path + "?api-version=2021-10-01", body, {"Authorization": auth})


def device_token(rid):
    key = hmac.new(base64.b64decode(GROUP_KEY), rid.encode(), hashlib.sha256).digest()
    sr = "%s/registrations/%s" % (D.scope, rid)
    se = str(int(time.time() + 3600))
    mac = hmac.new(key, ("%s\n%s" % (sr, se)).encode(), hashlib.sha256)
    sig = urllib.parse.quote(base64.b64encode(mac.digest()).decode(), safe="")
    return "SharedAccessSignature sr=%s&sig=%s&se=%s&skn=registration" % (sr, sig, se)


def register(rid):
    return call("PUT", "/%s/registrations/%s/register?api-version=2019-03-31" % (D.scope, rid),
                {"registrationId": rid}, {"Authorization": device_token(rid)})


def metrics():
    status, raw = call("GET", "/metrics")
    assert status == 200, (status, raw)
    values = {}
    for line in raw.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = int(value)
    return values


def test_metrics_page():
    conn = http.client.HTTPSConnection("localhost", D.port, context=D.ctx, timeout=30)
    conn.request("GET", "/metrics")
    r = conn.getresponse()
    text = r.read().decode()
    conn.close()
    assert r.status == 200
    assert r.getheader("Content-Type").startswith("text/plain; version=0.0.4"), r.getheaders()
    for name in ("dpsd_store_commits_total", "dpsd_store_jobs_total",
                 'dpsd_registrations_total{outcome="assigned"}'):
        assert re.search("^%s [0-9]+$" % re.escape(name), text, re.M), text
    assert "# TYPE dpsd_store_commits_total counter" in text, text


def test_concurrent_registrations_share_commits():
    status, raw = service("PUT", "/enrollmentGroups/gc-group", {
        "enrollmentGroupId": "gc-group",
        "attestation": {"type": "symmetricKey",
                        "symmetricKey": {"primaryKey": GROUP_KEY, "secondaryKey": GROUP_KEY}}})
    assert status == 200, (status, raw)
    before = metrics()
    ids = ["gc-dev-%03d" % i for i in range(N)]
    with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
        results = list(pool.map(register, ids))
    after = metrics()
    bad = [(rid, s, raw[:200]) for rid, (s, raw) in zip(ids, results) if s != 200]
    assert not bad, bad[:5]
    for rid, (s, raw) in zip(ids, results):
        st = json.loads(raw)
        assert st["status"] == "assigned" and st["registrationState"]["deviceId"] == rid, st
    jobs = after["dpsd_store_jobs_total"] - before["dpsd_store_jobs_total"]
    commits = after["dpsd_store_commits_total"] - before["dpsd_store_commits_total"]
    assigned = (after['dpsd_registrations_total{outcome="assigned"}'] -
                before['dpsd_registrations_total{outcome="assigned"}'])
    print("  %d registrations: %d group commit jobs in %d transactions (largest batch %d)" %
          (N, jobs, commits, after["dpsd_store_batch_max"]))
    assert jobs == N, (jobs, N)
    assert assigned == N, (assigned, N)
    assert 0 < commits < N, (commits, N)
    assert after["dpsd_store_batch_max"] > 1, after
    # every acknowledged registration is durable and readable by the service API
    for rid in ids[::15] + [ids[-1]]:
        status, raw = service("GET", "/registrations/" + rid)
        assert status == 200 and json.loads(raw)["assignedHub"] == "hub-a.example.net", (status, raw)


def main():
    global D, passed, failed
    D = Dpsd()
    try:
        for name, fn in sorted(globals().items()):
            if name.startswith("test_") and callable(fn):
                try:
                    fn()
                    print("ok %s" % name)
                    passed += 1
                except Exception:
                    print("FAILED %s" % name)
                    traceback.print_exc()
                    failed += 1
    finally:
        rc = D.stop()
        if rc != 0:
            print("FAILED dpsd exited with %d" % rc)
            failed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
