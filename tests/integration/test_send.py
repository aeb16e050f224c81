"""`rawmail send` end to end: a real NSD answers the MX and address
queries, real `rawmail serve` instances on 127.0.0.x receive.  Every
destination shares one port number (--port), on different loopback
addresses (PEERS.md: every 127.x.y.z reaches lo).

Only loopback: every run passes --dns with the test's NSD, or uses address
literals only.
"""

import re
import socket
import subprocess
import time

import pytest

from dns_util import dead_dns, nsd, ptr_zones  # noqa: F401 (fixtures)
from helpers import (Delivered, assert_no_mail, check_delivery, crlf, free_port,
                     mailbox_messages, rawmail_bin, sample_message)
from send_util import SENDER, send

ZONE = """\
@             MX 10 mx1
@             MX 20 mx2
mx1           A 127.0.0.2
mx2           A 127.0.0.3
aonly         A 127.0.0.2
null          MX 0 .
alias         CNAME @
txt           TXT "v=spf1 -all"
txt           MX 10 mx1
"""


@pytest.fixture
def port():
    return free_port()


@pytest.fixture
def dns(nsd):
    return nsd({"example.test": ZONE})


def serve_at(start_server, ip, port, *args, mailroot=None, domains=("example.test",)):
    extra = list(args)
    for d in domains:
        if d != "example.test":     # start_server gives that one
            extra += ["--domain", d]
    return start_server(*extra, listen=[f"{ip}:{port}"], mailroot=mailroot)


def test_literal_raw_message_arrives_byte_exact(start_server, port):
    srv = serve_at(start_server, "127.0.0.1", port)
    msg = sample_message("send literal")
    s = send(["-f", SENDER, "--port", port, "user@[127.0.0.1]"], msg, expect="ok")
    assert re.match(rf"user@\[127\.0\.0\.1\]: delivered to \[127\.0\.0\.1\]:{port}: 250 2\.0\.0 ",
                    s.result("user@[127.0.0.1]")), s
    [data] = mailbox_messages(srv.mailroot, "user", wait=2)
    check_delivery(data, msg, SENDER, "user@[127.0.0.1]", ip="127.0.0.1",
                   proto=("ESMTPS", "ESMTP"))
    # opportunistic TLS by default: rawmail serve offers STARTTLS
    assert "ESMTPS" in Delivered(data).received


def test_tls_none_and_plain_server(start_server, port):
    srv = serve_at(start_server, "127.0.0.1", port, "--tls", "no")
    msg = sample_message("plain")
    send(["-f", SENDER, "--port", port, "--tls", "none", "user@[127.0.0.1]"], msg,
         expect="ok")
    [data] = mailbox_messages(srv.mailroot, "user", wait=2)
    check_delivery(data, msg, SENDER, "user@[127.0.0.1]", proto="ESMTP")


def test_require_tls_against_plain_server_is_temporary(start_server, port):
    srv = serve_at(start_server, "127.0.0.1", port, "--tls", "no")
    s = send(["--port", port, "--tls", "require", "user@[127.0.0.1]"], sample_message(),
             expect="tempfail")
    assert "STARTTLS" in s.result("user@[127.0.0.1]") or "TLS" in s.result("user@[127.0.0.1]"), s
    assert "queued as" in s.err and "not queued" not in s.err, s
    assert_no_mail(srv.mailroot)


def test_compose_with_subject(start_server, port):
    srv = serve_at(start_server, "127.0.0.1", port)
    s = send(["-f", SENDER, "-s", "Grüße from me", "--port", port, "kfl@[127.0.0.1]"],
             "Hello there\nsecond line\n", expect="ok")
    [data] = mailbox_messages(srv.mailroot, "kfl", wait=2)
    d = Delivered(data)
    head, _, body = d.body.partition(b"\n\n")
    assert b"From: alice@client.test" in head
    assert b"To: kfl@[127.0.0.1]" in head
    assert b"Subject: =?UTF-8?" in head, head
    assert re.search(rb"(?m)^Message-ID: <[^>]+>$", head)
    assert re.search(rb"(?m)^Date: ", head)
    assert b"MIME-Version: 1.0" in head
    assert body == b"Hello there\nsecond line\n", body


