"""rawmail-sendmail, the small program the installed sendmail link runs
(issue 9, enqueue: one process per message; src/cli/sendmail_main.c): it
links no TLS, event or DNS library, queues a message itself and kicks the
full rawmail for the first attempt, and hands every other mode over to
rawmail.  Each case runs through a `sendmail` link to it and through one to
rawmail (the link the other tests use), and the two must give the same
exit status, output and result.  Address literals on loopback only."""

import email
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from helpers import (SANITIZER_MARKERS, Delivered, free_port, mail_user_args, mailbox_messages,
                     rawmail_bin)
from queue_util import entries, write_entry
from test_maildrop import NOBODY, as_nobody, drops, walkable  # noqa: F401 (a fixture)
from test_maildrop import env as user_env
from test_maildrop import message as maildrop_message
from test_maildrop import queue_run as maildrop_queue_run
from test_maildrop import settings as maildrop_settings
from test_serve_queue import DEST, dest_port

SENDER = "app@client.test"
NO_DNS = ["--dns", "127.0.0.1:1"]


def small_bin():
    return rawmail_bin().parent / "rawmail-sendmail"


def links(tmp_path):
    """{"full": .../full/sendmail -> rawmail, "small": .../small/sendmail
    -> rawmail-sendmail}"""
    out = {}
    for name, target in (("full", rawmail_bin()), ("small", small_bin())):
        d = tmp_path / name
        d.mkdir(exist_ok=True)
        link = d / "sendmail"
        if not link.exists():
            link.symlink_to(target)
        out[name] = link
    return out


def run(argv, message=b"", env=None):
    e = dict(os.environ)
    e.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
    e["RAWMAIL_CONF"] = "/dev/null"
    if env:
        e.update(env)
    if isinstance(message, str):
        message = message.encode()
    p = subprocess.run([str(a) for a in argv], input=message, capture_output=True, timeout=60,
                       env=e)
    err = p.stderr.decode(errors="replace")
    for mark in SANITIZER_MARKERS:
        assert mark not in err, err
    return p.returncode, p.stdout.decode(errors="replace"), err


def same_text(text, *paths):
    """text without what differs from one run to the next: queue ids, the
    spool's path, times."""
    for i, p in enumerate(paths):
        text = text.replace(str(p), f"PATH{i}")
    text = re.sub(r"\b[0-9A-F]{22}\b", "ID", text)
    return re.sub(r"\d\d:\d\d:\d\d|\d+ (second|minute)s?|\(\d+s\b", "T", text)


def both(tmp_path, args, message=b"", spools=True, env=None):
    """Runs sendmail ARGS through both links, each with a spool of its own
    (--spool SPOOL at the front); returns {name: (rc, out, err, spool)}."""
    res = {}
    for name, link in links(tmp_path).items():
        spool = tmp_path / f"spool-{name}"
        argv = [link, *(["--spool", spool] if spools else []), *args]
        rc, out, err = run(argv, message, env)
        res[name] = (rc, same_text(out, spool, link), same_text(err, spool, link), spool)
    return res


def assert_same(res):
    assert res["small"][:3] == res["full"][:3], res


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def arrived(srv, box, n):
    wait_for(lambda: len(mailbox_messages(srv.mailroot, box)) >= n, 20, f"{n} in {box}")
    return mailbox_messages(srv.mailroot, box)


def test_links_no_tls_event_or_dns_library():
    # The point of the program: the dynamic loader's work for OpenSSL
    # (~1 ms of ~2.4 per message) and libevent, c-ares is not paid.
    out = subprocess.run(["ldd", str(small_bin())], capture_output=True, text=True,
                         check=True).stdout
    assert "libc.so" in out, out
    for lib in ("libssl", "libcrypto", "libevent", "libcares"):
        assert lib not in out, out


def test_message_queued_kicked_and_delivered_the_same(tmp_path, start_server):
    # The kick starts the full rawmail (next to rawmail-sendmail): only it
    # can deliver, so the message arriving proves it ran.
    srv = start_server(listen=[f"127.0.0.1:{free_port()}"])
    msg = ("From: app@client.test\nTo: u@[127.0.0.1]\nSubject: small\n"
           "Message-ID: <small@client.test>\nDate: Sun, 6 Dec 2026 12:00:00 +0000\n\n"
           "line\n" + "x" * 1200 + "\n")
    res = both(tmp_path, [*NO_DNS, "--port", srv.port, "-i", "-f", SENDER, "u@[127.0.0.1]"],
               msg)
    assert_same(res)
    assert res["small"][:3] == (0, "", ""), res
    got = [Delivered(m) for m in arrived(srv, "u", 2)]
    assert len(got) == 2, got
    assert got[0].body == got[1].body and got[0].return_path == got[1].return_path
    # The long line was mended (quoted-printable) by both, identically.
    assert b"Content-Transfer-Encoding: quoted-printable" in got[0].body, got[0].body
    for name in ("full", "small"):
        wait_for(lambda: entries(res[name][3]) == [], 20, f"{name}'s spool to empty")


