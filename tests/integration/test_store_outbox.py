"""The events outbox (issue 12, "Nothing lost"): with `--mqtt` the store
records one event per stored copy under MAILROOT/.rawmail/outbox, durably
with the commit, before the 250.  The broker here is unreachable
(mqtt://127.0.0.1:1), so nothing is published and every record stays for
the test to read, in the format store/outbox.c documents (read here in
Python, independently of the C parser):

    "@" LEN " " CRC32-HEX LF BODY, BODY = "NAME SP VALUE LF" lines in the
    order id, mailbox, path, from, to*, ip, helo, size, time; values
    percent-encoded (octets outside 0x21..0x7e, and '%').

Skipped until `rawmail serve --help` mentions --mqtt (the lead's flag sets
serve_config.mqtt, which turns the outbox on).
"""

import os
import re
import signal
import smtplib
import subprocess
import time
import zlib
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest

from helpers import DOMAIN, mail_user_args, rawmail_bin
from robust_util import release_bin, rstart_server  # noqa: F401  (fixture)
from test_durability import (TRACED, Verdict, mailbox_of, parse_traces, rename_paths,
                             run_traffic, strace_available, written_path, QUEUED as QUEUED_250)

NAME = re.compile(r"^[0-9a-f]{16}-[1-9][0-9]{0,9}$")
HEADER = re.compile(rb"@([1-9][0-9]{0,7}) ([0-9a-f]{8})\n")
FIELDS = ("id", "mailbox", "path", "from", "to", "ip", "helo", "size", "time")
QUEUED = re.compile(rb"queued as ([0-9A-Za-z]+)")
HELO = "camera-7.local"
BROKER = "mqtt://127.0.0.1:1"    # nothing listens: the events stay in the outbox


def mqtt_args(binary=None):
    out = subprocess.run([str(binary or rawmail_bin()), "serve", "--help"], capture_output=True,
                         text=True, timeout=30)
    if "--mqtt" not in out.stdout + out.stderr:
        pytest.skip("rawmail serve has no --mqtt yet (the outbox is turned on by it)")
    return ["--mqtt", BROKER]


def parse_records(data):
    """The records of one file, each a dict; asserts the file is whole."""
    records, pos = [], 0
    while pos < len(data):
        m = HEADER.match(data, pos)
        assert m, f"no record header at {pos}: {data[pos:pos + 40]!r}"
        length, crc = int(m.group(1)), int(m.group(2), 16)
        body = data[m.end():m.end() + length]
        assert len(body) == length, "record cut short"
        assert zlib.crc32(body) == crc, "record CRC"
        rec = {"to": []}
        order = []
        for line in body.split(b"\n")[:-1]:
            name, _, value = line.partition(b" ")
            assert re.fullmatch(rb"[\x21-\x7e]*", value), line
            name = name.decode()
            order.append(name)
            v = unquote_to_bytes(value).decode("utf-8", "surrogateescape")
            if name == "to":
                rec["to"].append(v)
            else:
                rec[name] = v
        squeezed = [n for i, n in enumerate(order) if n != "to" or order[i - 1] != "to"]
        assert [n for n in squeezed if n != "to"] == [f for f in FIELDS if f != "to"], order
        records.append(rec)
        pos = m.end() + length
    return records


def outbox_records(mailroot, final_only=True):
    """Every record under the outbox, files in name (commit) order."""
    d = Path(mailroot) / ".rawmail" / "outbox"
    assert (d.stat().st_mode & 0o777) == 0o700
    names = sorted(p.name for p in d.iterdir())
    if final_only:
        assert all(NAME.match(n) for n in names), names
    else:
        names = [n for n in names if NAME.match(n.removesuffix(".tmp"))]
    out = []
    for n in names:
        out += parse_records((d / n).read_bytes())
    return out


def send(srv, rcpts, subject):
    msg = (f"From: cam@{DOMAIN}\r\nTo: {', '.join(rcpts)}\r\nSubject: {subject}\r\n\r\n"
           f"motion {subject}\r\n")
    with smtplib.SMTP(srv.host, srv.port, local_hostname=HELO, timeout=30) as s:
        s.ehlo(HELO)
        s.mail(f"cam@{DOMAIN}")
        for r in rcpts:
            code, _ = s.rcpt(r)
            assert code == 250
        code, reply = s.data(msg.encode())
        assert code == 250, reply
    return QUEUED.search(reply).group(1).decode()


