"""The outgoing queue (issue 9): rawmail send queues before its first
attempt, `rawmail queue run` retries on the schedule and bounces, the
sendmail entry returns at once and attempts in the background.  Real peers
on loopback: scripted ones (peers.py) on 127.0.0.2 and a `rawmail serve` on
127.0.0.1 as the bounce recipient, all on one port number (the queue's
--port applies to every destination).  Address literals only: no DNS.
"""

import email
import email.policy
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from helpers import SANITIZER_MARKERS, Delivered, free_port, mailbox_messages, rawmail_bin
from peers import ScriptedPeer, ehlo_ok
from robust_util import mount_tmpfs  # noqa: F401  (fixture)
from send_util import send

PEER = "127.0.0.2"


def free_port_both():
    """A port free on 127.0.0.1 and on 127.0.0.2."""
    import socket
    for _ in range(50):
        p = free_port()
        try:
            s = socket.socket()
            s.bind((PEER, p))
            s.close()
            return p
        except OSError:
            continue
    raise AssertionError("no port free on both addresses")


def queue_cmd(spool, port, *args, sub="run"):
    return [str(rawmail_bin()), "queue", sub, "--spool", str(spool), "--port", str(port),
            "--dns", "127.0.0.1:1", "--retry-schedule", "1s", *[str(a) for a in args]]


def env():
    e = dict(os.environ)
    e.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
    return e


def queue_run(spool, port, *args, sub="run", expect=0, timeout=60):
    p = subprocess.run(queue_cmd(spool, port, *args, sub=sub), capture_output=True,
                       timeout=timeout, env=env())
    err = p.stderr.decode(errors="replace")
    for mark in SANITIZER_MARKERS:
        assert mark not in err, err
    assert p.returncode == expect, (p.returncode, err)
    return err


def entries(spool):
    d = Path(spool) / "env"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def queued_id(s):
    m = re.search(r"queued as ([A-Za-z0-9_-]+)", s.err)
    assert m, s
    return m.group(1)


def message(subject, mid=None):
    mid = mid or f"<{subject.replace(' ', '.')}@client.test>"
    return (f"From: alice@[127.0.0.1]\nTo: bob@[{PEER}]\nSubject: {subject}\n"
            f"Message-ID: {mid}\n\nbody of {subject}\n")


def first_attempt_queued(spool, port, rcpt=f"bob@[{PEER}]", sender="alice@[127.0.0.1]",
                         subject="queued"):
    """rawmail send to a port where nothing listens: exit 75, queued."""
    s = send(["--spool", spool, "--port", port, "--retry-schedule", "1s", "-f", sender, rcpt],
             message(subject), expect="tempfail")
    assert "queued as" in s.err, s
    return queued_id(s)


def wait_due():
    # --retry-schedule 1s: due a second after the last attempt.
    time.sleep(1.2)


def ok(line):
    """A peer that takes every message."""
    return ehlo_ok(line, extra=lambda l: b"250 2.0.0 taken\r\n" if l == b"<dot>"
                   else b"500 what\r\n")


def rcpt_script(replies):
    """A peer whose n-th connection answers RCPT with replies[n]."""
    def script(line, conn):
        if line.startswith(b"RCPT"):
            reply = replies[min(conn.index, len(replies) - 1)]
            conn.state["refused"] = not reply.startswith(b"2")
            return reply
        if line == b"DATA" and conn.state.get("refused"):
            return b"554 5.5.1 no valid recipients\r\n"    # as a real server answers
        return ok(line)
    return script


def data_count(peer):
    return sum(1 for c in peer.conns for cmd in c.commands if cmd == b"<dot>")


