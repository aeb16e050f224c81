"""Smoke tests of the Postfix fixture (postfix_util.py), the receiving peer of
the `rawmail send` tests: real clients (swaks, Python's smtplib, the raw
SMTPConn of helpers.py) against private Postfix instances on loopback.

    cd tests/integration && /usr/bin/python3 -m pytest -q test_postfix_peer.py
"""

import os
import re
import signal
import smtplib
import time
from pathlib import Path

import pytest

from helpers import (SMTPConn, client_tls_context, crlf, expected_stored_body, run_client,
                     sample_message, sample_message_no_lone_dot)
from postfix_util import _group_running, _ss_listeners, postfix, start_postfix  # noqa: F401

SENDER = "alice@client.test"


def split_stored(data):
    """(headers Postfix added, the rest) of a message Postfix stored: it puts
    Return-Path, X-Original-To, Delivered-To and Received above the message."""
    lines = data.split(b"\n")
    assert lines[0] == f"Return-Path: <{SENDER}>".encode(), data[:300]
    i = 1
    while not lines[i].startswith(b"Received: "):
        assert lines[i].split(b":")[0] in (b"X-Original-To", b"Delivered-To"), data[:400]
        i += 1
    i += 1
    while lines[i][:1] in (b" ", b"\t"):
        i += 1
    return b"\n".join(lines[:i]) + b"\n", b"\n".join(lines[i:])


def check_stored(data, sent, rcpt):
    """The stored message is what was sent (LF line ends), below Postfix's headers."""
    added, rest = split_stored(data)
    assert f"Delivered-To: {rcpt}\n".encode() in added, added
    assert rest == expected_stored_body(sent), f"stored: {rest!r}\nsent: {sent!r}"
    return added


def smtplib_send(host, port, rcpt, msg, ehlo="client.test", tls=False):
    with smtplib.SMTP(host, port, local_hostname=ehlo, timeout=10) as s:
        s.ehlo()
        if tls:
            s.starttls(context=client_tls_context())
            s.ehlo()
        refused = s.sendmail(SENDER, [rcpt], msg)
        assert refused == {}, refused


def swaks(pf, tmp_path, rcpt, *extra, host=None):
    # swaks quotes leading dots but takes a lone "." line as the end, and
    # appends CRLF before its final dot: give it data without a trailing CRLF.
    data = sample_message_no_lone_dot("swaks")[:-2]
    path = tmp_path / f"swaks-{os.urandom(3).hex()}.eml"
    path.write_bytes(data)
    p = run_client(["swaks", "--server", host or pf.host, "--port", str(pf.port),
                    "--helo", "client.test", "--from", SENDER, "--to", rcpt,
                    "--data", "@" + str(path), "--timeout", "20", *extra])
    return data + b"\r\n", p.stdout.decode(errors="replace")


def rcpt_reply(pf, rcpt, host=None):
    """(code, text) of RCPT TO:<rcpt> in a fresh session."""
    c = SMTPConn(host or pf.host, pf.port)
    try:
        assert c.read_reply().code == 220
        assert c.cmd("EHLO client.test").code == 250
        assert c.cmd(f"MAIL FROM:<{SENDER}>").code == 250
        r = c.cmd(f"RCPT TO:<{rcpt}>")
        c.cmd("QUIT")
        return r.code, r.text
    finally:
        c.close()


# --------------------------------------------------------------------------- start-up


def test_startup_time(start_postfix, capsys):
    times = []
    for _ in range(3):
        t0 = time.monotonic()
        pf = start_postfix()
        t1 = time.monotonic()
        assert pf.stop() == []
        times.append((t1 - t0, pf.start_seconds, time.monotonic() - t1))
    with capsys.disabled():
        print("\npostfix fixture: " + "; ".join(
            f"start {a:.3f} s (postfix start {b:.3f} s), stop {c:.3f} s" for a, b, c in times))
    # Generous: a loaded CI machine may be slow, but not 10x slower.
    assert min(t[0] for t in times) < 3.0, times


