"""The mail root and what lies beneath it (issue 8, items 8-10):

- symbolic links inside the mail root are never followed: a mailbox that is
  a link (mail/bob -> /elsewhere), or a Maildir whose tmp/ or new/ is one,
  gets 451 4.3.0 at the end of data, a log line, and nothing is written
  outside the mail root;
- a mailbox that is a mount point (another filesystem) is on its own disk
  before the 250 (two ext4 loop devices, as root);
- the store never runs as root: a mail root rawmail creates belongs to the
  mail user, an existing root-owned one is refused (exit 78), and a mail
  root inside a directory the mail user cannot enter still works, since the
  parent opens it and hands the store its descriptor.
"""

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from helpers import (SMTPConn, assert_no_mail, crlf, mailbox_messages, rawmail_bin)
from robust_util import children, proc_status, server_roles

SENDER = "sender@client.test"
AS_ROOT = os.geteuid() == 0


def message(tag):
    return crlf(f"Subject: mailroot {tag}\n\nbody {tag}\n".encode())


def send(srv, rcpt, tag="x"):
    """One transaction; returns the reply to the final dot."""
    with SMTPConn(srv.host, srv.port) as c:
        assert c.read_reply().code == 220
        assert c.cmd("EHLO client.test").code == 250
        r = c.mail_transaction(SENDER, [rcpt], message(tag))
        c.cmd("QUIT")
        return r


def store_owner(srv):
    """uid and gid the store writes as: the mail root's owner."""
    st = os.stat(srv.mailroot)
    return st.st_uid, st.st_gid


def outside_dir(srv):
    """A Maildir outside the mail root, writable by the store's user and on a
    path it can reach, so that following a link WOULD succeed: the test
    shows the link is refused, not merely unwritable."""
    d = Path(tempfile.mkdtemp(prefix="rawmail-outside-", dir="/tmp"))
    os.chmod(d, 0o755)
    uid, gid = store_owner(srv)
    for sub in ("", "tmp", "new", "cur"):
        p = d / sub
        p.mkdir(exist_ok=True)
        os.chown(p, uid, gid)
    return d


def files_under(d):
    return sorted(str(p) for p in Path(d).rglob("*") if p.is_file())


def wait_log(srv, text, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in srv.log():
            return True
        time.sleep(0.05)
    return False


# ---------------------------------------------------------------------------
# symbolic links (item 9)


def test_symlinked_mailbox_refused(server):
    assert send(server, "first@example.test").code == 250   # the mail root exists
    out = outside_dir(server)
    try:
        os.symlink(out, server.mailroot / "bob")
        r = send(server, "bob@example.test", "link")
        assert r.code == 451 and r.lines[0].startswith("451 4.3.0"), r
        assert files_under(out) == [], "the store wrote through the link"
        assert wait_log(server, "event=mailbox_refused"), server.log()
        assert "mailbox=bob" in server.log()
        # Other mailboxes are not affected.
        assert send(server, "alice@example.test").code == 250
    finally:
        shutil.rmtree(out)


@pytest.mark.parametrize("sub", ["tmp", "new"])
def test_symlinked_maildir_subdir_refused(server, sub):
    assert send(server, "carol@example.test", "before").code == 250
    out = outside_dir(server)
    try:
        box = server.mailroot / "carol"
        shutil.rmtree(box / sub)
        os.symlink(out / sub, box / sub)
        r = send(server, "carol@example.test", "link")
        assert r.code == 451 and r.lines[0].startswith("451 4.3.0"), r
        assert files_under(out) == [], "the store wrote through the link"
        assert wait_log(server, "event=mailbox_refused"), server.log()
        if sub == "tmp":
            # What was stored before the link is still there.
            assert len(mailbox_messages(server.mailroot, "carol")) == 1
        else:
            # The file written in tmp/ went with the failed message.
            assert list((box / "tmp").iterdir()) == []
    finally:
        shutil.rmtree(out)


# ---------------------------------------------------------------------------
# a mailbox on its own filesystem (item 8)


def _can_loop():
    return AS_ROOT and shutil.which("losetup") and shutil.which("mkfs.ext4") \
        and os.path.exists("/dev/loop-control")


class LoopFS:
    """An ext4 filesystem on a loop device, mounted at `path`."""

    def __init__(self, image, path):
        self.image, self.path = image, Path(path)
        self.dev = None
        self.mounted = False

    def setup(self, size_mib=32):
        with open(self.image, "wb") as f:
            f.truncate(size_mib << 20)
        # PEERS.md gotcha 14: no lazy init, or it writes in the background
        # and muddies the device's write counter.
        subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0",
                        str(self.image)], check=True, capture_output=True, timeout=60)
        p = subprocess.run(["losetup", "-f", "--show", str(self.image)], capture_output=True,
                           timeout=30)
        if p.returncode != 0:
            pytest.skip(f"losetup: {p.stderr.decode(errors='replace').strip()}")
        self.dev = p.stdout.decode().strip()
        self.path.mkdir(exist_ok=True)
        p = subprocess.run(["mount", "-t", "ext4", self.dev, str(self.path)],
                           capture_output=True, timeout=30)
        if p.returncode != 0:
            pytest.skip(f"mount {self.dev}: {p.stderr.decode(errors='replace').strip()}")
        self.mounted = True
        return self

    def sectors_written(self):
        """Field 7 of /sys/block/loopN/stat: sectors written to the device."""
        name = os.path.basename(self.dev)
        return int(Path(f"/sys/block/{name}/stat").read_text().split()[6])

    def teardown(self):
        if self.mounted:
            if subprocess.run(["umount", str(self.path)], capture_output=True,
                              timeout=30).returncode != 0:
                subprocess.run(["umount", "-l", str(self.path)], capture_output=True, timeout=30)
        if self.dev:
            subprocess.run(["losetup", "-d", self.dev], capture_output=True, timeout=30)


