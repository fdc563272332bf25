#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Keeps the benchmark tools of `make bench` from rotting unnoticed: runs
dpsbench for about two seconds in each mode against a real dpsd, the
baseline bench/tlsserver and the two protocol floors (tlsserver --answer
https|mqtt) on free loopback ports, and checks each run had no error,
counted some attempts, found every acknowledged registration in the store
(but for the floors, which store nothing), and printed the lines
bench/run.sh and bench/report.py read; then feeds those lines to report.py
and checks what it made of them, floors kept apart from dpsd's targets. It
builds nothing and measures nothing: the figures are not compared with
anything."""
import os
import json
import re
import signal
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Dpsd, Runner, free_port, scratch  # noqa: E402

BUILD = os.environ["DPS_BUILD_DIR"]
SOURCE = os.environ["DPS_SOURCE_DIR"]
DPSBENCH = os.path.join(BUILD, "bench", "dpsbench")
TLSSERVER = os.path.join(BUILD, "bench", "tlsserver")
BASE = scratch("test_bench_smoke")
PKI = os.path.join(BASE, "pki")
SECONDS = "2"
# Small: the devices are made (keys, certificates, SAS tokens) before each run.
SIZE = ["--clients", "4", "--devices", "40", "--duration", SECONDS, "--warmup", "0.5"]

raw = []  # the lines run.sh would collect, for report.py
results = {}  # label: the parsed result line of each run checked with check_run()
# what each floor must have counted when it stops: at least these answers, exactly these refusals
floor_expect = {"https": {"answered": 0, "malformed": 0}, "mqtt": {"answered": 0, "malformed": 0}}


def wait_port(port, proc, what):
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError("%s exited with %d" % (what, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("%s does not listen on port %d" % (what, port))


def kv(line):
    return {m.group(1): m.group(2) for m in re.finditer(r'(\w+)=("[^"]*"|\S+)', line)}


class TlsServer:
    """bench/tlsserver on a free port with dpsd's TLS files, answering as told."""

    def __init__(self, data, answer):
        self.answer, self.port, self.proc = answer, free_port(), None
        self.err_path = os.path.join(BASE, "tlsserver-%s.err" % answer)
        with open(self.err_path, "a") as err:
            self.proc = subprocess.Popen(
                [TLSSERVER, "--listen", "127.0.0.1:%d" % self.port,
                 "--cert", os.path.join(data, "tls", "server.pem"),
                 "--key", os.path.join(data, "tls", "server.key"),
                 "--trust", os.path.join(PKI, "inter.pem"), "--workers", "2",
                 "--answer", answer],
                stdout=subprocess.DEVNULL, stderr=err)
        wait_port(self.port, self.proc, "tlsserver --answer %s" % answer)

    def stop(self):
        """Stops it; returns its exit status (1 when it had to be killed) and its
        counters (the last line it printed, parsed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return 1, {}
        with open(self.err_path) as f:
            lines = f.read().splitlines()
        return self.proc.returncode, kv(lines[-1]) if lines else {}


class Servers:
    """dpsd (HTTPS and MQTT), the baseline tlsserver and the two protocol floors,
    all on dpsd's TLS files."""

    def __init__(self):
        self.dpsd = Dpsd(BASE, mqtt=True)
        self.data, self.port, self.mqtt_port = self.dpsd.dir, self.dpsd.port, self.dpsd.mqtt_port
        self.tls = []
        try:
            subprocess.run([DPSBENCH, "pki", "--pki", PKI], check=True, timeout=60)
            for answer in ("none", "https", "mqtt"):
                self.tls.append(TlsServer(self.data, answer))
        except BaseException:
            self.stop_tls()
            self.dpsd.stop()
            raise
        self.tls_port, self.floor_https_port, self.floor_mqtt_port = [t.port for t in self.tls]
        self.tls_pid, self.floor_https_pid, self.floor_mqtt_pid = [t.proc.pid for t in self.tls]

    def stop_tls(self):
        """Stops every tlsserver; returns {answer: (exit status, counters)}."""
        return {t.answer: t.stop() for t in self.tls}


