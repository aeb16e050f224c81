"""Delivery status notifications (src/msg/dsn.c) read by parsers nobody here wrote.

tests/tools/dsn.c prints the DSN msg_dsn_build makes from its arguments (the
original message on stdin).  Python's `email` package (policy.default) must
see a multipart/report; report-type=delivery-status with its three parts, the
per-recipient blocks of the message/delivery-status part, and the original
header section; and Mailman's bounce detector (flufl.bounce, Debian's
python3-flufl.bounce) must find the failed and delayed recipients as it does
in other MTAs' bounces.  RAWMAIL_TOOLS selects the directory of the tool
binaries (default build-asan/tests: every run is checked for sanitizer
reports).
"""

import email
import email.policy
import email.utils
import os
import subprocess

from helpers import REPO_ROOT

TOOLS = os.environ.get("RAWMAIL_TOOLS", str(REPO_ROOT / "build-asan" / "tests"))
DSN = os.path.join(TOOLS, "tool_dsn")
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer")

ORIGINAL = (b"Received: from client.example by mx.example.net; Thu, 13 Feb 2025 09:00:00 +0000\r\n"
            b"From: Alice <alice@example.org>\r\n"
            b"To: bob@example.com, carol@example.com\r\n"
            b"Subject: lunch on Friday\r\n"
            b"Message-ID: <orig.1@example.org>\r\n"
            b"\r\n"
            b"Shall we?\r\n"
            b"Secret-Looking: body line\r\n")

GMAIL = ("550-5.1.1 The email account that you tried to reach does not exist. Please try\\r\\n"
         "550-5.1.1 double-checking the recipient's email address for typos or\\r\\n"
         "550 5.1.1 unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser a1si\\r\\n")
GMAIL_JOINED = ("550-5.1.1 The email account that you tried to reach does not exist. Please try "
                "550-5.1.1 double-checking the recipient's email address for typos or "
                "550 5.1.1 unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser a1si")


def build(args, original=ORIGINAL, expect_rc=0):
    p = subprocess.run([DSN, *args], input=original, capture_output=True, timeout=30)
    err = p.stderr.decode("utf-8", "replace")
    for mark in SANITIZER_MARKS:
        assert mark not in err, err
    assert p.returncode == expect_rc, (p.returncode, err)
    return p.stdout


def parse(raw):
    """The message, after checking what every DSN must be on the wire."""
    assert raw.endswith(b"\r\n")
    for line in raw.split(b"\r\n")[:-1]:
        assert b"\r" not in line and b"\n" not in line and b"\0" not in line
        assert len(line) <= 998
    head, _, body = raw.partition(b"\r\n\r\n")
    assert all(b < 128 for b in body), "the body is 7-bit"
    return email.message_from_bytes(raw, policy=email.policy.default)


def common_args(*rcpts):
    return ["--host", "mail.example.net", "--sender", "alice@example.org",
            "--arrival", "1739430000", "--date", "1739437445", *rcpts]


def parts_of(msg):
    assert msg.is_multipart()
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == [
        "text/plain", "message/delivery-status", "text/rfc822-headers"]
    assert not msg.defects, msg.defects
    for p in parts:
        assert not p.defects, (p.get_content_type(), p.defects)
    return parts


def status_blocks(part):
    """Python reads message/delivery-status as a list of header blocks: the
    per-message fields, then one block per recipient (RFC 3464 §2.1)."""
    blocks = part.get_payload()
    assert isinstance(blocks, list)
    return blocks[0], blocks[1:]


