"""Local mail (issue 9): cron's MAILTO=root and bounces to root@host reach
the mail root's Maildirs, written by a store process running as the mail
root's owner; the aliases file forwards local names to local mailboxes and
remote addresses; an alias loop is refused; a runner that is neither root
nor the mail root's owner leaves the message queued.

Real peers on loopback: `rawmail serve` on 127.0.0.2 as the remote
destination of an alias, a scripted peer that refuses for a bounce.  The
tests run as root (the runner forks the store as user 'mail')."""
import email
import email.policy
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from helpers import SANITIZER_MARKERS, Delivered, mailbox_messages, rawmail_bin
from peers import ScriptedPeer
from send_util import send
from test_queue import PEER, data_count, entries, env, free_port_both, ok, rcpt_script

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="local delivery tests run as root")

HOST = socket.gethostname()


def cron_message(subject="Cron <root@vm> date"):
    return (f"To: root\nSubject: {subject}\nContent-Type: text/plain; charset=UTF-8\n\n"
            "Sun Dec  6 12:00:01 UTC 2026\n")


def local_args(tmp_path, aliases=""):
    return ["--spool", tmp_path / "spool", "--mailroot", tmp_path / "local",
            "--aliases", aliases]


def test_send_root_is_delivered_into_the_mail_root(tmp_path):
    s = send([*local_args(tmp_path), "-f", "alice@client.test", "root"], cron_message(),
             expect="ok")
    [data] = mailbox_messages(tmp_path / "local", "root")
    d = Delivered(data)
    assert d.return_path == "<alice@client.test>"
    assert d.delivered_to.startswith("root@"), d.delivered_to
    assert b"Subject: Cron <root@vm> date" in data
    assert entries(tmp_path / "spool") == [], s
    # The store wrote it as the mail root's owner, never as root.
    mail = pwd.getpwnam("mail").pw_uid
    assert (tmp_path / "local").stat().st_uid == mail
    for f in (tmp_path / "local" / "root" / "new").iterdir():
        assert f.stat().st_uid == mail
    assert "result=delivered" in s.err, s


def test_root_at_localhost_and_at_this_host_are_local(tmp_path):
    send([*local_args(tmp_path), "-f", "alice@client.test", "root@localhost",
          f"Postmaster@{HOST}"], cron_message(), expect="ok")
    assert len(mailbox_messages(tmp_path / "local", "root")) == 1
    assert len(mailbox_messages(tmp_path / "local", "postmaster")) == 1


def test_aliases_forward_to_a_local_mailbox_and_a_remote_server(tmp_path, start_server):
    port = free_port_both()
    srv = start_server(listen=[f"{PEER}:{port}"], mailroot=tmp_path / "remote")
    aliases = tmp_path / "aliases"
    aliases.write_text("# who reads root's mail\n"
                       "root: alice,\n"
                       f"   bob@[{PEER}], \"|/bin/cat\"\n")
    s = send([*local_args(tmp_path, aliases), "--port", port, "-f", "cron@client.test", "root"],
             cron_message("for alice and bob"), expect="ok")
    [mine] = mailbox_messages(tmp_path / "local", "alice")
    assert Delivered(mine).return_path == "<cron@client.test>"
    assert b"Subject: for alice and bob" in mine
    [theirs] = mailbox_messages(srv.mailroot, "bob", wait=5)
    assert b"Subject: for alice and bob" in theirs
    assert mailbox_messages(tmp_path / "local", "root") == []
    # The pipe target is left out, said in a log line naming the file.
    assert "event=aliases" in s.err and "pipe targets" in s.err, s
    assert entries(tmp_path / "spool") == []


def test_alias_loop_is_refused_clearly(tmp_path):
    aliases = tmp_path / "aliases"
    aliases.write_text("root: admin\nadmin: root@localhost\n")
    s = send([*local_args(tmp_path, aliases), "-f", "alice@client.test", "root"],
             cron_message(), expect=69)
    assert "alias loop: root -> admin -> root" in s.err, s
    assert not (tmp_path / "local" / "root").exists()
    assert entries(tmp_path / "spool") == []


