"""rawmail serve --spool DIR runs the outgoing queue itself (issue 9,
"Runners"): a `rawmail: queue` child of the parent delivers what rawmail
send and the sendmail entry queued, without any `rawmail queue run`.
Destinations: a second `rawmail serve` on 127.0.0.1 and scripted peers on
127.0.0.2, reached as address literals with --port (no DNS)."""

import email
import os
import signal
import time
from pathlib import Path

import pytest

from helpers import free_port, mail_user_args, mailbox_messages
from peers import ScriptedPeer
from send_util import send
from test_queue import PEER, data_count, entries, free_port_both, message, queued_id, rcpt_script

# Not 127.0.0.1, where the runner's own serve listens on a free port that
# could be the destination's port.
DEST = "127.0.0.3"


def dest_port():
    """A port free on 127.0.0.1 (the runner's serve), PEER and DEST."""
    import socket
    for _ in range(50):
        p = free_port_both()
        try:
            s = socket.socket()
            s.bind((DEST, p))
            s.close()
            return p
        except OSError:
            continue
    raise AssertionError("no port free on every address")


def queue_args(spool, port, *extra):
    return ["--spool", spool, "--port", port, "--dns", "127.0.0.1:1", "--retry-schedule", "1s",
            *mail_user_args(), *extra]


def cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return ""


def group_pids(pgid, title=None):
    """The live processes of a server's process group (titled so, if given)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if os.getpgid(int(d)) != pgid:
                continue
            state = [l for l in Path(f"/proc/{d}/status").read_text().splitlines()
                     if l.startswith("State:")]
        except (OSError, ProcessLookupError):
            continue
        if state and "Z" in state[0]:
            continue
        if title is None or cmdline(int(d)).startswith(title):
            out.append(int(d))
    return sorted(out)


def queue_pids(srv, want=None, timeout=10):
    """The server's `rawmail: queue` processes, waiting until there are
    want of them (if given)."""
    deadline = time.monotonic() + timeout
    while True:
        pids = group_pids(srv.pgid, "rawmail: queue")
        if want is None or len(pids) == want or time.monotonic() > deadline:
            return pids
        time.sleep(0.05)


def wait_for(cond, timeout, what):
    """what: the failure's text, or a function giving it (a log read then)."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what() if callable(what) else what
        time.sleep(0.1)


def delivered(mailroot, box, mid):
    return [m for m in mailbox_messages(mailroot, box)
            if email.message_from_bytes(m)["Message-ID"] == mid]


def test_down_then_up_delivered_by_serve_without_queue_run(tmp_path, start_server):
    port = dest_port()
    spool = tmp_path / "spool"
    # Nothing listens on the destination yet: queued.
    s = send(["--spool", spool, "--port", port, "--retry-schedule", "1s", "-f",
              "alice@client.test", f"bob@[{DEST}]"], message("down then up"), expect="tempfail")
    qid = queued_id(s)
    runner = start_server(*queue_args(spool, port))
    assert len(queue_pids(runner, 1)) == 1
    time.sleep(1.5)
    assert entries(spool) == [qid]      # still down: still queued
    dest = start_server(*mail_user_args(), listen=[f"{DEST}:{port}"],
                        mailroot=tmp_path / "destmail")
    mid = "<down.then.up@client.test>"
    wait_for(lambda: delivered(dest.mailroot, "bob", mid), 30,
             lambda: f"not delivered by serve's queue:\n{runner.log()}")
    wait_for(lambda: entries(spool) == [], 10, "entry not removed")
    assert len(delivered(dest.mailroot, "bob", mid)) == 1
    wait_for(lambda: "event=removed" in runner.log(), 10, runner.log)


def test_greylisting_peer_retried_by_serve(tmp_path, start_server):
    port = free_port_both()
    spool = tmp_path / "spool"
    peer = ScriptedPeer(rcpt_script([b"451 4.7.1 greylisted, try again\r\n",
                                     b"250 2.1.5 ok\r\n"]),
                        host=PEER, port=port, connections=2, with_conn=True,
                        accept_timeout=60)
    try:
        srv = start_server(*queue_args(spool, port))
        # Queued: after send's own first attempt got the 451, or, when
        # serve's runner locked the new entry first, with that said.
        s = send(["--spool", spool, "--port", port, "--retry-schedule", "1s", "-f",
                  "alice@client.test", f"bob@[{PEER}]"], message("grey"), expect="tempfail")
        assert "451 4.7.1 greylisted" in s.err or "a queue runner is delivering it" in s.err, s
        wait_for(lambda: data_count(peer) == 1, 60,
                 lambda: f"the greylisted message was not retried:\n{srv.log()}")
        wait_for(lambda: entries(spool) == [], 10, "entry not removed")
        time.sleep(1.5)
    finally:
        peer.close()
    assert len(peer.conns) == 2 and data_count(peer) == 1


