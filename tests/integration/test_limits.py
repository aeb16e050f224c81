"""Resource limits under abuse (DESIGN.md, "Decisions": untrusted input,
timeouts, overload): thousands of slow connections from many 127.x.y.z
addresses must never lock a real client out; the per-address limit answers
421 4.7.0; overlong command lines get 500 5.5.2 and the session goes on;
a client that pipelines 10,000 commands without reading the replies makes
the server stop reading (bounded output buffer), not grow or hang."""

import smtplib
import socket
import subprocess
import threading
import time

import pytest

from helpers import (
    READ_TIMEOUT, SMTPConn, check_delivery, crlf, dot_stuff, mailbox_messages,
)
from robust_util import (  # noqa: F401  (rstart_server is a fixture)
    Crowd, raise_nofile, rss_kib, rstart_server, source_addrs, tcp_queues,
)

SENDER = "sender@client.test"


def expect(r, code, enhanced=None):
    assert r.code == code, f"expected {code} {enhanced or ''}, got {r}"
    if enhanced is not None:
        assert r.enhanced == enhanced, f"expected {code} {enhanced}, got {r}"
    return r


def smtplib_delivery(srv, subject, timeout=10):
    """A real client delivers one message; returns what it sent."""
    msg = crlf(f"From: a@client.test\nTo: user@example.test\nSubject: {subject}\n\n"
               f"Through the crowd.\n")
    t0 = time.monotonic()
    with smtplib.SMTP(srv.host, srv.port, timeout=timeout,
                      source_address=("127.0.0.1", 0)) as s:
        refused = s.sendmail(SENDER, ["user@example.test"], msg)
        assert refused == {}, refused
    return msg, time.monotonic() - t0


# --------------------------------------------------------------------------- slowloris


def test_slowloris_crowd_does_not_lock_out_real_client(rstart_server):
    """3000 connections from 1000 addresses (3 each) against
    --max-connections 1000: the server keeps at most 1000, closing the
    oldest idle ones with 421 to make room; half the crowd dribbles a byte
    every 2 s, half sends nothing.  A real smtplib client still gets in and
    delivers.  The survivors were greeted under overload (over 80% of the
    limit), so the silent ones get the short idle timeout (10 s, not 300 s)."""
    nofile = raise_nofile()
    assert nofile >= 3500, f"RLIMIT_NOFILE {nofile} too low for 3000 connections"
    srv = rstart_server("--max-connections", "1000", "--max-connections-per-ip", "5")
    crowd = Crowd(srv.host, srv.port)
    try:
        t0 = time.monotonic()
        crowd.open(source_addrs(1000, start=300), per_source=3)
        # Every connection is greeted (220) when accepted; 2000 of them are
        # then closed again (421) to make room for newer ones.
        crowd.pump(30, until=lambda c: c.greeted() == 3000 and len(c.open_socks()) <= 1000)
        t_open = time.monotonic() - t0
        assert crowd.greeted() == 3000, f"only {crowd.greeted()} of 3000 got a 220"
        still = crowd.open_socks()
        assert len(still) <= 1000, f"{len(still)} connections open over --max-connections 1000"
        evicted = [d for fd, d in crowd.data.items() if fd in crowd.closed]
        assert len(evicted) >= 2000, len(evicted)
        for d in evicted:
            assert d.startswith(b"220 ") and b"\r\n421 4." in d, \
                f"closed without a 421 after its greeting: {d!r}"

        half = len(still) // 2
        dribblers, silent = still[:half], still[half:]
        silent_fds = {s.fileno() for s in silent}

        # The real client, while the crowd dribbles.
        crowd.send_all(b"X", dribblers)
        msg, took = smtplib_delivery(srv, "slowloris")
        stored = mailbox_messages(srv.mailroot, "user", wait=5)
        assert len(stored) == 1, stored
        check_delivery(stored[0], msg, SENDER, "user@example.test", helo=None)
        print(f"\n[slowloris] 3000 connections opened and answered in {t_open:.1f} s; "
              f"{len(evicted)} evicted with 421; smtplib delivered in {took:.2f} s "
              f"through {len(still)} held connections")

        # The silent ones time out after the overload timeout; dribble on
        # meanwhile, bounded well under the normal 300 s timeout.
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline:
            crowd.send_all(b"X", [s for s in dribblers if s.fileno() not in crowd.closed])
            crowd.pump(2.0)
            if silent_fds <= crowd.closed:
                break
        left = silent_fds - crowd.closed
        assert not left, (f"{len(left)} of {len(silent_fds)} silent connections were still "
                          "open 25 s after they were greeted under overload")
        for fd in silent_fds:
            assert b"\r\n421 4." in crowd.data[fd], \
                f"silent connection closed without 421: {crowd.data[fd]!r}"
        # And the server still serves.
        smtplib_delivery(srv, "after the crowd")
        assert len(mailbox_messages(srv.mailroot, "user", wait=5)) == 2
    finally:
        crowd.close()


