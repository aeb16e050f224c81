"""`rawmail send` against scripted SMTP peers on loopback: the fault cases
a real receiver cannot be made to show on demand.

  - every known refusal of src/msg/explain.c's table, as the real
    multi-line reply (the rows of tests/unit/test_msg_explain.c, parsed
    here so the texts live in one place), sent at the greeting, MAIL, RCPT
    or the final dot: exit status, the reply verbatim, cause and fix;
  - MX fallback (refused greeting, refused EHLO), EHLO -> HELO;
  - partial refusals at RCPT, 452 "too many recipients";
  - broken peers: split and bare-LF replies, overlong, endless and garbage
    replies, connections closed at every step, peers that stop answering;
  - STARTTLS failures per --tls mode, --tls verify and --tls-fingerprint.

Peers are peers.ScriptedPeer threads on 127.0.0.1, or on 127.0.0.2 and
127.0.0.3 sharing one port as the MX hosts of example.test in a private NSD
(--dns, --port).  Nothing asks the system resolver.
"""

import re
import ssl
import time

import pytest

from dns_util import NSD, free_dns_port
from helpers import REPO_ROOT, crlf, sample_message
from peers import ScriptedPeer
from send_util import SENDER, send
from tls_util import SERVER_NAME, pki  # noqa: F401 (pki is a fixture)

EXPLAIN_C = REPO_ROOT / "src" / "msg" / "explain.c"
EXPLAIN_TEST_C = REPO_ROOT / "tests" / "unit" / "test_msg_explain.c"

TEMPFAIL, UNAVAILABLE = 75, 69

# --------------------------------------------------------------------------
# The refusal texts, parsed from the C sources

_C_STRING = r'"(?:[^"\\\n]|\\.)*"'
_C_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "'": "'"}


def _c_unescape(literal):
    body = literal[1:-1]
    return re.sub(r"\\(.)", lambda m: _C_ESCAPES[m.group(1)], body)


def _strip_comments(src):
    return re.sub(r"/\*.*?\*/", " ", src, flags=re.S)


def parse_explain_cases(path=EXPLAIN_TEST_C):
    """[(name or None, wire)] from the `cases[]` table: wire is the reply's
    lines joined by CRLF, no final CRLF."""
    src = _strip_comments(path.read_text())
    m = re.search(r"static const struct explain_case cases\[\]\s*=\s*\{(.*?)\n\};", src, re.S)
    assert m, f"no cases[] table in {path}"
    table = m.group(1)
    rows = re.findall(r"\{\s*(NULL|" + _C_STRING + r")\s*,\s*((?:" + _C_STRING + r"\s*)+)\}",
                      table)
    # Every row opener was understood: none is silently skipped.
    assert len(rows) == len(re.findall(r"\{\s*(?:NULL|\")", table)), table
    out = []
    for name, wire in rows:
        text = "".join(_c_unescape(s) for s in re.findall(_C_STRING, wire))
        out.append((None if name == "NULL" else _c_unescape(name), text))
    return out


def _c_concat(expr, macros):
    """A C expression of string literals and string macros, concatenated."""
    parts = []
    for tok in re.findall(_C_STRING + r"|[A-Za-z_]\w*", expr):
        parts.append(_c_unescape(tok) if tok.startswith('"') else macros[tok])
    return "".join(parts)


def parse_explain_table(path=EXPLAIN_C):
    """{name: (cause, fix)} from the `.out = { "name", cause, fix }` of
    every entry of explain.c's table, its string macros expanded."""
    src = _strip_comments(path.read_text())
    macros = {}
    for name, body in re.findall(r"#define\s+(\w+)[ \t]+((?:[^\n]*\\\n)*[^\n]*)", src):
        body = body.replace("\\\n", " ").strip()
        if re.fullmatch(r"(?:" + _C_STRING + r"\s*)+", body):
            macros[name] = _c_concat(body, macros)
    table = {}
    outs = re.findall(r"\.out\s*=\s*\{((?:" + _C_STRING + r"|[^}\"])*)\}", src)
    assert len(outs) == src.count(".out ="), "an entry of explain.c was not understood"
    for out in outs:
        fields = re.findall(r"(?:" + _C_STRING + r"|[^,\"])+", out)
        fields = [f for f in fields if f.strip()]
        assert len(fields) == 3, out
        name, cause, fix = (_c_concat(f, macros) for f in fields)
        table[name] = (cause, fix)
    return table


EXPLAIN_CASES = parse_explain_cases()
EXPLANATIONS = parse_explain_table()


def refusal_stage(name, wire):
    """Where a real receiver sends this refusal: Gmail's policy replies
    (every "gsmtp" row) come after the message, rspamd's greylisting from
    its milter at the end of data too (but a refused sender, X.1.7, comes
    at MAIL); Comcast, Yahoo's [BL2x] and the
    PBL-by-banner refuse the connection; "Sender address rejected" answers
    MAIL; the rest (Postfix restrictions, Microsoft) answer RCPT."""
    if re.match(r"5\d\d[ -]5\.1\.7 ", wire):
        return "mail"           # a refused sender: at MAIL, Gmail's too
    if "gsmtp" in wire or name == "greylisted-try-later":
        return "dot"
    if re.search(r"Connections (will )?not (be )?accepted|comcast|is on the Spamhaus PBL", wire):
        return "greeting"
    if "Sender address rejected" in wire:
        return "mail"
    return "rcpt"


# --------------------------------------------------------------------------
# Scripts

EHLO = (b"250-peer.test Hello client.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
        b"250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n")
EHLO_PLAIN = b"250-peer.test Hello client.test\r\n250 8BITMIME\r\n"   # no PIPELINING
EHLO_TLS = (b"250-peer.test Hello client.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n"
            b"250 8BITMIME\r\n")
QUEUED = b"250 2.0.0 Ok: queued as 4Bq1\r\n"
NO_VALID = b"554 5.5.1 Error: no valid recipients\r\n"
GREETING = b"220 peer.test ESMTP\r\n"

_VERBS = {b"EHLO": "ehlo", b"HELO": "helo", b"STARTTLS": "starttls", b"MAIL": "mail",
          b"RCPT": "rcpt", b"DATA": "data", b"<dot>": "dot", b"RSET": "rset", b"QUIT": "quit"}


def smtp(**steps):
    """A script answering each command by its verb: ehlo, helo, starttls,
    mail, rcpt, data, dot (the end of the message), rset, quit, other.
    A step is bytes (the reply; b"": no answer), None (close the
    connection) or a callable(line) returning either."""
    replies = dict(ehlo=EHLO, helo=b"250 peer.test\r\n",
                   starttls=b"502 5.5.1 Error: command not recognized\r\n",
                   mail=b"250 2.1.0 Ok\r\n", rcpt=b"250 2.1.5 Ok\r\n",
                   data=b"354 End data with <CR><LF>.<CR><LF>\r\n", dot=QUEUED,
                   rset=b"250 2.0.0 Ok\r\n", quit=b"221 2.0.0 Bye\r\n",
                   other=b"502 5.5.2 Error: command not recognized\r\n")
    unknown = set(steps) - set(replies)
    assert not unknown, unknown
    replies.update(steps)

    def script(line):
        verb = line if line == b"<dot>" else re.split(rb"[ :]", line, 1)[0].upper()
        r = replies[_VERBS.get(verb, "other")]
        return r(line) if callable(r) else r
    return script