def test_mx_order_first_down_second_takes_it(start_server, dns, port):
    # mx1 (127.0.0.2) has nothing listening: connection refused, next host.
    srv = serve_at(start_server, "127.0.0.3", port)
    s = send(["-v", "--dns", dns.addr, "--port", port, "-f", SENDER, "user@example.test"],
             sample_message(), expect="ok")
    t = "\n".join(s.transcript())
    assert t.index("connecting to mx1.example.test [127.0.0.2]") < \
        t.index("connecting to mx2.example.test [127.0.0.3]"), s
    assert "refused" in t
    assert "delivered to mx2.example.test [127.0.0.3]" in s.result("user@example.test")
    assert len(mailbox_messages(srv.mailroot, "user", wait=2)) == 1


def test_preferred_mx_used_when_up(start_server, dns, port, tmp_path):
    one = serve_at(start_server, "127.0.0.2", port, mailroot=tmp_path / "m1")
    two = serve_at(start_server, "127.0.0.3", port, mailroot=tmp_path / "m2")
    send(["--dns", dns.addr, "--port", port, "user@example.test"], sample_message(),
         expect="ok")
    assert len(mailbox_messages(one.mailroot, "user", wait=2)) == 1
    assert_no_mail(two.mailroot)


def test_implicit_mx_a_only_domain(start_server, dns, port):
    srv = serve_at(start_server, "127.0.0.2", port, domains=("aonly.example.test",))
    s = send(["--dns", dns.addr, "--port", port, "user@aonly.example.test"], sample_message(),
             expect="ok")
    assert "aonly.example.test [127.0.0.2]" in s.result("user@aonly.example.test")
    assert len(mailbox_messages(srv.mailroot, "user", wait=2)) == 1


def test_cname_domain_followed(start_server, dns, port):
    srv = serve_at(start_server, "127.0.0.2", port, domains=("example.test", "alias.example.test"))
    send(["--dns", dns.addr, "--port", port, "user@alias.example.test"], sample_message(),
         expect="ok")
    assert len(mailbox_messages(srv.mailroot, "user", wait=2)) == 1


def test_domain_with_txt_records_and_mx(start_server, dns, port):
    srv = serve_at(start_server, "127.0.0.2", port, domains=("txt.example.test",))
    send(["--dns", dns.addr, "--port", port, "user@txt.example.test"], sample_message(),
         expect="ok")
    assert len(mailbox_messages(srv.mailroot, "user", wait=2)) == 1


def test_null_mx_is_permanent_556(dns, port):
    s = send(["--dns", dns.addr, "--port", port, "user@null.example.test"], sample_message(),
             expect="unavailable")
    r = s.result("user@null.example.test")
    assert "556 5.1.10" in r, s


def test_nxdomain_is_permanent(dns, port):
    s = send(["--dns", dns.addr, "--port", port, "user@nosuch.example.test"], sample_message(),
             expect="unavailable")
    assert "refused (permanent)" in s.result("user@nosuch.example.test"), s


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_dead_resolver_is_temporary(dead_dns, port, host):
    """A resolver that never answers: temporary, and (issue 8 item 19) the
    result names the resolver that was asked."""
    resolver = dead_dns(host)
    s = send(["--dns", resolver, "--port", port, "user@example.test"], sample_message(),
             expect="tempfail", timeout=90)
    r = s.result("user@example.test")
    assert "temporary" in r, s
    assert f"(resolver {resolver})" in r, s
    assert "queued as" in s.err, s


