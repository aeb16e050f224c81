"""Delivery plans from DNS (src/dns/lookup.c) against a real NSD on loopback.

tests/tools/dnsplan.c resolves recipient domains with dns_destination_lookup
and prints `DOMAIN PREF HOST ADDRESS` per address, in the order they would be
tried, or `DOMAIN error temporary|permanent|nullmx TEXT`.  It stands in for
`rawmail send --dry-run` until that exists (issue 4).  RAWMAIL_TOOLS selects
the directory of the tool binaries (default build-asan/tests: ASan + UBSan,
and every run checks stderr for sanitizer reports).

Every query goes to the NSD or the silent socket started here, never to the
system resolver.
"""

import os
import subprocess
import time

import pytest

from dns_util import dead_dns, nsd  # noqa: F401 (fixtures)
from helpers import REPO_ROOT

TOOLS = os.environ.get("RAWMAIL_TOOLS", str(REPO_ROOT / "build-asan" / "tests"))
DNSPLAN = os.path.join(TOOLS, "tool_dnsplan")

ZONE = """\
two           MX 10 mx1.two
two           MX 20 mx2.two
mx1.two       A 127.0.0.11
mx2.two       A 127.0.0.12
mx2.two       AAAA ::1
eq            MX 10 a.eq
eq            MX 10 b.eq
a.eq          A 127.0.0.21
b.eq          A 127.0.0.22
aonly         A 127.0.0.31
aonly         AAAA ::31
null          MX 0 .
mxcname       MX 10 alias.mxcname
alias.mxcname CNAME real.mxcname
real.mxcname  A 127.0.0.41
cname         CNAME two
noaddr        MX 10 nowhere.noaddr
noaddr        MX 15 txtonly.noaddr
noaddr        MX 20 host.noaddr
txtonly.noaddr TXT "no address here"
host.noaddr   A 127.0.0.51
allnone       MX 10 nowhere.allnone
v6host        MX 10 h.v6host
h.v6host      AAAA ::1
tempmx        MX 10 mail.example.org.
mixed         MX 10 mail.example.org.
mixed         MX 20 mx1.two
txtonly       TXT "no MX, no address"
"""

SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer")


@pytest.fixture(scope="module", autouse=True)
def tool_built():
    if not os.access(DNSPLAN, os.X_OK):
        pytest.skip(f"{DNSPLAN} missing: make -s SAN=1 build-asan/tests/tool_dnsplan")


@pytest.fixture
def dns(nsd):  # noqa: F811
    return nsd({"example.test": ZONE})


def plan(server, *args, timeout=20):
    """Runs tool_dnsplan; returns (lines per domain dict, elapsed seconds)."""
    t0 = time.monotonic()
    p = subprocess.run([DNSPLAN, "--dns", server, *args], capture_output=True, text=True,
                       timeout=timeout)
    elapsed = time.monotonic() - t0
    for mark in SANITIZER_MARKS:
        assert mark not in p.stderr, p.stderr
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    out = {}
    for line in p.stdout.splitlines():
        domain, rest = line.split(" ", 1)
        out.setdefault(domain, []).append(rest)
    return out, elapsed


def d(name):
    return f"{name}.example.test"


def test_two_mx_by_preference(dns):
    out, _ = plan(dns.addr, d("two"))
    assert out[d("two")] == [
        "10 mx1.two.example.test 127.0.0.11",
        "20 mx2.two.example.test 127.0.0.12",
        "20 mx2.two.example.test ::1",
    ]


def test_prefer_6_and_any_keep_mx_order(dns):
    out, _ = plan(dns.addr, "--prefer-6", d("two"), d("aonly"))
    assert out[d("two")] == [
        "10 mx1.two.example.test 127.0.0.11",
        "20 mx2.two.example.test ::1",
        "20 mx2.two.example.test 127.0.0.12",
    ]
    assert out[d("aonly")] == ["0 aonly.example.test ::31", "0 aonly.example.test 127.0.0.31"]
    out, _ = plan(dns.addr, "--any", d("aonly"))
    assert out[d("aonly")] == ["0 aonly.example.test ::31", "0 aonly.example.test 127.0.0.31"]