@pytest.fixture
def loop_ext4(tmp_path):
    """Factory: loop_ext4(mountpoint) -> LoopFS.  Requested before the server
    fixture, so that its teardown (umount, detach) runs after the servers
    stopped."""
    if not _can_loop():
        pytest.skip("needs root, losetup, mkfs.ext4 and loop devices")
    made = []

    def make(path):
        fs = LoopFS(tmp_path / f"loop{len(made)}.img", path)
        made.append(fs)
        return fs.setup()

    yield make
    for fs in reversed(made):
        fs.teardown()


def _mail_user():
    try:
        return pwd.getpwnam("mail")
    except KeyError:
        pytest.skip("no user 'mail'")


def test_mailbox_on_another_filesystem_synced_before_250(loop_ext4, start_server, tmp_path):
    """The mail root on one ext4, mailbox bob on a second one mounted at
    mail/bob: at the moment the 250 arrives, bob's device has been written
    (with a syncfs of the mail root's filesystem only it showed 0 sectors:
    the file and its rename were still in memory)."""
    mu = _mail_user()
    root = loop_ext4(tmp_path / "mail")
    (root.path / "bob").mkdir()
    box = loop_ext4(root.path / "bob")
    for p in (root.path, box.path):
        os.chown(p, mu.pw_uid, mu.pw_gid)
    srv = start_server("--tls", "no", "--mail-user", "mail", mailroot=root.path)
    # Warm up: bob's Maildir directories exist and every start-up write is
    # out, so what the device writes next is the message.
    assert send(srv, "bob@example.test", "warm").code == 250
    assert send(srv, "alice@example.test", "warm").code == 250
    os.sync()
    for attempt in range(3):
        before_box = box.sectors_written()
        r = send(srv, "bob@example.test", f"m{attempt}")
        after_box = box.sectors_written()
        assert r.code == 250, r
        assert after_box > before_box, (
            f"bob's filesystem ({box.dev}) had {after_box - before_box} sectors written "
            f"between DATA and the 250: the message was not on its disk")
    msgs = mailbox_messages(root.path, "bob")
    assert len(msgs) == 4
    # The mail root's own filesystem is still synced for its mailboxes.
    before_root = root.sectors_written()
    assert send(srv, "alice@example.test", "again").code == 250
    assert root.sectors_written() > before_root
    print(f"\n[loop devices] bob's device wrote {after_box - before_box} sectors "
          f"for one message before its 250")


# ---------------------------------------------------------------------------
# the store never runs as root (item 10)

needs_root = pytest.mark.skipif(not AS_ROOT, reason="privilege drop: run as root")


def run_serve(tmp_path, *args, timeout=20):
    """rawmail serve expected to refuse to start: (exit status, output)."""
    from helpers import free_port
    cmd = [str(rawmail_bin()), "serve", "--listen", f"127.0.0.1:{free_port()}",
           "--hostname", "mx.test", "--tls", "no", *map(str, args)]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                       cwd=tmp_path)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def uids(pid):
    """Real, effective, saved and filesystem uid of a process."""
    return [int(u) for u in proc_status(pid)["Uid"].split()]


