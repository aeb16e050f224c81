"""`sendmail -bs` (issue 9): SMTP on standard input and output, as Symfony
Mailer and Laravel use it.  Python's smtplib talks to it through a socket
pair standing in for the pipes (smtplib needs a socket), and the tests
that matter for PHP's proc_open speak SMTP by hand over real pipes.  Each
accepted message must be in the spool, with the right envelope, before its
250; bad commands get 5xx; an input cut inside DATA queues nothing."""

import json
import os
import smtplib
import socket
import subprocess
from pathlib import Path

import pytest

from helpers import SANITIZER_MARKERS, Delivered, free_port, mailbox_messages, rawmail_bin
from queue_util import queue

SENDER = "app@client.test"
# The background first attempt takes -bs's delivery options: a resolver
# port where nothing answers (queries fail at once, temporarily) and a
# port no server listens on, so no test asks this machine's resolver or
# reaches a peer it did not start, and what is queued stays queued.
NO_DNS = ["--dns", "127.0.0.1:1", "--port", "1"]


def sendmail_link(tmp_path):
    link = Path(tmp_path) / "sendmail"
    if not link.exists():
        link.symlink_to(rawmail_bin())
    return str(link)


def check_stderr(text):
    for mark in SANITIZER_MARKERS:
        assert mark not in text, text


def queued(spool):
    """The spool's entries as `rawmail queue list --json` gives them."""
    r = queue(spool, "list", "--json")
    assert r.rc == 0, r
    return [json.loads(line) for line in r.out.splitlines()]


class Pipes:
    """sendmail -bs over real pipes, spoken by hand."""

    def __init__(self, tmp_path, spool, *extra, argv=None, env=None):
        if argv is None:
            argv = [sendmail_link(tmp_path), "-bs", "--spool", str(spool), *NO_DNS, *extra]
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env)

    def reply(self):
        """One whole reply: (code, [lines])."""
        lines = []
        while True:
            line = self.p.stdout.readline()
            assert line.endswith(b"\r\n"), (line, lines)
            lines.append(line[:-2].decode())
            if line[3:4] == b" ":
                return int(lines[0][:3]), lines

    def cmd(self, text, expect=None):
        self.p.stdin.write(text.encode() + b"\r\n")
        self.p.stdin.flush()
        code, lines = self.reply()
        if expect is not None:
            assert code == expect, (text, lines)
        return code, lines

    def finish(self, timeout=30):
        try:
            self.p.stdin.close()
        except BrokenPipeError:
            pass
        rc = self.p.wait(timeout=timeout)
        err = self.p.stderr.read().decode(errors="replace")
        check_stderr(err)
        return rc, err


@pytest.fixture
def smtp(tmp_path):
    """smtplib connected to `sendmail -bs` over a socket pair."""
    spool = tmp_path / "spool"
    ours, theirs = socket.socketpair()
    p = subprocess.Popen([sendmail_link(tmp_path), "-bs", "--spool", str(spool), *NO_DNS],
                         stdin=theirs, stdout=theirs, stderr=subprocess.PIPE)
    theirs.close()
    s = smtplib.SMTP()
    s.sock = ours
    s.file = None
    code, greeting = s.getreply()
    assert code == 220 and greeting.endswith(b" ESMTP rawmail"), greeting
    s.spool = spool
    s.proc = p
    yield s
    ours.close()
    assert p.wait(timeout=30) in (0, 75)
    check_stderr(p.stderr.read().decode(errors="replace"))


