"""Durability is shown, not assumed (DESIGN.md, "Durability and group
commit", "Tests"): `rawmail serve` runs under strace, clients send messages
(one at a time, from concurrent threads, to several recipients, one large
enough to be streamed to its file), and the trace must show, for EVERY
"250 2.0.0 Ok: queued as QID" that the smtp process wrote to a client:

  1. the store process wrote each of the message's files (one per recipient
     file, the name carries "Q<qid>") in tmp/;
  2. then a sync that covers the file's data: syncfs on the mail root's
     filesystem, or fsync/fdatasync of that very file;
  3. then renamed the file from tmp/ into new/ (successfully);
  4. then a sync that covers the rename: syncfs again, or fsync/fdatasync
     of that new/ directory;
  5. and only after all of that, by timestamp across processes, the smtp
     process wrote the 250.
A Maildir directory created for the message (mkdir of the mailbox or of
its new/) must also be covered by a sync (syncfs, or fsync of its parent)
before the 250: otherwise a crash could lose the directory entry, and the
file with it.

Within the store process "after" means later in its own trace (line
order); between the store and the smtp process it means a later -ttt
timestamp (the 250 needs the store's answer over a socket, so the order is
causal, not a race).  The release binary is used: strace + ASan is slow.
"""

import json
import os
import re
import subprocess
import threading
from pathlib import Path

import pytest

from helpers import Delivered, SMTPConn, check_delivery, crlf
from robust_util import release_bin, rstart_server  # noqa: F401  (fixture)

SENDER = "sender@client.test"
TRACED = ("fsync,fdatasync,syncfs,sync,rename,renameat,renameat2,link,linkat,mkdir,mkdirat,"
          "openat,write,writev,pwrite64,pwritev,pwritev2,copy_file_range,sendfile,"
          "sendto,sendmsg")
QUEUED = re.compile(r"250 2\.0\.0 Ok: queued as ([0-9A-Za-z]+)")

LINE = re.compile(r"^(\d+\.\d+) (\w+)\((.*)\) += (-?\d+)(?:<(.*)>)?(?: .*)?$")
FD = re.compile(r"^(-?\d+|AT_FDCWD)<((?:TCP|TCPv6|UDP|UDPv6|UNIX-STREAM|UNIX)"
                r":\[[^\]]*\]|[^>]*)>")
STR = r'"((?:[^"\\]|\\.)*)"'
FDARG = r"(-?\d+|AT_FDCWD)(?:<([^>]*)>)?"


