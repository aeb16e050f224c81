"""One delivery attempt (src/client/deliver.c) against a real `rawmail serve`.

tests/tools/deliver.c connects to HOST:PORT, runs one SMTP transaction with
client_deliver_start and prints `ADDR STATE CODE ENHANCED TEXT` per
recipient, then `result END connected=.. tls=.. greeting=.. reason=..`;
with -v the transcript goes to stderr.  It stands in for `rawmail send`
until that exists (issue 4).  RAWMAIL_TOOLS selects the directory of the
tool binaries (default build-asan/tests: ASan + UBSan, and every run checks
stderr for sanitizer reports).  Loopback only.
"""

import os
import socket
import subprocess
import time

import pytest

from helpers import (REPO_ROOT, assert_no_mail, check_delivery, crlf, free_port,
                     mailbox_messages, sample_message)

TOOLS = os.environ.get("RAWMAIL_TOOLS", str(REPO_ROOT / "build-asan" / "tests"))
DELIVER = os.path.join(TOOLS, "tool_deliver")

SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer")
SENDER = "alice@client.test"


@pytest.fixture(scope="module", autouse=True)
def tool_built():
    if not os.access(DELIVER, os.X_OK):
        pytest.skip(f"{DELIVER} missing: make -s SAN=1 build-asan/tests/tool_deliver")


class Outcome:
    def __init__(self, p, elapsed):
        self.stdout = p.stdout.decode(errors="replace")
        self.stderr = p.stderr.decode(errors="replace")
        self.elapsed = elapsed
        self.rcpts = {}
        self.result = None
        for line in self.stdout.splitlines():
            if line.startswith("result "):
                f = line.split(" ", 5)
                self.result = {"end": f[1]}
                for kv in f[2:]:
                    k, _, v = kv.partition("=")
                    self.result[k] = v
                # reason= may hold spaces: take the rest of the line
                self.result["reason"] = line.partition(" reason=")[2]
            else:
                addr, state, code, enh, text = line.split(" ", 4)
                self.rcpts[addr] = (state, int(code), enh, text)

    def __repr__(self):
        return f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}"


def deliver(target, rcpts, message, *args, sender=SENDER, timeout=30):
    if not isinstance(target, str):
        target = f"{target.host}:{target.port}" if ":" not in target.host \
            else f"[{target.host}]:{target.port}"
    argv = [DELIVER, *args, "--from", sender]
    for r in rcpts:
        argv += ["--to", r]
    argv.append(target)
    t0 = time.monotonic()
    p = subprocess.run(argv, input=message, capture_output=True, timeout=timeout)
    out = Outcome(p, time.monotonic() - t0)
    for mark in SANITIZER_MARKS:
        assert mark not in out.stderr, out
    assert p.returncode == 0, (p.returncode, out)
    assert out.result is not None, out
    return out


def test_two_recipients_byte_exact_with_starttls(start_server):
    srv = start_server()
    msg = sample_message("deliver two")
    out = deliver(srv, ["user@example.test", "bob@example.test"], msg)
    assert out.result["end"] == "DONE", out
    assert out.result["connected"] == "yes" and out.result["tls"] == "yes", out
    assert out.result["greeting"] == "220", out
    for r in ("user@example.test", "bob@example.test"):
        state, code, enh, _ = out.rcpts[r]
        assert (state, code, enh) == ("DELIVERED", 250, "2.0.0"), out
    for box, rcpt in (("user", "user@example.test"), ("bob", "bob@example.test")):
        msgs = mailbox_messages(srv.mailroot, box, wait=2)
        assert len(msgs) == 1, msgs
        # Opportunistic TLS was used: the server's Received says ESMTPS.
        check_delivery(msgs[0], msg, SENDER, rcpt, helo="client.test", proto="ESMTPS",
                       single_rcpt=False)


def test_plain_server_and_tls_none(start_server):
    srv = start_server("--tls", "no")
    msg = sample_message("deliver plain")
    out = deliver(srv, ["user@example.test"], msg)
    assert out.result["end"] == "DONE" and out.result["tls"] == "no", out
    assert out.rcpts["user@example.test"][0] == "DELIVERED", out
    msgs = mailbox_messages(srv.mailroot, "user", wait=2)
    check_delivery(msgs[0], msg, SENDER, "user@example.test", proto="ESMTP")

    srv2 = start_server(mailroot=srv.mailroot.parent / "mail2")
    out = deliver(srv2, ["user@example.test"], msg, "--tls", "none")
    assert out.result["end"] == "DONE" and out.result["tls"] == "no", out
    msgs = mailbox_messages(srv2.mailroot, "user", wait=2)
    check_delivery(msgs[0], msg, SENDER, "user@example.test", proto="ESMTP")