def dpsbench(*args, rows_expected=True):
    """Runs dpsbench; returns its result lines (parsed) and its Markdown rows."""
    p = subprocess.run([DPSBENCH] + list(args), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, "dpsbench %s exited with %d: %s" % (args[0], p.returncode, p.stderr)
    lines = [l for l in p.stdout.splitlines() if l.startswith("dpsbench: ")]
    rows = [l for l in p.stdout.splitlines() if l.startswith("| ")]
    assert lines and (rows or not rows_expected), "dpsbench %s printed no result: %r" % (args[0], p.stdout)
    assert "first error" not in p.stderr, p.stderr
    raw.extend(p.stdout.splitlines())
    return [kv(l) for l in lines], rows, p.stderr


def check_run(mode, args, registration, server_pid, label=None):
    """One run: no error, some attempts, the CPU time of the server (server_pid) and
    of dpsbench sampled, and for a registration run against dpsd (registration
    true) every acknowledged device found in the store; otherwise no store check
    and n/a in the row's last cell."""
    label = label or "smoke %s" % mode
    (r,), (row,), _ = dpsbench(mode, *args, *SIZE, "--server-pid", str(server_pid),
                               "--label", label)
    results[label] = r
    assert r["mode"] == mode, r
    assert int(r["errors"]) == 0, r
    assert int(r["ok"]) > 0 and int(r["measured"]) > 0 and float(r["rate"]) > 0, r
    assert float(r["p50_ms"]) > 0 and float(r["p99_ms"]) >= float(r["p50_ms"]), r
    # Some CPU for each attempt on both sides (a registration takes more than a
    # few microseconds), and an idle share that is a share.
    assert float(r["server_cpu_ms"]) > 0 and float(r["client_cpu_ms"]) > 0, r
    assert 0 <= float(r["idle_pct"]) <= 100, r
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert len(cells) == 8 and cells[0] == label, row
    if registration:
        # every device used was acknowledged at least once, and found in the store
        assert int(r["checked"]) > 0 and int(r["lost"]) == 0, r
        assert cells[7] == "%s of %s" % (r["checked"], r["checked"]), row
    else:
        assert r["checked"] == "-1" and cells[7] == "n/a", (r, row)
    return r


def test_handshake():
    check_run("handshake", ["--connect", "127.0.0.1:%d" % S.tls_port, "--ca",
                            os.path.join(S.data, "tls", "ca.pem"), "--pki", PKI], False, S.tls_pid)


def test_handshake_server_auth():
    check_run("handshake-server-auth", ["--connect", "127.0.0.1:%d" % S.tls_port, "--ca",
                                        os.path.join(S.data, "tls", "ca.pem")], False, S.tls_pid)


def test_https_x509():
    check_run("x509", ["--connect", "127.0.0.1:%d" % S.port, "--data-dir", S.data,
                       "--pki", PKI], True, S.dpsd.proc.pid)


def test_https_symkey():
    check_run("symkey", ["--connect", "127.0.0.1:%d" % S.port, "--data-dir", S.data], True,
              S.dpsd.proc.pid)


def test_mqtt_x509():
    check_run("mqtt-x509", ["--connect", "127.0.0.1:%d" % S.mqtt_port, "--service",
                            "127.0.0.1:%d" % S.port, "--data-dir", S.data, "--pki", PKI], True,
              S.dpsd.proc.pid)


def test_mqtt_symkey():
    check_run("mqtt-symkey", ["--connect", "127.0.0.1:%d" % S.mqtt_port, "--service",
                              "127.0.0.1:%d" % S.port, "--data-dir", S.data], True,
              S.dpsd.proc.pid)


def test_https_floor():
    """symkey against tlsserver --answer https; dpsd only enrolls the group."""
    r = check_run("symkey", ["--connect", "127.0.0.1:%d" % S.floor_https_port, "--service",
                             "127.0.0.1:%d" % S.port, "--data-dir", S.data, "--no-check"], False,
                  S.floor_https_pid, "smoke https floor")
    floor_expect["https"]["answered"] += int(r["ok"])


def test_mqtt_floor():
    """mqtt-symkey against tlsserver --answer mqtt; dpsd only enrolls the group."""
    r = check_run("mqtt-symkey", ["--connect", "127.0.0.1:%d" % S.floor_mqtt_port, "--service",
                                  "127.0.0.1:%d" % S.port, "--data-dir", S.data, "--no-check"],
                  False, S.floor_mqtt_pid, "smoke mqtt floor")
    floor_expect["mqtt"]["answered"] += int(r["ok"])


def floor_exchange(port, data):
    """Sends data to a floor over TLS; returns all it answered before it closed."""
    ctx = ssl.create_default_context(cafile=os.path.join(S.data, "tls", "ca.pem"))
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                         server_hostname="localhost") as s:
        s.sendall(data)
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                return out
            out += b


