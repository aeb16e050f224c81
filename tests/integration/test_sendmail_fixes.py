"""What real programs hand the `sendmail` entry and it must not lose or
leave unusable (issue 9), against a real `rawmail serve` on loopback:
cron's and mailx's header addresses without a domain get @origin (Postfix's
append_at_myorigin), and a line over 998 octets is mended, not refused
(cron and PHP discard the error and the mail would be lost): a plain body
is encoded quoted-printable, anything else has the line broken as Postfix's
smtp_line_length_limit breaks it.  `rawmail send` at a terminal keeps
refusing the long line (test_send.py) but qualifies addresses too."""

import base64
import email
import email.policy
import os

import pytest

from helpers import Delivered, free_port, mailbox_messages
from send_util import send
from test_sendmail_bs import Pipes, queued

ORIGIN = "origin.test"


@pytest.fixture
def srv(start_server):
    return start_server(listen=[f"127.0.0.1:{free_port()}"])


@pytest.fixture
def conf(tmp_path):
    path = tmp_path / "rawmail.conf"
    path.write_text(f"[send]\norigin = {ORIGIN}\n")
    return {"RAWMAIL_CONF": str(path)}


def sendmail(tmp_path, srv, conf, args, message):
    return send(["--port", srv.port, *args], message, argv0="sendmail", cwd=tmp_path,
                env=conf, expect="ok")


def arrived(srv, user):
    """The one message in user's Maildir, as the sender wrote it (the
    server's own fields taken off)."""
    [data] = mailbox_messages(srv.mailroot, user, wait=30)
    return Delivered(data).body


def header_of(data):
    return data.partition(b"\n\n")[0]


def test_cron_header_addresses_get_the_origin(tmp_path, srv, conf):
    # Vixie cron's command line and header fields; MAILTO forwarded to a
    # remote address.
    msg = ("From: root (Cron Daemon)\nTo: root\n"
           "Cc: \"Ops, on call\" <oncall>, team: bob, carol@x.test;, undisclosed-recipients:;\n"
           "Reply-To: Admin\n <admin (the (real) one)>\n"
           "Subject: Cron <root@vm> run-parts /etc/cron.daily\n\noutput\n")
    sendmail(tmp_path, srv, conf, ["-FCronDaemon", "-i", "-oi", "ops@[127.0.0.1]"], msg)
    head = header_of(arrived(srv, "ops"))
    assert b"\nFrom: root@origin.test (Cron Daemon)\n" in b"\n" + head, head
    assert b"\nTo: root@origin.test\n" in head, head
    assert (b"\nCc: \"Ops, on call\" <oncall@origin.test>, team: bob@origin.test, "
            b"carol@x.test;, undisclosed-recipients:;\n") in head, head
    # Folding and comments kept byte for byte.
    assert b"\nReply-To: Admin\n <admin@origin.test (the (real) one)>\n" in head, head
    assert b"Subject: Cron <root@vm> run-parts /etc/cron.daily" in head


def test_mailx_from_with_a_name_and_an_unreadable_field(tmp_path, srv, conf):
    # mailx -a 'From: root (Nightly Backup)'; a To that is no address list
    # is left as written, never mangled.
    msg = "From: root (Nightly Backup)\nTo: Some Body\nSubject: backup\n\nok\n"
    sendmail(tmp_path, srv, conf, ["-i", "ops@[127.0.0.1]"], msg)
    head = header_of(arrived(srv, "ops"))
    assert b"From: root@origin.test (Nightly Backup)\n" in head, head
    assert b"\nTo: Some Body\n" in head, head


def test_rawmail_send_qualifies_too(srv, conf):
    msg = "From: root\nTo: bob, x@y.test\nSubject: s\n\nhi\n"
    send(["--port", srv.port, "ops@[127.0.0.1]"], msg, env=conf, expect="ok")
    head = header_of(arrived(srv, "ops"))
    assert head.startswith(b"From: root@origin.test\nTo: bob@origin.test, x@y.test\n"), head


