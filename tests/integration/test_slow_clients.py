"""Clients that trickle message data (issue 8, item 1): one byte every 2 s
restarted the per-read timeout for ever, and a session in a transaction was
never evicted, so 20 such clients held every slot of --max-connections 20.
Each DATA stream now has a whole-phase deadline (its timeout plus one second
per --min-data-rate octets received), and under overload a transaction
slower than that rate, past the overload grace (10 s), makes room for a new
client.  Tricklers come from distinct 127.0.5.x addresses, as a botnet's
would."""

import select
import smtplib
import time

from helpers import READ_TIMEOUT, SMTPConn, crlf, mailbox_messages
from robust_util import rstart_server  # noqa: F401  (a fixture)

SENDER = "sender@client.test"
TRICKLE_INTERVAL = 2.0
OVERLOAD_GRACE = 10          # SMTP_TIMEOUT_OVERLOAD in src/util/limits.h


def expect(r, code, enhanced=None):
    assert r.code == code, f"expected {code} {enhanced or ''}, got {r}"
    if enhanced is not None:
        assert r.enhanced == enhanced, f"expected {code} {enhanced}, got {r}"
    return r


def open_tricklers(srv, n):
    """n sessions from distinct addresses, each inside DATA after its 354."""
    out = []
    for i in range(n):
        c = SMTPConn(srv.host, srv.port, source=f"127.0.5.{i + 1}")
        expect(c.read_reply(), 220)
        expect(c.cmd("EHLO trickler.test"), 250)
        expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
        expect(c.cmd("RCPT TO:<user@example.test>"), 250)
        expect(c.cmd("DATA"), 354)
        c.send(b"Subject: slow\r\n\r\n")
        out.append(c)
    return out


class Trickle:
    """Sends one byte to every open trickler each TRICKLE_INTERVAL and
    records when and how each one was closed by the server."""

    def __init__(self, conns):
        self.conns = list(conns)
        self.started = time.monotonic()
        self.closed = {}         # index -> (seconds after start, bytes received)
        self.next_send = self.started

    def run(self, until, stop=lambda: False):
        """Trickles until `until` (monotonic) or stop() or all closed."""
        while time.monotonic() < until and len(self.closed) < len(self.conns) and not stop():
            now = time.monotonic()
            if now >= self.next_send:
                for i, c in enumerate(self.conns):
                    if i not in self.closed:
                        try:
                            c.sock.sendall(b"x")
                        except OSError:
                            pass     # closed: the read below records it
                self.next_send = now + TRICKLE_INTERVAL
            open_socks = {c.sock: i for i, c in enumerate(self.conns) if i not in self.closed}
            ready, _, _ = select.select(list(open_socks), [], [],
                                        max(0.0, min(self.next_send, until) - time.monotonic()))
            for s in ready:
                i = open_socks[s]
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                c = self.conns[i]
                c.buf += data
                if not data:
                    self.closed[i] = (time.monotonic() - self.started, c.buf)

    def close(self):
        for c in self.conns:
            c.close()


def test_trickling_data_is_closed_by_its_deadline(rstart_server):
    """--timeout-data 4 and a byte every 2 s: the per-read timeout never
    fires, but the phase may last only 4 s plus 1 s per 500 octets.  Every
    trickler gets 421 and is closed; before, all 20 stayed open."""
    srv = rstart_server("--max-connections", "20", "--timeout-data", "4")
    time.sleep(0.3)          # the start-up probe connection is gone
    conns = open_tricklers(srv, 20)
    trickle = Trickle(conns)
    try:
        trickle.run(until=time.monotonic() + 25)
        alive = [i for i in range(len(conns)) if i not in trickle.closed]
        assert not alive, f"{len(alive)} of 20 tricklers still open after 25 s"
        times = sorted(t for t, _ in trickle.closed.values())
        for i, (t, data) in trickle.closed.items():
            assert data.startswith(b"421 4.3.2 "), f"trickler {i}: {data!r}"
            # 4 s of deadline, plus the trickle interval and a slow machine.
            assert t < 12, f"trickler {i} closed only after {t:.1f} s"
        print(f"\n[trickle deadline] 20 tricklers at 0.5 B/s, --timeout-data 4: closed "
              f"after {times[0]:.1f}-{times[-1]:.1f} s")
    finally:
        trickle.close()
    assert mailbox_messages(srv.mailroot, "user") == []
    srv.assert_alive()