def test_outbox_records_match_new(start_server):
    """50 messages to 3 mailboxes: one record per file in new/, one to one,
    in commit order per mailbox, with the envelope, the client and the
    file's size."""
    args = mqtt_args()
    srv = start_server(*args, *mail_user_args())
    boxes = ["alice", "bob", "carol"]
    sent = {b: [] for b in boxes}          # mailbox -> qids in send (= commit) order
    for i in range(50):
        rcpts = [f"{boxes[i % 3]}@{DOMAIN}"]
        if i % 5 == 0:                     # some to two mailboxes, one plus-tagged
            rcpts.append(f"{boxes[(i + 1) % 3]}+tag@{DOMAIN}")
        qid = send(srv, rcpts, f"m{i}")
        for r in rcpts:
            sent[r.split("@")[0].split("+")[0]].append(qid)
    records = outbox_records(srv.mailroot)
    root = Path(srv.mailroot)
    in_new = {str(p.relative_to(root)) for b in boxes for p in (root / b / "new").iterdir()}
    assert sorted(r["path"] for r in records) == sorted(in_new)
    for b in boxes:
        assert [r["id"] for r in records if r["mailbox"] == b] == sent[b]
    for r in records:
        path = root / r["path"]
        assert r["path"].startswith(r["mailbox"] + "/new/")
        assert int(r["size"]) == path.stat().st_size
        assert r["from"] == f"cam@{DOMAIN}"
        assert r["ip"] == "127.0.0.1"
        assert r["helo"] == HELO
        assert all(t.split("@")[0].split("+")[0] == r["mailbox"] for t in r["to"]) and r["to"]
        assert abs(int(r["time"]) - time.time()) < 600


def test_outbox_kill9_after_250(start_server):
    """kill -9 of serve's process group right after a 250: the record is on
    disk, and a server started again on the mail root has it under a final
    name (a NAME.tmp its dead writer left is published at start)."""
    args = mqtt_args()
    srv = start_server(*args, *mail_user_args())
    qid = send(srv, [f"dora@{DOMAIN}"], "before the kill")
    os.killpg(srv.pgid, signal.SIGKILL)
    srv.proc.wait(10)
    deadline = time.monotonic() + 5
    while srv._group_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    srv.log_file.close()
    srv.proc = None
    assert qid in [r["id"] for r in outbox_records(srv.mailroot, final_only=False)]
    again = start_server(*args, *mail_user_args(), mailroot=srv.mailroot)
    qid2 = send(again, [f"dora@{DOMAIN}"], "after the restart")
    ids = [r["id"] for r in outbox_records(again.mailroot)]
    assert ids == [qid, qid2]


