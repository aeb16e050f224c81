"""Hostile and broken input: over-long lines, too many recipients, messages
over the size limit, NUL bytes, early talkers, SMTP smuggling with bare CR /
bare LF, unsafe local parts, dropped connections, garbage.  After each: no
partial file in any Maildir and the server still answers a new connection."""

import os
import random
import signal
import socket
import time

import pytest

from helpers import (
    ConnectionClosed, Delivered, SMTPConn, assert_no_mail, check_delivery, dot_stuff,
    mailbox_messages, mailboxes_with_mail, maildir_files, sample_message,
)

SENDER = "sender@client.test"


def expect(r, code, enhanced=None):
    assert r.code == code, f"expected {code} {enhanced or ''}, got {r}"
    if enhanced is not None:
        assert r.enhanced == enhanced, f"expected {code} {enhanced}, got {r}"
    return r


def open_transaction(server, rcpts=("user@example.test",), mail_args=""):
    c = server.session()
    expect(c.cmd(f"MAIL FROM:<{SENDER}>{mail_args}"), 250)
    for rcpt in rcpts:
        expect(c.cmd(f"RCPT TO:<{rcpt}>"), 250)
    return c


# --------------------------------------------------------------------------- long lines


def test_command_line_limit(server):
    c = server.session()
    # Well under the limit: accepted.
    expect(c.cmd("NOOP " + "x" * 1000), 250, "2.0.0")
    # Over 2048 octets: refused, and the rest of the line is not read as a command.
    r = c.cmd("NOOP " + "x" * 2100)
    expect(r, 500, "5.5.2")
    expect(c.cmd("NOOP"), 250, "2.0.0")
    assert_no_mail(server.mailroot)
    server.assert_alive()


@pytest.mark.parametrize("verb", ["NOOP ", "MAIL FROM:<", "RCPT TO:<", "EHLO "])
def test_64k_command_line(server, verb):
    c = open_transaction(server, rcpts=()) if verb == "RCPT TO:<" else server.session()
    line = verb.encode() + b"a" * 65536 + (b"@example.test>" if "<" in verb else b"")
    try:
        c.send(line + b"\r\n")
        r = c.read_reply()
        assert r.code in (500, 421), r
        if r.code == 500:
            assert r.enhanced == "5.5.2", r
        try:
            # Either still usable, or closed after a clear reply.
            r2 = c.cmd("NOOP")
            expect(r2, 250, "2.0.0")
        except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
            pass
    except (ConnectionResetError, BrokenPipeError):
        # Closed while we were still sending: it must have said why first.
        got = b"".join(d for who, d in c.transcript if who == "S")
        assert b"\r\n500 " in got or b"\r\n421 " in got, f"closed without a reply: {got!r}"
    assert_no_mail(server.mailroot)
    server.assert_alive()


def test_long_line_without_crlf_then_crlf(server):
    """A 64 KiB line sent in pieces with pauses is still refused as one line."""
    c = server.session()
    for _ in range(8):
        c.send(b"NOOP " + b"b" * 8192)
        time.sleep(0.02)
    try:
        c.send(b"\r\n")
        r = c.read_reply()
        assert r.code in (500, 421), r
        if r.code == 500:
            # Exactly one reply for the whole line, then the session works.
            assert c.pending_bytes(0.3) == b"", "more than one reply for one long line"
            expect(c.cmd("NOOP"), 250, "2.0.0")
    except (ConnectionResetError, BrokenPipeError, ConnectionClosed):
        pass
    server.assert_alive()


def test_very_long_text_line_stored_intact(server):
    c = open_transaction(server)
    expect(c.cmd("DATA"), 354)
    line = bytes(random.Random(1).choice(b"abcdefghijklmnopqrstuvwxyz0123456789 ")
                 for _ in range(100 * 1024))
    msg = b"Subject: long line\r\n\r\n" + line + b"\r\nafter\r\n"
    c.send(dot_stuff(msg) + b".\r\n")
    expect(c.read_reply(), 250)
    check_delivery(mailbox_messages(server.mailroot, "user", wait=2.0)[0], msg, SENDER,
                   "user@example.test")
    server.assert_alive()


# --------------------------------------------------------------------------- recipients


