"""Authenticated submission (issue 10, "Submission (server)"): real clients
-- swaks and Python's smtplib -- log in to `rawmail serve --submission` /
`--submissions` and hand it mail for the world, which serve's queue
process delivers to a real Postfix found through NSD's MX record.  Also
the refusals: AUTH before TLS on a non-loopback listener (127.0.0.30),
AUTH on a plain MX listener, MAIL before AUTH, wrong passwords (421 after
three, a delay that grows per client across connections), malformed and
replayed exchanges, senders a login may not use, relaying without a login,
and trusted networks that relay without one.

Addresses: serve's MX listener on 127.0.0.1, its submission listeners on
127.0.0.30 (and 127.0.0.1 for the loopback rule), Postfix
on 127.0.0.2 as the MX of dest.test, sharing one port number with the
queue's --port."""

import base64
import re
import email
import email.policy
import smtplib
import ssl
import subprocess
import time

import pytest

from dns_util import nsd  # noqa: F401 (fixture)
from helpers import SMTPConn, client_tls_context, free_port, mail_user_args, rawmail_bin
from postfix_util import start_postfix  # noqa: F401 (fixture)
from send_util import send
from test_queue import entries, free_port_both
from test_serve_queue import wait_for

ZONE = """\
@       MX 10 mx1
mx1     A 127.0.0.2
"""
SUB = "127.0.0.30"
PASSWORD = "correct horse battery staple"


def b64(text):
    return base64.b64encode(text.encode()).decode()


def plain(user, password):
    return b64(f"\0{user}\0{password}")


def users_file(tmp_path, *entries_):
    """A users file made by `rawmail passwd` (its yescrypt hashes):
    entries_ are (user, password) or (user, password, senders)."""
    path = tmp_path / "users"
    for e in entries_:
        user, pw = e[0], e[1]
        args = [str(rawmail_bin()), "passwd", "--users", str(path)]
        if len(e) > 2:
            args += ["--senders", e[2]]
        p = subprocess.run(args + [user], input=f"{pw}\n{pw}\n".encode(), capture_output=True,
                           timeout=60)
        assert p.returncode == 0, p.stderr
    return path


class Setup:
    """serve with an MX listener, a submission listener on SUB and the
    queue; Postfix on 127.0.0.2 is dest.test's MX."""

    def __init__(self, tmp_path, start_server, start_postfix, nsd, *extra, postfix=True,
                 sub_host=SUB, submissions=False, users=None):
        self.port = free_port_both()
        self.dns = nsd({"dest.test": ZONE})
        self.pf = (start_postfix(domains=("dest.test",), users=("user",), host="127.0.0.2",
                                 port=self.port) if postfix else None)
        self.spool = tmp_path / "spool"
        self.users = users or users_file(tmp_path, ("alice", PASSWORD),
                                         ("bob", PASSWORD, "bob@example.test,@bob.test"))
        self.sub_port = free_port()
        kind = "--submissions" if submissions else "--submission"
        self.sub = (sub_host, self.sub_port)
        self.srv = start_server("--users", self.users, kind, f"{sub_host}:{self.sub_port}",
                                "--spool", self.spool, "--port", self.port, "--dns",
                                self.dns.addr, "--retry-schedule", "1s", *mail_user_args(),
                                *extra)

    def conn(self, host=None, port=None):
        host, port = (host, port) if host else self.sub
        c = SMTPConn(host, port)
        r = c.read_reply()
        assert r.code == 220, r
        return c

    def tls_conn(self):
        c = self.conn()
        ehlo(c)
        c.starttls()
        return c


def ehlo(c, name="client.test"):
    r = c.cmd(f"EHLO {name}")
    assert r.code == 250, r
    return r