def test_lf_only_input_and_dots(start_server):
    srv = start_server()
    body = (b"Subject: lf only\n\n.leading\n..two\n.\nmiddle\r\nbare cr\rend\n"
            b"no final newline")
    out = deliver(srv, ["user@example.test"], body)
    assert out.rcpts["user@example.test"][0] == "DELIVERED", out
    msgs = mailbox_messages(srv.mailroot, "user", wait=2)
    # Every line ending (LF, CRLF, bare CR) went out as CRLF, a final one added.
    sent = crlf(b"Subject: lf only\n\n.leading\n..two\n.\nmiddle\nbare cr\nend\n"
                b"no final newline\n")
    check_delivery(msgs[0], sent, SENDER, "user@example.test", proto="ESMTPS")


def test_large_message(start_server):
    """Several output-buffer refills: the encoder's chunks join exactly."""
    srv = start_server()
    lines = [(".%06d " % i + "x" * (i % 300)).encode() for i in range(20000)]
    msg = b"Subject: big\r\n\r\n" + b"\r\n".join(lines) + b"\r\n"
    out = deliver(srv, ["user@example.test"], msg, "-v")
    assert out.rcpts["user@example.test"][0] == "DELIVERED", out
    assert "C> (20002 lines of message)" in out.stderr, out.stderr[-2000:]
    msgs = mailbox_messages(srv.mailroot, "user", wait=5)
    check_delivery(msgs[0], msg, SENDER, "user@example.test", proto="ESMTPS")


def test_require_tls_without_starttls(start_server):
    srv = start_server("--tls", "no")
    out = deliver(srv, ["user@example.test"], sample_message(), "--tls", "require", "-v")
    assert out.result["end"] == "NEXT_HOST", out
    assert out.result["connected"] == "yes" and out.result["tls"] == "no", out
    assert out.rcpts["user@example.test"][0] == "PENDING", out
    assert "C> QUIT" in out.stderr, out
    assert "C> MAIL" not in out.stderr, out
    assert_no_mail(srv.mailroot)


def test_unknown_mailbox_and_relay_refused(start_server):
    srv = start_server("--mailbox", "alice")
    msg = sample_message("deliver mixed")
    out = deliver(srv, ["nobody@example.test", "alice@example.test", "x@elsewhere.test"], msg)
    assert out.result["end"] == "DONE", out
    state, code, enh, _ = out.rcpts["nobody@example.test"]
    assert (state, code, enh) == ("PERMFAIL", 550, "5.1.1"), out
    state, code, enh, _ = out.rcpts["x@elsewhere.test"]
    assert (state, code, enh) == ("PERMFAIL", 554, "5.7.1"), out
    assert out.rcpts["alice@example.test"][0] == "DELIVERED", out
    msgs = mailbox_messages(srv.mailroot, "alice", wait=2)
    assert len(msgs) == 1
    check_delivery(msgs[0], msg, SENDER, "alice@example.test", proto="ESMTPS")
    assert not (srv.mailroot / "nobody").exists()


def test_closed_port_fails_fast():
    port = free_port()
    out = deliver(f"127.0.0.1:{port}", ["user@example.test"], b"x\n")
    assert out.result["end"] == "LOST" and out.result["connected"] == "no", out
    assert "refused" in out.result["reason"], out
    assert out.rcpts["user@example.test"][0] == "PENDING", out
    assert out.elapsed < 5, out.elapsed


def test_ipv6_target(start_server):
    srv = start_server(listen=[f"[::1]:{free_port()}"])
    msg = sample_message("deliver v6")
    out = deliver(srv, ["user@example.test"], msg)
    assert out.rcpts["user@example.test"][0] == "DELIVERED", out
    msgs = mailbox_messages(srv.mailroot, "user", wait=2)
    check_delivery(msgs[0], msg, SENDER, "user@example.test", ip="::1", proto="ESMTPS")


def test_verbose_transcript(start_server):
    srv = start_server()
    out = deliver(srv, ["user@example.test"], sample_message(), "-v")
    lines = out.stderr.splitlines()
    assert lines[0].startswith("S> 220 "), out
    assert "C> EHLO client.test" in lines, out
    assert "C> STARTTLS" in lines, out
    assert any(l.startswith("-- TLS established: TLSv1.") for l in lines), out
    assert "C> MAIL FROM:<alice@client.test> SIZE=%d" % len(sample_message()) in lines or \
        any(l.startswith("C> MAIL FROM:<alice@client.test>") for l in lines), out
    assert any(l.startswith("C> (") and l.endswith(" lines of message)") for l in lines), out
    assert "C> QUIT" in lines, out


def _silent_listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(4)
    return s


def test_reply_timeout():
    """A peer that accepts and never greets: the per-command timeout ends it."""
    s = _silent_listener()
    try:
        out = deliver(f"127.0.0.1:{s.getsockname()[1]}", ["user@example.test"], b"x\n",
                      "--timeout", "1")
    finally:
        s.close()
    assert out.result["end"] == "LOST" and out.result["connected"] == "yes", out
    assert "timed out" in out.result["reason"], out
    assert out.rcpts["user@example.test"][0] == "PENDING", out
    assert out.elapsed < 10, out.elapsed