def test_fixture_state(postfix):
    pf = postfix
    assert pf.host == "127.0.0.1"
    assert pf.port6 is None
    assert pf.literals == ["[127.0.0.1]"]
    assert _group_running(pf.master_pid)
    held = [a for a, proc in _ss_listeners(pf.port) if f"pid={pf.master_pid}," in proc]
    assert held == [f"127.0.0.1:{pf.port}"], _ss_listeners(pf.port)
    # Greeting with its own hostname; EHLO offers a generous SIZE and no STARTTLS.
    c = SMTPConn(pf.host, pf.port)
    r = c.read_reply()
    assert r.code == 220 and r.texts[0].startswith(pf.hostname), r
    r = c.cmd("EHLO client.test")
    assert "SIZE 67108864" in r.texts and "STARTTLS" not in r.texts, r
    c.cmd("QUIT")
    c.close()
    assert pf.messages("user") == []


def test_stop_leaves_nothing(start_postfix, tmp_path):
    pf = start_postfix()
    smtplib_send(pf.host, pf.port, "user@example.test", sample_message())
    pf.wait_for_mail("user")
    run_dir, pid = pf.dir, pf.master_pid
    assert (tmp_path / "postfix0").is_symlink()
    assert pf.stop() == []
    assert pf.stop() == []                      # idempotent
    assert not _group_running(pid)
    assert _ss_listeners(pf.port) == []
    assert not run_dir.exists()                 # nothing left in /tmp
    assert pf.dir == tmp_path / "postfix0" and not pf.dir.is_symlink()
    assert len(pf.messages("user")) == 1        # the mail moved with it
    assert "daemon started" in pf.log()


# --------------------------------------------------------------------------- delivery


def test_smtplib_to_domain(postfix):
    sent = sample_message()                     # lone and leading dots, blank line
    smtplib_send(postfix.host, postfix.port, "user@example.test", sent)
    [data] = postfix.wait_for_mail("user", 1)
    added = check_stored(data, sent, "user@example.test")
    assert b"by postfix0.test (Postfix) with ESMTP id" in added, added
    assert b"unknown [127.0.0.1]" in added, added   # no PTR lookup


def test_swaks_to_domain(postfix, tmp_path):
    sent, _ = swaks(postfix, tmp_path, "user@example.test")
    [data] = postfix.wait_for_mail("user", 1)
    check_stored(data, sent, "user@example.test")


def test_smtplib_to_literal(postfix):
    sent = sample_message()
    smtplib_send(postfix.host, postfix.port, "user@[127.0.0.1]", sent)
    [data] = postfix.wait_for_mail("user", 1)
    check_stored(data, sent, "user@[127.0.0.1]")


def test_swaks_to_literal(postfix, tmp_path):
    sent, _ = swaks(postfix, tmp_path, "user@[127.0.0.1]")
    [data] = postfix.wait_for_mail("user", 1)
    check_stored(data, sent, "user@[127.0.0.1]")


def test_several_messages_and_users(start_postfix):
    pf = start_postfix(users=["user", "bob", "carol@only.test"])
    msgs = {r: sample_message() for r in
            ["user@example.test", "Bob@Example.Test", "bob@[127.0.0.1]", "carol@only.test"]}
    with smtplib.SMTP(pf.host, pf.port, timeout=10) as s:
        for rcpt, m in msgs.items():
            assert s.sendmail(SENDER, [rcpt], m) == {}
    assert len(pf.wait_for_mail("bob", 2)) == 2
    assert len(pf.wait_for_mail("carol@only.test", 1)) == 1
    [data] = pf.wait_for_mail("user", 1)
    check_stored(data, msgs["user@example.test"], "user@example.test")
    # carol has only her one address: not carol@example.test
    assert rcpt_reply(pf, "carol@example.test")[0] == 550
    pf.wait_idle()
    assert len(pf.messages("bob")) == 2 and len(pf.messages("user")) == 1


def test_big_message(postfix):
    body = b"".join(b"%07d " % i + b"x" * 70 + b"\r\n" for i in range(40000))   # 3.1 MB
    sent = crlf("From: a@client.test\nSubject: big\n\n") + body
    smtplib_send(postfix.host, postfix.port, "user@example.test", sent)
    [data] = postfix.wait_for_mail("user", 1, timeout=30)
    check_stored(data, sent, "user@example.test")


# --------------------------------------------------------------------------- refusals


def test_unknown_user_550(postfix):
    code, text = rcpt_reply(postfix, "nobody-here@example.test")
    assert code == 550 and text.startswith("5.1.1 "), (code, text)
    code, text = rcpt_reply(postfix, "nobody-here@[127.0.0.1]")
    assert code == 550 and text.startswith("5.1.1 "), (code, text)
    with smtplib.SMTP(postfix.host, postfix.port, timeout=10) as s:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
            s.sendmail(SENDER, ["ghost@example.test"], sample_message())
    assert e.value.recipients["ghost@example.test"][0] == 550
    postfix.wait_idle()
    assert list(postfix.mail_root.iterdir()) == []