def test_greylisting_451_twice_then_250(tmp_path):
    port = free_port_both()
    spool = tmp_path / "spool"
    peer = ScriptedPeer(rcpt_script([b"451 4.7.1 greylisted, try again\r\n",
                                     b"451 4.7.1 greylisted, try again\r\n",
                                     b"250 2.1.5 ok\r\n"]),
                        host=PEER, port=port, connections=3, with_conn=True)
    try:
        # The first retry 3 s later: room for a run before it is due.
        s = send(["--spool", spool, "--port", port, "--retry-schedule", "3s", "-f",
                  "alice@client.test", f"bob@[{PEER}]"], message("grey"), expect="tempfail")
        qid = queued_id(s)
        assert "451 4.7.1 greylisted" in s.err
        assert entries(spool) == [qid]
        # Not due yet: a run does nothing.
        err = queue_run(spool, port)
        assert "attempted=0" in err, err
        time.sleep(3.2)
        err = queue_run(spool, port)
        assert f"id={qid}" in err and "result=deferred attempts=2" in err, err
        assert entries(spool) == [qid]
        wait_due()
        err = queue_run(spool, port)
        assert "result=delivered" in err and f"event=removed id={qid}" in err, err
        assert entries(spool) == []
        assert list((spool / "msg").iterdir()) == []
    finally:
        peer.close()
    assert len(peer.conns) == 3
    assert data_count(peer) == 1


def test_451_then_550_bounces_to_the_sender(tmp_path, start_server):
    port = free_port_both()
    spool = tmp_path / "spool"
    srv = start_server(listen=[f"127.0.0.1:{port}"])
    peer = ScriptedPeer(rcpt_script([b"451 4.3.0 try later\r\n",
                                     b"550-5.1.1 no such user here\r\n550 5.1.1 really\r\n"]),
                        host=PEER, port=port, connections=2, with_conn=True)
    try:
        s = send(["--spool", spool, "--port", port, "--retry-schedule", "1s", "-f",
                  "alice@[127.0.0.1]", f"bob@[{PEER}]"], message("to bounce"),
                 expect="tempfail")
        qid = queued_id(s)
        wait_due()
        err = queue_run(spool, port)
        assert f"id={qid}" in err and "result=bounced" in err, err
        assert "event=bounce" in err, err
        # The DSN went out in the same pass, and both entries are gone.
        assert entries(spool) == [], err
    finally:
        peer.close()
    [data] = mailbox_messages(srv.mailroot, "alice", wait=5)
    d = Delivered(data)
    assert d.return_path == "<>"
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert msg["Auto-Submitted"] == "auto-replied"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == [
        "text/plain", "message/delivery-status", "text/rfc822-headers"]
    status = parts[1].as_string()
    assert f"Final-Recipient: rfc822; bob@[{PEER}]" in status, status
    assert "Action: failed" in status and "Status: 5.1.1" in status, status
    assert "no such user here" in status and "really" in status, status
    assert "Subject: to bounce" in parts[2].as_string()


def test_null_sender_failure_is_not_bounced(tmp_path):
    port = free_port_both()
    spool = tmp_path / "spool"
    peer = ScriptedPeer(rcpt_script([b"451 4.3.0 later\r\n", b"550 5.1.1 no\r\n"]),
                        host=PEER, port=port, connections=2, with_conn=True)
    try:
        s = send(["--spool", spool, "--port", port, "--retry-schedule", "1s", "-f", "",
                  f"bob@[{PEER}]"], message("null sender"), expect="tempfail")
        qid = queued_id(s)
        wait_due()
        err = queue_run(spool, port)
        assert f"id={qid}" in err and "result=failed" in err, err
        assert "event=bounce" not in err
        assert entries(spool) == []
    finally:
        peer.close()


def test_destination_down_then_up(tmp_path):
    port = free_port_both()
    spool = tmp_path / "spool"
    qid = first_attempt_queued(spool, port, sender="alice@client.test")
    wait_due()
    err = queue_run(spool, port)
    assert "result=deferred attempts=2" in err, err
    peer = ScriptedPeer(ok, host=PEER, port=port)
    try:
        wait_due()
        err = queue_run(spool, port)
        assert f"id={qid}" in err and "result=delivered" in err, err
    finally:
        peer.close()
    assert data_count(peer) == 1
    assert entries(spool) == []


def test_permanent_failure_at_send_is_reported_not_bounced(tmp_path):
    port = free_port_both()
    spool = tmp_path / "spool"
    peer = ScriptedPeer(rcpt_script([b"550 5.1.1 no such user\r\n"]), host=PEER, port=port,
                        with_conn=True)
    try:
        s = send(["--spool", spool, "--port", port, "-f", "alice@client.test",
                  f"bob@[{PEER}]"], message("perm"), expect="unavailable")
    finally:
        peer.close()
    assert "550 5.1.1 no such user" in s.err and "queued" not in s.err, s
    assert entries(spool) == [] and list((spool / "msg").iterdir()) == []


