# SPDX-License-Identifier: MIT
"""dpsctl cert, checked with the openssl command: chains verify, extensions are
right, keys are private, nothing is overwritten without --force, bad
registration ids are refused, and `show` agrees with openssl."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

DPSCTL = os.environ.get("DPSCTL", "dpsctl")
TMP_BASE = os.environ.get("DPS_TEST_TMP", tempfile.gettempdir())


def run(*args, check=True, cwd=None):
    p = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"{args} exited {p.returncode}: {p.stdout}{p.stderr}")
    return p


def dpsctl(*args, check=True, cwd=None):
    return run(DPSCTL, "cert", *args, check=check, cwd=cwd)


def openssl(*args, check=True, cwd=None):
    return run("openssl", *args, check=check, cwd=cwd)


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class CertTest(unittest.TestCase):
    def setUp(self):
        os.makedirs(TMP_BASE, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="cert.", dir=TMP_BASE)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def p(self, name):
        return os.path.join(self.dir, name)

    def cert(self, *args, check=True):
        return dpsctl(*args, check=check, cwd=self.dir)

    def pki(self, key_type="p256"):
        kt = ["--key-type", key_type]
        self.cert("create-root", "--subject", "CN=Test Root,O=Example", "--out", "root", *kt)
        self.cert("create-intermediate", "--ca", "root", "--subject", "CN=Test Int", "--out",
                  "int", *kt)
        self.cert("create-device", "--ca", "int", "--registration-id", "device-1", "--out", "dev",
                  *kt)

    def text(self, name):
        return openssl("x509", "-noout", "-text", "-in", self.p(name)).stdout

    def test_chain_verifies(self):
        self.pki()
        r = openssl("verify", "-CAfile", "root.pem", "-untrusted", "int.pem", "dev.pem",
                    cwd=self.dir)
        self.assertIn("dev.pem: OK", r.stdout)
        # The device chain is leaf then intermediates, without the root.
        r = openssl("verify", "-CAfile", "root.pem", "-untrusted", "dev.chain.pem", "dev.pem",
                    cwd=self.dir)
        self.assertIn("OK", r.stdout)
        with open(self.p("dev.chain.pem")) as f:
            self.assertEqual(f.read().count("BEGIN CERTIFICATE"), 2)
        # Without the intermediate the leaf does not verify.
        r = openssl("verify", "-CAfile", "root.pem", "dev.pem", check=False, cwd=self.dir)
        self.assertNotEqual(r.returncode, 0)
        # A second intermediate level: its chain file carries the one above it.
        self.cert("create-intermediate", "--ca", "int", "--subject", "CN=Test Int 2", "--out",
                  "int2")
        self.cert("create-device", "--ca", "int2", "--registration-id", "device-2", "--out",
                  "dev2")
        with open(self.p("dev2.chain.pem")) as f:
            self.assertEqual(f.read().count("BEGIN CERTIFICATE"), 3)
        openssl("verify", "-CAfile", "root.pem", "-untrusted", "dev2.chain.pem", "dev2.pem",
                cwd=self.dir)

    def test_extensions(self):
        self.pki()
        for name in ("root.pem", "int.pem"):
            t = self.text(name)
            self.assertIn("X509v3 Basic Constraints: critical\n                CA:TRUE", t)
            self.assertIn("X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign",
                          t)
            self.assertIn("X509v3 Subject Key Identifier", t)
            self.assertIn("X509v3 Authority Key Identifier", t)
        t = self.text("dev.pem")
        self.assertIn("CA:FALSE", t)
        self.assertIn("X509v3 Key Usage: critical\n                Digital Signature\n", t)
        self.assertIn("TLS Web Client Authentication", t)
        self.assertNotIn("TLS Web Server Authentication", t)
        self.assertIn("Subject: CN = device-1", t)
        self.assertIn("Version: 3 (0x2)", t)
        self.assertIn("ecdsa-with-SHA256", t)

    def test_key_files_private(self):
        self.pki()
        for name in ("root.key", "int.key", "dev.key"):
            self.assertEqual(os.stat(self.p(name)).st_mode & 0o777, 0o600, name)
            with open(self.p(name)) as f:
                self.assertIn("-----BEGIN PRIVATE KEY-----", f.read())
        self.assertEqual(os.stat(self.p("dev.pem")).st_mode & 0o777, 0o644)

    def test_creates_missing_folders(self):
        self.cert("create-root", "--subject", "CN=Nested", "--out", "pki/a/root")
        self.cert("create-device", "--ca", "pki/a/root", "--registration-id", "dev-2", "--out",
                  "pki/b/dev-2")
        self.assertEqual(os.stat(self.p("pki/a")).st_mode & 0o777, 0o700)
        openssl("verify", "-CAfile", self.p("pki/a/root.pem"), self.p("pki/b/dev-2.pem"))

    def test_verification_certificate(self):
        self.pki()
        code = "3A1F9C0D8E7B6A5F4E3D2C1B0A99887766554433221100FF"
        self.cert("create-verification", "--ca", "root", "--code", code, "--out", "pop")
        subj = openssl("x509", "-noout", "-subject", "-in", self.p("pop.pem")).stdout
        self.assertEqual(subj.strip(), f"subject=CN = {code}")
        openssl("verify", "-CAfile", "root.pem", "pop.pem", cwd=self.dir)
        self.cert("create-verification", "--ca", "int", "--code", "abc-123", "--out", "pop2")
        openssl("verify", "-CAfile", "root.pem", "-untrusted", "int.pem", "pop2.pem",
                cwd=self.dir)
        self.assertFalse(os.path.exists(self.p("pop.chain.pem")))
        r = self.cert("create-verification", "--ca", "root", "--code", "a,b", "--out", "pop3",
                      check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("','", r.stderr)

    def test_every_key_type(self):
        for kt, needle in (("p256", "NIST CURVE: P-256"), ("p384", "NIST CURVE: P-384"),
                           ("rsa2048", "Public-Key: (2048 bit)"),
                           ("rsa4096", "Public-Key: (4096 bit)")):
            with self.subTest(key_type=kt):
                shutil.rmtree(self.dir)
                os.makedirs(self.dir)
                self.pki(kt)
                openssl("verify", "-CAfile", "root.pem", "-untrusted", "int.pem", "dev.pem",
                        cwd=self.dir)
                t = self.text("dev.pem")
                self.assertIn(needle, t)
                if kt == "p384":
                    self.assertIn("ecdsa-with-SHA384", t)
                if kt.startswith("rsa"):
                    self.assertIn("Digital Signature, Key Encipherment", t)
                    self.assertIn("sha256WithRSAEncryption", t)

    def test_no_overwrite_without_force(self):
        self.cert("create-root", "--subject", "CN=R", "--out", "root")
        before = digest(self.p("root.pem")), digest(self.p("root.key"))
        r = self.cert("create-root", "--subject", "CN=R2", "--out", "root", check=False)
        self.assertEqual(r.returncode, 5)
        self.assertIn("'root.pem' exists", r.stderr)
        self.assertEqual((digest(self.p("root.pem")), digest(self.p("root.key"))), before)
        # One existing output file stops the whole set: nothing else appears.
        with open(self.p("d.key"), "w") as f:
            f.write("keep me\n")
        r = self.cert("create-device", "--ca", "root", "--registration-id", "d", "--out", "d",
                      check=False)
        self.assertEqual(r.returncode, 5)
        self.assertIn("'d.key'", r.stderr)
        self.assertFalse(os.path.exists(self.p("d.pem")))
        self.assertFalse(os.path.exists(self.p("d.chain.pem")))
        with open(self.p("d.key")) as f:
            self.assertEqual(f.read(), "keep me\n")
        self.cert("create-root", "--subject", "CN=R2", "--out", "root", "--force")
        self.assertNotEqual(digest(self.p("root.pem")), before[0])
        self.assertEqual(os.stat(self.p("root.key")).st_mode & 0o777, 0o600)
        self.assertIn("CN = R2", self.text("root.pem"))
        leftovers = [n for n in os.listdir(self.dir) if ".tmp." in n]
        self.assertEqual(leftovers, [])

    def test_bad_registration_ids(self):
        self.cert("create-root", "--subject", "CN=R", "--out", "root")
        for rid, msg in (("Dev-1", "upper-case 'D' at position 1"), ("a/b", "'/' at position 2"),
                         ("dev.", "ends with '.'"), ("x" * 65, "longer than 64")):
            with self.subTest(rid=rid):
                r = self.cert("create-device", "--ca", "root", "--registration-id", rid, "--out",
                              "bad", check=False)
                self.assertEqual(r.returncode, 2)
                self.assertIn(msg, r.stderr)
                self.assertFalse(os.path.exists(self.p("bad.pem")))
                self.assertFalse(os.path.exists(self.p("bad.key")))

    def test_show_matches_openssl(self):
        self.pki()
        out = self.cert("show", "dev.pem").stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        for alg, key in (("-sha256", "SHA-256"), ("-sha1", "SHA-1")):
            fp = openssl("x509", "-noout", "-fingerprint", alg, "-in", self.p("dev.pem")).stdout
            self.assertEqual(fields[key], fp.strip().split("=", 1)[1].replace(":", ""))
        serial = openssl("x509", "-noout", "-serial", "-in", self.p("dev.pem")).stdout
        self.assertEqual(fields["Serial"], serial.strip().split("=", 1)[1])
        self.assertEqual(fields["Subject"], "CN=device-1")
        self.assertEqual(fields["Issuer"], "CN=Test Int")
        self.assertEqual(fields["CA"], "no")
        self.assertRegex(fields["Not after"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(self.cert("show", "root.pem").stdout.splitlines()[0],
                         "Subject:      O=Example, CN=Test Root")
        j = json.loads(self.cert("show", "--json", "dev.pem").stdout)
        self.assertEqual(j["sha256Thumbprint"], fields["SHA-256"])
        self.assertEqual(j["version"], 3)
        self.assertFalse(j["isCA"])
        chain = json.loads(self.cert("show", "--json", "dev.chain.pem").stdout)
        self.assertEqual([c["subjectName"] for c in chain], ["CN=device-1", "CN=Test Int"])
        self.assertTrue(chain[1]["isCA"])
        # DER input.
        openssl("x509", "-in", "dev.pem", "-outform", "DER", "-out", "dev.der", cwd=self.dir)
        j2 = json.loads(self.cert("show", "--json", "dev.der").stdout)
        self.assertEqual(j2["sha256Thumbprint"], j["sha256Thumbprint"])
        r = self.cert("show", "missing.pem", check=False)
        self.assertEqual(r.returncode, 3)
        self.assertIn("'missing.pem' does not exist", r.stderr)

    def test_passphrase_round_trip(self):
        with open(self.p("pass"), "w") as f:
            f.write("s3cret passphrase\n")
        with open(self.p("wrong"), "w") as f:
            f.write("nope\n")
        self.cert("create-root", "--subject", "CN=Enc Root", "--out", "root",
                  "--passphrase-file", "pass")
        with open(self.p("root.key")) as f:
            self.assertIn("-----BEGIN ENCRYPTED PRIVATE KEY-----", f.read())
        self.assertEqual(os.stat(self.p("root.key")).st_mode & 0o777, 0o600)
        openssl("pkey", "-in", "root.key", "-passin", "file:pass", "-noout", cwd=self.dir)
        r = openssl("pkey", "-in", "root.key", "-passin", "pass:", "-noout", check=False,
                    cwd=self.dir)
        self.assertNotEqual(r.returncode, 0)
        r = self.cert("create-device", "--ca", "root", "--registration-id", "d1", "--out", "d1",
                      check=False)
        self.assertEqual(r.returncode, 4)
        self.assertIn("--ca-passphrase-file", r.stderr)
        r = self.cert("create-device", "--ca", "root", "--ca-passphrase-file", "wrong",
                      "--registration-id", "d1", "--out", "d1", check=False)
        self.assertEqual(r.returncode, 4)
        self.assertIn("wrong passphrase", r.stderr)
        self.assertFalse(os.path.exists(self.p("d1.pem")))
        self.cert("create-device", "--ca", "root", "--ca-passphrase-file", "pass",
                  "--registration-id", "d1", "--out", "d1")
        openssl("verify", "-CAfile", "root.pem", "d1.pem", cwd=self.dir)

    def test_help_and_usage(self):
        r = dpsctl("--help")
        for sub in ("create-root", "create-intermediate", "create-device",
                    "create-verification", "show"):
            self.assertIn(sub, r.stdout)
            h = dpsctl(sub, "--help").stdout
            self.assertIn(f"usage: dpsctl cert {sub}", h)
        h = dpsctl("create-device", "--help").stdout
        for opt in ("--ca", "--registration-id", "--out", "--key-type", "--days",
                    "--passphrase-file", "--ca-passphrase-file", "--force"):
            self.assertIn(opt, h)
        for args, msg in ((["frobnicate"], "unknown subcommand 'frobnicate'"),
                          (["create-root", "--out", "x"], "missing option '--subject'"),
                          (["create-root", "--subject", "CN=x", "--out", "x", "--key-type",
                            "dsa"], "unknown key type 'dsa'"),
                          (["create-root", "--subject", "CN=x", "--out", "x", "--days", "0"],
                           "--days '0'"),
                          (["create-root", "--subject", "XX=x", "--out", "x"],
                           "unknown attribute 'XX'")):
            r = dpsctl(*args, check=False, cwd=self.dir)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(msg, r.stderr)
        self.assertEqual(os.listdir(self.dir), [])

    def test_days(self):
        self.cert("create-root", "--subject", "CN=R", "--out", "root", "--days", "10")
        r = openssl("x509", "-noout", "-checkend", str(9 * 86400), "-in", self.p("root.pem"),
                    check=False)
        self.assertEqual(r.returncode, 0)
        r = openssl("x509", "-noout", "-checkend", str(11 * 86400), "-in", self.p("root.pem"),
                    check=False)
        self.assertNotEqual(r.returncode, 0)


class CountingResult(unittest.TextTestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1


def main():
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(CertTest)
    runner = unittest.TextTestRunner(resultclass=CountingResult, verbosity=2, stream=sys.stdout)
    result = runner.run(suite)
    failed = len(result.failures) + len(result.errors)
    print(f"{result.passed} passed, {failed} failed")
    return 0 if failed == 0 and result.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
