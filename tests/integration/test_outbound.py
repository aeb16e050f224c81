"""The outbound delivery engine (src/client/outbound.c) with several messages
in flight on one event loop, against real `rawmail serve` instances (and a
scripted peer where the test needs to hold a destination back).

tests/tools/outbound.c submits every message given on its command line
before the loop runs (one marked "+" from inside the first done callback)
and prints `submitted K`, then per message `done K in_flight=N` and one
line per recipient.  RAWMAIL_TOOLS selects the tool binaries (default
build-asan/tests: ASan + UBSan, every run checked for sanitizer reports).
Every destination shares one port (the engine has one), on its own
loopback address.  Loopback only: DNS is the test's NSD.
"""

import os
import re
import subprocess
import threading
import time

import pytest

from dns_util import nsd  # noqa: F401 (fixture)
from helpers import REPO_ROOT, free_port, mailbox_messages, sample_message
from peers import ScriptedPeer, ehlo_ok

TOOLS = os.environ.get("RAWMAIL_TOOLS", str(REPO_ROOT / "build-asan" / "tests"))
OUTBOUND = os.path.join(TOOLS, "tool_outbound")
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                   "UndefinedBehaviorSanitizer")
SENDER = "alice@client.test"

def accepting(line, extra=None):
    """A peer that takes the message: ehlo_ok, 250 to the final dot and to
    RSET."""
    if line == b"<dot>":
        return b"250 2.0.0 queued\r\n"
    if line == b"RSET":
        return b"250 2.0.0 ok\r\n"
    return ehlo_ok(line, extra)


ZONE = """\
@             MX 10 mx
mx            A 127.0.0.3
"""


@pytest.fixture(scope="module", autouse=True)
def tool_built():
    if not os.access(OUTBOUND, os.X_OK):
        pytest.skip(f"{OUTBOUND} missing: make -s SAN=1 build-asan/tests/tool_outbound")


@pytest.fixture
def port():
    return free_port()


class Run:
    def __init__(self, p):
        self.rc = p.returncode
        self.stdout = p.stdout.decode(errors="replace")
        self.stderr = p.stderr.decode(errors="replace")
        self.events = []       # ("submitted"|"done", K, in_flight) in order
        self.rcpts = {}        # (K, addr) -> dict
        self.stats = {}        # the engine's pool: connections, reused
        for line in self.stdout.splitlines():
            f = line.split(" ")
            if f[0] in ("submitted", "done"):
                self.events.append((f[0], int(f[1]), int(f[2].partition("=")[2])))
            elif f[0] == "stats":
                self.stats = {k: int(v) for k, v in (x.split("=") for x in f[1:])}
            elif f[0] != "all":
                k, addr, state, code, enh = f[:5]
                kv = dict(x.split("=", 1) for x in f[5:9])
                self.rcpts[(int(k), addr)] = dict(state=state, code=int(code), enhanced=enh,
                                                  text=" ".join(f[9:]), **kv)

    def done_order(self):
        return [k for what, k, _ in self.events if what == "done"]

    def __repr__(self):
        return f"rc={self.rc}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


def outbound(args, timeout=60):
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
    p = subprocess.run([OUTBOUND, *[str(a) for a in args]], capture_output=True,
                       timeout=timeout, env=env)
    r = Run(p)
    for mark in SANITIZER_MARKS:
        assert mark not in r.stderr, r
    assert r.rc == 0, r
    assert r.stdout.endswith("all done\n"), r
    return r


def message_file(tmp_path, name, subject):
    path = tmp_path / f"{name}.eml"
    path.write_bytes(sample_message(subject))
    return path


def serve_at(start_server, ip, port, mailroot):
    return start_server(listen=[f"{ip}:{port}"], mailroot=mailroot)


