"""The queue against a real Postfix as the destination (issue 9, "Tests:
Postfix as destination, NSD for MX records"): a message queued while the
MX is down is delivered by `rawmail queue flush` once Postfix is up, through
NSD's MX record; a recipient Postfix refuses after that (550 5.1.1) comes
back to the sender as an RFC 3464 report in a `rawmail serve` Maildir.
Postfix on 127.0.0.2 and serve on 127.0.0.1 share one port number, as the
queue's --port applies to every destination."""

import email
import email.policy
import subprocess

from dns_util import nsd  # noqa: F401 (fixture)
from helpers import SANITIZER_MARKERS, expected_stored_body, mail_user_args, mailbox_messages
from helpers import rawmail_bin
from postfix_util import start_postfix  # noqa: F401 (fixture)
from send_util import send
from test_queue import entries, free_port_both, queued_id

ZONE = """\
@       MX 10 mx1
mx1     A 127.0.0.2
"""


def queue_flush(spool, dns, port):
    p = subprocess.run([str(rawmail_bin()), "queue", "flush", "--spool", str(spool), "--dns",
                        dns.addr, "--port", str(port), "--retry-schedule", "1s"],
                       capture_output=True, timeout=120)
    err = p.stderr.decode(errors="replace")
    for mark in SANITIZER_MARKERS:
        assert mark not in err, err
    assert p.returncode == 0, (p.returncode, err)
    return err


def message(subject):
    return (f"From: alice@[127.0.0.1]\nTo: user@example.test\nSubject: {subject}\n"
            f"Date: Sun, 6 Dec 2026 12:00:00 +0000\n"
            f"Message-ID: <{subject.replace(' ', '.')}@client.test>\n\nbody of {subject}\n"
            f".leading dot\n")


def test_queued_while_postfix_is_down_then_delivered_through_the_mx(tmp_path, nsd,
                                                                    start_postfix):
    port = free_port_both()
    dns = nsd({"example.test": ZONE})
    spool = tmp_path / "spool"
    msg = message("down then postfix")
    s = send(["--spool", spool, "--dns", dns.addr, "--port", port, "--retry-schedule", "1s",
              "-f", "alice@[127.0.0.1]", "user@example.test"], msg, expect="tempfail")
    qid = queued_id(s)
    assert "mx1.example.test" in s.err and "queued as" in s.err, s
    pf = start_postfix(host="127.0.0.2", port=port)
    err = queue_flush(spool, dns, port)
    assert "result=delivered" in err, err
    [data] = pf.wait_for_mail("user")
    # Exactly the queued bytes reached Postfix (its own lines on top).
    assert data.endswith(expected_stored_body(msg.encode())), data
    assert entries(spool) == [], qid


def test_postfix_refusal_after_a_deferral_is_bounced_to_the_sender(tmp_path, nsd,
                                                                  start_postfix, start_server):
    port = free_port_both()
    dns = nsd({"example.test": ZONE})
    spool = tmp_path / "spool"
    # The sender's own server, for the bounce.
    home = start_server(*mail_user_args(), listen=[f"127.0.0.1:{port}"],
                        mailroot=tmp_path / "home")
    send(["--spool", spool, "--dns", dns.addr, "--port", port, "--retry-schedule", "1s",
          "-f", "alice@[127.0.0.1]", "user@example.test", "ghost@example.test"],
         message("one of two"), expect="tempfail")
    pf = start_postfix(host="127.0.0.2", port=port, users=("user",))
    err = queue_flush(spool, dns, port)
    assert "rcpt=ghost@example.test result=failed" in err or "ghost@example.test" in err, err
    pf.wait_for_mail("user")
    # The bounce was queued by that pass; the next delivers it home.
    queue_flush(spool, dns, port)
    assert entries(spool) == []
    [raw] = mailbox_messages(home.mailroot, "alice")
    dsn = email.message_from_bytes(raw, policy=email.policy.default)
    assert dsn.get_content_type() == "multipart/report"
    assert dsn.get_param("report-type") == "delivery-status"
    status = [p for p in dsn.walk() if p.get_content_type() == "message/delivery-status"]
    assert len(status) == 1
    text = status[0].as_string()
    assert "Final-Recipient: rfc822; ghost@example.test" in text, text
    assert "Action: failed" in text and "Status: 5.1.1" in text, text
    # Postfix's own reply, whole, in the Diagnostic-Code.
    assert "550 5.1.1 <ghost@example.test>" in text, text
    assert "user@example.test" not in text.split("Final-Recipient")[1], text