# --------------------------------------------------------------------------- per address


def test_per_ip_limit(rstart_server):
    srv = rstart_server("--max-connections-per-ip", "3")
    time.sleep(0.3)          # the start-up probe connection is gone
    mine = [SMTPConn(srv.host, srv.port, source="127.0.9.77") for _ in range(3)]
    for c in mine:
        expect(c.read_reply(), 220)
    for _ in range(2):       # again and again: each one refused, none greeted
        extra = SMTPConn(srv.host, srv.port, source="127.0.9.77")
        data = extra.read_until_closed(timeout=8)
        assert data.startswith(b"421 4.7.0 "), f"4th connection from one address: {data!r}"
        assert data.count(b"\r\n") == 1, data
        extra.close()
    # Another address is not counted with the first.
    other = SMTPConn(srv.host, srv.port, source="127.0.9.78")
    expect(other.read_reply(), 220)
    # The three are still served.
    for c in mine:
        expect(c.cmd("NOOP"), 250)
    # One leaves: the address may connect again.
    mine[0].cmd("QUIT")
    mine[0].close()
    deadline = time.monotonic() + 5
    while True:
        again = SMTPConn(srv.host, srv.port, source="127.0.9.77")
        r = again.read_reply()
        if r.code == 220:
            break
        assert time.monotonic() < deadline, f"address still refused after a QUIT: {r}"
        again.close()
        time.sleep(0.1)
    expect(again.cmd("NOOP"), 250)


def test_per_ip_refusal_does_not_evict_others(rstart_server):
    """At --max-connections, a connection that the per-address limit
    refuses anyway must not cost another client its session: otherwise one
    address over its limit can close every idle session of everyone else,
    one connection attempt each."""
    srv = rstart_server("--max-connections", "4", "--max-connections-per-ip", "2")
    time.sleep(0.3)
    a1 = SMTPConn(srv.host, srv.port, source="127.0.8.11")
    expect(a1.read_reply(), 220)
    a2 = SMTPConn(srv.host, srv.port, source="127.0.8.12")
    expect(a2.read_reply(), 220)
    x = [SMTPConn(srv.host, srv.port, source="127.0.8.13") for _ in range(2)]
    for c in x:
        expect(c.read_reply(), 220)
    # 4 of 4 in use; 127.0.8.13 has its 2.  A third from it: refused.
    x3 = SMTPConn(srv.host, srv.port, source="127.0.8.13")
    data = x3.read_until_closed(timeout=8)
    assert data.startswith(b"421 4.7.0 "), data
    # a1, the oldest idle session, must still be there.
    late = a1.pending_bytes(0.5)
    assert late == b"", (f"a per-address refusal of 127.0.8.13 evicted the session of "
                         f"127.0.8.11: it got {late!r}")
    expect(a1.cmd("NOOP"), 250)


def test_per_ip_limit_counts_networks(rstart_server):
    """--max-connections-per-ip counts a client network, not one address
    (issue 8: over IPv6 each /128 counted, so one /64 took every slot).
    Loopback has only ::1 for IPv6, so the prefix is shown on IPv4: with
    --ipv4-prefix 24, 127.0.7.1 .. 127.0.7.3 are one client."""
    srv = rstart_server("--max-connections-per-ip", "2", "--ipv4-prefix", "24")
    time.sleep(0.3)
    a = SMTPConn(srv.host, srv.port, source="127.0.7.1")
    expect(a.read_reply(), 220)
    b = SMTPConn(srv.host, srv.port, source="127.0.7.2")
    expect(b.read_reply(), 220)
    c = SMTPConn(srv.host, srv.port, source="127.0.7.3")
    data = c.read_until_closed(timeout=8)
    assert data.startswith(b"421 4.7.0 "), f"third address of one /24: {data!r}"
    # Another /24 is another client.
    d = SMTPConn(srv.host, srv.port, source="127.0.6.3")
    expect(d.read_reply(), 220)
    expect(a.cmd("NOOP"), 250)


