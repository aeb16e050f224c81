"""`rawmail check` (src/check/) against a real NSD on loopback and real SMTP
peers on 127.0.0.0/8: an MX host with STARTTLS, one without, a port with
nothing listening, one that accepts and never greets, one whose accept queue
is full (connections time out: "port 25 is probably blocked"), a null MX,
missing PTR, a PTR without forward match, SPF and DMARC records.

Every peer listens on one port number (each on its own 127.x address) so one
`--port` reaches them all.  Every DNS query goes to the NSD started here.
The run's wall time is printed (-s shows it); only a loose bound is asserted.
"""

import ipaddress
import json
import socket
import ssl
import subprocess
import time

import pytest

from dns_util import dead_dns, nsd, ptr_zones  # noqa: F401 (fixtures)
from helpers import free_port, rawmail_bin
from peers import ScriptedPeer, silent_listener
from tls_util import pki  # noqa: F401 (fixture)

SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                   "UndefinedBehaviorSanitizer")

ZONE = """\
tls           MX 10 mx.tls
mx.tls        A 127.0.0.41
plain         MX 10 mx.plain
mx.plain      A 127.0.0.42
closed        MX 10 mx.closed
mx.closed     A 127.0.0.43
silent        MX 10 mx.silent
mx.silent     A 127.0.0.44
blocked       MX 10 mx1.blocked
blocked       MX 20 mx2.blocked
mx1.blocked   A 127.0.0.45
mx2.blocked   A 127.0.0.45
null          MX 0 .
me            A 127.0.0.1
good          TXT "v=spf1 ip4:127.0.0.1 -all"
_dmarc.good   TXT "v=DMARC1; p=reject; rua=mailto:d@good.example.test"
twospf        TXT "v=spf1 -all"
twospf        TXT "v=spf1 ip4:127.0.0.1 -all"
_dmarc.broken TXT "v=DMARC1; p=maybe"
broken        TXT "v=spf1 ip4:127.0.0.1 -all"
excl          TXT "v=spf1 a mx ip4:192.0.2.1 -all"
soft          TXT "v=spf1 ip4:192.0.2.1 ~all"
many          TXT "v=spf1 a:h1.many.example.test a:h2.many.example.test a:h3.many.example.test a:h4.many.example.test a:h5.many.example.test a:h6.many.example.test " "a:h7.many.example.test a:h8.many.example.test a:h9.many.example.test a:h10.many.example.test a:h11.many.example.test -all"
h1.many       A 192.0.2.1
h2.many       A 192.0.2.2
h3.many       A 192.0.2.3
h4.many       A 192.0.2.4
h5.many       A 192.0.2.5
h6.many       A 192.0.2.6
h7.many       A 192.0.2.7
h8.many       A 192.0.2.8
h9.many       A 192.0.2.9
h10.many       A 192.0.2.10
h11.many       A 192.0.2.11
me            TXT "v=spf1 a -all"
"""


def zones(ptr=None):
    """example.test and 0.0.127.in-addr.arpa; ptr: the name of 127.0.0.1
    (None: the reverse zone has no PTR for it, an NXDOMAIN)."""
    # the parent zone too, so the DMARC tree walk's _dmarc.test is an
    # answer (NXDOMAIN), not NSD's REFUSED for a name outside its zones
    z = {"example.test": ZONE, "test": ""}
    if ptr:
        z.update(ptr_zones({"127.0.0.1": ptr}))
    else:
        z["0.0.127.in-addr.arpa"] = "99 IN PTR other.example.test.\n"
    return z


def run_check(dns, port, *args, timeout=60):
    cmd = [rawmail_bin(), "check", "--dns", dns.addr, "--port", str(port), "--timeout", "2",
           *args]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    elapsed = time.monotonic() - t0
    for mark in SANITIZER_MARKS:
        assert mark not in p.stderr, p.stderr
    print(f"rawmail check {' '.join(args)}: {elapsed:.2f} s, exit {p.returncode}\n{p.stdout}")
    return p, elapsed