def verbs(conn):
    """A connection's commands as verbs: [b"EHLO", b"MAIL", ..., b"<dot>"]."""
    return [c if c == b"<dot>" else re.split(rb"[ :]", c, 1)[0].upper() for c in conn.commands]


# --------------------------------------------------------------------------
# Fixtures and running

ZONE = """\
@             MX 10 mx1
@             MX 20 mx2
mx1           A 127.0.0.2
mx2           A 127.0.0.3
tlsv          MX 10 mx
mx            A 127.0.0.2
"""


# bücher.example in its A-label form (RFC 5890), with its MX at 127.0.0.2.
IDN_ZONE = "xn--bcher-kva.example"
IDN_ZONE_TEXT = """\
@             MX 10 mx
mx            A 127.0.0.2
"""


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    """One NSD for the module: example.test MX mx1 (127.0.0.2) and mx2
    (127.0.0.3); tlsv.example.test MX mx.example.test (127.0.0.2), the name
    in tls_util's certificates; xn--bcher-kva.example MX mx (127.0.0.2)."""
    base = tmp_path_factory.mktemp("nsd")
    for attempt in range(3):
        n = NSD(base / f"try{attempt}", {"example.test": ZONE, IDN_ZONE: IDN_ZONE_TEXT})
        n.port = free_dns_port()
        n._write()
        n.check()
        problem = n.start()
        if problem is None:
            break
    else:
        pytest.fail(f"could not start nsd: {problem}\n{n.log()}")
    yield n
    n.stop()


@pytest.fixture
def peers():
    """Factory: peers(script, **ScriptedPeer options) -> a started peer,
    closed at teardown."""
    started = []

    def make(script, **kw):
        p = ScriptedPeer(script, **kw)
        started.append(p)
        return p

    yield make
    for p in started:
        p.close()


@pytest.fixture
def mx_pair(peers):
    """Factory: mx_pair(first, second) with dicts of ScriptedPeer options
    (script= among them) -> (peer at 127.0.0.2, peer at 127.0.0.3), one
    port, the MX hosts of example.test."""
    def make(first, second):
        for _ in range(20):
            one = peers(**first, host="127.0.0.2")
            try:
                two = peers(**second, host="127.0.0.3", port=one.port)
            except OSError:
                continue
            return one, two
        raise RuntimeError("no port free on both 127.0.0.2 and 127.0.0.3")
    return make


def run(args, message=None, **kw):
    """rawmail send with a fixed EHLO name and sender."""
    if message is None:
        message = sample_message("peers")
    return send(["--helo", "client.test", "-f", SENDER, *map(str, args)], message, **kw)


def literal(peer, *args, rcpts=("user@[127.0.0.1]",), **kw):
    """Sends to address-literal recipients at the peer on 127.0.0.1."""
    return run(["--port", peer.port, *args, *rcpts], **kw)


def via_mx(dns, port, *args, rcpts=("user@example.test",), **kw):
    return run(["--dns", dns.addr, "--port", port, *args, *rcpts], **kw)


def block_lines(s, rcpt):
    return s.result(rcpt).splitlines()


def assert_reply_verbatim(s, rcpt, wire):
    """The result block of rcpt holds every line of the reply as sent: on
    the result line itself for a one-line reply, else one indented line
    each, in order, right after it."""
    lines = block_lines(s, rcpt)
    wire_lines = wire.split("\r\n")
    if len(wire_lines) == 1:
        assert lines[0].endswith(": " + wire), s
    else:
        assert lines[0].endswith(":"), s
        assert lines[1:1 + len(wire_lines)] == ["    " + w for w in wire_lines], s


def assert_exit(s, code):
    assert s.rc == code, s
    # Issue 9: what fails temporarily is queued, a line says so.
    if code == TEMPFAIL:
        assert "rawmail send: queued as" in s.err, s
    else:
        assert "rawmail send: queued as" not in s.err, s


# --------------------------------------------------------------------------
# 1. Every known refusal, as the real reply, at the step where it comes

def _case_id(i, name, wire):
    return f"{i:02d}-{name or 'none'}-{refusal_stage(name, wire)}"


NAMED = [(n, w) for n, w in EXPLAIN_CASES if n]
UNEXPLAINED = [(n, w) for n, w in EXPLAIN_CASES if not n and w[0] in "45"]


def test_parsed_tables_are_complete():
    """Every entry of explain.c's table has at least one row here (so the
    parametrized test below covers it), with a cause and a fix; the texts
    were really parsed."""
    assert len(EXPLANATIONS) >= 20, EXPLANATIONS
    assert len(EXPLANATIONS) == EXPLAIN_C.read_text().count(".out ="), EXPLANATIONS.keys()
    for name, (cause, fix) in EXPLANATIONS.items():
        assert any(n == name for n, _ in NAMED), f"entry {name} has no refusal row"
        assert len(cause) > 20 and len(fix) > 20, (name, cause, fix)
        assert "FIX_" not in fix and "CAUSE_" not in cause, (name, cause, fix)
    assert {n for n, _ in NAMED} <= set(EXPLANATIONS), "a row names an unknown entry"
    assert len(NAMED) >= len(EXPLANATIONS) and UNEXPLAINED
    # The stages in use: greeting, MAIL, RCPT and the final dot all occur.
    assert {refusal_stage(n, w) for n, w in NAMED} == {"greeting", "mail", "rcpt", "dot"}
    # Spot checks of the expansion of explain.c's macros.
    assert EXPLANATIONS["greylisted"] == EXPLANATIONS["greylisted-try-later"]
    assert "rawmail send -4" in EXPLANATIONS["ipv6-no-ptr"][1]
    assert EXPLANATIONS["spf-fail"][1].startswith("list this host's IP address in the SPF")
    assert "relay through your ISP's" in EXPLANATIONS["no-ptr"][1]


def refusal_peer(peers, stage, wire):
    reply = wire.encode() + b"\r\n"
    if stage == "greeting":
        return peers(smtp(), greeting=reply)
    if stage == "mail":
        # Pipelined RCPT and DATA after a refused MAIL get 503 (Postfix).
        return peers(smtp(mail=reply, rcpt=b"503 5.5.1 Error: need MAIL command\r\n",
                          data=b"503 5.5.1 Error: need RCPT command\r\n"))
    if stage == "rcpt":
        return peers(smtp(rcpt=reply, data=NO_VALID))
    return peers(smtp(dot=reply))


@pytest.mark.parametrize("name, wire", NAMED,
                         ids=[_case_id(i, n, w) for i, (n, w) in enumerate(NAMED)])