def test_sendmail_t_as_cron_calls_it_delivers_in_the_background(tmp_path):
    s = send([*local_args(tmp_path), "-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t"],
             cron_message(), argv0="sendmail", cwd=tmp_path, expect="ok")
    assert s.out == "" and s.err == "", s
    msgs = mailbox_messages(tmp_path / "local", "root", wait=30)
    assert len(msgs) == 1
    assert b"Sun Dec  6 12:00:01 UTC 2026" in msgs[0]
    deadline = time.monotonic() + 10
    while entries(tmp_path / "spool") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert entries(tmp_path / "spool") == []


def test_bounce_to_root_at_this_host_is_delivered_locally(tmp_path):
    port = free_port_both()
    peer = ScriptedPeer(rcpt_script([b"550 5.1.1 no such user\r\n"]), host=PEER, port=port,
                        with_conn=True)
    try:
        # The sendmail entry: every failure becomes a bounce to the sender.
        send([*local_args(tmp_path), "--port", port, "-i", "-f", f"root@{HOST}",
              f"bob@[{PEER}]"], "Subject: will bounce\n\nbody\n", argv0="sendmail",
             cwd=tmp_path, expect="ok")
        msgs = mailbox_messages(tmp_path / "local", "root", wait=30)
    finally:
        peer.close()
    assert len(msgs) == 1, msgs
    d = Delivered(msgs[0])
    assert d.return_path == "<>"
    msg = email.message_from_bytes(msgs[0], policy=email.policy.default)
    assert msg.get_content_type() == "multipart/report"
    status = list(msg.iter_parts())[1].as_string()
    assert f"Final-Recipient: rfc822; bob@[{PEER}]" in status, status
    assert "Status: 5.1.1" in status, status


def test_neither_root_nor_owner_keeps_the_message_queued(tmp_path):
    # A user's own spool and a mail root that belongs to 'mail': the
    # user's runner cannot write it, says why, and loses nothing.
    base = Path(tempfile.mkdtemp(prefix="rawmail-local-"))
    try:
        os.chmod(base, 0o755)
        spool = base / "spool"
        spool.mkdir()
        nobody = pwd.getpwnam("nobody")
        os.chown(spool, nobody.pw_uid, nobody.pw_gid)
        mailroot = base / "mail"
        mailroot.mkdir(mode=0o755)
        mail = pwd.getpwnam("mail")
        os.chown(mailroot, mail.pw_uid, mail.pw_gid)
        binary = str(rawmail_bin())
        run = ["runuser", "-u", "nobody", "--", binary]
        p = subprocess.run([*run, "send", "--spool", spool, "--mailroot", mailroot, "--aliases",
                            "", "--dns", "127.0.0.1:1", "-f", "nobody@client.test", "root"],
                           input=cron_message().encode(), capture_output=True, timeout=60,
                           env=env(), cwd="/")
        err = p.stderr.decode(errors="replace")
        for mark in SANITIZER_MARKERS:
            assert mark not in err, err
        assert p.returncode == 75, (p.returncode, err)
        assert "local delivery needs root or the mail root's owner" in err, err
        assert "queued as" in err, err
        assert len(entries(spool)) == 1
        p = subprocess.run([*run, "queue", "flush", "--spool", spool, "--mailroot", mailroot,
                            "--aliases", "", "--dns", "127.0.0.1:1"], capture_output=True,
                           timeout=60, env=env(), cwd="/")
        err = p.stderr.decode(errors="replace")
        assert p.returncode == 0, err
        assert "run `rawmail queue run` as root" in err, err
        assert len(entries(spool)) == 1
        assert not (mailroot / "root").exists()
        # Root's run (as the mail user) delivers it.
        p = subprocess.run([binary, "queue", "flush", "--spool", spool, "--mailroot", mailroot,
                            "--aliases", "", "--dns", "127.0.0.1:1"], capture_output=True,
                           timeout=60, env=env())
        assert p.returncode == 0, p.stderr
        assert entries(spool) == []
        assert len(mailbox_messages(mailroot, "root")) == 1
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_settings_file_gives_serves_mailroot_and_the_aliases(tmp_path):
    # cron passes no options: serve's mailroot and [queue]'s aliases come
    # from the settings file, one mailroot for serve and local mail.
    aliases = tmp_path / "aliases"
    aliases.write_text("root: carol\n")
    conf = tmp_path / "rawmail.conf"
    conf.write_text(f"[serve]\nmailroot = {tmp_path / 'store'}\nhostname = mx.test\n\n"
                    f"[queue]\nspool = {tmp_path / 'spool'}\naliases = {aliases}\n")
    send(["-c", conf, "-f", "cron@client.test", "root"], cron_message(), expect="ok")
    assert len(mailbox_messages(tmp_path / "store", "carol")) == 1
    # An empty aliases value: none, root is root.
    conf.write_text(f"mailroot = {tmp_path / 'store'}\n[send]\naliases =\n"
                    f"[queue]\nspool = {tmp_path / 'spool'}\naliases = {aliases}\n")
    send(["-c", conf, "-f", "cron@client.test", "root"], cron_message(), expect="ok")
    assert len(mailbox_messages(tmp_path / "store", "root")) == 1