def test_destination_down_stays_queued_the_same(tmp_path):
    port = free_port()    # nothing listens there
    res = both(tmp_path, [*NO_DNS, "--port", port, "-v", "-f", SENDER, "u@[127.0.0.1]"],
               "Subject: down\n\nx\n")
    assert_same(res)
    assert res["small"][0] == 0 and "queued as ID in PATH0" in res["small"][2], res
    for name in ("full", "small"):
        spool = res[name][3]
        [entry] = entries(spool)
        # The kicked runner's attempt is recorded: it ran.
        wait_for(lambda: "rcpt queued 1 " in (spool / "env" / entry).read_text(), 20,
                 f"{name}'s first attempt")


def test_extract_recipients_t_the_same(tmp_path, start_server):
    srv = start_server(listen=[f"127.0.0.1:{free_port()}"])
    msg = ("From: root (Cron Daemon)\nTo: ops@[127.0.0.1]\nBcc: hidden@[127.0.0.1]\n"
           "Subject: Cron <root@host> job\n\noutput\n.\nafter a lone dot\n")
    res = both(tmp_path, [*NO_DNS, "--port", srv.port, "-FCronDaemon", "-i", "-B8BITMIME",
                          "-oem", "-odi", "-oi", "-t"], msg)
    assert_same(res)
    assert res["small"][0] == 0, res
    ops = arrived(srv, "ops", 2)
    hidden = arrived(srv, "hidden", 2)
    assert len(ops) == 2 and len(hidden) == 2
    a, b = (Delivered(m).body for m in ops)
    # Date and Message-ID were added by each: the same apart from them.
    strip = lambda body: re.sub(rb"(Date|Message-ID): [^\n]*\n", b"", body)
    assert strip(a) == strip(b) and b"Bcc" not in a, (a, b)
    assert b"\nafter a lone dot\n" in a


@pytest.mark.parametrize("args", [
    ["-f", "not an address", "u@[127.0.0.1]"],     # 64, said why
    ["u@[127.0.0.1]", "-v"],                       # an option after a recipient
    ["-bx"],                                       # unknown mode
    ["-bd"],                                       # refused mode
    ["-q30m"],                                     # only -q
    ["-q", "u@[127.0.0.1]"],                       # -q takes no recipients
    ["--port", "0", "u@[127.0.0.1]"],              # a bad delivery option
    ["-Z"],                                        # unknown option
    ["--help"],
    [],                                            # no recipients
])
def test_refusals_and_help_the_same(tmp_path, args):
    res = both(tmp_path, [*NO_DNS, *args], "Subject: x\n\nx\n")
    assert_same(res)
    for name in ("full", "small"):
        assert not (res[name][3] / "env").exists() or entries(res[name][3]) == []


def test_bp_handed_over(tmp_path):
    for name in ("full", "small"):
        write_entry(tmp_path / f"spool-{name}", "0123456789ABCDEF012345",
                    [{"addr": "u@example.test", "attempts": 2, "last": "451 4.7.1 later"}])
    res = both(tmp_path, ["-bp"])
    assert_same(res)
    assert res["small"][0] == 0 and "u@example.test" in res["small"][1], res
    # Called by its own name, not sendmail, it is still the sendmail entry.
    spool = tmp_path / "spool-small"
    rc, out, err = run([small_bin(), "-bp", "--spool", spool])
    assert (rc, same_text(out, spool), same_text(err, spool)) == res["small"][:3]