def test_known_refusal_explained(peers, name, wire):
    stage = refusal_stage(name, wire)
    peer = refusal_peer(peers, stage, wire)
    rcpt = "user@[127.0.0.1]"
    s = literal(peer)
    permanent = wire.startswith("5")
    assert_exit(s, UNAVAILABLE if permanent else TEMPFAIL)
    lines = block_lines(s, rcpt)
    assert lines[0].startswith(
        f"{rcpt}: refused (permanent) by [127.0.0.1]:{peer.port}" if permanent
        else f"{rcpt}: not delivered (temporary failure) at [127.0.0.1]:{peer.port}"), s
    assert_reply_verbatim(s, rcpt, wire)
    cause, fix = EXPLANATIONS[name]
    assert f"  likely cause: {cause}" in lines, s
    assert f"  fix: {fix}" in lines, s
    assert lines.index(f"  likely cause: {cause}") + 1 == lines.index(f"  fix: {fix}"), s
    # The refusal came where it was scripted, and the message went only
    # when it was refused after it.
    [conn] = peer.conns
    if stage == "greeting":
        assert conn.commands == [], conn      # nothing said to a refusing greeting
    else:
        assert verbs(conn)[0] == b"EHLO", conn
    if stage == "dot":
        assert verbs(conn)[-2:] == [b"<dot>", b"QUIT"], conn
        assert b"Hello from the integration tests." in conn.body
    else:
        assert b"<dot>" not in conn.commands and conn.body == b"", conn


@pytest.mark.parametrize("wire", [w for _, w in UNEXPLAINED],
                         ids=[f"{w[:9]}" for _, w in UNEXPLAINED])
def test_other_refusals_not_explained(peers, wire):
    """Replies the table must not explain (unknown user, quota, relay...):
    shown verbatim, with no cause or fix.  Size and queue-file errors come
    at the end of the message (a 552 at RCPT would mean "too many
    recipients", RFC 5321 §4.5.3.1.10), the rest at RCPT."""
    stage = "dot" if re.search(r"size exceeds|queue file", wire) else "rcpt"
    peer = refusal_peer(peers, stage, wire)
    s = literal(peer)
    assert_exit(s, UNAVAILABLE if wire.startswith("5") else TEMPFAIL)
    assert_reply_verbatim(s, "user@[127.0.0.1]", wire)
    assert "likely cause:" not in s.err and "  fix:" not in s.err, s


# --------------------------------------------------------------------------
# 2. and 7. MX fallback; EHLO refused

FIRST_MX_REFUSES = {
    "greeting-554": dict(script=smtp(), greeting=b"554 5.7.1 go away\r\n"),
    "greeting-421": dict(script=smtp(), greeting=b"421 4.3.2 Service shutting down\r\n"),
    "greeting-554-multiline": dict(
        script=smtp(), greeting=b"554-5.7.1 mx1 does not take mail\r\n554 5.7.1 try mx2\r\n"),
    "ehlo-550": dict(script=smtp(ehlo=b"550 5.7.1 EHLO refused\r\n")),
    "ehlo-421": dict(script=smtp(ehlo=b"421 4.7.0 too busy, closing\r\n")),
    "ehlo-502-then-helo-550": dict(script=smtp(ehlo=b"502 5.5.2 what\r\n",
                                               helo=b"550 5.7.1 HELO refused\r\n")),
}


@pytest.mark.parametrize("how", list(FIRST_MX_REFUSES))
def test_first_mx_refuses_second_delivers(dns, mx_pair, how):
    one, two = mx_pair(FIRST_MX_REFUSES[how], dict(script=smtp()))
    s = via_mx(dns, one.port, "-v")
    assert_exit(s, 0)
    assert s.result("user@example.test").startswith(
        f"user@example.test: delivered to mx2.example.test [127.0.0.3]:{one.port}: 250 2.0.0 Ok: queued as"), s
    [c1] = one.conns
    [c2] = two.conns
    # The first host never saw a transaction; only the second got the message.
    assert b"MAIL" not in verbs(c1) and c1.body == b"", c1
    assert verbs(c2) == [b"EHLO", b"MAIL", b"RCPT", b"DATA", b"<dot>", b"QUIT"], c2
    assert b"Hello from the integration tests." in c2.body
    expected_c1 = {"greeting": [], "ehlo-550": [b"EHLO"], "ehlo-421": [b"EHLO"],
                   "ehlo-502-then-helo-550": [b"EHLO", b"HELO"]}
    assert verbs(c1) == expected_c1[how.split("-")[0] if how.startswith("greeting") else how], c1
    t = "\n".join(s.transcript())
    i1 = t.index("-- connecting to mx1.example.test [127.0.0.2]:")
    i2 = t.index("-- connecting to mx2.example.test [127.0.0.3]:")
    assert i1 < i2, t
    first_reply = (FIRST_MX_REFUSES[how].get("greeting") or b"").decode()
    if first_reply:
        assert "S> " + first_reply.splitlines()[-1] in t[i1:i2], t
    reason = ("greeting refused" if how.startswith("greeting")
              else "HELO refused" if "helo" in how else "EHLO refused")
    assert f"-- mx1.example.test [127.0.0.2] will not take the message now: {reason}" in t, t


@pytest.mark.parametrize("g1, g2, rc", [
    (b"554 5.7.1 go away\r\n", b"554 5.7.1 no thanks\r\n", UNAVAILABLE),
    (b"554 5.7.1 go away\r\n", b"421 4.3.2 busy\r\n", TEMPFAIL),
    (b"421 4.3.2 busy\r\n", b"554 5.7.1 no thanks\r\n", TEMPFAIL),
])
def test_every_mx_refuses_greeting(dns, mx_pair, g1, g2, rc):
    """Permanent only when every host refused with 5xx; the result shows
    the last host's reply."""
    one, two = mx_pair(dict(script=smtp(), greeting=g1), dict(script=smtp(), greeting=g2))
    s = via_mx(dns, one.port)
    assert_exit(s, rc)
    r = s.result("user@example.test")
    assert r.endswith(f"mx2.example.test [127.0.0.3]:{one.port}: " + g2.decode().strip()), s
    assert len(one.conns) == 1 and len(two.conns) == 1


@pytest.mark.parametrize("code", [b"502 5.5.2 Error: command not recognized", b"500 5.5.1 what"])
def test_ehlo_not_known_helo_fallback(peers, code):
    """RFC 5321 §4.1.4: 500/502 to EHLO: HELO on the same connection, and
    plain SMTP from there (no ESMTP parameters, no pipelining)."""
    peer = peers(smtp(ehlo=code + b"\r\n"))
    s = literal(peer, "-v")
    assert_exit(s, 0)
    [conn] = peer.conns
    assert conn.commands == [b"EHLO client.test", b"HELO client.test",
                             b"MAIL FROM:<alice@client.test>", b"RCPT TO:<user@[127.0.0.1]>",
                             b"DATA", b"<dot>", b"QUIT"], conn
    assert f"delivered to [127.0.0.1]:{peer.port}: 250 2.0.0 Ok: queued as 4Bq1" in s.err, s


@pytest.mark.parametrize("steps", [dict(greeting=b"554 5.7.1 go away\r\n"),
                                   dict(greeting=None)], ids=["refused", "lost"])
def test_literal_transcript_notes_name_the_address_once(peers, steps):
    peer = peers(smtp(), **steps)
    s = literal(peer, "-v")
    notes = [l for l in s.transcript() if l.startswith("-- [127.0.0.1]")]
    assert len(notes) == 1, s
    assert "[127.0.0.1] [127.0.0.1]" not in s.err, s


def test_ehlo_refused_550_single_host_is_permanent(peers):
    peer = peers(smtp(ehlo=b"550 5.7.1 Client host rejected: go away\r\n"), connections=2)
    s = literal(peer)
    assert_exit(s, UNAVAILABLE)
    assert s.result("user@[127.0.0.1]").endswith(": 550 5.7.1 Client host rejected: go away"), s
    assert [verbs(c) for c in peer.conns] == [[b"EHLO"]], peer.conns   # no HELO, no retry