def test_long_body_line_arrives_encoded_byte_exact(tmp_path, srv, conf):
    # A job's output with a 1200-octet line (UTF-8, a trailing space, an
    # "=" and a leading dot): refused with 65 before, and cron's mail lost.
    long_line = ("d\u00e9j\u00e0 vu = " * 100)[:1199] + " "
    body = f"first line\n{long_line}\n.dot line\nlast".encode()
    subject = "Subject: " + " ".join(["word"] * 250)       # a header line of 1259
    msg = (f"From: root (Cron Daemon)\nTo: ops@[127.0.0.1]\n{subject}\n\n").encode() + body
    s = sendmail(tmp_path, srv, conf, ["-i", "-t"], msg)
    assert s.err == "", s
    data = arrived(srv, "ops")
    assert max(len(line) for line in data.split(b"\n")) <= 998
    m = email.message_from_bytes(data, policy=email.policy.default)
    assert m["MIME-Version"] == "1.0"
    assert m["Content-Transfer-Encoding"] == "quoted-printable"
    assert m.get_content_type() == "text/plain"
    assert m.get_param("charset") == "utf-8"
    # The body ends with a line break now (a text body ends with a line).
    assert m.get_payload(decode=True) == body + b"\n"
    # The long header line folded at white space: the same text unfolded.
    assert str(m["Subject"]) == subject[len("Subject: "):]


def test_long_line_of_a_multipart_is_broken_and_nothing_lost(tmp_path, srv, conf):
    blob = os.urandom(1500)
    one_line = base64.b64encode(blob).decode()           # 2000 octets, unbroken
    msg = ("From: app@client.test\nTo: ops@[127.0.0.1]\nSubject: report\n"
           "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"B\"\n\n"
           "--B\nContent-Type: text/plain\n\nsee attachment\n"
           "--B\nContent-Type: application/octet-stream\n"
           "Content-Transfer-Encoding: base64\n"
           "Content-Disposition: attachment; filename=blob.bin\n\n"
           f"{one_line}\n--B--\n")
    s = sendmail(tmp_path, srv, conf, ["-i", "-t"], msg)
    assert s.err == "", s
    data = arrived(srv, "ops")
    assert max(len(line) for line in data.split(b"\n")) <= 998
    # Postfix's way: CR LF SPACE inserted after 998 octets.
    assert f"\n{one_line[:998]}\n {one_line[998:1995]}\n {one_line[1995:]}\n".encode() in data
    m = email.message_from_bytes(data, policy=email.policy.default)
    text, att = list(m.iter_parts())
    assert text.get_content() == "see attachment"   # the boundary owns the line break
    assert att.get_content() == blob


def test_bs_mends_and_qualifies(tmp_path, conf):
    spool = tmp_path / "spool"
    env = dict(os.environ, **conf)
    p = Pipes(tmp_path, spool, env=env)
    assert p.reply()[0] == 220
    p.cmd("EHLO client.test", 250)
    p.cmd("MAIL FROM:<app@client.test>", 250)
    p.cmd("RCPT TO:<bob@[127.0.0.1]>", 250)
    p.cmd("DATA", 354)
    line = "y" * 1500
    p.p.stdin.write(f"From: root\r\nTo: bob\r\nSubject: s\r\n\r\n{line}\r\n.\r\n".encode())
    p.p.stdin.flush()
    code, lines = p.reply()
    assert code == 250, lines
    p.cmd("QUIT", 221)
    assert p.finish()[0] == 0
    [entry] = queued(spool)
    stored = (spool / "msg" / entry["id"]).read_bytes()
    assert b"\r\nFrom: root@origin.test\r\nTo: bob@origin.test\r\n" in stored, stored[:500]
    m = email.message_from_bytes(stored, policy=email.policy.default)
    assert m["Content-Transfer-Encoding"] == "quoted-printable"
    assert m.get_payload(decode=True).replace(b"\r\n", b"\n") == line.encode() + b"\n"


def test_verbose_says_what_was_mended(tmp_path, srv, conf):
    msg = "Subject: s\n\n" + "v" * 1200 + "\n"
    s = sendmail(tmp_path, srv, conf, ["-v", "-i", "ops@[127.0.0.1]"], msg)
    assert "quoted-printable (nothing lost)" in s.err, s
    m = email.message_from_bytes(arrived(srv, "ops"), policy=email.policy.default)
    assert m.get_payload(decode=True) == b"v" * 1200 + b"\n"
