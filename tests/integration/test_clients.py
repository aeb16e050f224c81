"""Real SMTP clients against `rawmail serve`: swaks, curl, msmtp, Python's
smtplib and a raw session typed line by line.  Each test compares the stored
message byte for byte with what the client sent, and checks the headers the
server adds (Return-Path, Delivered-To, Received)."""

import smtplib

from helpers import (
    check_delivery, client_tls_context, crlf, dot_stuff, free_port, mailbox_messages,
    mailboxes_with_mail, run_client, sample_message, sample_message_no_lone_dot,
)

SENDER = "sender@client.test"


def only_message(server, mailbox):
    msgs = mailbox_messages(server.mailroot, mailbox, wait=2.0)
    assert len(msgs) == 1, f"expected one message in {mailbox}, found {len(msgs)}; " \
                           f"mailboxes with mail: {mailboxes_with_mail(server.mailroot)}"
    return msgs[0]


# --------------------------------------------------------------------------- swaks


def swaks(server, tmp_path, rcpt, *extra, host="127.0.0.1"):
    # swaks quotes leading dots but treats a lone "." line as the end, and
    # appends CRLF before its final dot: give it data without a trailing CRLF.
    data = sample_message_no_lone_dot("swaks")[:-2]
    path = tmp_path / "swaks.eml"
    path.write_bytes(data)
    run_client(["swaks", "--server", host, "--port", str(server.port),
                "--helo", "client.test", "--from", SENDER, "--to", rcpt,
                "--data", "@" + str(path), "--timeout", "20", *extra])
    return data + b"\r\n"


def test_swaks_plain(server, tmp_path):
    sent = swaks(server, tmp_path, "user@example.test")
    check_delivery(only_message(server, "user"), sent, SENDER, "user@example.test",
                   helo="client.test", proto="ESMTP")


def test_swaks_starttls(server, tmp_path):
    sent = swaks(server, tmp_path, "user@example.test", "--tls")
    d, f = check_delivery(only_message(server, "user"), sent, SENDER, "user@example.test",
                          helo="client.test", proto="ESMTPS")


def test_swaks_ipv6_literal(start_server, tmp_path):
    srv = start_server(listen=[f"[::1]:{free_port()}"])
    sent = swaks(srv, tmp_path, "user@[IPv6:::1]", host="::1")
    check_delivery(only_message(srv, "user"), sent, SENDER, "user@[IPv6:::1]",
                   helo="client.test", ip="::1", proto="ESMTP")


# --------------------------------------------------------------------------- curl


def curl(server, tmp_path, rcpt, *extra, host="127.0.0.1"):
    data = sample_message("curl")
    path = tmp_path / "curl.eml"
    path.write_bytes(data)
    url_host = f"[{host}]" if ":" in host else host
    run_client(["curl", "-sS", "--max-time", "20", f"smtp://{url_host}:{server.port}/client.test",
                "--mail-from", SENDER, "--mail-rcpt", rcpt, "--upload-file", str(path), *extra])
    return data


def test_curl_plain(server, tmp_path):
    sent = curl(server, tmp_path, "user@example.test")
    check_delivery(only_message(server, "user"), sent, SENDER, "user@example.test",
                   helo="client.test", proto="ESMTP")


def test_curl_starttls(server, tmp_path):
    sent = curl(server, tmp_path, "user@[127.0.0.1]", "--ssl-reqd", "-k")
    check_delivery(only_message(server, "user"), sent, SENDER, "user@[127.0.0.1]",
                   helo="client.test", proto="ESMTPS")


def test_curl_ipv6(start_server, tmp_path):
    srv = start_server(listen=[f"[::1]:{free_port()}"])
    sent = curl(srv, tmp_path, "user@example.test", host="::1")
    check_delivery(only_message(srv, "user"), sent, SENDER, "user@example.test",
                   helo="client.test", ip="::1", proto="ESMTP")


# --------------------------------------------------------------------------- smtplib


def test_smtplib_naive_unbracketed_ip(server):
    """The classic script: sendmail() to recipient@127.0.0.1 (no brackets)."""
    msg = sample_message("smtplib")
    with smtplib.SMTP("127.0.0.1", server.port, local_hostname="client.test", timeout=10) as s:
        refused = s.sendmail("user@192.168.1.50", ["recipient@127.0.0.1"], msg)
    assert refused == {}
    check_delivery(only_message(server, "recipient"), msg, "user@192.168.1.50",
                   "recipient@127.0.0.1", helo="client.test", proto="ESMTP")


def test_smtplib_starttls(server):
    msg = sample_message("smtplib starttls")
    with smtplib.SMTP("127.0.0.1", server.port, local_hostname="client.test", timeout=10) as s:
        s.ehlo()
        assert s.has_extn("starttls")
        code, _ = s.starttls(context=client_tls_context())
        assert code == 220
        assert s.sock.version() in ("TLSv1.2", "TLSv1.3"), s.sock.version()
        s.ehlo()
        assert not s.has_extn("starttls"), "STARTTLS offered again inside TLS"
        refused = s.sendmail(SENDER, ["user@example.test"], msg)
    assert refused == {}
    check_delivery(only_message(server, "user"), msg, SENDER, "user@example.test",
                   helo="client.test", proto="ESMTPS")


