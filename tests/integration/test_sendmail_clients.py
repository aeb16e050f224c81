"""The sendmail entry as real programs call it (issue 9, "Tests"): Debian's
cron daemon, bsd-mailx, PHP's mail() and git send-email, each calling
/usr/sbin/sendmail inside a mount namespace of the test's own where rawmail
is bind-mounted there and /etc/rawmail.conf and /etc/aliases are the test's
(clients_util.py).  The programs pass rawmail no options but their own: the
settings file gives the spool, the mail root, the origin and where to
deliver.

Real peers on loopback: a private NSD holds remote.test's MX (mx.remote.test,
127.0.0.2); a `rawmail serve` there is the destination, on a free port that
[delivery] port names.  Local mail (cron's MAILTO=root through the aliases
file) lands in the mail root the settings file names.  Runs as root (the
namespaces, and local delivery's store as the mail root's owner); skips
only where the kernel refuses the namespaces (client_ns says why).

Two tests began as strict xfails for rawmail bugs found here, since fixed:
header addresses without a domain went out unchanged (now @origin, as
Postfix's append_at_myorigin), and a line over 998 octets made the sendmail
entry refuse the message (now re-encoded quoted-printable)."""

import re
import socket
import subprocess

import pytest

from clients_util import client_ns  # noqa: F401  (fixture)
from clients_util import client_env, entry_unlocked, spool_entries, split_message, wait_for, which
from dns_util import nsd  # noqa: F401  (fixture)
from helpers import Delivered, mailbox_messages
from test_queue import PEER, free_port_both

DOMAIN = "remote.test"
MX = "mx.remote.test"
ORIGIN = "client.test"
ZONE = f"@ MX 10 mx\nmx A {PEER}\n"
# Headers rawmail may add to what a program wrote (RFC 5322 §3.6: Date and
# From are required; Message-ID should be there).
ADDED = (b"Date: ", b"Message-ID: ", b"From: ")


class Site:
    """One test's world: NSD, the destination serve (started or not), the
    settings file and aliases for the namespace's /etc."""

    def __init__(self, tmp_path, dns, port, aliases="", extra_etc=None):
        self.tmp = tmp_path
        self.port = port
        self.spool = tmp_path / "spool"
        self.local = tmp_path / "local"
        self.remote = tmp_path / "remote"
        self.conf = (f"mailroot = {self.local}\n\n"
                     f"[delivery]\ndns = {dns.addr}\nport = {port}\ntimeout = 30\n\n"
                     f"[send]\norigin = {ORIGIN}\n\n"
                     f"[queue]\nspool = {self.spool}\nretry-schedule = 10m\n")
        self.etc = {"rawmail.conf": self.conf, "aliases": aliases, **(extra_etc or {})}

    def start_dest(self, start_server):
        return start_server("--hostname", MX, "--domain", DOMAIN, defaults=False,
                            listen=[f"{PEER}:{self.port}"], mailroot=self.remote)

    def wait_spool_empty(self, timeout=30):
        wait_for(lambda: spool_entries(self.spool) == [], timeout,
                 f"the spool {self.spool} emptied ({spool_entries(self.spool)})")


@pytest.fixture
def site(tmp_path, nsd):
    def make(aliases="", extra_etc=None):
        return Site(tmp_path, nsd({DOMAIN: ZONE}), free_port_both(), aliases, extra_etc)
    return make


def received_at_dest(d, rcpt, alone=True):
    """The destination serve's own additions: envelope and Received (which
    names the recipient only when the transaction had one)."""
    assert d.delivered_to == rcpt, d.delivered_to
    assert d.original_to == [rcpt], d.original_to
    f = d.received_fields()
    assert f["by"] == MX, f
    assert f["ip"].startswith("127."), f
    assert f["for"] == (rcpt if alone else None), f
    return f