def test_too_many_recipients(start_server):
    # 101 new mailboxes from one address: past the default creation limit.
    srv = start_server("--max-recipients", "100", "--max-new-mailboxes-per-ip", "1000",
                       "--max-new-mailboxes", "1000")
    c = srv.session()
    rcpts = [f"u{i}@example.test" for i in range(101)]
    c.send(f"MAIL FROM:<{SENDER}>\r\n" + "".join(f"RCPT TO:<{r}>\r\n" for r in rcpts))
    rs = c.read_replies(102)
    expect(rs[0], 250)
    for r in rs[1:101]:
        expect(r, 250, "2.1.5")
    expect(rs[101], 452, "4.5.3")
    expect(c.cmd("DATA"), 354)
    msg = sample_message("hundred")
    c.send(dot_stuff(msg) + b".\r\n")
    expect(c.read_reply(), 250)
    boxes = mailboxes_with_mail(srv.mailroot)
    assert len(boxes) == 100 and "u100" not in boxes, boxes
    d = Delivered(mailbox_messages(srv.mailroot, "u42")[0])
    assert d.body == msg.replace(b"\r\n", b"\n")
    assert d.delivered_to == "u42@example.test"
    srv.assert_alive()


# --------------------------------------------------------------------------- size


def test_size_parameter_over_limit(start_server):
    srv = start_server("--max-message-size", "10000")
    c = srv.session()
    expect(c.cmd(f"MAIL FROM:<{SENDER}> SIZE=20000"), 552, "5.3.4")
    # Within the limit: fine.
    expect(c.cmd(f"MAIL FROM:<{SENDER}> SIZE=5000"), 250, "2.1.0")
    expect(c.cmd("QUIT"), 221)
    assert_no_mail(srv.mailroot)
    srv.assert_alive()


def test_message_over_limit_without_size(start_server):
    srv = start_server("--max-message-size", "10000")
    c = open_transaction(srv)
    expect(c.cmd("DATA"), 354)
    msg = b"Subject: big\r\n\r\n" + (b"y" * 76 + b"\r\n") * 400  # ~31 KB
    c.send(dot_stuff(msg) + b".\r\n")
    expect(c.read_reply(), 552, "5.3.4")
    # The session is in sync again: a small message goes through.
    small = sample_message("small")
    assert len(small) < 10000
    expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
    expect(c.cmd("RCPT TO:<other@example.test>"), 250)
    expect(c.cmd("DATA"), 354)
    c.send(dot_stuff(small) + b".\r\n")
    expect(c.read_reply(), 250)
    assert mailboxes_with_mail(srv.mailroot) == ["other"]
    files = maildir_files(srv.mailroot)
    assert len(files) == 1, f"partial or refused message left behind: {files}"
    srv.assert_alive()


def test_message_over_limit_lying_size(start_server):
    srv = start_server("--max-message-size", "10000")
    c = open_transaction(srv, mail_args=" SIZE=100")
    expect(c.cmd("DATA"), 354)
    c.send(b"Subject: big\r\n\r\n" + (b"z" * 998 + b"\r\n") * 30 + b".\r\n")
    expect(c.read_reply(), 552, "5.3.4")
    assert_no_mail(srv.mailroot)
    srv.assert_alive()


def test_bdat_over_limit(start_server):
    srv = start_server("--max-message-size", "10000")
    c = open_transaction(srv)
    chunk = b"w" * 8000
    replies = []
    try:
        for i in range(3):
            c.send(f"BDAT {len(chunk)}{' LAST' if i == 2 else ''}\r\n".encode() + chunk)
            replies.append(c.read_reply())
    except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
        pass
    assert any((r.code, r.enhanced) == (552, "5.3.4") for r in replies), replies
    assert not any(r.code == 250 for r in replies[1:]), replies
    assert_no_mail(srv.mailroot)
    srv.assert_alive()


# --------------------------------------------------------------------------- NUL, garbage


@pytest.mark.parametrize("line", [b"NOOP\x00", b"NO\x00OP", b"EHLO cli\x00ent.test",
                                  b"MAIL FROM:<a\x00b@client.test>", b"\x00"])
