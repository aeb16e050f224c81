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