def strace_available():
    try:
        return subprocess.run(["strace", "-V"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class Call:
    __slots__ = ("pid", "seq", "t", "name", "args", "ret", "retpath", "fdpath")

    def __init__(self, pid, seq, t, name, args, ret, retpath):
        self.pid, self.seq, self.t, self.name = pid, seq, t, name
        self.args, self.ret, self.retpath = args, ret, retpath
        m = FD.match(args)
        self.fdpath = m.group(2) if m else None

    def __repr__(self):
        return f"[{self.pid} #{self.seq} {self.t:.6f}] {self.name}({self.args[:200]}) = {self.ret}"


def parse_traces(prefix):
    """{pid: [Call...]} from strace -ff -o PREFIX (files PREFIX.PID)."""
    out = {}
    for f in Path(prefix).parent.glob(Path(prefix).name + ".*"):
        pid = int(f.suffix[1:])
        calls = []
        for line in f.read_text(errors="replace").splitlines():
            m = LINE.match(line)
            if not m:
                continue      # signals, exit notices, unfinished calls
            calls.append(Call(pid, len(calls), float(m.group(1)), m.group(2), m.group(3),
                              int(m.group(4)), m.group(5)))
        out[pid] = calls
    return out


def join(base, rel):
    rel = bytes(rel, "utf-8").decode("unicode_escape")
    return os.path.normpath(rel if rel.startswith("/") else os.path.join(base or "", rel))


def rename_paths(c):
    """(from, to) absolute paths of a rename/renameat/renameat2/linkat call."""
    if c.name == "rename":
        m = re.match(STR + ", " + STR, c.args)
        return (join(None, m.group(1)), join(None, m.group(2))) if m else None
    m = re.match(FDARG + ", " + STR + ", " + FDARG + ", " + STR, c.args)
    if not m:
        return None
    return join(m.group(2), m.group(3)), join(m.group(5), m.group(6))


def mkdir_path(c):
    if c.name == "mkdir":
        m = re.match(STR, c.args)
        return join(None, m.group(1)) if m else None
    m = re.match(FDARG + ", " + STR, c.args)
    return join(m.group(2), m.group(3)) if m else None


def written_path(c):
    """The file a data-writing call wrote to."""
    if c.name in ("write", "writev", "pwrite64", "pwritev", "pwritev2"):
        return c.fdpath
    if c.name in ("copy_file_range", "sendfile"):
        m = re.match(r"^-?\d+<[^>]*>, (?:\[\d+\]|NULL), (-?\d+)<([^>]*)>", c.args) \
            if c.name == "copy_file_range" else re.match(r"^(-?\d+)<([^>]*)>", c.args)
        return m.group(2) if m else None
    return None


class Verdict:
    """Every check for one traced run; collects problems instead of failing
    at the first one, so that a report shows all of them."""

    def __init__(self, traces, mailroot):
        self.traces = traces
        self.mailroot = os.path.realpath(mailroot)
        self.problems = []

    def sync_covers(self, c, path, dir_sync):
        """Does successful call c make `path` durable?  syncfs (and sync)
        flush the whole filesystem of the mail root; fsync/fdatasync only
        the inode they are given: the file itself (data) or, for a directory
        entry, the directory that holds it."""
        if c.ret != 0:
            return False
        if c.name == "sync":
            return True
        if c.name == "syncfs":
            return c.fdpath is not None and (c.fdpath == self.mailroot or
                                             c.fdpath.startswith(self.mailroot + "/"))
        if c.name in ("fsync", "fdatasync"):
            target = os.path.dirname(path) if dir_sync else path
            return c.fdpath is not None and os.path.normpath(c.fdpath) == target
        return False


def run_traffic(srv):
    """Sends messages several ways; returns {qid: (message bytes, [rcpts])}."""
    sent = {}
    lock = threading.Lock()
    errors = []

    def transaction(c, rcpts, msg):
        r = c.mail_transaction(SENDER, rcpts, msg)
        assert r.code == 250, f"{rcpts}: {r}"
        m = QUEUED.search(r.lines[0])
        assert m, f"250 without 'queued as': {r}"
        with lock:
            assert m.group(1) not in sent, f"queue id reused: {m.group(1)}"
            sent[m.group(1)] = (msg, list(rcpts))

    def message(tag, size=0):
        body = f"Subject: durability {tag}\n\nmessage {tag}\n".encode()
        if size:
            line = (b"0123456789" * 7 + b"\n")
            body += line * (size // len(line))
        return crlf(body)

    # One at a time, one session each.
    for i, rcpt in enumerate(["user@example.test", "alice@example.test", "bob@example.test"]):
        with SMTPConn(srv.host, srv.port) as c:
            assert c.read_reply().code == 220
            assert c.cmd("EHLO client.test").code == 250
            transaction(c, [rcpt], message(f"seq{i}"))
            c.cmd("QUIT")

    # Several transactions in one session.
    with SMTPConn(srv.host, srv.port) as c:
        assert c.read_reply().code == 220
        assert c.cmd("EHLO client.test").code == 250
        for i in range(3):
            transaction(c, ["carol@example.test"], message(f"same-session{i}"))
        c.cmd("QUIT")

    # Concurrent sessions, some messages to several recipients (distinct
    # mailboxes, and two addresses of one mailbox: one copy there).
    rcpt_sets = [
        ["user@example.test"],
        ["alice@example.test", "bob@example.test"],
        ["carol@example.test", "dave@example.test", "user+tag@example.test"],
        ["user@example.test", "user+other@example.test"],
    ]

    def worker(n):
        try:
            with SMTPConn(srv.host, srv.port) as c:
                assert c.read_reply().code == 220
                assert c.cmd("EHLO t%d.client.test" % n).code == 250
                for j in range(3):
                    transaction(c, rcpt_sets[(n + j) % len(rcpt_sets)], message(f"t{n}m{j}"))
                c.cmd("QUIT")
        except BaseException as e:   # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a client thread hung"
    assert not errors, errors

    # A message larger than the in-memory limit (256 KiB): streamed to its
    # first file as it arrives, then copied to the second recipient's file.
    with SMTPConn(srv.host, srv.port, timeout=30) as c:
        assert c.read_reply().code == 220
        assert c.cmd("EHLO big.client.test").code == 250
        transaction(c, ["alice@example.test", "erin@example.test"],
                    message("big", size=300 * 1024))
        c.cmd("QUIT")
    return sent


def mailbox_of(addr):
    return addr.split("@")[0].split("+")[0].lower()


def check_trace(prefix, mailroot, sent, sync):
    """All the checks of the module docstring on one trace; returns (problems,
    summary line).  Kept apart from the test so that it can be run on a
    doctored trace to see that it catches a missing or misplaced sync."""
    traces = parse_traces(prefix)
    v = Verdict(traces, mailroot)
    mailroot = v.mailroot

    # Who is who: the store is the process that renames into new/; the
    # 250s come from the process that writes to TCP sockets.
    store_pids = {pid for pid, calls in traces.items()
                  for c in calls if c.name in ("rename", "renameat", "renameat2", "linkat")
                  and c.ret == 0 and (rename_paths(c) or ("", ""))[1].find("/new/") >= 0}
    assert len(store_pids) == 1, f"processes that renamed into new/: {store_pids}"
    store_pid = store_pids.pop()
    store = traces[store_pid]

    replies = {}      # qid -> Call of the 250
    for pid, calls in traces.items():
        for c in calls:
            if c.name in ("write", "writev", "sendto", "sendmsg") and c.fdpath \
                    and c.fdpath.startswith("TCP"):
                for m in QUEUED.finditer(c.args):
                    assert m.group(1) not in replies, f"two 250s for {m.group(1)}"
                    replies[m.group(1)] = c
    assert set(replies) == set(sent), (
        f"qids in the trace and qids the clients got differ: trace only "
        f"{sorted(set(replies) - set(sent))}, clients only {sorted(set(sent) - set(replies))}")
    for qid, c in replies.items():
        assert c.pid != store_pid, f"the 250 for {qid} was written by the store process"

    syncs = [c for c in store if c.name in ("fsync", "fdatasync", "syncfs", "sync")]
    renames = [c for c in store if c.name in ("rename", "renameat", "renameat2", "linkat")
               and c.ret == 0]
    writes = [c for c in store if written_path(c)]
    mkdirs = [(c, mkdir_path(c)) for c in store if c.name in ("mkdir", "mkdirat") and c.ret == 0]

    def sync_between(lo_seq, path, dir_sync, reply, hi_seq=None):
        """A covering sync in the store after line lo_seq, before hi_seq (if
        given), and before the reply's timestamp."""
        for s in syncs:
            if s.seq > lo_seq and (hi_seq is None or s.seq < hi_seq) and s.t < reply.t \
                    and v.sync_covers(s, path, dir_sync):
                return s
        return None

    for qid, reply in sorted(replies.items()):
        msg, rcpts = sent[qid]
        expected_files = len({mailbox_of(a) for a in rcpts})   # one copy per mailbox
        mine = [(c, *rename_paths(c)) for c in renames
                if f"Q{qid}" in os.path.basename(rename_paths(c)[0])]
        mine = [(c, src, dst) for c, src, dst in mine if "/new/" in dst]
        if len(mine) != expected_files:
            v.problems.append(f"{qid}: {len(mine)} renames into new/, expected "
                              f"{expected_files} (rcpts {rcpts}): {mine}")
            continue
        for rn, src, dst in mine:
            if not (rn.t < reply.t):
                v.problems.append(f"{qid}: rename {rn} is not before the 250 {reply}")
            if "/tmp/" not in src or os.path.dirname(os.path.dirname(src)) != \
                    os.path.dirname(os.path.dirname(dst)):
                v.problems.append(f"{qid}: rename not from the same Maildir's tmp/: {rn}")
            # (1) + (2): the last write to the tmp file, then a sync of it,
            # both before the rename.
            w = [c for c in writes if written_path(c) == src and c.seq < rn.seq]
            if not w:
                v.problems.append(f"{qid}: no write to {src} before its rename")
                continue
            last = w[-1]
            s1 = sync_between(last.seq, src, False, reply, hi_seq=rn.seq)
            if not s1:
                v.problems.append(f"{qid}: no sync of {src} between its last write {last} "
                                  f"and its rename {rn}")
            # (3) + (4): a sync covering the new/ entry after the rename.
            s2 = sync_between(rn.seq, dst, True, reply)
            if not s2:
                v.problems.append(f"{qid}: no sync of {os.path.dirname(dst)} after the rename "
                                  f"{rn} and before the 250 at {reply.t:.6f}")
            # Directories made on the way: the mailbox and its new/.
            maildir = os.path.dirname(os.path.dirname(dst))
            for d in (maildir, os.path.dirname(dst)):
                made = [c for c, p in mkdirs if p == d and c.seq < rn.seq]
                if made and not sync_between(made[-1].seq, d, True, reply):
                    v.problems.append(f"{qid}: directory {d} created by {made[-1]} is not "
                                      f"covered by a sync before the 250")
            # What is on disk now is what the client sent.
            if not Path(dst).is_file():
                v.problems.append(f"{qid}: {dst} is not in new/ after the test")
            else:
                data = Path(dst).read_bytes()
                given = Delivered(data).original_to
                to = given[0]
                try:
                    assert set(given) <= set(rcpts) and f"/{mailbox_of(to)}/new/" in dst, \
                        f"X-Original-To {given!r} in {dst}, recipients {rcpts}"
                    check_delivery(data, msg, SENDER, to, single_rcpt=len(rcpts) == 1)
                except AssertionError as e:
                    v.problems.append(f"{qid}: stored file differs: {e}")

    # Nothing in new/ that no client was told about.
    told = set(replies)
    for p in Path(mailroot).glob("*/new/*"):
        m = re.search(r"Q([0-9A-Za-z]+?)(?:_\d+)?\.", p.name)
        if not m or m.group(1) not in told:
            v.problems.append(f"file in new/ with no 250: {p}")

    ok_syncs = [s for s in syncs if s.ret == 0]
    nmsg = len(replies)
    batches = sum(1 for s in ok_syncs if s.name == "syncfs") / 2 if sync == "syncfs" else None
    summary = (f"[durability --sync {sync}] messages acknowledged: {nmsg}, files: "
          f"{len(renames)}, successful sync calls in the store: {len(ok_syncs)} "
          f"({', '.join(f'{n}={sum(1 for s in ok_syncs if s.name == n)}' for n in sorted({s.name for s in ok_syncs}))}); "
          f"syncs per message: {len(ok_syncs) / nmsg:.2f}"
          + (f"; batches (syncfs pairs): {batches:.0f}, messages per batch: "
             f"{nmsg / batches:.2f}" if batches else ""))
    return v.problems, summary


@pytest.mark.skipif(not strace_available(), reason="strace is not installed")
@pytest.mark.parametrize("sync", ["syncfs", "fsync"])
def test_every_250_follows_its_syncs(rstart_server, tmp_path, sync):
    prefix = tmp_path / "trace" / "st"
    prefix.parent.mkdir()
    wrap = ["strace", "-f", "-ff", "-ttt", "-yy", "-qq", "-s", "2048", "-e", "signal=none",
            "-e", f"trace={TRACED}", "-o", str(prefix)]
    srv = rstart_server("--sync", sync, "--tls", "no", binary=release_bin(), wrap=wrap)
    sent = run_traffic(srv)
    code = srv.stop()
    assert code == 0, f"rawmail serve under strace exited {code}:\n{srv.log()[-5000:]}"

    # Kept beside the trace, for a look after a failure.
    (tmp_path / "sent.json").write_text(json.dumps(
        {q: [m.decode("latin-1"), r] for q, (m, r) in sent.items()}))
    problems, summary = check_trace(prefix, srv.mailroot, sent, sync)
    print("\n" + summary)
    assert not problems, "durability violations:\n" + "\n".join(problems[:50])