def test_sendmail_message_delivered_once_with_kick_and_serve(tmp_path, start_server):
    port = dest_port()
    spool = tmp_path / "spool"
    dest = start_server(*mail_user_args(), listen=[f"{DEST}:{port}"],
                        mailroot=tmp_path / "destmail")
    start_server(*queue_args(spool, port))
    mids = [f"<once.{i}@client.test>" for i in range(5)]
    for i, mid in enumerate(mids):
        send(["--spool", spool, "--port", port, "-i", "-f", "alice@client.test",
              f"bob@[{DEST}]"], message(f"once {i}", mid), argv0="sendmail", cwd=tmp_path,
             expect="ok")
    wait_for(lambda: entries(spool) == [], 30, "sendmail's messages still queued")
    wait_for(lambda: all(delivered(dest.mailroot, "bob", m) for m in mids), 10, "not delivered")
    time.sleep(2)    # a second delivery would arrive by now
    for mid in mids:
        assert len(delivered(dest.mailroot, "bob", mid)) == 1, mid


def test_sendmail_leaves_the_first_attempt_to_a_running_serve(tmp_path, start_server):
    """serve's queue process holds SPOOL/runner.lock while it watches env/:
    the sendmail entry then starts no `queue run` of its own (its runner
    would win the race for the entry by ~300 ms, serve's settle time, and
    serve's log would show no delivery of it).  Once serve is gone, the
    entry starts its own runner again."""
    port = dest_port()
    spool = tmp_path / "spool"
    dest = start_server(*mail_user_args(), listen=[f"{DEST}:{port}"],
                        mailroot=tmp_path / "destmail")
    runner = start_server(*queue_args(spool, port))
    assert len(queue_pids(runner, 1)) == 1
    wait_for(lambda: (spool / "runner.lock").exists(), 10, runner.log)
    ids = []
    for i in range(3):
        mid = f"<by.serve.{i}@client.test>"
        s = send(["--spool", spool, "--port", port, "-i", "-v", "-f", "alice@client.test",
                  f"bob@[{DEST}]"], message(f"by serve {i}", mid), argv0="sendmail",
                 cwd=tmp_path, expect="ok")
        ids.append(queued_id(s))
        wait_for(lambda: delivered(dest.mailroot, "bob", mid), 30,
                 lambda: f"not delivered:\n{runner.log()}")
    wait_for(lambda: entries(spool) == [], 10, "entries not removed")
    for qid in ids:
        assert f"event=delivery id={qid} " in runner.log(), (qid, runner.log())
    # serve stopped (its lock gone with its queue process): the entry's
    # own runner delivers again.
    assert runner.stop() == 0
    mid = "<after.serve@client.test>"
    send(["--spool", spool, "--port", port, "-i", "-f", "alice@client.test", f"bob@[{DEST}]"],
         message("after serve", mid), argv0="sendmail", cwd=tmp_path, expect="ok")
    wait_for(lambda: delivered(dest.mailroot, "bob", mid), 30, "not delivered without serve")
    wait_for(lambda: entries(spool) == [], 10, "entry not removed without serve")


def test_sighup_keeps_exactly_one_queue_process(tmp_path, start_server):
    spool = tmp_path / "spool"
    srv = start_server(*queue_args(spool, free_port()))
    before = queue_pids(srv, 1)
    assert len(before) == 1, group_pids(srv.pgid)
    for _ in range(3):
        srv.signal(signal.SIGHUP)
        time.sleep(0.5)
    time.sleep(1)
    assert queue_pids(srv) == before, (before, group_pids(srv.pgid))
    assert "generation=4" in srv.log()


def test_sigterm_leaves_no_process(tmp_path, start_server):
    srv = start_server(*queue_args(tmp_path / "spool", free_port()))
    assert len(queue_pids(srv, 1)) == 1
    pgid = srv.pgid
    assert srv.stop() == 0
    assert not srv.leftover and group_pids(pgid) == []


