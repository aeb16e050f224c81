"""SPF evaluation (src/dns/spf.c, RFC 7208 check_host) against a real NSD.

tests/tools/spf.c runs spf_check_start for one address and domain against
the NSD started here and prints the result, the lookups counted, the
deciding term and the explanation.  It stands in for `rawmail check`'s
SPF line (issue 11).  Where Debian's python3-spf (pyspf, an evaluator
nobody here wrote) is installed, a table of cases is evaluated by both,
reading the same zones from the same NSD.

Every query goes to the NSD or the silent socket started here, never to the
system resolver.  The addresses checked are never connected to: they are
only the input of the evaluation (documentation ranges, RFC 5737/3849).
"""

import os
import subprocess

import pytest

from dns_util import dead_dns, nsd  # noqa: F401 (fixtures)
from helpers import REPO_ROOT

TOOLS = os.environ.get("RAWMAIL_TOOLS", str(REPO_ROOT / "build-asan" / "tests"))
TOOL = os.path.join(TOOLS, "tool_spf")
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer")

ELEVEN = " ".join(["a:l.example.test"] * 11)
TEN = " ".join(["a:l.example.test"] * 10)

ZONE = f"""\
ip4         TXT "v=spf1 ip4:192.0.2.0/24 -all"
ip4         TXT "some-site-verification=abc"
ip6         TXT "v=spf1 ip6:2001:db8::/32 -all"
a           TXT "v=spf1 a -all"
a           A 192.0.2.10
acidr       TXT "v=spf1 a:host.example.test/24//64 -all"
host        A 192.0.2.10
host        AAAA 2001:db8:1::1
mx          TXT "v=spf1 mx -all"
mx          MX 10 mail.mx
mx          MX 20 mail2.mx
mail.mx     A 198.51.100.7
mail2.mx    A 192.0.2.20
inc         TXT "v=spf1 include:inc-target.example.test -all"
inc-target  TXT "v=spf1 ip4:192.0.2.30 -all"
redir       TXT "v=spf1 redirect=ip4.example.test"
exists      TXT "v=spf1 exists:%{{ir}}.bl.example.test -all"
1.2.0.192.bl A 127.0.0.2
macro       TXT "v=spf1 a:%{{l1r-}}.users.%{{d}} -all"
alice.users.macro A 192.0.2.40
split       TXT "v=spf1 ip4:192.0.2.60" " -all"
ptr         TXT "v=spf1 ptr -all"
ptrhost.ptr A 192.0.2.50
fail        TXT "v=spf1 -all"
softfail    TXT "v=spf1 ~all"
neutral     TXT "v=spf1 ?all"
nomatch     TXT "v=spf1 ip4:10.0.0.1"
norecord    TXT "not spf"
norecord    A 192.0.2.1
two         TXT "v=spf1 -all"
two         TXT "v=spf1 +all"
syntax      TXT "v=spf1 ip4:300.1.1.1 -all"
eleven      TXT "v=spf1 {ELEVEN} -all"
ten         TXT "v=spf1 {TEN} -all"
l           A 198.51.100.99
void3       TXT "v=spf1 a:v1.example.test a:v2.example.test a:v3.example.test -all"
void2       TXT "v=spf1 a:v1.example.test a:v2.example.test -all"
incnone     TXT "v=spf1 include:norecord.example.test -all"
redirnone   TXT "v=spf1 redirect=norecord.example.test"
manymx      TXT "v=spf1 mx -all"
{"".join(f"manymx MX {i} m{i}.manymx{chr(10)}" for i in range(11))}
trunc       TXT "v=spf1 exists:%{{l}}.%{{l}}.%{{l}}.%{{l}}.%{{l}}.trunc.example.test -all"
{"x" * 60}.{"x" * 60}.{"x" * 60}.trunc A 127.0.0.2
exists6     TXT "v=spf1 exists:%{{ir}}.%{{v}}.x6.example.test -all"
1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.x6 A 127.0.0.2
mxcidr      TXT "v=spf1 mx/24 -all"
mxcidr      MX 10 mail.mx
nullmx      TXT "v=spf1 mx ip4:192.0.2.80 -all"
nullmx      MX 0 .
temp        TXT "v=spf1 include:elsewhere.invalid -all"
helo        TXT "v=spf1 a -all"
helo        A 192.0.2.70
multi       TXT "first" "-string"
multi       TXT "second record"
long        TXT "{"a" * 255}" "{"b" * 100}"
addronly    A 192.0.2.1
"""