def test_two_messages_two_destinations_at_once(start_server, port, tmp_path):
    one = serve_at(start_server, "127.0.0.2", port, tmp_path / "m2")
    two = serve_at(start_server, "127.0.0.3", port, tmp_path / "m3")
    a = message_file(tmp_path, "a", "outbound first")
    b = message_file(tmp_path, "b", "outbound second")
    r = outbound(["--port", port, a, SENDER, "user@[127.0.0.2]",
                  b, SENDER, "user@[127.0.0.3],other@[127.0.0.3]"])
    # Both submitted before either ended: two messages in flight at once.
    assert r.events[:2] == [("submitted", 1, 1), ("submitted", 2, 2)], r
    assert sorted(r.done_order()) == [1, 2], r
    for key in [(1, "user@[127.0.0.2]"), (2, "user@[127.0.0.3]"), (2, "other@[127.0.0.3]")]:
        got = r.rcpts[key]
        assert got["state"] == "DELIVERED" and got["code"] == 250, r
        assert got["ip"] == key[1].split("[")[1].rstrip("]"), r
    [m1] = mailbox_messages(one.mailroot, "user", wait=2)
    assert b"Subject: outbound first" in m1
    [m2] = mailbox_messages(two.mailroot, "user", wait=2)
    assert b"Subject: outbound second" in m2
    assert len(mailbox_messages(two.mailroot, "other", wait=2)) == 1
    assert not mailbox_messages(one.mailroot, "other")


def test_a_slow_destination_does_not_hold_back_another_message(start_server, port, tmp_path):
    """Message 1 goes to a peer that withholds its greeting until message 2
    has arrived at its own server: a sequential engine would never get
    there (the peer gives up after 20 s with 421)."""
    fast = serve_at(start_server, "127.0.0.2", port, tmp_path / "m2")

    def greeting(conn):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if mailbox_messages(fast.mailroot, "user"):
                return b"220 slow.test ESMTP\r\n"
            time.sleep(0.05)
        return b"421 4.3.2 the other message never arrived\r\n"

    peer = ScriptedPeer(accepting, greeting=greeting, host="127.0.0.4", port=port)
    try:
        a = message_file(tmp_path, "a", "held back")
        b = message_file(tmp_path, "b", "goes first")
        r = outbound(["--port", port, a, SENDER, "user@[127.0.0.4]",
                      b, SENDER, "user@[127.0.0.2]"])
    finally:
        peer.close()
    assert r.done_order() == [2, 1], r
    # When message 2 was done, message 1 was still in flight.
    assert ("done", 2, 1) in r.events, r
    assert r.rcpts[(1, "user@[127.0.0.4]")]["state"] == "DELIVERED", r
    assert r.rcpts[(2, "user@[127.0.0.2]")]["state"] == "DELIVERED", r
    assert peer.commands.count(b"<dot>") == 1, peer.commands


def test_parallel_limit_is_shared_by_messages(start_server, port, tmp_path):
    """--parallel 1: one destination in progress across both messages, so
    message 2 waits for message 1's slow peer (1 s before its greeting)."""
    fast = serve_at(start_server, "127.0.0.2", port, tmp_path / "m2")
    started = threading.Event()

    def greeting(conn):
        started.set()
        time.sleep(1)
        return b"220 slow.test ESMTP\r\n"

    peer = ScriptedPeer(accepting, greeting=greeting, host="127.0.0.4", port=port)
    try:
        a = message_file(tmp_path, "a", "first in line")
        b = message_file(tmp_path, "b", "waits for a slot")
        r = outbound(["--parallel", 1, "--port", port, a, SENDER, "user@[127.0.0.4]",
                      b, SENDER, "user@[127.0.0.2]"])
    finally:
        peer.close()
    assert started.is_set()
    assert r.done_order() == [1, 2], r
    assert r.rcpts[(2, "user@[127.0.0.2]")]["state"] == "DELIVERED", r
    assert len(mailbox_messages(fast.mailroot, "user", wait=2)) == 1


def test_resolver_made_at_first_domain_and_submit_from_done(start_server, nsd, port,
                                                          tmp_path):
    """Message 1 to an address literal needs no DNS; message 2, submitted
    from message 1's done callback (as a queue runner does), goes to a
    domain whose MX the test's NSD gives: the resolver is made then.  The
    original spelling of each recipient comes back with its result."""
    dns = nsd({"example.test": ZONE})
    lit = serve_at(start_server, "127.0.0.2", port, tmp_path / "m2")
    mx = serve_at(start_server, "127.0.0.3", port, tmp_path / "m3")
    a = message_file(tmp_path, "a", "to a literal")
    b = message_file(tmp_path, "b", "through the MX")
    r = outbound(["--dns", dns.addr, "--port", port,
                  a, SENDER, "user@[127.0.0.2]=<user@[127.0.0.2]>",
                  "+", b, SENDER, "user@example.test=User@Example.TEST"])
    assert [e[:2] for e in r.events] == [("submitted", 1), ("done", 1), ("submitted", 2),
                                         ("done", 2)], r
    got = r.rcpts[(2, "user@example.test")]
    assert got["state"] == "DELIVERED", r
    assert got["host"] == "mx.example.test" and got["ip"] == "127.0.0.3", r
    assert got["original"] == "User@Example.TEST", r
    assert r.rcpts[(1, "user@[127.0.0.2]")]["original"] == "<user@[127.0.0.2]>", r
    assert len(mailbox_messages(lit.mailroot, "user", wait=2)) == 1
    assert len(mailbox_messages(mx.mailroot, "user", wait=2)) == 1