def smtp_talk(argv, commands):
    """sendmail -bs spoken by hand: each command after the reply before it
    (no pipelining); (exit status, the whole dialogue)."""
    e = dict(os.environ, RAWMAIL_CONF="/dev/null")
    e.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
    p = subprocess.Popen([str(a) for a in argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=e)
    dialogue = []

    def reply():
        while True:
            line = p.stdout.readline().decode(errors="replace")
            dialogue.append(line)
            if len(line) < 4 or line[3] != "-":
                return

    reply()
    for c in commands:
        p.stdin.write(c.encode())
        p.stdin.flush()
        dialogue.append("C: " + c)
        if not c.startswith("Subject"):
            reply()
    p.stdin.close()
    err = p.stderr.read().decode(errors="replace")
    for mark in SANITIZER_MARKERS:
        assert mark not in err, err
    return p.wait(timeout=30), "".join(dialogue), err


def test_bs_handed_over(tmp_path):
    commands = ["EHLO client.test\r\n", "MAIL FROM:<app@client.test>\r\n",
                "RCPT TO:<u@[127.0.0.1]>\r\n", "DATA\r\n",
                "Subject: bs\r\n\r\nover SMTP\r\n.\r\n", "QUIT\r\n"]
    res = {}
    for name, link in links(tmp_path).items():
        spool = tmp_path / f"spool-{name}"
        rc, talk, err = smtp_talk([link, "-bs", "--spool", spool, *NO_DNS, "--port", "1"],
                                  commands)
        res[name] = (rc, same_text(talk, spool, link), same_text(err, spool, link), spool)
        assert len(entries(spool)) == 1, res
    assert_same(res)
    assert res["small"][0] == 0 and "250 2.0.0" in res["small"][1], res


def test_no_queue_handed_over(tmp_path):
    # --no-queue is rawmail send's try-once, with the delivery engine.
    port = free_port()
    res = both(tmp_path, [*NO_DNS, "--port", port, "--no-queue", "-f", SENDER,
                          "u@[127.0.0.1]"], "Subject: nq\n\nx\n")
    assert_same(res)
    assert res["small"][0] == 75 and "not queued" in res["small"][2], res


def test_no_queue_from_the_settings_file_handed_over(tmp_path):
    conf = tmp_path / "rawmail.conf"
    conf.write_text("[send]\nno-queue = yes\n")
    port = free_port()
    res = both(tmp_path, [*NO_DNS, "--port", port, "-f", SENDER, "u@[127.0.0.1]"],
               "Subject: nq\n\nx\n", env={"RAWMAIL_CONF": str(conf)})
    assert_same(res)
    assert res["small"][0] == 75 and "not queued" in res["small"][2], res


def test_aliases_check_handed_over(tmp_path):
    aliases = tmp_path / "aliases"
    aliases.write_text("postmaster: root\nbroken line without colon\n")
    res = both(tmp_path, ["--aliases", aliases, "-bi"], spools=False)
    assert_same(res)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (runs sendmail as nobody)")
def test_user_not_root_drops_into_the_maildrop_the_same(walkable, start_server):
    # test_maildrop.py's case through both programs: user nobody's message
    # goes into the system spool's maildrop (exit 0, silent), and root's
    # queue run delivers both.
    port = dest_port()
    spool = walkable / "spool"
    dest = start_server(*mail_user_args(), listen=[f"{DEST}:{port}"],
                        mailroot=walkable / "destmail")
    maildrop_queue_run(spool, port)
    conf = maildrop_settings(walkable, spool, port)
    for name, target in (("full", rawmail_bin()), ("small", small_bin())):
        d = walkable / name
        d.mkdir()
        os.chmod(d, 0o755)
        (d / "sendmail").symlink_to(target)
        p = as_nobody([d / "sendmail", "-f", "nobody@client.test", f"bob@[{DEST}]"],
                      input=maildrop_message(f"drop {name}").encode(), env=user_env(conf))
        err = p.stderr.decode(errors="replace")
        assert (p.returncode, p.stdout, err) == (0, b"", ""), (name, p.returncode, err)
    names = drops(spool)
    assert len(names) == 2, names
    for n in names:
        assert (spool / "maildrop" / n).stat().st_uid == NOBODY.pw_uid
    maildrop_queue_run(spool, port)
    a = [m for m in mailbox_messages(dest.mailroot, "bob")]
    assert len(a) == 2, a
    subjects = sorted(re.search(rb"\nSubject: ([^\n]*)", m).group(1) for m in a)
    assert subjects == [b"drop full", b"drop small"], subjects
    # The same Received: line naming the user, apart from its id and time.
    mine = [[r for r in email.message_from_bytes(m).get_all("Received") if "from userid" in r]
            for m in a]
    mine = [re.sub(r"\bid \w+|;.*", "", " ".join(r[0].split())) for r in mine]
    assert mine[0] == mine[1] and f"userid {NOBODY.pw_uid} (nobody)" in mine[0], mine