def test_unreadable_aliases_file_named_is_a_settings_error(tmp_path):
    s = send([*local_args(tmp_path, tmp_path / "missing"), "-f", "a@client.test", "root"],
             cron_message(), expect=78)
    assert "aliases file" in s.err and "missing" in s.err, s
    assert "queued as" in s.err, s
    # Nothing lost: it is queued, for a run once the file is fixed.
    assert len(entries(tmp_path / "spool")) == 1


def test_forward_that_fails_retries_alone_and_the_local_copy_stays_one(tmp_path):
    # root: alice, bob@[PEER] with nothing listening for bob: alice gets
    # her copy once; the forward is an entry of its own, retried alone.
    port = free_port_both()
    aliases = tmp_path / "aliases"
    aliases.write_text(f"root: alice, bob@[{PEER}]\n")
    args = [*local_args(tmp_path, aliases), "--port", port]
    s = send([*args, "-f", "cron@client.test", "root"], cron_message(), expect="tempfail")
    assert "event=forward" in s.err, s
    assert "queued: a forward could not be delivered yet" in s.err, s
    assert len(mailbox_messages(tmp_path / "local", "alice")) == 1
    [fwd] = entries(tmp_path / "spool")
    for _ in range(2):
        p = subprocess.run([str(rawmail_bin()), "queue", "flush", *[str(a) for a in args],
                            "--dns", "127.0.0.1:1"], capture_output=True, timeout=60, env=env())
        assert p.returncode == 0, p.stderr
        assert f"id={fwd}" in p.stderr.decode(), p.stderr
    assert entries(tmp_path / "spool") == [fwd]
    assert len(mailbox_messages(tmp_path / "local", "alice")) == 1
    # bob's server comes up: the forward is delivered, once.
    peer = ScriptedPeer(ok, host=PEER, port=port)
    try:
        p = subprocess.run([str(rawmail_bin()), "queue", "flush", *[str(a) for a in args],
                            "--dns", "127.0.0.1:1"], capture_output=True, timeout=60, env=env())
        assert p.returncode == 0, p.stderr
    finally:
        peer.close()
    assert data_count(peer) == 1
    assert entries(tmp_path / "spool") == []
    assert len(mailbox_messages(tmp_path / "local", "alice")) == 1


def test_local_and_remote_recipients_in_one_send(tmp_path):
    port = free_port_both()
    peer = ScriptedPeer(ok, host=PEER, port=port)
    try:
        send([*local_args(tmp_path), "--port", port, "-f", "cron@client.test", "root",
              f"bob@[{PEER}]"], cron_message(), expect="ok")
    finally:
        peer.close()
    assert data_count(peer) == 1
    assert len(mailbox_messages(tmp_path / "local", "root")) == 1
    assert entries(tmp_path / "spool") == []