def test_parent_killed_stops_the_queue_process(tmp_path, start_server):
    srv = start_server(*queue_args(tmp_path / "spool", free_port()))
    [qpid] = queue_pids(srv, 1)
    os.kill(srv.proc.pid, signal.SIGKILL)
    srv.proc.wait(10)
    # PR_SET_PDEATHSIG: SIGTERM to the queue process, which stops.
    wait_for(lambda: group_pids(srv.pgid, "rawmail: queue") == [], 10,
             f"queue process {qpid} outlived its parent")
    wait_for(lambda: group_pids(srv.pgid) == [], 10, "children outlived their parent")
    srv.log_file.close()
    srv.proc = None      # stopped by the test: nothing for the teardown to stop


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_queue_process_is_not_root(tmp_path, start_server):
    spool = tmp_path / "spool"
    srv = start_server(*queue_args(spool, free_port()))
    [qpid] = queue_pids(srv, 1)

    def uid():
        for line in Path(f"/proc/{qpid}/status").read_text().splitlines():
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    # Root only while it reads its settings: give it a moment.
    wait_for(lambda: "queue_started" in srv.log(), 10, srv.log)
    ids = uid()
    assert all(u != 0 for u in ids), ids
    # The spool is given to that user.
    assert spool.stat().st_uid == ids[0]
    assert (spool / "env").stat().st_uid == ids[0]


def slow_peer(release, seconds):
    """Answers the final dot only once release is set or after seconds."""
    def script(line, conn):
        if line == b"<dot>":
            release.wait(seconds)
            return b"250 2.0.0 taken\r\n"
        return rcpt_script([b"250 2.1.5 ok\r\n"])(line, conn)
    return script


def queued_while_down(spool, port, subject):
    """An entry queued by rawmail send while nothing listens on port."""
    s = send(["--spool", spool, "--port", port, "--retry-schedule", "1s", "-f",
              "alice@client.test", f"bob@[{PEER}]"], message(subject), expect="tempfail")
    return queued_id(s)


def in_flight(peer):
    return any(b"DATA" in c.commands for c in peer.conns)


def test_sigterm_waits_for_the_delivery_in_flight(tmp_path, start_server):
    import threading
    release = threading.Event()
    port = free_port_both()
    spool = tmp_path / "spool"
    queued_while_down(spool, port, "in flight")
    peer = ScriptedPeer(slow_peer(release, 3), host=PEER, port=port, with_conn=True,
                        accept_timeout=60)
    try:
        srv = start_server(*queue_args(spool, port, "--timeout-shutdown", "20"))
        wait_for(lambda: in_flight(peer), 10, "no delivery in flight")
        t0 = time.monotonic()
        assert srv.stop() == 0
        # It waited for the 250 (3 s after the dot), not for the whole grace.
        assert time.monotonic() - t0 < 15
    finally:
        release.set()
        peer.close()
    assert data_count(peer) == 1
    assert entries(spool) == []


def test_sigterm_grace_over_keeps_the_message_queued(tmp_path, start_server):
    import threading
    release = threading.Event()
    port = free_port_both()
    spool = tmp_path / "spool"
    qid = queued_while_down(spool, port, "cut")
    peer = ScriptedPeer(slow_peer(release, 60), host=PEER, port=port, with_conn=True,
                        accept_timeout=60)
    try:
        srv = start_server(*queue_args(spool, port, "--timeout-shutdown", "1"))
        wait_for(lambda: in_flight(peer), 10, "no delivery in flight")
        t0 = time.monotonic()
        assert srv.stop() == 0
        assert time.monotonic() - t0 < 8
        assert "queue_stop_forced" in srv.log(), srv.log()
    finally:
        release.set()
        peer.close()
    # Cut off before the 250: still queued, and delivered by the next runner.
    assert entries(spool) == [qid]
    peer = ScriptedPeer(rcpt_script([b"250 2.1.5 ok\r\n"]), host=PEER, port=port,
                        with_conn=True,
                        accept_timeout=60)
    try:
        srv = start_server(*queue_args(spool, port))
        wait_for(lambda: entries(spool) == [], 20, "not retried after the forced stop")
    finally:
        peer.close()
    assert data_count(peer) == 1


def test_settings_file_spool_and_delivery(tmp_path, start_server):
    """spool in [queue] and port in [delivery] are serve's too."""
    port = free_port_both()
    spool = tmp_path / "spool"
    qid = queued_while_down(spool, port, "from the file")
    conf = tmp_path / "rawmail.conf"
    conf.write_text(f"[queue]\nspool = {spool}\nretry-schedule = 1s\n"
                    f"[delivery]\nport = {port}\ndns = 127.0.0.1:1\n")
    peer = ScriptedPeer(rcpt_script([b"250 2.1.5 ok\r\n"]), host=PEER, port=port,
                        with_conn=True,
                        accept_timeout=60)
    try:
        srv = start_server("-c", conf, *mail_user_args())
        assert len(queue_pids(srv, 1)) == 1
        wait_for(lambda: entries(spool) == [], 20, lambda: f"{qid} not delivered:\n{srv.log()}")
    finally:
        peer.close()
    assert data_count(peer) == 1


