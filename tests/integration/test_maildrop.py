"""A user who is not root queues mail through the system spool's maildrop
(issue 9, "A non-root user's sendmail must never lose mail and must not
need a setuid-root binary"; src/queue/maildrop.h): the sendmail entry run
as user nobody writes a drop file into SPOOL/maildrop and exits 0; a
running `rawmail serve` takes it at once (inotify), and without the daemon
root's `rawmail queue run` (the systemd timer's) takes it.  Either way it
is delivered with a Received: line naming the user.  Hostile files in the
maildrop are set aside, never delivered, never a crash or a hang.

The destination is a `rawmail serve` on 127.0.0.3 reached as an address
literal with --port (no DNS).  The spool lives in a directory user nobody
can walk into (pytest's tmp_path is below a mode-0700 directory)."""

import email
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from helpers import SANITIZER_MARKERS, free_port, mail_user_args, mailbox_messages, rawmail_bin
from test_serve_queue import DEST, dest_port, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (runs sendmail as nobody)")

NOBODY = pwd.getpwnam("nobody")


@pytest.fixture
def walkable(tmp_path):
    """A mode-0755 directory in /tmp that user nobody can reach."""
    d = Path(tempfile.mkdtemp(prefix="rawmail-maildrop-", dir="/tmp"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def env(conf=None):
    e = dict(os.environ)
    e.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
    e["HOME"] = "/nonexistent"
    e.pop("XDG_STATE_HOME", None)
    if conf:
        e["RAWMAIL_CONF"] = str(conf)
    return e


def as_nobody(argv, **kw):
    return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                           *[str(a) for a in argv]], capture_output=True, timeout=60, **kw)


def no_sanitizer(text):
    for mark in SANITIZER_MARKERS:
        assert mark not in text, text


def user_sendmail(walkable, conf, *args, message):
    """The sendmail entry, as user nobody, through a link named sendmail."""
    link = walkable / "sendmail"
    if not link.exists():
        link.symlink_to(rawmail_bin())
    p = as_nobody([link, *args], input=message.encode(), env=env(conf))
    err = p.stderr.decode(errors="replace")
    no_sanitizer(err)
    return p.returncode, p.stdout.decode(errors="replace"), err


def settings(walkable, spool, port):
    conf = walkable / "rawmail.conf"
    conf.write_text(f"[queue]\nspool = {spool}\nretry-schedule = 1s\n"
                    f"[delivery]\nport = {port}\ndns = 127.0.0.1:1\n")
    os.chmod(conf, 0o644)
    return conf


def queue_run(spool, port, expect=0):
    p = subprocess.run([str(rawmail_bin()), "queue", "run", "--spool", str(spool), "--port",
                        str(port), "--dns", "127.0.0.1:1", "--retry-schedule", "1s"],
                       capture_output=True, timeout=60, env=env())
    err = p.stderr.decode(errors="replace")
    no_sanitizer(err)
    assert p.returncode == expect, (p.returncode, err)
    return err


def message(subject):
    return (f"From: nobody@client.test\nTo: bob@[{DEST}]\nSubject: {subject}\n"
            f"Message-ID: <{subject.replace(' ', '.')}@client.test>\n\nbody of {subject}\n")


def arrived(dest, subject):
    return [email.message_from_bytes(m) for m in mailbox_messages(dest.mailroot, "bob")
            if email.message_from_bytes(m)["Subject"] == subject]


def drops(spool):
    return sorted(p.name for p in (spool / "maildrop").iterdir())


def assert_from_nobody(msg):
    received = msg.get_all("Received")
    mine = [r for r in received if "from userid" in r]
    assert len(mine) == 1, received
    assert f"from userid {NOBODY.pw_uid} (nobody)" in mine[0], mine


def test_without_daemon_root_queue_run_takes_the_drop(walkable, start_server):
    port = dest_port()
    spool = walkable / "spool"
    dest = start_server(*mail_user_args(), listen=[f"{DEST}:{port}"],
                        mailroot=walkable / "destmail")
    # Root's first run makes the maildrop (the timer's, on an installed
    # machine: `make install` makes it too).
    queue_run(spool, port)
    md = spool / "maildrop"
    st = md.stat()
    assert stat.S_IMODE(st.st_mode) == 0o3733, oct(st.st_mode)
    assert stat.S_IMODE(spool.stat().st_mode) == 0o711
    conf = settings(walkable, spool, port)
    rc, out, err = user_sendmail(walkable, conf, "-f", "nobody@client.test", f"bob@[{DEST}]",
                                 message="" + message("no daemon"))
    # Postfix's sendmail: queued is done, silently, exit 0.
    assert (rc, out, err) == (0, "", ""), (rc, out, err)
    [name] = drops(spool)
    fst = (md / name).stat()
    assert fst.st_uid == NOBODY.pw_uid and stat.S_IMODE(fst.st_mode) == 0o640
    # The user can neither list the maildrop nor read the queue.
    p = as_nobody(["ls", md])
    assert p.returncode != 0, p
    p = as_nobody(["ls", spool / "env"])
    assert p.returncode != 0, p
    err = queue_run(spool, port)
    assert "event=maildrop_import" in err and f"uid={NOBODY.pw_uid}" in err, err
    assert drops(spool) == []
    [msg] = arrived(dest, "no daemon")
    assert_from_nobody(msg)
    assert msg.get_payload() == "body of no daemon\n"
    assert not list((spool / "env").iterdir())