def check_store_not_root(srv, expect_uid, timeout=5.0):
    """The store runs as expect_uid and the smtp process has dropped root.
    The listening port opens before the children finish starting (the
    parent binds it, and a just-forked child still holds it and root for a
    moment), so the roles are read again until they settle."""
    deadline = time.monotonic() + timeout
    while True:
        roles = server_roles(srv.proc.pid, srv.port)
        bad = [f"store {pid}: Uid {uids(pid)}" for pid in roles["store"]
               if uids(pid) != [expect_uid] * 4]
        bad += [f"smtp {pid}: Uid {uids(pid)}" for pid in roles["smtp"] if 0 in uids(pid)]
        if roles["store"] and not bad:
            return
        assert time.monotonic() < deadline, \
            f"after {timeout} s: {bad or 'no store process'} among {children(srv.proc.pid)}"
        time.sleep(0.05)


@needs_root
def test_root_owned_mailroot_refused(tmp_path):
    mailroot = tmp_path / "rootmail"
    mailroot.mkdir()
    code, out = run_serve(tmp_path, "--mailroot", mailroot)
    assert code == 78, out
    assert "owned by root" in out and "chown" in out and "--mail-user" in out, out
    # The same from a configuration file.
    conf = tmp_path / "serve.conf"
    conf.write_text(f"mailroot = {mailroot}\n")
    code, out = run_serve(tmp_path, "-c", conf)
    assert code == 78 and "owned by root" in out, out


@needs_root
def test_mail_user_root_refused(tmp_path):
    code, out = run_serve(tmp_path, "--mailroot", tmp_path / "m", "--mail-user", "root")
    assert code == 78 and "never runs as root" in out, out
    code, out = run_serve(tmp_path, "--mailroot", tmp_path / "m", "--mail-user", "no-such-user-x")
    assert code == 78 and "no such user" in out, out


@needs_root
def test_created_mailroot_belongs_to_mail_user(start_server, tmp_path):
    """As the README's quick start run as root: no --mail-user, rawmail makes
    the mail root (here inside pytest's 0700 directory) and gives it to
    'mail'; the store runs as 'mail' and stores there."""
    mu = _mail_user()
    os.chmod(tmp_path, 0o700)
    srv = start_server("--tls", "no")
    st = os.stat(srv.mailroot)
    assert (st.st_uid, st.st_gid) == (mu.pw_uid, mu.pw_gid)
    check_store_not_root(srv, mu.pw_uid)
    assert send(srv, "user@example.test").code == 250
    msgs = list((srv.mailroot / "user" / "new").iterdir())
    assert len(msgs) == 1 and msgs[0].stat().st_uid == mu.pw_uid


@needs_root
def test_default_mailroot_in_working_directory(tmp_path):
    """`rawmail serve` with no --mailroot, as root: ./mail is made and owned
    by the mail user."""
    from helpers import Server
    mu = _mail_user()
    srv = Server(tmp_path, ["--hostname", "mx.test", "--domain", "example.test", "--tls", "no"],
                 [f"127.0.0.1:{__import__('helpers').free_port()}"], tmp_path / "mail", "qs")
    srv.listen_in_config = True   # no --listen/--mailroot from the helper
    srv.args = ["--listen", srv.listen[0]] + srv.args
    try:
        srv.start()
        assert os.stat(tmp_path / "mail").st_uid == mu.pw_uid
        check_store_not_root(srv, mu.pw_uid)
        assert send(srv, "you@example.test").code == 250
        assert len(mailbox_messages(tmp_path / "mail", "you")) == 1
    finally:
        assert srv.stop() == 0, srv.log()


@needs_root
def test_mailroot_inside_untraversable_dir(start_server, tmp_path):
    """The mail root sits in a 0700 root-owned directory that the mail user
    cannot enter: the parent opens it before the drop and the store works
    beneath that descriptor."""
    mu = _mail_user()
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    os.chmod(locked, 0o700)
    mailroot = locked / "mail"
    mailroot.mkdir()                    # exists, owned by root: --mail-user takes it
    srv = start_server("--tls", "no", "--mail-user", "mail", mailroot=mailroot)
    assert os.stat(mailroot).st_uid == mu.pw_uid
    check_store_not_root(srv, mu.pw_uid)
    for i in range(3):
        assert send(srv, f"user{i}@example.test").code == 250
    assert len(mailbox_messages(mailroot, "user2")) == 1


@needs_root
def test_existing_mailroot_of_a_user_kept(start_server, tmp_path):
    """An existing mail root owned by an unprivileged user: the store runs as
    that user without --mail-user, and the owner is left alone."""
    nobody = pwd.getpwnam("nobody")
    mailroot = tmp_path / "mine"
    mailroot.mkdir()
    os.chown(mailroot, nobody.pw_uid, nobody.pw_gid)
    srv = start_server("--tls", "no", mailroot=mailroot)
    check_store_not_root(srv, nobody.pw_uid)
    assert os.stat(mailroot).st_uid == nobody.pw_uid
    assert send(srv, "user@example.test").code == 250