def test_tricklers_evicted_for_a_real_client(rstart_server):
    """20 tricklers in DATA hold every slot of --max-connections 20 with the
    default timeouts (300 s).  Past the overload grace, a real client gets
    in at once (one trickler is closed with 421 to make room) and delivers
    within seconds; before, it got 421 for as long as the tricklers liked."""
    srv = rstart_server("--max-connections", "20")
    time.sleep(0.3)
    conns = open_tricklers(srv, 20)
    trickle = Trickle(conns)
    try:
        trickle.run(until=time.monotonic() + OVERLOAD_GRACE + 2)
        assert not trickle.closed, f"tricklers closed before any overload: {trickle.closed}"
        msg = crlf("From: a@client.test\nTo: user@example.test\nSubject: real\n\n"
                   "Through the tricklers.\n")
        t0 = time.monotonic()
        with smtplib.SMTP(srv.host, srv.port, timeout=READ_TIMEOUT,
                          source_address=("127.0.0.1", 0)) as s:
            assert s.sendmail(SENDER, ["user@example.test"], msg) == {}
        took = time.monotonic() - t0
        got = mailbox_messages(srv.mailroot, "user", wait=5)
        assert len(got) == 1, got
        assert b"Through the tricklers." in got[0]
        assert took < 5, f"the real client took {took:.1f} s"
        # The one that made room was told why.
        trickle.run(until=time.monotonic() + 3, stop=lambda: trickle.closed)
        assert len(trickle.closed) == 1, trickle.closed
        (i, (_, data)), = trickle.closed.items()
        assert data.startswith(b"421 4.3.2 Server busy"), data
        print(f"\n[trickle eviction] 20 tricklers on 20 slots: a real client delivered in "
              f"{took * 1000:.0f} ms; trickler {i} evicted")
    finally:
        trickle.close()
    srv.assert_alive()


def test_fast_transaction_not_evicted(rstart_server):
    """A transaction that sends faster than --min-data-rate is not evicted
    to make room, even under overload: only slow ones are.  Here the only
    session in a transaction streams DATA steadily at ~5 kB/s; the new
    client is refused instead."""
    srv = rstart_server("--max-connections", "2", "--min-data-rate", "500")
    time.sleep(0.3)
    fast = SMTPConn(srv.host, srv.port, source="127.0.5.101")
    expect(fast.read_reply(), 220)
    expect(fast.cmd("EHLO fast.test"), 250)
    expect(fast.cmd(f"MAIL FROM:<{SENDER}>"), 250)
    expect(fast.cmd("RCPT TO:<user@example.test>"), 250)
    expect(fast.cmd("DATA"), 354)
    slow = open_tricklers(srv, 1)[0]
    start = time.monotonic()
    while time.monotonic() - start < OVERLOAD_GRACE + 3:
        fast.send(b"y" * 500 + b"\r\n")
        slow.send(b"x")
        time.sleep(0.1)
    # Both in a transaction past the grace; the slow one goes, not the fast.
    new = SMTPConn(srv.host, srv.port, source="127.0.5.102")
    expect(new.read_reply(), 220)
    expect(new.cmd("EHLO new.test"), 250)
    expect(new.cmd(f"MAIL FROM:<{SENDER}>"), 250)   # a transaction: not idle
    evicted = slow.read_until_closed(timeout=5)
    assert evicted.startswith(b"421 4.3.2 Server busy"), evicted
    assert fast.pending_bytes(0.3) == b""
    # Both in a transaction, neither slow (the new one is in its grace):
    # another client is refused.
    other = SMTPConn(srv.host, srv.port, source="127.0.5.103")
    refused = other.read_until_closed(timeout=5)
    assert refused.startswith(b"421 4.7.0 "), refused
    fast.send(b"\r\n.\r\n")
    expect(fast.read_reply(), 250)
