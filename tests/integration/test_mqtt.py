#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The device API over MQTT against a real dpsd on loopback, with raw MQTT
3.1.1 packets over TLS (and over WebSocket on the HTTPS port): what the Node
SDK client never sends (QoS 0 publishes, an empty register payload,
"payload": null, keep-alive 0, CleanSession 0, a user name without
api-version), and what a broken or hostile client sends (malformed and
truncated packets, a packet over the size limit, a first packet other than
CONNECT, other subscription filters, QoS 2, unknown topics, a bad SAS, no
CONNECT at all), and every limit (packet size, topic length, connect
timeout, keep-alive x 1.5, requests outstanding, connections per worker).
dpsd must answer exactly as dps-protocol.md §5 says, close
only the offending connection and stay healthy after each."""
import base64
import hashlib
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import DPSCTL, DPSD, Dpsd, Runner, sas, scratch  # noqa: E402

BASE = scratch("test_mqtt")

D = None


# ---- MQTT 3.1.1, written by hand ----

def varint(n):
    out = b""
    while True:
        b, n = n % 128, n // 128
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def utf8(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">H", len(b)) + b


def packet(first, body):
    return bytes([first]) + varint(len(body)) + body


def connect(client_id, username=None, password=None, keep_alive=60, clean=True):
    flags = (0x02 if clean else 0) | (0x80 if username is not None else 0) | \
            (0x40 if password is not None else 0)
    body = utf8("MQTT") + bytes([4, flags]) + struct.pack(">H", keep_alive) + utf8(client_id)
    if username is not None:
        body += utf8(username)
    if password is not None:
        body += utf8(password)
    return packet(0x10, body)


def subscribe(pid, *filters, qos=1):
    return packet(0x82, struct.pack(">H", pid) + b"".join(utf8(f) + bytes([qos]) for f in filters))


def unsubscribe(pid, f):
    return packet(0xA2, struct.pack(">H", pid) + utf8(f))


def publish(topic, payload, qos=0, pid=1):
    body = utf8(topic) + (struct.pack(">H", pid) if qos else b"") + payload
    return packet(0x30 | (qos << 1), body)


def user(rid, scope=None):
    return "%s/registrations/%s/api-version=2019-03-31" % (scope or D.scope, rid)


REG = "$dps/registrations/PUT/iotdps-register/?$rid="
POLL = "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=%s&operationId=%s"
FILTER = "$dps/registrations/res/#"


class Client:
    """One TLS connection; read() returns (type, flags, body) or None on close."""

    def __init__(self, cert=None, timeout=15):
        ctx = ssl.create_default_context(cafile=D.ca)
        if cert:
            ctx.load_cert_chain(cert[0], cert[1])
        raw = socket.create_connection(("127.0.0.1", D.mqtt_port), timeout=timeout)
        self.s = ctx.wrap_socket(raw, server_hostname="localhost")
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def _fill(self, n):
        while len(self.buf) < n:
            try:
                chunk = self.s.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                chunk = b""
            if not chunk:
                return False
            self.buf += chunk
        return True

    def read(self):
        if not self._fill(2):
            return None
        i, n, mul = 1, 0, 1
        while True:
            if not self._fill(i + 1):
                return None
            b = self.buf[i]
            n += (b & 0x7F) * mul
            mul *= 128
            i += 1
            if not b & 0x80:
                break
        if not self._fill(i + n):
            return None
        first, body = self.buf[0], self.buf[i:i + n]
        self.buf = self.buf[i + n:]
        return first >> 4, first & 0xF, body

    def closed(self):
        """True when the server closes without sending anything more."""
        return self.read() is None

    def close(self):
        self.s.close()


def connack(c, code=0):
    p = c.read()
    assert p and p[0] == 2, p
    assert p[2] == bytes([0, code]), p


def response(c, qos_puback=True):
    """Reads until a response PUBLISH; PUBACKs it when QoS 1. Returns (topic, status, json)."""
    while True:
        p = c.read()
        assert p, "connection closed before a response"
        if p[0] != 3:
            continue
        t_len = struct.unpack(">H", p[2][:2])[0]
        topic = p[2][2:2 + t_len].decode()
        rest = p[2][2 + t_len:]
        qos = (p[1] >> 1) & 3
        if qos:
            pid, rest = rest[:2], rest[2:]
            if qos_puback:
                c.send(packet(0x40, pid))
        rest.decode("ascii")  # the payload is ASCII-safe JSON
        return topic, int(topic.split("/")[3]), json.loads(rest)


def session(rid, password=None, cert=None, keep_alive=60, clean=True):
    c = Client(cert)
    c.send(connect(rid, user(rid), password, keep_alive, clean))
    connack(c)
    c.send(subscribe(7, FILTER))
    p = c.read()
    assert p[0] == 9 and p[2] == b"\x00\x07\x01", p
    return c


def healthy():
    st, body = D.call("GET", "/healthz")
    assert st == 200, (st, body)
    # A fresh MQTT connection still gets its CONNACK.
    c = Client()
    c.send(connect("healthy-probe", user("healthy-probe")))
    connack(c)
    c.close()


def attempts(rid):
    st, body = D.service("GET", "/registrations/%s/attempts" % rid)
    assert st == 200, (st, body)
    return body


# ---- fixtures ----

SYM_KEY = base64.b64encode(b"k" * 32).decode()


def sym_individual(rid, status="enabled"):
    st, body = D.service("PUT", "/enrollments/" + rid, {
        "registrationId": rid, "provisioningStatus": status,
        "attestation": {"type": "symmetricKey", "symmetricKey": {
            "primaryKey": SYM_KEY, "secondaryKey": SYM_KEY}}})
    assert st in (200, 201), (st, body)


def token(rid, key=SYM_KEY, se=None):
    return sas("%s/registrations/%s" % (D.scope, rid), key, se=se)


# ---- tests ----

def test_register_qos1_and_poll():
    sym_individual("mq-dev-1")
    c = session("mq-dev-1", token("mq-dev-1"))
    c.send(publish(REG + "abc-123", json.dumps({"registrationId": "mq-dev-1"}).encode(), 1, 5))
    p = c.read()
    assert p[0] == 4 and p[2] == b"\x00\x05", p  # PUBACK first
    topic, status, body = response(c)
    assert topic == "$dps/registrations/res/200/?$rid=abc-123", topic
    assert body["status"] == "assigned" and body["operationId"], body
    st = body["registrationState"]
    assert st["assignedHub"] == "hub-a.example.net" and st["deviceId"] == "mq-dev-1", st
    # Poll at QoS 1 with the " " payload of Node and Python.
    c.send(publish(POLL % ("x%2Fy", body["operationId"]), b" ", 1, 6))
    assert c.read()[0] == 4
    topic, status, polled = response(c)
    assert topic == "$dps/registrations/res/200/?$rid=x%2Fy", topic
    assert polled["status"] == "assigned", polled
    c.send(unsubscribe(8, FILTER))
    p = c.read()
    assert p[0] == 11 and p[2] == b"\x00\x08", p
    c.send(b"\xc0\x00")  # PINGREQ
    assert c.read() == (13, 0, b"")
    c.send(b"\xe0\x00")  # DISCONNECT
    assert c.closed()
    a = attempts("mq-dev-1")
    assert a[0]["status"] == "assigned" and a[0]["success"] is True, a


def test_qos0_empty_payload_keepalive0_cleansession0():
    # Embedded C and the C SDK: CleanSession 0, keep-alive 0, empty body, QoS 0, $rid=1.
    sym_individual("mq-dev-2")
    c = session("mq-dev-2", token("mq-dev-2"), keep_alive=0, clean=False)
    c.send(publish(REG + "1", b"", 0))
    topic, status, body = response(c)
    assert status == 200 and topic.endswith("?$rid=1"), topic
    assert body["status"] == "assigned", body
    # Python's "payload": null, and third-party firmware without registrationId.
    c.send(publish(REG + "2", b'{"payload": null, "registrationId": "mq-dev-2"}', 0))
    assert response(c)[1] == 200
    c.send(publish(REG + "3", b'{"payload": {"fw": "\xc3\xa9"}}', 0))
    topic, status, body = response(c)
    assert status == 200, body
    # Whitespace only, and an empty $rid.
    c.send(publish(REG, b" \r\n", 0))
    topic, status, body = response(c)
    assert status == 200 and topic == "$dps/registrations/res/200/?$rid=", topic
    c.close()
    st, rec = D.service("GET", "/registrations/mq-dev-2")
    assert st == 200 and rec["status"] == "assigned", rec


def test_bad_body_gets_400_on_the_topic():
    sym_individual("mq-dev-3")
    c = session("mq-dev-3", token("mq-dev-3"))
    c.send(publish(REG + "9", b"{not json", 1, 1))
    assert c.read()[0] == 4
    topic, status, body = response(c)
    assert status == 400 and body["errorCode"] // 1000 == 400 and body["trackingId"], body
    c.send(publish(REG + "10", b'{"registrationId": "someone-else"}', 0))
    assert response(c)[1] == 400
    # Unknown operation: 404, still JSON.
    c.send(publish(POLL % ("11", "1.0.nope"), b"", 0))
    topic, status, body = response(c)
    assert status == 404 and body["errorCode"] == 404202, body
    c.close()
    healthy()


def test_bad_sas_refused_at_connect():
    sym_individual("mq-dev-4")
    for pw in ("not a token", token("mq-dev-4", key=base64.b64encode(b"w" * 32).decode()),
               token("mq-dev-4", se=time.time() - 3600)):
        c = Client()
        c.send(connect("mq-dev-4", user("mq-dev-4"), pw))
        connack(c, 5)
        assert c.closed()
    a = attempts("mq-dev-4")
    assert len(a) >= 2 and all(x["success"] is False for x in a), a
    assert "sig=" not in D.log()
    healthy()


def registration_metrics():
    """dpsd_registrations_total by outcome, from /metrics."""
    return {name.split('"')[1]: value for name, value in D.metrics().items()
            if name.startswith("dpsd_registrations_total{")}


def test_refusal_waits_for_its_attempt_and_registrations_are_counted():
    sym_individual("mq-dev-8")
    before = registration_metrics()
    # A refused CONNECT and a PINGREQ in one write: the CONNACK comes once the
    # refusal's attempt is written, and nothing after the CONNECT is read.
    bad = token("mq-dev-8", key=base64.b64encode(b"v" * 32).decode())
    c = Client()
    c.send(connect("mq-dev-8", user("mq-dev-8"), bad) + b"\xc0\x00")
    connack(c, 5)
    assert c.closed()
    a = attempts("mq-dev-8")
    assert len(a) == 1 and a[0]["success"] is False, a
    # An accepted CONNECT with SUBSCRIBE and PUBLISH in the same write.
    c = Client()
    c.send(connect("mq-dev-8", user("mq-dev-8"), token("mq-dev-8")) + subscribe(7, FILTER) +
           publish(REG + "m", json.dumps({"registrationId": "mq-dev-8"}).encode(), 0))
    connack(c)
    p = c.read()
    assert p[0] == 9 and p[2] == b"\x00\x07\x01", p
    topic, status, body = response(c)
    assert status == 200 and body["status"] == "assigned", body
    c.close()
    after = registration_metrics()
    assert after.get("unauthorized", 0) == before.get("unauthorized", 0) + 1, (before, after)
    assert after.get("assigned", 0) == before.get("assigned", 0) + 1, (before, after)
    healthy()


def test_no_credential_is_401_on_the_topic():
    sym_individual("mq-dev-5")
    c = session("mq-dev-5")
    c.send(publish(REG + "r", b"", 0))
    topic, status, body = response(c)
    assert status == 401 and body["errorCode"] == 401002, body
    c.close()


def test_x509_group():
    D.cert("create-root", "--subject", "CN=MQTT Test Root", "--out", "root")
    D.cert("create-intermediate", "--ca", "root", "--subject", "CN=MQTT Test Inter", "--out", "inter")
    with open(D.path("root.pem")) as f:
        pem = f.read()
    st, body = D.service("PUT", "/enrollmentGroups/mq-root", {
        "enrollmentGroupId": "mq-root",
        "attestation": {"type": "x509", "x509": {"signingCertificates": {
            "primary": {"certificate": pem}}}}})
    assert st in (200, 201), body
    D.cert("create-device", "--ca", "inter", "--registration-id", "mq-x509", "--out", "mq-x509")
    cert = (D.path("mq-x509.chain.pem"), D.path("mq-x509.key"))
    c = session("mq-x509", cert=cert)
    c.send(publish(REG + "u-1", b'{"registrationId":"mq-x509"}', 1, 1))
    assert c.read()[0] == 4
    topic, status, body = response(c)
    assert status == 200 and body["registrationState"]["x509"]["enrollmentGroupId"] == "mq-root", body
    c.close()


def test_connect_refusals():
    # The client id matches the registration id of the user name in any case.
    c = Client()
    c.send(connect("MQ-Dev-1", user("mq-dev-1")))
    connack(c)
    c.close()
    # Client id other than the registration id of the user name: 2.
    c = Client()
    c.send(connect("other", user("mq-dev-1")))
    connack(c, 2)
    assert c.closed()
    # No user name, or a user name that is no DPS user name: 4.
    for u in (None, "nonsense"):
        c = Client()
        c.send(connect("mq-dev-1", u))
        connack(c, 4)
        assert c.closed()
    # MQTT 5 (level 5): 1.
    c = Client()
    c.send(packet(0x10, utf8("MQTT") + bytes([5, 2]) + b"\x00\x3c" + utf8("mq-dev-1")))
    p = c.read()
    assert p and p[0] == 2 and p[2][1] == 1, p
    healthy()


def test_violations_close_only_that_connection():
    sym_individual("mq-dev-6")
    bystander = session("mq-dev-6", token("mq-dev-6"))
    cases = {
        "first packet not CONNECT": [subscribe(1, FILTER)],
        "malformed remaining length": [b"\x10\xff\xff\xff\xff\x01"],
        "bad protocol name": [packet(0x10, utf8("MQTX") + bytes([4, 2]) + b"\x00\x00" + utf8("a"))],
        "over the size limit": [packet(0x10, b"\x00" * (200 * 1024))],
    }
    for name, data in cases.items():
        c = Client()
        for d in data:
            try:
                c.send(d)
            except OSError:
                pass
        assert c.closed(), name
    after_connect = {
        "qos 2": publish(REG + "1", b"", 2, 3),
        "unknown topic": publish("devices/x/messages", b"", 0),
        "second connect": connect("mq-dev-6", user("mq-dev-6"), token("mq-dev-6")),
        "reserved flags": b"\x82\x00",
        "puback reserved type": b"\x00\x00",
    }
    for name, data in after_connect.items():
        c = session("mq-dev-6", token("mq-dev-6"))
        c.send(data)
        assert c.closed(), name
    # Truncated: half a PUBLISH, then the client goes away; dpsd must not care.
    c = session("mq-dev-6", token("mq-dev-6"))
    c.send(publish(REG + "1", b"{}", 0)[:7])
    c.close()
    # The bystander still works.
    bystander.send(publish(REG + "b", b"", 0))
    assert response(bystander)[1] == 200
    bystander.close()
    log = D.log()
    assert "the first packet is SUBSCRIBE" in log, log[-2000:]
    assert "QoS 2" in log and "no DPS request" in log, log[-2000:]
    healthy()


def test_limits_close_only_that_connection():
    # Each limit of issue 6 item 5 on a live connection: the offender is
    # closed and the log says why; a bystander keeps its session.
    sym_individual("mq-lim")
    bystander = session("mq-lim", token("mq-lim"))
    # A topic over 512 bytes.
    c = session("mq-lim", token("mq-lim"))
    c.send(publish(REG + "t" * 600, b"", 0))
    assert c.closed()
    assert "PUBLISH 'topic' is %d bytes, over the limit of 512" % (len(REG) + 600) in D.log(), D.log()[-2000:]
    # More than 8 requests outstanding: registrations are answered once
    # durable, so 20 in one write leave the ninth outstanding with eight.
    c = session("mq-lim", token("mq-lim"))
    c.send(b"".join(publish(REG + "f-%d" % i, b"", 1, i + 1) for i in range(20)))
    while c.read() is not None:
        pass
    assert "more than 8 requests outstanding" in D.log(), D.log()[-2000:]
    # Keep-alive 2 s: closed after 3 s (one and a half times) without a packet.
    c = session("mq-lim", token("mq-lim"), keep_alive=2)
    time.sleep(1.5)
    c.send(b"\xc0\x00")  # a PINGREQ restarts the clock
    assert c.read() == (13, 0, b"")
    t0 = time.time()
    assert c.closed()
    took = time.time() - t0
    assert 2.5 <= took <= 6, took
    assert "nothing received for 3 s (keep-alive)" in D.log(), D.log()[-2000:]
    bystander.send(publish(REG + "b", b"", 0))
    assert response(bystander)[1] == 200
    bystander.close()
    healthy()


def test_connections_per_worker():
    # One worker with room for two connections: a third is closed at once and
    # logged; the two keep working, and a place freed is taken again.
    d = Dpsd(BASE, name="dpsd-conns", mqtt=True,
             extra=["--workers", "1", "--max-connections-per-worker", "2"])
    try:
        ctx = ssl.create_default_context(cafile=d.ca)

        probe = connect("conn-probe", "%s/registrations/conn-probe/api-version=x" % d.scope)

        def served():
            """A TLS connection whose CONNECT got its CONNACK, or None when refused."""
            raw = socket.create_connection(("127.0.0.1", d.mqtt_port), timeout=10)
            try:
                s = ctx.wrap_socket(raw, server_hostname="localhost")
                s.sendall(probe)
                if s.recv(4) == b"\x20\x02\x00\x00":
                    return s
                s.close()
            except (ssl.SSLError, OSError):
                raw.close()
            return None

        def served_soon():
            # The start-up probes and closed connections leave once dpsd sees them go.
            deadline = time.time() + 10
            while time.time() < deadline:
                s = served()
                if s:
                    return s
                time.sleep(0.1)
            raise AssertionError("no connection served: " + d.log()[-2000:])

        first = served_soon()
        second = served_soon()
        assert served() is None, "a third connection was served"
        assert "connection refused: 2 connections open" in d.log(), d.log()[-2000:]
        # The two still work; once one leaves, its place is taken again.
        second.sendall(b"\xc0\x00")
        assert second.recv(2) == b"\xd0\x00"
        first.close()
        served_soon().close()
        second.close()
    finally:
        assert d.stop() == 0, d.log()[-2000:]


def test_other_filters_refused():
    sym_individual("mq-dev-7")
    c = Client()
    c.send(connect("mq-dev-7", user("mq-dev-7"), token("mq-dev-7")))
    connack(c)
    c.send(subscribe(3, "devices/#", FILTER, qos=2))
    p = c.read()
    assert p[0] == 9 and p[2] == b"\x00\x03\x80\x01", p  # QoS 2 downgraded to 1
    c.close()


def test_connect_timeout():
    c = Client(timeout=30)
    t0 = time.time()
    assert c.closed()
    took = time.time() - t0
    assert 8 <= took <= 20, took
    assert "no CONNECT within" in D.log()
    healthy()


def test_websocket():
    sym_individual("mq-dev-ws")
    ctx = ssl.create_default_context(cafile=D.ca)
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", D.port), timeout=15),
                        server_hostname="localhost")
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /$iothub/websocket?iothub-no-client-cert=true HTTP/1.1\r\nHost: localhost\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: MQTT\r\n\r\n" % key).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    text = head.decode()
    assert text.startswith("HTTP/1.1 101"), text
    want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
                                         .encode()).digest()).decode()
    assert "Sec-WebSocket-Accept: %s\r\n" % want in text, text
    assert "Sec-WebSocket-Protocol: MQTT\r\n" in text, text

    def frame(data):
        mask = os.urandom(4)
        n = len(data)
        hdr = bytes([0x82]) + (bytes([0x80 | n]) if n < 126 else bytes([0xFE]) + struct.pack(">H", n))
        return hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))

    def read_msg():
        h = s.recv(2)
        n = h[1] & 0x7F
        if n == 126:
            n = struct.unpack(">H", s.recv(2))[0]
        data = b""
        while len(data) < n:
            data += s.recv(n - len(data))
        return h[0] & 0xF, data

    rid = "mq-dev-ws"
    # The CONNECT split across two frames: MQTT is a byte stream inside the messages.
    pkt = connect(rid, user(rid), token(rid))
    s.sendall(frame(pkt[:10]) + frame(pkt[10:]))
    op, data = read_msg()
    assert op == 2 and data == b"\x20\x02\x00\x00", (op, data)
    s.sendall(frame(publish(REG + "ws1", b"", 0)))
    op, data = read_msg()
    assert op == 2 and data[0] >> 4 == 3, data
    assert b"res/200/?$rid=ws1" in data and b'"assigned"' in data, data
    s.sendall(frame(b"\xe0\x00"))
    op, data = read_msg()
    assert op == 8, (op, data)  # a close frame follows the DISCONNECT
    s.close()
    # A wrong subprotocol is an HTTP error.
    st, body = D.call("GET", "/$iothub/websocket", headers={
        "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": key,
        "Sec-WebSocket-Version": "13", "Sec-WebSocket-Protocol": "amqp"})
    assert st == 400 and "mqtt" in body["message"], (st, body)
    healthy()


def test_peer_gone_before_the_answer():
    # The answer comes once the write is durable; a device that leaves first
    # still has its registration recorded, and dpsd frees the connection.
    sym_individual("mq-gone")
    c = session("mq-gone", token("mq-gone"))
    c.send(publish(REG + "g-1", b'{"registrationId":"mq-gone"}', 1, 1))
    c.close()
    deadline = time.time() + 10
    while not attempts("mq-gone") and time.time() < deadline:
        time.sleep(0.05)
    assert attempts("mq-gone")[0]["status"] == "assigned", attempts("mq-gone")
    # Many requests in a row, each answered in order of its $rid.
    c = session("mq-gone", token("mq-gone"))
    for i in range(5):
        c.send(publish(REG + "r-%d" % i, b'{"registrationId":"mq-gone"}', 1, i + 1))
    rids = set()
    for i in range(5):
        topic, status, body = response(c)
        assert status == 200 and body["status"] == "assigned", (status, body)
        rids.add(topic.split("$rid=")[1])
    assert rids == {"r-%d" % i for i in range(5)}, rids
    c.close()
    healthy()


def dpsctl_register(transport, rid, *cred):
    port = D.mqtt_port if transport == "mqtt" else D.port
    return subprocess.run([DPSCTL, "register", "--transport", transport, "--id-scope", D.scope,
                           "--registration-id", rid, "--global-endpoint", "localhost",
                           "--connect-to", "127.0.0.1:%d" % port, "--ca-file", D.ca,
                           "--timeout", "20", *cred],
                          capture_output=True, text=True, timeout=120)


def test_dpsctl_register_x509_over_mqtt_and_websocket():
    # Runs after test_x509_group: the group on the root and the intermediate exist.
    for transport in ("mqtt", "mqtt-ws"):
        rid = "mq-ctl-x509-" + transport
        D.cert("create-device", "--ca", "inter", "--registration-id", rid, "--out", rid)
        p = dpsctl_register(transport, rid, "--cert", D.path(rid + ".chain.pem"),
                            "--key", D.path(rid + ".key"))
        assert p.returncode == 0, (transport, p.stdout, p.stderr)
        assert "hub-a.example.net" in p.stdout and rid in p.stdout, p.stdout
        a = attempts(rid)
        assert a[0]["status"] == "assigned" and a[0]["attestationType"] == "x509", a[0]
        # The same device again: answered from its record, still over MQTT.
        p = dpsctl_register(transport, rid, "--cert", D.path(rid + ".chain.pem"),
                            "--key", D.path(rid + ".key"), "--json")
        assert p.returncode == 0 and json.loads(p.stdout)["status"] == "assigned", p


def test_dpsctl_register_symmetric_key_over_mqtt_and_websocket():
    for transport in ("mqtt", "mqtt-ws"):
        rid = "mq-ctl-sym-" + transport
        sym_individual(rid)
        p = dpsctl_register(transport, rid, "--symmetric-key", SYM_KEY,
                            "--payload", '{"fw":"1.0"}')
        assert p.returncode == 0, (transport, p.stdout, p.stderr)
        assert "hub-a.example.net" in p.stdout, p.stdout
        a = attempts(rid)
        assert a[0]["status"] == "assigned" and a[0]["attestationType"] == "symmetricKey", a[0]
        # A wrong key is refused at CONNECT: exit 4, the reason recorded.
        wrong = base64.b64encode(b"w" * 32).decode()
        p = dpsctl_register(transport, rid, "--symmetric-key", wrong)
        assert p.returncode == 4, (transport, p.returncode, p.stdout, p.stderr)
        assert "not authorized (CONNACK 5)" in p.stderr, p.stderr
        a = attempts(rid)
        assert a[0]["success"] is False and a[0]["status"] == "unauthorized", a[0]
    # Usage errors name the option.
    p = dpsctl_register("carrier-pigeon", "x", "--symmetric-key", SYM_KEY)
    assert p.returncode == 2 and "'--transport' 'carrier-pigeon'" in p.stderr, p.stderr
    healthy()


def test_busy_mqtt_port_is_a_startup_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        p = subprocess.run([DPSD, "--data-dir", os.path.join(BASE, "busy"), "--https-listen",
                            "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:%d" % port,
                            "--hostname", "localhost"],
                           capture_output=True, text=True, timeout=30)
    assert p.returncode != 0, p
    assert "'mqtt-listen': cannot listen on '127.0.0.1:%d'" % port in p.stderr, p.stderr
    assert "in use" in p.stderr, p.stderr


def test_log_holds_no_sas_token():
    # Last: after every CONNECT above (accepted, refused, malformed, a second
    # CONNECT, at debug level), no SAS token or its signature is in the log.
    log = D.log()
    assert "mqtt: closing the connection" in log and "connected (keep-alive" in log
    for secret in ("SharedAccessSignature", "sig=", "skn=", SYM_KEY):
        assert secret not in log, secret


def test_disconnect_sends_close_notify():
    """After DISCONNECT dpsd ends TLS with close_notify: a strict client reads a clean
    end of stream, not an unexpected EOF (an SSLEOFError with ragged EOFs reported)."""
    sym_individual("mq-close-1")
    c = session("mq-close-1", token("mq-close-1"))
    c.s.suppress_ragged_eofs = False
    c.send(b"\xe0\x00")  # DISCONNECT
    try:
        data = c.s.recv(16)
    except ssl.SSLEOFError as e:
        raise AssertionError("closed without close_notify: %s" % e)
    finally:
        c.close()
    assert data == b"", data


def main():
    global D
    D = Dpsd(BASE, mqtt=True, extra=["--log-level", "debug"])
    run = Runner()
    try:
        run.run_all([fn for name, fn in list(globals().items()) if name.startswith("test_")])
    finally:
        rc = run.finish(D)
    return rc


if __name__ == "__main__":
    sys.exit(main())
