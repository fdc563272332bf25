#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""dpsd started for real on loopback: TLS health check, the data directory
contract (contents, modes, restart keeps identity), keep-alive, limits and
error shapes, graceful SIGTERM with a request in flight, and start-up
failures (port in use, unknown flag, bad config line, corrupt directory)."""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DPSD, Dpsd, Runner, free_port, scratch  # noqa: E402

BASE = scratch("test_server")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")


def start(name, data_dir=None, extra=(), port=None):
    """dpsd as a user starts it: its default host name, no linked hub."""
    return Dpsd(BASE, name, data_dir=data_dir, port=port, hostname=None, hubs=(),
                extra=["--shutdown-timeout", "10", *extra])


def run_fail(args):
    """Runs dpsd expecting a start-up failure; returns (code, stderr)."""
    p = subprocess.run([DPSD, *args], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stderr


class Reader:
    """Reads HTTP responses from a raw socket, keeping bytes of the next one."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed before a complete response")
        self.buf += chunk

    def response(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        n = int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body


def read_response(sock):
    """Reads one HTTP response from a raw socket: (status, headers, body)."""
    return Reader(sock).response()


def check_error_shape(body, status):
    e = json.loads(body)
    assert set(e) == {"errorCode", "trackingId", "message", "timestampUtc"}, e
    assert e["errorCode"] // 1000 == status, e
    assert UUID.match(e["trackingId"]), e
    assert TS.match(e["timestampUtc"]), e
    assert e["message"], e


main = None


def test_first_start_and_health():
    global main
    main = start("main")
    c = main.conn()
    c.request("GET", "/healthz")
    r = c.getresponse()
    body = r.read()
    assert r.status == 200, r.status
    assert r.getheader("Content-Type") == "application/json; charset=utf-8"
    assert int(r.getheader("Content-Length")) == len(body)
    h = json.loads(body)
    assert h["status"] == "ok" and isinstance(h["version"], str)
    assert isinstance(h["uptimeSeconds"], int) and h["uptimeSeconds"] >= 0
    # The IP SAN verifies too.
    c2 = http.client.HTTPSConnection("127.0.0.1", main.port, context=main.context(), timeout=10)
    c2.request("GET", "/healthz")
    assert c2.getresponse().status == 200


def test_data_dir_contents():
    d = main.dir
    scope = open(os.path.join(d, "id-scope")).read().strip()
    assert re.match(r"^0ne[0-9A-F]{8}$", scope), scope
    cs = open(os.path.join(d, "connection-string")).read().strip()
    m = re.match(r"^HostName=localhost;SharedAccessKeyName=provisioningserviceowner;"
                 r"SharedAccessKey=([A-Za-z0-9+/]{43}=)$", cs)
    assert m, cs
    import base64
    assert len(base64.b64decode(m.group(1))) == 32
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    for name, mode in (("connection-string", 0o600), ("tls/server.key", 0o600),
                       ("tls/ca.key", 0o600), ("dpsd.db", 0o600)):
        got = stat.S_IMODE(os.stat(os.path.join(d, name)).st_mode)
        assert got == mode, (name, oct(got))
    for name in ("tls/ca.pem", "tls/server.pem", "dpsd.db"):
        assert os.path.getsize(os.path.join(d, name)) > 0, name
    assert not os.path.exists(os.path.join(d, ".init-tmp"))
    out = main.stdout()
    assert scope in out and cs in out, out
    # The key is printed on standard output only, never logged; the endpoints are logged.
    log = main.log()
    assert m.group(1) not in log
    assert "https://127.0.0.1:%d" % main.port in log, log
    assert "TLS root for clients: %s" % os.path.join(d, "tls", "ca.pem") in log, log


def test_store_private_in_open_dir():
    """The store holds every key: private even in a data directory others may read."""
    d = os.path.join(BASE, "open")
    os.makedirs(d, mode=0o755)
    os.chmod(d, 0o755)
    p = start("open", data_dir=d)
    try:
        c = p.conn()
        c.request("GET", "/healthz")
        assert c.getresponse().status == 200
        for name in os.listdir(d):
            if name.startswith("dpsd.db"):
                got = stat.S_IMODE(os.stat(os.path.join(d, name)).st_mode)
                assert got == 0o600, (name, oct(got))
    finally:
        assert p.stop() == 0
    # A store left readable by others (an older dpsd, a copy) is made private on start.
    db = os.path.join(d, "dpsd.db")
    os.chmod(db, 0o644)
    p = start("open2", data_dir=d)
    try:
        assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
        assert "was readable by others" in p.log(), p.log()
    finally:
        assert p.stop() == 0


def test_keep_alive():
    c = main.conn()
    c.request("GET", "/healthz")
    r = c.getresponse()
    r.read()
    sock = c.sock
    assert r.status == 200
    c.request("GET", "/healthz?api-version=2021-10-01")
    r = c.getresponse()
    r.read()
    assert r.status == 200 and c.sock is sock, "second request used a new connection"


def strict_tls(d):
    """A TLS socket to d that reports a close without close_notify as SSLEOFError."""
    sock = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    return d.context().wrap_socket(sock, server_hostname="localhost",
                                   suppress_ragged_eofs=False)


def read_to_clean_close(s):
    """Reads until the peer's close_notify; fails on an end of stream without it."""
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk
    except ssl.SSLEOFError as e:
        raise AssertionError("closed without close_notify after %r: %s" % (data[:80], e))


def test_close_notify():
    # Connection: close: the reply, then close_notify.
    s = strict_tls(main)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    data = read_to_clean_close(s)
    s.close()
    assert data.startswith(b"HTTP/1.1 200 ") and b"Connection: close\r\n" in data, data
    # HTTP/1.0 without keep-alive closes the same way.
    s = strict_tls(main)
    s.sendall(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
    assert read_to_clean_close(s).startswith(b"HTTP/1.1 200 ")
    s.close()
    # The idle timeout and a graceful shutdown close a keep-alive connection alike.
    d = start("close-notify", extra=["--idle-timeout", "1"])
    try:
        s = strict_tls(d)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, headers, _ = Reader(s).response()
        assert status == 200 and headers.get("connection") != "close", headers
        t0 = time.monotonic()
        assert read_to_clean_close(s) == b""
        assert time.monotonic() - t0 < 5
        s.close()
        s = strict_tls(d)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert Reader(s).response()[0] == 200
        d.proc.send_signal(signal.SIGTERM)
        assert read_to_clean_close(s) == b""
        s.close()
    finally:
        assert d.stop() == 0


def test_get_with_body_and_pipelining():
    s = main.raw()
    req = (b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
           b"Content-Length: 2\r\n\r\n{}")
    s.sendall(req + req)
    reader = Reader(s)
    for _ in range(2):
        status, headers, body = reader.response()
        assert status == 200, status
        assert json.loads(body)["status"] == "ok"
    s.close()


def test_expect_continue():
    s = main.raw()
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
              b"Content-Length: 2\r\n\r\n")
    reader = Reader(s)
    assert reader.response()[0] == 100
    s.sendall(b"{}")
    assert reader.response()[0] == 200
    s.close()


def test_not_found_and_method():
    c = main.conn()
    c.request("GET", "/no/such/thing?api-version=2019-03-31")
    r = c.getresponse()
    body = r.read()
    assert r.status == 404
    assert r.getheader("Content-Type") == "application/json; charset=utf-8"
    check_error_shape(body, 404)
    c.request("DELETE", "/HEALTHZ")
    r = c.getresponse()
    body = r.read()
    assert r.status == 405, r.status
    check_error_shape(body, 405)


def test_oversized_body():
    s = main.raw()
    s.sendall(b"PUT /enrollments/x HTTP/1.1\r\nHost: localhost\r\n"
              b"Content-Length: 200000\r\n\r\n")
    status, headers, body = read_response(s)
    assert status == 413, status
    check_error_shape(body, 413)
    assert json.loads(body)["errorCode"] == 413000
    s.close()
    # A chunked body over the limit too.
    s = main.raw()
    chunk = b"x" * 50000
    try:
        s.sendall(b"POST /a HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(3):
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    except OSError:
        pass
    status, headers, body = read_response(s)
    assert status == 413, status
    s.close()


def test_malformed_request():
    s = main.raw()
    s.sendall(b"THIS IS NOT HTTP\r\n\r\n")
    status, headers, body = read_response(s)
    assert status == 400, status
    check_error_shape(body, 400)
    assert headers.get("connection") == "close"
    s.close()
    s = main.raw()
    s.sendall(b"GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_response(s)[0] == 400
    s.close()
    # Plain text on the TLS port, and a client that hangs up mid-handshake.
    p = socket.create_connection(("127.0.0.1", main.port), timeout=10)
    p.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
    try:
        p.recv(100)
    except OSError:
        pass
    p.close()
    socket.create_connection(("127.0.0.1", main.port), timeout=10).close()
    c = main.conn()
    c.request("GET", "/healthz")
    assert c.getresponse().status == 200


def test_secrets_not_logged():
    c = main.conn()
    c.request("GET", "/no-such-route?api-version=1&sig=TOPSECRETSIG",
              headers={"Authorization": "SharedAccessSignature sr=x&sig=TOPSECRETAUTH"},
              body=b'{"key":"TOPSECRETBODY"}')
    c.getresponse().read()
    time.sleep(0.2)
    log = main.log()
    assert "access GET /no-such-route 404" in log, log
    assert "TOPSECRET" not in log, log


def test_restart_keeps_identity():
    files = ["id-scope", "connection-string", "tls/ca.pem", "tls/server.pem", "tls/server.key"]
    before = {f: open(os.path.join(main.dir, f), "rb").read() for f in files}
    assert main.stop() == 0
    again = start("main", data_dir=main.dir, port=main.port)
    try:
        after = {f: open(os.path.join(main.dir, f), "rb").read() for f in files}
        assert before == after
        c = again.conn()
        c.request("GET", "/healthz")
        assert c.getresponse().status == 200
        assert before["connection-string"].decode().strip() in again.stdout()
    finally:
        assert again.stop() == 0


def test_missing_parents_created():
    # As `make run` in a fresh checkout: --data-dir var/dev where var/ does not exist yet.
    d = os.path.join(BASE, "fresh-checkout", "var", "dev")
    nested = start("nested", data_dir=d)
    try:
        assert os.path.exists(os.path.join(d, "connection-string"))
        for p in (d, os.path.dirname(d)):
            assert stat.S_IMODE(os.stat(p).st_mode) == 0o700, p
    finally:
        assert nested.stop() == 0


def test_sigterm_finishes_request_in_flight():
    d = start("drain")
    s = d.raw()
    idle = d.raw()  # an idle keep-alive connection is closed at once
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n{\"a\"")
    time.sleep(0.3)
    d.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert d.proc.poll() is None, "dpsd exited with a request in flight"
    assert idle.recv(10) == b""
    # New connections are refused once draining.
    try:
        socket.create_connection(("127.0.0.1", d.port), timeout=2).close()
        refused = False
    except OSError:
        refused = True
    assert refused, "still accepting connections after SIGTERM"
    s.sendall(b":  1}\r\n")
    status, headers, body = read_response(s)
    assert status == 200, status
    assert headers.get("connection") == "close"
    assert d.proc.wait(timeout=15) == 0
    assert "SIGTERM received" in d.log()


def test_sigint_exits_zero():
    d = start("sigint")
    assert d.stop(signal.SIGINT) == 0


def test_signal_right_after_start_stops_cleanly():
    # A stop signal as soon as the port answers (start-up still going on, no worker
    # waiting for signals yet) still ends in an orderly stop with status 0: never the
    # signal's default action, never a signal caught by some other thread and lost.
    data = os.path.join(BASE, "early-signal")
    for i in range(12):
        port = free_port()
        p = subprocess.Popen([DPSD, "--data-dir", data, "--https-listen", "127.0.0.1:%d" % port,
                              "--mqtt-listen", "127.0.0.1:0"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 30
            while time.time() < deadline and p.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.002)
            p.send_signal(signal.SIGINT if i % 2 else signal.SIGTERM)
            assert p.wait(timeout=20) == 0, (i, p.returncode)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_port_in_use():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        code, err = run_fail(["--data-dir", os.path.join(BASE, "busy"),
                              "--https-listen", "127.0.0.1:%d" % port])
    assert code != 0
    assert "cannot listen on '127.0.0.1:%d'" % port in err and "in use" in err, err


def test_address_claimed_by_another_process():
    # A dpsd that has probed an address holds an abstract unix socket named after it
    # until it exits; another dpsd that got past its own probe at the same moment finds
    # the claim and refuses to share the port through SO_REUSEPORT.
    port = free_port()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as claim:
        claim.bind("\0dpsd/tcp/[127.0.0.1]:%d" % port)
        code, err = run_fail(["--data-dir", os.path.join(BASE, "claimed"),
                              "--https-listen", "127.0.0.1:%d" % port])
    assert code != 0
    assert ("cannot listen on '127.0.0.1:%d': another dpsd is starting on it" % port) in err, err
    # once the claim is gone, the address is served
    d = start("claimed", data_dir=os.path.join(BASE, "claimed"), port=port)
    try:
        with open("/proc/net/unix") as f:
            assert "@dpsd/tcp/[127.0.0.1]:%d\n" % port in f.read()
    finally:
        d.stop()


def test_same_port_started_together():
    # Four dpsd started at the same moment on one port: one serves it, the others exit.
    port = free_port()
    procs = []
    try:
        for i in range(4):
            procs.append(subprocess.Popen(
                [DPSD, "--data-dir", os.path.join(BASE, "together-%d" % i),
                 "--https-listen", "127.0.0.1:%d" % port, "--mqtt-listen", "127.0.0.1:0"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        deadline = time.time() + 20
        while time.time() < deadline and sum(p.poll() is not None for p in procs) < 3:
            time.sleep(0.05)
        time.sleep(0.5)  # a second survivor would have bound by now
        alive = [p for p in procs if p.poll() is None]
        assert len(alive) == 1, [p.returncode for p in procs]
        for p in procs:
            if p is not alive[0]:
                err = p.stderr.read()
                assert "cannot listen on '127.0.0.1:%d'" % port in err, err
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
            p.wait(timeout=30)
            p.stderr.close()


def test_unknown_flag():
    code, err = run_fail(["--data-dir", os.path.join(BASE, "x"), "--frobnicate", "1"])
    assert code != 0
    assert "unknown option '--frobnicate'" in err, err
    assert not os.path.exists(os.path.join(BASE, "x"))


def test_bad_config_line():
    conf = os.path.join(BASE, "bad.conf")
    with open(conf, "w") as f:
        f.write("data-dir %s\nworkers lots\n" % os.path.join(BASE, "y"))
    code, err = run_fail(["--config", conf])
    assert code != 0
    assert "%s:2: 'workers': expected an integer" % conf in err, err
    assert not os.path.exists(os.path.join(BASE, "y"))


def test_corrupt_data_dir():
    d = os.path.join(BASE, "corrupt")
    shutil.copytree(main.dir, d)
    with open(os.path.join(d, "id-scope"), "w") as f:
        f.write("not a scope\n")
    code, err = run_fail(["--data-dir", d, "--https-listen", "127.0.0.1:%d" % free_port()])
    assert code != 0 and "id-scope' is corrupt" in err, err
    # A directory that holds something else is not taken over.
    d = os.path.join(BASE, "foreign")
    os.makedirs(d)
    open(os.path.join(d, "notes.txt"), "w").close()
    code, err = run_fail(["--data-dir", d, "--https-listen", "127.0.0.1:%d" % free_port()])
    assert code != 0 and "not a dpsd data directory" in err, err
    assert os.listdir(d) == ["notes.txt"]
    # A missing store is not silently recreated; a garbage one is named.
    d = os.path.join(BASE, "nostore")
    shutil.copytree(main.dir, d)
    os.unlink(os.path.join(d, "dpsd.db"))
    code, err = run_fail(["--data-dir", d, "--https-listen", "127.0.0.1:%d" % free_port()])
    assert code != 0 and "dpsd.db' is missing" in err, err
    assert not os.path.exists(os.path.join(d, "dpsd.db"))
    with open(os.path.join(d, "dpsd.db"), "wb") as f:
        f.write(b"this is not a database" * 100)
    code, err = run_fail(["--data-dir", d, "--https-listen", "127.0.0.1:%d" % free_port()])
    assert code != 0 and "dpsd.db" in err, err
    # A missing key is named.
    d = os.path.join(BASE, "nokey")
    shutil.copytree(main.dir, d)
    os.unlink(os.path.join(d, "tls", "server.key"))
    code, err = run_fail(["--data-dir", d, "--https-listen", "127.0.0.1:%d" % free_port()])
    assert code != 0 and "server.key" in err, err
    # An unreadable piece is named, and nothing is redone over it.
    d = os.path.join(BASE, "unreadable")
    shutil.copytree(main.dir, d)
    os.unlink(os.path.join(d, "connection-string"))
    os.mkdir(os.path.join(d, "connection-string"))
    code, err = run_fail(["--data-dir", d, "--https-listen", "127.0.0.1:%d" % free_port()])
    assert code != 0 and "is unreadable" in err and "connection-string" in err, err
    assert os.listdir(os.path.join(d, "connection-string")) == []
    # A directory dpsd's user may not read (only checkable as root, through another user).
    if os.geteuid() == 0 and shutil.which("runuser"):
        p = subprocess.run(["runuser", "-u", "nobody", "--", DPSD, "--data-dir", main.dir,
                            "--https-listen", "127.0.0.1:%d" % free_port()],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode != 0, p.stderr
        assert "data directory '%s': Permission denied" % main.dir in p.stderr, p.stderr


def test_interrupted_init_is_redone():
    d = os.path.join(BASE, "interrupted")
    os.makedirs(os.path.join(d, ".init-tmp", "tls"))
    os.makedirs(os.path.join(d, "tls"))
    open(os.path.join(d, "tls", "ca.pem"), "w").write("half")
    open(os.path.join(d, "connection-string"), "w").write("half")
    p = start("interrupted", data_dir=d)
    try:
        assert re.match(r"^0ne[0-9A-F]{8}$", open(os.path.join(d, "id-scope")).read().strip())
        assert "half" not in open(os.path.join(d, "connection-string")).read()
        c = p.conn()
        c.request("GET", "/healthz")
        assert c.getresponse().status == 200
    finally:
        assert p.stop() == 0


def test_tls_override_and_json_log():
    other = os.path.join(BASE, "override")
    p = start("override", data_dir=other,
             extra=["--tls-cert", os.path.join(main.dir, "tls", "server.pem"),
                    "--tls-key", os.path.join(main.dir, "tls", "server.key"),
                    "--log-format", "json"])
    try:
        ctx = ssl.create_default_context(cafile=os.path.join(main.dir, "tls", "ca.pem"))
        c = http.client.HTTPSConnection("localhost", p.port, context=ctx, timeout=10)
        c.request("GET", "/healthz")
        assert c.getresponse().status == 200
        time.sleep(0.2)
        lines = [json.loads(l) for l in p.log().splitlines() if l.strip()]
        assert any(l.get("kind") == "access" and l.get("status") == 200 for l in lines), lines
    finally:
        assert p.stop() == 0


def test_help():
    p = subprocess.run([DPSD, "--help"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0
    for word in ("--data-dir", "--hostname", "--https-listen", "--mqtt-listen", "--linked-hub",
                 "--store", "--workers", "--config", "--tls-cert", "--tls-key", "--log-format",
                 "--log-level", "--idle-timeout", "--max-connections-per-worker", "--max-body",
                 "--shutdown-timeout", "DPSD_DATA_DIR"):
        assert word in p.stdout, word


def main_():
    run = Runner()
    try:
        run.run_all([test_first_start_and_health, test_data_dir_contents, test_keep_alive,
                     test_close_notify, test_get_with_body_and_pipelining, test_expect_continue,
                     test_not_found_and_method, test_oversized_body, test_malformed_request,
                     test_secrets_not_logged, test_restart_keeps_identity,
                     test_missing_parents_created, test_sigterm_finishes_request_in_flight, test_sigint_exits_zero,
                     test_signal_right_after_start_stops_cleanly,
                     test_port_in_use, test_address_claimed_by_another_process,
                     test_same_port_started_together, test_unknown_flag, test_bad_config_line,
                     test_corrupt_data_dir, test_interrupted_init_is_redone,
                     test_tls_override_and_json_log, test_help,
                     test_store_private_in_open_dir])
    finally:
        rc = run.finish(main, base=BASE)
    return rc


if __name__ == "__main__":
    sys.exit(main_())
