"""A full disk is a real small tmpfs (DESIGN.md, "Tests"): the mail root is
a 2 MiB tmpfs mounted by the test.  The server must answer 452 4.3.1 when
the mail does not fit -- at MAIL when SIZE= says so, after the final dot
when the client declared nothing -- and never 250 for a message it could
not store whole.  After the test: every message that got 250 is in new/
byte for byte, nothing else is in any new/ (no partial file, no file of a
refused multi-recipient message), tmp/ holds no leftovers, and once files
are deleted the server accepts mail again."""

import random
import re
import time
from pathlib import Path


from helpers import Delivered, SMTPConn, check_delivery, dot_stuff, mail_user_args, mailbox_name
from robust_util import mount_tmpfs, rstart_server  # noqa: F401  (fixtures)

SENDER = "sender@client.test"
KIB = 1024


def message(tag, size):
    """CRLF message of about `size` octets, lines under 998, unique content."""
    rnd = random.Random(tag)
    head = f"Subject: disk full {tag}\r\nMessage-ID: <{tag}@client.test>\r\n\r\n".encode()
    lines = []
    n = len(head)
    while n < size:
        line = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789 ")
                       for _ in range(76)).encode() + b"\r\n"
        lines.append(line)
        n += len(line)
    return head + b"".join(lines)


class Mail:
    """What the test sent and what the server answered."""

    def __init__(self, srv, fs):
        self.srv = srv
        self.fs = fs
        self.accepted = {}     # qid -> (message, [rcpts])
        self.deleted = set()   # qids whose files the test removed on purpose

    def session(self):
        c = SMTPConn(self.srv.host, self.srv.port, timeout=20)
        r = c.read_reply()
        assert r.code == 220, r
        r = c.cmd("EHLO client.test")
        assert r.code == 250, r
        return c

    def send(self, msg, rcpts, declare_size):
        """One transaction on a fresh session.  Returns ('mail', reply) when
        MAIL was refused, else ('data', reply to the final dot)."""
        c = self.session()
        try:
            size = f" SIZE={len(msg)}" if declare_size else ""
            r = c.cmd(f"MAIL FROM:<{SENDER}>{size}")
            if r.code != 250:
                return "mail", r
            for rcpt in rcpts:
                r = c.cmd(f"RCPT TO:<{rcpt}>")
                assert r.code == 250, r
            r = c.cmd("DATA")
            assert r.code == 354, r
            c.send(dot_stuff(msg) + b".\r\n")
            r = c.read_reply()
            if r.code == 250:
                m = re.search(r"queued as (\S+)", r.text)
                assert m, r
                self.accepted[m.group(1)] = (msg, list(rcpts))
            else:
                assert (r.code, r.enhanced) == (452, "4.3.1"), \
                    f"reply to the final dot for a message that did not fit: {r}"
            c.cmd("QUIT")
            return "data", r
        finally:
            c.close()

    def wait_mail_accepted(self, size_arg="", timeout=8.0):
        """The server learns the free space after each batch and once a
        second: poll MAIL (then RSET) until it says 250."""
        deadline = time.monotonic() + timeout
        c = self.session()
        try:
            while True:
                r = c.cmd(f"MAIL FROM:<{SENDER}>{size_arg}")
                if r.code == 250:
                    c.cmd("RSET")
                    return r
                assert (r.code, r.enhanced) == (452, "4.3.1"), r
                assert time.monotonic() < deadline, \
                    f"MAIL still refused {timeout} s after space was freed: {r} " \
                    f"(free now: {self.fs.free()} octets)"
                time.sleep(0.2)
        finally:
            c.close()

    def files(self, sub):
        return sorted(p for p in Path(self.fs.path).glob(f"*/{sub}/*") if p.is_file())

    def check_store(self, where):
        """Every accepted message whole in new/; nothing else in new/ or tmp/."""
        problems = []
        by_qid = {}
        for p in self.files("new"):
            m = re.search(r"Q([0-9A-Za-z]+?)(?:_\d+)?\.", p.name)
            qid = m.group(1) if m else None
            by_qid.setdefault(qid, []).append(p)
            if qid not in self.accepted:
                problems.append(f"{where}: file in new/ that got no 250: {p.name} "
                                f"({p.stat().st_size} octets)")
                continue
            data = p.read_bytes()
            s = re.search(r",S=(\d+)", p.name)
            if not s or int(s.group(1)) != len(data):
                problems.append(f"{where}: {p} has {len(data)} octets, its name says "
                                f"{s.group(0) if s else 'nothing'}")
            msg, rcpts = self.accepted[qid]
            try:
                given = Delivered(data).original_to
                to = given[0]
                assert set(given) <= set(rcpts), f"X-Original-To {given!r} not among {rcpts}"
                check_delivery(data, msg, SENDER, to, single_rcpt=len(rcpts) == 1)
            except AssertionError as e:
                problems.append(f"{where}: {p.name} is not what was sent: {str(e)[:300]}")
        for qid, (msg, rcpts) in self.accepted.items():
            if qid in self.deleted:
                continue
            want = len({mailbox_name(r) for r in rcpts})   # one copy per mailbox
            got = len(by_qid.get(qid, []))
            if got != want:
                problems.append(f"{where}: {qid} got 250 but has {got} of {want} files in new/")
        for p in self.files("tmp"):
            problems.append(f"{where}: leftover in tmp/: {p} ({p.stat().st_size} octets)")
        assert not problems, "\n".join(problems)

    def delete(self, qid):
        for p in self.files("new"):
            if f"Q{qid}" in p.name:
                p.unlink()
        self.deleted.add(qid)