def test_nul_in_command(server, line):
    c = server.session()
    expect(c.cmd(line), 500, "5.5.2")
    expect(c.cmd("NOOP"), 250, "2.0.0")
    server.assert_alive()


def test_nul_in_rcpt(server):
    c = open_transaction(server, rcpts=())
    expect(c.cmd(b"RCPT TO:<us\x00er@example.test>"), 500, "5.5.2")
    # RFC 5321 §3.3: after all RCPTs failed, 503 or 554 "no valid recipients".
    r = c.cmd("DATA")
    assert r.code in (503, 554) and r.enhanced == "5.5.1", r
    assert_no_mail(server.mailroot)
    server.assert_alive()


def test_random_garbage(server):
    rnd = random.Random(20251103)
    c = server.session()
    for _ in range(20):
        junk = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300)))
        junk = junk.replace(b"\n", b" ").replace(b"\r", b" ")
        try:
            r = c.cmd(junk)
        except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
            break
        assert r.code // 100 in (4, 5), f"garbage {junk!r} -> {r}"
    assert_no_mail(server.mailroot)
    server.assert_alive()


# --------------------------------------------------------------------------- early talker


EARLY = (b"EHLO early.test\r\nMAIL FROM:<" + SENDER.encode() + b">\r\n"
         b"RCPT TO:<user@example.test>\r\nDATA\r\nSubject: early\r\n\r\nhi\r\n.\r\n"
         b"QUIT\r\n")


def early_talk(server, freeze):
    """Connect and send a whole transaction without waiting for the greeting.

    freeze: stop the server's process group (SIGSTOP) while we connect and
    send, so that the bytes are surely there before it accepts: without
    --greet-pause the server checks for early bytes only at connect."""
    if freeze:
        os.killpg(server.pgid, signal.SIGSTOP)
    try:
        s = socket.create_connection(server.addr, timeout=10)
        s.sendall(EARLY)
        time.sleep(0.1)
    finally:
        if freeze:
            os.killpg(server.pgid, signal.SIGCONT)
    got = b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not chunk:
            break
        got += chunk
    s.close()
    return got


def check_early_talker_refused(server, got):
    lines = got.split(b"\r\n")
    assert any(l[:3] in (b"554", b"421") for l in lines), f"early talker not refused: {got!r}"
    assert not any(l.startswith(b"354") for l in lines), f"early talker reached DATA: {got!r}"
    assert not any(l.startswith(b"250 ") and b"2.0.0" in l and i > 0
                   for i, l in enumerate(lines)), f"early talker got a 250: {got!r}"
    assert_no_mail(server.mailroot, settle=0.5)
    server.assert_alive()


def test_early_talker(server):
    """A client that sends before the greeting is refused; nothing stored."""
    check_early_talker_refused(server, early_talk(server, freeze=True))


def test_early_talker_greet_pause(start_server):
    srv = start_server("--greet-pause", "500")
    check_early_talker_refused(srv, early_talk(srv, freeze=False))


def test_early_talker_unfrozen(server):
    """The naive race: bytes sent right after connect.  Whatever the server
    saw first, it must not store the message *and* reply out of order."""
    got = early_talk(server, freeze=False)
    stored = maildir_files(server.mailroot)
    if stored:
        # Accepted as a (fast) ordinary client: then the replies are complete.
        assert got.startswith(b"220 "), got
        assert b"\r\n354 " in got and b"\r\n221 " in got, got
        server.assert_alive()
    else:
        check_early_talker_refused(server, got)


# --------------------------------------------------------------------------- SMTP smuggling

SMUGGLE_SEQUENCES = [b"\n.\n", b"\n.\r\n", b"\r.\r", b"\r\n.\r\r\n", b"\r\n.\n", b"\r\n.\r"]


def smuggling_payload(seq):
    return (b"Subject: innocent\r\n\r\nfirst part" + seq +
            b"MAIL FROM:<evil@other.test>\r\nRCPT TO:<victim@example.test>\r\nDATA\r\n"
            b"Subject: smuggled\r\n\r\nevil body\r\n.\r\n")


