#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Nothing acknowledged is lost, nothing is half written: dpsd is killed
with SIGKILL while devices register at once over HTTPS, MQTT and MQTT over
WebSocket (dpsctl register, one process a registration, several threads a
transport), then started again on the same data directory. Every device
that was told "assigned" must find its record with the operation, hub and
device id it was told, and exactly one successful attempt with that
operation in its history. A device whose answer the kill swallowed must
have either nothing at all or both its record and its attempt (they are
one transaction). Twice over, so that the second start recovers a store
that a kill left behind too; on the embedded SQLite store (whose integrity
check must pass at the end) and on a PostgreSQL server the test starts
(tests/pg.sh)."""
import base64
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DPSCTL, Dpsd, Runner, pg, scratch  # noqa: E402

BASE = scratch("test_crash")
GROUP_KEY = base64.b64encode(b"c" * 32).decode()
TRANSPORTS = ("https", "mqtt", "mqtt-ws")
THREADS_PER_TRANSPORT = 3
ACKS_BEFORE_KILL = 45  # acknowledged registrations, over all transports, before the kill
KILL_DEADLINE_S = 120
COMMIT_DELAY_US = 20000


class Load:
    """Threads registering new devices through dpsctl until told to stop or dpsd
    goes away. acked: {rid: the answer's JSON}; tried: every rid sent."""

    def __init__(self, d, tag):
        self.d, self.tag = d, tag
        self.lock = threading.Lock()
        self.acked, self.tried, self.failures = {}, [], []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(t, i), daemon=True)
                        for t in TRANSPORTS for i in range(THREADS_PER_TRANSPORT)]

    def start(self):
        for t in self.threads:
            t.start()

    def _register(self, transport, rid):
        port = self.d.mqtt_port if transport == "mqtt" else self.d.port
        return subprocess.run(
            [DPSCTL, "register", "--transport", transport, "--id-scope", self.d.scope,
             "--registration-id", rid, "--global-endpoint", "localhost",
             "--connect-to", "127.0.0.1:%d" % port, "--ca-file", self.d.ca, "--timeout", "20",
             "--group-key", GROUP_KEY, "--json"],
            capture_output=True, text=True, timeout=120)

    def _run(self, transport, i):
        n = 0
        while not self.stopping.is_set():
            rid = "crash-%s-%s-%d-%d" % (self.tag, transport, i, n)
            n += 1
            with self.lock:
                self.tried.append(rid)
            p = self._register(transport, rid)
            answer = None
            if p.returncode == 0:
                try:
                    answer = json.loads(p.stdout)
                except ValueError:
                    pass
            if not answer or answer.get("status") != "assigned":
                with self.lock:
                    self.failures.append((rid, p.returncode, (p.stdout + p.stderr)[-300:]))
                if self.d.proc.poll() is not None:
                    return  # killed: this one's answer never came
                continue
            with self.lock:
                self.acked[rid] = answer

    def kill_when_loaded(self):
        """SIGKILLs dpsd once ACKS_BEFORE_KILL registrations were acknowledged, then
        waits for the threads. Returns the number acknowledged at the kill."""
        deadline = time.time() + KILL_DEADLINE_S
        while time.time() < deadline:
            with self.lock:
                n = len(self.acked)
                failures = list(self.failures)
            assert not failures, "registrations failed before the kill: %r" % failures[:3]
            if n >= ACKS_BEFORE_KILL:
                break
            time.sleep(0.02)
        else:
            raise AssertionError("only %d registrations acknowledged in %d s" %
                                 (len(self.acked), KILL_DEADLINE_S))
        self.d.proc.send_signal(signal.SIGKILL)
        self.d.proc.wait()
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=150)
            assert not t.is_alive(), "a registration thread hangs after the kill"
        return n


def records_of(d, rid):
    """(the registration record or None, the attempts of rid)."""
    r = d.service("GET", "/registrations/" + rid)
    assert r.status in (200, 404), r
    return (r.json if r.status == 200 else None), d.attempts(rid)