REVERSE = {"2.0.192.in-addr.arpa": "50 PTR ptrhost.ptr.example.test.\n"
                                   "51 PTR other.example.org.\n"}


@pytest.fixture(scope="module", autouse=True)
def tool_built():
    if not os.access(TOOL, os.X_OK):
        pytest.skip(f"{TOOL} missing: make -s SAN=1 build-asan/tests/tool_spf")


@pytest.fixture
def dns(nsd):  # noqa: F811
    return nsd({"example.test": ZONE, **REVERSE})


def spf(server, ip, domain, sender=None, helo=None, timeout=20, ms=500):
    """Runs tool_spf; returns its lines as a dict."""
    args = [TOOL, "--dns", server, "--timeout", str(ms), ip, domain]
    if sender is not None:
        args.append(sender)
        if helo is not None:
            args.append(helo)
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    for mark in SANITIZER_MARKS:
        assert mark not in p.stderr, p.stderr
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    out = {}
    for line in p.stdout.splitlines():
        key, _, value = line.partition(" ")
        out[key] = value
    assert "result" in out, p.stdout
    return out


def d(name):
    return f"{name}.example.test"


def txt(server, name, ms=500):
    """tool_spf --txt: (status, [records], text)."""
    p = subprocess.run([TOOL, "--dns", server, "--timeout", str(ms), "--txt", name],
                       capture_output=True, text=True, timeout=20)
    for mark in SANITIZER_MARKS:
        assert mark not in p.stderr, p.stderr
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    status, records, text = None, [], None
    for line in p.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key == "status":
            status = value
        elif key == "txt":
            records.append(value)
        elif key == "text":
            text = value
    return status, records, text


def test_txt_strings_joined_per_record(dns):
    """RFC 7208 §3.3: a record's character-strings are joined, records kept apart."""
    status, records, _ = txt(dns.addr, d("multi"))
    assert status == "ok"
    assert sorted(records) == ["first-string", "second record"]
    status, records, _ = txt(dns.addr, d("long"))
    assert (status, records) == ("ok", ["a" * 255 + "b" * 100])


def test_txt_absence_and_failure_told_apart(dns, dead_dns):  # noqa: F811
    status, records, text = txt(dns.addr, d("nosuchname"))
    assert (status, records) == ("nxdomain", []) and "NXDOMAIN" in text
    status, records, text = txt(dns.addr, d("addronly"))
    assert (status, records) == ("nodata", []) and "no TXT record" in text
    status, _, text = txt(dns.addr, "elsewhere.invalid")   # outside NSD's zones: REFUSED
    assert status == "temporary", text
    status, _, text = txt(dead_dns(), "example.test", ms=300)
    assert status == "temporary", text