def assert_as_written(stored, written):
    """The stored message (after the destination's Return-Path ... Received)
    is what the program wrote: every header field of it, in its order, with
    only Date, Message-ID or From added; the body byte for byte.  Line ends
    as the Maildir keeps them (LF)."""
    written = written.replace(b"\r\n", b"\n")
    got_fields, got_body = split_message(stored)
    want_fields, want_body = split_message(written)
    assert got_body == want_body, f"body differs:\nstored: {got_body!r}\nwritten: {want_body!r}"
    kept = [f for f in got_fields if f not in want_fields]
    assert all(f.startswith(ADDED) for f in kept), (kept, got_fields, want_fields)
    assert [f for f in got_fields if f in want_fields] == want_fields, (got_fields, want_fields)
    for name in {f.split(b":")[0] for f in kept}:
        # Added only when the program wrote none.
        assert not any(f.lower().startswith(name.lower() + b":") for f in want_fields), kept
    return got_fields


# ---------------------------------------------------------------------------
# mailx


def test_mailx_to_a_remote_address(site, client_ns, start_server):
    s = site()
    dest = s.start_dest(start_server)
    # 930 octets: long, within RFC 5322's 998 (the longer case is below).
    long_line = "".join(f"{i:04d}abcdefghijklmnopqrstuvwxyz " for i in range(30))
    body = f"Hello from mailx.\n.\n{long_line}\n..two dots\nlast line\n"
    argv = [which("mailx"), "-s", "Nightly report: all good", f"bob@{DOMAIN}"]
    # What mailx writes to sendmail, recorded by a stand-in; then the same
    # run with rawmail there.
    cap = client_ns(s.etc, argv, stdin=body, capture=True)
    assert cap.wait().rc == 0
    args, written = cap.captured()
    ns = client_ns(s.etc, argv, stdin=body)
    r = ns.wait()
    assert r.rc == 0 and r.out == "" and r.err == "", r
    [data] = mailbox_messages(dest.mailroot, "bob", wait=30)
    d = Delivered(data)
    assert d.return_path == f"<root@{ORIGIN}>"
    received_at_dest(d, f"bob@{DOMAIN}")
    fields = assert_as_written(d.body, written)
    assert b"Subject: Nightly report: all good" in fields
    assert f"From: root@{ORIGIN}".encode() in fields, fields
    assert d.body.endswith(f"\n\nHello from mailx.\n.\n{long_line}\n..two dots\n"
                           "last line\n".encode())
    s.wait_spool_empty()
    assert mailbox_messages(s.local, "root") == []
    assert args == ["-i", "-t"], args     # what bsd-mailx passes: -i keeps the "." line
    # mailx saw success: nothing saved as undeliverable.
    assert not (s.tmp / "home" / "dead.letter").exists()


def test_mailx_from_without_a_domain_gets_the_origin(site, client_ns, start_server):
    s = site()
    dest = s.start_dest(start_server)
    r = client_ns(s.etc, [which("mailx"), "-a", "From: root (Nightly Backup)", "-s", "backup",
                          f"bob@{DOMAIN}"], stdin="done\n").wait()
    assert r.rc == 0, r
    [data] = mailbox_messages(dest.mailroot, "bob", wait=30)
    fields, _ = split_message(Delivered(data).body)
    assert f"From: root@{ORIGIN} (Nightly Backup)".encode() in fields, fields


def test_mailx_line_over_998_octets_is_not_lost(site, client_ns, start_server):
    s = site()
    dest = s.start_dest(start_server)
    long_line = "x" * 1200
    r = client_ns(s.etc, [which("mailx"), "-s", "long line", f"bob@{DOMAIN}"],
                  stdin=f"first\n{long_line}\nlast\n").wait()
    assert r.rc == 0 and r.err == "", r
    [data] = mailbox_messages(dest.mailroot, "bob", wait=30)
    body = Delivered(data).body
    assert long_line.encode() in body.replace(b"=\n", b"")


# ---------------------------------------------------------------------------
# PHP mail()

