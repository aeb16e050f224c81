"""One delivery attempt (src/client/deliver.c) against a real `rawmail serve`.

tests/tools/deliver.c connects to HOST:PORT, runs one SMTP transaction with
client_deliver_start and prints `ADDR STATE CODE ENHANCED TEXT` per
recipient, then `result END connected=.. tls=.. tls_failed=.. greeting=..
reason=..`; with -v the transcript goes to stderr.  It stands in for
`rawmail send` until that exists (issue 4).  RAWMAIL_TOOLS selects the
directory of the tool binaries (default build-asan/tests: ASan + UBSan, and
every run checks stderr for sanitizer reports).  Loopback only.
"""

import os
import re
import socket
import subprocess
import time

import pytest

from helpers import (REPO_ROOT, assert_no_mail, check_delivery, crlf, free_port,
                     mailbox_messages, sample_message)
from peers import ScriptedPeer, ehlo_ok, silent_listener
from tls_util import SERVER_NAME, pki  # noqa: F401 (pki is a fixture)

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
                # reason= comes last and may hold spaces: the rest of the line
                head, _, reason = line.partition(" reason=")
                f = head.split(" ")
                self.result = {"end": f[1]}
                for kv in f[2:]:
                    k, _, v = kv.partition("=")
                    self.result[k] = v
                self.result["reason"] = reason
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
    # Opportunistic: the certificate is shown (so it can be pinned), not checked.
    assert any(re.fullmatch(r"-- TLS established: TLSv1\.[23] \S+, peer certificate "
                            r"SHA256:[0-9a-f]{64}, not verified", l) for l in lines), out
    assert "C> MAIL FROM:<alice@client.test> SIZE=%d" % len(sample_message()) in lines or \
        any(l.startswith("C> MAIL FROM:<alice@client.test>") for l in lines), out
    assert any(l.startswith("C> (") and l.endswith(" lines of message)") for l in lines), out
    assert "C> QUIT" in lines, out


def test_reply_timeout():
    """A peer that accepts and never greets: the per-command timeout ends it."""
    s = silent_listener()
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
    s = silent_listener()

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


def test_lost_after_final_dot_is_tempfail():
    """RFC 5321 §4.5.3.2.6: after the dot the outcome is unknown: TEMPFAIL."""
    peer = ScriptedPeer(lambda line: None if line == b"<dot>" else ehlo_ok(line))
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
    peer = ScriptedPeer(lambda line: long_line if line.startswith(b"EHLO") else ehlo_ok(line))
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
        return ehlo_ok(line)
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


# ---------------------------------------------------------------------------
# Certificate verification, pinning and SNI (tests/integration/tls_util.py
# makes the certificates: a test CA and server certificates for
# mx.example.test, 127.0.0.1 and ::1).

RCPT = "user@example.test"


def verify_args(pki, servername=SERVER_NAME, cafile=True):
    args = ["--tls", "verify"]
    if cafile:
        args += ["--cafile", str(pki.ca)]
    if servername is not None:
        args += ["--servername", servername]
    return args


def tls_line(out):
    lines = [l for l in out.stderr.splitlines() if l.startswith("-- TLS established: ")]
    assert len(lines) == 1, out
    return lines[0]


def assert_delivered(srv, out, msg, how, cert_fp):
    assert out.result["end"] == "DONE", out
    assert out.result["tls"] == "yes" and out.result["tls_failed"] == "no", out
    assert out.rcpts[RCPT][0] == "DELIVERED", out
    if how is not None:
        assert re.fullmatch(r"-- TLS established: TLSv1\.[23] \S+, peer certificate "
                            rf"SHA256:{cert_fp}, {how}", tls_line(out)), out
    msgs = mailbox_messages(srv.mailroot, "user", wait=2)
    assert len(msgs) == 1, msgs
    check_delivery(msgs[0], msg, SENDER, RCPT, proto="ESMTPS",
                   ip="::1" if srv.family == socket.AF_INET6 else "127.0.0.1")


