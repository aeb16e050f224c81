"""`rawmail send` to a real Postfix (postfix_util.py): messages arrive intact
(bytes, headers, recipients), by domain through a real NSD and by IP literal,
with and without STARTTLS.  Loopback only; DNS only through the test's NSD.
"""

import re

import pytest

from dns_util import nsd  # noqa: F401 (fixture)
from helpers import crlf, expected_stored_body, sample_message
from postfix_util import postfix, start_postfix  # noqa: F401 (fixtures)
from send_util import SENDER, send

ZONE = """\
@       MX 10 mx1
@       MX 20 mx2
mx1     A 127.0.0.2
mx2     A 127.0.0.3
aonly   A 127.0.0.2
alias   CNAME aonly
txt     TXT "v=spf1 ip4:127.0.0.1 -all"
txt     MX 10 mx1
null    MX 0 .
"""


def stored_parts(data):
    """(Postfix's added header lines, the message as stored) for one file."""
    lines = data.split(b"\n")
    assert lines[0] == f"Return-Path: <{SENDER}>".encode(), data[:300]
    i = 1
    while not lines[i].startswith(b"Received: "):
        i += 1
    i += 1
    while lines[i][:1] in (b" ", b"\t"):
        i += 1
    return b"\n".join(lines[:i]) + b"\n", b"\n".join(lines[i:])


def test_literal_byte_exact(postfix):
    msg = sample_message("to postfix")
    s = send(["-f", SENDER, "--port", postfix.port, "user@[127.0.0.1]"], msg, expect="ok")
    assert re.search(rf"delivered to \[127\.0\.0\.1\]:{postfix.port}: 250 2\.0\.0 Ok: queued as \w+",
                     s.result("user@[127.0.0.1]")), s
    [data] = postfix.wait_for_mail("user")
    added, rest = stored_parts(data)
    assert b"Delivered-To: user@[127.0.0.1]\n" in added
    assert rest == expected_stored_body(msg)


def test_domain_through_nsd_with_starttls_two_recipients_one_transaction(nsd, start_postfix):
    pf = start_postfix(host="127.0.0.2", tls=True, users=("user", "bob"))
    dns = nsd({"example.test": ZONE})
    msg = sample_message("mx and tls")
    s = send(["-v", "-f", SENDER, "--dns", dns.addr, "--port", pf.port, "user@example.test",
              "bob@example.test"], msg, expect="ok")
    assert s.commands().count("STARTTLS") == 1
    assert len([c for c in s.commands() if c.startswith("MAIL FROM:")]) == 1, s
    for user in ("user", "bob"):
        [data] = pf.wait_for_mail(user)
        added, rest = stored_parts(data)
        assert b"with ESMTPS" in added, added
        assert rest == expected_stored_body(msg)
        assert f"Delivered-To: {user}@example.test".encode() in added
    assert "mx1.example.test [127.0.0.2]" in s.result("bob@example.test")


def test_first_mx_down_second_postfix_takes_it(nsd, start_postfix):
    pf = start_postfix(host="127.0.0.3")
    dns = nsd({"example.test": ZONE})
    s = send(["--dns", dns.addr, "--port", pf.port, "-f", SENDER, "user@example.test"],
             sample_message(), expect="ok")
    assert "mx2.example.test [127.0.0.3]" in s.result("user@example.test")
    pf.wait_for_mail("user")


def test_unknown_user_is_permanent_with_postfix_reply(postfix):
    s = send(["-f", SENDER, "--port", postfix.port, "user@[127.0.0.1]",
              "nobody@[127.0.0.1]"], sample_message(), expect="unavailable")
    r = s.result("nobody@[127.0.0.1]")
    assert f"refused (permanent) by [127.0.0.1]:{postfix.port}: 550 5.1.1 <nobody@[127.0.0.1]>" in r, s
    assert "delivered" in s.result("user@[127.0.0.1]")
    postfix.wait_for_mail("user")