def test_outcomes_per_message_temporary_and_permanent(start_server, port, tmp_path):
    """One message refused for one recipient (5xx), another at an address
    where nothing listens (temporary): each message gets its own
    outcomes."""
    def script(line):
        if line.startswith(b"RCPT") and b"nobody" in line:
            return b"550 5.1.1 no such user\r\n"
        return accepting(line)

    peer = ScriptedPeer(script, host="127.0.0.4", port=port)
    try:
        a = message_file(tmp_path, "a", "mixed")
        b = message_file(tmp_path, "b", "nowhere")
        r = outbound(["--port", port, a, SENDER, "user@[127.0.0.4],nobody@[127.0.0.4]",
                      b, SENDER, "user@[127.0.0.5]"])
    finally:
        peer.close()
    assert r.rcpts[(1, "user@[127.0.0.4]")]["state"] == "DELIVERED", r
    bad = r.rcpts[(1, "nobody@[127.0.0.4]")]
    assert (bad["state"], bad["code"], bad["enhanced"]) == ("PERMFAIL", 550, "5.1.1"), r
    assert "no such user" in bad["text"], r
    down = r.rcpts[(2, "user@[127.0.0.5]")]
    assert down["state"] == "TEMPFAIL" and down["ip"] == "127.0.0.5", r
    assert "refused" in down["text"], r


# ---------------------------------------------------------------------------
# Connection reuse, shared MX hosts, per-address limits (issue 9)

def serve_events(server, event):
    """The serve log's lines for one event (event=connect, event=mail...)."""
    return [l for l in server.log().splitlines() if f"event={event} " in l]


def wait_events(server, event, n, timeout=5):
    deadline = time.monotonic() + timeout
    while len(serve_events(server, event)) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return serve_events(server, event)


def settled_connects(server):
    """How many connections the server saw before the test's own: the
    start-up probe (helpers.Server.start: one per listener), counted once
    it has gone."""
    n = len(server.listen)
    assert len(wait_events(server, "disconnect", n)) == n, server.log()
    assert len(serve_events(server, "connect")) == n, server.log()
    return n


def many(path, rcpt, n):
    args = []
    for _ in range(n):
        args += [path, SENDER, rcpt]
    return args


@pytest.mark.parametrize("limit", [None, 2])
def test_twenty_messages_to_one_server_share_few_connections(start_server, port, tmp_path,
                                                              limit):
    """20 messages to one destination, all submitted at once: at most the
    per-address limit of connections (a given one is fixed; the default
    starts at 5 and grows by one after as many clean transactions as it
    allows: 20 messages reach 7 at most), every message delivered, RSET
    between the transactions of one connection."""
    srv = serve_at(start_server, "127.0.0.2", port, tmp_path / "m2")
    probes = settled_connects(srv)
    a = message_file(tmp_path, "a", "one of twenty")
    opts = ["--port", port] + (["--per-address", limit] if limit else [])
    r = outbound(opts + many(a, "user@[127.0.0.2]", 20))
    assert len(r.done_order()) == 20, r
    for k in range(1, 21):
        assert r.rcpts[(k, "user@[127.0.0.2]")]["state"] == "DELIVERED", r
    assert len(mailbox_messages(srv.mailroot, "user", wait=5)) == 20
    mails = wait_events(srv, "mail", 20)
    assert len(mails) == 20, srv.log()
    connects = serve_events(srv, "connect")[probes:]
    assert 1 <= len(connects) <= (limit or 7), connects
    assert r.stats["connections"] == len(connects), r
    assert r.stats["reused"] == 20 - len(connects), r
    # Every connection was closed (none left to time out), and together
    # they carried the 20 messages.
    disconnects = wait_events(srv, "disconnect", probes + len(connects))[probes:]
    assert len(disconnects) == len(connects), srv.log()
    assert sum(int(re.search(r"messages=(\d+)", l).group(1)) for l in disconnects) == 20