def test_dry_run_prints_plan_and_connects_nowhere(dns, port):
    s = send(["--dry-run", "-4", "--dns", dns.addr, "--port", port, "a@example.test",
              "b@EXAMPLE.test", "c@[127.0.0.9]"], sample_message(), expect="ok")
    lines = s.out.splitlines()
    i = lines.index("example.test:")
    # Issue 8 item 19: a port other than 25 is shown where it applies.
    assert f"mx1.example.test [127.0.0.2]:{port} (MX preference 10)" in lines[i + 1], s
    assert f"mx2.example.test [127.0.0.3]:{port} (MX preference 20)" in lines[i + 2], s
    assert "[127.0.0.9]:" in lines
    assert f"[127.0.0.9]:{port} (address literal)" in s.out


def test_dry_run_port_25_not_shown(dns):
    s = send(["--dry-run", "-4", "--dns", dns.addr, "a@example.test", "c@[127.0.0.9]"],
             sample_message(), expect="ok")
    assert "mx1.example.test [127.0.0.2] (MX preference 10)" in s.out, s
    assert "  1. 127.0.0.9 (address literal)" in s.out, s


def test_dry_run_null_mx_exits_69(dns, port):
    s = send(["--dry-run", "--dns", dns.addr, "u@null.example.test", "v@example.test"],
             sample_message(), expect="unavailable")
    assert "556 5.1.10" in s.result("u@null.example.test")


def test_recipients_grouped_one_transaction_per_destination(start_server, dns, port, tmp_path):
    one = serve_at(start_server, "127.0.0.2", port, mailroot=tmp_path / "m1",
                   domains=("example.test", "aonly.example.test"))
    rcpts = ["a@example.test", "b@example.test", "c@aonly.example.test", "d@[127.0.0.2]"]
    s = send(["-v", "--dns", dns.addr, "--port", port, *rcpts], sample_message(), expect="ok")
    mails = s.commands().count("DATA")
    assert mails == 3, s   # example.test, aonly.example.test, [127.0.0.2]
    assert s.commands().count("MAIL FROM:<alice@client.test>") <= 3
    for name in ("a", "b", "c", "d"):
        assert len(mailbox_messages(one.mailroot, name, wait=2)) == 1, name


def test_unknown_user_permanent_others_delivered(start_server, port):
    srv = serve_at(start_server, "127.0.0.1", port, "--mailbox", "known")
    s = send(["--port", port, "known@[127.0.0.1]", "nobody@example.test@x"], b"", expect="usage")
    assert "nobody@example.test@x" in s.err
    assert_no_mail(srv.mailroot)


def test_unbracketed_ip_taken_as_literal(start_server, port):
    srv = serve_at(start_server, "127.0.0.1", port)
    s = send(["--port", port, "user@127.0.0.1"], sample_message(), expect="ok")
    assert "user@127.0.0.1 taken as user@[127.0.0.1]" in s.err
    assert len(mailbox_messages(srv.mailroot, "user", wait=2)) == 1


@pytest.mark.parametrize("rcpt", ["user.", "user@", "@example.test", "us er@example.test",
                                  "user@[300.1.1.1]", "user@exa_mple..test",
                                  "user@[tag:foo]", "<user@example.test"])
def test_malformed_recipient_usage_error_nothing_sent(start_server, port, rcpt):
    srv = serve_at(start_server, "127.0.0.1", port)
    s = send(["--port", port, "ok@[127.0.0.1]", rcpt], sample_message(), expect="usage")
    assert rcpt in s.err
    assert_no_mail(srv.mailroot)


@pytest.mark.parametrize("args", [["-s", "hi\r\nBcc: evil@example.test"],
                                  ["-s", "hi\nX: y"],
                                  ["-f", "a@b.test\r\nRCPT TO:<evil@example.test>"],
                                  ["-F", "Name\nBcc: evil@example.test"]])
