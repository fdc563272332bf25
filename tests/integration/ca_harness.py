# SPDX-License-Identifier: MIT
"""Shared helpers of test_ca.py and test_explain.py: a dpsd on loopback, service
and device calls over HTTPS (Python's ssl, client certificates for devices),
SAS tokens, and test PKIs made with dpsctl cert."""
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
import tempfile
import time
import traceback
import urllib.parse

DPSD = os.environ["DPSD"]
DPSCTL = os.environ.get("DPSCTL", "dpsctl")
TMP = os.environ.get("DPS_TEST_TMP", tempfile.gettempdir())
os.makedirs(TMP, exist_ok=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sas(sr, key, se=None, skn=None):
    se = str(int(se if se is not None else time.time() + 3600))
    mac = hmac.new(base64.b64decode(key), ("%s\n%s" % (sr, se)).encode(), hashlib.sha256)
    sig = urllib.parse.quote(base64.b64encode(mac.digest()).decode(), safe="")
    tok = "SharedAccessSignature sr=%s&sig=%s&se=%s" % (sr, sig, se)
    return tok + ("&skn=%s" % skn if skn else "")


def derive(group_key, rid):
    mac = hmac.new(base64.b64decode(group_key), rid.encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


class Reply:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.raw = status, headers, body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return "<%d %s>" % (self.status, self.raw[:600])


class Dpsd:
    """dpsd on a free loopback port with its own data directory under base."""

    def __init__(self, base):
        self.base = base
        self.dir = os.path.join(base, "data")
        self.pki = os.path.join(base, "pki")
        os.makedirs(self.pki, exist_ok=True)
        self.port = free_port()
        self.err = open(os.path.join(base, "dpsd.err"), "a+")
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
            self.connection_string = f.read().strip()
        parts = dict(p.split("=", 1) for p in self.connection_string.split(";"))
        self.host, self.policy, self.key = (parts["HostName"], parts["SharedAccessKeyName"],
                                            parts["SharedAccessKey"])
        with open(os.path.join(self.dir, "id-scope")) as f:
            self.scope = f.read().strip()
        self.ca = os.path.join(self.dir, "tls", "ca.pem")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)

    def call(self, method, path, body=None, cert=None, headers=None):
        ctx = ssl.create_default_context(cafile=self.ca)
        if cert:
            ctx.load_cert_chain(cert[0], cert[1])
        conn = http.client.HTTPSConnection("localhost", self.port, context=ctx, timeout=30)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            hdrs = {"Content-Type": "application/json; charset=utf-8"}
            hdrs.update(headers or {})
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def token(self, key=None, policy=None):
        se = str(int(time.time() + 3600))
        mac = hmac.new(base64.b64decode(key or self.key), ("%s\n%s" % (self.host, se)).encode(),
                       hashlib.sha256)
        sig = urllib.parse.quote(base64.b64encode(mac.digest()).decode(), safe="")
        return "SharedAccessSignature sr=%s&sig=%s&skn=%s&se=%s" % (
            self.host, sig, policy or self.policy, se)

    def service(self, method, path, body=None, headers=None, token=None):
        h = {"Authorization": token or self.token()}
        h.update(headers or {})
        sep = "&" if "?" in path else "?"
        return self.call(method, path + sep + "api-version=2021-10-01", body, headers=h)

    def register(self, rid, cert=None, token=None):
        headers = {"Authorization": token} if token else {}
        return self.call("PUT", "/%s/registrations/%s/register?api-version=2019-03-31"
                         % (self.scope, rid), {"registrationId": rid}, cert=cert, headers=headers)

    def last_attempt(self, rid):
        r = self.service("GET", "/registrations/%s/attempts" % rid)
        assert r.status == 200, r
        return r.json[0] if r.json else None

    def dpsctl(self, *args, check=True):
        env = dict(os.environ, DPS_CONNECTION_STRING=self.connection_string, DPS_CA_FILE=self.ca,
                   DPS_CONNECT_TO="127.0.0.1:%d" % self.port)
        p = subprocess.run([DPSCTL] + list(args), cwd=self.pki, env=env, capture_output=True,
                           text=True, timeout=120)
        if check and p.returncode != 0:
            raise AssertionError("dpsctl %s: exit %d: %s%s" % (" ".join(args), p.returncode,
                                                                p.stdout, p.stderr))
        return p

    def cert(self, *args):
        p = subprocess.run([DPSCTL, "cert"] + list(args), cwd=self.pki, capture_output=True,
                           text=True)
        assert p.returncode == 0, (args, p.stderr)

    def path(self, name):
        return os.path.join(self.pki, name)

    def read(self, name):
        with open(self.path(name)) as f:
            return f.read()

    def device(self, name, ca, rid=None, *extra):
        self.cert("create-device", "--ca", ca, "--registration-id", rid or name, "--out", name,
                  *extra)
        return (self.path(name + ".chain.pem"), self.path(name + ".key"))


def error_of(r, status, *words):
    assert r.status == status, r
    assert r.json and r.json["errorCode"] // 1000 == status, r.json
    assert r.json.get("trackingId"), r.json
    for w in words:
        assert w in r.json["message"], (w, r.json)


class Runner:
    def __init__(self):
        self.passed = self.failed = 0

    def run(self, fn):
        try:
            fn()
            self.passed += 1
            print("ok   %s" % fn.__name__)
        except Exception:
            self.failed += 1
            print("FAIL %s" % fn.__name__)
            traceback.print_exc()

    def finish(self, d):
        rc = d.stop()
        if rc != 0:
            print("FAIL dpsd exited with %s on SIGTERM" % rc)
            self.failed += 1
        print("%d passed, %d failed" % (self.passed, self.failed))
        return 1 if self.failed else 0