def test_default_limit_grows_with_clean_transactions(start_server, port, tmp_path):
    """The default per-address limit follows the peer, as Postfix's
    destination concurrency does (client/pool.h): 60 messages at once to
    a server that takes them all open more than the initial 5 connections,
    never more than 20; a given --per-address stays fixed."""
    srv = serve_at(start_server, "127.0.0.2", port, tmp_path / "m2")
    probes = settled_connects(srv)
    a = message_file(tmp_path, "a", "one of sixty")
    r = outbound(["--port", port] + many(a, "user@[127.0.0.2]", 60))
    for k in range(1, 61):
        assert r.rcpts[(k, "user@[127.0.0.2]")]["state"] == "DELIVERED", r
    assert len(wait_events(srv, "mail", 60)) == 60, srv.log()
    connects = serve_events(srv, "connect")[probes:]
    assert 5 < len(connects) <= 20, (len(connects), r.stats)
    assert r.stats["connections"] == len(connects), r
    before = len(serve_events(srv, "connect"))
    r = outbound(["--port", port, "--per-address", 5] + many(a, "user@[127.0.0.2]", 60))
    assert len(wait_events(srv, "mail", 120)) == 120, srv.log()
    assert r.stats["connections"] <= 5, r
    assert len(serve_events(srv, "connect")) - before <= 5


SHARED = {
    # Two domains whose MX is one host name, and two more whose MX names
    # differ but resolve to the same address.
    "a.test": "@ MX 10 mx.hosting.test.\n",
    "b.test": "@ MX 10 mx.hosting.test.\n",
    "c.test": "@ MX 10 mx\nmx A 127.0.0.3\n",
    "d.test": "@ MX 10 mx\nmx A 127.0.0.3\n",
    "hosting.test": "mx A 127.0.0.3\n",
}


@pytest.mark.parametrize("domains", [("a.test", "b.test"), ("c.test", "d.test"),
                                     ("a.test", "b.test", "c.test", "d.test")])
def test_domains_with_the_same_mx_share_a_connection(start_server, nsd, port, tmp_path,
                                                    domains):
    """One message to recipients of several domains whose MX is the same
    host: one connection, one transaction per domain."""
    dns = nsd(SHARED)
    srv = start_server("--domain", "a.test", "--domain", "b.test", "--domain", "c.test",
                       "--domain", "d.test", listen=[f"127.0.0.3:{port}"],
                       mailroot=tmp_path / "m3")
    probes = settled_connects(srv)
    a = message_file(tmp_path, "a", "shared mx")
    rcpts = [f"user@{d}" for d in domains]
    r = outbound(["--dns", dns.addr, "--port", port, a, SENDER, ",".join(rcpts)])
    for rc in rcpts:
        assert r.rcpts[(1, rc)]["state"] == "DELIVERED", r
        assert r.rcpts[(1, rc)]["ip"] == "127.0.0.3", r
    assert len(wait_events(srv, "mail", len(domains))) == len(domains), srv.log()
    assert len(serve_events(srv, "connect")) == probes + 1, srv.log()
    assert r.stats == {"connections": 1, "reused": len(domains) - 1}, r


def counting_peer(port, on_rset):
    """A scripted peer on 127.0.0.4 that takes every message and answers
    RSET with on_rset (None: close)."""
    def script(line, conn):
        if line == b"RSET":
            return on_rset
        return accepting(line)
    return ScriptedPeer(script, host="127.0.0.4", port=port, connections=20, with_conn=True)


