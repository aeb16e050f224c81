"""Running `rawmail send` (and its sendmail link) in the integration tests.

RAWMAIL_BIN selects the binary (default build-asan/rawmail: ASan + UBSan);
every run fails the test on a sanitizer report in its stderr.  Nothing here
talks to the system resolver: tests pass --dns with their NSD's address, or
only use address literals (which never touch DNS).
"""

import atexit
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from helpers import SANITIZER_MARKERS, rawmail_bin

SENDER = "alice@client.test"

# Every run queues into a spool of its own under this directory (never
# the user's default spool, never /var/spool/rawmail): a test that looks
# at the queue passes its own --spool.
_SPOOLS = tempfile.mkdtemp(prefix="rawmail-test-spools-")
atexit.register(shutil.rmtree, _SPOOLS, True)


def fresh_spool():
    return tempfile.mkdtemp(dir=_SPOOLS)
EXIT = {"ok": 0, "usage": 64, "dataerr": 65, "noinput": 66, "unavailable": 69,
        "tempfail": 75}


class Sent:
    """The outcome of one run: exit status, stdout, stderr, elapsed seconds."""

    def __init__(self, p, elapsed):
        self.rc = p.returncode
        self.out_bytes, self.err_bytes = p.stdout, p.stderr   # as written
        self.out = p.stdout.decode(errors="replace")
        self.err = p.stderr.decode(errors="replace")
        self.elapsed = elapsed

    def __repr__(self):
        return (f"exit {self.rc} after {self.elapsed:.2f} s\n--- stdout ---\n{self.out}"
                f"--- stderr ---\n{self.err}")

    def result(self, rcpt):
        """The result block of one recipient: its line and the indented
        lines after it (reply lines, cause, fix)."""
        lines = self.err.splitlines()
        for i, line in enumerate(lines):
            if line.startswith(rcpt + ": "):
                block = [line]
                for nxt in lines[i + 1:]:
                    if not nxt.startswith("  "):
                        break
                    block.append(nxt)
                return "\n".join(block)
        raise AssertionError(f"no result line for {rcpt}\n{self!r}")

    def transcript(self):
        """The -v lines ("S> ...", "C> ...", "-- ...")."""
        return [l for l in self.err.splitlines() if re.match(r"(S|C)> |-- ", l)]

    def commands(self):
        return [l[3:] for l in self.err.splitlines() if l.startswith("C> ")]


def send(args, message=b"", timeout=60, argv0=None, env=None, expect=None, cwd=None,
         hostname=None, dns_guard=True):
    """Runs `rawmail send ARGS` (or, with argv0="sendmail", the binary
    through a link of that name, ARGS as sendmail's) with message on stdin.
    hostname: run it in a UTS namespace of its own with that host name
    (unshare -u, as root), for what depends on the machine's name.
    dns_guard=False: no --dns added (the test's own settings file names
    its resolver)."""
    if isinstance(message, str):
        message = message.encode()
    binary = str(rawmail_bin())
    # This machine's resolver is not on loopback and tests must never ask
    # it: a run that names no --dns gets a loopback port where nothing
    # answers (queries fail at once), so a stray domain cannot leak out.
    if dns_guard and not any(str(a).startswith("--dns") for a in args):
        args = ["--dns", "127.0.0.1:1", *args]
    if not any(str(a).startswith("--spool") for a in args):
        args = ["--spool", fresh_spool(), *args]
    if argv0 is None:
        argv = [binary, "send", *[str(a) for a in args]]
    else:
        link = Path(cwd or "/tmp") / argv0
        if not link.exists():
            link.symlink_to(binary)
        argv = [str(link), *[str(a) for a in args]]
    if hostname is not None:
        argv = ["unshare", "-u", "sh", "-c", 'hostname "$0" && exec "$@"', hostname, *argv]
    e = dict(os.environ)
    e.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
    e.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    if env:
        e.update(env)
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, input=message, capture_output=True, timeout=timeout, env=e,
                           cwd=cwd)
    except subprocess.TimeoutExpired as ex:
        raise AssertionError(f"rawmail send hung for {timeout} s: {ex.stdout!r} {ex.stderr!r}")
    s = Sent(p, time.monotonic() - t0)
    for mark in SANITIZER_MARKERS:
        assert mark not in s.err, s
    if expect is not None:
        want = EXIT.get(expect, expect)
        assert s.rc == want, s
    return s