@pytest.mark.parametrize("rcpt", ["user@other.test", "user@[127.0.0.9]", "user@[IPv6:::1]"])
def test_relay_refused(postfix, rcpt):
    code, text = rcpt_reply(postfix, rcpt)
    assert code in (554, 454) and text.startswith(f"{code // 100}.7.1 "), (code, text)
    assert "Relay access denied" in text, text
    postfix.wait_idle()
    assert list(postfix.mail_root.iterdir()) == []


def test_bare_ip_domain(start_postfix):
    pf = start_postfix()
    code, text = rcpt_reply(pf, "user@127.0.0.1")
    assert code == 501 and text.startswith("5.1.3 "), (code, text)
    pf2 = start_postfix(resolve_numeric_domain=True)
    sent = sample_message()
    smtplib_send(pf2.host, pf2.port, "user@127.0.0.1", sent)
    [data] = pf2.wait_for_mail("user", 1)
    check_stored(data, sent, "user@[127.0.0.1]")


# --------------------------------------------------------------------------- TLS


def test_starttls_smtplib(start_postfix):
    pf = start_postfix(tls=True)
    c = SMTPConn(pf.host, pf.port)
    c.read_reply()
    assert "STARTTLS" in c.cmd("EHLO client.test").texts
    c.starttls()
    der = c.sock.getpeercert(binary_form=True)
    assert der and c.sock.version().startswith("TLS"), c.sock.version()
    assert "STARTTLS" not in c.cmd("EHLO client.test").texts
    c.cmd("QUIT")
    c.close()
    sent = sample_message()
    smtplib_send(pf.host, pf.port, "user@example.test", sent, tls=True)
    [data] = pf.wait_for_mail("user", 1)
    added = check_stored(data, sent, "user@example.test")
    assert re.search(rb"\(using TLSv1\.[23] ", added), added
    assert b"with ESMTPS id" in added, added


def test_starttls_swaks(start_postfix, tmp_path):
    pf = start_postfix(tls=True)
    sent, out = swaks(pf, tmp_path, "user@example.test", "--tls")
    assert "TLS started" in out, out
    [data] = pf.wait_for_mail("user", 1)
    added = check_stored(data, sent, "user@example.test")
    assert b"with ESMTPS id" in added, added
    # The certificate the fixture made is the one served.
    assert pf.cert_path.read_text().startswith("-----BEGIN CERTIFICATE-----")


# --------------------------------------------------------------------------- addresses


def test_ipv6(start_postfix, tmp_path):
    pf = start_postfix(ipv6=True)
    assert pf.port6 == pf.port and pf.host6 == "::1"
    assert pf.literals == ["[127.0.0.1]", "[IPv6:::1]"]
    # swaks over ::1 (PEERS.md gotcha 9: needs libio-socket-inet6-perl)
    sent, _ = swaks(pf, tmp_path, "user@[IPv6:::1]", host="::1")
    [data] = pf.wait_for_mail("user", 1)
    added = check_stored(data, sent, "user@[IPv6:::1]")
    assert b"unknown [IPv6:::1]" in added, added
    sent = sample_message()
    smtplib_send("::1", pf.port, "user@example.test", sent)
    smtplib_send("127.0.0.1", pf.port, "user@[IPv6:::1]", sent)
    assert len(pf.wait_for_mail("user", 3)) == 3