@pytest.mark.parametrize("seq", SMUGGLE_SEQUENCES, ids=lambda s: repr(s)[2:-1])
def test_smuggling_normalize(server, seq):
    c = open_transaction(server)
    expect(c.cmd("DATA"), 354)
    c.send(smuggling_payload(seq))
    expect(c.read_reply(), 250)
    # If the server had ended DATA at the smuggled sequence, the next replies
    # would be those of MAIL / RCPT / DATA / message; the next one must be QUIT's.
    r = c.cmd("QUIT")
    expect(r, 221, "2.0.0")
    assert c.read_until_closed(timeout=5) == b"", "replies after QUIT"
    time.sleep(0.2)
    assert mailboxes_with_mail(server.mailroot) == ["user"]
    msgs = mailbox_messages(server.mailroot, "user")
    assert len(msgs) == 1, msgs
    body = Delivered(msgs[0]).body
    assert b"MAIL FROM:<evil@other.test>" in body and b"evil body" in body, body
    assert b"\r" not in body, f"bare CR stored (normalize mode): {body!r}"
    server.assert_alive()


@pytest.mark.parametrize("seq", SMUGGLE_SEQUENCES, ids=lambda s: repr(s)[2:-1])
def test_smuggling_reject(start_server, seq):
    srv = start_server("--bare-newline", "reject")
    c = open_transaction(srv)
    expect(c.cmd("DATA"), 354)
    c.send(smuggling_payload(seq))
    expect(c.read_reply(), 550, "5.6.0")
    expect(c.cmd("QUIT"), 221, "2.0.0")
    assert c.read_until_closed(timeout=5) == b"", "replies after QUIT"
    assert_no_mail(srv.mailroot)
    srv.assert_alive()


def test_bare_newline_reject_accepts_clean_mail(start_server):
    srv = start_server("--bare-newline", "reject")
    c = open_transaction(srv)
    expect(c.cmd("DATA"), 354)
    msg = sample_message("clean")
    c.send(dot_stuff(msg) + b".\r\n")
    expect(c.read_reply(), 250)
    check_delivery(mailbox_messages(srv.mailroot, "user", wait=2.0)[0], msg, SENDER,
                   "user@example.test")
    srv.assert_alive()


def test_bare_lf_normalized_content(server):
    """Bare LF and bare CR in normalize mode become line ends; nothing else changes."""
    c = open_transaction(server)
    expect(c.cmd("DATA"), 354)
    c.send(b"Subject: bare\r\n\r\none\ntwo\rthree\r\nfour\r\n.\r\n")
    expect(c.read_reply(), 250)
    body = Delivered(mailbox_messages(server.mailroot, "user", wait=2.0)[0]).body
    assert b"\r" not in body, body
    # A bare LF is a line end; a bare CR becomes a line end (or is dropped).
    assert body.startswith(b"Subject: bare\n\none\ntwo"), body
    assert body.endswith(b"three\nfour\n"), body
    assert body in (b"Subject: bare\n\none\ntwo\nthree\nfour\n",
                    b"Subject: bare\n\none\ntwothree\nfour\n",
                    b"Subject: bare\n\none\ntwo three\nfour\n"), body
    server.assert_alive()


def test_bdat_bare_lf_reject(start_server):
    srv = start_server("--bare-newline", "reject")
    c = open_transaction(srv)
    chunk = b"Subject: x\r\n\r\nbare\nlf\r\n"
    replies = []
    c.send(f"BDAT {len(chunk)}\r\n".encode() + chunk)
    replies.append(c.read_reply())
    c.send(b"BDAT 0 LAST\r\n")
    replies.append(c.read_reply())
    assert any((r.code, r.enhanced) == (550, "5.6.0") for r in replies), replies
    assert replies[-1].code != 250, replies
    assert_no_mail(srv.mailroot)
    srv.assert_alive()


# --------------------------------------------------------------------------- local parts


