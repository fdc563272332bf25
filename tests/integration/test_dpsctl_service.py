#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The user's scenario through dpsctl against a real dpsd: a test PKI made with
`dpsctl cert`, an enrollment group on the intermediate CA (show with computed
info, list, update with its etag, a stale etag refused, delete), individual
enrollments with a certificate and with a symmetric key, registration states,
shared access policies, and --json output that parses; then every enrollment
option (keys given or generated, status, allocation policy, repeated hubs,
initial twin file, reprovision policy, edge), updates that keep what they do
not name, a registered device's state shown and deleted, the connection string
and CA as flags, and the help layout."""
import base64
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DPSCTL, Dpsd, Runner, scratch  # noqa: E402

BASE = scratch("test_dpsctl_service")
PKI = os.path.join(BASE, "pki")

ENV = None  # dpsctl's environment: connection string, CA file, where to connect
SCOPE = None  # the ID scope
HUBS = ("hub-a.example.net", "hub-b.example.net")


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


def test_group_options():
    twin = os.path.join(BASE, "twin.json")
    with open(twin, "w") as f:
        json.dump({"tags": {"site": "line-3"}, "properties": {"desired": {"interval": 30}}}, f)
    key = base64.b64encode(b"k" * 32).decode()
    g = ctl_json("enrollment-group", "create", "--id", "opts-1", "--symmetric-key", key,
                 "--provisioning-status", "disabled", "--allocation-policy", "static",
                 "--iot-hub", HUBS[0], "--iot-hub", HUBS[1], "--initial-twin", twin,
                 "--reprovision", "reset", "--edge")
    assert g["attestation"]["symmetricKey"]["primaryKey"] == key, g
    assert g["provisioningStatus"] == "disabled" and g["allocationPolicy"] == "static", g
    assert g["iotHubs"] == list(HUBS), g
    assert g["initialTwin"]["tags"] == {"site": "line-3"}, g
    assert g["initialTwin"]["properties"]["desired"]["interval"] == 30, g
    assert g["reprovisionPolicy"] == {"updateHubAssignment": True,
                                      "migrateDeviceData": False}, g
    assert g["capabilities"] == {"iotEdge": True}, g
    u = ctl_json("enrollment-group", "update", "--id", "opts-1", "--reprovision", "never",
                 "--no-edge", "--provisioning-status", "enabled")
    assert u["reprovisionPolicy"] == {"updateHubAssignment": False,
                                      "migrateDeviceData": False}, u
    assert u["capabilities"] == {"iotEdge": False} and u["provisioningStatus"] == "enabled", u
    # what the update did not name is kept
    assert u["iotHubs"] == list(HUBS) and u["allocationPolicy"] == "static", u
    assert u["initialTwin"]["tags"] == {"site": "line-3"} and u["etag"] != g["etag"], u
    u = ctl_json("enrollment-group", "update", "--id", "opts-1", "--reprovision", "migrate")
    assert u["reprovisionPolicy"] == {"updateHubAssignment": True,
                                      "migrateDeviceData": True}, u
    # --symmetric-key without a key: the server makes both
    s = ctl_json("enrollment-group", "create", "--id", "opts-2", "--symmetric-key")
    keys = s["attestation"]["symmetricKey"]
    assert len(base64.b64decode(keys["primaryKey"])) == 64 and keys["secondaryKey"], s
    bad_twin = os.path.join(BASE, "bad-twin.json")
    with open(bad_twin, "w") as f:
        f.write('{"tags":')
    for args, words in ((["--reprovision", "sometimes"], "'sometimes' is not never, reset or"),
                        (["--allocation-policy", "random"], "allocation policy 'random'"),
                        (["--provisioning-status", "maybe"], "provisioning status 'maybe'"),
                        (["--initial-twin", os.path.join(BASE, "no-such.json")],
                         "cannot read initial twin"),
                        (["--initial-twin", bad_twin], "is not valid json")):
        p = ctl("enrollment-group", "create", "--id", "opts-3", "--symmetric-key", *args,
                code=1 if args[0] == "--initial-twin" else 2)
        assert words in p.stderr, (args, p.stderr)
    ctl("enrollment-group", "show", "--id", "opts-3", code=3)
    for gid in ("opts-1", "opts-2"):
        ctl("enrollment-group", "delete", "--id", gid)


def test_enrollment_update_and_registration_delete():
    # --connection-string and --ca-file work as the environment does
    env = {k: v for k, v in ENV.items() if k not in ("DPS_CONNECTION_STRING", "DPS_CA_FILE")}
    flags = ["--connection-string", ENV["DPS_CONNECTION_STRING"], "--ca-file", ENV["DPS_CA_FILE"]]
    p = ctl("enrollment", "list", env=env, code=2)
    assert "DPS_CONNECTION_STRING" in p.stderr, p.stderr
    e = json.loads(ctl("enrollment", "create", "--registration-id", "device-3", "--symmetric-key",
                       "--json", *flags, env=env).stdout)
    key = e["attestation"]["symmetricKey"]["primaryKey"]
    u = ctl_json("enrollment", "update", "--registration-id", "device-3", "--device-id",
                 "dev-three", "--iot-hub", HUBS[1])
    assert u["deviceId"] == "dev-three" and u["iotHubs"] == [HUBS[1]], u
    assert u["etag"] != e["etag"], u
    a = ctl_json("register", "--id-scope", SCOPE, "--registration-id", "device-3",
                 "--symmetric-key", key, "--global-endpoint", "localhost")
    assert a["status"] == "assigned", a
    r = ctl_json("registration", "show", "--registration-id", "device-3")
    assert r["status"] == "assigned" and r["deviceId"] == "dev-three", r
    assert r["assignedHub"] == HUBS[1], r
    assert "dev-three" in ctl("registration", "show", "--registration-id", "device-3").stdout
    ctl("registration", "delete", "--registration-id", "device-3", *flags, env=env)
    ctl("registration", "show", "--registration-id", "device-3", code=3)
    ctl("registration", "delete", "--registration-id", "device-3", code=3)
    # the enrollment stays
    assert ctl_json("enrollment", "show", "--registration-id", "device-3")["deviceId"] == \
        "dev-three"
    ctl("enrollment", "delete", "--registration-id", "device-3")


def test_group_help_layout():
    """Every line of a subcommand list stays indented, long summaries included."""
    for group in ("enrollment-group", "enrollment", "registration", "policy", "ca"):
        out = ctl(group, "--help").stdout
        listing = out.split("Subcommands:\n", 1)[1].split("\n\n", 1)[0]
        for line in listing.splitlines():
            assert line.startswith("  "), (group, line)


def main():
    global ENV, SCOPE
    d = Dpsd(BASE, hubs=HUBS)
    SCOPE = d.scope
    ENV = d.dpsctl_env()
    run = Runner()
    try:
        run.run_all([test_group_scenario, test_individual_enrollments, test_registrations,
                     test_policies_and_refusals, test_group_options,
                     test_enrollment_update_and_registration_delete, test_group_help_layout])
    finally:
        rc = run.finish(d, base=BASE)
    return rc


if __name__ == "__main__":
    sys.exit(main())