def test_two_instances_same_port(start_postfix):
    a = start_postfix(host="127.0.0.2", domains=["a.test"], users=["alice"])
    b = start_postfix(host="127.0.0.3", port=a.port, domains=["b.test"], users=["bob"])
    assert a.port == b.port and a.master_pid != b.master_pid
    assert a.literals == ["[127.0.0.2]"] and b.literals == ["[127.0.0.3]"]
    held = sorted(addr for addr, proc in _ss_listeners(a.port))
    assert held == [f"127.0.0.2:{a.port}", f"127.0.0.3:{a.port}"], held
    for pf, rcpt in [(a, "alice@a.test"), (a, "alice@[127.0.0.2]"),
                     (b, "bob@b.test"), (b, "bob@[127.0.0.3]")]:
        smtplib_send(pf.host, pf.port, rcpt, sample_message())
    assert len(a.wait_for_mail("alice", 2)) == 2
    assert len(b.wait_for_mail("bob", 2)) == 2
    # Each is its own MTA: the other's domain and literal are relaying.
    assert rcpt_reply(a, "bob@b.test")[0] == 554
    assert rcpt_reply(b, "alice@[127.0.0.2]")[0] == 554
    assert rcpt_reply(b, "bob@[127.0.0.2]")[0] == 554
    # ... but [127.0.0.1] is a local domain of both (inet_interfaces: see
    # postfix_util), with no users on b: unknown user, not relaying.
    code, text = rcpt_reply(b, "bob@[127.0.0.1]")
    assert code == 550 and "User unknown" in text, (code, text)
    # A connection to 127.0.0.1 on that port reaches neither.
    with pytest.raises(ConnectionRefusedError):
        SMTPConn("127.0.0.1", a.port).close()
    a.wait_idle()
    b.wait_idle()
    assert [p.name for p in a.mail_root.iterdir()] == ["alice"]
    assert [p.name for p in b.mail_root.iterdir()] == ["bob"]
    # The same address and port twice is refused (PEERS.md gotcha 5).
    with pytest.raises(pytest.fail.Exception, match="already in use"):
        start_postfix(host="127.0.0.2", port=a.port)


def test_clear_mail_and_wait_log(postfix):
    smtplib_send(postfix.host, postfix.port, "user@example.test", sample_message())
    postfix.wait_for_mail("user")
    m = postfix.wait_log(r"to=<user@example\.test>, relay=virtual, .* status=(\w+) \((.*)\)")
    assert m.groups() == ("sent", "delivered to maildir"), m.group(0)
    postfix.clear_mail()
    assert postfix.messages("user") == []
    smtplib_send(postfix.host, postfix.port, "user@example.test", sample_message())
    assert len(postfix.wait_for_mail("user")) == 1


# --------------------------------------------------------------------------- no DNS


def _strace_pid(marker):
    """Pid of the strace whose command line holds `marker` (the one this test
    started: its output file name is unique), or None."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"strace") and marker.encode() in cmd:
            return int(entry)
    return None


def test_no_dns_lookups(start_postfix, tmp_path):
    """strace every Postfix process from `postfix start` to the stop, while
    mail comes in over IPv4 and IPv6, to a domain, to literals, to an unknown
    user, to a relay domain, with STARTTLS: nothing may send to port 53 or
    even read /etc/resolv.conf (the machine's resolver is not loopback)."""
    trace = tmp_path / f"strace-{os.urandom(4).hex()}.out"
    pf = start_postfix(tls=True, ipv6=True, wrapper=[
        "strace", "-D", "-f", "-qq", "-o", str(trace),
        "-e", "trace=connect,sendto,sendmsg,sendmmsg,open,openat"])
    try:
        smtplib_send(pf.host, pf.port, "user@example.test", sample_message(), tls=True)
        smtplib_send("::1", pf.port, "user@[IPv6:::1]", sample_message())
        smtplib_send(pf.host, pf.port, "user@[127.0.0.1]", sample_message())
        assert rcpt_reply(pf, "ghost@example.test")[0] == 550
        assert rcpt_reply(pf, "user@elsewhere.test")[0] == 554
        assert rcpt_reply(pf, "user@127.0.0.1")[0] == 501
        pf.wait_for_mail("user", 3)
        pf.wait_idle()
        assert pf.stop() == []
    finally:
        pid = _strace_pid(str(trace))
        deadline = time.monotonic() + 10
        while pid and _strace_pid(str(trace)) and time.monotonic() < deadline:
            time.sleep(0.05)            # strace ends when its last tracee does
        if pid and _strace_pid(str(trace)):
            os.kill(pid, signal.SIGKILL)
    text = trace.read_text(errors="replace")
    assert "smtpd" in text or "connect(" in text, "strace saw nothing:\n" + text[:2000]
    dns = [l for l in text.splitlines()
           if re.search(r"port=htons\(53\)|resolv\.conf|/etc/hosts\b", l)]
    assert dns == [], "DNS activity:\n" + "\n".join(dns)
    log = pf.log()
    assert "connect from unknown[127.0.0.1]" in log and "connect from unknown[::1]" in log
    assert not re.search(r"(?i)host not found|name service|dns|resolv|lookup for host", log), log