@pytest.mark.parametrize("on_rset, why", [
    (b"421 4.4.2 enough for this connection\r\n", "RSET refused"),
    (None, "connection closed by the peer"),      # closes without a word
])
def test_421_after_the_first_transaction_new_connection(port, tmp_path, on_rset, why):
    """The peer answers the RSET before a second message with 421 and
    closes (RFC 5321 §3.8), or just closes: the message goes over a new
    connection, and every message is delivered."""
    peer = counting_peer(port, on_rset)
    try:
        a = message_file(tmp_path, "a", "after 421")
        r = outbound(["--port", port, "--per-address", 1, "-v"]
                     + many(a, "user@[127.0.0.4]", 4))
    finally:
        peer.close()
    for k in range(1, 5):
        assert r.rcpts[(k, "user@[127.0.0.4]")]["state"] == "DELIVERED", r
    assert peer.commands.count(b"<dot>") == 4, peer.conns
    # One message per connection: each later one tried RSET, got 421 (or
    # nothing), and went on a new connection; no QUIT after the 421.
    assert len(peer.conns) == 4, peer.conns
    for conn in peer.conns[:-1]:
        assert conn.commands.count(b"<dot>") == 1, conn
        assert conn.commands[-1] == b"RSET", conn
    assert peer.conns[-1].commands[-1] == b"QUIT", peer.conns
    assert r.stderr.count(f"-- the reused connection failed ({why}): trying a new one") \
        == 3, r


def test_peer_refusing_rset(port, tmp_path):
    """A peer that does not implement RSET (502): the message goes over a
    new connection, and the peer's connections are no longer kept for
    reuse (one RSET tried in all)."""
    peer = counting_peer(port, b"502 5.5.1 RSET not implemented\r\n")
    try:
        a = message_file(tmp_path, "a", "no rset")
        r = outbound(["--port", port, "--per-address", 1] + many(a, "user@[127.0.0.4]", 4))
    finally:
        peer.close()
    for k in range(1, 5):
        assert r.rcpts[(k, "user@[127.0.0.4]")]["state"] == "DELIVERED", r
    assert peer.commands.count(b"<dot>") == 4, peer.conns
    assert peer.commands.count(b"RSET") == 1, peer.conns
    assert len(peer.conns) == 4, peer.conns
    for conn in peer.conns:
        assert conn.commands[-1] in (b"QUIT", b"RSET"), conn


def test_lone_message_connection_closed_at_once(start_server, port, tmp_path):
    """Nothing else in the engine: the connection gets QUIT as soon as the
    message is done (before its done callback), not after an idle wait."""
    srv = serve_at(start_server, "127.0.0.2", port, tmp_path / "m2")
    probes = settled_connects(srv)
    a = message_file(tmp_path, "a", "alone")
    t0 = time.monotonic()
    r = outbound(["--port", port, "--idle-ms", 5000, "-v", a, SENDER, "user@[127.0.0.2]"])
    assert time.monotonic() - t0 < 4, r
    assert r.rcpts[(1, "user@[127.0.0.2]")]["state"] == "DELIVERED", r
    lines = r.stderr.splitlines()
    assert lines[-1] == "C> QUIT", r
    assert len(wait_events(srv, "disconnect", probes + 1)) == probes + 1, srv.log()


def test_a_busy_peer_does_not_hold_every_slot(start_server, port, tmp_path):
    """--parallel 2, --per-address 1: four messages to a slow peer, then one
    to another server.  The routes waiting for the slow peer's one
    connection lend their slots, so the last message is delivered while
    the slow peer is still on its first."""
    fast = serve_at(start_server, "127.0.0.2", port, tmp_path / "m2")

    def slow(line, conn):
        if line == b"<dot>":
            time.sleep(0.5)
        return accepting(line)

    peer = ScriptedPeer(slow, host="127.0.0.4", port=port, connections=5, with_conn=True)
    try:
        a = message_file(tmp_path, "a", "to the slow peer")
        b = message_file(tmp_path, "b", "elsewhere")
        r = outbound(["--parallel", 2, "--per-address", 1, "--port", port]
                     + many(a, "user@[127.0.0.4]", 4) + [b, SENDER, "user@[127.0.0.2]"])
    finally:
        peer.close()
    assert r.done_order()[0] == 5, r
    for k in range(1, 5):
        assert r.rcpts[(k, "user@[127.0.0.4]")]["state"] == "DELIVERED", r
    assert r.rcpts[(5, "user@[127.0.0.2]")]["state"] == "DELIVERED", r
    assert peer.commands.count(b"<dot>") == 4, peer.conns
    assert len(peer.conns) == 1 and peer.commands.count(b"RSET") == 3, peer.conns
    assert len(mailbox_messages(fast.mailroot, "user", wait=2)) == 1


