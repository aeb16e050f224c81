"""What message content the server refuses (issue 8, items 6 and 7):

- content sent with DATA, before the 354 (RFC 2920 §3.1: DATA ends a
  pipelined group; the shape of several smuggling attacks): 554 5.5.0 and
  the connection is closed, nothing stored, as Postfix's
  smtpd_forbid_unauth_pipelining.  MAIL/RCPT/DATA pipelined with DATA last,
  and BDAT chunks pipelined with their commands (RFC 3030), still work;
- NUL octets in the message (RFC 5322 §2.3, RFC 6152): 554 5.6.0 after the
  end of the data, in DATA and BDAT, nothing stored, the session goes on."""

from helpers import assert_no_mail, crlf, mailbox_messages

SENDER = "sender@client.test"
ENVELOPE = (f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<user@example.test>\r\n").encode()


def expect(r, code, enhanced=None):
    assert r.code == code, f"expected {code} {enhanced or ''}, got {r}"
    if enhanced is not None:
        assert r.enhanced == enhanced, f"expected {code} {enhanced}, got {r}"
    return r


def test_content_before_354_refused(server):
    c = server.session()
    msg = crlf("Subject: no wait\n\nsent before the 354\n")
    c.send(ENVELOPE + b"DATA\r\n" + msg + b".\r\n")
    expect(c.read_reply(), 250)
    expect(c.read_reply(), 250)
    expect(c.read_reply(), 554, "5.5.0")
    rest = c.read_until_closed(timeout=5)
    assert rest == b"", f"more after the 554: {rest!r}"
    assert_no_mail(server.mailroot)
    server.assert_alive()


def test_smuggled_transaction_before_354_refused(server):
    """A second transaction hidden in content sent before the 354 is not
    run either: the session ends at the 554."""
    c = server.session()
    c.send(ENVELOPE + b"DATA\r\nSubject: a\r\n\r\nx\r\n.\r\n" + ENVELOPE +
           b"DATA\r\nSubject: b\r\n\r\ny\r\n.\r\nQUIT\r\n")
    data = c.read_until_closed(timeout=5)
    assert data == (b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n554 5.5.0 Protocol error: content "
                    b"sent before the 354 reply to DATA\r\n"), data
    assert_no_mail(server.mailroot)


def test_pipelined_group_with_data_last(server):
    c = server.session()
    c.send(ENVELOPE + b"DATA\r\n")
    expect(c.read_reply(), 250)
    expect(c.read_reply(), 250)
    expect(c.read_reply(), 354)
    c.send(crlf("Subject: pipelined\n\nDATA last in its group\n") + b".\r\n")
    expect(c.read_reply(), 250)
    got = mailbox_messages(server.mailroot, "user", wait=3)
    assert len(got) == 1 and b"DATA last in its group" in got[0], got


def test_pipelined_bdat(server):
    """RFC 3030 §4.2: BDAT chunks follow their commands without a wait."""
    c = server.session()
    body = crlf("Subject: chunks\n\nfirst ") + b"and last\r\n"
    c.send(ENVELOPE + b"BDAT %d\r\n" % 10 + body[:10] +
           b"BDAT %d LAST\r\n" % (len(body) - 10) + body[10:])
    expect(c.read_reply(), 250)
    expect(c.read_reply(), 250)
    expect(c.read_reply(), 250)
    expect(c.read_reply(), 250)
    got = mailbox_messages(server.mailroot, "user", wait=3)
    assert len(got) == 1 and b"first and last" in got[0], got


def test_nul_in_data_refused(server):
    c = server.session()
    expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
    expect(c.cmd("RCPT TO:<user@example.test>"), 250)
    expect(c.cmd("DATA"), 354)
    c.send(b"Subject: nul\r\n\r\nbefore\x00after\r\n.\r\n")
    expect(c.read_reply(), 554, "5.6.0")
    assert_no_mail(server.mailroot)
    # The session goes on, and a clean message is stored.
    expect(c.cmd("NOOP"), 250)
    expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
    expect(c.cmd("RCPT TO:<user@example.test>"), 250)
    expect(c.cmd("DATA"), 354)
    c.send(b"Subject: clean\r\n\r\nno nul\r\n.\r\n")
    expect(c.read_reply(), 250)
    got = mailbox_messages(server.mailroot, "user", wait=3)
    assert len(got) == 1 and b"no nul" in got[0], got


def test_nul_in_bdat_refused(server):
    c = server.session()
    expect(c.cmd(f"MAIL FROM:<{SENDER}>"), 250)
    expect(c.cmd("RCPT TO:<user@example.test>"), 250)
    body = b"Subject: nul\r\n\r\n\x00\r\n"
    c.send(b"BDAT %d LAST\r\n" % len(body) + body)
    expect(c.read_reply(), 554, "5.6.0")
    assert_no_mail(server.mailroot)
    expect(c.cmd("NOOP"), 250)
