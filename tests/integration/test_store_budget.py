"""Store memory (issue 8, item 5).  Each open transaction may keep up to 256
KiB in the store process until its batch; with no cap on their sum, 400
sessions that send 255 KiB of DATA and stall took the store from 3 MB to
106 MB.  Here 400 such sessions are opened against the release binary (ASan
inflates RSS), the store process's VmRSS is read before and once they have
all been taken in, and its growth must stay within 64 MiB; then every
client sends its final dot and each message must be stored byte for byte.

Run as root or not; the store is found as the child of the serve parent that
does not hold the listening socket (robust_util.server_roles)."""

import re
import socket
import time
from pathlib import Path

from helpers import READ_TIMEOUT, SMTPConn, check_delivery, dot_stuff
from robust_util import raise_nofile, release_bin, rss_kib, rstart_server  # noqa: F401

N = 400
SIZE = 255 * 1024
SENDER = "sender@client.test"
RCPT = "user@example.test"
MAX_GROWTH_KIB = 64 * 1024


def message(i):
    """About SIZE octets, unique per session, lines under 998."""
    head = f"Subject: stalled {i}\r\nMessage-ID: <stalled{i}@client.test>\r\n\r\n".encode()
    line = (f"{i:05d} " + "abcdefghijklmnopqrstuvwxyz0123456789" * 2).encode() + b"\r\n"
    body = line * ((SIZE - len(head)) // len(line))
    return head + body


def tmp_files(mailroot):
    return len([p for p in Path(mailroot).glob("*/tmp/*") if p.is_file()])


def settle(pid, mailroot, seconds=60):
    """Waits until the store's RSS and its tmp/ files stop changing (every
    DATA byte forwarded and taken in); returns the RSS in KiB."""
    deadline = time.monotonic() + seconds
    last = None
    stable = 0
    while time.monotonic() < deadline:
        now = (rss_kib(pid), tmp_files(mailroot))
        stable = stable + 1 if now == last else 0
        if stable >= 3:
            return now[0]
        last = now
        time.sleep(0.5)
    return rss_kib(pid)


def test_400_stalled_sessions(rstart_server):
    raise_nofile(N * 2 + 200)
    srv = rstart_server("--max-connections-per-ip", str(N + 10), "--timeout-data", "300",
                        binary=release_bin())
    store = srv.store_pid()
    # Warm up: one whole message of the same size, so that one-time
    # allocations are in the baseline.
    with SMTPConn(srv.host, srv.port) as c:
        assert c.read_reply().code == 220
        r = c.mail_transaction(SENDER, [RCPT], message(-1), ehlo="client.test")
        assert r.code == 250, r
    time.sleep(0.5)
    before = rss_kib(store)

    conns = []
    try:
        for i in range(N):
            c = SMTPConn(srv.host, srv.port, timeout=READ_TIMEOUT * 3)
            conns.append(c)
            assert c.read_reply().code == 220
            c.send(f"EHLO client.test\r\nMAIL FROM:<{SENDER}>\r\nRCPT TO:<{RCPT}>\r\nDATA\r\n")
            rs = c.read_replies(4)
            assert [r.code for r in rs] == [250, 250, 250, 354], rs
            # All of the message but its final dot: the session stalls in DATA.
            c.send(dot_stuff(message(i)))
        after = settle(store, srv.mailroot)
        growth = after - before
        print(f"\n[store budget] {N} sessions stalled after {SIZE // 1024} KiB each: store VmRSS "
              f"{before} -> {after} KiB (+{growth / 1024:.1f} MiB), "
              f"{tmp_files(srv.mailroot)} streamed to tmp/ early")
        assert growth <= MAX_GROWTH_KIB, (
            f"the store grew by {growth / 1024:.1f} MiB with {N} stalled sessions "
            f"(budget {MAX_GROWTH_KIB // 1024} MiB)")

        # Every client finishes: each message is stored whole.
        for c in conns:
            c.send(b".\r\n")
        qids = {}
        for i, c in enumerate(conns):
            r = c.read_reply(timeout=60)
            assert r.code == 250, f"session {i}: {r}"
            qids[re.search(r"queued as (\S+)", r.text).group(1)] = i
    finally:
        for c in conns:
            c.close()

    new = sorted((Path(srv.mailroot) / "user" / "new").iterdir())
    assert len(new) == N + 1, f"{len(new)} files in user/new, expected {N + 1}"
    seen = set()
    for p in new:
        qid = re.search(r"Q([0-9A-Za-z]+?)\.", p.name).group(1)
        if qid not in qids:
            continue   # the warm-up message
        i = qids[qid]
        check_delivery(p.read_bytes(), message(i), SENDER, RCPT)
        seen.add(i)
    assert seen == set(range(N))
    assert tmp_files(srv.mailroot) == 0
    srv.assert_alive()