def test_floor_answers_and_refusals():
    """The HTTPS floor answers a register request with dpsd's headers and the fixed
    body naming the id from the path, and closes without an answer on a request
    that is not one (counted as malformed when the floors stop); the MQTT floor
    closes on a first packet that is not CONNECT."""
    floor_expect["https"]["answered"] += 1
    ok = floor_exchange(S.floor_https_port,
                        b"PUT /0ne00000001/registrations/dev-1/register?api-version=2021-06-01 "
                        b"HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}")
    head, _, body = ok.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 200 OK", ok
    headers = dict(l.lower().split(": ", 1) for l in lines[1:])
    assert headers["content-type"] == "application/json; charset=utf-8", headers
    assert headers["connection"] == "close" and "x-ms-request-id" in headers, headers
    assert int(headers["content-length"]) == len(body), ok
    state = json.loads(body)
    assert state["status"] == "assigned" and state["operationId"], state
    assert state["registrationState"]["registrationId"] == "dev-1", state
    assert state["registrationState"]["deviceId"] == "dev-1", state
    floor_expect["https"]["malformed"] += 1
    assert floor_exchange(S.floor_https_port, b"GET / HTTP/1.1\r\n\r\n") == b""
    floor_expect["mqtt"]["malformed"] += 1
    assert floor_exchange(S.floor_mqtt_port, b"\xc0\x00") == b""  # PINGREQ before CONNECT


def test_cpu_only_over_a_measured_window():
    """A run of --count attempts has no measured window: no CPU figures."""
    (r,), _, _ = dpsbench("handshake-server-auth", "--connect", "127.0.0.1:%d" % S.tls_port,
                          "--ca", os.path.join(S.data, "tls", "ca.pem"), "--clients", "2",
                          "--count", "10", "--server-pid", str(S.tls_pid), "--label", "no window")
    raw[:] = [l for l in raw if "no window" not in l]  # not a run for the report
    assert int(r["ok"]) == 10 and r["server_cpu_ms"] == "-1.000" and r["idle_pct"] == "-1.0", r