# --------------------------------------------------------------------------
# 3. Partial refusals at RCPT

GMAIL_NOSUCH = ("550-5.1.1 The email account that you tried to reach does not exist. Please try\r\n"
                "550-5.1.1 double-checking the recipient's email address for typos or\r\n"
                "550-5.1.1 unnecessary spaces. Learn more at\r\n"
                "550 5.1.1  https://support.google.com/mail/?p=NoSuchUser x1si1 - gsmtp")


def per_rcpt(replies, default=b"250 2.1.5 OK x1si1 - gsmtp\r\n"):
    """An RCPT step: the reply for the first local part found in the line."""
    def step(line):
        for local, reply in replies.items():
            if f"<{local}@".encode() in line:
                return reply
        return default
    return step


@pytest.mark.parametrize("ehlo", [EHLO, EHLO_PLAIN], ids=["pipelining", "no-pipelining"])
def test_one_recipient_refused_other_delivered(peers, ehlo):
    peer = peers(smtp(ehlo=ehlo, rcpt=per_rcpt({"nosuch": GMAIL_NOSUCH.encode() + b"\r\n"}),
                      dot=b"250 2.0.0 OK  1700000000 x1si1 - gsmtp\r\n"))
    s = literal(peer, rcpts=["nosuch@[127.0.0.1]", "good@[127.0.0.1]"])
    assert_exit(s, UNAVAILABLE)
    lines = block_lines(s, "nosuch@[127.0.0.1]")
    assert lines[0] == f"nosuch@[127.0.0.1]: refused (permanent) by [127.0.0.1]:{peer.port}:", s
    assert_reply_verbatim(s, "nosuch@[127.0.0.1]", GMAIL_NOSUCH)
    assert len(lines) == 5, s                                  # no cause, no fix
    assert s.result("good@[127.0.0.1]") == (
        f"good@[127.0.0.1]: delivered to [127.0.0.1]:{peer.port}: 250 2.0.0 OK  1700000000 x1si1 - gsmtp"), s
    [conn] = peer.conns
    assert verbs(conn) == [b"EHLO", b"MAIL", b"RCPT", b"RCPT", b"DATA", b"<dot>", b"QUIT"], conn
    assert conn.commands[2:4] == [b"RCPT TO:<nosuch@[127.0.0.1]>", b"RCPT TO:<good@[127.0.0.1]>"]
    assert conn.body.count(b"Hello from the integration tests.") == 1, conn


@pytest.mark.parametrize("ehlo, data, sent", [
    (EHLO, NO_VALID, [b"DATA"]),                    # pipelined DATA refused: nothing sent
    (EHLO, b"354 go ahead\r\n", [b"DATA", b"<dot>"]),  # accepted anyway: an empty message
    (EHLO_PLAIN, b"354 go ahead\r\n", []),          # no pipelining: no DATA at all
], ids=["pipelined-554", "pipelined-354", "no-pipelining"])
def test_every_recipient_refused_message_not_sent(peers, ehlo, data, sent):
    """RFC 2920 §3.1: a pipelined DATA after refused RCPTs that the server
    accepts anyway is ended at once with the dot alone."""
    peer = peers(smtp(ehlo=ehlo, rcpt=b"550 5.1.1 <x>: Recipient address rejected: "
                                      b"User unknown in local recipient table\r\n", data=data))
    s = literal(peer, rcpts=["a@[127.0.0.1]", "b@[127.0.0.1]"])
    assert_exit(s, UNAVAILABLE)
    for r in ("a@[127.0.0.1]", "b@[127.0.0.1]"):
        assert s.result(r).endswith(": 550 5.1.1 <x>: Recipient address rejected: "
                                    "User unknown in local recipient table"), s
    [conn] = peer.conns
    assert verbs(conn) == [b"EHLO", b"MAIL", b"RCPT", b"RCPT", *sent, b"QUIT"], conn
    assert conn.body == b"", conn


# --------------------------------------------------------------------------
# 4. 452 too many recipients

def limited_rcpt(limit, reply):
    """A with_conn script accepting `limit` recipients per transaction;
    DATA with none accepted gets 554."""
    base = smtp()

    def script(line, conn):
        if line.startswith(b"MAIL") or line == b"RSET":
            conn.state["n"] = 0
        if line.startswith(b"RCPT"):
            conn.state["n"] = conn.state.get("n", 0) + 1
            if conn.state["n"] > limit:
                return reply
        if line == b"DATA" and min(conn.state.get("n", 0), limit) == 0:
            return NO_VALID
        return base(line)
    return script


@pytest.mark.parametrize("n, reply", [
    (4, b"452 4.5.3 Error: too many recipients\r\n"),
    (5, b"452 4.5.3 Error: too many recipients\r\n"),
    (5, b"552 5.5.3 Too many recipients\r\n"),          # RFC 821's way of saying it
])
def test_too_many_recipients_rest_in_next_transaction(peers, n, reply):
    peer = peers(limited_rcpt(2, reply), with_conn=True, connections=5)
    rcpts = [f"r{i}@[127.0.0.1]" for i in range(1, n + 1)]
    s = literal(peer, "-v", rcpts=rcpts)
    assert_exit(s, 0)
    for r in rcpts:
        assert s.result(r).startswith(f"{r}: delivered to [127.0.0.1]:{peer.port}: 250 2.0.0 "), s
    transactions = (n + 1) // 2
    mails = [c for c in peer.commands if c.startswith(b"MAIL")]
    # The deferred recipients go over the same connection (issue 9), RSET
    # before each further transaction (RFC 5321 §4.1.1.5).
    assert len(mails) == transactions and len(peer.conns) == 1, peer.conns
    [conn] = peer.conns
    assert conn.commands.count(b"RSET") == transactions - 1, conn
    assert conn.commands[-1] == b"QUIT", conn
    # Each transaction asked for every recipient not yet taken, in order.
    starts = [i for i, c in enumerate(conn.commands) if c.startswith(b"MAIL")] + [None]
    for k in range(transactions):
        asked = conn.commands[starts[k]:starts[k + 1]]
        assert [c for c in asked if c.startswith(b"RCPT")] == \
            [f"RCPT TO:<{r}>".encode() for r in rcpts[2 * k:]], conn
    assert conn.body.count(b"Hello from the integration tests.") == transactions, conn
    assert s.err.count("-- sending the recipients the server deferred in another "
                       "transaction") == transactions - 1, s
    assert s.err.count("-- reusing the connection to") == transactions - 1, s


def test_452_to_every_first_recipient_gives_up(peers):
    """No progress in a transaction: no endless loop of new ones."""
    peer = peers(limited_rcpt(0, b"452 4.5.3 Error: too many recipients\r\n"),
                 with_conn=True, connections=5)
    rcpts = ["a@[127.0.0.1]", "b@[127.0.0.1]"]
    s = literal(peer, rcpts=rcpts)
    assert_exit(s, TEMPFAIL)
    for r in rcpts:
        assert s.result(r) == (f"{r}: not delivered (temporary failure) at [127.0.0.1]:{peer.port}: "
                               "452 4.5.3 Error: too many recipients"), s
    assert len(peer.conns) == 1, peer.conns
    assert verbs(peer.conns[0]) == [b"EHLO", b"MAIL", b"RCPT", b"RCPT", b"DATA", b"QUIT"]
    assert peer.conns[0].body == b""
    assert s.elapsed < 10, s