def test_no_queue_is_try_once(tmp_path):
    port = free_port_both()
    spool = tmp_path / "spool"
    s = send(["--spool", spool, "--no-queue", "--port", port, f"bob@[{PEER}]"],
             message("once"), expect="tempfail")
    assert "not delivered and not queued" in s.err and "queued as" not in s.err, s
    assert entries(spool) == []


def test_queue_run_only_due_flush_everything(tmp_path):
    port = free_port_both()
    spool = tmp_path / "spool"
    s = send(["--spool", spool, "--port", port, "-f", "alice@client.test", f"bob@[{PEER}]"],
             message("flush me"), expect="tempfail")   # default schedule: next in 5 min
    qid = queued_id(s)
    peer = ScriptedPeer(ok, host=PEER, port=port)
    try:
        err = queue_run(spool, port)
        assert "attempted=0" in err and entries(spool) == [qid], err
        # sendmail -q is the flush.
        s = send(["--spool", spool, "--port", port, "-q"], b"", argv0="sendmail", cwd=tmp_path,
                 expect="ok")
        assert f"id={qid}" in s.err and "result=delivered" in s.err, s
    finally:
        peer.close()
    assert data_count(peer) == 1 and entries(spool) == []


def test_sendmail_returns_at_once_and_delivers_in_the_background(tmp_path):
    port = free_port_both()
    spool = tmp_path / "spool"
    delay = 3.0

    def slow_greeting(conn):
        time.sleep(delay)
        return b"220 slow.test ESMTP\r\n"

    peer = ScriptedPeer(ok, greeting=slow_greeting, host=PEER, port=port)
    try:
        s = send(["--spool", spool, "--port", port, "-i", "-f", "alice@client.test",
                  f"bob@[{PEER}]"], message("background"), argv0="sendmail", cwd=tmp_path,
                 expect="ok")
        assert s.err == "" and s.out == "", s
        # Queued durably, then returned: far less than the peer's delay.
        # (The issue suggests 200 ms; an ASan build on a shared machine
        # gets a wider margin.)
        assert s.elapsed < 1.0, s.elapsed
        deadline = time.monotonic() + 30
        while (data_count(peer) == 0 or entries(spool)) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        peer.close()
    assert data_count(peer) == 1
    assert entries(spool) == []
    assert b"body of background" in bytes(peer.conns[0].body)


def test_runner_killed_during_delivery_next_run_delivers(tmp_path):
    port = free_port_both()
    spool = tmp_path / "spool"
    qid = first_attempt_queued(spool, port, sender="alice@client.test")

    def script(line, conn):
        if line == b"<dot>" and conn.index == 0:
            return b""      # never answer the final dot: the runner waits
        return ok(line)

    peer = ScriptedPeer(script, host=PEER, port=port, connections=2, with_conn=True)
    try:
        wait_due()
        p = subprocess.Popen(queue_cmd(spool, port), stderr=subprocess.DEVNULL, env=env(),
                             start_new_session=True)
        deadline = time.monotonic() + 20
        while data_count(peer) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert data_count(peer) == 1
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(10)
        assert entries(spool) == [qid]
        err = queue_run(spool, port)   # the lock went with the killed runner
        assert f"id={qid}" in err and "result=delivered" in err, err
    finally:
        peer.close()
    assert data_count(peer) == 2     # at least once: the cut one and this one
    assert entries(spool) == []