def test_smtplib_submission_is_queued(smtp):
    code, ext = smtp.ehlo("client.test")
    assert code == 250 and smtp.has_extn("pipelining") and smtp.has_extn("smtputf8")
    assert not smtp.has_extn("starttls")
    msg = (b"From: App <app@client.test>\r\nTo: bob@b\xc3\xbccher.example\r\n"
           b"Subject: via -bs\r\n\r\nline one\r\n.leading dot\r\n..two dots\r\nend\r\n")
    assert smtp.mail(SENDER, ["SMTPUTF8"])[0] == 250
    assert smtp.rcpt("bob@bücher.example")[0] == 250
    assert smtp.rcpt("carol@[127.0.0.1]")[0] == 250
    assert smtp.rcpt("carol@[127.0.0.1]")[0] == 250        # once in the envelope
    code, text = smtp.data(msg)
    assert code == 250 and text.startswith(b"2.0.0 Ok: queued as "), text
    qid = text.split()[-1].decode()
    # Queued before the 250, with the envelope the session was given.
    [entry] = queued(smtp.spool)
    assert entry["id"] == qid and entry["sender"] == SENDER
    assert entry["origin"] == "sendmail" and entry["flags"] == "smtputf8"
    assert [(r["address"], r.get("original"), r["state"]) for r in entry["recipients"]] == [
        ("bob@xn--bcher-kva.example", "bob@bücher.example", "queued"),
        ("carol@[127.0.0.1]", None, "queued")]
    stored = (smtp.spool / "msg" / qid).read_bytes()
    assert entry["size"] == len(stored)
    head, _, body = stored.partition(b"\r\n\r\n")
    # Dot-unstuffed by the session's decoder, CR LF as the spool keeps it.
    assert body == b"line one\r\n.leading dot\r\n..two dots\r\nend\r\n", body
    assert head.startswith(b"Received: by ") and b"(rawmail sendmail -bs, from userid" in head
    assert b"\r\nDate: " in head and b"\r\nMessage-ID: <" in head     # completed
    assert b"\nFrom: App <app@client.test>\r\n" in head and b"\n" not in head.replace(b"\r\n", b"")
    assert smtp.quit()[0] == 221
    assert smtp.proc.wait(timeout=30) == 0


def test_pipes_two_messages_rset_and_bare_lf(tmp_path):
    spool = tmp_path / "spool"
    c = Pipes(tmp_path, spool)
    code, lines = c.reply()
    assert code == 220 and lines[0].endswith(" ESMTP rawmail")
    c.cmd("HELO client.test", 250)
    c.cmd("MAIL FROM:<first@client.test>", 250)
    c.cmd("RCPT TO:<never@example.net>", 250)
    c.cmd("RSET", 250)                                 # forgets the first transaction
    ids = []
    for n in (1, 2):
        c.cmd(f"MAIL FROM:<{SENDER}>", 250)
        c.cmd(f"RCPT TO:<u{n}@example.net>", 250)
        c.cmd("DATA", 354)
        # A program writing LF only: line breaks, and "\n.\n" is never the
        # end of DATA (only CR LF . CR LF is).
        c.p.stdin.write(f"Subject: {n}\n\nbare LF body\n.\n".encode() + b"\r\n.\r\n")
        c.p.stdin.flush()
        code, lines = c.reply()
        assert code == 250 and "queued as" in lines[0], lines
        ids.append(lines[0].split()[-1])
    c.cmd("QUIT", 221)
    rc, err = c.finish()
    assert rc == 0, err
    entries = queued(spool)
    assert [e["id"] for e in entries] == ids
    assert [e["recipients"][0]["address"] for e in entries] == ["u1@example.net",
                                                                  "u2@example.net"]
    body = (spool / "msg" / ids[0]).read_bytes().partition(b"\r\n\r\n")[2]
    assert body == b"bare LF body\r\n.\r\n\r\n", body
    r = queue(spool, "list")
    assert r.out.splitlines()[-1] == "2 messages, 2 recipients (2 to deliver)"


def test_bad_commands_get_5xx_and_nothing_is_queued(tmp_path):
    spool = tmp_path / "spool"
    c = Pipes(tmp_path, spool)
    c.reply()
    assert c.cmd("MAIL FROM:<a@client.test>")[1][0].startswith("503 5.5.1")   # before EHLO
    c.cmd("EHLO client.test", 250)
    assert c.cmd("RCPT TO:<u@example.net>")[1][0].startswith("503 5.5.1")   # before MAIL
    assert c.cmd("FROB")[1][0].startswith("500 5.5.2")
    assert c.cmd("MAIL FROM:<broken")[0] == 501
    c.cmd(f"MAIL FROM:<{SENDER}>", 250)
    assert c.cmd("RCPT TO:<root>")[1][0].startswith("501 5.1.3")   # no domain
    assert c.cmd("RCPT TO:<postmaster>")[1][0].startswith("550 5.1.3")
    assert c.cmd("DATA")[1][0].startswith("554 5.5.1")   # no valid recipient
    # A NUL octet (RFC 5322 §2.3): refused after the content, with why.  (A
    # line over 998 octets is mended, not refused: test_sendmail_fixes.py.)
    c.cmd("RSET", 250)
    c.cmd(f"MAIL FROM:<{SENDER}>", 250)
    c.cmd("RCPT TO:<u@example.net>", 250)
    c.cmd("DATA", 354)
    c.p.stdin.write(b"Subject: nul\r\n\r\nx\x00y\r\n.\r\n")
    c.p.stdin.flush()
    code, lines = c.reply()
    assert code == 554 and lines[0].startswith("554 5.6.0"), lines
    c.cmd("QUIT", 221)
    rc, err = c.finish()
    assert rc == 0, err
    assert queued(spool) == []
    assert os.listdir(spool / "msg") == [] and os.listdir(spool / "tmp") == []