# --------------------------------------------------------------------------
# 5. Broken peers

def test_replies_split_byte_by_byte(peers):
    """Every reply arrives one octet per segment, a few ms apart."""
    peer = peers(smtp(), trickle=0.001,
                 greeting=b"220-peer.test ESMTP\r\n220-no UCE\r\n220 welcome\r\n")
    s = literal(peer, "-v")
    assert_exit(s, 0)
    t = s.transcript()
    for line in ("S> 220-peer.test ESMTP", "S> 220-no UCE", "S> 220 welcome",
                 "S> 250-PIPELINING", "S> 250 ENHANCEDSTATUSCODES",
                 "S> 250 2.0.0 Ok: queued as 4Bq1"):
        assert line in t, s
    assert f"user@[127.0.0.1]: delivered to [127.0.0.1]:{peer.port}: 250 2.0.0 Ok: queued as 4Bq1" in s.err


def test_bare_lf_replies_accepted(peers):
    """reply_parse.h: a bare LF ends a reply line too (tolerant reader): a
    multi-line EHLO with bare LFs still announces PIPELINING."""
    def lf(r):
        return r.replace(b"\r\n", b"\n")
    peer = peers(smtp(ehlo=lf(EHLO), mail=b"250 2.1.0 Ok\n", rcpt=b"250 2.1.5 Ok\n",
                      data=b"354 go\n", dot=b"250 2.0.0 Ok: queued as LF\n", quit=b"221 bye\n"),
                 greeting=b"220 peer.test ESMTP\n")
    s = literal(peer, "-v")
    assert_exit(s, 0)
    t = s.transcript()
    assert "S> 250-PIPELINING" in t and "S> 250 ENHANCEDSTATUSCODES" in t, s
    # PIPELINING was understood: MAIL, RCPT and DATA go before any reply.
    i = t.index("S> 250 ENHANCEDSTATUSCODES")
    assert t[i + 1].startswith("C> MAIL FROM:<alice@client.test> SIZE="), s
    assert t[i + 2:i + 4] == ["C> RCPT TO:<user@[127.0.0.1]>", "C> DATA"], s
    assert f"delivered to [127.0.0.1]:{peer.port}: 250 2.0.0 Ok: queued as LF" in s.err, s


def test_control_characters_in_reply_are_neutralised(peers):
    """A reply cannot write escape sequences to the user's terminal."""
    peer = peers(smtp(rcpt=b"550 5.1.1 \x1b[2J\x1b[31mred\x07 bad\rcr\r\n", data=NO_VALID))
    s = literal(peer)
    assert_exit(s, UNAVAILABLE)
    assert "\x1b" not in s.err and "\x07" not in s.err and "\r" not in s.err, repr(s.err)
    assert s.result("user@[127.0.0.1]").endswith(": 550 5.1.1 ?[2J?[31mred? bad?cr"), s


def test_long_reply_line_within_bound_accepted(peers):
    """Longer than RFC 5321's 512 octets but within the parser's 2048: taken."""
    text = b"2.1.5 Ok " + b"x" * 900
    peer = peers(smtp(rcpt=b"250 " + text + b"\r\n"))
    s = literal(peer)
    assert_exit(s, 0)
    assert b"<dot>" in peer.conns[0].commands


OVERLONG = b"x" * 3000
ENDLESS = b"".join(b"250-line %d\r\n" % i for i in range(5000)) + b"250 end\r\n"


@pytest.mark.parametrize("where, steps", [pytest.param(*p, id=p[0]) for p in [
    ("greeting-overlong", dict(greeting=b"220 " + OVERLONG + b"\r\n")),
    ("ehlo-overlong", dict(script=smtp(ehlo=b"250-peer.test\r\n250-" + OVERLONG + b"\r\n"
                                            b"250 PIPELINING\r\n"))),
    ("rcpt-overlong", dict(script=smtp(rcpt=b"550 5.1.1 " + OVERLONG + b"\r\n"))),
    ("greeting-endless", dict(greeting=b"220-" + ENDLESS.replace(b"250", b"220"))),
    ("ehlo-endless", dict(script=smtp(ehlo=ENDLESS))),
    ("greeting-text", dict(greeting=b"hello there\r\n")),
    ("greeting-http", dict(greeting=b"HTTP/1.1 400 Bad Request\r\n\r\n")),
    ("greeting-bad-digit", dict(greeting=b"2x0 peer.test\r\n")),
    ("greeting-1xx", dict(greeting=b"199 peer.test\r\n")),
    ("greeting-6xx", dict(greeting=b"620 peer.test\r\n")),
    ("greeting-nul", dict(greeting=b"220 peer\x00.test\r\n")),
    ("greeting-empty-line", dict(greeting=b"\r\n220 peer.test\r\n")),
    ("greeting-bad-separator", dict(greeting=b"220_peer.test\r\n")),
    ("ehlo-codes-differ", dict(script=smtp(ehlo=b"250-peer.test\r\n251 PIPELINING\r\n"))),
    ("rcpt-codes-differ", dict(script=smtp(rcpt=b"250-ok\r\n550 5.1.1 no\r\n"))),
]])
def test_malformed_reply_is_temporary(peers, where, steps):
    """An unparsable, overlong (over 2048 octets) or endless (over 100
    lines) reply ends the connection as "malformed reply": a temporary
    failure, nothing sent."""
    steps.setdefault("script", smtp())
    peer = peers(**steps)
    s = literal(peer)
    assert_exit(s, TEMPFAIL)
    assert s.result("user@[127.0.0.1]") == (
        f"user@[127.0.0.1]: not delivered (temporary failure) at [127.0.0.1]:{peer.port}: malformed reply"), s
    [conn] = peer.conns
    assert conn.body == b"" and b"<dot>" not in conn.commands, conn
    assert s.elapsed < 10, s


def test_malformed_reply_to_the_dot_may_have_been_delivered(peers):
    peer = peers(smtp(dot=b"250 " + OVERLONG + b"\r\n"))
    s = literal(peer)
    assert_exit(s, TEMPFAIL)
    assert s.result("user@[127.0.0.1]").endswith(
        ": malformed reply after the message was sent: it may have been delivered"), s


def test_3xx_to_rcpt_is_not_success(peers):
    """A reply class that makes no sense for the step is a temporary
    failure of it, never success."""
    peer = peers(smtp(rcpt=b"354 sure\r\n", data=NO_VALID))
    s = literal(peer)
    assert_exit(s, TEMPFAIL)
    assert s.result("user@[127.0.0.1]").endswith(": 354 sure"), s
    assert peer.conns[0].body == b""


def test_message_over_peer_size_limit_not_sent(peers):
    """RFC 1870 §6: over the announced SIZE, the message is refused here,
    before MAIL."""
    peer = peers(smtp(ehlo=EHLO.replace(b"SIZE 10240000", b"SIZE 100")))
    s = literal(peer)
    assert_exit(s, UNAVAILABLE)
    assert s.result("user@[127.0.0.1]").startswith(
        f"user@[127.0.0.1]: refused (permanent) by [127.0.0.1]:{peer.port}: 552 "), s
    assert s.result("user@[127.0.0.1]").endswith(" message larger than the peer's SIZE limit"), s
    assert verbs(peer.conns[0]) == [b"EHLO", b"QUIT"], peer.conns