def assert_refused(srv, out, reason):
    """The certificate was refused inside the handshake: nothing of the
    transaction was sent, the recipient is still to be tried."""
    assert out.result["end"] == "LOST", out
    assert out.result["connected"] == "yes", out
    assert out.result["tls"] == "no" and out.result["tls_failed"] == "yes", out
    assert out.result["reason"] == reason, out
    assert out.rcpts[RCPT][0] == "PENDING", out
    if "C> STARTTLS" in out.stderr:
        after = out.stderr.split("C> STARTTLS", 1)[1]
        assert "C> " not in after, out
    if srv is not None:
        assert_no_mail(srv.mailroot)


def test_verify_with_cafile_and_name(start_server, pki):
    srv = start_server(*pki.server_args("mx"))
    msg = sample_message("verified")
    out = deliver(srv, [RCPT], msg, *verify_args(pki), "-v")
    assert_delivered(srv, out, msg, "verified", pki.fingerprints("mx")[0])


def test_verify_wildcard_name(start_server, pki):
    """OpenSSL's RFC 6125 matching: *.example.test covers one label."""
    srv = start_server(*pki.server_args("wildcard"))
    msg = sample_message("wildcard")
    out = deliver(srv, [RCPT], msg, *verify_args(pki), "-v")
    assert_delivered(srv, out, msg, "verified", pki.fingerprints("wildcard")[0])
    fp = pki.fingerprints("wildcard")[0]
    out = deliver(srv, [RCPT], msg, *verify_args(pki, servername="a.mx.example.test"))
    assert out.result["reason"] == (
        "certificate name mismatch: wanted a.mx.example.test, certificate has "
        f"DNS:*.example.test (certificate SHA256:{fp})"), out


@pytest.mark.parametrize("cert, reason", [
    ("selfsigned", "certificate verification failed: self-signed certificate "
                   "(peer mx.example.test, certificate SHA256:{fp})"),
    ("expired", "certificate verification failed: certificate has expired "
                "(peer mx.example.test, certificate SHA256:{fp})"),
    ("wrongname", "certificate name mismatch: wanted mx.example.test, certificate has "
                  "DNS:wrong.example.test (certificate SHA256:{fp})"),
    ("untrusted", "certificate verification failed: unable to get local issuer certificate "
                  "(peer mx.example.test, certificate SHA256:{fp})"),
])
def test_verify_refuses(start_server, pki, cert, reason):
    srv = start_server(*pki.server_args(cert))
    out = deliver(srv, [RCPT], sample_message(), *verify_args(pki), "-v")
    assert_refused(srv, out, reason.format(fp=pki.fingerprints(cert)[0]))


def test_verify_with_system_store(start_server, pki):
    """No --cafile: the system's CAs, which do not include the test CA."""
    srv = start_server(*pki.server_args("mx"))
    out = deliver(srv, [RCPT], sample_message(), *verify_args(pki, cafile=False))
    fp = pki.fingerprints("mx")[0]
    assert_refused(srv, out, "certificate verification failed: unable to get local issuer "
                             f"certificate (peer mx.example.test, certificate SHA256:{fp})")


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_verify_address_without_name(start_server, pki, family):
    """No server name (an address-literal destination): the certificate
    must hold the connected address as an IP SAN."""
    listen = [f"[::1]:{free_port()}"] if family == "ipv6" else None
    srv = start_server(*pki.server_args("mx"), listen=listen)
    msg = sample_message("by address")
    out = deliver(srv, [RCPT], msg, *verify_args(pki, servername=None), "-v")
    assert_delivered(srv, out, msg, "verified", pki.fingerprints("mx")[0])


def test_verify_address_mismatch(start_server, pki):
    srv = start_server(*pki.server_args("wrongname"))
    out = deliver(srv, [RCPT], sample_message(), *verify_args(pki, servername=None))
    fp = pki.fingerprints("wrongname")[0]
    assert_refused(srv, out, "certificate name mismatch: wanted 127.0.0.1, certificate has "
                             f"DNS:wrong.example.test (certificate SHA256:{fp})")


