"""TLS session resumption after STARTTLS: rawmail serve issues stateless
tickets (TLS 1.2, RFC 5077; TLS 1.3, one NewSessionTicket, RFC 8446 §4.6.1)
and accepts them back, so a returning client skips the certificate and
its signature.  The ticket keys belong to the server's TLS context: a
reload or a restart makes new ones, and old tickets then fall back to a
full handshake, never to a failure.

The client is Python's ssl (OpenSSL underneath) with the `session=`
argument of wrap_socket."""

import signal
import ssl
import time

import pytest

from helpers import client_tls_context

VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def expect(r, code):
    assert r.code == code, r


def tls_context(version):
    ctx = client_tls_context()
    ctx.minimum_version = ctx.maximum_version = VERSIONS[version]
    return ctx


def starttls_session(srv, ctx, session=None):
    """One connection: EHLO, STARTTLS offering `session`, EHLO, QUIT.
    Returns (resumed, the session to offer next time, negotiated version)."""
    c = srv.session()
    expect(c.cmd("STARTTLS"), 220)
    c.sock.settimeout(c.timeout)
    c.sock = ctx.wrap_socket(c.sock, server_hostname=None, session=session)
    c.tls = True
    # Reading a reply also reads TLS 1.3's NewSessionTicket, which comes
    # after the handshake.
    expect(c.cmd("EHLO client.test"), 250)
    resumed, new, version = c.sock.session_reused, c.sock.session, c.sock.version()
    expect(c.cmd("QUIT"), 221)
    # close_notify first: OpenSSL marks the session of an SSL freed without
    # it as not resumable.
    try:
        c.sock.unwrap()
    except (ssl.SSLError, OSError):
        pass
    c.close()
    return resumed, new, version


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_session_resumed(server, version):
    ctx = tls_context(version)
    resumed, sess, got = starttls_session(server, ctx)
    assert got == f"TLSv{version}", got
    assert not resumed, "the first handshake cannot be a resumption"
    assert sess is not None and sess.has_ticket, \
        f"no session ticket issued in TLS {version}: resumption is off"
    # TLS 1.3 tickets are used once by OpenSSL's client; each resumption
    # brings a new one, so a client can go on resuming.
    for i in range(3):
        resumed, sess, _ = starttls_session(server, ctx, session=sess)
        assert resumed, f"TLS {version}: handshake {i + 2} was not resumed"
        assert sess is not None and sess.has_ticket


def test_tls13_one_ticket(server):
    """One ticket per full TLS 1.3 handshake, not OpenSSL's default two:
    counted with the message callback of the client."""
    ctx = tls_context("1.3")
    tickets = []

    def on_message(conn, direction, version, content_type, msg_type, data):
        if direction == "read" and msg_type == ssl._TLSMessageType.NEWSESSION_TICKET:
            tickets.append(len(data))

    ctx._msg_callback = on_message
    resumed, sess, _ = starttls_session(server, ctx)
    assert not resumed and sess.has_ticket
    assert len(tickets) == 1, f"{len(tickets)} NewSessionTicket messages"


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_ticket_of_another_server_falls_back(start_server, version):
    """Another server (its own ticket keys) cannot read the ticket: a full
    handshake, and the session works."""
    a, b = start_server(), start_server()
    ctx = tls_context(version)
    _, sess, _ = starttls_session(a, ctx)
    resumed, new, _ = starttls_session(b, ctx, session=sess)
    assert not resumed
    assert new is not None and new.has_ticket


def test_reload_makes_new_ticket_keys(server):
    """After SIGHUP the new smtp process has a new TLS context: a ticket
    from before is refused (full handshake, no error), and tickets issued
    after the reload resume."""
    ctx = tls_context("1.2")
    _, old, _ = starttls_session(server, ctx)
    assert starttls_session(server, ctx, session=old)[0], "no resumption before the reload"
    server.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "event=reloaded" not in server.log():
        assert time.monotonic() < deadline, f"no reload logged:\n{server.log()}"
        time.sleep(0.05)
    resumed, new, _ = starttls_session(server, ctx, session=old)
    assert not resumed, "a ticket from before the reload was accepted"
    assert starttls_session(server, ctx, session=new)[0], "no resumption after the reload"