def test_own_size_refusal_shows_enhanced_code(peers):
    peer = peers(smtp(ehlo=EHLO.replace(b"SIZE 10240000", b"SIZE 100")))
    s = literal(peer)
    assert s.result("user@[127.0.0.1]").endswith(
        ": 552 5.3.4 message larger than the peer's SIZE limit"), s


CLOSES = {
    "at-greeting": dict(greeting=None),
    "after-greeting": dict(script=smtp(ehlo=None)),
    "after-mail": dict(script=smtp(mail=None)),
    "after-rcpt": dict(script=smtp(rcpt=None)),
}


@pytest.mark.parametrize("when", list(CLOSES))
def test_first_mx_closes_before_message_second_delivers(dns, mx_pair, when):
    """A connection lost before the message went: the next host gets it."""
    steps = dict(CLOSES[when])
    steps.setdefault("script", smtp())
    one, two = mx_pair(steps, dict(script=smtp()))
    s = via_mx(dns, one.port, "-v")
    assert_exit(s, 0)
    assert s.result("user@example.test").startswith(
        f"user@example.test: delivered to mx2.example.test [127.0.0.3]:{one.port}: "), s
    assert "-- mx1.example.test [127.0.0.2]: connection closed by the peer" in s.err or \
        "-- mx1.example.test [127.0.0.2]: connection failed" in s.err, s
    assert len(two.conns) == 1 and b"<dot>" in two.conns[0].commands


@pytest.mark.parametrize("when", ["after-greeting", "after-rcpt"])
def test_only_host_closes_is_temporary(peers, when):
    peer = peers(CLOSES[when]["script"])
    s = literal(peer)
    assert_exit(s, TEMPFAIL)
    assert s.result("user@[127.0.0.1]") == ("user@[127.0.0.1]: not delivered (temporary "
                                            f"failure) at [127.0.0.1]:{peer.port}: connection closed by "
                                            "the peer"), s


# Larger than every socket buffer on the way: when the peer gives up after
# its first line, the end of the message is still unwritten.
BIG = crlf("Subject: big\n\n") + (b"y" * 76 + b"\r\n") * 250000    # 19.5 MB


def _stall_once():
    calls = []

    def body_line(line):
        if not calls:
            calls.append(line)
            time.sleep(3)       # stops reading: rawmail's writes time out (2 s)
        return True
    return body_line


@pytest.mark.parametrize("how", ["closes", "stops-reading"])
def test_first_mx_fails_mid_body_of_large_message_second_delivers(dns, mx_pair, how):
    """RFC 5321 §4.1.1.4: without the final dot the transaction is aborted;
    route.h: a failure 'before the message was sent' moves to the next
    address."""
    big_ehlo = EHLO.replace(b"SIZE 10240000", b"SIZE 104857600")
    body_line = (lambda line: None) if how == "closes" else _stall_once()
    one, two = mx_pair(dict(script=smtp(ehlo=big_ehlo), body_line=body_line),
                       dict(script=smtp(ehlo=big_ehlo)))
    s = via_mx(dns, one.port, "-v", "--timeout", 2, message=BIG, timeout=30)
    assert "C> (" not in s.err.split("connecting to mx2")[0], s    # the dot was never written
    assert len(one.conns) == 1 and 0 < len(one.conns[0].body) < len(BIG) // 2
    assert "may have been delivered" not in s.err, s
    assert_exit(s, 0)
    assert len(two.conns) == 1 and b"<dot>" in two.conns[0].commands


def test_first_mx_closes_after_dot_not_retried(dns, mx_pair):
    """After the final dot the outcome is unknown: a temporary failure, and
    never the next MX (it could deliver twice)."""
    one, two = mx_pair(dict(script=smtp(dot=None)), dict(script=smtp()))
    s = via_mx(dns, one.port, "-v")
    assert_exit(s, TEMPFAIL)
    assert s.result("user@example.test") == (
        f"user@example.test: not delivered (temporary failure) at mx1.example.test [127.0.0.2]:{one.port}: "
        "connection closed by the peer after the message was sent: it may have been delivered"), s
    assert b"<dot>" in one.conns[0].commands
    assert two.conns == [], two.conns
    assert "connecting to mx2" not in s.err, s


# Stopping to answer: --timeout 2 bounds each wait.

@pytest.mark.parametrize("where, steps", [pytest.param(*p, id=p[0]) for p in [
    ("no-greeting", dict(greeting=b"")),
    ("half-greeting", dict(greeting=b"220-peer.test\r\n")),
    ("after-ehlo", dict(script=smtp(ehlo=b""))),
    ("mid-ehlo-reply", dict(script=smtp(ehlo=b"250-peer.test\r\n250-PIPE"))),
    ("after-rcpt", dict(script=smtp(rcpt=b"", data=b""))),
]])
def test_peer_stops_answering_times_out(peers, where, steps):
    steps.setdefault("script", smtp())
    peer = peers(**steps)
    s = literal(peer, "--timeout", 2, timeout=30)
    assert_exit(s, TEMPFAIL)
    assert s.result("user@[127.0.0.1]") == (
        f"user@[127.0.0.1]: not delivered (temporary failure) at [127.0.0.1]:{peer.port}: "
        "timed out waiting for a reply"), s
    assert "probably" not in s.err          # it connected: not a blocked port
    assert 1.8 < s.elapsed < 6, s
    assert peer.conns[0].body == b""


def test_silent_first_mx_then_second_delivers(dns, mx_pair):
    one, two = mx_pair(dict(script=smtp(), greeting=b""), dict(script=smtp()))
    s = via_mx(dns, one.port, "-v", "--timeout", 2, timeout=30)
    assert_exit(s, 0)
    assert "-- mx1.example.test [127.0.0.2]: timed out waiting for a reply" in s.err, s
    assert "delivered to mx2.example.test [127.0.0.3]" in s.result("user@example.test")
    assert 1.8 < s.elapsed < 6, s


# --------------------------------------------------------------------------
# 6. STARTTLS failures per mode

GARBAGE = b"this is not TLS\r\n" * 4


def tls_garbage_peer(peers, garbage=GARBAGE):
    """Offers STARTTLS, says 220, then answers the ClientHello with text
    (or with nothing, closing)."""
    return peers(smtp(ehlo=EHLO_TLS, starttls=b"220 2.0.0 Ready to start TLS\r\n"),
                 starttls_garbage=garbage, connections=2)


@pytest.mark.parametrize("garbage", [GARBAGE, b""], ids=["garbage", "close"])
def test_starttls_garbage_opportunistic_retries_plaintext(peers, garbage):
    peer = tls_garbage_peer(peers, garbage)
    s = literal(peer, "-v")
    assert_exit(s, 0)
    assert len(peer.conns) == 2, peer.conns
    first, second = peer.conns
    assert verbs(first) == [b"EHLO", b"STARTTLS"], first
    assert first.client_hello[:1] == b"\x16", first.client_hello[:16]   # a TLS handshake record
    assert verbs(second) == [b"EHLO", b"MAIL", b"RCPT", b"DATA", b"<dot>", b"QUIT"], second
    t = "\n".join(s.transcript())
    assert re.search(r"-- TLS handshake failed[^\n]*; opportunistic TLS: trying again without it",
                     t), t
    assert "-- connecting to [127.0.0.1]:%d (again, without TLS)" % peer.port in t, t
    assert f"delivered to [127.0.0.1]:{peer.port}: 250 2.0.0 Ok: queued as 4Bq1" in s.err