@pytest.mark.parametrize("rcpt", [
    ".hidden@example.test",
    '".."@example.test',
    '"."@example.test',
    '"../escape"@example.test',
    '"a/b"@example.test',
    '"/etc"@example.test',
    '"a\\/b"@example.test',
    '"..\\/..\\/x"@example.test',
    '"a\\\x01b"@example.test',
    '"a\x7fb"@example.test',
    '"tab\\\tx"@example.test',
    '".cur"@example.test',
])
def test_unsafe_local_part(server, tmp_path, rcpt):
    before = set(os.listdir(tmp_path))
    c = open_transaction(server, rcpts=())
    r = c.cmd(("RCPT TO:<" + rcpt + ">").encode())
    assert r.code // 100 == 5, f"RCPT TO:<{rcpt!r}> -> {r}"
    if r.code == 553:
        assert r.enhanced == "5.1.3", r
    r = c.cmd("DATA")
    assert r.code in (503, 554), r
    assert_no_mail(server.mailroot)
    # Nothing created beside the mail root (a '..' that escaped it).
    after = set(os.listdir(tmp_path))
    assert after - before <= {"mail"}, after - before
    if server.mailroot.exists():
        names = os.listdir(server.mailroot)
        assert not any(n.startswith(".") and n not in (".", "..") and
                       os.path.isdir(server.mailroot / n / "new") for n in names), names
    server.assert_alive()


def test_local_part_too_long(server):
    c = open_transaction(server, rcpts=())
    r = c.cmd("RCPT TO:<" + "a" * 65 + "@example.test>")
    assert r.code // 100 == 5, r
    assert_no_mail(server.mailroot)
    server.assert_alive()


# --------------------------------------------------------------------------- dropped sessions


def test_connection_dropped_in_data(server):
    c = open_transaction(server)
    expect(c.cmd("DATA"), 354)
    c.send(b"Subject: cut\r\n\r\n" + b"half a message\r\n" * 1000)
    c.close()
    assert_no_mail(server.mailroot, settle=0.5)
    server.assert_alive()


def test_connection_dropped_in_bdat(server):
    c = open_transaction(server)
    c.send(b"BDAT 100000\r\n" + b"q" * 5000)
    c.close()
    assert_no_mail(server.mailroot, settle=0.5)
    server.assert_alive()


def test_connection_dropped_after_final_dot_unacknowledged(server):
    """Data complete, client vanishes before reading the reply: the message
    may be stored (a 250 is owed) but never half of it."""
    c = open_transaction(server)
    expect(c.cmd("DATA"), 354)
    msg = sample_message("vanish")
    c.send(dot_stuff(msg) + b".\r\n")
    c.sock.shutdown(socket.SHUT_RDWR)
    c.close()
    time.sleep(0.5)
    for m in mailbox_messages(server.mailroot, "user"):
        assert Delivered(m).body == msg.replace(b"\r\n", b"\n")
    server.assert_alive()


def test_many_connections_closed_at_once(server):
    # 40: under the default 50 per address, as the server may not have seen
    # the closes yet when the next connection arrives.
    conns = [SMTPConn(server.host, server.port) for _ in range(40)]
    for c in conns:
        c.close()
    server.assert_alive()


def test_large_message_dropped_midway_leaves_no_file(server):
    """Past 256 KiB the message is already being written to tmp/: a dropped
    connection must remove it."""
    c = open_transaction(server)
    expect(c.cmd("DATA"), 354)
    c.send(b"Subject: cut big\r\n\r\n" + (b"m" * 98 + b"\r\n") * 8000)   # 800 KB
    time.sleep(0.3)
    c.close()
    assert_no_mail(server.mailroot, settle=0.5)
    server.assert_alive()


def test_large_message_over_limit_leaves_no_file(start_server):
    srv = start_server("--max-message-size", "600000")
    c = open_transaction(srv)
    expect(c.cmd("DATA"), 354)
    c.send(b"Subject: too big\r\n\r\n" + (b"n" * 98 + b"\r\n") * 10000 + b".\r\n")  # 1 MB
    expect(c.read_reply(timeout=20), 552, "5.3.4")
    expect(c.cmd("NOOP"), 250, "2.0.0")
    assert_no_mail(srv.mailroot)
    srv.assert_alive()


def test_rset_between_bdat_chunks(server):
    c = open_transaction(server)
    c.send(b"BDAT 6\r\nabcdef")
    expect(c.read_reply(), 250)
    expect(c.cmd("RSET"), 250, "2.0.0")
    # No transaction any more: refused; the 3 octets are the chunk's, not a command.
    c.send(b"BDAT 3 LAST\r\nxyz")
    r = c.read_reply()
    assert r.code in (503, 554), r
    expect(c.cmd("NOOP"), 250, "2.0.0")
    assert_no_mail(server.mailroot)
    server.assert_alive()