def test_input_ending_inside_data_queues_nothing(tmp_path):
    spool = tmp_path / "spool"
    c = Pipes(tmp_path, spool)
    c.reply()
    c.cmd("EHLO client.test", 250)
    c.cmd(f"MAIL FROM:<{SENDER}>", 250)
    c.cmd("RCPT TO:<u@example.net>", 250)
    c.cmd("DATA", 354)
    c.p.stdin.write(b"Subject: cut\r\n\r\nhalf a mess")
    rc, err = c.finish()
    assert rc == 75, err
    assert "not queued" in err
    assert queued(spool) == []
    for sub in ("msg", "env", "tmp"):
        assert os.listdir(spool / sub) == [], sub


def test_unusable_spool_says_421(tmp_path):
    (tmp_path / "file").write_text("x")
    c = Pipes(tmp_path, tmp_path / "file" / "spool")
    code, lines = c.reply()
    assert code == 421 and lines[0].startswith("421 4.3.0"), lines
    rc, err = c.finish()
    assert rc == 75 and "Not a directory" in err, err


def test_spool_from_the_settings_file(tmp_path):
    spool = tmp_path / "site-spool"
    conf = tmp_path / "rawmail.conf"
    conf.write_text(f"[send]\nspool = {spool}\n")
    p = subprocess.run([sendmail_link(tmp_path), "-bs", *NO_DNS], env={**os.environ,
                       "RAWMAIL_CONF": str(conf)}, capture_output=True, timeout=60,
                       input=b"HELO c.test\r\nMAIL FROM:<a@c.test>\r\nRCPT TO:<u@example.net>\r\n"
                             b"RSET\r\nQUIT\r\n")
    check_stderr(p.stderr.decode(errors="replace"))
    assert p.returncode == 0, p
    assert p.stdout.endswith(b"250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n"), p.stdout
    assert sorted(os.listdir(spool)) == ["corrupt", "env", "msg", "tmp"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run as another user")
@pytest.mark.parametrize("xdg", [True, False])
def test_an_ordinary_users_default_spool(xdg):
    # QUEUE.md: a user's own spool, $XDG_STATE_HOME/rawmail/spool or
    # ~/.local/state/rawmail/spool, made 0700 on first use; their mailq
    # (no --spool either) lists what -bs queued there.
    import shutil
    import tempfile
    home = Path(tempfile.mkdtemp(prefix="rawmail-home-", dir="/tmp"))
    try:
        os.chown(home, 65534, 65534)
        link = home / "sendmail"
        link.symlink_to(rawmail_bin())
        (home / "empty.conf").write_text("")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
               "RAWMAIL_CONF": str(home / "empty.conf")}
        if xdg:
            env["XDG_STATE_HOME"] = str(home / "state")
        as_nobody = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
        c = Pipes(None, None, argv=[*as_nobody, str(link), "-bs", *NO_DNS], env=env)
        assert c.reply()[0] == 220
        c.cmd("HELO c.test", 250)
        c.cmd("MAIL FROM:<a@c.test>", 250)
        c.cmd("RCPT TO:<u@example.net>", 250)
        c.cmd("DATA", 354)
        c.p.stdin.write(b"Subject: mine\r\n\r\nx\r\n.\r\n")
        c.p.stdin.flush()
        code, lines = c.reply()
        assert code == 250, lines
        c.cmd("QUIT", 221)
        assert c.finish()[0] == 0
        spool = home / ("state/rawmail/spool" if xdg else ".local/state/rawmail/spool")
        # kick.lock: the lock of the runner -bs started (cli/queue_kick.h).
        assert sorted(os.listdir(spool)) == ["corrupt", "env", "kick.lock", "msg", "tmp"]
        st = os.stat(spool)
        assert st.st_uid == 65534 and st.st_mode & 0o777 == 0o700
        assert os.stat(spool.parent).st_mode & 0o777 == 0o700
        assert os.listdir(spool / "env") == [lines[0].split()[-1]]
        p = subprocess.run([*as_nobody, str(link), "-bp"], env=env, capture_output=True,
                           timeout=60)
        assert p.returncode == 0, p
        assert p.stdout.decode().splitlines()[-1] == "1 message, 1 recipient (1 to deliver)"
    finally:
        shutil.rmtree(home)