# --------------------------------------------------------------------------- long lines


def test_64k_command_line_inside_transaction(rstart_server):
    """500 5.5.2 for the one long line; the transaction it interrupted goes on."""
    srv = rstart_server()
    c = srv.session()
    expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
    expect(c.cmd("RCPT TO:<user@example.test>"), 250)
    r = c.cmd("RCPT TO:<" + "a" * 65536 + "@example.test>")
    expect(r, 500, "5.5.2")
    assert c.pending_bytes(0.3) == b"", "more than one reply to one long line"
    expect(c.cmd("RCPT TO:<second@example.test>"), 250)
    expect(c.cmd("DATA"), 354)
    msg = crlf("Subject: after a long line\n\nstill here\n")
    c.send(dot_stuff(msg) + b".\r\n")
    expect(c.read_reply(), 250)
    for box, rcpt in (("user", "user@example.test"), ("second", "second@example.test")):
        got = mailbox_messages(srv.mailroot, box, wait=3)
        assert len(got) == 1, (box, got)
        check_delivery(got[0], msg, SENDER, rcpt, single_rcpt=False)


def test_1mib_line_without_newline(rstart_server):
    """1 MiB with no line end: no reply while it lasts (the server drops it
    as it arrives), one 500 5.5.2 when the CRLF finally comes, and the
    session is usable after."""
    srv = rstart_server()
    c = srv.session()
    smtp = srv.smtp_pid()
    before = rss_kib(smtp)
    chunk = b"NOOP " + b"z" * (64 * 1024 - 5)
    for _ in range(16):
        c.send(chunk)
    assert c.pending_bytes(0.5) == b"", "a reply before the line ended"
    during = rss_kib(smtp)
    c.send(b"\r\n")
    expect(c.read_reply(), 500, "5.5.2")
    assert c.pending_bytes(0.3) == b"", "more than one reply to one long line"
    expect(c.cmd("NOOP"), 250)
    msg = crlf("Subject: after 1 MiB of nothing\n\nok\n")
    assert c.mail_transaction(SENDER, ["user@example.test"], msg).code == 250
    check_delivery(mailbox_messages(srv.mailroot, "user", wait=3)[0], msg, SENDER,
                   "user@example.test")
    print(f"\n[1 MiB line] smtp VmRSS {before} KiB before, {during} KiB with the line pending")


# --------------------------------------------------------------------------- pipelining


EHLO = b"EHLO pipeliner.client.test\r\n"