PHP_MAIL = r"""<?php
$ok = mail("carol@remote.test", "Order 1234 confirmed",
           "Dear Carol,\r\n.\r\nYour order ships today.\r\n..and a line with two dots\r\n",
           "From: Web Shop <shop@client.test>\r\nReply-To: support@client.test\r\n"
           . "Cc: dave@remote.test\r\nX-Mailer: PHP/" . PHP_VERSION,
           "-fbounces@client.test");
var_export($ok);
echo "\n", ini_get("sendmail_path"), "\n";
"""

# As stored: PHP ends the message with one more CRLF of its own.
PHP_BODY = b"\n\nDear Carol,\n.\nYour order ships today.\n..and a line with two dots\n\n"


def php_mail(s, client_ns, capture=False):
    script = s.tmp / "mail.php"
    script.write_text(PHP_MAIL)
    return client_ns(s.etc, [which("php"), script], capture=capture)


def test_php_mail_with_extra_headers_and_f(site, client_ns, start_server):
    s = site()
    dest = s.start_dest(start_server)
    cap = php_mail(s, client_ns, capture=True)
    assert cap.wait().rc == 0
    args, written = cap.captured()
    # PHP's default sendmail_path, and -f given as the fifth parameter.
    assert args == ["-t", "-i", "-fbounces@client.test"], args
    r = php_mail(s, client_ns).wait()
    # mail() returned true; PHP printed nothing else (no warning).
    assert r.rc == 0 and r.out == "true\n/usr/sbin/sendmail -t -i\n" and r.err == "", r
    for user in ("carol", "dave"):
        [data] = mailbox_messages(dest.mailroot, user, wait=30)
        d = Delivered(data)
        assert d.return_path == "<bounces@client.test>"
        received_at_dest(d, f"{user}@{DOMAIN}", alone=False)
        fields = assert_as_written(d.body, written)
        assert b"From: Web Shop <shop@client.test>" in fields
        assert b"Cc: dave@remote.test" in fields
        assert d.body.endswith(PHP_BODY)
    s.wait_spool_empty()


def test_php_mail_while_the_destination_is_down_arrives_later(site, client_ns, start_server):
    # Nothing listens at the MX yet: mail() must still return true at once
    # (the message is queued), and the message arrives once the server is
    # up and the queue is flushed, here with `sendmail -q` as an
    # administrator would type it.
    s = site()
    r = php_mail(s, client_ns).wait()
    assert r.rc == 0 and r.out == "true\n/usr/sbin/sendmail -t -i\n" and r.err == "", r
    [entry] = spool_entries(s.spool)
    env_file = s.spool / "env" / entry
    # The background first attempt failed and recorded why; the entry stays.
    wait_for(lambda: env_file.read_text().count("rcpt queued 1 ") == 2, 30,
             "the first attempt recorded for both recipients")
    assert "refused" in env_file.read_text() or "connect" in env_file.read_text()
    # ... and let go of it (a flush skips an entry another runner holds).
    wait_for(lambda: entry_unlocked(s.spool, entry), 30, "the first attempt's runner done")
    dest = s.start_dest(start_server)
    assert mailbox_messages(dest.mailroot, "carol") == []
    q = client_ns(s.etc, ["/usr/sbin/sendmail", "-q"]).wait()
    assert q.rc == 0, q
    for user in ("carol", "dave"):
        [data] = mailbox_messages(dest.mailroot, user, wait=30)
        d = Delivered(data)
        assert d.return_path == "<bounces@client.test>"
        received_at_dest(d, f"{user}@{DOMAIN}", alone=False)
        assert d.body.endswith(PHP_BODY)
    s.wait_spool_empty()
    # No bounce, no warning anywhere: the sender's domain is not local, and
    # nothing else was queued.
    assert not s.local.exists() or not any(s.local.iterdir())


# ---------------------------------------------------------------------------
# git send-email

