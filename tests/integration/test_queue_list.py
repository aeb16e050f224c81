"""`rawmail queue list` (and `mailq`, `sendmail -bp`), `queue show ID` and
`queue delete ID...` (issue 9) on spools written by the test (queue_util:
byte for byte in the envelope format, any state or damage) or by
tool_spoolfill (the spool's own enqueue).  Replies recorded from peers
are hostile input: they must reach the terminal escaped."""

import fcntl
import json
import os

import pytest

from helpers import REPO_ROOT
from queue_util import entries, make_spool, queue, rawmail, write_entry

TOOLS = os.environ.get("RAWMAIL_TOOLS", str(REPO_ROOT / "build-asan" / "tests"))
SPOOLFILL = os.path.join(TOOLS, "tool_spoolfill")

ID1 = "06B154E07658CE179A7A70"
ID2 = "06B154E0765906179B7A70"
ID3 = "06B154E076591F179C7A70"

GREYLISTED = "mx.example.net [192.0.2.7]: 451-4.7.1 Greylisted\n451 4.7.1 try again in 5 minutes"


def two_entries(spool):
    write_entry(spool, ID1, [
        {"addr": "bob@example.net", "attempts": 2, "next": 1796559000,
         "last_attempt": 1796558700, "last": GREYLISTED, "orcpt": "Bob@Example.NET"},
        {"addr": "carol@example.org", "state": "delivered", "attempts": 1,
         "last_attempt": 1796558500, "last": "250 2.0.0 Ok: queued as X1"},
    ])
    write_entry(spool, ID2, [{"addr": "dave@[192.0.2.1]"}], sender="", flags="bounce",
                origin="bounce")


def test_list_shows_each_message_and_recipient(tmp_path):
    spool = tmp_path / "spool"
    two_entries(spool)
    r = queue(spool, "list", env={**os.environ, "TZ": "UTC"})
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[0] == (f"{ID1}  50 octets  queued 2026-12-06 12:00:00 +0000  "
                        "from <alice@client.test>")
    assert lines[1] == ("  queued     bob@example.net  (2 attempts; "
                        "next 2026-12-06 12:10:00 +0000)")
    # The whole reply, each line of it, under the recipient.
    assert lines[2] == "             last: mx.example.net [192.0.2.7]: 451-4.7.1 Greylisted"
    assert lines[3] == "                   451 4.7.1 try again in 5 minutes"
    assert lines[4] == "  delivered  carol@example.org  (1 attempt)"
    assert lines[5] == "             last: 250 2.0.0 Ok: queued as X1"
    assert lines[7].startswith(f"{ID2}  50 octets  queued ") and lines[7].endswith(
        "from <>  (a bounce)")
    assert lines[8] == "  queued     dave@[192.0.2.1]  (no attempt yet; next now)"
    assert lines[-1] == "2 messages, 3 recipients (2 to deliver)"


def test_mailq_and_sendmail_bp_list_the_same(tmp_path):
    spool = tmp_path / "spool"
    two_entries(spool)
    env = {**os.environ, "TZ": "UTC"}
    ref = queue(spool, "list", env=env)
    mailq = rawmail(["--spool", spool], argv0="mailq", cwd=tmp_path, env=env)
    bp = rawmail(["-bp", "--spool", spool], argv0="sendmail", cwd=tmp_path, env=env)
    assert mailq.rc == 0 and bp.rc == 0, (mailq, bp)
    assert mailq.out == ref.out and bp.out == ref.out


def test_empty_and_missing_spool(tmp_path):
    spool = make_spool(tmp_path / "spool")
    r = queue(spool, "list")
    assert (r.rc, r.out) == (0, "queue is empty\n"), r
    r = queue(tmp_path / "never-made", "list")
    assert r.rc == 0 and r.out.startswith("queue is empty"), r
    assert not (tmp_path / "never-made").exists()   # a listing creates nothing
    r = queue(spool, "list", "--json")
    assert (r.rc, r.out) == (0, ""), r


# ESC [ 2 J clears the screen, ESC ] 0 ; sets the window title, a raw C1
# CSI (0x9b), its UTF-8 form (C2 9B), BEL, a CR that would rewrite the line.
HOSTILE = b"550 5.7.1 \x1b[2J\x1b]0;pwned\x07 \x9b31m \xc2\x9b1A evil\rfake line"


