#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""POST /explain against a real dpsd on loopback: for every case of the
registration negative matrix (unknown CA, expired, not yet valid, forged
intermediate, CN other than the id, upper-case CN, disabled group, disabled
individual enrollment in an enabled group, wrong key, group key used as the
device key, expired SAS, a CA reference not verified) and for the successes,
explain's decision, status, error code and summary equal what the live
registration over HTTPS then gets and records; explain itself writes nothing.
Also its input checks, its right, and dpsctl explain."""
import base64
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Dpsd, Runner, derive, error_of, sas, scratch  # noqa: E402

D = None


def explain(body, token=None):
    r = D.service("POST", "/explain", body, token=token)
    assert r.status == 200, r
    return r.json


def agree(rid, body, live, decision, *words):
    """Explains body, checks nothing was written, then runs live() and compares."""
    before = len(D.attempts(rid))
    record = D.service("GET", "/registrations/" + rid).status
    e = explain(body)
    assert len(D.attempts(rid)) == before, "explain must not record an attempt"
    assert D.service("GET", "/registrations/" + rid).status == record, "explain wrote a record"
    assert e["decision"] == decision, (decision, e)
    text = (e.get("summary") or "") + "\n" + "\n".join(e["trace"]["steps"])
    for w in words:
        assert w in text, (w, text)
    r = live()
    assert r.status == e["httpStatus"], (r, e)
    a = D.attempts(rid)[0]
    if r.status == 401:
        assert e["errorCode"] == r.json["errorCode"] == 401002, (r.json, e)
        assert e["deviceMessage"] == r.json["message"], (r.json, e)
        assert a["status"] == "unauthorized", a
    else:
        assert r.json["status"] == decision == a["status"], (r.json, a)
        st = r.json["registrationState"]
        assert e.get("assignedHub") == st.get("assignedHub"), (e, st)
        assert e.get("deviceId") == st.get("deviceId"), (e, st)
    # The same words, but for the clock reading ("the time now is ...") a second apart.
    now = re.compile(r"now is \S+Z")
    assert now.sub("now is T", e["summary"]) == now.sub("now is T", a["trace"]["summary"]), (
        e["summary"], a["trace"]["summary"])
    assert e.get("enrollment") == a.get("enrollment"), (e, a)
    return e


def chain(name):
    return D.read(name + ".chain.pem")


def cert(name):
    return (D.path(name + ".chain.pem"), D.path(name + ".key"))


def test_x509_matrix():
    D.cert("create-root", "--subject", "CN=Explain Root", "--out", "root")
    D.cert("create-intermediate", "--ca", "root", "--subject", "CN=Explain Inter", "--out", "inter")
    D.x509_group("root-group", D.read("root.pem"))
    # Success first, then the refusals.
    D.device("dev-ok", "inter")
    agree("dev-ok", {"certificateChain": chain("dev-ok")},
          lambda: D.register("dev-ok", cert=cert("dev-ok")), "assigned", "root-group")
    # Unknown CA.
    D.cert("create-root", "--subject", "CN=Stranger Root", "--out", "stranger")
    D.device("dev-stranger", "stranger")
    agree("dev-stranger", {"certificateChain": chain("dev-stranger")},
          lambda: D.register("dev-stranger", cert=cert("dev-stranger")), "unauthorized")
    # Expired and not yet valid.
    D.device("dev-old", "inter", None, "--not-before", "2020-01-01", "--not-after", "2020-06-30")
    agree("dev-old", {"certificateChain": chain("dev-old")},
          lambda: D.register("dev-old", cert=cert("dev-old")), "unauthorized", "expired")
    D.device("dev-future", "inter", None, "--not-before", "2099-01-01")
    agree("dev-future", {"certificateChain": chain("dev-future")},
          lambda: D.register("dev-future", cert=cert("dev-future")), "unauthorized",
          "not yet valid")
    # A forged intermediate: the real one's name, another key.
    D.cert("create-root", "--subject", "CN=Explain Root", "--out", "fake-root")
    D.cert("create-intermediate", "--ca", "fake-root", "--subject", "CN=Explain Inter",
           "--out", "fake-inter")
    D.device("dev-forged", "fake-inter")
    agree("dev-forged", {"certificateChain": chain("dev-forged")},
          lambda: D.register("dev-forged", cert=cert("dev-forged")), "unauthorized", "root-group")
    # CN other than the id the device sends.
    D.device("dev-cn", "inter")
    agree("dev-other", {"certificateChain": chain("dev-cn"), "registrationId": "dev-other"},
          lambda: D.register("dev-other", cert=cert("dev-cn")), "unauthorized", "dev-cn")
    # Upper-case CN.
    D.openssl_device("dev-upper", "Dev-Upper", "inter")
    agree("Dev-Upper", {"certificateChain": chain("dev-upper")},
          lambda: D.register("Dev-Upper", cert=cert("dev-upper")), "unauthorized",
          "not a valid registration id")
    # A disabled group.
    D.cert("create-root", "--subject", "CN=Off Root", "--out", "off-root")
    D.x509_group("off-group", D.read("off-root.pem"), status="disabled")
    D.device("dev-off", "off-root")
    agree("dev-off", {"certificateChain": chain("dev-off")},
          lambda: D.register("dev-off", cert=cert("dev-off")), "disabled", "off-group")
    # A disabled individual enrollment inside an enabled group.
    D.device("dev-blocked", "inter")
    r = D.service("PUT", "/enrollments/dev-blocked", {
        "registrationId": "dev-blocked", "provisioningStatus": "disabled",
        "attestation": {"type": "x509", "x509": {"clientCertificates": {
            "primary": {"certificate": D.read("dev-blocked.pem")}}}}})
    assert r.status == 200, r
    agree("dev-blocked", {"certificateChain": chain("dev-blocked")},
          lambda: D.register("dev-blocked", cert=cert("dev-blocked")), "disabled",
          "individual enrollment 'dev-blocked'")


def test_ca_reference_matrix():
    D.cert("create-root", "--subject", "CN=Ref Root", "--out", "ref-root")
    r = D.service("PUT", "/certificates/ref-ca", {"certificate": D.read("ref-root.pem")})
    assert r.status == 200, r
    r = D.service("PUT", "/enrollmentGroups/ref-group", {
        "enrollmentGroupId": "ref-group",
        "attestation": {"type": "x509", "x509": {"caReferences": {"primary": "ref-ca"}}}})
    assert r.status == 200, r
    D.device("dev-ref", "ref-root")
    e = agree("dev-ref", {"certificateChain": chain("dev-ref")},
              lambda: D.register("dev-ref", cert=cert("dev-ref")), "unauthorized", "ref-ca",
              "not verified")
    assert "proof of possession" in e["summary"] or "verify" in e["summary"], e
    D.dpsctl("ca", "prove", "--name", "ref-ca", "--ca", "ref-root")
    agree("dev-ref", {"certificateChain": chain("dev-ref")},
          lambda: D.register("dev-ref", cert=cert("dev-ref")), "assigned", "ref-group")


def test_symmetric_key_matrix():
    key = base64.b64encode(os.urandom(32)).decode()
    r = D.service("PUT", "/enrollments/sym-ind", {
        "registrationId": "sym-ind",
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": key,
                                                                 "secondaryKey": key}}})
    assert r.status == 200, r
    sr = "%s/registrations/sym-ind" % D.scope
    agree("sym-ind", {"registrationId": "sym-ind", "symmetricKey": key},
          lambda: D.register("sym-ind", token=sas(sr, key, skn="registration")), "assigned")
    wrong = base64.b64encode(os.urandom(32)).decode()
    agree("sym-ind", {"registrationId": "sym-ind", "symmetricKey": wrong},
          lambda: D.register("sym-ind", token=sas(sr, wrong, skn="registration")), "unauthorized")
    old = sas(sr, key, se=time.time() - 3600, skn="registration")
    agree("sym-ind", {"registrationId": "sym-ind", "sasToken": old},
          lambda: D.register("sym-ind", token=old), "unauthorized", "expire")
    gkey = base64.b64encode(os.urandom(64)).decode()
    r = D.service("PUT", "/enrollmentGroups/sym-group", {
        "enrollmentGroupId": "sym-group",
        "attestation": {"type": "symmetricKey", "symmetricKey": {"primaryKey": gkey,
                                                                 "secondaryKey": gkey}}})
    assert r.status == 200, r
    sr = "%s/registrations/sym-dev" % D.scope
    dkey = derive(gkey, "sym-dev")
    agree("sym-dev", {"registrationId": "sym-dev", "symmetricKey": dkey},
          lambda: D.register("sym-dev", token=sas(sr, dkey, skn="registration")), "assigned",
          "sym-group")
    agree("sym-dev", {"registrationId": "sym-dev", "symmetricKey": gkey},
          lambda: D.register("sym-dev", token=sas(sr, gkey, skn="registration")), "unauthorized",
          "group key")


def test_bad_input_and_rights():
    error_of(D.service("POST", "/explain", "{nope"), 400)
    error_of(D.service("POST", "/explain", {}), 400, "exactly one")
    error_of(D.service("POST", "/explain", {"symmetricKey": "AAAA"}), 400, "registrationId")
    error_of(D.service("POST", "/explain", {"registrationId": "x", "symmetricKey": "AA",
                                            "sasToken": "y"}), 400, "exactly one")
    error_of(D.service("POST", "/explain", {"certificateChain": "no pem here"}), 400, "PEM")
    error_of(D.service("POST", "/explain", {"certificateChain": 5}), 400)
    error_of(D.service("POST", "/explain", {"registrationId": "x", "symmetricKey": "%%%"}), 400,
             "base64")
    many = chain("dev-ok") * 6
    error_of(D.service("POST", "/explain", {"certificateChain": many}), 400, "more than")
    e = explain({"registrationId": "bad!id", "symmetricKey": "AAAAAAAAAAAAAAAAAAAAAA=="})
    assert e["decision"] == "rejected" and e["httpStatus"] == 400, e
    r = D.service("PUT", "/policies/ops", {"rights": "RegistrationStatusRead"})
    assert r.status == 200, r
    tok = D.token(key=r.json["primaryKey"], policy="ops")
    error_of(D.service("POST", "/explain", {"certificateChain": chain("dev-ok")}, token=tok), 401,
             "EnrollmentRead")
    error_of(D.call("POST", "/explain", {"certificateChain": chain("dev-ok")}), 401)


def test_dpsctl_explain():
    p = D.dpsctl("explain", "--chain", "dev-ok.chain.pem")
    assert "assigned" in p.stdout and "root-group" in p.stdout, p.stdout
    p = D.dpsctl("explain", "--chain", "dev-stranger.chain.pem", check=False)
    assert p.returncode == 1 and "unauthorized" in p.stdout and "Trace:" in p.stdout, p
    p = D.dpsctl("explain", "--chain", "dev-old.chain.pem", "--json", check=False)
    e = json.loads(p.stdout)
    assert p.returncode == 1 and e["decision"] == "unauthorized", p
    key = base64.b64encode(os.urandom(32)).decode()
    p = D.dpsctl("explain", "--registration-id", "sym-ind", "--symmetric-key", key, check=False)
    assert p.returncode == 1 and "unauthorized" in p.stdout, p
    p = D.dpsctl("explain", "--symmetric-key", key, check=False)
    assert p.returncode == 2 and "--registration-id" in p.stderr, p
    p = D.dpsctl("explain", "--help")
    assert "--chain" in p.stdout or "device" in p.stdout, p.stdout
    p = D.dpsctl("explain", "device", "--help")
    assert "--chain" in p.stdout and "--symmetric-key" in p.stdout, p.stdout


def main():
    global D
    D = Dpsd(scratch("test_explain"))
    run = Runner()
    try:
        for t in [test_x509_matrix, test_ca_reference_matrix, test_symmetric_key_matrix,
                  test_bad_input_and_rights, test_dpsctl_explain]:
            run.run(t)
    finally:
        rc = run.finish(D)
    return rc


if __name__ == "__main__":
    sys.exit(main())