def test_header_injection_refused(start_server, port, args):
    srv = serve_at(start_server, "127.0.0.1", port)
    s = send([*args, "--port", port, "ok@[127.0.0.1]"], "body\n", expect="usage")
    assert "line break" in s.err, s
    assert_no_mail(srv.mailroot)


def test_bad_sender_usage_error(port):
    send(["-f", "not an address", "--port", port, "ok@[127.0.0.1]"], "x\n", expect="usage")


def test_long_line_raw_message_is_65(start_server, port):
    srv = serve_at(start_server, "127.0.0.1", port)
    msg = b"Subject: x\r\n\r\n" + b"a" * 999 + b"\r\n"
    s = send(["--port", port, "ok@[127.0.0.1]"], msg, expect="dataerr")
    assert "998" in s.err
    assert_no_mail(srv.mailroot)


@pytest.mark.parametrize("body", [b"\x00.\r\n", b"a\x00b\r\n", b"\x00"])
def test_nul_in_raw_message_is_65(start_server, port, body):
    """Issue 8 item 15: RFC 5322 §2.3 and 8BITMIME (RFC 6152 §3) exclude
    NUL from a message; "\r\n\x00.\r\n" would leave as "\x00." for a
    receiver to read as it likes.  Refused with 65 and the line number,
    as a line over 998 octets is, before anything is sent."""
    srv = serve_at(start_server, "127.0.0.1", port)
    msg = b"Subject: x\r\n\r\nfirst\r\n" + body + b"last\r\n"
    s = send(["--port", port, "ok@[127.0.0.1]"], msg, expect="dataerr")
    assert "line 4 " in s.err and "NUL" in s.err, s
    assert_no_mail(srv.mailroot)


def test_composed_long_line_is_quoted_printable(start_server, port):
    srv = serve_at(start_server, "127.0.0.1", port)
    send(["-s", "long", "--port", port, "u@[127.0.0.1]"], "x" * 5000 + "\n", expect="ok")
    [data] = mailbox_messages(srv.mailroot, "u", wait=2)
    assert b"quoted-printable" in data
    assert max(len(l) for l in data.split(b"\n")) <= 998


def test_missing_headers_added_bcc_removed_t_extracts(start_server, port):
    srv = serve_at(start_server, "127.0.0.1", port)
    msg = crlf("To: to@[127.0.0.1]\nCc: Someone <cc@[127.0.0.1]>\n"
               "Bcc: hidden@[127.0.0.1]\nSubject: t\n\nbody\n")
    send(["-t", "-f", SENDER, "--port", port], msg, expect="ok")
    for name in ("to", "cc", "hidden"):
        [data] = mailbox_messages(srv.mailroot, name, wait=2)
        d = Delivered(data)
        assert b"Bcc" not in d.body and b"hidden@" not in d.body.split(b"\n\n")[0]
        head = d.body.split(b"\n\n")[0]
        assert re.search(rb"(?m)^Date: ", head) and re.search(rb"(?m)^Message-ID: ", head)
        assert b"From: alice@client.test" in head


def test_lf_only_input_and_lone_dots_are_stuffed(start_server, port):
    srv = serve_at(start_server, "127.0.0.1", port)
    msg = b"Subject: dots\n\n.\n..\n.x\nend\n"
    send(["--port", port, "u@[127.0.0.1]"], msg, expect="ok")
    [data] = mailbox_messages(srv.mailroot, "u", wait=2)
    body = Delivered(data).body
    assert body.endswith(b"\n\n.\n..\n.x\nend\n"), body


def test_attachment_multipart(start_server, port, tmp_path):
    srv = serve_at(start_server, "127.0.0.1", port)
    f = tmp_path / "report.pdf"
    f.write_bytes(b"%PDF-1.4 binary \x00\xff data")
    send(["-s", "with file", "--attach", f, "--port", port, "u@[127.0.0.1]"], "see attached\n",
         expect="ok")
    [data] = mailbox_messages(srv.mailroot, "u", wait=2)
    assert b"multipart/mixed" in data and b"application/pdf" in data
    assert b'filename="report.pdf"' in data or b"filename=report.pdf" in data


