#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Keeps the benchmark tools of `make bench` from rotting unnoticed: runs
dpsbench for about two seconds in each mode against a real dpsd and the
baseline bench/tlsserver on free loopback ports, and checks each run had no
error, counted some attempts, found every acknowledged registration in the
store, and printed the lines bench/run.sh and bench/report.py read; then
feeds those lines to report.py and checks its last line. It builds nothing
and measures nothing: the figures are not compared with anything."""
import os
import re
import signal
import socket
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


class Servers:
    """dpsd (HTTPS and MQTT) and the baseline tlsserver on its TLS files."""

    def __init__(self):
        self.dpsd = Dpsd(BASE, mqtt=True)
        self.data, self.port, self.mqtt_port = self.dpsd.dir, self.dpsd.port, self.dpsd.mqtt_port
        self.tls_port = free_port()
        self.tls = None
        try:
            subprocess.run([DPSBENCH, "pki", "--pki", PKI], check=True, timeout=60)
            self.tls_err = open(os.path.join(BASE, "tlsserver.err"), "a+")
            self.tls = subprocess.Popen(
                [TLSSERVER, "--listen", "127.0.0.1:%d" % self.tls_port,
                 "--cert", os.path.join(self.data, "tls", "server.pem"),
                 "--key", os.path.join(self.data, "tls", "server.key"),
                 "--trust", os.path.join(PKI, "inter.pem"), "--workers", "2"],
                stdout=subprocess.DEVNULL, stderr=self.tls_err)
            wait_port(self.tls_port, self.tls, "tlsserver")
        except BaseException:
            self.stop_tls()
            self.dpsd.stop()
            raise

    def stop_tls(self):
        """Stops tlsserver; returns its exit status (1 when it had to be killed)."""
        if not self.tls or self.tls.poll() is not None:
            return self.tls.returncode if self.tls else 0
        self.tls.send_signal(signal.SIGTERM)
        try:
            return self.tls.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.tls.kill()
            self.tls.wait()
            return 1


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


def check_run(mode, args, registration):
    (r,), (row,), _ = dpsbench(mode, *args, *SIZE, "--label", "smoke %s" % mode)
    assert r["mode"] == mode, r
    assert int(r["errors"]) == 0, r
    assert int(r["ok"]) > 0 and int(r["measured"]) > 0 and float(r["rate"]) > 0, r
    assert float(r["p50_ms"]) > 0 and float(r["p99_ms"]) >= float(r["p50_ms"]), r
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert len(cells) == 8 and cells[0] == "smoke %s" % mode, row
    if registration:
        # every device used was acknowledged at least once, and found in the store
        assert int(r["checked"]) > 0 and int(r["lost"]) == 0, r
        assert cells[7] == "%s of %s" % (r["checked"], r["checked"]), row
    else:
        assert r["checked"] == "-1" and cells[7] == "n/a", (r, row)
    return r


def test_handshake():
    check_run("handshake", ["--connect", "127.0.0.1:%d" % S.tls_port, "--ca",
                            os.path.join(S.data, "tls", "ca.pem"), "--pki", PKI], False)


def test_handshake_server_auth():
    check_run("handshake-server-auth", ["--connect", "127.0.0.1:%d" % S.tls_port, "--ca",
                                        os.path.join(S.data, "tls", "ca.pem")], False)


def test_https_x509():
    check_run("x509", ["--connect", "127.0.0.1:%d" % S.port, "--data-dir", S.data,
                       "--pki", PKI], True)


def test_https_symkey():
    check_run("symkey", ["--connect", "127.0.0.1:%d" % S.port, "--data-dir", S.data], True)


def test_mqtt_x509():
    check_run("mqtt-x509", ["--connect", "127.0.0.1:%d" % S.mqtt_port, "--service",
                            "127.0.0.1:%d" % S.port, "--data-dir", S.data, "--pki", PKI], True)


def test_mqtt_symkey():
    check_run("mqtt-symkey", ["--connect", "127.0.0.1:%d" % S.mqtt_port, "--service",
                              "127.0.0.1:%d" % S.port, "--data-dir", S.data], True)


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


def main():
    global S
    t0 = time.time()
    S = Servers()
    run = Runner()
    try:
        # in file order: test_report reads what the runs before it printed
        run.run_all([fn for name, fn in list(globals().items()) if name.startswith("test_")])
    finally:
        rc = S.stop_tls()
        if rc != 0:
            run.fail("tlsserver exit status %d" % rc)
        print("took %.1f s" % (time.time() - t0))
        rc = run.finish(S.dpsd)
    return rc


if __name__ == "__main__":
    sys.exit(main())