def test_mqtt_needs_service_address():
    p = subprocess.run([DPSBENCH, "mqtt-symkey", "--connect", "127.0.0.1:%d" % S.mqtt_port,
                        "--data-dir", S.data], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "'--service' is required" in p.stderr, p


def test_service():
    results, rows, _ = dpsbench("service", "--connect", "127.0.0.1:%d" % S.port, "--data-dir",
                                S.data, "--clients", "2", "--duration", "1.5")
    assert [r["op"] for r in results] == ["create", "get", "query"], results
    for r in results:
        assert int(r["errors"]) == 0 and float(r["rate"]) > 0, r
    assert len(rows) == 3, rows


def test_query_page():
    results, _, _ = dpsbench("query-page", "--connect", "127.0.0.1:%d" % S.port, "--data-dir",
                             S.data, "--group", "bench-symkey", "--count", "3",
                             rows_expected=False)
    assert [(r["what"], r["skip_pages_of_1000"]) for r in results] == [
        ("enrollments", "0"), ("enrollments", "100"), ("registrations", "0")], results
    for r in results:
        assert int(r["pages"]) == 3 and float(r["p50_ms"]) > 0, r


def test_page_through():
    """Every enrollment in pages of 1000; a wrong expected count fails the run."""
    where = ["--connect", "127.0.0.1:%d" % S.port, "--data-dir", S.data]
    p = subprocess.run([DPSBENCH, "page-through", *where], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    n = int(kv(p.stdout.strip().splitlines()[-1])["items"])
    assert n > 0, n  # the service run created them
    (r,), _, _ = dpsbench("page-through", *where, "--count", str(n), rows_expected=False)
    assert int(r["items"]) == n and int(r["pages"]) == (n + 999) // 1000, r
    assert r["ordered"] == "yes" and float(r["p99_ms"]) >= float(r["p50_ms"]) > 0, r
    p = subprocess.run([DPSBENCH, "page-through", *where, "--count", str(n + 1)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "%d enrollments paged through, %d expected" % (n, n + 1) \
        in p.stderr, p.stderr


def test_report():
    """report.py reads what the runs printed and ends with the headline ratio."""
    path = os.path.join(BASE, "raw.txt")
    out = os.path.join(BASE, "RESULTS.md")
    with open(path, "w") as f:
        f.write("meta: date=2000-01-01T00:00:00Z seconds=%s clients=4 workers=2\n" % SECONDS)
        f.write("\n".join(raw) + "\n")
    p = subprocess.run([sys.executable, os.path.join(SOURCE, "bench", "report.py"), path, out],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    last = p.stdout.splitlines()[-1]
    assert re.fullmatch(r"ratio https_x509_registrations/mtls_handshakes = \d+\.\d\d", last), \
        p.stdout
    assert re.search(r"^ratio mqtt_x509_registrations/mtls_handshakes = \d+\.\d\d$", p.stdout,
                     re.M), p.stdout
    with open(out) as f:
        md = f.read()
    for want in ("| smoke mqtt-x509 |", "| smoke mqtt-symkey |", "| smoke x509 |",
                 "MQTT X.509 registrations ≥ 0.8 × mTLS handshake rate",
                 "no acknowledged registration lost", "| enrollment create |",
                 "| every individual enrollment over the API, pages of 1000"):
        assert want in md, "RESULTS.md lacks %r" % want
    assert "not available" not in md, md
    # the floors: rows of the main table, their own table, and in no target
    for label in ("smoke https floor", "smoke mqtt floor"):
        row = [l for l in md.splitlines() if l.startswith("| %s |" % label)]
        assert len(row) == 1 and row[0].rstrip().endswith("| n/a |"), row
    floors = md.split("## Protocol floors", 1)
    assert len(floors) == 2, md
    for what in ("HTTPS symmetric key", "MQTT symmetric key"):
        row = [l for l in floors[1].splitlines() if l.startswith("| %s (server-auth" % what)]
        assert len(row) == 1 and len(re.findall(r"= \d+\.\d\d", row[0])) == 3, row
    sym = float(results["smoke symkey"]["rate"])
    target = [l for l in md.splitlines() if l.startswith("| symmetric-key registrations")]
    assert len(target) == 1 and ("| %.1f / " % sym) in target[0], (sym, target)
    checked = sum(int(results["smoke %s" % m]["checked"])
                  for m in ("x509", "symkey", "mqtt-x509", "mqtt-symkey"))
    assert "| %d of %d acknowledged devices found" % (checked, checked) in md, md
    # CPU per attempt: a row for each kind of run, dpsd's and the floors' beside their
    # baseline's server CPU
    cpu = md.split("## CPU per attempt", 1)
    assert len(cpu) == 2, md
    rows = {l.split("|")[1].strip(): [c.strip() for c in l.strip().strip("|").split("|")]
            for l in cpu[1].splitlines() if l.startswith("| ") and "---" not in l}
    for what, label, base in (("HTTPS X.509 registration", "smoke x509", "smoke handshake"),
                              ("MQTT symmetric-key registration", "smoke mqtt-symkey",
                               "smoke handshake-server-auth"),
                              ("MQTT protocol floor, symmetric key", "smoke mqtt floor",
                               "smoke handshake-server-auth")):
        row = rows.get(what)
        assert row and float(row[1]) == round(float(results[label]["server_cpu_ms"]), 3), (
            what, row)
        want = float(results[base]["server_cpu_ms"]) / float(results[label]["server_cpu_ms"])
        assert abs(float(row[4]) - want) < 0.002, (what, row, want)


def test_ratio_places():
    """A ratio is shown to as many places as tell on which side of 0.8 it is."""
    sys.path.insert(0, os.path.join(SOURCE, "bench"))
    import report  # noqa: E402
    for v, shown in ((0.79966, "0.7997"), (0.8, "0.800"), (0.8034, "0.803"),
                     (0.79999991, "0.7999999"), (0.8123, "0.812"), (0.4, "0.400")):
        assert report.against(v) == shown, (v, report.against(v), shown)


def main():
    global S
    t0 = time.time()
    S = Servers()
    run = Runner()
    try:
        # in file order: test_report reads what the runs before it printed
        run.run_all([fn for name, fn in list(globals().items()) if name.startswith("test_")])
    finally:
        for answer, (rc, counters) in S.stop_tls().items():
            if rc != 0:
                run.fail("tlsserver --answer %s exit status %d" % (answer, rc))
            elif answer != "none" and (
                    int(counters.get("answered", -1)) < floor_expect[answer]["answered"]
                    or int(counters.get("malformed", -1)) != floor_expect[answer]["malformed"]
                    or not 0 <= int(counters.get("failed", -1)) <= 1):
                # the one connection without a handshake is wait_port()'s probe
                run.fail("tlsserver --answer %s counted %r, expected %r and no failure" % (
                    answer, counters, floor_expect[answer]))
        print("took %.1f s" % (time.time() - t0))
        rc = run.finish(S.dpsd)
    return rc


if __name__ == "__main__":
    sys.exit(main())