def test_pipelined_commands_and_bdat(tmp_path):
    spool = tmp_path / "spool"
    c = Pipes(tmp_path, spool)
    c.reply()
    c.cmd("EHLO client.test", 250)
    # RFC 2920: a group up to DATA in one write, the replies in order.
    c.p.stdin.write(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<a@example.net>\r\n"
                    "RCPT TO:<b@example.net>\r\nDATA\r\n".encode())
    c.p.stdin.flush()
    assert [c.reply()[0] for _ in range(4)] == [250, 250, 250, 354]
    c.p.stdin.write(b"Subject: piped\r\n\r\none\r\n.\r\n")
    c.p.stdin.flush()
    code, lines = c.reply()
    assert code == 250, lines
    # RFC 3030 BDAT: chunks may follow their commands at once.
    c.p.stdin.write(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<c@example.net>\r\n".encode() +
                    b"BDAT 18\r\nSubject: chunk\r\n\r\n" + b"BDAT 7 LAST\r\n.x\r\nend")
    c.p.stdin.flush()
    replies = [c.reply() for _ in range(4)]
    assert [r[0] for r in replies] == [250, 250, 250, 250], replies
    qid = replies[3][1][0].split()[-1]
    c.cmd("QUIT", 221)
    assert c.finish()[0] == 0
    entries = queued(spool)
    assert len(entries) == 2 and entries[1]["id"] == qid
    assert [r["address"] for r in entries[0]["recipients"]] == ["a@example.net", "b@example.net"]
    body = (spool / "msg" / qid).read_bytes().partition(b"\r\n\r\n")[2]
    assert body == b".x\r\nend", body     # BDAT content is not dot-stuffed


def test_too_many_bad_commands_end_the_session(tmp_path):
    spool = tmp_path / "spool"
    c = Pipes(tmp_path, spool)
    c.reply()
    assert [c.cmd("FROB")[0] for _ in range(20)] == [500] * 20
    code, lines = c.reply()     # after the 20th, as serve's max-errors
    assert code == 421 and lines[0].startswith("421 4."), lines
    rc, err = c.finish()
    assert rc == 0 and c.p.stdout.read() == b""


def test_the_first_attempt_starts_in_the_background(tmp_path, start_server):
    # As Symfony submits: the 250 comes once the message is queued, and a
    # detached runner with -bs's delivery options delivers it.
    srv = start_server(listen=[f"127.0.0.1:{free_port()}"])
    spool = tmp_path / "spool"
    c = Pipes(tmp_path, spool, argv=[sendmail_link(tmp_path), "-bs", "--spool", str(spool),
                                     "--dns", "127.0.0.1:1", "--port", str(srv.port)])
    c.reply()
    c.cmd("EHLO app.test", 250)
    c.cmd(f"MAIL FROM:<{SENDER}>", 250)
    c.cmd("RCPT TO:<u@[127.0.0.1]>", 250)
    c.cmd("DATA", 354)
    c.p.stdin.write(b"Subject: from -bs\r\n\r\nhello\r\n.\r\n")
    c.p.stdin.flush()
    assert c.reply()[0] == 250
    c.cmd("QUIT", 221)
    assert c.finish()[0] == 0
    [data] = mailbox_messages(srv.mailroot, "u", wait=20)
    d = Delivered(data)
    assert d.return_path == f"<{SENDER}>"
    assert b"Subject: from -bs" in d.body and b"(rawmail sendmail -bs, from userid" in d.body
    # Delivered everywhere: the entry is gone.
    for _ in range(100):
        if not os.listdir(spool / "env"):
            break
        import time
        time.sleep(0.1)
    assert os.listdir(spool / "env") == []