def test_verbose_transcript_summarises_body_and_vv_shows_it(start_server, port):
    serve_at(start_server, "127.0.0.1", port)
    msg = sample_message("transcript")
    s = send(["-v", "--port", port, "u@[127.0.0.1]"], msg, expect="ok")
    t = s.transcript()
    assert t[1].startswith("S> 220 ") and any(l.startswith("C> EHLO ") for l in t), s
    assert any(re.match(r"C> \(\d+ lines of message\)", l) for l in t)
    assert not any("Hello from the integration tests." in l for l in t)
    s = send(["-vv", "--port", port, "u@[127.0.0.1]"], msg, expect="ok")
    c = s.commands()
    body = c[c.index("DATA") + 1:c.index(".", c.index("DATA") + 1) + 1]
    # what went on the wire: every line, dot-stuffed, then the lone dot
    sent = msg.decode().replace("\r\n", "\n").split("\n")[:-1]
    assert body == [("." + l if l.startswith(".") else l) for l in sent] + ["."], s


def test_ipv6_literal(start_server, port):
    srv = start_server(listen=[f"[::1]:{port}"])
    send(["--port", port, "u@[IPv6:::1]"], sample_message(), expect="ok")
    [data] = mailbox_messages(srv.mailroot, "u", wait=2)
    assert Delivered(data).received_fields()["ip"] in ("::1", "IPv6:::1")


def test_family_flag_conflicts_with_literal(port):
    s = send(["-4", "--port", port, "u@[IPv6:::1]"], "x\n", expect="usage")
    assert "-4" in s.err