def test_rcpt_refusal_is_not_retried_on_the_next_mx(nsd, start_postfix):
    # mx1 knows no "carol": its 550 is final, mx2 (which would take it) is
    # never asked.
    one = start_postfix(host="127.0.0.2", users=("user",))
    two = start_postfix(host="127.0.0.3", port=one.port, users=("user", "carol"))
    dns = nsd({"example.test": ZONE})
    s = send(["-v", "--dns", dns.addr, "--port", one.port, "-f", SENDER, "carol@example.test"],
             sample_message(), expect="unavailable")
    assert "127.0.0.3" not in "\n".join(s.transcript()), s
    two.wait_idle()
    assert two.messages("carol") == []


def test_composed_utf8_message_and_8bit(postfix):
    s = send(["-v", "-f", SENDER, "-s", "Ünïcödé subject", "--port", postfix.port,
              "user@[127.0.0.1]"], "Grüße aus dem Labor\n".encode(), expect="ok")
    [data] = postfix.wait_for_mail("user")
    _, rest = stored_parts(data)
    head, _, body = rest.partition(b"\n\n")
    assert re.search(rb"(?m)^Subject: =\?UTF-8\?", head), head
    assert b"Content-Type: text/plain; charset=UTF-8" in head
    # the text is 8-bit UTF-8: quoted-printable keeps the message 7-bit
    assert b"quoted-printable" in head or b"8bit" in head, head
    assert not [c for c in s.commands() if "SMTPUTF8" in c]


def test_raw_8bit_message_uses_8bitmime(postfix):
    msg = crlf("From: alice@client.test\nDate: Mon, 23 Nov 2026 10:00:00 +0000\n"
               "Message-ID: <8bit.1@client.test>\n"
               "Subject: raw 8bit\nContent-Type: text/plain; charset=UTF-8\n"
               "Content-Transfer-Encoding: 8bit\n\n") + "Grüße\r\n".encode()
    s = send(["-v", "-f", SENDER, "--port", postfix.port, "user@[127.0.0.1]"], msg, expect="ok")
    assert any(c.startswith("MAIL FROM:") and "BODY=8BITMIME" in c for c in s.commands()), s
    [data] = postfix.wait_for_mail("user")
    assert stored_parts(data)[1] == expected_stored_body(msg)


@pytest.mark.parametrize("tls", ["none", "require"])
def test_tls_modes_against_postfix(start_postfix, tls):
    pf = start_postfix(tls=True)
    s = send(["-v", "-f", SENDER, "--tls", tls, "--port", pf.port, "user@[127.0.0.1]"],
             sample_message(), expect="ok")
    assert ("STARTTLS" in s.commands()) == (tls == "require")
    [data] = pf.wait_for_mail("user")
    assert (b"with ESMTPS" in stored_parts(data)[0]) == (tls == "require")


@pytest.mark.parametrize("domain,via", [("aonly.example.test", "aonly.example.test"),
                                        ("alias.example.test", "alias.example.test"),
                                        ("txt.example.test", "mx1.example.test")])
def test_dns_cases_through_nsd_to_postfix(nsd, start_postfix, domain, via):
    # A-only (implicit MX), a CNAME to it, a domain with TXT and MX records.
    pf = start_postfix(host="127.0.0.2", domains=(domain,))
    dns = nsd({"example.test": ZONE})
    msg = sample_message(domain)
    s = send(["-f", SENDER, "--dns", dns.addr, "--port", pf.port, f"user@{domain}"], msg,
             expect="ok")
    assert f"delivered to {via} [127.0.0.2]" in s.result(f"user@{domain}"), s
    [data] = pf.wait_for_mail("user")
    assert stored_parts(data)[1] == expected_stored_body(msg)


def test_null_mx_never_reaches_postfix(nsd, start_postfix):
    pf = start_postfix(host="127.0.0.2", domains=("null.example.test",))
    dns = nsd({"example.test": ZONE})
    s = send(["--dns", dns.addr, "--port", pf.port, "user@null.example.test"],
             sample_message(), expect="unavailable")
    assert "556 5.1.10" in s.result("user@null.example.test")
    assert "connect from" not in pf.log()