@pytest.mark.parametrize("mode", [["--tls", "require"], ["--tls", "verify"]])
def test_starttls_garbage_required_is_temporary(peers, mode):
    peer = tls_garbage_peer(peers)
    s = literal(peer, *mode)
    assert_exit(s, TEMPFAIL)
    assert len(peer.conns) == 1, peer.conns            # no plaintext retry
    assert re.search(r"^user@\[127\.0\.0\.1\]: not delivered \(temporary failure\) at "
                     rf"\[127\.0\.0\.1\]:{peer.port}: TLS handshake failed", s.err, re.M), s
    assert b"MAIL" not in verbs(peer.conns[0])


def test_require_starttls_not_offered(peers):
    peer = peers(smtp(), connections=2)
    s = literal(peer, "--tls", "require")
    assert_exit(s, TEMPFAIL)
    assert s.result("user@[127.0.0.1]").endswith(": STARTTLS not offered"), s
    [conn] = peer.conns
    assert verbs(conn) == [b"EHLO", b"QUIT"], conn


@pytest.mark.parametrize("mode, rc", [("opportunistic", 0), ("require", TEMPFAIL)])
def test_starttls_refused(peers, mode, rc):
    """RFC 3207 §4: a refused STARTTLS leaves the session in plaintext:
    fine for opportunistic, not for require."""
    peer = peers(smtp(ehlo=EHLO_TLS, starttls=b"454 4.7.0 TLS not available due to local "
                                              b"problem\r\n"), connections=2)
    s = literal(peer, "--tls", mode)
    assert_exit(s, rc)
    [conn] = peer.conns
    if rc == 0:
        assert verbs(conn) == [b"EHLO", b"STARTTLS", b"MAIL", b"RCPT", b"DATA", b"<dot>",
                               b"QUIT"], conn
    else:
        assert verbs(conn) == [b"EHLO", b"STARTTLS", b"QUIT"], conn
        assert s.result("user@[127.0.0.1]").endswith(
            ": 454 4.7.0 TLS not available due to local problem"), s


def tls_context(pki, cert):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.cert(cert), pki.key(cert))
    return ctx


def tls_peer(peers, pki, cert, host="127.0.0.1", port=0):
    return peers(smtp(ehlo=EHLO_TLS, starttls=b"220 2.0.0 Ready to start TLS\r\n"),
                 tls_context=tls_context(pki, cert), host=host, port=port, connections=2)


def tls_mx_peer(peers, pki, cert):
    """The TLS peer as mx.example.test (127.0.0.2), the MX of tlsv.example.test."""
    for _ in range(20):
        try:
            return tls_peer(peers, pki, cert, host="127.0.0.2")
        except OSError:
            continue
    raise RuntimeError("no port on 127.0.0.2")


def test_verify_with_test_ca_delivers(dns, peers, pki):
    peer = tls_mx_peer(peers, pki, "mx")
    s = via_mx(dns, peer.port, "-v", "--tls", "verify", "--cafile", pki.ca,
               rcpts=["user@tlsv.example.test"])
    assert_exit(s, 0)
    fp = pki.fingerprints("mx")[0]
    assert "-- TLS established: TLSv1.3 " in s.err and \
        f"peer certificate SHA256:{fp}, verified" in s.err, s
    assert peer.sni == SERVER_NAME
    assert s.result("user@tlsv.example.test").startswith(
        f"user@tlsv.example.test: delivered to mx.example.test [127.0.0.2]:{peer.port}: 250 "), s
    [conn] = peer.conns
    assert verbs(conn) == [b"EHLO", b"STARTTLS", b"EHLO", b"MAIL", b"RCPT", b"DATA", b"<dot>",
                           b"QUIT"], conn
    assert b"Hello from the integration tests." in peer.received_tls


@pytest.mark.parametrize("cert, cafile, problem", [
    ("untrusted", True, "certificate verification failed: unable to get local issuer "
                        "certificate (peer mx.example.test, certificate SHA256:{fp})"),
    ("selfsigned", True, "certificate verification failed: self-signed certificate "
                         "(peer mx.example.test, certificate SHA256:{fp})"),
    ("expired", True, "certificate verification failed: certificate has expired "
                      "(peer mx.example.test, certificate SHA256:{fp})"),
    ("wrongname", True, "certificate name mismatch: wanted mx.example.test, certificate has "
                        "DNS:wrong.example.test (certificate SHA256:{fp})"),
    ("mx", False, "certificate verification failed: unable to get local issuer certificate "
                  "(peer mx.example.test, certificate SHA256:{fp})"),  # not in the system's CAs
])
def test_verify_refuses_certificate(dns, peers, pki, cert, cafile, problem):
    peer = tls_mx_peer(peers, pki, cert)
    args = ["--tls", "verify"] + (["--cafile", pki.ca] if cafile else [])
    s = via_mx(dns, peer.port, *args, rcpts=["user@tlsv.example.test"])
    assert_exit(s, TEMPFAIL)
    want = problem.format(fp=pki.fingerprints(cert)[0])
    fp = pki.fingerprints(cert)[0]
    # Issue 8 item 19: the way out is named with the value, and a retry,
    # which cannot help, is not suggested.
    assert s.result("user@tlsv.example.test") == (
        "user@tlsv.example.test: not delivered (temporary failure) at mx.example.test "
        f"[127.0.0.2]:{peer.port}: {want}\n"
        "  fix: if you trust this server's certificate as it is (self-signed, a LAN or test "
        f"server), pin it instead of --tls verify: --tls-fingerprint SHA256:{fp}"), s
    assert "send again later" not in s.err and "will fail the same way" in s.err, s
    assert len(peer.conns) == 1, peer.conns     # never in plaintext
    assert peer.received_tls == b"" and b"MAIL" not in peer.received


@pytest.mark.parametrize("spki", [False, True], ids=["cert", "spki"])
def test_fingerprint_pin_matches(peers, pki, spki):
    peer = tls_peer(peers, pki, "selfsigned")
    s = literal(peer, "-v", "--tls-fingerprint", pki.pin("selfsigned", spki=spki))
    assert_exit(s, 0)
    assert re.search(r"-- TLS established: .*, pinned$", s.err, re.M), s
    assert b"Hello from the integration tests." in peer.received_tls


def test_fingerprint_pin_wrong(peers, pki):
    peer = tls_peer(peers, pki, "selfsigned")
    s = literal(peer, "--tls-fingerprint", pki.pin("mx"))
    assert_exit(s, TEMPFAIL)
    fp = pki.fingerprints("selfsigned")[0]
    first, fix = block_lines(s, "user@[127.0.0.1]")
    assert first.endswith(
        ": certificate fingerprint does not match any --tls-fingerprint "
        f"(peer's is SHA256:{fp})"), s
    assert fix == f"  fix: check the --tls-fingerprint value; the server presented SHA256:{fp}"
    assert "send again later" not in s.err and "will fail the same way" in s.err, s
    assert len(peer.conns) == 1 and peer.received_tls == b"", peer.conns


