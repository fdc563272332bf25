#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The user's scenario through dpsctl against a real dpsd: a test PKI made with
`dpsctl cert`, an enrollment group on the intermediate CA (show with computed
info, list, update with its etag, a stale etag refused, delete), individual
enrollments with a certificate and with a symmetric key, registration states,
shared access policies, and --json output that parses."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DPSCTL, Dpsd, Runner, scratch  # noqa: E402

BASE = scratch("test_dpsctl_service")
PKI = os.path.join(BASE, "pki")

ENV = None  # dpsctl's environment: connection string, CA file, where to connect


def ctl(*args, code=0, env=None):
    p = subprocess.run([DPSCTL, *args], capture_output=True, text=True, timeout=60,
                       env=env or ENV, cwd=BASE)
    assert p.returncode == code, (args, p.returncode, p.stdout, p.stderr)
    return p


def ctl_json(*args):
    return json.loads(ctl(*args, "--json").stdout)


def test_group_scenario():
    ctl("cert", "create-root", "--subject", "CN=Line Root", "--out", os.path.join(PKI, "root"))
    ctl("cert", "create-intermediate", "--ca", os.path.join(PKI, "root"), "--subject",
        "CN=Line Intermediate", "--out", os.path.join(PKI, "inter"))
    p = ctl("enrollment-group", "create", "--id", "line-3", "--signing-cert",
            os.path.join(PKI, "inter.pem"))
    assert "line-3" in p.stdout, p.stdout
    g = ctl_json("enrollment-group", "show", "--id", "line-3")
    info = g["attestation"]["x509"]["signingCertificates"]["primary"]["info"]
    assert info["subjectName"] == "CN=Line Intermediate", info
    assert info["issuerName"] == "CN=Line Root" and len(info["sha256Thumbprint"]) == 64
    text = ctl("enrollment-group", "show", "--id", "line-3").stdout
    assert "CN=Line Intermediate" in text, text
    lst = ctl_json("enrollment-group", "list")
    assert [x["enrollmentGroupId"] for x in lst] == ["line-3"], lst
    assert "line-3" in ctl("enrollment-group", "list").stdout
    u = ctl_json("enrollment-group", "update", "--id", "line-3", "--provisioning-status",
                 "disabled", "--etag", g["etag"])
    assert u["provisioningStatus"] == "disabled" and u["etag"] != g["etag"], u
    p = ctl("enrollment-group", "update", "--id", "line-3", "--provisioning-status", "enabled",
            "--etag", g["etag"], code=5)
    assert "etag" in p.stderr.lower() or "if-match" in p.stderr.lower(), p.stderr
    assert ctl_json("enrollment-group", "show", "--id", "line-3")["provisioningStatus"] == \
        "disabled"
    ctl("enrollment-group", "delete", "--id", "line-3")
    ctl("enrollment-group", "show", "--id", "line-3", code=3)
    ctl("enrollment-group", "delete", "--id", "line-3", code=3)


def test_individual_enrollments():
    ctl("cert", "create-device", "--ca", os.path.join(PKI, "inter"), "--registration-id",
        "device-1", "--out", os.path.join(PKI, "device-1"))
    e = ctl_json("enrollment", "create", "--registration-id", "device-1", "--cert",
                 os.path.join(PKI, "device-1.pem"))
    assert e["attestation"]["x509"]["clientCertificates"]["primary"]["info"][
        "subjectName"] == "CN=device-1", e
    s = ctl_json("enrollment", "create", "--registration-id", "device-2", "--symmetric-key",
                 "--device-id", "dev-two")
    assert s["deviceId"] == "dev-two" and s["attestation"]["symmetricKey"]["primaryKey"], s
    shown = ctl_json("enrollment", "show", "--registration-id", "device-2")
    assert shown["attestation"]["symmetricKey"].get("primaryKey") is None, shown
    ids = [x["registrationId"] for x in ctl_json("enrollment", "list", "--page-size", "1")]
    assert ids == ["device-1", "device-2"], ids
    for rid in ("device-1", "device-2"):
        ctl("enrollment", "delete", "--registration-id", rid)
    ctl("enrollment", "show", "--registration-id", "device-1", code=3)


def test_registrations():
    ctl("registration", "show", "--registration-id", "device-1", code=3)
    assert ctl_json("registration", "list", "--group", "line-3") == []


def test_policies_and_refusals():
    p = ctl_json("policy", "create", "--name", "reader", "--rights", "EnrollmentRead")
    assert p["rights"] == "EnrollmentRead" and p["primaryKey"], p
    names = [x["name"] for x in ctl_json("policy", "list")]
    assert "reader" in names and "provisioningserviceowner" in names, names
    assert "reader" in ctl("policy", "list").stdout
    env = dict(ENV, DPS_CONNECTION_STRING="HostName=localhost;SharedAccessKeyName=reader;"
                                          "SharedAccessKey=" + p["primaryKey"])
    assert ctl("enrollment", "list", "--json", env=env).returncode == 0
    r = ctl("enrollment", "create", "--registration-id", "device-9", "--symmetric-key", code=4,
            env=env)
    assert "EnrollmentWrite" in r.stderr, r.stderr
    ctl("policy", "delete", "--name", "reader")
    r = ctl("enrollment", "list", code=4, env=env)
    assert "reader" in r.stderr, r.stderr
    forged = dict(ENV, DPS_CONNECTION_STRING="HostName=localhost;SharedAccessKeyName="
                                             "provisioningserviceowner;SharedAccessKey="
                                             "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    ctl("enrollment", "list", code=4, env=forged)


def main():
    global ENV
    d = Dpsd(BASE, hubs=())
    ENV = d.dpsctl_env()
    run = Runner()
    try:
        run.run_all([test_group_scenario, test_individual_enrollments, test_registrations,
                     test_policies_and_refusals])
    finally:
        rc = run.finish(d, base=BASE)
    return rc


if __name__ == "__main__":
    sys.exit(main())