def settle_tmp(mail, timeout=3.0):
    """A refused message's tmp/ file is removed when the store answers; the
    answer comes first, so give the unlink a moment before looking."""
    deadline = time.monotonic() + timeout
    while mail.files("tmp") and time.monotonic() < deadline:
        time.sleep(0.05)


def test_full_tmpfs(mount_tmpfs, rstart_server):
    fs = mount_tmpfs("2m")
    # The tmpfs's root belongs to root: given to the mail user.
    srv = rstart_server("--tls", "no", *mail_user_args(), mailroot=fs.path)
    mail = Mail(srv, fs)
    total = fs.total()

    # A declared size larger than the whole filesystem (but under the
    # 25 MiB message limit): 452 4.3.1 at MAIL, not 552.
    c = mail.session()
    r = c.cmd(f"MAIL FROM:<{SENDER}> SIZE={3 * 1024 * 1024}")
    assert (r.code, r.enhanced) == (452, "4.3.1"), f"SIZE over the free space: {r}"
    c.close()

    # --- A: fill it with 100 KiB messages that declare their SIZE, until
    # MAIL is refused.
    refused_at_mail = None
    for i in range(40):
        msg = message(f"fill{i}", 100 * KIB)
        where, r = mail.send(msg, [f"box{i % 3}@example.test"], declare_size=True)
        if where == "mail":
            refused_at_mail = r
            break
    assert refused_at_mail is not None, \
        f"40 x 100 KiB never refused at MAIL on a {total} octet tmpfs"
    assert (refused_at_mail.code, refused_at_mail.enhanced) == (452, "4.3.1"), refused_at_mail
    assert len(mail.accepted) >= 10, f"only {len(mail.accepted)} x 100 KiB fit in 2 MiB"
    settle_tmp(mail)
    mail.check_store("after filling")
    print(f"\n[disk full] tmpfs {total} octets: {len(mail.accepted)} x 100 KiB accepted, "
          f"then MAIL SIZE= refused with {refused_at_mail.lines[0]!r} at {fs.free()} free")

    # --- B: no SIZE=, a message bigger than the space left.  Make about
    # 150 KiB free (deleting messages, then a filler file the server never
    # looks at: mailbox names cannot start with '.').
    for qid in list(mail.accepted)[:4]:
        mail.delete(qid)
    filler = Path(fs.path) / ".filler"
    free = fs.free()
    assert free > 300 * KIB, free
    with open(filler, "wb") as f:
        f.write(b"\0" * (free - 150 * KIB))
    free_before = fs.free()
    assert 100 * KIB < free_before < 200 * KIB, free_before
    mail.wait_mail_accepted()

    # B1: kept in memory until its batch (under 256 KiB): fails when written.
    where, r = mail.send(message("mem200", 200 * KIB), ["over@example.test"],
                         declare_size=False)
    assert where == "data" and (r.code, r.enhanced) == (452, "4.3.1"), \
        f"200 KiB in memory into ~150 KiB free, without SIZE=: {where} {r}"
    settle_tmp(mail)
    mail.check_store("after the 200 KiB message")

    # B2: streamed to its file as it arrives (over 256 KiB): the write fails
    # in the middle of DATA; the answer still comes after the final dot.
    mail.wait_mail_accepted()
    where, r = mail.send(message("stream1m", 1024 * KIB), ["over@example.test"],
                         declare_size=False)
    assert where == "data" and (r.code, r.enhanced) == (452, "4.3.1"), \
        f"1 MiB streamed into ~150 KiB free, without SIZE=: {where} {r}"
    settle_tmp(mail)
    mail.check_store("after the 1 MiB message")

    # B3: three recipients, one file each: the first fits, the second does
    # not.  All or none: nothing of it may stay in new/.
    mail.wait_mail_accepted()
    where, r = mail.send(message("multi", 90 * KIB),
                         ["m1@example.test", "m2@example.test", "m3@example.test"],
                         declare_size=False)
    assert where == "data" and (r.code, r.enhanced) == (452, "4.3.1"), \
        f"3 x 90 KiB into ~150 KiB free: {where} {r}"
    settle_tmp(mail)
    mail.check_store("after the 3-recipient message")
    # The refused messages gave their space back.
    assert fs.free() >= free_before - 8 * KIB, \
        f"free space {free_before} before the refused messages, {fs.free()} after"

    # A message that fits still gets through on the nearly full disk.
    mail.wait_mail_accepted()
    where, r = mail.send(message("fits", 20 * KIB), ["small@example.test"], declare_size=False)
    assert where == "data" and r.code == 250, f"20 KiB into ~150 KiB free: {where} {r}"

    # --- C: delete files: the server accepts mail again, even 1 MiB.
    filler.unlink()
    for qid in list(mail.accepted):
        if qid not in mail.deleted:
            mail.check_store("before deleting")
            break
    for qid in list(mail.accepted):
        mail.delete(qid)
    mail.wait_mail_accepted(size_arg=f" SIZE={1024 * KIB}")
    where, r = mail.send(message("again", 1024 * KIB), ["again@example.test"],
                         declare_size=True)
    assert where == "data" and r.code == 250, f"1 MiB after freeing the disk: {where} {r}"
    where, r = mail.send(message("again2", 300 * KIB), ["again@example.test", "box0@example.test"],
                         declare_size=False)
    assert where == "data" and r.code == 250, f"300 KiB x 2 after freeing the disk: {where} {r}"
    mail.check_store("at the end")
    assert "event=store_bug" not in srv.log(), srv.log()[-5000:]