def test_smtplib_several_recipients(server):
    """One message to three mailboxes: one copy each, Delivered-To per
    recipient, and no 'for' clause in Received (it would leak Bcc)."""
    msg = sample_message("several")
    rcpts = ["alice@example.test", "bob@[127.0.0.1]", "carol@localhost"]
    with smtplib.SMTP("127.0.0.1", server.port, local_hostname="client.test", timeout=10) as s:
        assert s.sendmail(SENDER, rcpts, msg) == {}
    qids = set()
    for rcpt in rcpts:
        box = rcpt.split("@")[0]
        d, f = check_delivery(only_message(server, box), msg, SENDER, rcpt,
                              helo="client.test", single_rcpt=False)
        qids.add(f["id"])
    assert len(qids) == 1, f"one message should have one queue id: {qids}"


def test_smtplib_null_sender(server):
    msg = sample_message("bounce")
    with smtplib.SMTP("127.0.0.1", server.port, local_hostname="client.test", timeout=10) as s:
        assert s.sendmail("", ["user@example.test"], msg) == {}
    d, f = check_delivery(only_message(server, "user"), msg, "", "user@example.test")
    assert d.return_path == "<>"


# --------------------------------------------------------------------------- msmtp


def msmtp(server, rcpt, *extra, host="127.0.0.1"):
    data = sample_message("msmtp")
    run_client(["msmtp", f"--host={host}", f"--port={server.port}", "--auth=off",
                "--domain=client.test", f"--from={SENDER}", *extra, "--", rcpt],
               input=data)
    return data


def test_msmtp_ipv6_literal(start_server):
    srv = start_server(listen=[f"[::1]:{free_port()}"])
    # A bare user@[IPv6:::1] is an RFC 5322 group to msmtp: quote it.
    sent = msmtp(srv, "<user@[IPv6:::1]>", "--tls=off", host="::1")
    check_delivery(only_message(srv, "user"), sent, SENDER, "user@[IPv6:::1]",
                   helo="client.test", ip="::1", proto="ESMTP")


def test_msmtp_starttls(server):
    sent = msmtp(server, "user@example.test", "--tls=on", "--tls-starttls=on",
                 "--tls-certcheck=off")
    check_delivery(only_message(server, "user"), sent, SENDER, "user@example.test",
                   helo="client.test", proto="ESMTPS")


# --------------------------------------------------------------------------- raw


def test_raw_session_line_by_line(server):
    """HELO / MAIL FROM / RCPT TO / DATA / lines / . / QUIT, one line at a time."""
    c = server.connect()
    r = c.cmd("HELO client.test")
    assert r.code == 250, r
    r = c.cmd(f"MAIL FROM:<{SENDER}>")
    assert (r.code, r.enhanced) == (250, "2.1.0"), r
    r = c.cmd("RCPT TO:<user@example.test>")
    assert (r.code, r.enhanced) == (250, "2.1.5"), r
    r = c.cmd("DATA")
    assert r.code == 354, r
    msg = sample_message("raw")
    for line in dot_stuff(msg).split(b"\r\n")[:-1]:
        c.send(line + b"\r\n")
    r = c.cmd(".")
    assert r.code == 250 and r.enhanced in ("2.0.0", "2.6.0"), r
    r = c.cmd("QUIT")
    assert (r.code, r.enhanced) == (221, "2.0.0"), r
    assert c.read_until_closed(timeout=5) == b""
    c.close()
    # HELO (not EHLO): RFC 3848 says "with SMTP"; accept ESMTP too.
    check_delivery(only_message(server, "user"), msg, SENDER, "user@example.test",
                   helo="client.test", proto=("SMTP", "ESMTP"))


def test_raw_eight_bit_and_utf8(server):
    """8BITMIME body and an SMTPUTF8 envelope stored byte for byte."""
    c = server.session()
    msg = crlf("Subject: =?utf-8?q?gr=C3=BC=C3=9Fe?=\nContent-Type: text/plain; charset=utf-8\n"
               "Content-Transfer-Encoding: 8bit\n\nGrüße, 日本語\n".encode("utf-8")
               + b"latin-1 bytes: \xe9\xff\xfe\x80\n")
    r = c.cmd("MAIL FROM:<jörg@client.test> BODY=8BITMIME SMTPUTF8")
    assert r.code == 250, r
    r = c.cmd("RCPT TO:<user@example.test>")
    assert r.code == 250, r
    r = c.cmd("DATA")
    assert r.code == 354, r
    c.send(dot_stuff(msg) + b".\r\n")
    r = c.read_reply()
    assert r.code == 250, r
    c.cmd("QUIT")
    d, f = check_delivery(only_message(server, "user"), msg, "jörg@client.test",
                          "user@example.test", proto=("UTF8SMTP", "UTF8SMTPS", "ESMTP"))