@pytest.mark.parametrize("how", [["newaliases"], ["sendmail", "-bi"], ["sendmail", "-I"]])
def test_newaliases_checks_the_aliases_file(tmp_path, how):
    """newaliases (and sendmail -bi / -I, as Postfix and sendmail have
    them) after an edit of the aliases file: silent and 0 when it is good;
    a line rawmail leaves out is warned as FILE:LINE (0, as Postfix's
    postalias); a loop or a file the runners refuse is 78 with FILE:LINE."""
    from queue_util import rawmail
    aliases = tmp_path / "aliases"
    conf = tmp_path / "rawmail.conf"
    conf.write_text(f"[send]\naliases = {aliases}\n")
    run_env = {**os.environ, "RAWMAIL_CONF": str(conf)}

    aliases.write_text("# site\nroot: alice, bob@example.org\npostmaster: root\n")
    s = rawmail(how[1:], argv0=how[0], cwd=tmp_path, env=run_env, timeout=30)
    assert (s.rc, s.out, s.err) == (0, "", ""), s

    aliases.write_text("root: alice\nthis line has no colon\nops: |/usr/bin/page\n")
    s = rawmail(how[1:], argv0=how[0], cwd=tmp_path, env=run_env, timeout=30)
    assert s.rc == 0, s
    assert f"{aliases}:2: " in s.err and f"{aliases}:3: " in s.err, s

    aliases.write_text("root: alice\na: b\nb: c\nc: a\n")
    s = rawmail(how[1:], argv0=how[0], cwd=tmp_path, env=run_env, timeout=30)
    assert s.rc == 78, s
    assert f"{aliases}:2: a: alias loop" in s.err, s

    aliases.write_bytes(b"root: alice\nbob: carol\x00\n")
    s = rawmail(how[1:], argv0=how[0], cwd=tmp_path, env=run_env, timeout=30)
    assert s.rc == 78 and f"{aliases}:2: " in s.err, s

    s = rawmail([*how[1:], "--aliases", tmp_path / "missing"], argv0=how[0], cwd=tmp_path,
                env=run_env, timeout=30)
    assert s.rc == 78 and "missing" in s.err, s


def test_forwarding_loop_through_another_host_is_bounced_5_4_6(tmp_path, start_server):
    """Two rawmail instances: here, root's alias forwards to bob at a
    rawmail serve on 127.0.0.2; bob's mail comes back to root here (as
    fetchmail with an MDA of `sendmail root` brings it, or a user's
    script does: mail received over SMTP never goes through aliases, so
    re-injection is the only way round).  The forward carries
    Delivered-To: root@this-host, so the second time round it is refused
    with 5.4.6 "mail forwarding loop" instead of going out again."""
    port = free_port_both()
    srv = start_server(listen=[f"{PEER}:{port}"], mailroot=tmp_path / "remote")
    aliases = tmp_path / "aliases"
    aliases.write_text(f"root: bob@[{PEER}]\n")
    args = [*local_args(tmp_path, aliases), "--port", port]
    send([*args, "-f", "cron@client.test", "root"], cron_message("round and round"),
         expect="ok")
    [first] = mailbox_messages(srv.mailroot, "bob", wait=5)
    assert re.search(rb"^Delivered-To: root@\S+\r?$", first, re.M), first[:600]
    # Round two: bob's copy handed back to root here.
    s = send([*args, "-f", "cron@client.test", "root"], first, expect=69)
    assert "5.4.6" in s.err and "mail forwarding loop for root@" in s.err, s
    time.sleep(0.5)
    assert len(mailbox_messages(srv.mailroot, "bob")) == 1
    assert entries(tmp_path / "spool") == []


def test_too_many_received_fields_is_bounced_5_4_6(tmp_path):
    received = "".join(f"Received: from h{i}.example by h{i + 1}.example; "
                       "Sun, 6 Dec 2026 12:00:00 +0000\n" for i in range(101))
    s = send([*local_args(tmp_path), "-f", "cron@client.test", "root"],
             received + cron_message("hops"), expect=69)
    assert "5.4.6" in s.err and "101 Received:" in s.err, s
    assert mailbox_messages(tmp_path / "local", "root") == []