def test_malformed_reply():
    """Garbage instead of a greeting: connection lost, "malformed reply"."""
    import threading
    s = _silent_listener()

    def serve():
        c, _ = s.accept()
        c.sendall(b"hello there\r\n")
        time.sleep(0.5)
        c.close()
    t = threading.Thread(target=serve)
    t.start()
    try:
        out = deliver(f"127.0.0.1:{s.getsockname()[1]}", ["user@example.test"], b"x\n",
                      "--timeout", "5")
    finally:
        t.join(5)
        s.close()
    assert out.result["end"] == "LOST", out
    assert out.result["reason"] == "malformed reply", out
    assert out.rcpts["user@example.test"][0] == "PENDING", out


class ScriptedPeer:
    """A one-connection SMTP peer on loopback: answers each command line
    from `script(line) -> bytes|None` (None: close); greets with `greeting`."""

    def __init__(self, script, greeting=b"220 peer.test ESMTP\r\n"):
        import threading
        self.sock = _silent_listener()
        self.port = self.sock.getsockname()[1]
        self.script = script
        self.greeting = greeting
        self.received = b""
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(10)
        try:
            c, _ = self.sock.accept()
        except OSError:
            return
        c.settimeout(10)
        buf = b""
        in_data = False
        try:
            c.sendall(self.greeting)
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                self.received += chunk
                buf += chunk
                while b"\r\n" in buf:
                    line, _, buf = buf.partition(b"\r\n")
                    if in_data:
                        if line != b".":
                            continue
                        in_data = False
                        line = b"<dot>"
                    reply = self.script(line)
                    if reply is None:
                        c.close()
                        return
                    if line == b"DATA" and reply.startswith(b"354"):
                        in_data = True
                    c.sendall(reply)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.thread.join(10)
        self.sock.close()


def _ehlo_ok(line, extra=None):
    if line.startswith(b"EHLO"):
        return b"250-peer.test\r\n250 PIPELINING\r\n"
    if line.startswith(b"MAIL") or line.startswith(b"RCPT"):
        return b"250 2.1.0 ok\r\n"
    if line == b"DATA":
        return b"354 go\r\n"
    if line == b"QUIT":
        return b"221 bye\r\n"
    return extra(line) if extra else b"500 what\r\n"


def test_lost_after_final_dot_is_tempfail():
    """RFC 5321 §4.5.3.2.6: after the dot the outcome is unknown: TEMPFAIL."""
    peer = ScriptedPeer(lambda line: None if line == b"<dot>" else _ehlo_ok(line))
    try:
        out = deliver(f"127.0.0.1:{peer.port}", ["user@example.test"], b"Subject: x\n\nbody\n",
                      "--tls", "none", "--timeout", "5")
    finally:
        peer.close()
    assert out.result["end"] == "LOST", out
    state, code, _, _ = out.rcpts["user@example.test"]
    assert state == "TEMPFAIL" and code == 0, out
    assert peer.received.endswith(b"\r\nbody\r\n.\r\n"), peer.received


def test_too_long_reply_is_malformed():
    long_line = b"250-" + b"x" * 5000 + b"\r\n250 ok\r\n"
    peer = ScriptedPeer(lambda line: long_line if line.startswith(b"EHLO") else _ehlo_ok(line))
    try:
        out = deliver(f"127.0.0.1:{peer.port}", ["user@example.test"], b"x\n",
                      "--tls", "none", "--timeout", "5")
    finally:
        peer.close()
    assert out.result["end"] == "LOST" and out.result["reason"] == "malformed reply", out
    assert out.rcpts["user@example.test"][0] == "PENDING", out


def test_bytes_after_starttls_reply_refused():
    """Plaintext bytes after the 220 to STARTTLS are never read as if they
    came through TLS: the connection is given up."""
    def script(line):
        if line.startswith(b"EHLO"):
            return b"250-peer.test\r\n250 STARTTLS\r\n"
        if line == b"STARTTLS":
            return b"220 go ahead\r\n250 injected\r\n"
        return _ehlo_ok(line)
    peer = ScriptedPeer(script)
    try:
        out = deliver(f"127.0.0.1:{peer.port}", ["user@example.test"], b"x\n", "--timeout", "5")
    finally:
        peer.close()
    assert out.result["end"] == "LOST", out
    # Normally both replies come in one segment; if split, the handshake
    # reads the injected bytes and fails: refused either way.
    assert ("after the reply to STARTTLS" in out.result["reason"]
            or "TLS handshake failed" in out.result["reason"]), out
    assert out.result["tls"] == "no", out
    assert b"MAIL" not in peer.received, peer.received
