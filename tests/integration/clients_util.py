"""Real programs (cron, mailx, PHP, git send-email) calling rawmail as
/usr/sbin/sendmail, each inside a private mount and pid namespace that the
test makes (issue 9, "Tests").

In the namespace, and nowhere else:
  - a tmpfs at DIR/fs holds an overlay's upper layer over /etc, so
    /etc/rawmail.conf, /etc/aliases (and for cron /etc/crontab) have the
    test's content; the host's /etc is the untouched lower layer;
  - RAWMAIL_BIN is bind-mounted on /usr/sbin/sendmail (rawmail dispatches
    on argv[0]'s basename); on a machine without that file an overlay over
    /usr/sbin, again with its upper layer on the tmpfs, provides the file
    to mount on;
  - for cron: empty tmpfs over /etc/cron.d, /var/spool/cron and /run (no
    system jobs, no user crontabs, cron's pid file and lock its own), and
    /dev/log (an overlay over /dev) bound to a socket of the test's, so
    cron's syslog lines (the jobs it ran, a mailer's failure) are read.
Everything is gone when the namespace's last process dies: the fixture
kills `unshare` with SIGKILL, and --kill-child takes the namespace's init,
so every process in it (a detached `queue run`, cron and its jobs) dies too.

The program runs under a shell that is the namespace's init and stays
after the program exits, so the delivery the sendmail entry leaves to a
detached `queue run` can finish; its exit status is written to DIR/rc.

Sanitizers: rawmail's reports go to files (ASAN_OPTIONS and UBSAN_OPTIONS
log_path), since the background runner's stderr is /dev/null and cron's
mailer's is cron's; teardown fails the test on any report file.
"""

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from helpers import rawmail_bin

# Runs as the namespace's init: "$1" the test's directory, the rest the
# program and its arguments.
SETUP = r"""
set -eu
D=$1; shift
mount -t tmpfs -o mode=0755 rawmail-test "$D/fs"
mkdir "$D/fs/etc-up" "$D/fs/etc-work"
cp -a "$D/etc/." "$D/fs/etc-up/"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$D/fs/etc-up,workdir=$D/fs/etc-work" /etc
if [ ! -e /usr/sbin/sendmail ]; then
	mkdir "$D/fs/sbin-up" "$D/fs/sbin-work"
	mount -t overlay overlay \
		-o "lowerdir=/usr/sbin,upperdir=$D/fs/sbin-up,workdir=$D/fs/sbin-work" /usr/sbin
	: > /usr/sbin/sendmail
fi
mount --bind "$SENDMAIL_FILE" /usr/sbin/sendmail
if [ -n "${CRON_NS:-}" ]; then
	mount -t tmpfs -o mode=0755 cron-d /etc/cron.d
	mount -t tmpfs -o mode=0755 cron-spool /var/spool/cron
	mount -t tmpfs -o mode=0755 run /run
	# syslog(3) writes to /dev/log: an overlay over /dev (its upper layer
	# on the tmpfs) gives that name to the test's socket.
	mkdir "$D/fs/dev-up" "$D/fs/dev-work"
	mount -t overlay overlay -o "lowerdir=/dev,upperdir=$D/fs/dev-up,workdir=$D/fs/dev-work" /dev
	rm -f /dev/log
	: > /dev/log
	mount --bind "$D/syslog.sock" /dev/log
fi
unset SENDMAIL_FILE CRON_NS
rc=0
"$@" <"$D/stdin" >"$D/stdout" 2>"$D/stderr" || rc=$?
echo "$rc" >"$D/rc.tmp"
mv "$D/rc.tmp" "$D/rc"
# Stay: the namespace, and the delivery started in it, live until the
# test ends it (bounded, should the test's process die).
exec sleep 900
"""

# Stands in for rawmail to record what the program hands to sendmail:
# its arguments, one per line, and its input byte for byte.
CAPTURE = """#!/bin/sh
printf '%s\\n' "$@" >"$CAPTURE_DIR/args"
exec cat >"$CAPTURE_DIR/input"
"""

UNSHARE = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork",
           "--kill-child", "--mount-proc"]


def namespaces_refused():
    """None, or why this kernel (or this user) cannot give a test its own
    mount and pid namespace with an overlay over /etc."""
    try:
        p = subprocess.run(
            [*UNSHARE, "sh", "-c", "d=$(mktemp -d) && mount -t tmpfs t $d && "
             "mkdir $d/u $d/w && mount -t overlay o "
             "-o lowerdir=/etc,upperdir=$d/u,workdir=$d/w /etc && umount /etc"],
            capture_output=True, timeout=30)
    except OSError as e:
        return f"unshare cannot run: {e}"
    if p.returncode != 0:
        return (f"the kernel refuses this user (uid {os.geteuid()}) a private mount+pid "
                f"namespace with an overlay (unshare --mount --pid, mount -t overlay): "
                f"{p.stderr.decode(errors='replace').strip()}")
    return None


class Outcome:
    def __init__(self, rc, out, err):
        self.rc, self.out_bytes, self.err_bytes = rc, out, err
        self.out = out.decode(errors="replace")
        self.err = err.decode(errors="replace")

    def __repr__(self):
        return f"exit {self.rc}\n--- stdout ---\n{self.out}--- stderr ---\n{self.err}"


