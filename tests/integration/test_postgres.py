#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Two dpsd nodes on one PostgreSQL store: a throwaway server started by the
test (tests/pg.sh), two dpsd processes with their own data directories and
ports on `--store postgres:...`. What one node writes (enrollments, groups,
registrations made by a device) the other reads, etags included, and
If-Match holds across nodes. Fails, naming `make deps`, when the PostgreSQL
server binaries are missing."""
import base64
import os
import subprocess
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Dpsd, Runner, check_started_together, pg, scratch  # noqa: E402

BASE = scratch("test_postgres")
# The server runs as the postgres user when the test runs as root: it must reach its directory.
os.chmod(BASE, 0o711)
PG_DIR = os.path.join(BASE, "pg")
GROUP_KEY = base64.b64encode(b"postgres-scale-out-group-key-0123").decode()
HUB = "hub-pg.example.net"


def register(d, rid):
    """A registration through node d with the key the group key derives for rid."""
    return d.register(rid, token=d.device_token(rid, group_key=GROUP_KEY))


A = B = None
CONNINFO = None  # the test server's, for its "postgres" database


def test_nodes_share_identity():
    # The second node adopted the first one's ID scope and owner key from the store.
    assert A.scope == B.scope, (A.scope, B.scope)
    assert A.key == B.key
    status, body = B.service("GET", "/enrollmentGroups/none")
    assert status == 404, (status, body)


def test_nodes_started_together_agree():
    # Nodes that come up at the same moment on a new database all take the ID scope and
    # owner key of the one that created them first, and the store holds that key.
    for rep in range(3):
        db = "together%d" % rep
        made = subprocess.run(["psql", CONNINFO, "-qc", "CREATE DATABASE " + db],
                              capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
        store = "postgres:" + CONNINFO.replace("dbname=postgres", "dbname=" + db)
        check_started_together(BASE, ["t%d-%d" % (rep, i) for i in range(4)], store, (HUB,))


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
        status, st = register(node, rid)
        assert status == 200, (node.name, status, st)
        assert st["status"] == "assigned", st
        status, rec = other.service("GET", "/registrations/" + rid)
        assert status == 200, (other.name, status, rec)
        assert rec["registrationId"] == rid and rec["assignedHub"] == HUB, rec
        assert rec["etag"] == st["registrationState"]["etag"], (rec, st)


def main():
    global A, B, CONNINFO
    started = pg("start", PG_DIR, str(os.getpid()))
    if started.returncode != 0:
        print("the PostgreSQL test server did not start (run 'make deps' to install the "
              "server binaries):\n" + started.stderr, file=sys.stderr)
        print("0 passed, 1 failed")
        return 1
    CONNINFO = started.stdout.strip()
    assert "dbname=postgres" in CONNINFO, CONNINFO
    store = "postgres:" + CONNINFO
    run = Runner()
    try:
        A = Dpsd(BASE, "a", store=store, hubs=(HUB,))
        B = Dpsd(BASE, "b", store=store, hubs=(HUB,))
        run.run_all([fn for name, fn in sorted(globals().items()) if name.startswith("test_")])
        if run.failed:
            for d in (A, B):
                print("--- dpsd %s log:\n%s" % (d.name, d.log()[-2000:]), file=sys.stderr)
    except Exception:
        run.fail("starting the nodes")
        traceback.print_exc()
    finally:
        try:
            rc = run.finish(A, B)
        finally:
            pg("stop", PG_DIR)
    return rc


if __name__ == "__main__":
    sys.exit(main())