def test_family_filters(dns):
    out, _ = plan(dns.addr, "-4", d("two"), d("v6host"))
    assert out[d("two")] == ["10 mx1.two.example.test 127.0.0.11", "20 mx2.two.example.test 127.0.0.12"]
    assert out[d("v6host")][0].startswith("error permanent "), out
    out, _ = plan(dns.addr, "-6", d("two"), d("v6host"), d("eq"))
    assert out[d("two")] == ["20 mx2.two.example.test ::1"]
    assert out[d("v6host")] == ["10 h.v6host.example.test ::1"]
    assert out[d("eq")][0].startswith("error permanent "), out


def test_equal_preference_is_randomised(dns):
    """RFC 5321 §5.1: equal preferences in random order; both orders occur."""
    seen = set()
    for _ in range(12):
        out, _ = plan(dns.addr, *[d("eq")] * 4)
        lines = out[d("eq")]
        assert len(lines) == 8
        for k in range(0, 8, 2):
            pair = tuple(lines[k:k + 2])
            assert sorted(pair) == ["10 a.eq.example.test 127.0.0.21", "10 b.eq.example.test 127.0.0.22"]
            seen.add(pair)
        if len(seen) == 2:
            break
    assert len(seen) == 2, seen


def test_implicit_mx(dns):
    out, _ = plan(dns.addr, d("aonly"))
    assert out[d("aonly")] == ["0 aonly.example.test 127.0.0.31", "0 aonly.example.test ::31"]


def test_null_mx(dns):
    out, _ = plan(dns.addr, d("null"))
    assert len(out[d("null")]) == 1
    assert out[d("null")][0].startswith("error nullmx "), out
    assert "RFC 7505" in out[d("null")][0]


def test_mx_pointing_to_cname_is_defined(dns):
    """RFC 5321 §5.1 / RFC 2181 §10.3: an MX must not name an alias; c-ares
    follows it anyway.  Either an address list or a clean error is fine."""
    out, _ = plan(dns.addr, d("mxcname"))
    lines = out[d("mxcname")]
    assert lines in (["10 alias.mxcname.example.test 127.0.0.41"],) or \
        (len(lines) == 1 and lines[0].startswith("error ")), lines


def test_cname_for_the_domain(dns):
    out, _ = plan(dns.addr, d("cname"))
    assert out[d("cname")] == [
        "10 mx1.two.example.test 127.0.0.11",
        "20 mx2.two.example.test 127.0.0.12",
        "20 mx2.two.example.test ::1",
    ]


def test_nxdomain_is_permanent(dns):
    out, _ = plan(dns.addr, d("missing"))
    assert out[d("missing")][0].startswith("error permanent "), out
    assert "NXDOMAIN" in out[d("missing")][0]


def test_no_mx_no_address_is_permanent(dns):
    out, _ = plan(dns.addr, d("txtonly"))
    assert out[d("txtonly")][0].startswith("error permanent "), out


def test_refused_is_temporary(dns):
    """NSD refuses names outside its zones: temporary, and no fallback to A."""
    out, _ = plan(dns.addr, "example.org")
    assert out["example.org"][0].startswith("error temporary "), out


def test_hosts_without_address_are_skipped(dns):
    out, _ = plan(dns.addr, d("noaddr"), d("allnone"), d("mixed"))
    assert out[d("noaddr")] == ["20 host.noaddr.example.test 127.0.0.51"]
    assert out[d("allnone")][0].startswith("error permanent "), out
    # the first MX is outside NSD's zones (REFUSED): temporary for that
    # host, the second still works
    assert out[d("mixed")] == ["20 mx1.two.example.test 127.0.0.11"]


def test_every_host_failing_temporarily_is_temporary(dns):
    out, _ = plan(dns.addr, d("tempmx"))
    assert out[d("tempmx")][0].startswith("error temporary "), out


def test_silent_server_is_temporary_and_bounded(dead_dns):  # noqa: F811
    server = dead_dns()
    out, elapsed = plan(server, "example.test", "other.test")
    assert out["example.test"][0].startswith("error temporary "), out
    assert out["other.test"][0].startswith("error temporary "), out
    # 500 ms per try, two tries (c-ares doubles the second): well under 5 s
    assert elapsed < 5, elapsed


def test_many_domains_at_once(dns):
    names = [d(n) for n in ("two", "eq", "aonly", "null", "missing", "noaddr")] * 5
    out, _ = plan(dns.addr, *names)
    assert set(out) == set(names)
    assert len(out[d("two")]) == 15