def test_bounce_two_recipients():
    raw = build(common_args(
        "--rcpt", "bob@example.com", "--remote-mta", "gmail-smtp-in.l.google.com",
        "--reply", GMAIL, "--last", "1739437000",
        "--rcpt", "carol@example.com", "--orcpt", "Carol@Example.COM",
        "--reason", "connection refused by 192.0.2.9"))
    msg = parse(raw)
    text, status, headers = parts_of(msg)

    assert msg["From"].addresses[0].username == "MAILER-DAEMON"
    assert msg["From"].addresses[0].domain == "mail.example.net"
    assert msg["To"].addresses[0].addr_spec == "alice@example.org"
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["Date"].datetime == email.utils.parsedate_to_datetime("Thu, 13 Feb 2025 09:04:05 +0000")
    assert msg["Message-ID"].endswith("@mail.example.net>")
    assert msg["MIME-Version"] == "1.0"

    per_message, rcpts = status_blocks(status)
    assert per_message["Reporting-MTA"] == "dns; mail.example.net"
    assert email.utils.parsedate_to_datetime(per_message["Arrival-Date"]).timestamp() == 1739430000
    assert len(rcpts) == 2
    bob, carol = rcpts
    assert bob["Final-Recipient"] == "rfc822; bob@example.com"
    assert bob["Original-Recipient"] is None
    assert bob["Action"] == "failed"
    assert bob["Status"] == "5.1.1"
    assert bob["Remote-MTA"] == "dns; gmail-smtp-in.l.google.com"
    # RFC 3464 §2.3.6: the peer's whole reply, its lines joined.
    assert bob["Diagnostic-Code"] == "smtp; " + GMAIL_JOINED
    assert email.utils.parsedate_to_datetime(bob["Last-Attempt-Date"]).timestamp() == 1739437000
    assert carol["Original-Recipient"] == "rfc822; Carol@Example.COM"
    assert carol["Final-Recipient"] == "rfc822; carol@example.com"
    assert carol["Status"] == "5.0.0"
    assert carol["Diagnostic-Code"] == "X-Rawmail; connection refused by 192.0.2.9"
    assert carol["Remote-MTA"] is None

    # The original's header section, and nothing of its body.
    content = headers.get_content()
    original = email.message_from_string(content, policy=email.policy.default)
    assert original["Subject"] == "lunch on Friday"
    assert original["Message-ID"] == "<orig.1@example.org>"
    assert "Shall we" not in content and "Secret-Looking" not in content

    words = text.get_content().replace("\r\n", "\n")
    assert "<bob@example.com>: delivery failed" in words
    assert "550-5.1.1 double-checking the recipient's email address for typos or\n" in words
    assert "connection refused by 192.0.2.9" in words


def test_delay_warning():
    raw = build(common_args(
        "--rcpt", "dave@example.com", "--action", "delayed", "--remote-mta", "mx.example.com",
        "--reply", "451 4.7.1 Greylisted, try again in 5 minutes", "--last", "1739437000",
        "--until", "1739869445"))
    msg = parse(raw)
    text, status, _ = parts_of(msg)
    assert msg["Subject"] == "Delayed Mail (still being retried)"
    _, (dave,) = status_blocks(status)
    assert dave["Action"] == "delayed"
    assert dave["Status"] == "4.7.1"
    assert email.utils.parsedate_to_datetime(dave["Will-Retry-Until"]).timestamp() == 1739869445
    assert "not delivered yet, still trying" in text.get_content()


def test_hostile_input_stays_inside():
    """CR, LF, control octets and a fake boundary in a reply or an address
    neither add header fields nor end the MIME structure early."""
    # What a peer could have put in its reply (joined by the tool's \r\n).
    evil = ("550 5.1.1 no\\r\\nSubject: injected\\r\\n\\r\\n"
            "--=_rawmail_dsn_555c636a71787f868d949ba2--\\r\\n"
            "Content-Type: text/html\\r\\n\x1b[2J\x07 end")
    raw = build(common_args(
        "--rcpt", "bob@example.com\r\nBcc: victim@example.com", "--remote-mta", "mx\r\nX-Evil: 1",
        "--reply", evil,
        "--rcpt", "second@example.com", "--status", "5.7.1\r\nX-Evil: 2"),
        original=b"X-Fake: 1\r\n--=_rawmail_dsn_555c636a71787f868d949ba2\r\n\r\n")
    msg = parse(raw)
    _, status, headers = parts_of(msg)
    assert sorted(msg.keys()) == sorted([
        "From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted", "MIME-Version",
        "Content-Type"])
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    per_message, rcpts = status_blocks(status)
    assert len(rcpts) == 2
    allowed = {"Original-Recipient", "Final-Recipient", "Action", "Status", "Remote-MTA",
               "Diagnostic-Code", "Last-Attempt-Date", "Will-Retry-Until"}
    for block in rcpts:
        assert set(block.keys()) <= allowed, block.keys()
    first, second = rcpts
    assert first["Final-Recipient"].startswith("utf-8; bob@example.com\\x{5C}x0d")
    assert "Bcc" in first["Final-Recipient"]  # kept, escaped, inside the field
    assert first["Remote-MTA"] == "dns; mx\\x0d\\x0aX-Evil: 1"
    diag = first["Diagnostic-Code"]
    assert diag.startswith("smtp; 550 5.1.1 no Subject: injected --=_rawmail_dsn_")
    assert "\\x1b[2J\\x07 end" in diag
    assert second["Status"] == "5.0.0"  # the invalid status is not used
    assert "X-Fake: 1" in headers.get_content()