class Namespace:
    """One program run in a namespace of its own (see the module's text)."""

    def __init__(self, base, etc, argv, stdin=b"", env=None, cron=False, capture=False):
        self.dir = Path(base)
        self.dir.mkdir(parents=True)
        (self.dir / "fs").mkdir()
        (self.dir / "etc").mkdir()
        for name, text in etc.items():
            path = self.dir / "etc" / name
            path.write_bytes(text.encode() if isinstance(text, str) else text)
            path.chmod(0o644)
        (self.dir / "stdin").write_bytes(stdin)
        (self.dir / "setup.sh").write_text(SETUP)
        e = dict(env if env is not None else os.environ)
        if capture:
            (self.dir / "capture").mkdir()
            script = self.dir / "capture.sh"
            script.write_text(CAPTURE)
            script.chmod(0o755)
            e["SENDMAIL_FILE"] = str(script)
            e["CAPTURE_DIR"] = str(self.dir / "capture")
        else:
            e["SENDMAIL_FILE"] = str(rawmail_bin())
        self.syslog_lines = []
        self.syslog = None
        if cron:
            e["CRON_NS"] = "1"
            self.syslog = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.syslog.bind(str(self.dir / "syslog.sock"))
            threading.Thread(target=self._read_syslog, daemon=True).start()
        self.proc = subprocess.Popen(
            [*UNSHARE, "sh", str(self.dir / "setup.sh"), str(self.dir), *[str(a) for a in argv]],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=e, start_new_session=True)

    def _read_syslog(self):
        while True:
            try:
                data = self.syslog.recv(65536)
            except OSError:
                return
            self.syslog_lines.append(data.decode(errors="replace"))

    def finished(self):
        return (self.dir / "rc").exists()

    def setup_failed(self):
        """The namespace's shell exited before the program ran (a mount
        refused): its output, else None."""
        if self.proc.poll() is None or self.finished():
            return None
        return self.proc.stdout.read().decode(errors="replace")

    def wait(self, timeout=60):
        """The program's Outcome once it has exited."""
        deadline = time.monotonic() + timeout
        while not self.finished():
            problem = self.setup_failed()
            if problem is not None:
                raise AssertionError(f"namespace set-up failed ({self.proc.returncode}):\n"
                                     f"{problem}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the program did not exit within {timeout} s")
            time.sleep(0.05)
        return Outcome(int((self.dir / "rc").read_text()), (self.dir / "stdout").read_bytes(),
                       (self.dir / "stderr").read_bytes())

    def captured(self):
        """(argv list, input bytes) the program gave its sendmail (capture=True)."""
        args = (self.dir / "capture" / "args").read_text().splitlines()
        return args, (self.dir / "capture" / "input").read_bytes()

    def close(self):
        """Ends the namespace: SIGKILL to unshare, whose child (the
        namespace's init) --kill-child then kills, and with it every
        process left in the namespace."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.proc.stdout.close()
        if self.syslog is not None:
            self.syslog.close()


@pytest.fixture
def client_ns(tmp_path):
    """Factory: client_ns(etc={name: text}, argv=[...], stdin=b"", env=None,
    cron=False, capture=False) -> Namespace, started (wait() for the
    program's exit).  env: the program's environment (default: the test's,
    with the sanitizers' reports sent to files).  Skips the test when the
    kernel refuses the namespaces.  Teardown ends every namespace and fails
    on a sanitizer report."""
    refused = namespaces_refused()
    if refused:
        pytest.skip(refused)
    started = []
    reports = tmp_path / "sanitizer"
    reports.mkdir()

    def start(etc, argv, stdin=b"", env=None, cron=False, capture=False):
        if isinstance(stdin, str):
            stdin = stdin.encode()
        if env is None:
            env = client_env(tmp_path)
        ns = Namespace(tmp_path / f"ns{len(started)}", etc, argv, stdin, env, cron, capture)
        started.append(ns)
        return ns

    yield start

    for ns in started:
        ns.close()
    found = sorted(reports.iterdir())
    if found:
        text = "".join(f"--- {p} ---\n{p.read_text(errors='replace')}" for p in found)
        pytest.fail(f"sanitizer report from rawmail run by a client:\n{text}", pytrace=False)


def sanitizer_options(tmp_path):
    """ASAN_OPTIONS and UBSAN_OPTIONS writing reports under tmp_path/sanitizer
    (the fixture's teardown reads them)."""
    base = tmp_path / "sanitizer"
    return {"ASAN_OPTIONS": f"abort_on_error=0:detect_leaks=1:log_path={base}/asan",
            "UBSAN_OPTIONS": f"print_stacktrace=1:log_path={base}/ubsan"}


def client_env(tmp_path, **extra):
    """A plain environment for a client program: PATH, a HOME of the test's
    own, a UTF-8 locale, the sanitizers' options; no RAWMAIL_* (programs
    pass rawmail no options: /etc/rawmail.conf gives the settings)."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(home),
           "LANG": "C.UTF-8", "USER": "root", "LOGNAME": "root",
           **sanitizer_options(tmp_path)}
    env.update(extra)
    return env


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.1)


def entry_unlocked(spool, qid):
    """True when no runner holds the entry's lock (the flock on msg/ID that
    a runner keeps while it works on the entry): a flush started while one
    does skips the entry as busy."""
    import fcntl
    try:
        fd = os.open(Path(spool) / "msg" / qid, os.O_RDONLY)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def spool_entries(spool):
    d = Path(spool) / "env"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def split_message(data):
    """(header lines as a list of bytes, one per field with its folded
    lines, body bytes) of a message with LF line ends."""
    head, sep, body = data.partition(b"\n\n")
    assert sep, f"no empty line after the header: {data[:300]!r}"
    fields = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\n" + line
        else:
            fields.append(line)
    return fields, body


def which(program):
    path = shutil.which(program, path="/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
    assert path, f"{program} is not installed: run scripts/deps test"
    return path