GIT_ENV = {"GIT_AUTHOR_NAME": "Zoë Developer", "GIT_AUTHOR_EMAIL": "zoe@client.test",
           "GIT_COMMITTER_NAME": "Zoë Developer", "GIT_COMMITTER_EMAIL": "zoe@client.test",
           "GIT_CONFIG_NOSYSTEM": "1"}


def git(repo, *args, env):
    p = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, env=env,
                       timeout=60)
    assert p.returncode == 0, (args, p.stderr.decode(errors="replace"))
    return p.stdout.decode()


def test_git_send_email_patch_applies_with_git_am(site, client_ns, start_server, tmp_path):
    s = site()
    dest = s.start_dest(start_server)
    env = client_env(tmp_path, **GIT_ENV)
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main", env=env)
    src = repo / "notes.txt"
    src.write_text("first line\n.\nsecond line\n")
    git(repo, "add", ".", env=env)
    git(repo, "commit", "-q", "-m", "base", env=env)
    # What a patch can hold that transport must not touch: a line that is
    # only "." (in the message), leading dots, trailing white space, a tab,
    # UTF-8, a line starting with "From " (which mbox writers quote).
    src.write_text("first line\n.\n..hidden\nsecond line   \n\tindented\nGrüße\nlast\n")
    git(repo, "commit", "-q", "-a", "-m", "notes: more lines\n\nWith a body line.\n.\n"
        "From the tests, a line mbox would quote.\nAnd a lone dot above, and Grüße.", env=env)
    patch = git(repo, "format-patch", "-1", "-o", str(tmp_path / "patches"), env=env).strip()
    tree = git(repo, "rev-parse", "HEAD^{tree}", env=env).strip()
    # No smtpserver, no sendmailcmd: git send-email's default transport is
    # /usr/sbin/sendmail.
    ns = client_ns(s.etc, ["git", "-C", repo, "send-email", "--confirm=never",
                           "--suppress-cc=all", f"--to=dev@{DOMAIN}", patch], env=env)
    r = ns.wait(timeout=120)
    assert r.rc == 0, r
    assert "Result: OK" in r.out, r
    [data] = mailbox_messages(dest.mailroot, "dev", wait=30)
    d = Delivered(data)
    assert d.return_path == f"<root@{ORIGIN}>"    # git passes no -f by default
    received_at_dest(d, f"dev@{DOMAIN}")
    fields, _ = split_message(d.body)
    assert b"Subject: [PATCH] notes: more lines" in fields, fields
    assert b"From: =?UTF-8?q?Zo=C3=AB=20Developer?= <zoe@client.test>" in fields, fields
    # git wrote Date and Message-Id: rawmail adds neither again.
    for name in (b"date:", b"message-id:"):
        assert sum(f.lower().startswith(name) for f in fields) == 1, fields
    # The stored patch applies: the tree after `git am` is the original's.
    git(repo, "reset", "-q", "--hard", "HEAD~1", env=env)
    git(repo, "am", "-q", str(dest.mailroot / "dev"), env=env)
    assert git(repo, "rev-parse", "HEAD^{tree}", env=env).strip() == tree
    assert git(repo, "log", "-1", "--format=%an <%ae>%n%B", env=env) == (
        "Zoë Developer <zoe@client.test>\nnotes: more lines\n\nWith a body line.\n.\n"
        "From the tests, a line mbox would quote.\nAnd a lone dot above, and Grüße.\n\n")
    s.wait_spool_empty()


# ---------------------------------------------------------------------------
# cron

CRON_OUTPUT = "disk report\n.\n..two dots\nGrüße aus cron\ntrailing spaces   \nlast line\n"


