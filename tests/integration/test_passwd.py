"""`rawmail passwd` (issue 10): the users file of authenticated submission.

Passwords given as two lines on standard input (scripts) and typed on a
terminal (a pty from Python's pty module: the prompt appears, the typed
password is never echoed); the hash is yescrypt and Python's crypt module
(libxcrypt underneath) verifies it; changing one user keeps every other
line octet for octet; mismatched, empty and over-long passwords, bad
names and bad files are refused with the sysexits status.
"""

import os
import pty
import select
import stat
import subprocess
import time
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

from helpers import rawmail_bin

SHA512 = ("$6$NVhOZGiqcCt6Zih0$y/xvjog4Zg.h5ag.z.guyWb9mSpJkaHNz5KAiR9us8ULTFVUwB6GJv"
          "GM.lnME4YU4ydGm8dmtNxZnsGua7OLO0")


def passwd(*args, stdin=b""):
    p = subprocess.run([str(rawmail_bin()), "passwd", *[str(a) for a in args]],
                       input=stdin, capture_output=True, timeout=60)
    err = p.stderr.decode(errors="replace")
    assert "Sanitizer" not in err and "runtime error" not in err, err
    return p.returncode, p.stdout.decode(errors="replace"), err


def hash_of(path, user):
    for line in path.read_text().splitlines():
        fields = line.rstrip("\r").split(":")
        if fields[0] == user:
            return fields[1]
    return None


def verifies(h, password):
    return crypt.crypt(password, h) == h


def test_create_from_stdin(tmp_path):
    users = tmp_path / "users"
    rc, out, err = passwd("--users", users, "alice", stdin=b"s3cret pass\ns3cret pass\n")
    assert rc == 0, err
    assert "alice added to" in out
    h = hash_of(users, "alice")
    assert h.startswith("$y$"), h
    assert verifies(h, "s3cret pass")
    assert not verifies(h, "s3cret pas")
    assert stat.S_IMODE(users.stat().st_mode) == 0o640
    assert users.read_text() == f"alice:{h}\n"
    # Nothing left behind next to it, and the password nowhere in it.
    assert sorted(os.listdir(tmp_path)) == ["users"]
    assert b"s3cret" not in users.read_bytes()


def test_change_keeps_other_lines(tmp_path):
    users = tmp_path / "users"
    before = (b"# our users\n\n"
              b"bob:" + SHA512.encode() + b":@example.org\r\n"
              b"alice:" + SHA512.encode() + b":alice@example.org, @example.net\n"
              b"#carol:old\n"
              b"dave:" + SHA512.encode())
    users.write_bytes(before)
    users.chmod(0o600)
    rc, out, err = passwd("--users", users, "alice", stdin=b"new one\nnew one\n")
    assert rc == 0, err
    assert "alice changed in" in out
    after = users.read_bytes()
    lines_before, lines_after = before.split(b"\n"), after.split(b"\n")
    assert len(lines_after) == len(lines_before)
    for i, (a, b) in enumerate(zip(lines_before, lines_after)):
        if i == 3:
            name, h, senders = b.split(b":", 2)
            assert name == b"alice" and h.startswith(b"$y$")
            assert senders == b"alice@example.org, @example.net"
            assert verifies(h.decode(), "new one")
        else:
            assert a == b, (i, a, b)
    # The old file's mode is kept.
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    # A new user goes at the end (after a newline the file lacked);
    # --senders sets the third field.
    rc, out, err = passwd("--users", users, "--senders", "erin@example.org", "erin",
                          stdin=b"e\ne\n")
    assert rc == 0, err
    added = users.read_bytes()
    assert added.startswith(after + b"\n")
    last = added.split(b"\n")[-2]
    assert last.startswith(b"erin:$y$") and last.endswith(b":erin@example.org")
    # --senders on an existing user replaces its field.
    rc, out, err = passwd("--users", users, "--senders", "@example.com", "bob",
                          stdin=b"b\nb\n")
    assert rc == 0, err
    bob = users.read_bytes().split(b"\n")[2]
    assert bob.startswith(b"bob:$y$") and bob.endswith(b":@example.com\r")


def test_refusals(tmp_path):
    users = tmp_path / "users"
    users.write_text(f"bob:{SHA512}\n")
    kept = users.read_bytes()
    rc, _, err = passwd("--users", users, "bob", stdin=b"one\ntwo\n")
    assert rc == 65 and "passwords do not match" in err
    rc, _, err = passwd("--users", users, "bob", stdin=b"\n\n")
    assert rc == 65 and "empty password" in err
    rc, _, err = passwd("--users", users, "bob", stdin=b"only once\n")
    assert rc == 65 and "twice" in err
    rc, _, err = passwd("--users", users, "bob", stdin=b"")
    assert rc == 65
    rc, _, err = passwd("--users", users, "bob", stdin=b"x" * 256 + b"\n" + b"x" * 256 + b"\n")
    assert rc == 65 and "longer than 255" in err
    rc, _, err = passwd("--users", users, "bad name", stdin=b"x\nx\n")
    assert rc == 64
    rc, _, err = passwd("--users", users, "--senders", "nobody", "bob", stdin=b"x\nx\n")
    assert rc == 64 and "--senders" in err
    rc, _, err = passwd("bob", stdin=b"x\nx\n")
    assert rc == 64
    assert users.read_bytes() == kept
    assert sorted(os.listdir(tmp_path)) == ["users"]


def test_clear_text_file_refused(tmp_path):
    users = tmp_path / "users"
    users.write_text(f"# x\nbob:{SHA512}\ncarol:hunter2\n")
    kept = users.read_bytes()
    rc, _, err = passwd("--users", users, "bob", stdin=b"x\nx\n")
    assert rc == 78
    assert f"{users}:3:" in err and "clear text" in err
    users.write_text(f"bob:{SHA512}\nbob:{SHA512}\n")
    rc, _, err = passwd("--users", users, "alice", stdin=b"x\nx\n")
    assert rc == 78 and f"{users}:2:" in err and "given again" in err
    users.write_bytes(kept)
    assert users.read_bytes() == kept


def _pty_run(args, answers, timeout=60):
    """Runs rawmail passwd on a new pty; types each answer after the
    prompt it follows.  Returns (status, everything the terminal showed)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execv(str(rawmail_bin()), [str(rawmail_bin()), "passwd", *args])
        finally:
            os._exit(127)
    shown = b""
    deadline = time.monotonic() + timeout
    pending = list(answers)
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.5)
            if r:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                shown += chunk
            if pending and shown.rstrip().endswith(pending[0][0]):
                os.write(fd, pending[0][1])
                pending.pop(0)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


def test_terminal_no_echo(tmp_path):
    users = tmp_path / "users"
    rc, shown = _pty_run(["--users", str(users), "alice"],
                         [(b"New password for alice:", b"typed-Secret-42\n"),
                          (b"Retype the new password:", b"typed-Secret-42\n")])
    assert rc == 0, shown
    assert "New password for alice:" in shown and "Retype the new password:" in shown
    assert "typed-Secret-42" not in shown, shown
    assert verifies(hash_of(users, "alice"), "typed-Secret-42")
    kept = users.read_bytes()
    rc, shown = _pty_run(["--users", str(users), "alice"],
                         [(b"New password for alice:", b"first-one\n"),
                          (b"Retype the new password:", b"second-one\n")])
    assert rc == 65, shown
    assert "passwords do not match" in shown
    assert "first-one" not in shown and "second-one" not in shown
    assert users.read_bytes() == kept
