"""`rawmail send` syncs its spool entry in a thread while the first attempt
runs (issue 13; cli/send_queue.c, enqueue_syncing).  The promise must stay
what a synchronous enqueue gave: nothing is reported "queued", and the
process does not end, before the spool's syncfs returned.  An entry with
nothing left (delivered, or refused for good) is removed with no sync of
its own (queue_spool_lazy_removals): no fsync at all, and an empty spool.
Shown from an strace of the real command (-f: the sync is another thread's
system call), against a real `rawmail serve`, in the three ways a send
ends: delivered, queued after a temporary failure, and refused for good."""

import os
import re
import shutil
import subprocess
import tempfile

import pytest

from helpers import free_port, mailbox_messages, rawmail_bin, sample_message
from send_util import SENDER

LINE = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(.*?)(?:\s+<(\d+\.\d+)>)?$")


def strace_available():
    try:
        return subprocess.run(["strace", "-V"], capture_output=True, timeout=10).returncode == 0
    except OSError:
        return False


def spool_entries(spool):
    return sorted(os.listdir(os.path.join(spool, "env")) + os.listdir(os.path.join(spool, "msg")))


def traced_send(tmp_path, args, message):
    """The send's result, its trace, and what its spool holds after it."""
    out = tmp_path / "strace.out"
    spool = tempfile.mkdtemp(prefix="spool-", dir="/var/tmp")   # a disk, not tmpfs
    for sub in ("tmp", "msg", "env", "corrupt"):   # made (and synced) by a first use
        os.mkdir(os.path.join(spool, sub), 0o700)
    argv = ["strace", "-f", "-ttt", "-T", "-qq", "-s", "200",
            "-e", "trace=syncfs,fsync,fdatasync,write,exit_group",
            "-o", str(out), str(rawmail_bin()), "send", "--dns", "127.0.0.1:1", "--spool", spool,
            *[str(a) for a in args]]
    # LeakSanitizer cannot run under ptrace: an ASan build checks all else.
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    try:
        p = subprocess.run(argv, input=message, capture_output=True, timeout=60, env=env)
        left = spool_entries(spool)
    finally:
        shutil.rmtree(spool, ignore_errors=True)
    return p, out.read_text(), left


def events(trace):
    """(when it ended, what) for each syncfs; (when, what) for each write
    and exit_group (their start is what matters: the report, the end)."""
    syncs, others, started = [], [], {}
    for line in trace.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        pid, ts, call, dur = m.group(1), float(m.group(2)), m.group(3), m.group(4)
        if call.startswith("syncfs(") and "<unfinished" in call:
            started[pid] = ts
        elif "<... syncfs resumed>" in call:
            syncs.append((started.pop(pid) + float(dur or 0), call))
        elif call.startswith("syncfs("):
            syncs.append((ts + float(dur or 0), call))
        elif call.startswith(("write(", "exit_group(")):
            others.append((ts, call))
    return syncs, others


def check_order(trace, said):
    syncs, others = events(trace)
    assert syncs, f"no syncfs traced:\n{trace[-3000:]}"
    assert all(c.rstrip().endswith("= 0") or " = 0 " in c for _, c in syncs), syncs
    synced = max(t for t, _ in syncs)
    report = [t for t, c in others if c.startswith("write(2,") and said in c]
    assert report, f"no write of {said!r} on stderr:\n{trace[-3000:]}"
    assert synced <= report[0], (f"{said!r} was written {synced - report[0]:.6f} s before "
                                 f"the spool's syncfs returned:\n{trace[-3000:]}")
    ends = [t for t, c in others if c.startswith("exit_group(")]
    assert ends and synced <= ends[-1], trace[-3000:]


FSYNCS = re.compile(r"^\d+\s+\d+\.\d+\s+(?:<\.\.\. )?(fsync|fdatasync)\b", re.M)


def check_removed_lazily(trace, said, left):
    """Nothing stays queued: the entry was synced while the attempt ran
    (the process ended after that sync), then removed with no sync of its
    own, and the spool is empty."""
    syncs, others = events(trace)
    assert syncs and all(" = 0" in c for _, c in syncs), trace[-3000:]
    assert [c for t, c in others if c.startswith("write(2,") and said in c], trace[-3000:]
    ends = [t for t, c in others if c.startswith("exit_group(")]
    assert ends and max(t for t, _ in syncs) <= ends[-1], trace[-3000:]
    assert not FSYNCS.findall(trace), f"the removal was synced:\n{trace[-3000:]}"
    assert left == [], f"the spool still holds {left}"


@pytest.mark.skipif(not strace_available(), reason="strace is not installed")
def test_queued_only_after_the_sync(start_server, tmp_path):
    port = free_port()
    start_server("--tls", "no", listen=[f"127.0.0.1:{port}"])
    p, trace, left = traced_send(tmp_path, ["-f", SENDER, "--port", port, "--tls", "require",
                                            "user@[127.0.0.1]"], sample_message())
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 75 and "queued as" in err and "not queued" not in err, err
    check_order(trace, "queued as")
    assert len(left) == 2, f"the queued entry's env/ and msg/ files: {left}"


@pytest.mark.skipif(not strace_available(), reason="strace is not installed")
def test_delivered_and_removed_without_a_sync(start_server, tmp_path):
    port = free_port()
    srv = start_server(listen=[f"127.0.0.1:{port}"])
    p, trace, left = traced_send(tmp_path, ["-f", SENDER, "--port", port, "user@[127.0.0.1]"],
                                 sample_message())
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 0 and "delivered to" in err, err
    assert len(mailbox_messages(srv.mailroot, "user", wait=2)) == 1
    check_removed_lazily(trace, "delivered to", left)


@pytest.mark.skipif(not strace_available(), reason="strace is not installed")
def test_refused_for_good_and_removed_without_a_sync(start_server, tmp_path):
    port = free_port()
    start_server("--mailbox", "user", listen=[f"127.0.0.1:{port}"])
    p, trace, left = traced_send(tmp_path, ["-f", SENDER, "--port", port, "other@[127.0.0.1]"],
                                 sample_message())
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 69 and "550" in err, err
    check_removed_lazily(trace, "refused (permanent)", left)
