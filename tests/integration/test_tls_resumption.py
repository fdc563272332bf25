#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A client that offers a session from an earlier connection (as browsers do
on every new connection) gets a full handshake, not a refused one: dpsd asks
for a client certificate, and OpenSSL refuses to resume a session when a
server that verifies peers has no session id context. Resumption is off, so
each connection presents its whole certificate chain for X.509 attestation."""
import os
import socket
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Dpsd, Runner, scratch  # noqa: E402

BASE = scratch("test_tls_resumption")
d = Dpsd(BASE)


def healthz(ctx, session=None, cert=None):
    """GET /healthz on a new connection offering session; returns (status, the
    connection's session, whether it was resumed)."""
    sock = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    s = ctx.wrap_socket(sock, server_hostname="localhost", session=session)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        # TLS 1.3 tickets arrive after the handshake: read before taking the session.
        return int(data.split(b" ", 2)[1]), s.session, s.session_reused
    finally:
        s.close()


def check_offered_session(version):
    ctx = d.context()
    ctx.minimum_version = ctx.maximum_version = version
    status, session, _ = healthz(ctx)
    assert status == 200
    for _ in range(3):
        status, _, reused = healthz(ctx, session=session)
        assert status == 200, status
        assert not reused, "a session is never resumed"


def test_tls13_offered_ticket_gets_a_full_handshake():
    check_offered_session(ssl.TLSVersion.TLSv1_3)


def test_tls12_offered_session_gets_a_full_handshake():
    check_offered_session(ssl.TLSVersion.TLSv1_2)


def test_device_offering_a_session_presents_its_certificate_again():
    # A device that kept the session of its last connection still gets a full handshake,
    # so attestation sees the certificate chain it sends on this connection.
    d.cert("create-root", "--subject", "CN=Resumption Root", "--out", d.path("root"))
    chain, key = d.device("res-dev-1", "root")
    ctx = d.context(cert=(chain, key))
    status, session, _ = healthz(ctx)
    assert status == 200
    status, _, reused = healthz(ctx, session=session)
    assert status == 200 and not reused


if __name__ == "__main__":
    runner = Runner()
    runner.run_all([test_tls13_offered_ticket_gets_a_full_handshake,
                    test_tls12_offered_session_gets_a_full_handshake,
                    test_device_offering_a_session_presents_its_certificate_again])
    sys.exit(runner.finish(d, base=BASE))