def test_no_spool_no_queue_process(tmp_path, start_server):
    srv = start_server()
    time.sleep(0.5)
    assert queue_pids(srv) == []


@pytest.mark.parametrize("extra, status, said", [
    (["--delivery-tls", "bogus"], 64, "--delivery-tls 'bogus'"),
    (["--retry-schedule", "soon"], 64, "retry-schedule"),
    pytest.param(["--queue-user", "root"], 78, "never runs as root",
                 marks=pytest.mark.skipif(os.geteuid() != 0, reason="needs root")),
])
def test_bad_queue_settings_refused_at_start(tmp_path, extra, status, said):
    import subprocess
    from helpers import rawmail_bin
    p = subprocess.run([str(rawmail_bin()), "serve", "--listen", f"127.0.0.1:{free_port()}",
                        "--mailroot", str(tmp_path / "m"), *mail_user_args(), "--spool",
                        str(tmp_path / "spool"), *extra], capture_output=True, text=True,
                       timeout=30, env={**os.environ, "RAWMAIL_CONF": ""})
    assert p.returncode == status and said in p.stderr, p


def test_pass_lists_the_spool_once(tmp_path, start_server):
    """serve's queue process knows when to look again from the pass's own
    listing (each entry's next attempt), not from a second listing of the
    spool: over two passes on 5,000 entries that are not due, it reads the
    envelopes twice in all, not four times.  And the timer it derives
    still wakes it for an entry due a few seconds later."""
    import subprocess
    from helpers import REPO_ROOT
    from queue_util import write_entry
    tools = os.environ.get("RAWMAIL_TOOLS", str(REPO_ROOT / "build-asan" / "tests"))
    port = free_port_both()
    spool = tmp_path / "spool"
    subprocess.run([os.path.join(tools, "tool_spoolfill"), "fill", str(spool), "5000", "200",
                    "3600"], check=True, capture_output=True, timeout=300)
    soon = int(time.time()) + 4
    write_entry(spool, "06B154E07658CE179A7A70", [{"addr": f"bob@[{PEER}]", "next": soon,
                                                   "attempts": 1}])
    env_bytes = sum(p.stat().st_size for p in (spool / "env").iterdir())
    peer = ScriptedPeer(rcpt_script([b"250 2.1.5 ok\r\n"]), host=PEER, port=port,
                        with_conn=True, accept_timeout=60)
    try:
        srv = start_server(*queue_args(spool, port))
        [qpid] = queue_pids(srv, 1)
        wait_for(lambda: "event=removed" in srv.log(), 30,
                 lambda: f"the entry due in 4 s was not delivered:\n{srv.log()}")
        wait_for(lambda: srv.log().count("event=pass") >= 2, 10, srv.log)
        time.sleep(0.5)
        log = srv.log()
        rchar = int([l for l in Path(f"/proc/{qpid}/io").read_text().splitlines()
                     if l.startswith("rchar:")][0].split()[1])
    finally:
        peer.close()
    assert data_count(peer) == 1
    assert log.count("event=pass") == 2, log
    # Two listings (one per pass) and a little more; a second listing per
    # pass would be four.
    assert rchar < 3 * env_bytes, (rchar, env_bytes)
    assert "seen=5001 due=0" in log and "seen=5001 due=1" in log, log