def test_two_runners_fifty_messages_each_delivered_once(tmp_path, start_server):
    port = free_port_both()
    dead = free_port_both()
    spool = tmp_path / "spool"
    srv = start_server(listen=[f"127.0.0.1:{port}"])
    for i in range(50):
        send(["--spool", spool, "--port", dead, "--retry-schedule", "1s", "-f",
              "alice@client.test", "bob@[127.0.0.1]"], message(f"m{i}", f"<m{i}@client.test>"),
             expect="tempfail")
    assert len(entries(spool)) == 50
    wait_due()
    runners = [subprocess.Popen(queue_cmd(spool, port), stderr=subprocess.PIPE, env=env())
               for _ in range(2)]
    errs = [r.communicate(timeout=120)[1].decode(errors="replace") for r in runners]
    for r, err in zip(runners, errs):
        assert r.returncode == 0, err
        for mark in SANITIZER_MARKERS:
            assert mark not in err, err
    msgs = mailbox_messages(srv.mailroot, "bob", wait=5)
    ids = sorted(re.search(rb"Message-ID: <(m\d+)@", m).group(1).decode() for m in msgs)
    assert ids == sorted(f"m{i}" for i in range(50)), ids
    assert entries(spool) == []
    delivered = [len(re.findall("result=delivered", e)) for e in errs]
    assert sum(delivered) == 50, delivered


