"""No open relay: every way of naming a foreign destination is refused with
554 5.7.1, and nothing is stored anywhere under the mail root."""

import pytest

from helpers import assert_no_mail, dot_stuff, free_port, maildir_files, sample_message

SENDER = "sender@client.test"

RELAY_FORMS = [
    "user@other.test",
    "USER@OTHER.TEST",
    "postmaster@other.test",
    "user%other.test@[127.0.0.1]",
    "user%other.test@example.test",
    "USER%OTHER.TEST@localhost",
    "user%other.test@127.0.0.1",
    "other.test!user@[127.0.0.1]",
    "other.test!user@example.test",
    '"user@other.test"@[127.0.0.1]',
    '"user@other.test"@example.test',
    '"user%other.test"@example.test',
    "@[127.0.0.1]:user@other.test",
    "@example.test:user@other.test",
    "@localhost,@[127.0.0.1]:user@other.test",
    "user@sub.example.test",
    "user@example.test.other.test",
    "user@xexample.test",
    "user@localhost.other.test",
    "user@[127.0.0.2]",
    "user@127.0.0.2",
    "user@[10.0.0.1]",
    "user@[IPv6:::1]",               # the server listens on 127.0.0.1 only
    "user@[IPv6:::ffff:127.0.0.2]",
    "user@[IPv6:::ffff:10.0.0.1]",
    "user@[IPv6:2001:db8::1]",
]


def refused_then_nothing_stored(server, rcpt):
    c = server.session()
    r = c.cmd(f"MAIL FROM:<{SENDER}>")
    assert r.code == 250, r
    r = c.cmd(f"RCPT TO:<{rcpt}>")
    assert (r.code, r.enhanced) == (554, "5.7.1"), f"RCPT TO:<{rcpt}> -> {r}"
    # No recipient: DATA is refused; the session goes on.
    r = c.cmd("DATA")
    if r.code == 354:   # a bug: send the message anyway and see it is not stored
        c.send(dot_stuff(sample_message("relayed")) + b".\r\n")
        r2 = c.read_reply()
        raise AssertionError(f"DATA accepted with no valid recipient: {r}, then {r2}")
    assert r.code in (503, 554) and r.enhanced and r.enhanced.startswith("5."), r
    r = c.cmd("QUIT")
    assert r.code == 221, r
    c.close()
    assert_no_mail(server.mailroot)


@pytest.mark.parametrize("rcpt", RELAY_FORMS)
def test_relay_refused(server, rcpt):
    refused_then_nothing_stored(server, rcpt)


@pytest.mark.parametrize("rcpt", ["user@example.test", "user@[127.0.0.1]", "user@[::1]"])
def test_relay_forms_refused_on_ipv6_listener(start_server, rcpt):
    """On a [::1]-only listener: no domain but the configured one, no IPv4
    literal; a literal without the IPv6: tag is no IPv6 literal either."""
    srv = start_server(listen=[f"[::1]:{free_port()}"])
    if rcpt == "user@example.test":
        c = srv.session()
        assert c.cmd(f"MAIL FROM:<{SENDER}>").code == 250
        r = c.cmd(f"RCPT TO:<{rcpt}>")
        assert r.code == 250, r
        return
    c = srv.session()
    assert c.cmd(f"MAIL FROM:<{SENDER}>").code == 250
    r = c.cmd(f"RCPT TO:<{rcpt}>")
    assert r.code // 100 == 5, f"RCPT TO:<{rcpt}> -> {r}"
    assert_no_mail(srv.mailroot)


def test_relay_refused_in_pipeline_with_good_recipient(server):
    """A foreign recipient next to an accepted one: the message goes only to
    the accepted mailbox, never to a directory named after the other."""
    c = server.session()
    c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<user%other.test@[127.0.0.1]>\r\n"
           "RCPT TO:<other.test!user@[127.0.0.1]>\r\nRCPT TO:<@[127.0.0.1]:user@other.test>\r\n"
           "RCPT TO:<good@example.test>\r\nDATA\r\n")
    rs = c.read_replies(6)
    assert rs[0].code == 250, rs[0]
    for r in rs[1:4]:
        assert (r.code, r.enhanced) == (554, "5.7.1"), r
    assert rs[4].code == 250, rs[4]
    assert rs[5].code == 354, rs[5]
    c.send(dot_stuff(sample_message()) + b".\r\n")
    assert c.read_reply().code == 250
    files = maildir_files(server.mailroot)
    assert len(files) == 1 and files[0].parent.parent.name == "good", files


def test_source_route_to_us_accepted(server):
    """RFC 5321 §3.6.1: the route is ignored, the final domain decides."""
    c = server.session()
    assert c.cmd(f"MAIL FROM:<{SENDER}>").code == 250
    r = c.cmd("RCPT TO:<@other.test:user@example.test>")
    assert (r.code, r.enhanced) == (250, "2.1.5"), r


def test_mail_from_foreign_sender_is_fine(server):
    """Refusing relay is about recipients: any sender may mail a local user."""
    c = server.session()
    r = c.cmd("MAIL FROM:<someone@other.test>")
    assert (r.code, r.enhanced) == (250, "2.1.0"), r
    r = c.cmd("RCPT TO:<user@example.test>")
    assert (r.code, r.enhanced) == (250, "2.1.5"), r