def test_swaks_plain_and_login_relay_to_postfix(tmp_path, start_server, start_postfix, nsd):
    s = Setup(tmp_path, start_server, start_postfix, nsd)
    for mech in ("PLAIN", "LOGIN"):
        body = tmp_path / f"{mech}.eml"
        # No Date and no Message-ID: submission adds them (RFC 6409 §8).
        body.write_bytes(f"From: alice@example.test\r\nTo: user@dest.test\r\n"
                         f"Subject: via swaks {mech}\r\n\r\nhello from swaks\r\n".encode())
        p = subprocess.run(["swaks", "--server", SUB, "--port", str(s.sub_port), "--helo",
                            "client.test", "--tls", "--auth", mech, "--auth-user", "alice",
                            "--auth-password", PASSWORD, "--from", "alice@example.test",
                            "--to", "user@dest.test", "--data", "@" + str(body), "--timeout",
                            "20"], capture_output=True, timeout=60)
        out = p.stdout.decode(errors="replace")
        assert p.returncode == 0, out + p.stderr.decode(errors="replace")
        assert "235 2.7.0" in out and f"AUTH {mech}" in out, out
    msgs = s.pf.wait_for_mail("user", count=2, timeout=30)
    for mech in ("PLAIN", "LOGIN"):
        [raw] = [m for m in msgs if f"via swaks {mech}".encode() in m]
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        ours = [h for h in msg.get_all("Received") if "(rawmail)" in h]
        assert len(ours) == 1, msg.get_all("Received")
        assert "with ESMTPSA" in ours[0] and "authenticated as alice" in ours[0], ours[0]
        assert msg["Date"] and msg["Message-ID"], raw
        assert msg["Message-ID"].endswith("@mx.test>"), msg["Message-ID"]
    wait_for(lambda: entries(s.spool) == [], 10, "entries left in the spool")
    log = s.srv.log()
    assert 'event=auth' in log and 'user="alice" result=ok' in log, log
    assert PASSWORD not in log and b64(PASSWORD) not in log


def test_smtplib_starttls_login_send_message(tmp_path, start_server, start_postfix, nsd):
    s = Setup(tmp_path, start_server, start_postfix, nsd)
    with smtplib.SMTP(SUB, s.sub_port, timeout=30) as c:
        c.ehlo("client.test")
        assert not c.has_extn("auth"), c.esmtp_features   # not before TLS
        c.starttls(context=client_tls_context())
        c.ehlo("client.test")
        assert c.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
        c.login("alice", PASSWORD)
        msg = email.message.EmailMessage()
        msg["From"] = "alice@example.test"
        msg["To"] = "user@dest.test"
        msg["Subject"] = "via smtplib"
        msg["Message-ID"] = "<kept.as.is@client.test>"
        msg["Date"] = "Sun, 06 Dec 2026 12:00:00 +0000"
        msg.set_content("hello from smtplib\n")
        assert c.send_message(msg) == {}
    [raw] = s.pf.wait_for_mail("user", timeout=30)
    got = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert got["Message-ID"] == "<kept.as.is@client.test>"
    assert got.get_all("Date") == ["Sun, 06 Dec 2026 12:00:00 +0000"]


def test_submissions_implicit_tls(tmp_path, start_server, start_postfix, nsd):
    s = Setup(tmp_path, start_server, start_postfix, nsd, submissions=True)
    with smtplib.SMTP_SSL(SUB, s.sub_port, timeout=30, context=client_tls_context()) as c:
        c.ehlo("client.test")
        assert "STARTTLS" not in c.esmtp_features and "starttls" not in c.esmtp_features
        c.login("alice", PASSWORD)
        c.sendmail("alice@example.test", ["user@dest.test"],
                   b"Subject: implicit\r\n\r\nover 465-style TLS\r\n")
    [raw] = s.pf.wait_for_mail("user", timeout=30)
    assert b"over 465-style TLS" in raw and b"with ESMTPSA" in raw


