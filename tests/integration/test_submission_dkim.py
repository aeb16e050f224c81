"""DKIM signing of authenticated submission (issue 11, "send, the queue and
authenticated submission sign outgoing mail when a key is configured for
the From domain (for a submission, only when the login may use that
sender)").  serve reads [dkim] from its settings file; its store process
(never the smtp process) signs a login's relayed mail when the login's
senders field allows the From address, and the message Postfix receives
through the queue verifies with dkimpy against the key the test's NSD
publishes.  Not signed: a login without a senders field (it may use any
sender), a From the login may not use (delivered unsigned, logged
dkim_skipped), a trusted network's mail (no login)."""

import email
import email.policy
import os
import signal
import smtplib
import subprocess
import time

import pytest

from dns_util import nsd  # noqa: F401 (fixture)
from helpers import SMTPConn, client_tls_context, free_port, mail_user_args, rawmail_bin
from postfix_util import start_postfix  # noqa: F401 (fixture)
from test_dkim import dnsfunc_for, keygen, signatures
from test_queue import free_port_both
from test_submission import PASSWORD, SUB, ZONE, users_file

dkim = pytest.importorskip("dkim")


def crlf(raw):
    """A Maildir file's message with CR LF line ends, as it was sent."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def dkim_config(tmp_path, *keys, domain="example.test"):
    """[dkim] with keys (path, selector) for domain, one section each."""
    conf = tmp_path / "rawmail.conf"
    conf.write_text("".join(f"[dkim]\nkey = {k}\nselector = {sel}\ndomain = {domain}\n"
                            for k, sel in keys))
    return conf


def submit(port, user, env_from, header_from, subject):
    with smtplib.SMTP(SUB, port, timeout=30) as c:
        c.ehlo("client.test")
        c.starttls(context=client_tls_context())
        c.ehlo("client.test")
        c.login(user, PASSWORD)
        body = (f"From: {header_from}\r\nTo: user@dest.test\r\nSubject: {subject}\r\n\r\n"
                f"signed or not: {subject}\r\n")
        assert c.sendmail(env_from, ["user@dest.test"], body.encode()) == {}


def test_login_mail_signed_only_for_allowed_from(tmp_path, start_server, start_postfix, nsd):
    key, rr = keygen(tmp_path, "sub1", "rsa")
    ed, ed_rr = keygen(tmp_path, "sub2", "ed25519")
    # keygen's files are 0600: as root, the store (run as the mail user)
    # could not read them after its privilege drop; it reads them before.
    if os.geteuid() == 0:
        assert os.stat(key).st_uid == 0 and (os.stat(key).st_mode & 0o077) == 0
    port = free_port_both()
    dns = nsd({"dest.test": ZONE, "example.test": rr + "\n" + ed_rr + "\n"})
    pf = start_postfix(domains=("dest.test",), users=("user",), host="127.0.0.2", port=port)
    # bob may use example.test's addresses; alice has no senders field.
    users = users_file(tmp_path, ("alice", PASSWORD), ("bob", PASSWORD, "@example.test"))
    sub_port = free_port()
    srv = start_server("-c", dkim_config(tmp_path, (key, "sub1"), (ed, "sub2")), "--users", users, "--submission",
                       f"{SUB}:{sub_port}", "--trusted-network", "127.0.0.0/24",
                       "--spool", tmp_path / "spool", "--port", port, "--dns", dns.addr,
                       "--retry-schedule", "1s", *mail_user_args())

    submit(sub_port, "bob", "bob@example.test", "Bob <bob@example.test>", "bob allowed")
    submit(sub_port, "alice", "alice@example.test", "alice@example.test", "alice any sender")
    # The envelope is bob's, the From is not one bob may use.
    submit(sub_port, "bob", "bob@example.test", "ceo@other.test", "bob foreign from")
    with SMTPConn(*srv.addr) as c:       # the MX listener, a trusted network
        c.read_reply()
        r = c.mail_transaction("camera@example.test", ["user@dest.test"],
                               b"From: camera@example.test\r\nSubject: trusted camera\r\n\r\n"
                               b"frame\r\n", ehlo="camera.lan")
        assert r.code == 250, r

    msgs = {}
    for raw in pf.wait_for_mail("user", count=4, timeout=60):
        msgs[email.message_from_bytes(raw, policy=email.policy.compat32)["Subject"]] = crlf(raw)
    assert sorted(msgs) == ["alice any sender", "bob allowed", "bob foreign from",
                            "trusted camera"], sorted(msgs)

    signed = msgs["bob allowed"]
    sigs = signatures(signed)
    assert len(sigs) == 2, sigs
    assert b"s=sub1" in sigs[0] + sigs[1] and b"s=sub2" in sigs[0] + sigs[1], sigs
    d = dkim.DKIM(signed)
    for i, sig in enumerate(sigs):
        assert b"d=example.test" in sig, sig
        assert d.verify(idx=i, dnsfunc=dnsfunc_for(dns)), (i, signed[:1200])
    sig = sigs[0]
    # The signature covers what submission added (Date, Message-ID).
    h = dict(t.split(b"=", 1) for t in sig.replace(b" ", b"").split(b";") if b"=" in t)
    assert b"date" in h[b"h"].split(b":") and b"message-id" in h[b"h"].split(b":"), sig
    for subject in ("alice any sender", "bob foreign from", "trusted camera"):
        assert signatures(msgs[subject]) == [], (subject, msgs[subject][:600])

    log = srv.log()
    assert "domain=example.test selector=sub1 alg=rsa" in log, log
    assert "domain=example.test selector=sub2 alg=ed25519" in log, log
    assert 'reason="the login may not use the From address"' in log, log
    assert log.count("event=dkim_skipped") == 1, log

    # A key broken in place: the reload is refused, the running store
    # keeps the keys it loaded and still signs.
    ed.chmod(0o600)
    ed.write_text("not a key any more\n")
    srv.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "event=reload_failed" not in srv.log():
        assert time.monotonic() < deadline, srv.log()[-3000:]
        time.sleep(0.05)
    assert "[dkim]" in srv.log() and str(ed) in srv.log(), srv.log()[-2000:]
    srv.assert_alive()
    submit(sub_port, "bob", "bob@example.test", "bob@example.test", "after reload")
    raw = [r for r in pf.wait_for_mail("user", count=5, timeout=60)
           if b"Subject: after reload" in r]
    assert len(raw) == 1 and len(signatures(crlf(raw[0]))) == 2, raw


def test_unreadable_dkim_key_refuses_to_start(tmp_path):
    bad = tmp_path / "bad.key"
    bad.write_text("not a key\n")
    bad.chmod(0o600)
    p = subprocess.run([str(rawmail_bin()), "serve", "-c", str(dkim_config(tmp_path, (bad, "x"))),
                        "--listen", f"127.0.0.1:{free_port()}", "--mailroot",
                        str(tmp_path / "mail")], capture_output=True, timeout=30)
    err = p.stderr.decode(errors="replace") + p.stdout.decode(errors="replace")
    assert p.returncode == 78, (p.returncode, err)
    assert "[dkim]" in err and str(bad) in err, err
