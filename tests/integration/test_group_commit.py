#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The group commit against a real dpsd on loopback: many concurrent
symmetric-key registrations are all acknowledged, every acknowledged record
is in the store, and /metrics shows that they took fewer transactions than
registrations (one fsync for many). Also checks the /metrics page itself."""
import base64
import concurrent.futures
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Dpsd, Runner, scratch  # noqa: E402

GROUP_KEY = base64.b64encode(b"group-commit-test-key-32-bytes!!").decode()
N = 300
CONCURRENCY = 48

D = None


def register(rid):
    return D.register(rid, token=D.device_token(rid, group_key=GROUP_KEY))


def test_metrics_page():
    conn = D.conn(timeout=30)
    conn.request("GET", "/metrics")
    r = conn.getresponse()
    text = r.read().decode()
    conn.close()
    assert r.status == 200
    assert r.getheader("Content-Type").startswith("text/plain; version=0.0.4"), r.getheaders()
    for name in ("dpsd_store_commits_total", "dpsd_store_jobs_total",
                 "dpsd_store_checkpoints_total",
                 'dpsd_registrations_total{outcome="assigned"}'):
        assert re.search("^%s [0-9]+$" % re.escape(name), text, re.M), text
    assert "# TYPE dpsd_store_commits_total counter" in text, text


def test_concurrent_registrations_share_commits():
    r = D.service("PUT", "/enrollmentGroups/gc-group", {
        "enrollmentGroupId": "gc-group",
        "attestation": {"type": "symmetricKey",
                        "symmetricKey": {"primaryKey": GROUP_KEY, "secondaryKey": GROUP_KEY}}})
    assert r.status == 200, r
    before = D.metrics()
    ids = ["gc-dev-%03d" % i for i in range(N)]
    with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
        results = list(pool.map(register, ids))
    after = D.metrics()
    bad = [(rid, r) for rid, r in zip(ids, results) if r.status != 200]
    assert not bad, bad[:5]
    for rid, r in zip(ids, results):
        st = json.loads(r.raw)
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
        r = D.service("GET", "/registrations/" + rid)
        assert r.status == 200 and json.loads(r.raw)["assignedHub"] == "hub-a.example.net", r


def main():
    global D
    D = Dpsd(scratch("test_group_commit"))
    run = Runner()
    try:
        run.run_all([test_concurrent_registrations_share_commits, test_metrics_page])
    finally:
        rc = run.finish(D)
    return rc


if __name__ == "__main__":
    sys.exit(main())