def test_with_daemon_the_drop_is_delivered_at_once(walkable, start_server):
    port = dest_port()
    spool = walkable / "spool"
    dest = start_server(*mail_user_args(), listen=[f"{DEST}:{port}"],
                        mailroot=walkable / "destmail")
    srv = start_server("--spool", spool, "--port", port, "--dns", "127.0.0.1:1",
                       "--retry-schedule", "1s", *mail_user_args(),
                       mailroot=walkable / "mail")
    wait_for(lambda: "queue_started" in srv.log(), 10, srv.log)
    md = spool / "maildrop"
    st = md.stat()
    # The queue process's user owns it: it reads the drops through the
    # group the set-group-ID directory gives them.
    assert st.st_uid == spool.stat().st_uid != 0
    assert stat.S_IMODE(st.st_mode) == 0o3733
    conf = settings(walkable, spool, port)
    t0 = time.monotonic()
    rc, out, err = user_sendmail(walkable, conf, "-f", "nobody@client.test", f"bob@[{DEST}]",
                                 message=message("with daemon"))
    assert (rc, out, err) == (0, "", ""), (rc, out, err)
    wait_for(lambda: arrived(dest, "with daemon"), 20,
             lambda: f"not delivered by serve:\n{srv.log()}")
    took = time.monotonic() - t0
    [msg] = arrived(dest, "with daemon")
    assert_from_nobody(msg)
    wait_for(lambda: drops(spool) == [] and not list((spool / "env").iterdir()), 10,
             "drop or entry left behind")
    print(f"drop to delivered with the daemon: {took * 1000:.0f} ms")
    # No pass of root's needed, and no second copy later.
    time.sleep(1.5)
    assert len(arrived(dest, "with daemon")) == 1


def test_hostile_files_in_the_maildrop_are_set_aside(walkable, start_server):
    port = dest_port()
    spool = walkable / "spool"
    dest = start_server(*mail_user_args(), listen=[f"{DEST}:{port}"],
                        mailroot=walkable / "destmail")
    queue_run(spool, port)
    md = spool / "maildrop"
    conf = settings(walkable, spool, port)
    own = walkable / "own"
    own.mkdir()
    os.chown(own, NOBODY.pw_uid, NOBODY.pw_gid)
    # What user nobody can put there with a shell (names chosen to pass
    # as ids, so each reaches the check it is meant for).
    script = f"""
        set -e
        cd {md}
        ln -s /etc/shadow link1
        mkfifo fifo1
        printf 'garbage\\n' > garbage1
        printf 'rawmail-queue 1\\nid x\\nend\\n' > cut1
        printf 'x' > 'not an id'
        printf 'mine\\n' > {own}/file && ln {own}/file hard1
        mkdir dir1
        printf 'old' > .tmp1
    """
    p = as_nobody(["sh", "-c", script])
    assert p.returncode == 0, p
    rc, _, err = user_sendmail(walkable, conf, "-f", "nobody@client.test", f"bob@[{DEST}]",
                               message=message("good one"))
    assert rc == 0, err
    t0 = time.monotonic()
    err = queue_run(spool, port)
    assert time.monotonic() - t0 < 30
    reasons = {
        "link1": "a symbolic link",
        "fifo1": "not a regular file",
        "garbage1": "no envelope",
        "cut1": "envelope: line",
        "not an id": "not a drop file's name",
        "hard1": "a hard link",
        "dir1": "not a regular file",
    }
    for name, why in reasons.items():
        lines = [l for l in err.splitlines()
                 if "maildrop_set_aside" in l and f'reason="{why}' in l and
                 (f"file={name} " in l or f'file="{name}"' in l)]
        assert len(lines) == 1, (name, why, err)
        assert f"uid={NOBODY.pw_uid}" in lines[0], lines[0]
    assert "imported=1 set_aside=7" in err, err
    # Only the writer's unfinished file (young) stays; /etc/shadow is
    # untouched and was never read as mail.
    assert drops(spool) == [".tmp1"]
    assert Path("/etc/shadow").stat().st_nlink >= 1
    assert len(list((spool / "corrupt").glob("*.drop"))) == 7
    [msg] = arrived(dest, "good one")
    assert_from_nobody(msg)
    assert len(mailbox_messages(dest.mailroot, "bob")) == 1