def assert_escaped(out_bytes):
    for raw in (b"\x1b", b"\x07", b"\x9b", b"\r"):
        assert raw not in out_bytes, out_bytes
    text = out_bytes.decode()
    assert "\\x1b[2J" in text and "\\x07" in text and "\\x9b31m" in text
    assert "\\u009b1A" in text and "\\x0dfake line" in text


def test_hostile_reply_is_escaped_in_list_show_and_json(tmp_path):
    spool = tmp_path / "spool"
    write_entry(spool, ID1, [{"addr": "bob@example.net", "state": "failed", "attempts": 1,
                              "last_attempt": 1796558700, "last": HOSTILE}],
                message=b"Subject: \x1b[31mred\r\nFrom: a@b.example\r\n\r\nbody\r\n")
    r = queue(spool, "list")
    assert r.rc == 0, r
    assert_escaped(r.out_bytes)
    r = queue(spool, "show", ID1)
    assert r.rc == 0, r
    assert_escaped(r.out_bytes)
    assert "  Subject: \\x1b[31mred" in r.out   # the message's header too
    r = queue(spool, "list", "--json")
    assert r.rc == 0, r
    assert_escaped(r.out_bytes)
    [obj] = [json.loads(line) for line in r.out.splitlines()]
    assert obj["recipients"][0]["last_reply"].startswith("550 5.7.1 \\x1b[2J")


def test_json_lines(tmp_path):
    spool = tmp_path / "spool"
    two_entries(spool)
    r = queue(spool, "list", "--json")
    assert r.rc == 0, r
    objs = [json.loads(line) for line in r.out.splitlines()]
    assert [o["id"] for o in objs] == [ID1, ID2]
    bob, carol = objs[0]["recipients"]
    assert bob == {"address": "bob@example.net", "original": "Bob@Example.NET",
                   "state": "queued", "attempts": 2, "next_attempt": 1796559000,
                   "last_attempt": 1796558700, "last_reply": GREYLISTED}
    assert carol["state"] == "delivered"
    assert objs[0]["size"] == 50 and objs[0]["arrival_time"] == 1796558400
    assert objs[1]["sender"] == "" and objs[1]["flags"] == "bounce"


