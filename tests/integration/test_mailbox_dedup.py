"""Disk amplification (issue 8, item 4).  One unauthenticated 1 MB message to
300 distinct local parts wrote 284 MB and created 300 Maildirs, and
bob+1 ... bob+1000 were a thousand files.  Now:

- one copy per distinct mailbox: the +tag and case variants of a mailbox
  share one file, with one X-Original-To per recipient given and a
  Delivered-To naming the mailbox (as Postfix writes them);
- the free space must hold every copy: RCPT gets 452 4.3.1 when SIZE= times
  the distinct mailboxes does not fit (RFC 1870 §6.1), and the end of data
  gets 452 4.3.1, with nothing written, when the copies do not fit;
- new Maildirs are bounded: the smtp process asks the store at RCPT, and
  beyond 20 new mailboxes per client address per hour (200 in all) the
  RCPT gets 450 4.7.1; existing Maildirs and --mailbox names are not
  counted."""

import os
import re
from pathlib import Path

from helpers import SMTPConn, Delivered, dot_stuff, mailbox_messages, maildir_files, make_maildir
from robust_util import mount_tmpfs, rstart_server  # noqa: F401  (fixtures)

SENDER = "sender@client.test"


def expect(r, code, enhanced=None):
    assert r.code == code, f"expected {code} {enhanced or ''}, got {r}"
    if enhanced:
        assert r.enhanced == enhanced, f"expected {enhanced}, got {r}"


def session(srv, source=None):
    c = SMTPConn(srv.host, srv.port, source=source, timeout=20)
    expect(c.read_reply(), 220)
    expect(c.cmd("EHLO client.test"), 250)
    return c