# (ip, domain label, sender, expected result)
CASES = [
    ("192.0.2.1", "ip4", "a@ip4.example.test", "pass"),
    ("198.51.100.1", "ip4", "a@ip4.example.test", "fail"),
    ("::ffff:192.0.2.1", "ip4", "a@ip4.example.test", "pass"),
    ("2001:db8::5", "ip6", "a@ip6.example.test", "pass"),
    ("2001:db9::5", "ip6", "a@ip6.example.test", "fail"),
    ("192.0.2.1", "ip6", "a@ip6.example.test", "fail"),
    ("192.0.2.10", "a", "a@a.example.test", "pass"),
    ("192.0.2.11", "a", "a@a.example.test", "fail"),
    ("192.0.2.99", "acidr", "a@acidr.example.test", "pass"),
    ("2001:db8:1::ffff", "acidr", "a@acidr.example.test", "pass"),
    ("2001:db8:2::1", "acidr", "a@acidr.example.test", "fail"),
    ("192.0.2.20", "mx", "a@mx.example.test", "pass"),
    ("192.0.2.21", "mx", "a@mx.example.test", "fail"),
    ("192.0.2.30", "inc", "a@inc.example.test", "pass"),
    ("192.0.2.31", "inc", "a@inc.example.test", "fail"),
    ("192.0.2.1", "redir", "a@redir.example.test", "pass"),
    ("198.51.100.1", "redir", "a@redir.example.test", "fail"),
    ("192.0.2.1", "exists", "a@exists.example.test", "pass"),
    ("192.0.2.2", "exists", "a@exists.example.test", "fail"),
    ("192.0.2.40", "macro", "alice-x@macro.example.test", "pass"),
    ("192.0.2.40", "macro", "bob@macro.example.test", "fail"),
    ("192.0.2.60", "split", "a@split.example.test", "pass"),
    ("192.0.2.50", "ptr", "a@ptr.example.test", "pass"),
    ("192.0.2.51", "ptr", "a@ptr.example.test", "fail"),
    ("192.0.2.1", "fail", "a@fail.example.test", "fail"),
    ("192.0.2.1", "softfail", "a@softfail.example.test", "softfail"),
    ("192.0.2.1", "neutral", "a@neutral.example.test", "neutral"),
    ("192.0.2.1", "nomatch", "a@nomatch.example.test", "neutral"),
    ("192.0.2.1", "norecord", "a@norecord.example.test", "none"),
    ("192.0.2.1", "nosuchname", "a@nosuchname.example.test", "none"),
    ("192.0.2.1", "two", "a@two.example.test", "permerror"),
    ("192.0.2.1", "syntax", "a@syntax.example.test", "permerror"),
    ("192.0.2.1", "eleven", "a@eleven.example.test", "permerror"),
    ("192.0.2.1", "ten", "a@ten.example.test", "fail"),
    ("192.0.2.1", "void3", "a@void3.example.test", "permerror"),
    ("192.0.2.1", "void2", "a@void2.example.test", "fail"),
    ("192.0.2.1", "incnone", "a@incnone.example.test", "permerror"),
    ("192.0.2.1", "redirnone", "a@redirnone.example.test", "permerror"),
    ("192.0.2.1", "manymx", "a@manymx.example.test", "permerror"),
    ("192.0.2.1", "trunc", "x" * 60 + "@trunc.example.test", "pass"),
    ("2001:db8::1", "exists6", "a@exists6.example.test", "pass"),
    ("2001:db8::2", "exists6", "a@exists6.example.test", "fail"),
    ("198.51.100.200", "mxcidr", "a@mxcidr.example.test", "pass"),
    ("198.51.101.7", "mxcidr", "a@mxcidr.example.test", "fail"),
    ("192.0.2.80", "nullmx", "a@nullmx.example.test", "pass"),
    ("192.0.2.81", "nullmx", "a@nullmx.example.test", "fail"),
    ("192.0.2.1", "temp", "a@temp.example.test", "temperror"),
]


@pytest.mark.parametrize("ip,label,sender,want", CASES,
                         ids=[f"{c[1]}-{c[0]}-{c[3]}" for c in CASES])
def test_result(dns, ip, label, sender, want):
    out = spf(dns.addr, ip, d(label), sender, "helo.example.test")
    assert out["result"] == want, out


def test_fail_explains_what_was_tried(dns):
    out = spf(dns.addr, "198.51.100.1", d("ip4"), "a@ip4.example.test")
    assert out["matched"] == "-all"
    assert out["explanation"] == "-all matched; 198.51.100.1 is not in ip4:192.0.2.0/24", out
    assert out["record"] == "v=spf1 ip4:192.0.2.0/24 -all"
    assert out["lookups"] == "0"


def test_include_pass_names_the_include_and_counts(dns):
    out = spf(dns.addr, "192.0.2.30", d("inc"), "a@inc.example.test")
    assert out["matched"] == "include:inc-target.example.test"
    assert out["matched_in"] == "inc-target.example.test"
    assert out["lookups"] == "1"