def test_corrupt_entries_set_aside_others_delivered(tmp_path):
    port = free_port_both()
    spool = tmp_path / "spool"
    ids = [first_attempt_queued(spool, port, sender="alice@client.test", subject=f"c{i}")
           for i in range(3)]
    cut, garbage, good = ids
    m = spool / "msg" / cut
    data = m.read_bytes()
    m.write_bytes(data[:len(data) // 2])
    (spool / "env" / garbage).write_bytes(b"\x00\xffnot an envelope\n" * 10)
    peer = ScriptedPeer(ok, host=PEER, port=port)
    try:
        wait_due()
        err = queue_run(spool, port)
    finally:
        peer.close()
    assert re.search(rf"event=corrupt id={cut} .*octets", err), err
    assert re.search(rf"event=corrupt id={garbage} ", err), err
    assert f"id={good} rcpt=bob@[{PEER}] result=delivered" in err, err
    assert data_count(peer) == 1
    assert entries(spool) == []
    aside = sorted(p.name for p in (spool / "corrupt").iterdir())
    assert aside == sorted([f"{cut}.env", f"{cut}.msg", f"{garbage}.env", f"{garbage}.msg"])


@pytest.mark.parametrize("argv0", [None, "sendmail"])
def test_full_spool_at_enqueue_is_75_and_nothing_sent(tmp_path, mount_tmpfs, argv0):  # noqa: F811
    fs = mount_tmpfs("256k")
    spool = fs.path / "spool"
    port = free_port_both()
    peer = ScriptedPeer(ok, host=PEER, port=port, accept_timeout=2)
    try:
        big = "Subject: big\n\n" + ("y" * 76 + "\n") * 8000     # ~600 KiB: never fits
        s = send(["--spool", spool, "--port", port, *(["-i"] if argv0 else []), "-f",
                  "alice@client.test", f"bob@[{PEER}]"], big, argv0=argv0, cwd=tmp_path,
                 expect="tempfail")
    finally:
        peer.close()
    assert "could not be queued" in s.err and "No space left on device" in s.err, s
    for sub in ("tmp", "msg", "env"):
        assert os.listdir(spool / sub) == [], sub
    assert peer.conns == []       # not queued: not sent either


def test_expired_after_max_lifetime_bounces_with_4_4_7(tmp_path, start_server):
    port = free_port_both()
    spool = tmp_path / "spool"
    srv = start_server(listen=[f"127.0.0.1:{port}"])
    peer = ScriptedPeer(rcpt_script([b"451 4.7.1 still greylisted\r\n"]), host=PEER, port=port,
                        connections=2, with_conn=True)
    try:
        s = send(["--spool", spool, "--port", port, "--retry-schedule", "1s", "-f",
                  "alice@[127.0.0.1]", f"bob@[{PEER}]"], message("expires"),
                 expect="tempfail")
        qid = queued_id(s)
        time.sleep(2.2)
        err = queue_run(spool, port, "--max-queue-lifetime", "2s")
        assert f"id={qid}" in err and "result=bounced" in err, err
        assert entries(spool) == [], err
    finally:
        peer.close()
    [data] = mailbox_messages(srv.mailroot, "alice", wait=5)
    msg = email.message_from_bytes(data, policy=email.policy.default)
    status = list(msg.iter_parts())[1].as_string()
    assert "Status: 4.4.7" in status and "Action: failed" in status, status
    assert "still greylisted" in status, status


def test_dry_run_queues_nothing(tmp_path):
    spool = tmp_path / "spool"
    send(["--spool", spool, "--dry-run", "bob@[127.0.0.2]"], message("dry"), expect="ok")
    assert entries(spool) == []


def test_background_attempt_keeps_none_of_the_callers_descriptors(tmp_path):
    """A caller that reads until EOF on a descriptor it passed (a pipe other
    than stdout) gets its EOF when sendmail exits, not after the delivery."""
    port = free_port_both()
    spool = tmp_path / "spool"

    def slow_greeting(conn):
        time.sleep(3)
        return b"220 slow.test ESMTP\r\n"

    peer = ScriptedPeer(ok, greeting=slow_greeting, host=PEER, port=port)
    link = tmp_path / "sendmail"
    link.symlink_to(rawmail_bin())
    r, w = os.pipe()
    try:
        t0 = time.monotonic()
        p = subprocess.Popen([str(link), "--spool", str(spool), "--dns", "127.0.0.1:1", "--port",
                              str(port), "-i", "-f", "alice@client.test", f"bob@[{PEER}]"],
                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, pass_fds=[w], env=env())
        os.close(w)
        p.communicate(message("fds").encode(), timeout=30)
        assert p.returncode == 0
        assert os.read(r, 1) == b""            # EOF: nobody else holds it
        assert time.monotonic() - t0 < 2.0
        deadline = time.monotonic() + 30
        while entries(spool) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert entries(spool) == []
    finally:
        os.close(r)
        peer.close()
    assert data_count(peer) == 1


def test_delay_warning_once(tmp_path, start_server):
    port = free_port_both()
    spool = tmp_path / "spool"
    srv = start_server(listen=[f"127.0.0.1:{port}"])
    peer = ScriptedPeer(rcpt_script([b"451 4.7.1 come back later\r\n"]), host=PEER, port=port,
                        connections=3, with_conn=True)
    try:
        s = send(["--spool", spool, "--port", port, "--retry-schedule", "1s", "-f",
                  "alice@[127.0.0.1]", f"bob@[{PEER}]"], message("late"), expect="tempfail")
        qid = queued_id(s)
        wait_due()
        err = queue_run(spool, port, "--delay-warning", "1s")
        assert "event=delay-warning" in err and "result=deferred" in err, err
        assert entries(spool) == [qid], err      # the warning went out, the message stays
        wait_due()
        err = queue_run(spool, port, "--delay-warning", "1s")
        assert "event=delay-warning" not in err, err   # once
    finally:
        peer.close()
    [data] = mailbox_messages(srv.mailroot, "alice", wait=5)
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["Subject"] == "Delayed Mail (still being retried)"
    status = list(msg.iter_parts())[1].as_string()
    assert "Action: delayed" in status and f"bob@[{PEER}]" in status, status
    assert "come back later" in status and "Will-Retry-Until:" in status, status


def test_pass_summary_counts_seen_due_and_outcomes(tmp_path):
    """The pass's summary says what a sysadmin needs: entries seen, due,
    attempted, recipients delivered/deferred/failed, bounces queued, set
    aside, busy, removed, errors; the same words for run and flush."""
    from queue_util import write_entry
    port = free_port_both()
    spool = tmp_path / "spool"
    later = int(time.time()) + 3600
    write_entry(spool, "06B154E07658CE179A7A70", [{"addr": f"bob@[{PEER}]"}])
    write_entry(spool, "06B154E0765906179B7A70", [{"addr": f"carol@[{PEER}]", "next": later,
                                                   "attempts": 1}])
    write_entry(spool, "06B154E076591F179C7A70", [{"addr": f"dave@[{PEER}]", "next": later,
                                                   "attempts": 1}])
    (spool / "env" / "06B154E076593A179D7A70").write_text("garbage\n")
    (spool / "msg" / "06B154E076593A179D7A70").write_text("x")
    peer = ScriptedPeer(ok, host=PEER, port=port, connections=3, accept_timeout=30)
    try:
        err = queue_run(spool, port)
        line = [l for l in err.splitlines() if "event=pass" in l][-1]
        assert ("seen=4 due=2 attempted=1 delivered=1 deferred=0 failed=0 bounces=0 "
                "set_aside=1 busy=0 removed=1 errors=0") in line, err
        err = queue_run(spool, port, sub="flush")
        line = [l for l in err.splitlines() if "event=pass" in l][-1]
        assert "seen=2 due=2 attempted=2 delivered=2 deferred=0" in line, err
    finally:
        peer.close()


class ConcurrentSlowPeer:
    """Any number of connections at once, each in a thread; MAIL, RCPT and
    DATA answered at once, the final dot only after `delay` seconds.
    Records when each MAIL FROM arrived (monotonic) and how many messages
    it took (250 after the dot)."""

    def __init__(self, host, port, delay):
        import socket
        import threading
        self.delay = delay
        self.mails = []
        self.taken = 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import threading
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        f = c.makefile("rb")
        try:
            c.sendall(b"220 slow.test ESMTP\r\n")
            in_data = False
            for line in f:
                line = line.rstrip(b"\r\n")
                if in_data:
                    if line == b".":
                        in_data = False
                        time.sleep(self.delay)
                        c.sendall(b"250 2.0.0 taken\r\n")
                        with self.lock:
                            self.taken += 1
                    continue
                if line.startswith(b"EHLO"):
                    c.sendall(b"250-slow.test\r\n250 PIPELINING\r\n")
                elif line.startswith(b"MAIL"):
                    with self.lock:
                        self.mails.append(time.monotonic())
                    c.sendall(b"250 2.1.0 ok\r\n")
                elif line.startswith(b"RCPT") or line == b"RSET":
                    c.sendall(b"250 2.1.5 ok\r\n")
                elif line == b"DATA":
                    in_data = True
                    c.sendall(b"354 go\r\n")
                elif line == b"QUIT":
                    c.sendall(b"221 bye\r\n")
                    return
                else:
                    c.sendall(b"500 what\r\n")
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        import socket
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)   # wakes the accept
        except OSError:
            pass
        self.sock.close()


@pytest.mark.parametrize("sub", ["run", "flush"])
def test_sigterm_stops_starting_and_loses_nothing(tmp_path, sub):
    """SIGTERM mid-pass with a slow peer (its 250 after the dot takes 3 s):
    the deliveries in flight finish, nothing starts after the signal, the
    runner exits 0 promptly, and every message is delivered or still
    queued (the next run delivers the rest exactly once)."""
    from queue_util import write_entry
    port = free_port_both()
    spool = tmp_path / "spool"
    ids = [write_entry(spool, f"06B154E07658CE179A7A{i:02d}", [{"addr": f"u{i}@[{PEER}]"}])
           for i in range(12)]
    peer = ConcurrentSlowPeer(PEER, port, 3)
    try:
        p = subprocess.Popen(queue_cmd(spool, port, sub=sub), stderr=subprocess.PIPE, env=env())
        deadline = time.monotonic() + 20
        while len(peer.mails) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        started = len(peer.mails)
        assert started >= 1, "no delivery began"
        time.sleep(0.3)
        t_term = time.monotonic()
        started = len(peer.mails)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
        elapsed = time.monotonic() - t_term
        err = err.decode(errors="replace")
        for mark in SANITIZER_MARKERS:
            assert mark not in err, err
        assert p.returncode == 0, (p.returncode, err)
        # Nothing began after the signal; the runner waited only for the
        # 250s of what was in flight (3 s), not for the rest of the queue.
        assert len(peer.mails) == started, (started, peer.mails, err)
        assert all(t < t_term for t in peer.mails), err
        assert elapsed < 10, (elapsed, err)
        left = entries(spool)
        assert peer.taken + len(left) == len(ids), (peer.taken, left, err)
        assert len(left) > 0, err
    finally:
        peer.close()
    # The next run delivers what was left, each once.
    taken_before = peer.taken
    peer = ConcurrentSlowPeer(PEER, port, 0)
    try:
        queue_run(spool, port, sub="flush")
        assert entries(spool) == []
        assert peer.taken == len(ids) - taken_before
    finally:
        peer.close()