def test_auth_refusals(tmp_path, start_server, start_postfix, nsd):
    s = Setup(tmp_path, start_server, start_postfix, nsd, postfix=False)
    # Before TLS on a listener that is not exactly 127.0.0.1: not offered, 538.
    with s.conn() as c:
        r = ehlo(c)
        assert not any(l[4:].startswith("AUTH") for l in r.lines), r
        r = c.cmd("AUTH PLAIN " + plain("alice", PASSWORD))
        assert (r.code, r.enhanced) == (538, "5.7.11"), r
        # MAIL before AUTH on submission: 530 5.7.0.
        r = c.cmd("MAIL FROM:<alice@example.test>")
        assert (r.code, r.enhanced) == (530, "5.7.0"), r
    # The MX listener never offers AUTH and never relays for strangers.
    with SMTPConn(*s.srv.addr) as c:
        c.read_reply()
        r = ehlo(c)
        assert not any(l[4:].startswith("AUTH") for l in r.lines), r
        r = c.cmd("AUTH PLAIN " + plain("alice", PASSWORD))
        assert (r.code, r.enhanced) == (502, "5.5.1"), r
        assert c.cmd("MAIL FROM:<alice@example.test>").code == 250
        r = c.cmd("RCPT TO:<user@dest.test>")
        assert (r.code, r.enhanced) == (554, "5.7.1"), r
    with s.tls_conn() as c:
        ehlo(c)
        # Malformed exchanges: RFC 4954's replies, nothing checked.
        assert c.cmd("AUTH PLAIN").code == 334
        r = c.cmd("!!!not base64")
        assert (r.code, r.enhanced) == (501, "5.5.2"), r
        assert c.cmd("AUTH LOGIN").code == 334
        r = c.cmd("*")
        assert r.code == 501, r
        assert c.cmd("AUTH PLAIN").code == 334
        r = c.cmd("A" * 13000)
        assert (r.code, r.enhanced) == (500, "5.5.6"), r
        r = c.cmd("AUTH CRAM-MD5")
        assert (r.code, r.enhanced) == (504, "5.5.4"), r
        # A good login; a second AUTH (a replayed exchange) is refused.
        r = c.cmd("AUTH PLAIN " + plain("alice", PASSWORD))
        assert (r.code, r.enhanced) == (235, "2.7.0"), r
        r = c.cmd("AUTH PLAIN " + plain("alice", PASSWORD))
        assert (r.code, r.enhanced) == (503, "5.5.1"), r
    # A login with senders uses only those.
    with s.tls_conn() as c:
        ehlo(c)
        assert c.cmd("AUTH PLAIN " + plain("bob", PASSWORD)).code == 235
        r = c.cmd("MAIL FROM:<alice@example.test>")
        assert (r.code, r.enhanced) == (553, "5.7.1"), r
        for ok in ("bob@example.test", "anyone@BOB.test", ""):
            assert c.cmd(f"MAIL FROM:<{ok}>").code == 250, ok
            assert c.cmd("RSET").code == 250
    log = s.srv.log()
    assert PASSWORD not in log and b64(PASSWORD) not in log


def test_wrong_passwords_421_and_growing_delay(tmp_path, start_server, start_postfix, nsd):
    s = Setup(tmp_path, start_server, start_postfix, nsd, "--max-auth-failures", "2",
              postfix=False)
    took = []
    with s.tls_conn() as c:
        ehlo(c)
        for i in range(2):
            t0 = time.monotonic()
            r = c.cmd("AUTH PLAIN " + plain("alice", "wrong"), timeout=30)
            took.append(time.monotonic() - t0)
            assert (r.code, r.enhanced) == (535, "5.7.8"), r
        r = c.read_reply(timeout=5)
        assert (r.code, r.enhanced) == (421, "4.7.0"), r
    # A new connection from the same address: the delay kept growing.
    with s.tls_conn() as c:
        ehlo(c)
        t0 = time.monotonic()
        r = c.cmd("AUTH PLAIN " + plain("nosuchuser", "wrong"), timeout=30)
        took.append(time.monotonic() - t0)
        assert r.code == 535, r
        # Another client address is not slowed by this one's failures.
        with SMTPConn(SUB, s.sub_port, source="127.0.0.31") as other:
            other.read_reply()
            ehlo(other)
            other.starttls()
            ehlo(other)
            t0 = time.monotonic()
            assert other.cmd("AUTH PLAIN " + plain("alice", PASSWORD)).code == 235
            assert time.monotonic() - t0 < 1.0
    assert took[0] >= 0.9 and took[1] >= 1.9 and took[2] >= 3.9, took
    log = s.srv.log()
    assert 'user="alice" result=failed' in log and 'user="nosuchuser" result=failed' in log, log


def test_loopback_listener_takes_auth_without_tls(tmp_path, start_server, start_postfix, nsd):
    s = Setup(tmp_path, start_server, start_postfix, nsd, sub_host="127.0.0.1")
    with smtplib.SMTP("127.0.0.1", s.sub_port, timeout=30) as c:
        c.ehlo("client.test")
        assert c.has_extn("auth"), c.esmtp_features
        c.login("alice", PASSWORD)
        c.sendmail("alice@example.test", ["user@dest.test"], b"Subject: loopback\r\n\r\nx\r\n")
    [raw] = s.pf.wait_for_mail("user", timeout=30)
    assert re.search(rb"with ESMTPA\s", raw), raw    # authenticated, no TLS (RFC 3848)