@pytest.mark.parametrize("after_dot, conns", [
    (b"", 1),                                   # stays idle: reused (RSET)
    (b"421 4.4.2 closing idle connection\r\n", 2),   # said while idle: not reused
])
def test_idle_connection_for_a_message_submitted_next(port, tmp_path, after_dot, conns):
    """Message 1's connection stays idle while the engine still works on
    message 2 (a slow peer elsewhere), so message 3, submitted from message
    1's done callback as a queue runner does, goes over it; unless the
    peer said something while it was idle (a 421 right after its 250),
    then a new connection is made and the idle one is closed unused."""
    def fast(line, conn):
        if line == b"<dot>":
            return b"250 2.0.0 queued\r\n" + after_dot
        return accepting(line)

    def greeting(conn):
        time.sleep(1.0)
        return b"220 slow.test ESMTP\r\n"

    p1 = ScriptedPeer(fast, host="127.0.0.4", port=port, connections=2, with_conn=True)
    p2 = ScriptedPeer(accepting, greeting=greeting, host="127.0.0.5", port=port)
    try:
        a = message_file(tmp_path, "a", "first")
        b = message_file(tmp_path, "b", "slow")
        c = message_file(tmp_path, "c", "next")
        r = outbound(["--port", port, a, SENDER, "user@[127.0.0.4]",
                      b, SENDER, "user@[127.0.0.5]", "+", c, SENDER, "user@[127.0.0.4]"])
    finally:
        p1.close()
        p2.close()
    assert r.done_order()[0] == 1, r
    for key in [(1, "user@[127.0.0.4]"), (2, "user@[127.0.0.5]"), (3, "user@[127.0.0.4]")]:
        assert r.rcpts[key]["state"] == "DELIVERED", r
    assert len(p1.conns) == conns, p1.conns
    assert p1.commands.count(b"<dot>") == 2, p1.conns
    assert p1.commands.count(b"RSET") == (1 if conns == 1 else 0), [c.commands for c in p1.conns]


def test_reuse_over_starttls(start_server, port, tmp_path):
    """--tls require against serve's STARTTLS: one handshake per connection,
    not per message."""
    srv = serve_at(start_server, "127.0.0.2", port, tmp_path / "m2")
    probes = settled_connects(srv)
    a = message_file(tmp_path, "a", "over tls")
    r = outbound(["--port", port, "--tls", "require"] + many(a, "user@[127.0.0.2]", 10))
    for k in range(1, 11):
        assert r.rcpts[(k, "user@[127.0.0.2]")]["state"] == "DELIVERED", r
    assert len(mailbox_messages(srv.mailroot, "user", wait=5)) == 10
    connects = serve_events(srv, "connect")[probes:]
    assert 1 <= len(connects) <= 5, connects
    assert len(wait_events(srv, "tls", len(connects))) == len(connects), srv.log()
    assert len(wait_events(srv, "mail", 10)) == 10, srv.log()


def test_idle_connection_closed_at_its_limit(port, tmp_path):
    """--idle-ms 200: message 1's idle connection gets QUIT after 0.2 s
    although the engine still waits for message 2's slow peer (2 s)."""
    p1 = ScriptedPeer(accepting, host="127.0.0.4", port=port, with_conn=True)

    def greeting(conn):
        time.sleep(2.0)
        return b"220 slow.test ESMTP\r\n"

    p2 = ScriptedPeer(accepting, greeting=greeting, host="127.0.0.5", port=port)
    a = message_file(tmp_path, "a", "first")
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
    proc = subprocess.Popen([OUTBOUND, "--port", str(port), "--idle-ms", "200",
                             a, SENDER, "user@[127.0.0.4]", a, SENDER, "user@[127.0.0.5]"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline and not (p1.conns and p1.conns[0].closed_by):
            time.sleep(0.02)
        still_running = proc.poll() is None
        out, err = proc.communicate(timeout=30)
    finally:
        p1.close()
        p2.close()
    assert still_running, (out, err)
    # "error": our close may meet the peer's 221 (a reset), as after any QUIT.
    assert p1.conns and p1.conns[0].closed_by in ("client", "error"), p1.conns
    assert p1.conns[0].commands[-2:] == [b"<dot>", b"QUIT"], p1.conns
    assert proc.returncode == 0 and out.decode().count(" DELIVERED ") == 2, (out, err)