def slow_reader(srv):
    """A connected socket with a small receive buffer (a client that reads
    slowly), its local port, and an SMTPConn reading from it."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    s.bind(("127.0.0.1", 0))
    s.settimeout(READ_TIMEOUT)
    s.connect(srv.addr)
    c = SMTPConn.__new__(SMTPConn)        # helpers' reply reader on this socket
    c.timeout, c.sock, c.buf, c.transcript, c.tls = READ_TIMEOUT, s, b"", [], False
    expect(c.read_reply(), 220)
    return s, s.getsockname()[1], c


def push_until_stuck(s, payload, quiet=2.0):
    """Non-blocking sends until all is sent or nothing moved for `quiet` s."""
    s.setblocking(False)
    sent = 0
    idle_since = time.monotonic()
    while sent < len(payload) and time.monotonic() - idle_since < quiet:
        try:
            sent += s.send(payload[sent:sent + 65536])
            idle_since = time.monotonic()
        except BlockingIOError:
            time.sleep(0.01)
    s.setblocking(True)
    s.settimeout(READ_TIMEOUT)
    return sent


def read_ehlo_replies(s, n, rest=b""):
    """Reads until n whole EHLO replies arrived (a thread sends `rest`
    meanwhile); checks every line is a 250 line.  Bounded: each recv waits
    at most READ_TIMEOUT."""
    errors = []

    def send_rest():
        try:
            s.sendall(rest)
        except OSError as e:
            errors.append(e)

    t = threading.Thread(target=send_rest)
    t.start()
    buf = b""
    done = 0
    last = b""
    while done < n:
        chunk = s.recv(1 << 20)
        assert chunk, f"server closed after {done} of {n} replies; last: {last[-300:]!r}"
        buf = last + chunk
        # Whole lines only; the tail waits for the next chunk.
        cut = buf.rfind(b"\r\n") + 2
        lines, last = buf[:cut], buf[cut:]
        done += lines.count(b"\r\n250 ")   # the last line of each EHLO reply
        if lines.startswith(b"250 "):
            done += 1
        bad = [l for l in lines.split(b"\r\n")[:-1] if not l.startswith(b"250")]
        assert not bad, f"not a 250 line after {done} replies: {bad[:3]!r}"
    t.join(READ_TIMEOUT)
    assert not t.is_alive() and not errors, errors
    assert done == n and last == b"", (done, n, last[:200])


def test_pipelining_10000_commands_without_reading(rstart_server):
    """10,000 EHLO in one go, not one reply read until all are sent: every
    command is answered, in order, and the server serves others meanwhile."""
    srv = rstart_server()
    smtp = srv.smtp_pid()
    s, _, c = slow_reader(srv)
    rss_before = rss_kib(smtp)
    n = 10000
    payload = EHLO * n
    sent = push_until_stuck(s, payload)
    time.sleep(0.5)
    rss_after = rss_kib(smtp)
    srv.assert_alive()
    read_ehlo_replies(s, n, payload[sent:])
    assert c.cmd("QUIT").code == 221
    print(f"\n[pipelining 10000] smtp VmRSS {rss_before} -> {rss_after} KiB while "
          f"{len(payload)} octets of commands were unanswered")
    assert rss_after - rss_before < 64 * 1024, (rss_before, rss_after)


def test_pipelining_stops_reading_when_output_backs_up(rstart_server):
    """10,000 EHLO make 1.3 MB of replies, which loopback's kernel buffers
    take whole (the server's send queue holds it all, measured), so to see
    the server's own bound this sends up to 60,000 (7.7 MB of replies).  The
    server must stop reading once its output backs up: the commands it has
    not read stay in the kernel (our send queue, its receive queue), the
    client's send blocks, the server's memory does not hold megabytes of
    replies, and every command is answered once the client reads."""
    srv = rstart_server()
    smtp = srv.smtp_pid()
    s, my_port, c = slow_reader(srv)
    rss_before = rss_kib(smtp)
    n = 60000
    payload = EHLO * n
    sent = push_until_stuck(s, payload)
    time.sleep(1.0)   # let the server do whatever it does with what it has

    # Octets the client sent that the server has not read: not sent yet
    # (the kernel would take no more), in our send queue, or in its
    # receive queue.
    ours = tcp_queues(local_port=my_port, remote_port=srv.port)
    theirs = tcp_queues(local_port=srv.port, remote_port=my_port)
    assert ours and theirs, (ours, theirs)
    unread = (len(payload) - sent) + ours[0][2] + theirs[0][3]
    rss_stalled = rss_kib(smtp)
    print(f"\n[pipelining {n}] {len(payload)} octets of commands, {sent} taken by the "
          f"kernel; not read by the server while the client read nothing: {unread}; "
          f"server send queue {theirs[0][2]}; smtp VmRSS {rss_before} -> {rss_stalled} KiB")
    assert unread > 0, ("the server read every pipelined command although the client read "
                        "none of the replies: its output buffer is not bounded")
    assert rss_stalled - rss_before < 64 * 1024, (rss_before, rss_stalled)

    # The event loop is not stuck on this client.
    srv.assert_alive()

    read_ehlo_replies(s, n, payload[sent:])
    assert c.cmd("QUIT").code == 221


# --------------------------------------------------------------------------- accept queue


def test_listen_backlog_kept_by_the_smtp_process(rstart_server):
    """The parent listens with a backlog of 4096 (serve.c: listen(fd, 4096)),
    so that a burst of connections waits in the kernel instead of being
    dropped.  The smtp process must keep it: libevent's evconnlistener_new()
    with backlog -1 calls listen(fd, 128) again ("pick a default"), while 0
    means "already listening".  With 128, a burst of a few hundred connects
    overflows the accept queue (TcpExtListenOverflows) and each dropped SYN
    costs its client a 1 s retransmission -- seen while opening the
    slowloris crowd.  ss reports a listener's backlog as its Send-Q."""
    srv = rstart_server()
    srv.assert_alive()      # the smtp process is serving: its listener is set up
    try:
        out = subprocess.run(["ss", "-Hltn", f"sport = :{srv.port}"], capture_output=True,
                             text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"ss (iproute2) not usable: {e}")
    rows = [l.split() for l in out.splitlines() if l.strip()]
    assert len(rows) == 1, out
    backlog = int(rows[0][2])
    assert backlog >= 1024, (f"listening socket backlog is {backlog} (parent asked for 4096): "
                             f"{out.strip()}")
