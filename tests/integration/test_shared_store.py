#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Two dpsd processes on one SQLite store, as two nodes of one service: an
enrollment group written, changed or deleted through one is used by the
other at its next registration, and a shared access policy revoked or
rotated through one is refused by the other at once, without a restart
(the store's generation rows make each node's caches reload)."""
import base64
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Dpsd, Runner, check_started_together, derive, sas, scratch  # noqa: E402

BASE = scratch("test_shared_store")
STORE = "sqlite:" + os.path.join(BASE, "shared.db")
KEY1 = base64.b64encode(b"k" * 32).decode()
KEY2 = base64.b64encode(b"q" * 32).decode()

A = B = None


def node(name):
    """One node: its own data directory and port, the shared store."""
    return Dpsd(BASE, name, store=STORE, hubs=("hub.example.net",))


def register(d, rid, group_key):
    """A registration through node d with the key that group_key derives for rid."""
    tok = sas("%s/registrations/%s" % (d.scope, rid), derive(group_key, rid), skn="registration",
              quote=True)
    return d.register(rid, token=tok)


def group(key, status="enabled"):
    return {"enrollmentGroupId": "shared-g", "provisioningStatus": status,
            "attestation": {"type": "symmetricKey",
                            "symmetricKey": {"primaryKey": key, "secondaryKey": key}}}


def test_nodes_share_scope_and_owner_key():
    assert A.scope == B.scope, (A.scope, B.scope)
    assert A.key == B.key


def test_nodes_started_together_agree():
    # Nodes that come up at the same moment on a new store all take the ID scope and
    # owner key of the one that created them first; each accepts the others' SAS.
    for rep in range(5):
        store = "sqlite:" + os.path.join(BASE, "together-%d.db" % rep)
        check_started_together(BASE, ["t%d-%d" % (rep, i) for i in range(6)], store,
                               ("hub.example.net",))


def test_group_written_on_one_node_is_used_by_the_other():
    # B reads (and caches) the groups before the group exists
    st, _ = register(B, "dev-s1", KEY1)
    assert st == 401, st
    st, body = A.service("PUT", "/enrollmentGroups/shared-g", group(KEY1))
    assert st == 200, (st, body)
    st, body = register(B, "dev-s1", KEY1)
    assert st == 200 and body["status"] == "assigned", (st, body)

    # a new key through A: B refuses the old one at once and takes the new one
    st, body = A.service("PUT", "/enrollmentGroups/shared-g", group(KEY2))
    assert st == 200, (st, body)
    st, _ = register(B, "dev-s2", KEY1)
    assert st == 401, st
    st, body = register(B, "dev-s2", KEY2)
    assert st == 200 and body["status"] == "assigned", (st, body)

    # disabled through B, seen by A
    st, body = B.service("PUT", "/enrollmentGroups/shared-g", group(KEY2, "disabled"))
    assert st == 200, (st, body)
    st, body = register(A, "dev-s3", KEY2)
    assert st == 200 and body["status"] == "disabled", (st, body)

    # deleted through A: B has nothing to match
    st, _ = A.service("DELETE", "/enrollmentGroups/shared-g")
    assert st == 204, st
    st, _ = register(B, "dev-s4", KEY2)
    assert st == 401, st


def test_bulk_group_write_is_seen():
    body = {"mode": "create", "enrollmentGroups": [group(KEY1)]}
    st, res = A.service("POST", "/enrollmentGroups", body)
    assert st == 200 and res["isSuccessful"], (st, res)
    st, res = register(B, "dev-s5", KEY1)
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
                      headers={"Authorization": B.token(), "If-Match": '"stale"'})
    assert st == 412, (st, body)
    st, body = B.call("DELETE", "/policies/ops?api-version=2021-10-01", None,
                      headers={"Authorization": B.token(), "If-Match": pol["etag"]})
    assert st == 204, (st, body)
    # the last policy with ServiceConfig cannot be deleted
    st, body = A.service("DELETE", "/policies/" + A.policy)
    assert st == 409 and "last one with the ServiceConfig right" in body["message"], (st, body)
    st, body = A.service("DELETE", "/policies/nope")
    assert st == 404, (st, body)


def main():
    global A, B
    A = node("a")
    try:
        B = node("b")
    except Exception:
        A.stop()
        raise
    run = Runner()
    try:
        run.run_all([test_nodes_share_scope_and_owner_key,
                     test_nodes_started_together_agree,
                     test_group_written_on_one_node_is_used_by_the_other,
                     test_bulk_group_write_is_seen,
                     test_policy_revoked_on_one_node_is_refused_by_the_other,
                     test_policy_writes_keep_their_checks])
    finally:
        rc = run.finish(A, B, base=BASE)
    return rc


if __name__ == "__main__":
    sys.exit(main())
