#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""CA certificates against a real dpsd on loopback: upload, read, list, etags
and delete; the proof of possession (success, wrong code, wrong signer,
expired proof, reused code, tampered certificate, an expired code on a dpsd
with --verification-code-ttl 1); the ServiceConfig right; an enrollment group
with caReferences refusing devices until its CA is verified and accepting them
after (devices register over HTTPS with a TLS client certificate); and the
dpsctl ca flows end to end, prove included."""
import base64
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Dpsd, Runner, error_of, scratch  # noqa: E402

D = None


def code_of(name):
    r = D.service("POST", "/certificates/%s/generateVerificationCode" % name)
    assert r.status == 200, r
    p = r.json["properties"]
    assert len(p["verificationCode"]) == 64 and p["verificationCodeExpiry"].endswith("Z"), p
    assert r.json["name"] == name and r.json["etag"], r.json
    return p["verificationCode"], r.json["etag"]


def proof(out, ca, code, *extra):
    D.cert("create-verification", "--ca", ca, "--code", code, "--out", out, *extra)
    return D.read(out + ".pem")


def verify(name, pem, headers=None):
    return D.service("POST", "/certificates/%s/verify" % name, {"certificate": pem},
                     headers=headers)


def test_upload_read_list_delete():
    D.cert("create-root", "--subject", "CN=CA Test Root", "--out", "root")
    pem = D.read("root.pem")
    r = D.service("PUT", "/certificates/root-1", {"certificate": pem})
    assert r.status == 200, r
    c = r.json
    p = c["properties"]
    assert c["name"] == "root-1" and c["etag"] and c["id"] == "/certificates/root-1", c
    assert c["type"] == "Microsoft.Devices/ProvisioningServices/Certificates", c
    assert p["isVerified"] is False and p["subject"] == "CN=CA Test Root", p
    assert len(p["thumbprint"]) == 40 and len(p["sha256Thumbprint"]) == 64, p
    assert p["expiry"].endswith("GMT") and p["created"] and p["updated"], p
    assert "-----BEGIN CERTIFICATE-----" in p["certificate"], p
    assert "verificationCode" not in p, p
    # base64 of the PEM and base64 DER are accepted too.
    b64 = base64.b64encode(pem.encode()).decode()
    r = D.service("PUT", "/certificates/root-b64", {"certificate": b64})
    assert r.status == 200 and r.json["properties"]["thumbprint"] == p["thumbprint"], r
    # Replacing takes the etag.
    r = D.service("PUT", "/certificates/root-1", {"certificate": pem})
    error_of(r, 409, "If-Match")
    r = D.service("PUT", "/certificates/root-1", {"certificate": pem}, headers={"If-Match": '"x"'})
    error_of(r, 412)
    r = D.service("PUT", "/certificates/root-1", {"certificate": pem},
                  headers={"If-Match": c["etag"]})
    assert r.status == 200 and r.json["etag"] != c["etag"], r
    r = D.service("PUT", "/certificates/none", {"certificate": pem}, headers={"If-Match": "*"})
    error_of(r, 412, "does not exist")
    # Reads.
    r = D.service("GET", "/certificates/ROOT-1")
    assert r.status == 200 and r.json["name"] == "root-1", r
    r = D.service("GET", "/certificates")
    assert r.status == 200 and {"root-1", "root-b64"} <= {x["name"] for x in r.json["value"]}, r
    error_of(D.service("GET", "/certificates/nope"), 404, "nope")
    # Delete with etags.
    r = D.service("DELETE", "/certificates/root-b64", headers={"If-Match": '"stale"'})
    error_of(r, 412)
    assert D.service("DELETE", "/certificates/root-b64").status == 204
    error_of(D.service("GET", "/certificates/root-b64"), 404)
    error_of(D.service("DELETE", "/certificates/root-b64"), 404)


def test_bad_uploads():
    D.cert("create-intermediate", "--ca", "root", "--subject", "CN=CA Test Inter", "--out", "inter")
    D.device("leaf", "inter")
    error_of(D.service("PUT", "/certificates/leaf", {"certificate": D.read("leaf.pem")}), 400,
             "not a CA")
    error_of(D.service("PUT", "/certificates/x", {"certificate": "not a certificate"}), 400,
             "'certificate'")
    error_of(D.service("PUT", "/certificates/x", {}), 400, "'certificate' is required")
    error_of(D.service("PUT", "/certificates/x", "{nope"), 400)
    error_of(D.service("PUT", "/certificates/x", {"certificate": D.read("root.pem"),
                                                   "isVerified": "yes"}), 400, "isVerified")
    error_of(D.service("PUT", "/certificates/bad%20name", {"certificate": D.read("root.pem")}),
             400, "certificate name")
    error_of(D.service("PUT", "/certificates/" + "n" * 65, {"certificate": D.read("root.pem")}),
             400, "1 to 64")
    r = D.service("GET", "/certificates")
    assert "x" not in {x["name"] for x in r.json["value"]}, r


def test_rights():
    r = D.service("PUT", "/policies/reader", {"rights": "EnrollmentRead,EnrollmentWrite"})
    assert r.status == 200, r
    tok = D.token(key=r.json["primaryKey"], policy="reader")
    error_of(D.service("GET", "/certificates", token=tok), 401, "ServiceConfig")
    error_of(D.service("POST", "/certificates/root-1/generateVerificationCode", token=tok), 401)
    error_of(D.call("GET", "/certificates?api-version=2021-10-01"), 401)


def test_proof_of_possession():
    code, etag = code_of("root-1")
    # Wrong code.
    error_of(verify("root-1", proof("wrong-code", "root", "0" * 64)), 400,
             "not the current verification code")
    # Wrong signer: another CA's key.
    D.cert("create-root", "--subject", "CN=CA Test Root", "--out", "other-root")
    error_of(verify("root-1", proof("wrong-signer", "other-root", code)), 400,
             "not signed by the private key")
    # Expired and not yet valid proofs.
    error_of(verify("root-1", proof("expired", "root", code, "--not-before", "2020-01-01",
                                    "--not-after", "2020-06-30")), 400, "expired")
    error_of(verify("root-1", proof("future", "root", code, "--not-before", "2099-01-01")), 400,
             "not valid yet")
    # Tampered: one byte of the signed body changed.
    good = proof("good", "root", code)
    body = "".join(good.strip().splitlines()[1:-1])
    der = bytearray(base64.b64decode(body))
    der[len(der) // 2] ^= 0x01
    r = verify("root-1", base64.b64encode(bytes(der)).decode())
    error_of(r, 400)
    # A stale If-Match is refused, the current one accepted.
    error_of(verify("root-1", good, headers={"If-Match": '"stale"'}), 412)
    r = verify("root-1", good, headers={"If-Match": etag})
    assert r.status == 200 and r.json["properties"]["isVerified"] is True, r
    assert r.json["properties"]["verifiedDateTimeUtc"], r
    # Single use: the same proof again is refused.
    error_of(verify("root-1", good), 400, "no pending verification code")
    r = D.service("GET", "/certificates/root-1")
    assert r.json["properties"]["isVerified"] is True, r
    # A re-upload without isVerified starts unverified again.
    r = D.service("PUT", "/certificates/root-1", {"certificate": D.read("root.pem")},
                  headers={"If-Match": "*"})
    assert r.status == 200 and r.json["properties"]["isVerified"] is False, r


def test_ca_references():
    D.cert("create-root", "--subject", "CN=Line Root", "--out", "line-root")
    D.cert("create-intermediate", "--ca", "line-root", "--subject", "CN=Line Inter",
           "--out", "line-inter")
    r = D.service("PUT", "/certificates/line-ca", {"certificate": D.read("line-root.pem")})
    assert r.status == 200, r
    r = D.service("PUT", "/enrollmentGroups/line-group", {
        "enrollmentGroupId": "line-group",
        "attestation": {"type": "x509", "x509": {"caReferences": {"primary": "line-ca"}}}})
    assert r.status == 200, r
    cert = D.device("line-dev-1", "line-inter")
    r = D.register("line-dev-1", cert=cert)
    error_of(r, 401)
    a = D.last_attempt("line-dev-1")
    why = a["trace"]["summary"] + "\n" + "\n".join(a["trace"]["steps"])
    assert "line-ca" in why and "not verified" in why, why
    assert "line-ca" not in r.json["message"], r.json  # the device learns nothing
    code, _ = code_of("line-ca")
    r = verify("line-ca", proof("line-proof", "line-root", code))
    assert r.status == 200 and r.json["properties"]["isVerified"], r
    r = D.register("line-dev-1", cert=cert)
    assert r.status == 200 and r.json["status"] == "assigned", r
    st = r.json["registrationState"]
    assert st["x509"]["enrollmentGroupId"] == "line-group" and st["assignedHub"], st
    # Self-attested upload: isVerified true works at once.
    D.cert("create-root", "--subject", "CN=Trusted Root", "--out", "trusted")
    D.cert("create-intermediate", "--ca", "trusted", "--subject", "CN=Trusted Inter",
           "--out", "trusted-inter")
    r = D.service("PUT", "/certificates/trusted",
                  {"certificate": D.read("trusted.pem"), "isVerified": True})
    assert r.status == 200 and r.json["properties"]["isVerified"] is True, r
    r = D.service("PUT", "/enrollmentGroups/trusted-group", {
        "enrollmentGroupId": "trusted-group",
        "attestation": {"type": "x509", "x509": {"caReferences": {"primary": "trusted"}}}})
    assert r.status == 200, r
    r = D.register("trusted-dev", cert=D.device("trusted-dev", "trusted-inter"))
    assert r.status == 200 and r.json["status"] == "assigned", r
    # Deleting the CA stops the group's devices, and says why.
    assert D.service("DELETE", "/certificates/trusted").status == 204
    error_of(D.register("trusted-dev", cert=(D.path("trusted-dev.chain.pem"),
                                             D.path("trusted-dev.key"))), 401)
    a = D.last_attempt("trusted-dev")
    assert "does not exist" in "\n".join(a["trace"]["steps"]), a


def test_dpsctl_flows():
    D.cert("create-root", "--subject", "CN=Ctl Root", "--out", "ctl-root")
    D.cert("create-intermediate", "--ca", "ctl-root", "--subject", "CN=Ctl Inter",
           "--out", "ctl-inter")
    p = D.dpsctl("ca", "upload", "--name", "ctl-ca", "--file", "ctl-root.pem")
    assert "ctl-ca" in p.stdout and "no" in p.stdout.lower(), p.stdout
    p = D.dpsctl("ca", "list")
    assert "ctl-ca" in p.stdout, p.stdout
    p = D.dpsctl("ca", "show", "--name", "ctl-ca", "--json")
    assert '"isVerified": false' in p.stdout, p.stdout
    p = D.dpsctl("enrollment-group", "create", "--id", "ctl-group", "--ca-ref", "ctl-ca")
    cert = D.device("ctl-dev", "ctl-inter")
    error_of(D.register("ctl-dev", cert=cert), 401)
    # The step-by-step flow, then prove in one command on a second CA.
    p = D.dpsctl("ca", "verification-code", "--name", "ctl-ca", "--json")
    import json
    code = json.loads(p.stdout)["properties"]["verificationCode"]
    D.cert("create-verification", "--ca", "ctl-root", "--code", code, "--out", "ctl-proof")
    p = D.dpsctl("ca", "verify", "--name", "ctl-ca", "--file", "ctl-proof.pem")
    assert "yes" in p.stdout.lower(), p.stdout
    p = D.dpsctl("ca", "verify", "--name", "ctl-ca", "--file", "ctl-proof.pem", check=False)
    assert p.returncode == 2 or p.returncode == 1, p
    assert "no pending verification code" in p.stderr, p.stderr
    r = D.register("ctl-dev", cert=cert)
    assert r.status == 200 and r.json["status"] == "assigned", r
    D.cert("create-root", "--subject", "CN=Ctl Root 2", "--out", "ctl-root2")
    D.dpsctl("ca", "upload", "--name", "ctl-ca2", "--file", "ctl-root2.pem")
    p = D.dpsctl("ca", "prove", "--name", "ctl-ca2", "--ca", "ctl-root2")
    assert "verified" in p.stdout.lower(), p.stdout
    r = D.service("GET", "/certificates/ctl-ca2")
    assert r.json["properties"]["isVerified"] is True, r
    # prove with the wrong CA key fails and says so.
    D.dpsctl("ca", "upload", "--name", "ctl-ca3", "--file", "ctl-root.pem")
    p = D.dpsctl("ca", "prove", "--name", "ctl-ca3", "--ca", "ctl-root2", check=False)
    assert p.returncode != 0 and "is not the certificate uploaded" in p.stderr, p
    # delete with a stale etag, then for real.
    p = D.dpsctl("ca", "delete", "--name", "ctl-ca3", "--etag", '"stale"', check=False)
    assert p.returncode == 5, p
    D.dpsctl("ca", "delete", "--name", "ctl-ca3")
    p = D.dpsctl("ca", "show", "--name", "ctl-ca3", check=False)
    assert p.returncode == 3, p
    p = D.dpsctl("ca", "--help")
    for sub in ("upload", "list", "show", "delete", "verification-code", "verify", "prove"):
        assert sub in p.stdout, p.stdout


def test_code_expiry():
    # A dpsd whose verification codes live one second.
    d2 = Dpsd(D.base, name="dpsd-ttl", extra=("--verification-code-ttl", "1"))
    try:
        d2.cert("create-root", "--subject", "CN=CA Ttl Root", "--out", "ttl-root")
        r = d2.service("PUT", "/certificates/ttl-1", {"certificate": d2.read("ttl-root.pem")})
        assert r.status in (200, 201), r
        r = d2.service("POST", "/certificates/ttl-1/generateVerificationCode")
        assert r.status == 200, r
        code = r.json["properties"]["verificationCode"]
        d2.cert("create-verification", "--ca", "ttl-root", "--code", code, "--out", "ttl-proof")
        time.sleep(2.2)
        r = d2.service("POST", "/certificates/ttl-1/verify",
                       {"certificate": d2.read("ttl-proof.pem")})
        error_of(r, 400, "expired", "generate a")
        r = d2.service("GET", "/certificates/ttl-1")
        assert r.json["properties"]["isVerified"] is False, r
    finally:
        d2.stop()


def main():
    global D
    D = Dpsd(scratch("test_ca"))
    run = Runner()
    try:
        for t in [test_upload_read_list_delete, test_bad_uploads, test_rights,
                  test_proof_of_possession, test_ca_references, test_dpsctl_flows,
                  test_code_expiry]:
            run.run(t)
    finally:
        rc = run.finish(D)
    return rc


if __name__ == "__main__":
    sys.exit(main())