def line(out, prefix):
    """The result line that starts with prefix, and its fix ('' if none)."""
    lines = out.splitlines()
    for i, ln in enumerate(lines):
        if ln.startswith(prefix):
            fix = ""
            if i + 1 < len(lines) and lines[i + 1].startswith("  fix: "):
                fix = lines[i + 1][len("  fix: "):]
                for more in lines[i + 2:]:
                    if not more.startswith("       "):
                        break
                    fix += "\n" + more.strip()
            return ln, fix
    raise AssertionError(f"no line starting {prefix!r} in:\n{out}")


def tls_context(pki, cert="mx"):  # noqa: F811
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.cert(cert), pki.key(cert))
    return ctx


def starttls_script(line_):
    if line_.startswith(b"EHLO"):
        return b"250-mx.tls.example.test Hello [127.0.0.1]\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
    if line_ == b"STARTTLS":
        return b"220 2.0.0 go ahead\r\n"
    return b"221 bye\r\n"


def plain_script(line_):
    if line_.startswith(b"EHLO"):
        return b"250-mx.plain.example.test\r\n250 PIPELINING\r\n"
    return b"221 bye\r\n"


@pytest.fixture
def port():
    return free_port()


def test_starttls_peer_and_confirmed_ptr_pass(nsd, pki, port):  # noqa: F811
    dns = nsd(zones(ptr="me.example.test"))
    peer = ScriptedPeer(starttls_script, greeting=b"220 mx.tls.example.test ESMTP\r\n",
                        tls_context=tls_context(pki), host="127.0.0.41", port=port)
    try:
        p, _ = run_check(dns, port, "user@tls.example.test")
    finally:
        peer.close()
    assert p.returncode == 0, p.stdout + p.stderr
    ln, _ = line(p.stdout, "pass mx tls.example.test:")
    assert "mx.tls.example.test (10)" in ln
    ln, _ = line(p.stdout, f"pass smtp mx.tls.example.test[127.0.0.41]:{port}:")
    assert 'greets "mx.tls.example.test ESMTP"' in ln and "STARTTLS: TLSv1." in ln
    ln, _ = line(p.stdout, f"info tls mx.tls.example.test[127.0.0.41]:{port}:")
    assert pki.pin("mx") in ln
    ln, _ = line(p.stdout, "pass ptr 127.0.0.1:")
    assert "me.example.test" in ln and "FCrDNS" in ln
    assert peer.sni_seen and peer.sni == "mx.tls.example.test"


def test_failures_in_parallel(nsd, port):  # noqa: F811
    """No STARTTLS (warn), nothing listening, accepts and never greets,
    null MX, timeouts on every MX: checked at once, each with its fix."""
    dns = nsd(zones(ptr="me.example.test"))
    plain = ScriptedPeer(plain_script, greeting=b"220 mx.plain.example.test ESMTP\r\n",
                         host="127.0.0.42", port=port)
    silent = silent_listener("127.0.0.44", port)
    # a full accept queue drops further SYNs: the connection times out as
    # behind a firewall that blocks port 25
    full = socket.socket()
    full.bind(("127.0.0.45", port))
    full.listen(0)
    fillers = []
    for _ in range(2):
        c = socket.socket()
        c.settimeout(0.5)
        try:
            c.connect(("127.0.0.45", port))
        except OSError:
            pass
        fillers.append(c)
    try:
        p, elapsed = run_check(dns, port, "a@plain.example.test", "closed.example.test",
                               "b@silent.example.test", "c@null.example.test",
                               "blocked.example.test")
    finally:
        plain.close()
        silent.close()
        full.close()
        for c in fillers:
            c.close()
    assert p.returncode == 1, p.stdout + p.stderr
    ln, fix = line(p.stdout, f"warn smtp mx.plain.example.test[127.0.0.42]:{port}:")
    assert "no STARTTLS" in ln and "in the clear" in fix
    ln, fix = line(p.stdout, f"fail smtp mx.closed.example.test[127.0.0.43]:{port}:")
    assert "connection refused" in ln and "postmaster" in fix
    ln, _ = line(p.stdout, f"fail smtp mx.silent.example.test[127.0.0.44]:{port}:")
    assert "accepts the connection but never greets" in ln
    ln, fix = line(p.stdout, "fail mx null.example.test:")
    assert "null MX (RFC 7505)" in ln
    ln, fix = line(p.stdout, "fail port25 blocked.example.test:")
    assert "probably blocked" in ln
    assert "rawmail send --relay" in fix and "--auth-user" in fix
    # every test ran in parallel: about one timeout (2 s), not one per host
    print(f"five destinations: {elapsed:.2f} s")
    assert elapsed < 20


