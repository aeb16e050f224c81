"""rawmail called through a link named `sendmail`: the command lines that
cron, mail(1), git send-email and PHP's mail() really pass, against a real
`rawmail serve` on loopback.  Address literals only: no DNS.
"""

import re
import time

import pytest

from helpers import Delivered, assert_no_mail, crlf, free_port, mailbox_messages
from send_util import SENDER, send


@pytest.fixture
def srv(start_server):
    return start_server(listen=[f"127.0.0.1:{free_port()}"])


def sendmail(tmp_path, srv, args, message, expect="ok"):
    return send(["--port", srv.port, *args], message, argv0="sendmail", cwd=tmp_path,
                expect=expect)


def body_of(srv, user):
    [data] = mailbox_messages(srv.mailroot, user, wait=2)
    return Delivered(data).body


def test_vixie_cron_command_line(tmp_path, srv):
    # cron: sendmail -FCronDaemon -i -B8BITMIME -oem -odi -oi -t, a message
    # with its own headers, no Date or Message-ID.
    msg = ("From: root (Cron Daemon)\nTo: ops@[127.0.0.1]\n"
           "Subject: Cron <root@host> run-parts /etc/cron.daily\n"
           "Content-Type: text/plain; charset=UTF-8\n\n"
           "output of the job\n.\nafter a lone dot\n")
    sendmail(tmp_path, srv, ["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "-odi", "-oi", "-t"],
             msg)
    body = body_of(srv, "ops")
    head, _, text = body.partition(b"\n\n")
    # cron's domainless From gets @origin (this host's name here), its
    # comment kept (test_sendmail_fixes.py has the details).
    assert re.search(rb"\nFrom: root@[^ ]+ \(Cron Daemon\)\n", b"\n" + head + b"\n"), head
    assert b"Date: " in head and b"Message-ID: " in head
    assert text == b"output of the job\n.\nafter a lone dot\n", text


def test_without_i_a_lone_dot_ends_the_input(tmp_path, srv):
    msg = "Subject: dots\n\nfirst\n.\nnever sent\n"
    sendmail(tmp_path, srv, ["-f", SENDER, "u@[127.0.0.1]"], msg)
    assert body_of(srv, "u").endswith(b"\n\nfirst\n"), body_of(srv, "u")


def test_with_oi_a_lone_dot_is_text(tmp_path, srv):
    msg = crlf("Subject: dots\n\nfirst\n.\nstill here\n")
    sendmail(tmp_path, srv, ["-oi", "-f", SENDER, "u@[127.0.0.1]"], msg)
    assert body_of(srv, "u").endswith(b"first\n.\nstill here\n")


def test_git_send_email_style(tmp_path, srv):
    msg = ("From: Alice <alice@client.test>\nTo: u@[127.0.0.1]\nSubject: [PATCH] fix\n"
           "Date: Mon, 23 Nov 2026 10:00:00 +0000\nMessage-ID: <patch.1@client.test>\n\n"
           "---\n diff\n")
    sendmail(tmp_path, srv, ["-i", "-f", "alice@client.test", "u@[127.0.0.1]"], msg)
    [data] = mailbox_messages(srv.mailroot, "u", wait=2)
    d = Delivered(data)
    assert d.return_path == "<alice@client.test>"
    assert d.body.count(b"Message-ID:") == 1


def test_php_mail_t_i(tmp_path, srv):
    msg = "To: u@[127.0.0.1]\nCc: v@[127.0.0.1]\nBcc: w@[127.0.0.1]\nSubject: php\n\nhi\n"
    sendmail(tmp_path, srv, ["-t", "-i", "-r", SENDER], msg)
    for user in ("u", "v", "w"):
        assert b"Bcc:" not in body_of(srv, user)


def test_sender_full_name_for_missing_from(tmp_path, srv):
    sendmail(tmp_path, srv, ["-F", "Backup Job", "-f", SENDER, "-i", "u@[127.0.0.1]"],
             "Subject: s\n\nx\n")
    assert b"From: Backup Job <alice@client.test>" in body_of(srv, "u")


@pytest.mark.parametrize("args,what", [(["-bd"], "-bd"), (["-bv"], "-bv")])
def test_other_modes_refused_with_64(tmp_path, srv, args, what):
    s = sendmail(tmp_path, srv, args, "", expect="usage")
    assert what in s.err and "not supported" in s.err
    assert_no_mail(srv.mailroot)


def test_unknown_option_is_usage_error(tmp_path, srv):
    s = sendmail(tmp_path, srv, ["-Z", "u@[127.0.0.1]"], "x\n", expect="usage")
    assert "usage" in s.err
    assert_no_mail(srv.mailroot)


def test_temporary_failure_is_queued_silently(tmp_path):
    """Issue 9: the sendmail entry returns 0 once the message is queued and
    says nothing (cron and PHP throw stderr away); the first attempt is in
    the background and what fails stays queued."""
    port = free_port()    # nothing listens there
    spool = tmp_path / "spool"
    s = send(["--spool", spool, "--port", port, "-i", "u@[127.0.0.1]"], "Subject: s\n\nx\n",
             argv0="sendmail", cwd=tmp_path, expect="ok", hostname="mail.client.test")
    assert s.err == "" and s.out == "", s
    [entry] = list((spool / "env").iterdir())
    # The background attempt records its failure; the entry stays.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = entry.read_text()
        if "rcpt queued 1 " in text:
            break
        time.sleep(0.1)
    assert "rcpt queued 1 " in entry.read_text(), entry.read_text()
    assert "refused" in entry.read_text() or "connect" in entry.read_text(), entry.read_text()


def test_options_end_at_the_first_recipient(tmp_path, srv):
    # A program passing addresses it was given: "-fevil@..." after a
    # recipient is a recipient (a valid one: "-fevil" is a dot-atom), never
    # a new sender.
    sendmail(tmp_path, srv, ["-i", "-f", SENDER, "u@[127.0.0.1]", "-fevil@[127.0.0.1]"],
             "Subject: s\n\nx\n")
    [data] = mailbox_messages(srv.mailroot, "u", wait=2)
    assert Delivered(data).return_path == f"<{SENDER}>"
    [data] = mailbox_messages(srv.mailroot, "-fevil", wait=2)
    assert Delivered(data).return_path == f"<{SENDER}>"


def test_postfix_only_options_accepted(tmp_path, srv):
    sendmail(tmp_path, srv, ["-Am", "-G", "-O", "DeliveryMode=b", "-i", "u@[127.0.0.1]"],
             "Subject: s\n\nx\n")
    assert len(mailbox_messages(srv.mailroot, "u", wait=2)) == 1


def test_help_prints_usage_and_reads_nothing(tmp_path, srv):
    s = sendmail(tmp_path, srv, ["--help"], "")
    assert s.out.startswith("usage: sendmail")