def _listener_with_full_backlog(ip, port):
    """A listener that never accepts, its backlog filled: further SYNs are
    dropped, so connects time out instead of being refused."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((ip, port))
    ls.listen(0)
    fillers = []
    for _ in range(4):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect((ip, port))
        except BlockingIOError:
            pass
        fillers.append(c)
    return [ls, *fillers]


def test_every_address_times_out_port_25_probably_blocked(dns, port):
    socks = _listener_with_full_backlog("127.0.0.2", port) + \
        _listener_with_full_backlog("127.0.0.3", port)
    try:
        s = send(["--dns", dns.addr, "--port", port, "--timeout", "2", "u@example.test"],
                 sample_message(), expect="tempfail", timeout=60)
    finally:
        for x in socks:
            x.close()
    r = s.result("u@example.test")
    assert "timed out" in r and "probably" in r and "blocked" in r, s


def test_refused_connections_are_not_called_blocked(dns, port):
    s = send(["--dns", dns.addr, "--port", port, "u@example.test"], sample_message(),
             expect="tempfail")
    r = s.result("u@example.test")
    assert "blocked" not in r and "refused" in r.lower(), s


IPV6_ZONE = """\
@             MX 10 mx
mx            A 127.0.0.1
mx            AAAA ::1
"""


@pytest.mark.parametrize("ptr", [True, False])
def test_ipv6_first_only_with_confirmed_ptr(nsd, start_server, port, ptr):
    zones = {"dual.test": IPV6_ZONE + "me AAAA ::1\n"}
    if ptr:
        zones.update(ptr_zones({"::1": "me.dual.test"}))
    dns = nsd(zones, ipv6=True)
    srv = start_server("--domain", "dual.test", listen=[f"127.0.0.1:{port}", f"[::1]:{port}"])
    s = send(["-v", "--dns", dns.addr, "--port", port, "u@dual.test"], sample_message(),
             expect="ok")
    [data] = mailbox_messages(srv.mailroot, "u", wait=2)
    ip = Delivered(data).received_fields()["ip"]
    if ptr:
        assert ip in ("::1", "IPv6:::1"), s
        assert "has PTR me.dual.test: IPv6 first" in s.err, s
    else:
        assert ip == "127.0.0.1", s
        assert "IPv4 first" in s.err, s


def test_dash6_forces_ipv6(nsd, start_server, port):
    dns = nsd({"dual.test": IPV6_ZONE}, ipv6=True)
    srv = start_server("--domain", "dual.test", listen=[f"127.0.0.1:{port}", f"[::1]:{port}"])
    send(["-6", "--dns", dns.addr6, "--port", port, "u@dual.test"], sample_message(),
         expect="ok")
    [data] = mailbox_messages(srv.mailroot, "u", wait=2)
    assert Delivered(data).received_fields()["ip"] in ("::1", "IPv6:::1")


@pytest.mark.parametrize("helo", ["mail.example.test\r\nRSET", "bad name", "[1.2.3]", "", "a..b"])
def test_bad_helo_is_usage_error(start_server, port, helo):
    srv = serve_at(start_server, "127.0.0.1", port)
    s = send(["--helo", helo, "--port", port, "u@[127.0.0.1]"], "x\n", expect="usage")
    assert "--helo" in s.err
    assert_no_mail(srv.mailroot)


@pytest.mark.parametrize("helo", ["client.example.test", "[127.0.0.1]"])
def test_helo_given_is_used(start_server, port, helo):
    srv = serve_at(start_server, "127.0.0.1", port)
    send(["--helo", helo, "--port", port, "u@[127.0.0.1]"], sample_message(), expect="ok")
    [data] = mailbox_messages(srv.mailroot, "u", wait=2)
    assert Delivered(data).received_fields()["helo"] == helo


def test_receiver_sees_our_forward_confirmed_name(nsd, start_server, port):
    # The reverse zone of the issue: 1.0.0.127.in-addr.arpa PTR mail.example.test,
    # and its A record: a receiver doing FCrDNS (rawmail serve here) names us.
    zones = {"example.test": ZONE + "mail A 127.0.0.1\n"}
    zones.update(ptr_zones({"127.0.0.1": "mail.example.test"}))
    dns = nsd(zones)
    srv = start_server("--dns", dns.addr, "--rdns", "yes", listen=[f"127.0.0.2:{port}"])
    send(["--helo", "mail.example.test", "--dns", dns.addr, "--port", port,
          "u@[127.0.0.2]"], sample_message(), expect="ok")
    [data] = mailbox_messages(srv.mailroot, "u", wait=2)
    f = Delivered(data).received_fields()
    assert f["helo"] == "mail.example.test" and "mail.example.test" in f["info"], f


def test_utf8_recipient_does_not_fail_ascii_ones_elsewhere(start_server, port):
    # The peer at 127.0.0.1 offers no SMTPUTF8: the ASCII recipient there
    # must still be sent plainly; only the UTF-8 one's destination needs it.
    from peers import ScriptedPeer, ehlo_ok
    peer = ScriptedPeer(lambda line: b"250 2.0.0 queued\r\n" if line == b"<dot>"
                        else ehlo_ok(line), host="127.0.0.1", port=port)
    srv = serve_at(start_server, "127.0.0.2", port)
    s = send(["-v", "--tls", "none", "--port", port, "ascii@[127.0.0.1]", "üser@[127.0.0.2]"],
             sample_message())
    peer.close()
    assert "delivered" in s.result("ascii@[127.0.0.1]"), s
    mails = [c for c in peer.conns[0].commands if c.startswith(b"MAIL")]
    assert mails and b"SMTPUTF8" not in mails[0], peer.conns[0].commands
    assert any("SMTPUTF8" in c for c in s.commands() if c.startswith("MAIL")), s


def test_internationalised_domain_one_spelling(port):
    """An internationalised domain is taken in its A-label form (issue 8
    item 19; test_send_peers.py delivers to one): its U-label and A-label
    spellings are one mailbox, asked for once."""
    s = send(["--port", port, "user@BÜCHER.example", "user@xn--bcher-kva.example"], "x\n",
             expect="tempfail")    # the default dead resolver: nothing is found
    assert s.err.count("user@xn--bcher-kva.example: not delivered") == 1, s
    assert "BÜCHER" not in s.err, s


@pytest.mark.parametrize("rcpts,listen", [
    (["u@[127.0.0.1]", "u@127.0.0.1"], "127.0.0.1"),
    (["u@[IPv6:::1]", "u@[IPv6:0:0::1]"], "[::1]"),
    (["u@Example.TEST", "u@example.test"], "127.0.0.2")])
def test_one_mailbox_spelled_twice_is_sent_once(start_server, dns, port, rcpts, listen):
    srv = start_server(listen=[f"{listen}:{port}"])
    s = send(["-v", "--dns", dns.addr, "--port", port, *rcpts], sample_message(), expect="ok")
    assert len([c for c in s.commands() if c.startswith("RCPT")]) == 1, s
    assert len(mailbox_messages(srv.mailroot, "u", wait=2)) == 1


def test_bare_word_that_is_no_local_name_says_why(port):
    # A bare local name (root) is local mail now (test_local_mail.py);
    # what is neither that nor an address is refused with the reason.
    s = send(["--port", port, "ro ot"], "x\n", expect="usage")
    assert "neither a local name (root) nor an address" in s.err, s


def test_serve_try_line_works(start_server, port, tmp_path):
    """Issue 8 item 19: the `try:` line serve prints at start-up is a
    `rawmail send --port` command (not curl), and run as printed it
    delivers."""
    srv = serve_at(start_server, "127.0.0.1", port)
    deadline = time.monotonic() + 10
    while "try: " not in srv.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    [line] = [l for l in srv.log().splitlines() if l.startswith("rawmail serve: try: ")]
    cmd = line[len("rawmail serve: try: "):]
    assert "| rawmail send " in cmd and f"--port {port} " in cmd and "curl" not in cmd, line
    # No DNS is needed (a literal); a dead loopback resolver keeps it so,
    # and the queue is the test's own.
    cmd = cmd.replace("rawmail send ",
                      f"{rawmail_bin()} send --dns 127.0.0.1:1 --spool {tmp_path}/spool ", 1)
    p = subprocess.run(["sh", "-c", cmd], capture_output=True, timeout=60, cwd=tmp_path)
    assert p.returncode == 0, (cmd, p.stdout, p.stderr)
    [data] = mailbox_messages(srv.mailroot, "you", wait=2)
    assert b"It works." in data and b"Subject: hello" in data


@pytest.mark.parametrize("args, rcpt, want", [
    (["x@[::1]"], "x@[::1]", "write an IPv6 literal as [IPv6:::1], as in x@[IPv6:::1]"),
    (["<x@[2001:db8::1]>"], "<x@[2001:db8::1]>",
     "write an IPv6 literal as [IPv6:2001:db8::1], as in <x@[IPv6:2001:db8::1]>"),
    (["u@[127.0.0.1]", "-v"], "-v", "looks like an option, but options come before recipients"),
    (["u@[127.0.0.1]", "--port", "2525"], "--port",
     "looks like an option, but options come before recipients"),
])
def test_usage_errors_teach(args, rcpt, want):
    """Issue 8 item 19: the mistakes a new user makes get the rule that
    fixes them, and nothing is sent (64)."""
    s = send(["--dry-run", *args], "x\n", expect="usage")
    assert f"rawmail send: recipient '{rcpt}': {want}" in s.err, s


def test_sender_ipv6_literal_without_tag_teaches():
    s = send(["--dry-run", "-f", "me@[::1]", "u@[127.0.0.1]"], "x\n", expect="usage")
    assert "rawmail send: -f 'me@[::1]': write an IPv6 literal as [IPv6:::1]" in s.err, s