def test_corrupt_entry_is_named_and_the_rest_listed(tmp_path):
    spool = tmp_path / "spool"
    two_entries(spool)
    write_entry(spool, ID3, [{"addr": "eve@example.net"}])
    # The middle one overwritten with garbage, the last cut in half.
    (spool / "env" / ID2).write_bytes(b"\x00\xffgarbage\x1b[2J\n")
    env3 = (spool / "env" / ID3).read_bytes()
    (spool / "env" / ID3).write_bytes(env3[:len(env3) // 2])
    r = queue(spool, "list")
    assert r.rc == 0, r
    assert f"{ID2}  unreadable: env/{ID2}: " in r.out, r
    assert f"{ID3}  unreadable: env/{ID3}: " in r.out, r
    assert "\x1b" not in r.out
    assert r.out.startswith(f"{ID1}  50 octets"), r
    assert r.out.splitlines()[-1] == ("1 message, 2 recipients (1 to deliver), "
                                      "2 entries unreadable")
    # Listing is a look: the damaged entries are left for a runner.
    assert entries(spool) == [ID1, ID2, ID3]
    # show says what is wrong: data error.
    r = queue(spool, "show", ID2)
    assert r.rc == 65 and f"env/{ID2}" in r.err, r


def test_list_of_a_spoolfill_queue(tmp_path):
    if not os.access(SPOOLFILL, os.X_OK):
        pytest.skip(f"{SPOOLFILL} missing: make -s SAN=1 tools")
    import subprocess
    spool = tmp_path / "spool"
    subprocess.run([SPOOLFILL, "fill", spool, "600"], check=True, capture_output=True)
    r = queue(spool, "list")
    assert r.rc == 0, r
    assert r.out.splitlines()[-1] == "600 messages, 1200 recipients (1200 to deliver)"
    assert r.out.count(" octets  queued ") == 600


def test_show_prints_envelope_and_header(tmp_path):
    spool = tmp_path / "spool"
    two_entries(spool)
    r = queue(spool, "show", ID1, env={**os.environ, "TZ": "UTC"})
    assert r.rc == 0, r
    assert r.out.startswith(f"id:       {ID1}\nqueued:   2026-12-06 12:00:00 +0000 "
                            "(1796558400)\nsize:     50 octets\nsha256:   ")
    for line in ("sender:   <alice@client.test>", "origin:   sendmail", "flags:    -",
                 "recipient bob@example.net", "  given as:      Bob@Example.NET",
                 "  state:         queued", "  attempts:      2",
                 "  last attempt:  2026-12-06 12:05:00 +0000",
                 "  next attempt:  2026-12-06 12:10:00 +0000",
                 "  last reply:    mx.example.net [192.0.2.7]: 451-4.7.1 Greylisted",
                 "                 451 4.7.1 try again in 5 minutes",
                 "recipient carol@example.org", "  state:         delivered",
                 "header:", "  From: alice@client.test", "  Subject: queued"):
        assert line in r.out.splitlines(), (line, r.out)
    assert "body" not in r.out   # the header, not the message


def test_show_unknown_and_bad_ids(tmp_path):
    spool = tmp_path / "spool"
    two_entries(spool)
    r = queue(spool, "show", ID3)
    assert r.rc == 66 and "not in the queue" in r.err, r
    r = queue(spool, "show", "../../etc/passwd")
    assert r.rc == 64 and "not a queue id" in r.err, r
    r = queue(spool, "show")
    assert r.rc == 64 and "usage" in r.err, r


def test_delete(tmp_path):
    spool = tmp_path / "spool"
    two_entries(spool)
    r = queue(spool, "delete", ID1)
    assert (r.rc, r.out) == (0, f"{ID1}: deleted\n"), r
    assert entries(spool) == [ID2]
    assert os.listdir(spool / "msg") == [ID2]
    assert ID1 not in queue(spool, "list").out
    # Gone already, and one never queued: said, exit 66 (EX_NOINPUT); the
    # good one among them is still deleted.
    r = queue(spool, "delete", ID1, ID2, ID3)
    assert r.rc == 66, r
    assert f"{ID1}: not in the queue" in r.err and f"{ID3}: not in the queue" in r.err
    assert r.out == f"{ID2}: deleted\n"
    assert entries(spool) == [] and os.listdir(spool / "msg") == []
    r = queue(spool, "delete", "bad/id")
    assert r.rc == 64 and "not a queue id" in r.err, r


def test_delete_refuses_an_entry_under_a_runners_lock(tmp_path):
    spool = tmp_path / "spool"
    two_entries(spool)
    # A runner delivering ID1 holds flock on msg/ID1 (QUEUE.md "Lock").
    with open(spool / "msg" / ID1, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        r = queue(spool, "delete", ID1)
        assert r.rc == 75, r
        assert "being delivered right now" in r.err and "not deleted" in r.err, r
        assert entries(spool) == [ID1, ID2]
        # show is a look, not a use: it works while the runner has it.
        assert queue(spool, "show", ID1).rc == 0
    assert queue(spool, "delete", ID1).rc == 0
    assert entries(spool) == [ID2]


def test_spool_from_the_settings_file(tmp_path):
    spool = tmp_path / "spool"
    two_entries(spool)
    conf = tmp_path / "rawmail.conf"
    conf.write_text(f"[queue]\nspool = {spool}\n")
    r = rawmail(["queue", "list", "-c", conf])
    assert r.rc == 0 and r.out.splitlines()[-1].startswith("2 messages"), r
    env = {**os.environ, "RAWMAIL_CONF": str(conf)}
    r = rawmail([], argv0="mailq", cwd=tmp_path, env=env)
    assert r.rc == 0 and r.out.splitlines()[-1].startswith("2 messages"), r
    r = rawmail(["queue", "show", ID1], env=env)
    assert r.rc == 0 and f"id:       {ID1}" in r.out, r
    # --spool wins over the file.
    r = rawmail(["queue", "list", "--spool", tmp_path / "other"], env=env)
    assert r.rc == 0 and r.out.startswith("queue is empty"), r
    conf.write_text("[queue]\nspool-typo = x\n")
    r = rawmail(["queue", "list"], env=env)
    assert r.rc == 78 and "spool-typo" in r.err, r


def test_show_cuts_a_huge_header_and_says_so(tmp_path):
    spool = tmp_path / "spool"
    header = b"".join(b"X-Filler-%05d: %s\r\n" % (i, b"y" * 60) for i in range(2000))
    write_entry(spool, ID1, [{"addr": "bob@example.net"}],
                message=header + b"\r\nbody\r\n")
    r = queue(spool, "show", ID1)
    assert r.rc == 0, r
    assert r.out.splitlines()[-1] == "  (the header is longer: cut at 65536 octets)"
    assert "  X-Filler-00000: " in r.out and "body" not in r.out