def test_sigterm_stops_starting_in_serve(tmp_path, start_server):
    """serve's queue process on SIGTERM mid-pass with a slow peer: the
    deliveries in flight finish, none starts after it, serve exits 0
    promptly, and every message is delivered or still queued."""
    from queue_util import write_entry
    from test_queue import ConcurrentSlowPeer
    port = free_port_both()
    spool = tmp_path / "spool"
    ids = [write_entry(spool, f"06B154E07658CE179A7A{i:02d}", [{"addr": f"u{i}@[{PEER}]"}])
           for i in range(12)]
    peer = ConcurrentSlowPeer(PEER, port, 3)
    try:
        srv = start_server(*queue_args(spool, port, "--timeout-shutdown", "20"))
        wait_for(lambda: len(peer.mails) >= 5, 20, lambda: f"no deliveries:\n{srv.log()}")
        time.sleep(0.3)
        started = len(peer.mails)
        t_term = time.monotonic()
        assert srv.stop() == 0
        elapsed = time.monotonic() - t_term
        assert len(peer.mails) == started, (started, srv.log())
        assert elapsed < 10, (elapsed, srv.log())
        left = entries(spool)
        assert peer.taken + len(left) == len(ids), (peer.taken, left, srv.log())
        assert len(left) > 0
    finally:
        peer.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_local_mail_delivered_by_serve_whatever_owned_the_spool(tmp_path, start_server):
    """serve as root, the mail root owned by another user (mail), a local
    name queued in a spool that a third user (nobody) owned: the queue
    process runs as the mail root's owner, so its store writes the mail
    (it used to take the spool's owner, whose local deliveries failed
    temporarily for good)."""
    from queue_util import write_entry
    spool = tmp_path / "spool"
    qid = write_entry(spool, "06B154E07658CE179A7A70", [{"addr": "carol"}],
                      message=b"From: cron@client.test\r\nSubject: local via serve\r\n"
                              b"Message-ID: <local.via.serve@client.test>\r\n\r\nbody\r\n")
    nobody = 65534
    for p in [spool, *spool.rglob("*")]:
        os.chown(p, nobody, nobody)
    srv = start_server(*queue_args(spool, free_port()))
    wait_for(lambda: delivered(srv.mailroot, "carol", "<local.via.serve@client.test>"), 20,
             lambda: f"{qid} not delivered locally:\n{srv.log()}")
    wait_for(lambda: entries(spool) == [], 10, srv.log)
    [qpid] = queue_pids(srv, 1)
    uid = [int(x) for x in [l for l in Path(f"/proc/{qpid}/status").read_text().splitlines()
                            if l.startswith("Uid:")][0].split()[1:]]
    assert uid[0] == srv.mailroot.stat().st_uid == 8, uid   # mail


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_queue_user_that_cannot_write_the_mail_root_is_refused(tmp_path):
    import subprocess
    from helpers import rawmail_bin
    p = subprocess.run([str(rawmail_bin()), "serve", "--listen", f"127.0.0.1:{free_port()}",
                        "--mailroot", str(tmp_path / "m"), *mail_user_args(), "--spool",
                        str(tmp_path / "spool"), "--queue-user", "nobody"], capture_output=True,
                       text=True, timeout=30, env={**os.environ, "RAWMAIL_CONF": ""})
    assert p.returncode == 78, p
    assert "'nobody' cannot deliver local mail" in p.stderr and "'mail'" in p.stderr, p


def test_a_burst_of_sendmail_gathers_into_one_runner(tmp_path, start_server):
    """20 sendmail entries at once, as a PHP-FPM pool or a cron minute
    calls them, no daemon: the first starts a runner that gathers the
    others (cli/queue_kick.h) and delivers them over a few reused
    connections, where one runner per message made a connection each."""
    import subprocess
    from helpers import rawmail_bin
    port = dest_port()
    spool = tmp_path / "spool"
    dest = start_server(*mail_user_args(), listen=[f"{DEST}:{port}"],
                        mailroot=tmp_path / "destmail")
    link = tmp_path / "sendmail"
    link.symlink_to(rawmail_bin())
    env = dict(os.environ, RAWMAIL_CONF="/dev/null")
    env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
    mids = [f"<burst.{i}@client.test>" for i in range(20)]
    procs = [subprocess.Popen([str(link), "--spool", str(spool), "--port", str(port),
                               "--dns", "127.0.0.1:1", "-i", "-f", "alice@client.test",
                               f"bob@[{DEST}]"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
             for _ in mids]
    for p, (i, mid) in zip(procs, enumerate(mids)):
        out, err = p.communicate(message(f"burst {i}", mid).encode(), timeout=60)
        assert p.returncode == 0 and out == b"" and err == b"", (p.returncode, out, err)
    wait_for(lambda: all(delivered(dest.mailroot, "bob", m) for m in mids), 60,
             lambda: f"not all delivered:\n{dest.log()}")
    wait_for(lambda: entries(spool) == [], 10, "entries left")
    time.sleep(1)    # a second copy would arrive by now
    for mid in mids:
        assert len(delivered(dest.mailroot, "bob", mid)) == 1, mid
    conns = dest.log().count("event=connect ")
    print(f"20 sendmail entries at once: {conns} connections at the destination")
    # One runner per message made one connection each; a gathered pass
    # shares a few (the per-address limit starts at 5 and grows).
    assert conns < len(mids), dest.log()