@pytest.mark.parametrize("rcpt", ["+tag@example.test", "+@example.test", ".+x@example.test",
                                  "..+x@example.test"])
def test_empty_or_dot_mailbox_after_tag(server, rcpt):
    """A local part that is empty or unsafe once its +tag is cut must never
    write into the mail root itself or a hidden directory."""
    c = open_transaction(server, rcpts=())
    r = c.cmd(f"RCPT TO:<{rcpt}>")
    if r.code == 250:
        expect(c.cmd("DATA"), 354)
        c.send(b"Subject: tag\r\n\r\nx\r\n.\r\n")
        c.read_reply()
    else:
        assert r.code // 100 == 5, r
    root = server.mailroot
    for sub in ("new", "cur", "tmp"):
        assert not (root / sub).exists(), f"the mail root itself became a Maildir ({rcpt})"
    for p in maildir_files(root):
        box = p.parent.parent.relative_to(root)
        assert str(box) and not str(box).startswith("."), f"delivered into {box!r}"
    server.assert_alive()


def test_local_part_64_accepted_65_refused(server):
    c = open_transaction(server, rcpts=())
    expect(c.cmd("RCPT TO:<" + "b" * 64 + "@example.test>"), 250, "2.1.5")
    r = c.cmd("RCPT TO:<" + "c" * 65 + "@example.test>")
    assert r.code // 100 == 5, r
    assert_no_mail(server.mailroot)
    server.assert_alive()


def test_invalid_utf8_local_part(server):
    c = server.session()
    expect(c.cmd(f"MAIL FROM:<{SENDER}> SMTPUTF8"), 250)
    r = c.cmd(b"RCPT TO:<bad\xff\xfeutf8@example.test>")
    assert r.code // 100 == 5, r
    r = c.cmd(b"RCPT TO:<over\xc0\xaflong@example.test>")   # overlong '/'
    assert r.code // 100 == 5, r
    assert_no_mail(server.mailroot)
    server.assert_alive()


def test_http_request(server):
    """A web client on the SMTP port gets errors, not a hang or a crash."""
    c = server.connect()
    c.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: x\r\n\r\n")
    try:
        r = c.read_reply()
        assert r.code // 100 in (4, 5), r
    except ConnectionClosed:
        pass
    server.assert_alive()


def test_tls_handshake_garbage(server):
    c = server.session()
    expect(c.cmd("STARTTLS"), 220)
    c.send(b"this is not a TLS ClientHello\r\n" * 10)
    c.read_until_closed(timeout=10)
    server.assert_alive()


def test_tls_handshake_abandoned(server):
    c = server.session()
    expect(c.cmd("STARTTLS"), 220)
    c.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")   # a ClientHello cut short
    c.close()
    server.assert_alive()


def test_too_many_errors_closes(server):
    c = server.session()
    codes = []
    try:
        for i in range(40):
            codes.append(c.cmd(f"BOGUS{i}").code)
            if codes[-1] == 421:
                break
    except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
        pass
    assert 421 in codes or len(codes) < 40, f"40 bad commands and still served: {codes}"
    server.assert_alive()


def test_pipelined_flood_with_backpressure(server):
    """10,000 NOOPs in one go while reading replies slowly: every one is
    answered, in order, and the server does not stall or drop the session."""
    import threading
    c = server.session()
    n = 10000
    received = []

    def reader():
        try:
            time.sleep(0.5)          # let the server's output queue fill up
            for _ in range(n):
                received.append(c.read_reply(timeout=20).code)
        except AssertionError as e:
            received.append(repr(e))

    t = threading.Thread(target=reader)
    t.start()
    c.sock.settimeout(30)
    c.sock.sendall(b"NOOP\r\n" * n)
    t.join(40)
    assert not t.is_alive(), "reader still waiting"
    assert len(received) == n and set(received) == {250}, \
        (len(received), [x for x in received if x != 250][:3])
    c.sock.settimeout(10)
    expect(c.cmd("QUIT"), 221, "2.0.0")
    assert_no_mail(server.mailroot)
    server.assert_alive()