@pytest.mark.parametrize("spki", [False, True], ids=["cert", "spki"])
def test_pin_without_verify_accepts_self_signed(start_server, pki, spki):
    srv = start_server(*pki.server_args("selfsigned"))
    msg = sample_message("pinned")
    out = deliver(srv, [RCPT], msg, "--tls", "require", "--pin", pki.pin("selfsigned", spki),
                  "-v")
    assert_delivered(srv, out, msg, "pinned", pki.fingerprints("selfsigned")[0])


def test_pin_openssl_spelling_and_several_pins(start_server, pki):
    """The colon-separated form `openssl x509 -fingerprint -sha256` prints is
    a pin too; with several pins one match is enough."""
    srv = start_server(*pki.server_args("selfsigned"))
    msg = sample_message("pinned twice")
    out = deliver(srv, [RCPT], msg, "--tls", "require", "--pin", pki.pin("mx"),
                  "--pin", "sha256:" + pki.openssl_fingerprint("selfsigned"), "-v")
    assert_delivered(srv, out, msg, "pinned", pki.fingerprints("selfsigned")[0])


def test_wrong_pin_refused_with_peer_fingerprint(start_server, pki):
    srv = start_server(*pki.server_args("selfsigned"))
    out = deliver(srv, [RCPT], sample_message(), "--tls", "require",
                  "--pin", pki.pin("mx"), "--pin", pki.pin("mx", spki=True), "-v")
    fp = pki.fingerprints("selfsigned")[0]
    assert_refused(srv, out, "certificate fingerprint does not match any --tls-fingerprint "
                             f"(peer's is SHA256:{fp})")


def test_verify_and_pin_both_must_hold(start_server, pki):
    srv = start_server(*pki.server_args("mx"))
    mx_fp = pki.fingerprints("mx")[0]
    msg = sample_message("verified and pinned")
    out = deliver(srv, [RCPT], msg, *verify_args(pki), "--pin", pki.pin("mx", spki=True), "-v")
    assert_delivered(srv, out, msg, "verified and pinned", mx_fp)

    # verified, but not the pinned key
    out = deliver(srv, [RCPT], msg, *verify_args(pki), "--pin", pki.pin("selfsigned"))
    assert out.result["tls_failed"] == "yes", out
    assert out.result["reason"] == ("certificate fingerprint does not match any "
                                    f"--tls-fingerprint (peer's is SHA256:{mx_fp})"), out

    # pinned, but the chain does not verify
    srv2 = start_server(*pki.server_args("selfsigned"), mailroot=srv.mailroot.parent / "mail2")
    ss_fp = pki.fingerprints("selfsigned")[0]
    out = deliver(srv2, [RCPT], msg, *verify_args(pki), "--pin", pki.pin("selfsigned"))
    assert_refused(srv2, out, "certificate verification failed: self-signed certificate "
                              f"(peer mx.example.test, certificate SHA256:{ss_fp})")