def test_missing_ptr(nsd, port):  # noqa: F811
    dns = nsd(zones(ptr=None))
    p, _ = run_check(dns, port, "closed.example.test")
    assert p.returncode == 1
    ln, fix = line(p.stdout, "fail ptr 127.0.0.1:")
    assert "no PTR record" in ln
    assert "1.0.0.127.in-addr.arpa. IN PTR" in fix


def test_ptr_without_forward_match(nsd, port):  # noqa: F811
    dns = nsd(zones(ptr="nomatch.example.test"))
    p, _ = run_check(dns, port, "closed.example.test")
    assert p.returncode == 1
    ln, fix = line(p.stdout, "fail ptr 127.0.0.1:")
    assert "PTR nomatch.example.test, but that name does not resolve back" in ln
    assert fix.startswith("publish nomatch.example.test. IN A 127.0.0.1")


def test_ip_literal_tls_pin_and_lab_zone(nsd, pki, port):  # noqa: F811
    dns = nsd(zones(ptr="me.example.test"))
    peer = ScriptedPeer(starttls_script, tls_context=tls_context(pki, "selfsigned"),
                        host="127.0.0.41", port=port)
    try:
        p, _ = run_check(dns, port, "user@[127.0.0.41]")
    finally:
        peer.close()
    assert p.returncode == 0, p.stdout + p.stderr
    line(p.stdout, f"pass smtp 127.0.0.41:{port}:")
    ln, fix = line(p.stdout, f"info tls 127.0.0.41:{port}:")
    pin = pki.pin("selfsigned")
    assert pin in ln and fix == f"to pin this certificate: rawmail send --tls-fingerprint {pin}"
    assert peer.sni is None     # no SNI for an address (RFC 6066 §3)
    ln, fix = line(p.stdout, "info zone lab:")
    assert "host-127-0-0-41.lab. IN A 127.0.0.41" in fix.splitlines()
    assert "41.0.0.127.in-addr.arpa. IN PTR host-127-0-0-41.lab." in fix.splitlines()
    assert "host-127-0-0-1.lab. IN A 127.0.0.1" in fix.splitlines()


def test_zone_names_from_the_from_domain(nsd, port):  # noqa: F811
    dns = nsd(zones(ptr="me.example.test"))
    p, _ = run_check(dns, port, "--from", "a@good.example.test", "127.0.0.43")
    ln, fix = line(p.stdout, "info zone good.example.test:")
    assert "43.0.0.127.in-addr.arpa. IN PTR host-127-0-0-43.good.example.test." in fix