@pytest.mark.skipif(not strace_available(), reason="strace is not installed")
@pytest.mark.parametrize("sync", ["syncfs", "fsync"])
def test_outbox_durable_before_250(rstart_server, tmp_path, sync):
    """Shown from an strace of the real server (as test_durability.py does
    for the mail): for every 250, the store wrote the message's records to
    the outbox file while it was NAME.tmp, then a sync covered it (syncfs of
    the mail root's filesystem; or fsync of the file and of the outbox
    directory) before the 250, and only after that sync did it rename the
    file to NAME; one record per stored copy."""
    binary = release_bin()
    args = mqtt_args(binary)
    prefix = tmp_path / "trace" / "st"
    prefix.parent.mkdir()
    wrap = ["strace", "-f", "-ff", "-ttt", "-yy", "-qq", "-s", "2048", "-e", "signal=none",
            "-e", f"trace={TRACED}", "-o", str(prefix)]
    srv = rstart_server("--sync", sync, "--tls", "no", *args, binary=binary, wrap=wrap)
    sent = run_traffic(srv)
    assert srv.stop() == 0, srv.log()[-5000:]

    traces = parse_traces(prefix)
    v = Verdict(traces, srv.mailroot)
    outdir = os.path.join(v.mailroot, ".rawmail", "outbox")
    file_of, copies = {}, {}
    for name in sorted(os.listdir(outdir)):
        assert NAME.match(name), name
        for r in parse_records(Path(outdir, name).read_bytes()):
            file_of[r["id"]] = name
            copies[r["id"]] = copies.get(r["id"], 0) + 1
    replies = {}
    for calls in traces.values():
        for c in calls:
            if c.name in ("write", "writev", "sendto", "sendmsg") and c.fdpath \
                    and c.fdpath.startswith("TCP"):
                for m in QUEUED_250.finditer(c.args):
                    replies[m.group(1)] = c
    assert set(replies) == set(sent)
    store = [c for calls in traces.values() for c in calls
             if c.name in ("renameat", "renameat2") and c.ret == 0
             and (rename_paths(c) or ("", ""))[1].startswith(outdir + "/")]
    assert store, "no outbox rename in the trace"
    store = traces[store[0].pid]
    syncs = [c for c in store if c.name in ("fsync", "fdatasync", "syncfs") and c.ret == 0]
    problems = []
    for qid, reply in sorted(replies.items()):
        want = len({mailbox_of(a) for a in sent[qid][1]})
        if copies.get(qid) != want:
            problems.append(f"{qid}: {copies.get(qid)} records, {want} copies stored")
            continue
        final = os.path.join(outdir, file_of[qid])
        tmp = final + ".tmp"
        w = [c for c in store if written_path(c) == tmp]
        rn = [c for c in store if c.name in ("renameat", "renameat2") and c.ret == 0
              and rename_paths(c) == (tmp, final)]
        if not w or len(rn) != 1:
            problems.append(f"{qid}: writes to {tmp}: {len(w)}, renames to NAME: {len(rn)}")
            continue
        rn = rn[0]
        covering = [s for s in syncs if w[-1].seq < s.seq < rn.seq and s.t < reply.t]
        if sync == "syncfs":
            ok = any(v.sync_covers(s, tmp, False) for s in covering)
        else:
            ok = any(v.sync_covers(s, tmp, False) for s in covering) and \
                any(v.sync_covers(s, tmp, True) for s in covering)
        if not ok:
            problems.append(f"{qid}: no sync covering {tmp} between its write {w[-1]}, "
                            f"its rename {rn} and the 250 at {reply.t:.6f}")
    assert not problems, "\n".join(problems[:30])


def test_outbox_reload_two_stores(start_server):
    """A SIGHUP reload runs two stores at once (the old one drains a
    transaction held in DATA): each writes its own files, neither touches
    the other's, and every copy has its record under a final name."""
    args = mqtt_args()
    srv = start_server(*args, *mail_user_args())
    send(srv, [f"erin@{DOMAIN}"], "before")
    held = srv.session(helo=HELO)
    assert held.cmd(f"MAIL FROM:<cam@{DOMAIN}>").code == 250
    assert held.cmd(f"RCPT TO:<erin@{DOMAIN}>").code == 250
    assert held.cmd("DATA").code == 354
    held.send(b"Subject: held across the reload\r\n\r\nfirst half\r\n")
    srv.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while srv.log().count("event=store_start") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.log().count("event=store_start") == 2, srv.log()[-3000:]
    qids = [send(srv, [f"erin@{DOMAIN}", f"fred@{DOMAIN}"], f"new{i}") for i in range(10)]
    held.send(b"second half\r\n.\r\n")
    r = held.read_reply()
    assert r.code == 250, r
    held.cmd("QUIT")
    held.close()
    qids.append(send(srv, [f"erin@{DOMAIN}"], "after"))
    records = outbox_records(srv.mailroot)
    root = Path(srv.mailroot)
    in_new = {str(p.relative_to(root)) for b in ("erin", "fred") for p in (root / b / "new").iterdir()}
    assert sorted(r["path"] for r in records) == sorted(in_new)
    assert len(records) == 1 + 1 + 2 * 10 + 1
    writers = {n.split("-")[1] for n in os.listdir(root / ".rawmail" / "outbox")}
    assert len(writers) == 2, writers
    # Per mailbox, the new generation's messages in the order they were sent.
    fred = [r["id"] for r in records if r["mailbox"] == "fred"]
    assert fred == qids[:10]