def check_after_restart(d, load):
    """Every acknowledged registration is whole and as told; every other one tried is
    whole or absent. Returns (acknowledged, unacknowledged but written)."""
    written = 0
    for rid in load.tried:
        rec, attempts = records_of(d, rid)
        told = load.acked.get(rid)
        if told is None and rec is None:
            assert attempts == [], (rid, "an attempt without its record", attempts)
            continue
        assert rec is not None, (rid, "acknowledged as %s, but no record after the restart"
                                 % told["operationId"])
        ok = [a for a in attempts if a["success"]]
        assert len(ok) == 1 and len(attempts) == 1, (rid, "record without its one attempt",
                                                     attempts)
        assert rec["status"] == "assigned", rec
        assert rec["operationId"] == ok[0]["operationId"], (rec, ok[0])
        if told is None:
            written += 1  # committed, its answer lost with the process: allowed
            continue
        state = told["registrationState"]
        assert rec["operationId"] == told["operationId"], (rid, rec, told)
        assert rec["assignedHub"] == state["assignedHub"], (rid, rec, state)
        assert rec["deviceId"] == state["deviceId"], (rid, rec, state)
    return len(load.acked), written


def start(name, data_dir=None, port=None, store=None):
    # A long commit delay holds each batch open for a while: an answer sent before
    # its batch is durable would be caught by the kill nearly every time.
    return Dpsd(BASE, name, data_dir=data_dir, port=port, store=store, mqtt=True,
                extra=("--commit-delay", str(COMMIT_DELAY_US)))


def kill_twice(prefix, store=None):
    """Two kill cycles on one store; returns the last dpsd, started again and running."""
    d = start(prefix + "-1", store=store)
    try:
        r = d.service("PUT", "/enrollmentGroups/crash-group", {
            "enrollmentGroupId": "crash-group",
            "attestation": {"type": "symmetricKey", "symmetricKey": {
                "primaryKey": GROUP_KEY, "secondaryKey": GROUP_KEY}}})
        assert r.status in (200, 201), r
        loads = []
        for cycle in (1, 2):
            load = Load(d, "%s%d" % (prefix, cycle))
            load.start()
            at_kill = load.kill_when_loaded()
            d = start("%s-%d" % (prefix, cycle + 1), data_dir=d.dir, port=d.port, store=store)
            acked, written = check_after_restart(d, load)
            # No acknowledged registration of an earlier cycle is lost either.
            for earlier in loads:
                check_after_restart(d, earlier)
            loads.append(load)
            print("  %s cycle %d: %d acknowledged at the kill, %d in all, %d tried, %d written "
                  "but not acknowledged" % (prefix, cycle, at_kill, acked, len(load.tried),
                                            written))
        # The restarted node still registers.
        p = Load(d, prefix)._register("mqtt", "crash-%s-after" % prefix)
        assert p.returncode == 0 and json.loads(p.stdout)["status"] == "assigned", p
        return d
    except BaseException:
        d.stop(signal.SIGKILL)
        raise


def test_sqlite():
    d = kill_twice("sqlite")
    assert d.stop() == 0
    db = sqlite3.connect(os.path.join(d.dir, "dpsd.db"))
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        db.close()


def test_postgres():
    pg_dir = os.path.join(BASE, "pg")
    started = pg("start", pg_dir, str(os.getpid()))
    assert started.returncode == 0, ("the PostgreSQL test server did not start (run 'make "
                                     "deps' to install the server binaries)", started.stderr)
    try:
        d = kill_twice("postgres", store="postgres:" + started.stdout.strip())
        assert d.stop() == 0
    finally:
        pg("stop", pg_dir)


def main():
    # The PostgreSQL server runs as the postgres user when the test runs as root.
    os.chmod(BASE, 0o711)
    runner = Runner()
    runner.run_all([test_sqlite, test_postgres])
    return runner.finish(base=BASE)


if __name__ == "__main__":
    sys.exit(main())