def test_spf_and_dmarc_records(nsd, port):  # noqa: F811
    dns = nsd(zones(ptr="me.example.test"))
    p, _ = run_check(dns, port, "--from", "a@good.example.test")
    assert p.returncode == 0, p.stdout
    ln, _ = line(p.stdout, "pass dmarc good.example.test:")
    assert "_dmarc.good.example.test: policy reject" in ln
    # no destination, so no source address: the record as found
    ln, _ = line(p.stdout, "info spf good.example.test:")
    assert "v=spf1 ip4:127.0.0.1 -all" in ln and "not evaluated" in ln

    # a subdomain without its own record: found walking up (RFC 9989)
    p, _ = run_check(dns, port, "--from", "a@sub.good.example.test")
    ln, _ = line(p.stdout, "pass dmarc sub.good.example.test:")
    assert "_dmarc.good.example.test (found walking up the tree" in ln
    ln, fix = line(p.stdout, "warn spf sub.good.example.test:")
    assert "no SPF record" in ln
    assert 'sub.good.example.test. IN TXT "v=spf1 ip4:ADDRESS -all"' in fix

    p, _ = run_check(dns, port, "--from", "a@broken.example.test")
    ln, fix = line(p.stdout, "fail dmarc broken.example.test:")
    assert "p=maybe" in ln
    assert fix.startswith('_dmarc.broken.example.test. IN TXT "v=DMARC1; p=none;')

    p, _ = run_check(dns, port, "--from", "a@twospf.example.test")
    ln, _ = line(p.stdout, "fail spf twospf.example.test:")
    assert "2 SPF records" in ln and "permerror" in ln
    ln, fix = line(p.stdout, "warn dmarc twospf.example.test:")
    assert "no DMARC record" in ln and "_dmarc.twospf.example.test. IN TXT" in fix


def test_json_document(nsd, port):  # noqa: F811
    dns = nsd(zones(ptr=None))
    plain = ScriptedPeer(plain_script, host="127.0.0.42", port=port)
    try:
        p, _ = run_check(dns, port, "--json", "plain.example.test", "null.example.test",
                         "--from", "a@good.example.test")
    finally:
        plain.close()
    assert p.returncode == 1
    doc = json.loads(p.stdout)
    by = {(r["test"], r["subject"]): r for r in doc["results"]}
    assert by[("mx", "null.example.test")]["status"] == "fail"
    smtp = by[("smtp", f"mx.plain.example.test[127.0.0.42]:{port}")]
    assert smtp["status"] == "warn" and '"220 peer.test ESMTP"' not in smtp["found"]
    assert 'greets "peer.test ESMTP"' in smtp["found"]
    assert by[("ptr", "127.0.0.1")]["status"] == "fail"
    assert "IN PTR" in by[("ptr", "127.0.0.1")]["fix"]
    assert doc["fail"] == sum(r["status"] == "fail" for r in doc["results"]) >= 2
    assert doc["complete"] is True and isinstance(doc["elapsed_ms"], int)


def test_json_escapes_peer_text(nsd, port):  # noqa: F811
    dns = nsd(zones(ptr="me.example.test"))
    plain = ScriptedPeer(plain_script, greeting=b'220 "quoted" \\back\x1b[31m \xc3\xa9\r\n',
                         host="127.0.0.42", port=port)
    try:
        p, _ = run_check(dns, port, "--json", "plain.example.test")
    finally:
        plain.close()
    doc = json.loads(p.stdout)
    smtp = [r for r in doc["results"] if r["test"] == "smtp"][0]
    # the reply parser makes the escape character a '?'; quote, backslash
    # and UTF-8 survive the JSON round trip
    assert '"quoted" \\back?[31m \u00e9' in smtp["found"], smtp["found"]
    assert "\x1b" not in p.stdout