def tls_peer_context(pki, cert, version=None):
    """A server-side context for ScriptedPeer; version "1.2" caps it at
    TLS 1.2 (the certificate checks run at a different point of that
    handshake: before the client's Finished, not after the server's)."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.cert(cert), pki.key(cert))
    if version == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def starttls_script(line):
    if line.startswith(b"EHLO"):
        return b"250-peer.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
    if line == b"STARTTLS":
        return b"220 2.0.0 go ahead\r\n"
    return ehlo_ok(line, lambda l: b"250 2.0.0 ok\r\n" if l == b"<dot>" else b"500 what\r\n")


@pytest.mark.parametrize("servername, sni, verify", [
    ("mx.example.test", "mx.example.test", True),
    ("MX.example.test.", "MX.example.test", True),  # no trailing dot in SNI (RFC 6066 §3)
    (None, None, True),                             # address destination: no SNI
    ("127.0.0.1", None, True),                      # an address as the name: no SNI either
    ("mx.example.test", "mx.example.test", False),  # SNI without verification too
])
def test_sni(pki, servername, sni, verify):
    peer = ScriptedPeer(starttls_script, tls_context=tls_peer_context(pki, "mx"))
    if verify:
        args = verify_args(pki, servername=servername)
    else:
        args = ["--tls", "opportunistic", "--servername", servername]
    try:
        out = deliver(f"127.0.0.1:{peer.port}", [RCPT], b"Subject: x\n\nbody\n", *args,
                      "--timeout", "5", "-v")
    finally:
        peer.close()
    assert out.result["end"] == "DONE" and out.result["tls"] == "yes", out
    assert tls_line(out).endswith(", verified" if verify else ", not verified"), out
    assert peer.sni_seen, out
    assert peer.sni == sni, (peer.sni, out)
    assert peer.received_tls.startswith(b"EHLO client.test\r\n"), peer.received_tls


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_tls12_and_tls13_verified_and_pinned(pki, version):
    peer = ScriptedPeer(starttls_script, tls_context=tls_peer_context(pki, "mx", version))
    try:
        out = deliver(f"127.0.0.1:{peer.port}", [RCPT], b"Subject: x\n\nbody\n",
                      *verify_args(pki), "--pin", pki.pin("mx"), "--timeout", "5", "-v")
    finally:
        peer.close()
    assert out.result["end"] == "DONE", out
    assert tls_line(out).startswith(f"-- TLS established: TLSv{version} "), out
    assert tls_line(out).endswith(", verified and pinned"), out
    assert peer.tls_version == f"TLSv{version}", peer.tls_version


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("args", [
    ["--pin", "SHA256:" + "00" * 32],
    ["--tls", "verify", "--servername", SERVER_NAME],     # cafile added below
], ids=["pin", "verify"])
def test_refusal_reaches_peer_as_handshake_failure(pki, args, version):
    """The client refuses inside the handshake: the peer's handshake fails
    (it gets an alert) and nothing arrives through TLS."""
    peer = ScriptedPeer(starttls_script,
                        tls_context=tls_peer_context(pki, "selfsigned", version))
    if "verify" in args:
        args = args + ["--cafile", str(pki.ca)]
    else:
        args = ["--tls", "require"] + args
    try:
        out = deliver(f"127.0.0.1:{peer.port}", [RCPT], b"Subject: x\n\nbody\n", *args,
                      "--timeout", "5", "-v")
    finally:
        peer.close()
    assert out.result["end"] == "LOST" and out.result["tls_failed"] == "yes", out
    assert out.rcpts[RCPT][0] == "PENDING", out
    assert peer.tls_error is not None and peer.tls_version is None, peer.tls_error
    assert peer.received_tls == b"", peer.received_tls
    assert peer.received.count(b"EHLO") == 1, peer.received


def test_invalid_servername(start_server, pki):
    srv = start_server(*pki.server_args("mx"))
    out = deliver(srv, [RCPT], sample_message(), *verify_args(pki, servername="bad name\x01"))
    assert_refused(srv, out, "invalid TLS server name: bad?name?")


def run_tool(*args):
    p = subprocess.run([DELIVER, *args, "--from", SENDER, "--to", RCPT, "127.0.0.1:9"],
                       input=b"x\n", capture_output=True, timeout=30)
    err = p.stderr.decode(errors="replace")
    for mark in SANITIZER_MARKS:
        assert mark not in err, err
    return p.returncode, err


def test_cafile_errors(tmp_path):
    missing = tmp_path / "missing.pem"
    rc, err = run_tool("--tls", "verify", "--cafile", str(missing))
    assert rc == 1 and f"cannot load CA file {missing}: No such file or directory" in err, err
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    rc, err = run_tool("--tls", "verify", "--cafile", str(garbage))
    assert rc == 1 and f"cannot load CA file {garbage}: no certificate or crl found" in err, err


@pytest.mark.parametrize("pin", ["SHA256:abc", "ab" * 32, "SHA1:" + "ab" * 32])
def test_bad_pin_is_usage_error(pin):
    rc, err = run_tool("--tls", "require", "--pin", pin)
    assert rc == 64 and "usage" in err, err
