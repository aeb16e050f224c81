"""Memory per idle connection (issue 13: at most 1 KiB per idle plaintext
connection; an idle session holds no buffer, src/server/stream.h).  10,000
idle plaintext connections from 250 loopback addresses (40 each, under the
default 50 per address); the smtp process's VmRSS is read before and after.
Asserted: all 10,000 were greeted, they cost at most 1 KiB each (0.69
measured when this was written; a socket bufferevent alone costs 0.92), and
a real client is still served.

The release binary is used (ASan's shadow memory and quarantine inflate
RSS).  --max-connections is 20,000 so that 10,000 stays under the overload
threshold (80%), where idle timeouts would shorten to 10 s mid-measurement.
"""

import smtplib
import time

from helpers import check_delivery, crlf, mailbox_messages
from robust_util import (  # noqa: F401  (rstart_server is a fixture)
    Crowd, raise_nofile, release_bin, rss_kib, rstart_server, source_addrs,
)

N = 10000
PER_ADDRESS = 40


def test_rss_per_idle_connection(rstart_server):
    nofile = raise_nofile()
    assert nofile >= N + 500, f"RLIMIT_NOFILE {nofile} too low for {N} connections"
    srv = rstart_server("--max-connections", "20000", binary=release_bin())
    roles = srv.roles()
    assert len(roles["smtp"]) == 1 and len(roles["store"]) == 1, roles
    smtp, store = roles["smtp"][0], roles["store"][0]
    # Warm up: one whole session, so that one-time allocations (policy,
    # first bufferevent, log buffer) are in the baseline.
    srv.assert_alive()
    time.sleep(0.2)
    before = rss_kib(smtp)
    store_before = rss_kib(store)

    crowd = Crowd(srv.host, srv.port)
    try:
        t0 = time.monotonic()
        crowd.open(source_addrs(N // PER_ADDRESS, start=2000), per_source=PER_ADDRESS,
                   batch=200)
        crowd.pump(20, until=lambda c: c.greeted() == N)
        took = time.monotonic() - t0
        greeted = crowd.greeted()
        closed = len(crowd.closed)
        time.sleep(0.5)
        after = rss_kib(smtp)
        store_after = rss_kib(store)
        per_conn = (after - before) / N
        print(f"\n[memory] {N} idle plaintext connections opened and greeted in {took:.1f} s; "
              f"smtp VmRSS {before} -> {after} KiB: {per_conn:.2f} KiB per idle connection "
              f"(store {store_before} -> {store_after} KiB)")
        assert greeted == N, f"{greeted} of {N} connections got a 220 greeting"
        assert per_conn <= 1.0, f"{per_conn:.2f} KiB per idle connection (budget: 1 KiB)"
        assert closed == 0, f"{closed} idle connections were closed by the server"
        not_220 = [d for d in crowd.data.values() if not d.startswith(b"220 ")]
        assert not not_220, not_220[:3]

        # A real client among them.
        msg = crlf("From: a@client.test\nTo: user@example.test\nSubject: among 10000\n\n"
                   "still served\n")
        with smtplib.SMTP(srv.host, srv.port, timeout=10,
                          source_address=("127.0.0.1", 0)) as s:
            assert s.sendmail("sender@client.test", ["user@example.test"], msg) == {}
        got = mailbox_messages(srv.mailroot, "user", wait=5)
        assert len(got) == 1, got
        check_delivery(got[0], msg, "sender@client.test", "user@example.test")
    finally:
        crowd.close()
    # Once they are gone the server still serves (and memory is given back
    # to the allocator; what returns to the system is up to glibc).
    time.sleep(0.5)
    srv.assert_alive()
    print(f"[memory] smtp VmRSS after the {N} closed: {rss_kib(smtp)} KiB")


def test_serve_processes_have_no_definite_leak_under_valgrind(tmp_path):
    """rawmail serve under `valgrind --trace-children=yes` (parent, store,
    smtp and queue processes), stopped with SIGTERM: nothing definitely
    lost.  proctitle_init's copies of argv and the environment were (its
    pointer arrays were reachable only through argv and environ)."""
    import os
    import shutil
    import signal
    import subprocess
    from pathlib import Path
    import pytest
    from helpers import free_port, mail_user_args
    if not shutil.which("valgrind"):
        pytest.skip("valgrind not installed")
    binary = release_bin()
    logs = tmp_path / "vg"
    logs.mkdir()
    p = subprocess.Popen(
        ["valgrind", "-q", "--leak-check=full", "--trace-children=yes",
         "--errors-for-leak-kinds=definite", f"--log-file={logs}/v.%p", str(binary), "serve",
         "--listen", f"127.0.0.1:{free_port()}", "--mailroot", str(tmp_path / "m"),
         *mail_user_args(), "--hostname", "mx.test", "--spool", str(tmp_path / "spool"),
         "--dns", "127.0.0.1:1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "RAWMAIL_CONF": ""})
    try:
        deadline = time.monotonic() + 60
        # The parent, store, smtp and queue processes have each started.
        while len(list(logs.iterdir())) < 4 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    time.sleep(1)   # children's logs written at their exit
    text = "".join(f.read_text(errors="replace") for f in logs.iterdir())
    assert len(list(logs.iterdir())) >= 4, text
    assert "definitely lost" not in text, text
    assert "proctitle" not in text, text