def test_usage_errors():
    bin_ = rawmail_bin()
    for args in ([], ["--port", "0", "x.test"], ["--bogus"], ["--timeout", "abc", "x"],
                 ["-4", "-6", "x.test"], ["--from", "nodomain"]):
        p = subprocess.run([bin_, "check", *args], capture_output=True, text=True, timeout=10)
        assert p.returncode == 64, (args, p.stdout, p.stderr)
        assert p.stderr
    p = subprocess.run([bin_, "check", "--help"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and "usage: rawmail check" in p.stdout and "--json" in p.stdout


def v6_zones():
    """v6only: an MX with only an AAAA (::1); dual: an MX with A and AAAA;
    the reverse zone of ::1 exists, without a PTR for it."""
    z = zones(ptr="me.example.test")
    z["example.test"] += ("v6only MX 10 mx.v6only\nmx.v6only AAAA ::1\n"
                          "dual MX 10 mx.dual\nmx.dual A 127.0.0.43\nmx.dual AAAA ::1\n")
    label, _, zone = ipaddress.ip_address("::1").reverse_pointer.partition(".")
    z[zone] = "f IN PTR other.example.test.\n"
    return z


def test_ipv6_source_without_ptr(nsd, port):  # noqa: F811
    dns = nsd(v6_zones())
    # reachable only over IPv6: a fail, with -4 no way out
    p, _ = run_check(dns, port, "v6only.example.test")
    assert p.returncode == 1
    ln, fix = line(p.stdout, "fail ptr ::1:")
    assert "no PTR record for ::1" in ln
    assert "ip6.arpa. IN PTR" in fix and "rawmail send -4" in fix
    # IPv4 too: a warning, rawmail then sends over IPv4
    p, _ = run_check(dns, port, "dual.example.test")
    ln, fix = line(p.stdout, "warn ptr ::1:")
    assert "also have IPv4" in ln and "rawmail send -4" in fix
    line(p.stdout, "pass ptr 127.0.0.1:")
    # -4: no IPv6 probe, no IPv6 source
    p, _ = run_check(dns, port, "-4", "dual.example.test")
    assert "ptr ::1" not in p.stdout
    line(p.stdout, f"fail smtp mx.dual.example.test[127.0.0.43]:{port}:")


def test_ehlo_never_answered_and_bytes_after_starttls(nsd, pki, port):  # noqa: F811
    """A peer that greets and then ignores EHLO fails with its own words; a
    peer that sends bytes after its 220 to STARTTLS (RFC 3207 §4.2: they
    must be dropped) still gets its handshake."""
    dns = nsd(zones(ptr="me.example.test"))
    mute = ScriptedPeer(lambda ln: b"", greeting=b"220 mute ESMTP\r\n", host="127.0.0.42",
                        port=port)

    def chatty(line_):
        if line_ == b"STARTTLS":
            return b"220 go\r\n250 injected\r\n"
        return starttls_script(line_)

    tls = ScriptedPeer(chatty, tls_context=tls_context(pki), host="127.0.0.41", port=port)
    try:
        p, _ = run_check(dns, port, "plain.example.test", "tls.example.test")
    finally:
        mute.close()
        tls.close()
    ln, _ = line(p.stdout, f"fail smtp mx.plain.example.test[127.0.0.42]:{port}:")
    assert 'greets "mute ESMTP" but does not answer EHLO within 2s' in ln
    ln, _ = line(p.stdout, f"pass smtp mx.tls.example.test[127.0.0.41]:{port}:")
    assert "STARTTLS: TLSv1." in ln


def test_refusing_greeting_explained(nsd, port):  # noqa: F811
    """A 554 greeting that names a known cause gets the table's cause and
    fix (msg/explain.c, as rawmail send's result lines)."""
    dns = nsd(zones(ptr="me.example.test"))
    peer = ScriptedPeer(plain_script,
                        greeting=(b"554 resimta-po-02v.sys.comcast.net comcast 127.0.0.1 Comcast "
                                  b"requires that all mail servers must have a PTR record with a "
                                  b"valid Reverse DNS entry.\r\n"),
                        host="127.0.0.42", port=port)
    try:
        p, _ = run_check(dns, port, "plain.example.test")
    finally:
        peer.close()
    assert p.returncode == 1
    ln, fix = line(p.stdout, f"fail smtp mx.plain.example.test[127.0.0.42]:{port}:")
    assert "refuses this host: 554" in ln
    assert "PTR" in fix and "rawmail send --relay" in fix


def test_dns_that_never_answers(dead_dns):  # noqa: F811
    """A DNS server that never answers: a fail per test that needs it, within
    about 1.5 timeouts (c-ares' two tries of half and all of --timeout)."""
    class Dead:
        addr = dead_dns()
    p, elapsed = run_check(Dead, 25, "--from", "a@example.test", "example.test")
    assert p.returncode == 1
    ln, fix = line(p.stdout, "fail mx example.test:")
    assert "for now" in ln and "--dns" in fix
    line(p.stdout, "warn spf example.test:")
    line(p.stdout, "warn dmarc example.test:")
    print(f"dead DNS, --timeout 2: {elapsed:.2f} s")
    assert elapsed < 15


def test_spf_within_the_timeout(dead_dns):  # noqa: F811
    """dns/spf has no deadline of its own: against a DNS server that never
    answers, check's timer cancels each evaluation after --timeout (before
    c-ares gives up at 1.5 timeouts) and says so."""
    class Dead:
        addr = dead_dns()
    p, elapsed = run_check(Dead, free_port(), "--from", "a@example.test", "--helo",
                           "me.example.test", "127.0.0.43")
    ln, _ = line(p.stdout, "warn spf example.test:")
    assert "not evaluated for 127.0.0.1 within 2s" in ln, ln
    ln, _ = line(p.stdout, "warn helo-spf me.example.test:")
    assert "not evaluated for 127.0.0.1 within 2s" in ln, ln
    print(f"dead DNS, SPF for an IP literal's source, --timeout 2: {elapsed:.2f} s")
    assert elapsed < 15


def test_helo_name(nsd, port):  # noqa: F811
    dns = nsd(zones(ptr="me.example.test"))
    cases = [
        ("me.example.test", "pass helo me.example.test:", "resolves to this host's address "
         "127.0.0.1"),
        ("mx.plain.example.test", "warn helo mx.plain.example.test:",
         "resolves to 127.0.0.42, not to this host's source address"),
        ("nowhere.example.test", "warn helo nowhere.example.test:", "has no A or AAAA record"),
        ("shorty", "warn helo shorty:", "not a fully qualified host name"),
    ]
    for helo, prefix, want in cases:
        p, _ = run_check(dns, port, "--helo", helo, "closed.example.test")
        ln, fix = line(p.stdout, prefix)
        assert want in ln, ln
        if prefix.startswith("warn"):
            assert "rawmail send --helo" in fix


def spf_check(dns, port, domain, *more):
    """check toward 127.0.0.43 (nothing listens): the source is 127.0.0.1,
    so the SPF lines are evaluated for it."""
    p, _ = run_check(dns, port, "--from", f"a@{domain}", "--helo", "me.example.test",
                     "127.0.0.43", *more)
    return p


def test_spf_evaluated_for_the_source_address(nsd, port):  # noqa: F811
    dns = nsd(zones(ptr="me.example.test"))
    p = spf_check(dns, port, "good.example.test")
    ln, fix = line(p.stdout, "pass spf good.example.test:")
    assert "pass for 127.0.0.1" in ln and "ip4:127.0.0.1 matched" in ln and not fix
    # RFC 7208 §2.3: the HELO name's own record, a line of its own
    ln, _ = line(p.stdout, "pass helo-spf me.example.test:")
    assert "pass for 127.0.0.1" in ln and "a matched" in ln

    # -all and the address not listed: the fix is the record with it added
    p = spf_check(dns, port, "excl.example.test")
    ln, fix = line(p.stdout, "fail spf excl.example.test:")
    assert "fail for 127.0.0.1" in ln and "-all" in ln
    assert fix == ("add ip4:127.0.0.1 to the record before its all term: excl.example.test. "
                   'IN TXT "v=spf1 a mx ip4:192.0.2.1 ip4:127.0.0.1 -all"'), fix
    assert p.returncode == 1

    # 11 DNS mechanisms: over RFC 7208 §4.6.4's 10 is a permerror, a fail
    p = spf_check(dns, port, "many.example.test")
    ln, fix = line(p.stdout, "fail spf many.example.test:")
    assert "permerror for 127.0.0.1" in ln and "10" in ln, ln
    assert 'many.example.test. IN TXT "v=spf1 ip4:127.0.0.1 -all"' in fix

    p = spf_check(dns, port, "soft.example.test")
    ln, fix = line(p.stdout, "warn spf soft.example.test:")
    assert "softfail for 127.0.0.1" in ln
    assert 'IN TXT "v=spf1 ip4:192.0.2.1 ip4:127.0.0.1 ~all"' in fix

    # no record: a warning with the record to publish
    p = spf_check(dns, port, "sub.good.example.test")
    ln, fix = line(p.stdout, "warn spf sub.good.example.test:")
    assert "none for 127.0.0.1" in ln
    assert fix == 'publish: sub.good.example.test. IN TXT "v=spf1 ip4:127.0.0.1 -all"', fix

    # a HELO name without SPF: a warning too
    p, _ = run_check(dns, port, "--helo", "mx.plain.example.test", "127.0.0.43")
    ln, fix = line(p.stdout, "warn helo-spf mx.plain.example.test:")
    assert "none for 127.0.0.1" in ln
    assert 'mx.plain.example.test. IN TXT "v=spf1 ip4:127.0.0.1 -all"' in fix

    p = spf_check(dns, port, "excl.example.test", "--json")
    doc = json.loads(p.stdout)
    by = {(r["test"], r["subject"]): r for r in doc["results"]}
    assert by[("spf", "excl.example.test")]["status"] == "fail"
    assert "ip4:127.0.0.1 -all" in by[("spf", "excl.example.test")]["fix"]
    assert by[("helo-spf", "me.example.test")]["status"] == "pass"


def keygen(tmp_path, selector, typ="rsa", domain="good.example.test", name=None):
    out = tmp_path / f"{name or selector}.key"
    p = subprocess.run([rawmail_bin(), "dkim", "keygen", "--domain", domain, "--selector",
                        selector, "--type", typ, "--out", str(out)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return out, p.stdout.strip()


def p_value(zone_line):
    """The p= of a keygen record line (its strings joined)."""
    text = "".join(zone_line.split("(", 1)[1].rsplit(")", 1)[0].split('"')[1::2])
    return text.split("p=", 1)[1]


def test_dkim_key_records(nsd, port, tmp_path):  # noqa: F811
    good, good_rr = keygen(tmp_path, "s1")
    ed, ed_rr = keygen(tmp_path, "ed1", "ed25519")
    # a key whose record holds another key's p=: published for "wrong"
    wrong, _ = keygen(tmp_path, "wrong", name="wrong-local")
    _, other_rr = keygen(tmp_path, "wrong", name="other")
    missing, missing_rr = keygen(tmp_path, "gone")
    z = zones(ptr="me.example.test")
    z["example.test"] += "\n".join([good_rr, ed_rr, other_rr,
                                    's2._domainkey.good TXT "v=DKIM1; k=rsa; p=%%%"',
                                    'rev._domainkey.good TXT "v=DKIM1; p="',
                                    't._domainkey.good TXT "v=DKIM1; t=y; k=ed25519; p=%s"'
                                    % p_value(ed_rr)]) + "\n"
    dns = nsd(z)

    def check(*args):
        p, _ = run_check(dns, port, "--from", "a@good.example.test", *args)
        return p

    p = check("--dkim-key", str(good), "--dkim-selector", "s1", "--dkim-domain",
              "good.example.test", "--dkim-key", str(ed), "--dkim-selector", "ed1")
    ln, fix = line(p.stdout, "pass dkim s1._domainkey.good.example.test:")
    assert "k=rsa, p= matches the local key" in ln and not fix
    ln, _ = line(p.stdout, "pass dkim ed1._domainkey.good.example.test:")
    assert "k=ed25519" in ln
    assert p.returncode == 0, p.stdout

    # the record holds another key: the fix shows the local key's p=
    p = check("--dkim-key", str(wrong), "--dkim-selector", "wrong")
    ln, fix = line(p.stdout, "fail dkim wrong._domainkey.good.example.test:")
    assert "p= is not the public half of the local key" in ln
    local_p = p_value(fix.split("publish: ", 1)[1])
    assert fix.startswith(f"the local key's p= is {local_p}; publish: "
                          "wrong._domainkey.good.example.test. IN TXT ( \"v=DKIM1; k=rsa; p="), fix
    assert local_p != p_value(other_rr) and len(local_p) > 300
    assert p.returncode == 1

    # no record: fail, the fix is the record keygen printed, verbatim
    p = check("--dkim-key", str(missing), "--dkim-selector", "gone")
    ln, fix = line(p.stdout, "fail dkim gone._domainkey.good.example.test:")
    assert "no key record" in ln
    assert fix == "publish: " + missing_rr, (fix, missing_rr)

    # k= differs from the local key's type
    p = check("--dkim-key", str(ed), "--dkim-selector", "s1")
    ln, _ = line(p.stdout, "fail dkim s1._domainkey.good.example.test:")
    assert "k=rsa but the local key" in ln and "ed25519" in ln

    # a selector alone: the record's syntax, revocation and testing mode
    p = check("--dkim-selector", "s2", "--dkim-selector", "rev", "--dkim-selector", "t",
              "--dkim-selector", "s1")
    ln, fix = line(p.stdout, "fail dkim s2._domainkey.good.example.test:")
    assert "does not parse" in ln and "rawmail dkim keygen" in fix
    ln, _ = line(p.stdout, "fail dkim rev._domainkey.good.example.test:")
    assert "revoked" in ln
    ln, _ = line(p.stdout, "warn dkim t._domainkey.good.example.test:")
    assert "t=y" in ln
    ln, _ = line(p.stdout, "pass dkim s1._domainkey.good.example.test:")
    assert "present and parses" in ln

    # no key configured: a warning with keygen's command line
    p = check()
    ln, fix = line(p.stdout, "warn dkim good.example.test:")
    assert "no DKIM key configured" in ln
    assert "rawmail dkim keygen --domain good.example.test" in fix

    # [dkim] of the settings file, read as send reads it (-c)
    conf = tmp_path / "rawmail.conf"
    conf.write_text(f"[dkim]\nkey = {wrong}\nselector = wrong\ndomain = good.example.test\n"
                    f"key = {good}\nselector = s1\ndomain = good.example.test\n")
    conf.chmod(0o600)
    p = check("-c", str(conf), "--json")
    doc = json.loads(p.stdout)
    by = {(r["test"], r["subject"]): r for r in doc["results"]}
    assert by[("dkim", "s1._domainkey.good.example.test")]["status"] == "pass"
    wrong_r = by[("dkim", "wrong._domainkey.good.example.test")]
    assert wrong_r["status"] == "fail"
    assert f"the local key's p= is {local_p};" in wrong_r["fix"]
    assert p.returncode == 1

    # a key file that cannot be read fails, naming it; a bad flag is a usage error
    p = check("--dkim-key", str(tmp_path / "nope.key"), "--dkim-selector", "s1")
    ln, fix = line(p.stdout, "fail dkim s1._domainkey.good.example.test:")
    assert "nope.key" in ln and "rawmail dkim keygen" in fix
    p, _ = run_check(dns, port, "--from", "a@good.example.test", "--dkim-key", str(good))
    assert p.returncode == 64 and "--dkim-selector is missing" in p.stderr
