# SPDX-License-Identifier: MIT
"""What the integration tests share: dpsd started on free loopback ports with its
own data directory and stopped with SIGTERM, service and device calls over
HTTPS (client certificates for devices), SAS tokens, test PKIs made with
dpsctl cert, the Azure error shape, and a runner that ends with the line
`N passed, N failed`. Not a test itself: ctest runs only the test_*.py files."""
import base64
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

DPSD = os.environ["DPSD"]
DPSCTL = os.environ.get("DPSCTL", "dpsctl")
SRC = os.environ.get("DPS_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
TMP = os.environ.get("DPS_TEST_TMP", tempfile.gettempdir())
os.makedirs(TMP, exist_ok=True)

SERVICE_API = "api-version=2021-10-01"
DEVICE_API = "api-version=2019-03-31"


def scratch(name):
    """A fresh directory under DPS_TEST_TMP for one test file's servers and files."""
    return tempfile.mkdtemp(prefix=name + ".", dir=TMP)


def pg(*args):
    """tests/pg.sh with args (start DIR [PID] prints a conninfo; stop DIR): the
    throwaway PostgreSQL server of the tests that need one."""
    return subprocess.run(["bash", os.path.join(SRC, "tests", "pg.sh")] + list(args),
                          capture_output=True, text=True, timeout=120)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sas(sr, key, se=None, skn=None, quote=False):
    """A SAS token for resource sr signed with the base64 key, expiring at se (an hour
    from now by default), naming the policy skn when given; quote URL-encodes sr
    and skn in the token as a client may."""
    se = str(int(se if se is not None else time.time() + 3600))
    mac = hmac.new(base64.b64decode(key), ("%s\n%s" % (sr, se)).encode(), hashlib.sha256)
    sig = urllib.parse.quote(base64.b64encode(mac.digest()).decode(), safe="")
    if quote:
        sr = urllib.parse.quote(sr, safe="")
        skn = urllib.parse.quote(skn, safe="") if skn else skn
    tok = "SharedAccessSignature sr=%s&sig=%s&se=%s" % (sr, sig, se)
    return tok + ("&skn=%s" % skn if skn else "")


def derive(group_key, rid):
    """The device key that a symmetric-key group's base64 key derives for rid."""
    mac = hmac.new(base64.b64decode(group_key), rid.encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


class Reply:
    """One HTTP response: status, headers (lower-case names), raw body and its JSON
    (None when empty or not JSON). `status, body = reply` unpacks the status and
    the JSON body, which must then parse."""

    def __init__(self, status, headers, body):
        self.status, self.headers, self.raw = status, headers, body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def __iter__(self):
        return iter((self.status, json.loads(self.raw) if self.raw else None))

    def __repr__(self):
        return "<%d %s>" % (self.status, self.raw[:600])


class Dpsd:
    """dpsd on a free loopback port. Its data directory is base/name (or data_dir),
    its stdout and stderr go to base/name.out and base/name.err, test PKIs go to
    base/pki. Options: port (reuse one), store (a --store DSN), hostname (None
    leaves dpsd's default), hubs (each a --linked-hub), mqtt (listen for MQTT on a
    free port, self.mqtt_port, and wait for it too; otherwise 127.0.0.1:0), extra
    (more arguments). Raises AssertionError, with the log, when dpsd exits or
    does not listen within 30 s."""

    def __init__(self, base, name="dpsd", data_dir=None, port=None, store=None,
                 hostname="localhost", hubs=("hub-a.example.net",), mqtt=False, extra=()):
        self.base, self.name = base, name
        self.dir = data_dir or os.path.join(base, name)
        self.pki = os.path.join(base, "pki")
        os.makedirs(self.pki, exist_ok=True)
        self.port = port or free_port()
        self.mqtt_port = free_port() if mqtt else 0
        self.out = open(os.path.join(base, name + ".out"), "a+")
        self.err = open(os.path.join(base, name + ".err"), "a+")
        self.args = [DPSD, "--data-dir", self.dir, "--https-listen", "127.0.0.1:%d" % self.port,
                     "--mqtt-listen", "127.0.0.1:%d" % self.mqtt_port, "--workers", "2"]
        if store:
            self.args += ["--store", store]
        if hostname:
            self.args += ["--hostname", hostname]
        for hub in hubs:
            self.args += ["--linked-hub", hub]
        self.args += list(extra)
        self.proc = subprocess.Popen(self.args, stdout=self.out, stderr=self.err)
        self._wait(self.port)
        if mqtt:
            self._wait(self.mqtt_port)
        self.ca = os.path.join(self.dir, "tls", "ca.pem")
        self.connection_string = self.host = self.policy = self.key = self.scope = None
        # A data directory that dpsd did not fill (its TLS files given elsewhere) has no
        # identity files: calls that need them fail on the None.
        cs = os.path.join(self.dir, "connection-string")
        if os.path.exists(cs):
            with open(cs) as f:
                self.connection_string = f.read().strip()
            parts = dict(p.split("=", 1) for p in self.connection_string.split(";"))
            self.host, self.policy, self.key = (parts["HostName"], parts["SharedAccessKeyName"],
                                                parts["SharedAccessKey"])
        scope = os.path.join(self.dir, "id-scope")
        if os.path.exists(scope):
            with open(scope) as f:
                self.scope = f.read().strip()

    def _wait(self, port):
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("dpsd %s exited with %d: %s" %
                                     (self.name, self.proc.returncode, self.log()[-2000:]))
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        raise AssertionError("dpsd %s did not listen on port %d" % (self.name, port))

    def log(self):
        """What dpsd wrote to stderr so far."""
        self.err.flush()
        with open(self.err.name) as f:
            return f.read()

    def stdout(self):
        """What dpsd wrote to stdout so far."""
        self.out.flush()
        with open(self.out.name) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM):
        """Sends sig (unless dpsd has exited) and returns the exit status, or None when
        dpsd had to be killed after 30 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def context(self, cert=None):
        """A TLS client context trusting dpsd's CA, with cert = (chain, key) if given."""
        ctx = ssl.create_default_context(cafile=self.ca)
        if cert:
            ctx.load_cert_chain(cert[0], cert[1])
        return ctx

    def conn(self, host="localhost", timeout=10):
        return http.client.HTTPSConnection(host, self.port, context=self.context(),
                                           timeout=timeout)

    def raw(self):
        """A TLS socket to dpsd, for requests written by hand."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        return self.context().wrap_socket(sock, server_hostname="localhost")

    def call(self, method, path, body=None, cert=None, headers=None, timeout=60):
        """One request on a new connection; a dict or list body is sent as JSON."""
        conn = http.client.HTTPSConnection("localhost", self.port, context=self.context(cert),
                                           timeout=timeout)
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

    def metrics(self):
        """GET /metrics as {name with its labels: value}."""
        r = self.call("GET", "/metrics")
        assert r.status == 200, r
        return {name: int(value) for name, value in
                (line.rsplit(" ", 1) for line in r.raw.decode().splitlines()
                 if line and not line.startswith("#"))}

    def token(self, key=None, policy=None):
        """A service token for dpsd's owner policy, or for policy signed with key."""
        return sas(self.host, key or self.key, skn=policy or self.policy)

    def service(self, method, path, body=None, headers=None, token=None, policy=None, key=None):
        """A service API call, with token or one made by token(key, policy)."""
        h = {"Authorization": token or self.token(key, policy)}
        h.update(headers or {})
        sep = "&" if "?" in path else "?"
        return self.call(method, path + sep + SERVICE_API, body, headers=h)

    def device_token(self, rid, key=None, group_key=None, se=None):
        """A device's SAS token for rid signed with its key, or with the key that
        group_key derives for it (then naming the policy 'registration')."""
        if group_key:
            return sas("%s/registrations/%s" % (self.scope, rid), derive(group_key, rid), se,
                       "registration")
        return sas("%s/registrations/%s" % (self.scope, rid), key, se)

    def register(self, rid, cert=None, token=None, body=None, scope=None):
        """A device registration over HTTPS with a client certificate or a token."""
        headers = {"Authorization": token} if token else {}
        if body is None:
            body = {"registrationId": rid}
        return self.call("PUT", "/%s/registrations/%s/register?%s" % (scope or self.scope, rid,
                                                                      DEVICE_API),
                         body, cert=cert, headers=headers)

    def attempts(self, rid):
        """The registration attempts recorded for rid, newest first."""
        r = self.service("GET", "/registrations/%s/attempts" % rid)
        assert r.status == 200, r
        return r.json

    def last_attempt(self, rid):
        a = self.attempts(rid)
        return a[0] if a else None

    def dpsctl_env(self):
        """dpsctl's environment for this dpsd: connection string, CA file, address."""
        return dict(os.environ, DPS_CONNECTION_STRING=self.connection_string,
                    DPS_CA_FILE=self.ca, DPS_CONNECT_TO="127.0.0.1:%d" % self.port)

    def dpsctl(self, *args, check=True):
        """Runs dpsctl in the PKI directory against this dpsd; check asserts exit 0."""
        p = subprocess.run([DPSCTL] + list(args), cwd=self.pki, env=self.dpsctl_env(),
                           capture_output=True, text=True, timeout=120)
        if check and p.returncode != 0:
            raise AssertionError("dpsctl %s: exit %d: %s%s" % (" ".join(args), p.returncode,
                                                                p.stdout, p.stderr))
        return p

    def cert(self, *args):
        """Runs dpsctl cert in the PKI directory, asserting exit 0."""
        p = subprocess.run([DPSCTL, "cert"] + list(args), cwd=self.pki, capture_output=True,
                           text=True)
        assert p.returncode == 0, (args, p.stderr)

    def path(self, name):
        return os.path.join(self.pki, name)

    def read(self, name):
        with open(self.path(name)) as f:
            return f.read()

    def device(self, name, ca, rid=None, *extra):
        """A device certificate for rid (default name) under ca: (chain, key) paths."""
        self.cert("create-device", "--ca", ca, "--registration-id", rid or name, "--out", name,
                  *extra)
        return (self.path(name + ".chain.pem"), self.path(name + ".key"))

    def openssl_device(self, name, cn, ca):
        """A device certificate for CN cn under ca made with the openssl CLI (dpsctl
        refuses an upper-case id): (chain, key) paths."""
        key, csr, pem = (self.path(name + ext) for ext in (".key", ".csr", ".pem"))
        ext = self.path(name + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=clientAuth\n")

        def openssl(*a):
            subprocess.run(["openssl"] + list(a), check=True, capture_output=True)
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
        openssl("req", "-new", "-key", key, "-subj", "/CN=" + cn, "-out", csr)
        openssl("x509", "-req", "-in", csr, "-CA", self.path(ca + ".pem"), "-CAkey",
                self.path(ca + ".key"), "-days", "30", "-extfile", ext, "-out", pem)
        chain = self.path(name + ".chain.pem")
        with open(chain, "w") as f:
            f.write(self.read(name + ".pem") + self.read(ca + ".chain.pem"))
        return (chain, key)

    def x509_group(self, gid, pem, status="enabled"):
        """Writes an X.509 enrollment group with pem as its primary signing certificate."""
        r = self.service("PUT", "/enrollmentGroups/" + gid, {
            "enrollmentGroupId": gid, "provisioningStatus": status,
            "attestation": {"type": "x509", "x509": {"signingCertificates": {
                "primary": {"certificate": pem}}}}})
        assert r.status == 200, r
        return r.json


def start_together(base, names, **kw):
    """One Dpsd(base, name, **kw) per name, all started at the same moment (a thread
    each), as the nodes of one service that come up together. Returns them in the order
    of names; when one fails to start, stops the others and raises its error."""
    nodes, errors = [None] * len(names), []
    go = threading.Barrier(len(names))

    def start(i):
        go.wait()
        try:
            nodes[i] = Dpsd(base, names[i], **kw)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(len(names))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        for d in nodes:
            if d:
                d.stop()
        raise errors[0]
    return nodes


def check_started_together(base, names, store, hubs):
    """Starts one node per name on store at the same moment (start_together), checks that
    all took one ID scope and one owner key, and that the store holds that key (each node's
    own connection string is authorised: 404 for a group that does not exist, not 401),
    and stops them."""
    nodes = start_together(base, names, store=store, hubs=hubs)
    try:
        assert len({d.scope for d in nodes}) == 1, [d.scope for d in nodes]
        assert len({d.key for d in nodes}) == 1, [d.key for d in nodes]
        for d in nodes:
            status, body = d.service("GET", "/enrollmentGroups/none")
            assert status == 404, (d.name, status, body)
    finally:
        for d in nodes:
            d.stop()


def error_of(r, status, *words):
    """Asserts that r is an error in the Azure shape with status and words in its message."""
    assert r.status == status, r
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    assert r.json and r.json["errorCode"] // 1000 == status, r.json
    assert r.json.get("trackingId") and r.json.get("timestampUtc"), r.json
    assert "message" in r.json, r.json
    for w in words:
        assert w in r.json["message"], (w, r.json)


class Runner:
    """Runs test functions, counting and printing each outcome."""

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
        sys.stdout.flush()

    def run_all(self, tests):
        """Runs tests in order, or only those named on the command line."""
        only = sys.argv[1:]
        for fn in tests:
            if not only or fn.__name__ in only:
                self.run(fn)

    def fail(self, what):
        self.failed += 1
        print("FAIL %s" % what)

    def finish(self, *servers, base=None):
        """Stops each server (None is skipped), counting an exit status other than 0
        as a failure, prints `N passed, N failed`, removes base when all passed and
        returns the exit code: 1 on a failure or when no test ran."""
        for d in servers:
            if d is None:
                continue
            rc = d.stop()
            if rc != 0:
                self.fail("dpsd %s exited with %s on SIGTERM" % (d.name, rc))
        print("%d passed, %d failed" % (self.passed, self.failed))
        if base and not self.failed:
            shutil.rmtree(base, ignore_errors=True)
        return 1 if self.failed or not self.passed else 0