def test_redirect_outcome_names_the_domain_asked(dns):
    out = spf(dns.addr, "192.0.2.1", d("redir"), "a@redir.example.test")
    assert out["domain"] == d("redir")
    assert out["record"] == "v=spf1 redirect=ip4.example.test"
    assert out["matched_in"] == d("ip4")
    assert out["lookups"] == "1"


def test_limits_are_explained(dns):
    out = spf(dns.addr, "192.0.2.1", d("eleven"), "a@eleven.example.test")
    assert "more than 10 DNS lookups" in out["explanation"], out
    assert out["lookups"] == "11"
    out = spf(dns.addr, "192.0.2.1", d("void3"), "a@void3.example.test")
    assert "void" in out["explanation"], out
    assert out["voids"] == "3"
    out = spf(dns.addr, "192.0.2.1", d("two"), "a@two.example.test")
    assert "2 SPF records" in out["explanation"], out


def test_long_expansion_cut_from_the_left(dns):
    """RFC 7208 §7.3: an expanded name over 253 octets loses labels on its left
    (5 x 60-octet labels and the domain: the two leftmost go)."""
    out = spf(dns.addr, "192.0.2.1", d("trunc"), "x" * 60 + "@trunc.example.test")
    assert out["result"] == "pass", out
    out = spf(dns.addr, "192.0.2.1", d("trunc"), "y" * 60 + "@trunc.example.test")
    assert out["result"] == "fail", out


def test_helo_identity_of_a_bounce(dns):
    """§2.3: the HELO name checked with an empty sender (postmaster@helo)."""
    assert spf(dns.addr, "192.0.2.70", d("helo"), "", d("helo"))["result"] == "pass"
    assert spf(dns.addr, "192.0.2.71", d("helo"), "", d("helo"))["result"] == "fail"


def test_silent_server_is_temperror(dead_dns):  # noqa: F811
    out = spf(dead_dns(), "192.0.2.1", "example.test", "a@example.test", ms=300)
    assert out["result"] == "temperror", out


# ---------------------------------------------------------------------------
# the same cases through pyspf (python3-spf), reading the same NSD


def pyspf_result(server_host, port, ip, sender, helo):
    spf_mod = pytest.importorskip("spf")
    import dns.resolver
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = [server_host]
    res.port = port
    res.lifetime = 5
    saved = dns.resolver.default_resolver
    dns.resolver.default_resolver = res
    try:
        return spf_mod.check2(i=ip, s=sender, h=helo)[0]
    finally:
        dns.resolver.default_resolver = saved


# pyspf asks the domain of the sender.  Left out: "nosuchname" and "temp"
# (pyspf's NXDOMAIN and REFUSED handling goes through dnspython's own error
# classes; tested above with our tool alone), and ptr for 192.0.2.51, whose
# PTR name other.example.org is outside the zones (NSD refuses it): pyspf
# looks up that name's address and turns the refusal into a temperror,
# while RFC 7208 §5.5 says a name whose address lookup fails is skipped,
# and a name not under the target cannot match anyway (we never ask it).
# And "trunc": pyspf 2.0.14 drops only one label of an expansion over 253
# octets (an `if` where §7.3 says "until"), and dnspython then refuses the
# name as too long.
PYSPF_CASES = [c for c in CASES
               if c[1] not in ("nosuchname", "temp", "trunc")
               and (c[1], c[0]) != ("ptr", "192.0.2.51")]


@pytest.mark.parametrize("ip,label,sender,want", PYSPF_CASES,
                         ids=[f"{c[1]}-{c[0]}-{c[3]}" for c in PYSPF_CASES])
def test_same_as_pyspf(dns, ip, label, sender, want):
    theirs = pyspf_result(dns.host, dns.port, ip, sender, "helo.example.test")
    ours = spf(dns.addr, ip, d(label), sender, "helo.example.test")["result"]
    assert ours == theirs, (ours, theirs)