def test_trickling_peer_times_out_per_reply(peers):
    """Issue 8 item 13: --timeout is a deadline for each whole reply, not a
    wait between two octets.  A peer that sends one octet per second
    (the greeting alone would take 21 s, the whole session over 45 s)
    ends a --timeout 5 send after about 5 s, as a temporary failure."""
    peer = peers(smtp(), trickle=1)
    s = literal(peer, "--timeout", 5, timeout=90)
    assert_exit(s, TEMPFAIL)
    assert s.result("user@[127.0.0.1]") == (
        f"user@[127.0.0.1]: not delivered (temporary failure) at [127.0.0.1]:{peer.port}: "
        "timed out waiting for a reply"), s
    assert 4.5 < s.elapsed < 10, s
    assert peer.conns[0].commands == [], peer.conns


# Every octet a terminal could act on, and every kind of broken UTF-8: C0
# but CR, LF and NUL (which end or break a reply line), DEL, each raw C1
# octet, each C1 as UTF-8 (C2 80..C2 9F), the rest of 0xA0..0xFF raw, an
# overlong "/", a surrogate, a code point past U+10FFFF, and a truncated
# sequence; with valid UTF-8 ("é", CJK) that must survive.
HOSTILE = (bytes(b for b in range(1, 0x20) if b not in (0x0a, 0x0d)) + b"\x7f"
           + bytes(range(0x80, 0xa0)) + b"".join(b"\xc2" + bytes([b]) for b in range(0x80, 0xa0))
           + bytes(range(0xa0, 0x100)) + b"\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80\xe9\x82"
           + " é 邮件".encode())


def assert_terminal_safe(text_bytes):
    """No octet < 0x20 but LF, no DEL, valid UTF-8, and no C1 control
    (U+0080..U+009F, which in valid UTF-8 also rules out raw C1 octets)."""
    bad = [hex(b) for b in text_bytes if (b < 0x20 and b != 0x0a) or b == 0x7f]
    assert not bad, bad
    text = text_bytes.decode("utf-8")          # raises on invalid UTF-8
    c1 = [hex(ord(ch)) for ch in text if 0x80 <= ord(ch) <= 0x9f]
    assert not c1, c1
    return text


@pytest.mark.parametrize("verbose", ["", "-v"])
def test_hostile_reply_bytes_escaped(peers, verbose):
    """Issue 8 item 14: whatever a server answers, rawmail send's output
    (result lines and the -v transcript) holds no control octet but LF,
    no DEL, no C1 in either form, and is valid UTF-8; valid UTF-8 text of
    the reply is kept."""
    greeting = b"220-peer.test " + HOSTILE + b"\r\n220 ok\r\n"
    peer = peers(smtp(rcpt=b"550 5.1.1 " + HOSTILE + b"\r\n", data=NO_VALID),
                 greeting=greeting)
    args = [verbose] if verbose else []
    s = literal(peer, *args)
    assert_exit(s, UNAVAILABLE)
    text = assert_terminal_safe(s.err_bytes)
    result = s.result("user@[127.0.0.1]")
    assert result.startswith(f"user@[127.0.0.1]: refused (permanent) by [127.0.0.1]:{peer.port}: 550 5.1.1 "), s
    assert "\\u009b" in result and "\\x9b" in result and "\\xc0\\xaf" in result, result
    assert result.endswith(" é 邮件"), result
    if verbose:
        assert "S> 220-peer.test " in text and "\\u0085" in text, text


# A host without a dotted name ("vm"): the default sender is root@vm.
NODOT_HOST = "rawmailtestvm"


def test_default_sender_without_dot_warns_before_sending(peers):
    """Issue 8 item 19: with no -f on a host whose name has no dot, the
    sender is login@host, which most servers refuse: a warning says so
    (with -f) before anything is sent, and Gmail's 553 5.1.7 to it is
    explained."""
    gmail = ("553-5.1.7 The sender address <root@vm> is not a valid RFC-5321 address. Learn\r\n"
             "553-5.1.7 more at\r\n"
             "553 5.1.7  https://support.google.com/mail/answer/6596 g1sm1186255pfu.73 - gsmtp")
    peer = refusal_peer(peers, "mail", gmail)
    s = send(["--helo", "client.test", "--port", peer.port, "user@[127.0.0.1]"],
             sample_message("nodot"), hostname=NODOT_HOST)
    assert_exit(s, UNAVAILABLE)
    first = s.err.splitlines()[0]
    assert first.startswith(f"rawmail send: warning: sending as ") and \
        f"@{NODOT_HOST} (no -f given), and '{NODOT_HOST}' is not a public domain" in first, s
    assert "-f you@example.com" in first, s
    [mail] = [c for c in peer.conns[0].commands if c.startswith(b"MAIL")]
    assert mail.startswith(f"MAIL FROM:<".encode()) and f"@{NODOT_HOST}>".encode() in mail
    block = s.result("user@[127.0.0.1]")
    assert "likely cause: the receiver does not take the envelope sender as an address" in block
    assert "fix: give your own address with -f (rawmail send -f you@example.com ...)" in block


@pytest.mark.parametrize("args, hostname", [(["-f", SENDER], NODOT_HOST),
                                            ([], "mail.client.test")])
def test_no_sender_warning_when_not_needed(peers, args, hostname):
    peer = peers(smtp())
    s = send(["--helo", "client.test", "--port", peer.port, *args, "user@[127.0.0.1]"],
             sample_message("nodot"), hostname=hostname)
    assert_exit(s, 0)
    assert "warning" not in s.err, s


@pytest.mark.parametrize("rcpt, local", [("user@bücher.example", b"user"),
                                         ("User@BÜCHER.Example", b"User"),
                                         ("üser@bücher.example", "üser".encode())])
def test_internationalised_domain_delivered_as_a_label(dns, peers, rcpt, local):
    """Issue 8 item 19: an internationalised domain is accepted: DNS is
    asked for its A-label and the envelope carries it (RCPT TO:<user@xn--
    bcher-kva.example>); SMTPUTF8 only when the local part needs it."""
    peer = peers(smtp(ehlo=EHLO.replace(b"250 ENHANCEDSTATUSCODES",
                                        b"250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8")),
                 host="127.0.0.2")
    s = run(["--dns", dns.addr, "--port", peer.port, rcpt])
    assert_exit(s, 0)
    [conn] = peer.conns
    [rcpt_line] = [c for c in conn.commands if c.startswith(b"RCPT")]
    assert rcpt_line == b"RCPT TO:<" + local + b"@xn--bcher-kva.example>", conn
    [mail] = [c for c in conn.commands if c.startswith(b"MAIL")]
    assert mail.endswith(b" SMTPUTF8") == any(b >= 0x80 for b in local), mail
    assert s.result(local.decode() + "@xn--bcher-kva.example").startswith(
        f"{local.decode()}@xn--bcher-kva.example: delivered to mx.xn--bcher-kva.example "
        f"[127.0.0.2]:{peer.port}: 250"), s


def test_invalid_internationalised_domain_is_usage_error():
    s = run(["--dry-run", "a@☃.example"], expect="usage")
    assert "rawmail send: recipient 'a@☃.example': not a valid internationalised domain name" \
        in s.err, s