def test_utf8_and_8bit_headers():
    original = ("From: J\u00f6rg <j\u00f6rg@example.de>\r\n"
                "Subject: Gr\u00fc\u00dfe\r\n\r\nHallo\r\n").encode() + b"X-Bad: \xff\r\n"
    raw = build(["--host", "mail.example.net", "--sender", "j\u00f6rg@example.de",
                 "--rcpt", "m\u00fcller@example.com", "--reply", "550 5.1.1 unbekannt: m\u00fcller"],
                original=original)
    msg = parse(raw)
    text, status, headers = parts_of(msg)
    # The one 8-bit header field (RFC 6532; such a DSN goes out with
    # SMTPUTF8 anyway): Python's bytes parser keeps its octets as surrogates.
    assert b"\r\nTo: j\xc3\xb6rg@example.de\r\n" in raw
    username = msg["To"].addresses[0].username
    assert username.encode("utf-8", "surrogateescape").decode("utf-8") == "j\u00f6rg"
    _, (rcpt,) = status_blocks(status)
    # RFC 6533 §3: the utf-8 address type in its 7-bit xtext form.
    assert rcpt["Final-Recipient"] == "utf-8; m\\x{FC}ller@example.com"
    assert rcpt["Diagnostic-Code"] == "smtp; 550 5.1.1 unbekannt: m\\x{FC}ller"
    assert "<m\u00fcller@example.com>" in text.get_content()
    assert headers["Content-Transfer-Encoding"] == "quoted-printable"
    content = headers.get_content()
    assert "From: J\u00f6rg <j\u00f6rg@example.de>" in content
    assert "Subject: Gr\u00fc\u00dfe" in content
    assert "Hallo" not in content


def test_huge_header_section():
    lines = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"y" * 60) for i in range(5000))
    long_line = b"X-Long: " + b" ".join([b"word"] * 1000) + b"\r\n"
    raw = build(common_args("--rcpt", "bob@example.com", "--reply", "552 5.3.4 too big"),
                original=long_line + lines + b"\r\nbody\r\n")
    msg = parse(raw)  # every line <= 998
    _, _, headers = parts_of(msg)
    content = headers.get_content()
    assert 60000 < len(content) <= 64 * 1024
    original = email.message_from_string(content, policy=email.policy.default)
    # The long line was folded at white space: it unfolds to itself.
    assert original["X-Long"] == " ".join(["word"] * 1000)
    assert original["X-Filler-0"] == "y" * 60
    assert content.endswith("\n")


def test_refused_without_output():
    # RFC 5321 §4.5.5: never a notification to the null sender.
    build(["--host", "mail.example.net", "--sender", "", "--rcpt", "bob@example.com"],
          expect_rc=64)
    build(["--host", "bad host", "--sender", "a@b", "--rcpt", "bob@example.com"], expect_rc=64)


def test_mailman_bounce_detector_reads_it():
    """flufl.bounce (Mailman 3's bounce processing) finds the permanent and
    the temporary failures in our DSN as in Postfix's or Exim's."""
    from flufl.bounce import all_failures  # Debian: python3-flufl.bounce (scripts/deps test)

    raw = build(common_args(
        "--rcpt", "bob@example.com", "--reply", GMAIL,
        "--rcpt", "dave@example.com", "--action", "delayed", "--reply", "451 4.7.1 later",
        "--until", "1739869445",
        "--rcpt", "erin@example.com", "--reply", "554 5.7.1 rejected"))
    temporary, permanent = all_failures(email.message_from_bytes(raw))
    assert permanent == {b"bob@example.com", b"erin@example.com"}
    assert temporary == {b"dave@example.com"}