def test_forged_envelope_cannot_skip_delivery_or_bounce_rules(walkable, start_server):
    """A drop file whose envelope says "delivered" and "bounce" is taken
    as a plain new message: the states are the queue's to decide."""
    port = dest_port()
    spool = walkable / "spool"
    dest = start_server(*mail_user_args(), listen=[f"{DEST}:{port}"],
                        mailroot=walkable / "destmail")
    queue_run(spool, port)
    conf = settings(walkable, spool, port)
    # Written by the real sendmail entry, then edited by its owner.
    rc, _, err = user_sendmail(walkable, conf, "-f", "nobody@client.test", f"bob@[{DEST}]",
                               message=message("forged"))
    assert rc == 0, err
    [name] = drops(spool)
    path = spool / "maildrop" / name
    data = path.read_bytes()
    data = data.replace(b"rcpt queued 0 0 0 ", b"rcpt delivered 3 99999999999 5 ", 1)
    data = data.replace(b"flags -", b"flags bounce,warned", 1)
    p = as_nobody(["sh", "-c", f"cat > {path}"], input=data)
    assert p.returncode == 0, p
    queue_run(spool, port)
    [msg] = arrived(dest, "forged")
    assert_from_nobody(msg)


def test_no_maildrop_the_user_is_told(walkable):
    """No system spool the user can drop into and no home for a spool of
    their own: exit 75 and a sentence, never a silent loss."""
    spool = walkable / "spool"
    spool.mkdir(mode=0o700)
    conf = settings(walkable, spool, free_port())
    rc, out, err = user_sendmail(walkable, conf, "-f", "nobody@client.test", "bob@[127.0.0.3]",
                                 message=message("nowhere"))
    assert rc == 75, (rc, err)
    assert "not sent" in err and str(spool) in err, err


def test_user_rawmail_send_hands_what_is_left_to_the_system_queue(walkable, start_server):
    """rawmail send as a user keeps its attempt in the foreground; a
    destination that is down leaves the message in the maildrop (exit 75,
    "queued as"), and root's queue run delivers it once it is up."""
    port = dest_port()
    spool = walkable / "spool"
    queue_run(spool, port)
    conf = settings(walkable, spool, port)
    p = as_nobody([rawmail_bin(), "send", "-f", "nobody@client.test", f"bob@[{DEST}]"],
                  input=message("send later").encode(), env=env(conf))
    err = p.stderr.decode(errors="replace")
    no_sanitizer(err)
    assert p.returncode == 75, (p.returncode, err)
    assert "Connection refused" in err and "queued as" in err and "maildrop" in err, err
    assert len(drops(spool)) == 1
    dest = start_server(*mail_user_args(), listen=[f"{DEST}:{port}"],
                        mailroot=walkable / "destmail")
    queue_run(spool, port)
    [msg] = arrived(dest, "send later")
    assert_from_nobody(msg)
    assert drops(spool) == []


def test_user_sendmail_bs_queues_through_the_maildrop(walkable, start_server):
    """sendmail -bs (Symfony's and Laravel's default) as a user: the 250
    comes once the drop file is durable; root's queue run delivers it."""
    port = dest_port()
    spool = walkable / "spool"
    queue_run(spool, port)
    conf = settings(walkable, spool, port)
    link = walkable / "sendmail"
    link.symlink_to(rawmail_bin())
    p = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                          str(link), "-bs"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env(conf))
    # The content only after the 354, as a client must (RFC 5321 §4.1.1.4).
    p.stdin.write(f"EHLO app.client.test\r\nMAIL FROM:<nobody@client.test>\r\n"
                  f"RCPT TO:<bob@[{DEST}]>\r\nDATA\r\n".encode())
    p.stdin.flush()
    out = b""
    while b"354 " not in out:
        line = p.stdout.readline()
        assert line, out
        out += line
    p.stdin.write(b"Subject: over bs\r\n\r\nhi\r\n.\r\nQUIT\r\n")
    p.stdin.close()
    rest, err = p.stdout.read(), p.stderr.read()
    p.wait(30)
    out = (out + rest).decode(errors="replace")
    no_sanitizer(err.decode(errors="replace"))
    assert p.returncode == 0, (out, err)
    assert "250 2.0.0 Ok: queued as" in out, out
    assert len(drops(spool)) == 1
    dest = start_server(*mail_user_args(), listen=[f"{DEST}:{port}"],
                        mailroot=walkable / "destmail")
    queue_run(spool, port)
    [msg] = arrived(dest, "over bs")
    assert_from_nobody(msg)