def test_cron_mails_a_jobs_output_to_root_through_the_aliases(site, client_ns, start_server,
                                                               tmp_path):
    """Debian's cron daemon in the namespace, with its own /etc/crontab: a
    job every minute whose output cron mails to MAILTO=root; /etc/aliases
    sends root's mail to a local mailbox and to a person at remote.test."""
    cron = which("cron")
    job = tmp_path / "job.sh"
    ran = tmp_path / "job.ran"
    # Output once only: a second minute must not send a second mail.
    job.write_text(f"#!/bin/sh\n[ -e {ran} ] && exit 0\n: > {ran}\n"
                   f"printf '%s' '{CRON_OUTPUT}'\n")
    job.chmod(0o755)
    san = client_env(tmp_path)
    # cron gives its jobs, and the sendmail it mails with, only the
    # crontab's variables: the sanitizers' options go there.
    crontab = ("SHELL=/bin/sh\nMAILTO=root\n"
               f"ASAN_OPTIONS={san['ASAN_OPTIONS']}\nUBSAN_OPTIONS={san['UBSAN_OPTIONS']}\n"
               f"* * * * * root {job}\n")
    s = site(aliases="# who reads root's mail\nroot: admin, ops@remote.test\n",
             extra_etc={"crontab": crontab})
    dest = s.start_dest(start_server)
    ns = client_ns(s.etc, [cron, "-f", "-L", "15"], cron=True)
    # cron fires at the next minute boundary: up to 60 s, then the mail.
    def arrived():
        assert not ns.finished(), f"cron exited: {ns.wait()}"
        return (mailbox_messages(dest.mailroot, "ops")
                and mailbox_messages(s.local, "admin"))
    wait_for(arrived, 150, "cron's mail at ops@remote.test and the local admin")
    s.wait_spool_empty()
    host = socket.gethostname()
    assert ran.exists()
    for data, where in ((mailbox_messages(dest.mailroot, "ops"), "remote"),
                        (mailbox_messages(s.local, "admin"), "local")):
        assert len(data) == 1, (where, data)
        d = Delivered(data[0])
        # No -f from cron: root at the settings file's origin.
        assert d.return_path == f"<root@{ORIGIN}>", (where, d.return_path)
        if where == "remote":
            received_at_dest(d, f"ops@{DOMAIN}")
        else:
            assert d.delivered_to == f"admin@{host}", d.delivered_to
            assert "(rawmail local delivery)" in d.received, d.received
        fields, body = split_message(d.body)
        if where == "remote":
            # The forward through the alias carries the loop marker
            # Postfix's local(8) writes (msg/loop.h).
            assert fields[0] == f"Delivered-To: root@{host}".encode(), (where, fields)
            fields = fields[1:]
        assert body == CRON_OUTPUT.encode(), (where, body)
        # The header as cron wrote it (Debian cron 3.0pl1), in its order.
        want = [f"From: root@{ORIGIN} (Cron Daemon)".encode(), f"To: root@{ORIGIN}".encode(),
                f"Subject: Cron <root@{host}> {job}".encode(), b"MIME-Version: 1.0",
                b"Content-Type: text/plain; charset=UTF-8",
                b"Content-Transfer-Encoding: 8bit", b"X-Cron-Env: <SHELL=/bin/sh>",
                b"X-Cron-Env: <MAILTO=root>"]
        assert [f for f in fields if f in want] == want, (where, fields)
        assert all(f in want or f.startswith(ADDED) or f.startswith(b"X-Cron-Env: <")
                   for f in fields), (where, fields)
    assert mailbox_messages(s.local, "root") == []
    # cron's own word (syslog, -L 15): it ran the job, and once the job and
    # its mail were done ("END") it logged no failure of its mailer, which
    # it would: "MAIL (mailed N bytes of output but got status 0x...)".
    end = re.compile(rf"\(root\) END \(\[\d+\] {re.escape(str(job))}\)")
    wait_for(lambda: any(end.search(l) for l in ns.syslog_lines), 30,
             f"cron's END line for the job: {ns.syslog_lines}")
    log = "\n".join(ns.syslog_lines)
    assert re.search(rf"\(root\) CMD \(\[\d+\] {re.escape(str(job))}\)", log), log
    assert "MAIL (" not in log, log