def test_trusted_network_relays_without_auth(tmp_path, start_server, start_postfix, nsd):
    s = Setup(tmp_path, start_server, start_postfix, nsd, "--trusted-network", "127.0.0.0/24")
    with SMTPConn(*s.srv.addr) as c:       # the MX listener, from 127.0.0.1
        c.read_reply()
        r = c.mail_transaction("camera@example.test", ["user@dest.test"],
                               b"Subject: motion detected\r\n\r\nframe attached\r\n",
                               ehlo="camera.lan")
        assert r.code == 250, r
    [raw] = s.pf.wait_for_mail("user", timeout=30)
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert msg["Subject"] == "motion detected" and msg["Date"] and msg["Message-ID"]
    assert "event=trusted" in s.srv.log()
    # Outside the network (127.0.1.1): still no relay.
    with SMTPConn(*s.srv.addr, source="127.0.1.1") as c:
        c.read_reply()
        ehlo(c)
        assert c.cmd("MAIL FROM:<x@example.test>").code == 250
        assert c.cmd("RCPT TO:<user@dest.test>").code == 554


@pytest.mark.parametrize("extra, needle", [
    (["--submission", "127.0.0.30:1"], "--users"),
    (["--submission", "127.0.0.30:0"], "submission: '127.0.0.30:0'"),
    (["--trusted-network", "10.0.0.0/8"], "--spool"),
    (["--trusted-network", "10.0.0.1/8", "--spool", "SPOOL"], "10.0.0.0/8"),
])
def test_start_refused_with_a_clear_message(tmp_path, extra, needle):
    extra = [str(tmp_path / "spool") if a == "SPOOL" else a for a in extra]
    p = subprocess.run([str(rawmail_bin()), "serve", "--listen", f"127.0.0.1:{free_port()}",
                        "--mailroot", str(tmp_path / "mail"), *extra],
                       capture_output=True, timeout=30)
    err = p.stderr.decode(errors="replace") + p.stdout.decode(errors="replace")
    assert p.returncode == 78, (p.returncode, err)
    assert needle in err, err


@pytest.mark.parametrize("submissions", [False, True], ids=["starttls", "smtps"])
def test_rawmail_send_through_rawmail_as_smarthost(tmp_path, start_server, start_postfix, nsd,
                                                   submissions):
    """One rawmail relays through another (the user whose ISP blocks port
    25, with their own rawmail elsewhere): send --relay with AUTH to serve's
    submission listener, whose queue delivers to Postfix through the MX."""
    s = Setup(tmp_path, start_server, start_postfix, nsd, submissions=submissions)
    pwfile = tmp_path / "relay-password"
    pwfile.write_text(PASSWORD + "\n")
    pwfile.chmod(0o600)
    relay = f"{'smtps://' if submissions else ''}{SUB}:{s.sub_port}"
    # serve's certificate is self-signed: --tls require (TLS without
    # verification), as send's own flag says.
    out = send(["--relay", relay, "--auth-user", "alice", "--auth-password-file", pwfile,
                "--tls", "require", "-v", "-f", "alice@example.test", "user@dest.test"],
               "Subject: through two rawmails\n\nrelayed twice\n", expect="ok")
    assert "C> AUTH PLAIN <hidden>" in out.err, out.err
    assert PASSWORD not in out.err and b64(PASSWORD) not in out.err
    [raw] = s.pf.wait_for_mail("user", timeout=30)
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert msg["Subject"] == "through two rawmails"
    ours = [h for h in msg.get_all("Received") if "(rawmail)" in h]
    assert any("with ESMTPSA" in h and "authenticated as alice" in h for h in ours), ours
    # A wrong password: nothing sent, the message stays queued with the reason.
    pwfile.write_text("wrong\n")
    out = send(["--relay", relay, "--auth-user", "alice", "--auth-password-file", pwfile,
                "--tls", "require", "-f", "alice@example.test", "user@dest.test"],
               "Subject: wrong password\n\nx\n", expect="tempfail")
    assert "--auth-user" in out.err or "auth-password-file" in out.err, out.err