def message(tag, size=300):
    head = f"Subject: {tag}\r\nMessage-ID: <{tag}@client.test>\r\n\r\n".encode()
    line = b"0123456789abcdefghijklmnopqrstuvwxyz" * 2 + b"\r\n"
    return head + line * max(1, (size - len(head)) // len(line))


def send(c, rcpts, msg, size=None):
    """MAIL, the RCPTs pipelined in one write, DATA; returns (RCPT replies,
    reply to DATA, reply to the final dot or None)."""
    extra = f" SIZE={size}" if size else ""
    c.send(f"MAIL FROM:<{SENDER}>{extra}\r\n" + "".join(f"RCPT TO:<{r}>\r\n" for r in rcpts)
           + "DATA\r\n")
    rs = c.read_replies(len(rcpts) + 2)
    expect(rs[0], 250, "2.1.0")
    data = rs[-1]
    if data.code != 354:
        return rs[1:-1], data, None
    c.send(dot_stuff(msg) + b".\r\n")
    return rs[1:-1], data, c.read_reply(timeout=30)


def maildirs(mailroot):
    return sorted(p.name for p in Path(mailroot).iterdir() if p.is_dir() and p.name[0] != ".")


def test_variants_of_a_mailbox_share_one_copy(rstart_server):
    srv = rstart_server()
    rcpts = (["bob@example.test", "BOB@EXAMPLE.TEST", "Bob+News@example.test"]
             + [f"bob+{i}@example.test" for i in range(1, 51)]
             + ["bob@example.test", "alice@example.test"])   # bob twice: one line
    c = session(srv)
    msg = message("variants")
    rs, data, end = send(c, rcpts, msg)
    assert all(r.code == 250 for r in rs), rs
    expect(end, 250)
    files = [p for p in maildir_files(srv.mailroot)]
    assert len(files) == 2, f"one copy per mailbox, found {files}"
    d = Delivered(mailbox_messages(srv.mailroot, "bob")[0])
    assert d.delivered_to == "bob@example.test"
    assert sorted(d.original_to) == sorted(set(rcpts) - {"alice@example.test"}), d.original_to
    assert d.body == msg.replace(b"\r\n", b"\n")
    a = Delivered(mailbox_messages(srv.mailroot, "alice")[0])
    # No Bcc leak: alice's copy names alice only.
    assert a.original_to == ["alice@example.test"] and a.delivered_to == "alice@example.test"
    # Several recipients: Received: has no 'for'.
    assert " for <" not in d.received


def test_new_mailboxes_limited_per_client(rstart_server):
    """The issue's case: one message to 300 distinct local parts from one
    address creates 20 Maildirs, not 300; the other recipients get a
    temporary 450 4.7.1 at RCPT, while mailboxes that exist are unaffected
    and another address may still create its own."""
    srv = rstart_server("--max-recipients", "1000")
    root = Path(srv.mailroot)
    for name in ("old1", "old2"):
        make_maildir(root, name)
    rcpts = [f"user{i}@example.test" for i in range(300)] + ["old1@example.test"]
    c = session(srv)
    rs, data, end = send(c, rcpts, message("three hundred", 20000))
    ok = [r for r in rcpts if rs[rcpts.index(r)].code == 250]
    refused = [rs[i] for i, r in enumerate(rcpts) if rs[i].code != 250]
    assert len(ok) == 21, f"{len(ok)} recipients accepted: {ok[:30]}"
    assert "old1@example.test" in ok
    for r in refused:
        expect(r, 450, "4.7.1")
    expect(data, 354)
    expect(end, 250)
    assert len(maildirs(root)) == 20 + 2, maildirs(root)
    # The same mailbox again (a retry): granted already, not counted twice.
    rs, data, end = send(c, ["user0@example.test", "old2@example.test"], message("again"))
    assert [r.code for r in rs] == [250, 250], rs
    expect(end, 250)
    rs, data, end = send(c, ["fresh@example.test"], message("refused"))
    expect(rs[0], 450, "4.7.1")
    expect(data, 554, "5.5.1")
    # Another client address is counted on its own.
    c2 = session(srv, source="127.0.0.2")
    rs, data, end = send(c2, ["fresh@example.test"], message("other address"))
    expect(rs[0], 250)
    expect(end, 250)
    assert "fresh" in maildirs(root)
    assert "new_mailbox" in srv.log() and "client_limit" in srv.log()


def test_new_mailboxes_limited_in_all(rstart_server):
    srv = rstart_server("--max-new-mailboxes", "5", "--max-new-mailboxes-per-ip", "100")
    got = []
    for i, src in enumerate(["127.0.0.2", "127.0.0.3", "127.0.0.4"]):
        c = session(srv, source=src)
        rs, data, end = send(c, [f"s{i}a@example.test", f"s{i}b@example.test"], message(src))
        got += [r.code for r in rs]
        c.close()
    assert got == [250, 250, 250, 250, 250, 450], got
    assert len(maildirs(srv.mailroot)) == 5


def test_mailbox_list_and_existing_not_limited(rstart_server):
    """--mailbox names and Maildirs that exist are never counted: with
    creation turned off (0) they still receive; a new mailbox does not."""
    names = [f"m{i}" for i in range(25)]
    args = ["--max-new-mailboxes-per-ip", "0"]
    for n in names:
        args += ["--mailbox", n]
    srv = rstart_server(*args)
    c = session(srv)
    rs, data, end = send(c, [f"{n}@example.test" for n in names] + ["postmaster"], message("list"))
    assert all(r.code == 250 for r in rs), [r for r in rs if r.code != 250]
    expect(end, 250)
    assert len(maildirs(srv.mailroot)) == 26
    srv.stop()

    srv2 = rstart_server("--max-new-mailboxes-per-ip", "0", mailroot=srv.mailroot)
    c = session(srv2)
    rs, data, end = send(c, ["m3@example.test", "M7+x@example.test", "newone@example.test",
                             "postmaster@example.test"], message("existing"))
    assert [r.code for r in rs] == [250, 250, 450, 250], rs
    expect(end, 250)
    assert "newone" not in maildirs(srv2.mailroot)


def test_pipelined_rcpts_answered_in_order(rstart_server):
    """RCPTs that wait for the store keep their replies in order with the
    commands pipelined behind them (RFC 2920 §3.1)."""
    srv = rstart_server("--max-new-mailboxes-per-ip", "2")
    c = session(srv)
    rcpts = ["p1@example.test", "p2@example.test", "p3@example.test", "p1+x@example.test"]
    msg = message("pipelined")
    c.send(f"MAIL FROM:<{SENDER}>\r\n" + "".join(f"RCPT TO:<{r}>\r\n" for r in rcpts)
           + "DATA\r\n")
    rs = c.read_replies(6)
    assert [r.code for r in rs] == [250, 250, 250, 450, 250, 354], rs
    c.send(dot_stuff(msg) + b".\r\n")
    expect(c.read_reply(), 250)
    expect(c.cmd("NOOP"), 250)
    assert maildirs(srv.mailroot) == ["p1", "p2"]


def test_space_for_every_copy(mount_tmpfs, rstart_server):
    """A 2 MiB disk: 200 KiB to 12 mailboxes (2.4 MB of copies) is refused
    whole, 452 4.3.1 after the final dot, before any copy is written (no
    Maildir created); with SIZE= the RCPT past the space gets 452 4.3.1."""
    fs = mount_tmpfs("2m")
    srv = rstart_server(mailroot=Path(fs.path) / "mail")
    rcpts = [f"box{i}@example.test" for i in range(12)]
    msg = message("twelve copies", 200 * 1024)
    c = session(srv)
    rs, data, end = send(c, rcpts, msg)
    assert all(r.code == 250 for r in rs), rs
    expect(end, 452, "4.3.1")
    assert maildir_files(srv.mailroot) == []
    assert not [d for d in maildirs(srv.mailroot) if d.startswith("box")], maildirs(srv.mailroot)
    assert "step=space" in srv.log()

    rs, data, end = send(c, rcpts, msg, size=len(msg))
    codes = [r.code for r in rs]
    assert 452 in codes and codes.index(452) >= 1, rs
    assert all(code == 250 for code in codes[:codes.index(452)]), rs
    for r in rs[codes.index(452):]:
        expect(r, 452, "4.3.1")
    expect(end, 250)   # the recipients that fit
    assert len(maildir_files(srv.mailroot)) == codes.index(452)
