"""The MQTT bridge of `rawmail serve` (issue 12) against a real broker:
Debian's Mosquitto, started by the test (mqtt_broker.py) with an anonymous
listener and a user/password + TLS one.  Subscribers in another language
(Python paho-mqtt, and mosquitto_sub for byte-exact attachments) check what
rawmail publishes; a second rawmail serve and a private Postfix receive
what it sends for MQTT requests, through serve's queue.

Mail in -> MQTT: the event of each stored copy on PREFIX/received/MAILBOX
(QoS 1, not retained), every field checked against the stored file; RFC 2047
subjects; a camera mail's JPEG on PREFIX/received/MAILBOX/ID/1; hostile
MIME; percent-encoded topic levels; the broker stopped during 200
deliveries; kill -9 of serve with the broker down; a bounded outbox; a
wrong password; TLS with a CA and a password file; the retained status and
the last will; one connection across SIGHUP.
MQTT -> mail: JSON and raw RFC 5322 requests delivered to a rawmail serve
and to Postfix, with 'queued' and 'delivered' results; refusals.

Each test skips while `rawmail serve --help` does not mention a flag it
needs, so the file can land before the bridge is complete."""

import base64
import datetime
import email
import email.policy
import email.utils
import functools
import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from dns_util import nsd  # noqa: F401 (fixture)
from helpers import Delivered, crlf, free_port, mail_user_args, mailbox_messages, rawmail_bin
from mqtt_broker import (PASSWORD, MosquittoSub, Subscriber, publish, retained,  # noqa: F401
                         start_broker)
from postfix_util import start_postfix  # noqa: F401 (fixture)

PREFIX = "rawmail"
CLIENT_ID = "rawmail-under-test"
SENDER = "alice@client.test"
HELO = "client.test"
EVENT_FIELDS = {"id", "mailbox", "from", "to", "client_ip", "helo", "header_from", "subject",
                "date", "message_id", "size", "path", "text", "attachments"}
# Where MQTT requests are delivered: a second rawmail serve (dest.test) and
# Postfix (pf.test), found through NSD's MX records, on one port number.
DEST = "127.0.0.3"
PF_HOST = "127.0.0.2"
MQTT_FROM = "house@example.test"


# ---------------------------------------------------------------------------
# what this rawmail can do


@functools.lru_cache(maxsize=None)
def serve_help():
    p = subprocess.run([str(rawmail_bin()), "serve", "--help"], capture_output=True,
                       timeout=30)
    return p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")


def need(*flags):
    """Skip unless serve's --help names every flag (as a whole word: --mqtt
    is not --mqtt-topic)."""
    text = serve_help()
    for flag in flags:
        if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text):
            pytest.skip(f"rawmail serve --help does not mention {flag} yet")


# ---------------------------------------------------------------------------
# helpers


def bridge(start_server, broker, *extra, client_id=CLIENT_ID, url=None, **kw):
    """serve with --mqtt on the broker's anonymous listener."""
    return start_server("--mqtt", url or broker.url(), "--mqtt-client-id", client_id,
                        *mail_user_args(), *extra, **kw)


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        assert time.monotonic() < deadline, what() if callable(what) else what
        time.sleep(0.05)


def message(subject, body="Hello from the MQTT tests.\n", headers="", mid=None, sender=None):
    mid = mid or f"<{os.urandom(6).hex()}@client.test>"
    return crlf(f"From: Alice <{sender or SENDER}>\n"
                "To: User <user@example.test>\n"
                f"Subject: {subject}\n"
                f"Message-ID: {mid}\n"
                "Date: Mon, 03 Nov 2025 10:00:00 +0000\n"
                f"{headers}"
                "\n" + body)


def deliver(srv, rcpts, data, sender=SENDER, conn=None):
    """One transaction; asserts the 250; returns the reply."""
    c = conn or srv.connect()
    try:
        if conn is None:
            r = c.cmd(f"EHLO {HELO}")
            assert r.code == 250, r
        r = c.mail_transaction(sender, rcpts, data)
        assert r.code == 250, r
        return r
    finally:
        if conn is None:
            c.cmd("QUIT")
            c.close()


def session(srv):
    c = srv.connect()
    r = c.cmd(f"EHLO {HELO}")
    assert r.code == 250, r
    return c


def event_of(msg):
    """The JSON object of an event: the payload must be valid UTF-8 (RFC 8259
    §8.1) and one JSON object."""
    text = msg.payload.decode("utf-8")          # strict: raises on invalid UTF-8
    ev = json.loads(text)
    assert isinstance(ev, dict), text
    return ev


def events(sub, mailbox_level, n, timeout=30, what=None):
    """The first n events on PREFIX/received/LEVEL (attachments excluded)."""
    got = sub.wait_for(n, f"{PREFIX}/received/{mailbox_level}", timeout=timeout, what=what)
    return [event_of(m) for m in got]


def first_arrivals(evs):
    """Each id's first event, in arrival order (a duplicate may follow a crash)."""
    seen, out = set(), []
    for ev in evs:
        if ev["id"] not in seen:
            seen.add(ev["id"])
            out.append(ev)
    return out


def stored(mailroot, ev):
    """The stored file an event names; checks the path is inside the mail root."""
    path = ev["path"]
    assert isinstance(path, str) and path and not path.startswith("/"), path
    assert ".." not in Path(path).parts, path
    f = Path(mailroot) / path
    assert f.is_file(), f"event path {path} is not a file under {mailroot}"
    return f


def outbox_files(mailroot):
    d = Path(mailroot) / ".rawmail" / "outbox"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def killpg(srv):
    """kill -9 of serve's whole process group; the teardown has nothing to stop."""
    os.killpg(srv.pgid, signal.SIGKILL)
    srv.proc.wait(10)
    deadline = time.monotonic() + 10
    while srv._group_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    srv.returncode = srv.proc.returncode
    srv.proc = None
    srv.log_file.close()


def iso_or_rfc5322_same_instant(value, header):
    """date: the Date header's value, or the same instant in ISO 8601."""
    if value == header:
        return True
    want = email.utils.parsedate_to_datetime(header)
    try:
        got = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return False
    return got.tzinfo is not None and got == want


def topic_level(name):
    """A mailbox name as one topic level: '+', '#', '/', '%' and NUL
    percent-encoded, upper-case hex (RFC 3986 §2.1)."""
    out = []
    for ch in name:
        if ch in "+#/%\0":
            out.append("%%%02X" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


def jpeg_bytes(size=40000):
    """A JPEG-framed blob (SOI, APP0 JFIF, then every byte value including
    CR, LF, NUL and 0xFF, then EOI): what matters is that each byte comes
    back unchanged."""
    head = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    body = bytes((i * 7919 + (i >> 8)) & 0xFF for i in range(size - len(head) - 2))
    return head + body + b"\xff\xd9"


def b64_lines(data):
    text = base64.b64encode(data).decode()
    return "\n".join(text[i:i + 76] for i in range(0, len(text), 76)) + "\n"


def camera_mail(jpeg, extra_parts=()):
    parts = ["--cam-boundary\n"
             "Content-Type: text/plain; charset=us-ascii\n\n"
             "Motion detected on camera 1 at 03:14.\n"]
    parts.append("--cam-boundary\n"
                 "Content-Type: image/jpeg; name=\"snapshot.jpg\"\n"
                 "Content-Transfer-Encoding: base64\n"
                 "Content-Disposition: attachment; filename=\"snapshot.jpg\"\n\n"
                 + b64_lines(jpeg))
    for name, ctype, data in extra_parts:
        parts.append("--cam-boundary\n"
                     f"Content-Type: {ctype}; name=\"{name}\"\n"
                     "Content-Transfer-Encoding: base64\n"
                     f"Content-Disposition: attachment; filename=\"{name}\"\n\n"
                     + b64_lines(data))
    return message("Motion alarm", body="This is a multi-part message in MIME format.\n"
                   + "".join(parts) + "--cam-boundary--\n",
                   headers="MIME-Version: 1.0\n"
                           "Content-Type: multipart/mixed; boundary=\"cam-boundary\"\n",
                   sender="camera@client.test")


# ---------------------------------------------------------------------------
# mail in -> MQTT: the event


def test_plain_text_event_every_field(tmp_path, start_broker, start_server):
    need("--mqtt", "--mqtt-client-id")
    broker = start_broker()
    sub = Subscriber(broker, f"{PREFIX}/received/#")
    status = Subscriber(broker, f"{PREFIX}/status")
    srv = bridge(start_server, broker)
    data = message("Door bell", body="Someone rang at the front door.\nSecond line.\n",
                   mid="<bell.1@client.test>")
    # Connected first, so that the time printed below is the event's own.
    wait_for(lambda: b"online" in [x.payload for x in status.messages], 20, srv.log)
    c = session(srv)
    r = c.mail_transaction(SENDER, ["user@example.test"], data)
    t_reply = time.monotonic()
    assert r.code == 250, r
    c.close()
    [m] = sub.wait_for(1, f"{PREFIX}/received/user", timeout=30, what=srv.log)
    assert m.topic == f"{PREFIX}/received/user"
    assert m.qos == 1 and not m.retain, (m.qos, m.retain)
    ev = event_of(m)
    print(f"\n[plain] event: {m.payload.decode()}")
    assert set(ev) >= EVENT_FIELDS, f"missing fields {EVENT_FIELDS - set(ev)} in {ev}"
    f = stored(srv.mailroot, ev)
    [raw] = mailbox_messages(srv.mailroot, "user")
    assert f.read_bytes() == raw
    d = Delivered(raw)
    assert ev["id"] == d.received_fields()["id"], (ev["id"], d.received)
    assert ev["mailbox"] == "user"
    assert ev["path"].startswith("user/new/"), ev["path"]
    assert ev["from"] == SENDER
    assert ev["to"] == ["user@example.test"]
    assert ev["client_ip"] == "127.0.0.1"
    assert ev["helo"] == HELO
    assert ev["header_from"] in ("Alice <alice@client.test>", "alice@client.test"), ev
    assert ev["subject"] == "Door bell"
    assert iso_or_rfc5322_same_instant(ev["date"], "Mon, 03 Nov 2025 10:00:00 +0000"), ev
    assert ev["message_id"] in ("<bell.1@client.test>", "bell.1@client.test"), ev
    assert ev["size"] == f.stat().st_size == len(raw)
    assert ev["text"].replace("\r\n", "\n").rstrip("\n") == \
        "Someone rang at the front door.\nSecond line."
    assert not ev.get("text_truncated", False), ev
    assert ev["attachments"] == []
    # Only the event: nothing else under received/, nothing retained.
    time.sleep(0.5)
    assert [x.topic for x in sub.messages] == [f"{PREFIX}/received/user"]
    assert retained(broker, f"{PREFIX}/received/user") is None
    print(f"\n[plain] 250 -> event {1000 * (m.t - t_reply):.1f} ms")


def test_one_event_per_stored_copy_with_its_recipients(tmp_path, start_broker, start_server):
    need("--mqtt", "--mqtt-client-id")
    broker = start_broker()
    sub = Subscriber(broker, f"{PREFIX}/received/#")
    srv = bridge(start_server, broker)
    # user and user+tag share one Maildir (one copy); bob has his own.
    deliver(srv, ["user@example.test", "User+Tag@example.test", "bob@example.test"],
            message("Two copies"))
    got = sub.wait_for(2, f"{PREFIX}/received/+", timeout=30, what=srv.log)
    time.sleep(0.5)
    got = sub.matching(f"{PREFIX}/received/+")
    assert sorted(m.topic for m in got) == [f"{PREFIX}/received/bob", f"{PREFIX}/received/user"]
    evs = {event_of(m)["mailbox"]: event_of(m) for m in got}
    assert evs["user"]["to"] == ["user@example.test", "User+Tag@example.test"], evs["user"]
    assert evs["bob"]["to"] == ["bob@example.test"], evs["bob"]
    assert evs["user"]["id"] == evs["bob"]["id"]          # one message, one queue id
    assert evs["user"]["path"] != evs["bob"]["path"]
    for ev in evs.values():
        assert ev["size"] == stored(srv.mailroot, ev).stat().st_size


def test_long_text_is_cut_at_64_kib(tmp_path, start_broker, start_server):
    need("--mqtt", "--mqtt-client-id")
    broker = start_broker()
    sub = Subscriber(broker, f"{PREFIX}/received/#")
    srv = bridge(start_server, broker)
    line = "0123456789 abcdefghijklmnopqrstuvwxyz \u00e9\u00e8\u2603 ABCDEFGHIJKLMNOPQRSTUVWXYZ\n"
    body = line * (100 * 1024 // len(line.encode()) + 1)
    deliver(srv, ["user@example.test"],
            message("Long", body=body,
                    headers="MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
                            "Content-Transfer-Encoding: 8bit\n"))
    [ev] = events(sub, "user", 1, what=srv.log)
    assert ev["text_truncated"] is True, {k: v for k, v in ev.items() if k != "text"}
    text = ev["text"].replace("\r\n", "\n")
    assert 0 < len(text.encode()) <= 64 * 1024, len(text.encode())
    assert len(text.encode()) > 60 * 1024, len(text.encode())   # cut near the cap, not early
    # A prefix of the body, cut between characters (valid UTF-8: event_of).
    assert body.startswith(text), text[-200:]


@pytest.mark.parametrize("raw_subject, want", [
    ("=?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4g4piD?=", "Grüße aus Köln ☃"),
    ("=?utf-8?Q?Caf=C3=A9_=E2=80=94_d=C3=A9j=C3=A0_vu?=", "Café — déjà vu"),
    # RFC 2047 §6.2: white space between adjacent encoded words is dropped.
    ("=?UTF-8?Q?Bewegung_im?= =?UTF-8?B?IEfDpHJ0ZW4=?=", "Bewegung im Gärten"),
    ("Re: =?ISO-8859-1?Q?Gr=FC=DFe?= [cam 2]", "Re: Grüße [cam 2]"),
    ("=?UTF-8?B?5rip5bqm44K744Oz44K144O8?=\n =?UTF-8?B?OiAyMeKEgw==?=", "温度センサー: 21℃"),
])
def test_rfc2047_subject_decoded_to_utf8(tmp_path, start_broker, start_server, raw_subject,
                                         want):
    need("--mqtt", "--mqtt-client-id")
    broker = start_broker()
    sub = Subscriber(broker, f"{PREFIX}/received/#")
    srv = bridge(start_server, broker)
    body = "Temperatur =C3=BCber 21 =E2=84=83.\n"
    deliver(srv, ["user@example.test"],
            message(raw_subject, body=body,
                    headers="MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
                            "Content-Transfer-Encoding: quoted-printable\n"))
    [m] = sub.wait_for(1, f"{PREFIX}/received/user", timeout=30, what=srv.log)
    ev = event_of(m)
    assert ev["subject"] == want, ev["subject"]
    # The payload carries the characters (UTF-8 or \\u escapes), both valid.
    assert ev["text"].rstrip("\r\n") == "Temperatur über 21 ℃."


def test_latin1_text_converted_to_utf8(tmp_path, start_broker, start_server):
    need("--mqtt", "--mqtt-client-id")
    broker = start_broker()
    sub = Subscriber(broker, f"{PREFIX}/received/#")
    srv = bridge(start_server, broker)
    body = "Stra\xdfe, K\xf6ln, \xe0 bient\xf4t\n".encode("latin-1")
    data = message("latin-1", body="", headers=(
        "MIME-Version: 1.0\nContent-Type: text/plain; charset=ISO-8859-1\n"
        "Content-Transfer-Encoding: 8bit\n")) + crlf(body)
    deliver(srv, ["user@example.test"], data)
    [ev] = events(sub, "user", 1, what=srv.log)
    assert ev["text"].rstrip("\r\n") == "Straße, Köln, à bientôt"


def test_camera_jpeg_attachment_bytes_on_its_topic(tmp_path, start_broker, start_server):
    need("--mqtt", "--mqtt-client-id", "--mqtt-attachments")
    broker = start_broker()
    sub = Subscriber(broker, f"{PREFIX}/received/#")
    msub = MosquittoSub(broker, f"{PREFIX}/received/#")
    srv = bridge(start_server, broker, "--mqtt-attachments")
    jpeg = jpeg_bytes()
    deliver(srv, ["cam@example.test"], camera_mail(jpeg), sender="camera@client.test")
    [ev] = events(sub, "cam", 1, what=srv.log)
    qid = ev["id"]
    assert ev["text"].rstrip("\r\n") == "Motion detected on camera 1 at 03:14."
    assert len(ev["attachments"]) == 1, ev["attachments"]
    a = ev["attachments"][0]
    topic = f"{PREFIX}/received/cam/{qid}/1"
    assert (a["name"], a["type"], a["size"]) == ("snapshot.jpg", "image/jpeg", len(jpeg)), a
    assert a.get("topic") == topic, a
    for s in (sub, msub):
        [m] = s.wait_for(1, topic, timeout=30, what=srv.log)
        assert m.qos == 1 and not m.retain
        assert m.payload == jpeg, (len(m.payload), m.payload[:16])
    time.sleep(0.5)
    # ('cam/#' would match 'cam' itself too: MQTT 3.1.1 §4.7.1.2.)
    assert len(sub.matching(f"{PREFIX}/received/cam/+/+")) == 1   # the JPEG once
    assert len(sub.matching(f"{PREFIX}/received/cam")) == 1       # the event once


def test_attachments_listed_not_published_without_the_flag_or_over_the_cap(
        tmp_path, start_broker, start_server):
    need("--mqtt", "--mqtt-client-id", "--mqtt-attachments", "--mqtt-max-attachment")
    broker = start_broker()
    sub = Subscriber(broker, f"{PREFIX}/received/#")
    small = bytes(range(256)) * 8
    jpeg = jpeg_bytes()
    # Without --mqtt-attachments: listed only.
    plain = bridge(start_server, broker)
    deliver(plain, ["cam@example.test"], camera_mail(jpeg), sender="camera@client.test")
    [ev] = events(sub, "cam", 1, what=plain.log)
    [a] = ev["attachments"]
    assert (a["name"], a["type"], a["size"]) == ("snapshot.jpg", "image/jpeg", len(jpeg))
    assert not a.get("topic"), a
    time.sleep(1.0)
    assert sub.matching(f"{PREFIX}/received/cam/+/+") == []
    assert plain.stop() == 0
    # With it and a cap between the two sizes: the small one only.
    capped = bridge(start_server, broker, "--mqtt-attachments", "--mqtt-max-attachment",
                    "20000", mailroot=tmp_path / "mail2")
    deliver(capped, ["cam@example.test"],
            camera_mail(jpeg, extra_parts=[("log.bin", "application/octet-stream", small)]),
            sender="camera@client.test")
    ev = events(sub, "cam", 2, what=capped.log)[1]
    big, little = ev["attachments"]
    assert (big["name"], big["size"], little["name"], little["size"]) == \
        ("snapshot.jpg", len(jpeg), "log.bin", len(small)), ev["attachments"]
    assert not big.get("topic"), big
    assert little["topic"].startswith(f"{PREFIX}/received/cam/{ev['id']}/"), little
    [m] = sub.wait_for(1, little["topic"], timeout=30, what=capped.log)
    assert m.payload == small
    time.sleep(1.0)
    assert [x.topic for x in sub.matching(f"{PREFIX}/received/cam/+/+")] == [little["topic"]]


def hostile_messages():
    """(name, data) of messages a bridge must survive."""
    return [
        ("no-boundary", message("no boundary", body="never a delimiter\n",
                                headers="MIME-Version: 1.0\nContent-Type: multipart/mixed; "
                                        "boundary=\"missing\"\n")),
        ("unclosed-nested", message("unclosed", headers=(
            "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=a\n"), body=(
            "--a\nContent-Type: multipart/alternative; boundary=b\n\n"
            "--b\nContent-Type: text/plain; charset=utf-8\n"
            "Content-Transfer-Encoding: base64\n\n!!!! not base64 ====\n"
            "--b\nContent-Type: image/png; name==?UTF-8?B?####?=\n"
            "Content-Transfer-Encoding: base64\n\niVBORw0KGgo\n"))),
        ("bad-bytes", message("", body="", headers="") .replace(
            b"Subject: \r\n",
            b"Subject: \xff\xfe raw =?x-unknown?B?AAAA?= =?UTF-8?B?####?= =?UTF-8?Q?=ZZ?=\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n")
            + b"bad =ZZ escape, invalid \xc3\x28 \xed\xa0\x80 \xf8\x88\x80\x80\x80 utf-8\r\n"),
        ("bad-charset", message("=?no-such-charset?Q?abc?=", body="\x01\x02 text\n",
                                headers="MIME-Version: 1.0\nContent-Type: text/plain; "
                                        "charset=no-such-charset\n")),
        ("many-parts", message("10000 parts", headers=(
            "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=p\n"),
            body="".join(f"--p\nContent-Type: application/x-part; name=p{i}\n\nx\n"
                         for i in range(10000)) + "--p--\n")),
        ("huge-header", message("huge", headers="X-Huge: " + "\n ".join(
            "y" * 900 for _ in range(1100)) + "\n")),
        ("deep-nesting", message("deep", headers=(
            "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=d0\n"),
            body="".join(f"--d{i}\nContent-Type: multipart/mixed; boundary=d{i + 1}\n\n"
                         for i in range(500)) + "--d500\nContent-Type: text/plain\n\nbottom\n")),
    ]


def test_hostile_mime_gives_valid_json_events(tmp_path, start_broker, start_server):
    need("--mqtt", "--mqtt-client-id")
    broker = start_broker()
    sub = Subscriber(broker, f"{PREFIX}/received/#")
    srv = bridge(start_server, broker)
    msgs = hostile_messages()
    c = session(srv)
    for name, data in msgs:
        r = c.mail_transaction(SENDER, [f"{name}@example.test"], data)
        assert r.code == 250, (name, r)
    c.cmd("QUIT")
    c.close()
    got = sub.wait_for(len(msgs), f"{PREFIX}/received/+", timeout=60, what=srv.log)
    by_box = {}
    for m in got:
        ev = event_of(m)                      # valid UTF-8, valid JSON
        by_box[ev["mailbox"]] = ev
        assert m.topic == f"{PREFIX}/received/{ev['mailbox']}"
    assert sorted(by_box) == sorted(n for n, _ in msgs)
    for name, _ in msgs:
        ev = by_box[name]
        f = stored(srv.mailroot, ev)
        assert ev["size"] == f.stat().st_size, name
        assert ev["id"] == Delivered(f.read_bytes()).received_fields()["id"], name
        assert isinstance(ev["subject"], str), name
        # No text/plain part (no boundary found, say): null or "".
        assert ev["text"] is None or isinstance(ev["text"], str), name
        assert isinstance(ev["attachments"], list), name
    srv.assert_alive()


def test_mailbox_names_percent_encoded_in_the_topic(tmp_path, start_broker, start_server):
    need("--mqtt", "--mqtt-client-id")
    broker = start_broker()
    sub = Subscriber(broker, f"{PREFIX}/received/#")
    srv = bridge(start_server, broker)
    # A leading '+' stays in the mailbox name (user+tag drops the tag).
    c = session(srv)
    for rcpt in ("+garage@example.test", "door#1@example.test"):
        r = c.mail_transaction(SENDER, [rcpt], message(f"to {rcpt}"))
        assert r.code == 250, r
    c.close()
    got = sub.wait_for(2, f"{PREFIX}/received/+", timeout=30, what=srv.log)
    topics = sorted(m.topic for m in got)
    assert topics == sorted([f"{PREFIX}/received/{topic_level('+garage')}",
                             f"{PREFIX}/received/{topic_level('door#1')}"]), topics
    assert {event_of(m)["mailbox"] for m in got} == {"+garage", "door#1"}


def test_topic_prefix_option(tmp_path, start_broker, start_server):
    need("--mqtt", "--mqtt-client-id", "--mqtt-topic")
    broker = start_broker()
    sub = Subscriber(broker, "#")
    srv = bridge(start_server, broker, "--mqtt-topic", "home/mail")
    deliver(srv, ["user@example.test"], message("prefixed"))
    sub.wait_for(1, "home/mail/received/user", timeout=30, what=srv.log)
    wait_for(lambda: [m for m in sub.matching("home/mail/status") if m.payload == b"online"],
             10, srv.log)
    assert sub.matching(f"{PREFIX}/#") == []


def test_config_file_mqtt_section(tmp_path, start_broker, start_server):
    """[mqtt] of the file, keys without the mqtt- prefix (url for --mqtt)."""
    need("--mqtt", "--mqtt-client-id", "--mqtt-topic", "--mqtt-password-file",
         "--mqtt-cafile")
    broker = start_broker()
    sub = Subscriber(broker, "#")
    pw = broker.password_file_for_client(tmp_path / "mqtt.pw")
    conf = tmp_path / "rawmail.conf"
    conf.write_text("[mqtt]\n"
                    f"url = {broker.url(tls=True)}\n"
                    f"password-file = {pw}\n"
                    f"cafile = {broker.ca_path}\n"
                    "topic = from/file\n"
                    "client-id = rawmail-from-file\n")
    srv = start_server("-c", conf, *mail_user_args())
    deliver(srv, ["user@example.test"], message("configured by file"))
    [m] = sub.wait_for(1, "from/file/received/user", timeout=30, what=srv.log)
    assert event_of(m)["subject"] == "configured by file"
    assert broker.connects("rawmail-from-file") == 1, broker.client_ids()
    assert re.search(r"New client connected from \S+ as rawmail-from-file \(.*u'rawmail'\)",
                     broker.log())


def test_mqtt5_event_and_status(tmp_path, start_broker, start_server):
    """The issue: speak MQTT 3.1.1 and 5."""
    need("--mqtt", "--mqtt-client-id", "--mqtt-protocol")
    broker = start_broker()
    sub = Subscriber(broker, [f"{PREFIX}/received/#", f"{PREFIX}/status"])
    srv = bridge(start_server, broker, "--mqtt-protocol", "5")
    deliver(srv, ["user@example.test"], message("over MQTT 5"))
    [ev] = events(sub, "user", 1, what=srv.log)
    assert ev["subject"] == "over MQTT 5"
    assert re.search(rf"New client connected from \S+ as {CLIENT_ID} \(p5,", broker.log()), \
        broker.log()[-3000:]
    wait_for(lambda: b"online" in status_payloads(sub), 10, srv.log)
    killpg(srv)
    wait_for(lambda: status_payloads(sub)[-1:] == [b"offline"], 10,
             lambda: f"no will after kill -9 over MQTT 5: {status_payloads(sub)}")


# ---------------------------------------------------------------------------
# nothing lost


def test_broker_stopped_during_200_deliveries(tmp_path, start_broker, start_server):
    need("--mqtt", "--mqtt-client-id")
    broker = start_broker()
    sub = Subscriber(broker, f"{PREFIX}/received/#")
    srv = bridge(start_server, broker)
    boxes = ("cam1", "cam2")
    c = session(srv)
    slowest_down = 0.0
    for i in range(200):
        if i == 50:
            broker.stop()
        if i == 150:
            broker.start()
        t0 = time.monotonic()
        r = c.mail_transaction(SENDER, [f"{boxes[i % 2]}@example.test"], message(f"seq {i}"))
        assert r.code == 250, (i, r)
        if 50 <= i < 150:
            slowest_down = max(slowest_down, time.monotonic() - t0)
    c.cmd("QUIT")
    c.close()
    # A broker that is down never delays a 250 (the issue): not by a
    # connect timeout, anyway.
    assert slowest_down < 3.0, f"a transaction took {slowest_down:.1f} s with the broker down"

    def all_there():
        got = first_arrivals(event_of(m) for m in sub.matching(f"{PREFIX}/received/+"))
        return len(got) >= 200

    wait_for(all_there, 90, lambda: f"{len(sub.messages)} events of 200:\n{srv.log()[-3000:]}")
    evs = [event_of(m) for m in sub.matching(f"{PREFIX}/received/+")]
    for box in boxes:
        mine = [ev for ev in evs if ev["mailbox"] == box]
        seqs = [int(ev["subject"].split()[1]) for ev in first_arrivals(mine)]
        want = [i for i in range(200) if boxes[i % 2] == box]
        assert seqs == want, f"{box}: first arrivals out of commit order: {seqs}"
        # A duplicate carries the same event.
        firsts = {ev["id"]: ev for ev in first_arrivals(mine)}
        for ev in mine:
            assert ev == firsts[ev["id"]]
    dups = len(evs) - 200
    wait_for(lambda: outbox_files(srv.mailroot) == [], 30,
             lambda: f"outbox not emptied: {outbox_files(srv.mailroot)}")
    print(f"\n[broker restart] 200 events, {dups} duplicates, slowest 250 while down "
          f"{1000 * slowest_down:.0f} ms")


def test_kill9_with_broker_down_then_events_after_restart(tmp_path, start_broker, start_server):
    need("--mqtt", "--mqtt-client-id")
    broker = start_broker()
    sub = Subscriber(broker, f"{PREFIX}/received/#")
    broker.stop()
    mailroot = tmp_path / "mail"
    srv = bridge(start_server, broker, mailroot=mailroot)
    c = session(srv)
    for i in range(20):
        r = c.mail_transaction(SENDER, ["user@example.test"], message(f"seq {i}"))
        assert r.code == 250, r
    c.close()
    # The events wait durably in the outbox.
    assert outbox_files(mailroot), "no outbox file under .rawmail/outbox after 20 commits"
    killpg(srv)
    broker.start()
    time.sleep(1.0)
    assert sub.matching(f"{PREFIX}/received/+") == []      # nobody was left to publish
    again = bridge(start_server, broker, mailroot=mailroot)
    wait_for(lambda: len(first_arrivals(event_of(m) for m in sub.matching(
        f"{PREFIX}/received/+"))) >= 20, 60, again.log)
    evs = first_arrivals(event_of(m) for m in sub.matching(f"{PREFIX}/received/+"))
    assert [ev["subject"] for ev in evs] == [f"seq {i}" for i in range(20)]
    stored_ids = sorted(Delivered(m).received_fields()["id"]
                        for m in mailbox_messages(mailroot, "user"))
    assert sorted(ev["id"] for ev in evs) == stored_ids
    wait_for(lambda: outbox_files(mailroot) == [], 30,
             lambda: f"outbox not emptied: {outbox_files(mailroot)}")


def test_outbox_bound_drops_oldest_with_a_log_line(tmp_path, start_broker, start_server):
    need("--mqtt", "--mqtt-client-id", "--mqtt-outbox-max")
    broker = start_broker()
    sub = Subscriber(broker, f"{PREFIX}/received/#")
    broker.stop()
    srv = bridge(start_server, broker, "--mqtt-outbox-max", "5")
    c = session(srv)
    for i in range(8):
        r = c.mail_transaction(SENDER, ["user@example.test"], message(f"seq {i}"))
        assert r.code == 250, r          # mail still accepted past the bound
    c.close()
    assert len(mailbox_messages(srv.mailroot, "user")) == 8
    broker.start()
    evs = [event_of(m) for m in sub.wait_for(5, f"{PREFIX}/received/user", timeout=60,
                                             what=srv.log)]
    time.sleep(2)
    evs = first_arrivals(event_of(m) for m in sub.matching(f"{PREFIX}/received/user"))
    assert [ev["subject"] for ev in evs] == [f"seq {i}" for i in range(3, 8)], \
        [ev["subject"] for ev in evs]
    # One log line per dropped event, naming it: the three oldest.
    ids = {}
    for raw in mailbox_messages(srv.mailroot, "user"):
        ids[email.message_from_bytes(raw)["Subject"]] = Delivered(raw).received_fields()["id"]
    drops = [l for l in srv.log().splitlines() if re.search(r"(?i)drop", l)]
    for i in range(8):
        named = [l for l in drops if ids[f"seq {i}"] in l]
        assert len(named) == (1 if i < 3 else 0), (i, named, srv.log())


def test_wrong_password_logged_and_mail_accepted(tmp_path, start_broker, start_server):
    need("--mqtt", "--mqtt-client-id", "--mqtt-password-file")
    broker = start_broker()
    sub = Subscriber(broker, f"{PREFIX}/received/#")
    wrong = "not the broker password"
    pw = broker.password_file_for_client(tmp_path / "mqtt.pw", wrong)
    srv = bridge(start_server, broker, "--mqtt-cafile", broker.ca_path, "--mqtt-password-file",
                 pw, url=broker.url(tls=True))
    t0 = time.monotonic()
    deliver(srv, ["user@example.test"], message("accepted anyway"))
    assert time.monotonic() - t0 < 3.0
    assert len(mailbox_messages(srv.mailroot, "user", wait=5)) == 1
    m = wait_for(lambda: re.search(
        r"(?im)^.*mqtt.*(not authori[sz]ed|bad user ?name or password|"
        r"authenticat|refused).*$", srv.log()), 20,
        lambda: f"no clear log line for the refused login:\n{srv.log()}")
    print(f"\n[wrong password] log line: {m.group(0)}")
    assert wrong not in srv.log() and PASSWORD not in srv.log()
    assert sub.matching(f"{PREFIX}/received/#") == []
    assert outbox_files(srv.mailroot), "the event is not kept for later"
    srv.assert_alive()


def test_tls_with_cafile_and_password_file(tmp_path, start_broker, start_server):
    need("--mqtt", "--mqtt-client-id", "--mqtt-password-file", "--mqtt-cafile")
    broker = start_broker()
    sub = Subscriber(broker, f"{PREFIX}/received/#")
    pw = broker.password_file_for_client(tmp_path / "mqtt.pw")
    # No CA given: the broker's certificate is not trusted (verified by
    # default), nothing is published, mail is still accepted.
    untrusted = bridge(start_server, broker, "--mqtt-password-file", pw,
                       url=broker.url(tls=True))
    deliver(untrusted, ["user@example.test"], message("before the CA"))
    wait_for(lambda: re.search(r"(?i)mqtt.*(certificate|verif|tls|ssl)", untrusted.log()), 20,
             lambda: f"no log line for the untrusted certificate:\n{untrusted.log()}")
    time.sleep(1)
    assert sub.matching(f"{PREFIX}/received/#") == []
    assert untrusted.stop() == 0
    # With the CA: the waiting event and a new one go out over TLS.
    srv = bridge(start_server, broker, "--mqtt-cafile", broker.ca_path, "--mqtt-password-file",
                 pw, url=broker.url(tls=True))
    deliver(srv, ["user@example.test"], message("after the CA"))
    evs = first_arrivals(events(sub, "user", 2, what=srv.log))
    assert [ev["subject"] for ev in evs] == ["before the CA", "after the CA"]
    assert re.search(rf"New client connected from \S+ as {CLIENT_ID} \(.*u'rawmail'\)",
                     broker.log()), broker.log()[-3000:]
    assert PASSWORD not in srv.log()


# ---------------------------------------------------------------------------
# status, last will, reloads


def status_payloads(sub):
    return [m.payload for m in sub.matching(f"{PREFIX}/status")]


def test_status_online_retained_then_will_offline_on_kill9(tmp_path, start_broker,
                                                            start_server):
    need("--mqtt", "--mqtt-client-id")
    broker = start_broker()
    sub = Subscriber(broker, f"{PREFIX}/status")
    srv = bridge(start_server, broker)
    wait_for(lambda: b"online" in status_payloads(sub), 20, srv.log)
    r = retained(broker, f"{PREFIX}/status")
    assert r is not None and r.payload == b"online" and r.retain
    killpg(srv)
    wait_for(lambda: status_payloads(sub)[-1:] == [b"offline"], 10,
             lambda: f"no will after kill -9: {status_payloads(sub)}\n{broker.log()[-3000:]}")
    r = retained(broker, f"{PREFIX}/status")
    assert r is not None and r.payload == b"offline" and r.retain
    assert re.search(rf"(?i)will.*{CLIENT_ID}|{CLIENT_ID}.*will|Socket error on client "
                     rf"{CLIENT_ID}|Client {CLIENT_ID} closed its connection", broker.log())


def test_status_offline_published_on_sigterm(tmp_path, start_broker, start_server):
    need("--mqtt", "--mqtt-client-id")
    broker = start_broker()
    sub = Subscriber(broker, f"{PREFIX}/status")
    srv = bridge(start_server, broker)
    wait_for(lambda: b"online" in status_payloads(sub), 20, srv.log)
    assert srv.stop() == 0
    wait_for(lambda: status_payloads(sub)[-1:] == [b"offline"], 10,
             lambda: f"no offline on a clean stop: {status_payloads(sub)}")
    r = retained(broker, f"{PREFIX}/status")
    assert r is not None and r.payload == b"offline" and r.retain
    # A clean stop: rawmail disconnected itself (no socket error).
    assert re.search(rf"Client {CLIENT_ID} disconnected", broker.log()), broker.log()[-3000:]


def test_sighup_keeps_one_connection(tmp_path, start_broker, start_server):
    need("--mqtt", "--mqtt-client-id")
    broker = start_broker()
    sub = Subscriber(broker, [f"{PREFIX}/status", f"{PREFIX}/received/#"])
    srv = bridge(start_server, broker)
    wait_for(lambda: b"online" in status_payloads(sub), 20, srv.log)
    for _ in range(3):
        srv.signal(signal.SIGHUP)
        time.sleep(0.7)
    deliver(srv, ["user@example.test"], message("after reloads"))
    events(sub, "user", 1, what=srv.log)
    time.sleep(1.0)
    assert broker.connects(CLIENT_ID) == 1, broker.client_ids()
    assert b"offline" not in status_payloads(sub), status_payloads(sub)
    assert f"Client {CLIENT_ID} already connected" not in broker.log()
    assert not re.search(rf"Client {CLIENT_ID} (disconnected|closed)", broker.log())


# ---------------------------------------------------------------------------
# MQTT -> mail


class SendSetup:
    """serve with --spool, --mqtt and --mqtt-send; dest.test is a second
    rawmail serve on DEST, pf.test a Postfix on PF_HOST (when asked for),
    both on the queue's --port, found through NSD."""

    def __init__(self, tmp_path, start_broker, start_server, nsd, *extra, postfix=None,
                 allow=("@dest.test", "@pf.test")):
        self.port = dest_port()
        self.dns = nsd({"dest.test": "@ MX 10 mx\nmx A 127.0.0.3\n",
                        "pf.test": "@ MX 10 mx\nmx A 127.0.0.2\n"})
        self.broker = start_broker()
        self.sub = Subscriber(self.broker, f"{PREFIX}/result")
        self.pf = (postfix(domains=("pf.test",), users=("user",), host=PF_HOST,
                           port=self.port) if postfix else None)
        self.dest = start_server(*mail_user_args(), "--domain", "dest.test",
                                 listen=[f"{DEST}:{self.port}"], mailroot=tmp_path / "destmail")
        self.spool = tmp_path / "spool"
        allow_args = [a for pat in allow for a in ("--mqtt-send-allow", pat)]
        self.srv = bridge(start_server, self.broker, "--mqtt-send", "--mqtt-from", MQTT_FROM,
                          *allow_args, "--spool", self.spool, "--port", self.port, "--dns",
                          self.dns.addr, "--retry-schedule", "1s", *extra)
        # Subscribed to PREFIX/send once online: a request published
        # before that would be lost (no session yet).
        wait_for(lambda: re.search(rf"Received SUBSCRIBE from {CLIENT_ID}-send\b", self.broker.log()),
                 20, lambda: f"serve did not subscribe to {PREFIX}/send:\n{self.srv.log()}\n"
                             f"--- broker ---\n{self.broker.log()[-3000:]}")

    def request(self, payload, topic=f"{PREFIX}/send"):
        if not isinstance(payload, (bytes, str)):
            payload = json.dumps(payload)
        publish(self.broker, topic, payload)

    def results(self, n, timeout=60):
        return [json.loads(m.payload.decode("utf-8"))
                for m in self.sub.wait_for(n, f"{PREFIX}/result", timeout=timeout,
                                           what=self.srv.log)]

    def dest_mail(self, box, n=1, timeout=30):
        return wait_for(lambda: len(mailbox_messages(self.dest.mailroot, box)) >= n and
                        mailbox_messages(self.dest.mailroot, box), timeout,
                        lambda: f"nothing in dest's {box}:\n{self.srv.log()[-3000:]}")


def dest_port():
    """A port free on 127.0.0.1, DEST and PF_HOST."""
    for _ in range(50):
        p = free_port()
        ok = True
        for host in (DEST, PF_HOST):
            s = socket.socket()
            try:
                s.bind((host, p))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return p
    raise AssertionError("no port free on every address")


def spool_entries(spool):
    d = Path(spool) / "env"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def test_json_request_delivered_to_rawmail_with_results(tmp_path, start_broker, start_server,
                                                        nsd):
    need("--mqtt", "--mqtt-client-id", "--mqtt-send", "--mqtt-send-allow", "--mqtt-from")
    s = SendSetup(tmp_path, start_broker, start_server, nsd)
    csv = b"time,temp\r\n12:00,21.5\r\n12:05,21.7\r\n"
    blob = bytes(range(256)) * 4
    s.request({"to": "bob@dest.test", "subject": "Washer done \u2713",
               "text": "The washing machine finished at 12:00.\nGr\u00fc\u00dfe\n",
               "html": "<p>The washing machine <b>finished</b>.</p>",
               "id": "req-1",
               "attachments": [{"name": "temps.csv", "type": "text/csv",
                                "data": base64.b64encode(csv).decode()},
                               {"name": "raw.bin", "type": "application/octet-stream",
                                "data": base64.b64encode(blob).decode()}]})
    queued, final = s.results(2)
    assert queued["id"] == "req-1" and queued["status"] == "queued", queued
    qid = queued["queue_id"]
    assert isinstance(qid, str) and qid, queued
    assert final["id"] == "req-1" and final["queue_id"] == qid, final
    assert final["status"] == "delivered", final
    [rc] = final["recipients"]
    assert rc["address"] == "bob@dest.test" and rc["status"] == "delivered", rc
    [raw] = s.dest_mail("bob")
    d = Delivered(raw)
    # The remote reply: the destination's own 250 with its queue id (the
    # result may say who answered before it).
    dest_id = d.received_fields()["id"]
    assert re.search(rf"\b250 2\.0\.0 .*\b{dest_id}$", rc["reply"]), (rc, dest_id)
    assert d.return_path == f"<{MQTT_FROM}>"
    msg = email.message_from_bytes(d.body, policy=email.policy.default)
    assert msg["Subject"] == "Washer done \u2713"
    assert msg["From"].addresses[0].addr_spec == MQTT_FROM
    assert [a.addr_spec for a in msg["To"].addresses] == ["bob@dest.test"]
    assert msg["Message-ID"] and msg["Date"]
    assert email.utils.parsedate_to_datetime(msg["Date"]) is not None
    text = msg.get_body(("plain",)).get_content()
    assert text.replace("\r\n", "\n").rstrip("\n") == \
        "The washing machine finished at 12:00.\nGr\u00fc\u00dfe"
    html = msg.get_body(("html",)).get_content()
    assert "<b>finished</b>" in html
    files = {p.get_filename(): p for p in msg.walk() if p.get_filename()}
    assert sorted(files) == ["raw.bin", "temps.csv"], list(files)
    assert files["temps.csv"].get_content_type() == "text/csv"
    assert files["temps.csv"].get_payload(decode=True) == csv
    assert files["raw.bin"].get_content_type() == "application/octet-stream"
    assert files["raw.bin"].get_payload(decode=True) == blob
    wait_for(lambda: spool_entries(s.spool) == [], 10, "entry left in the spool")
    assert re.search(rf"event=delivery id={re.escape(qid)}\b", s.srv.log()), s.srv.log()
    time.sleep(1)
    assert len(s.sub.matching(f"{PREFIX}/result")) == 2        # one per stage, no more


def test_json_request_delivered_to_postfix(tmp_path, start_broker, start_server, nsd,
                                           start_postfix):
    need("--mqtt", "--mqtt-client-id", "--mqtt-send", "--mqtt-send-allow", "--mqtt-from")
    s = SendSetup(tmp_path, start_broker, start_server, nsd, postfix=start_postfix)
    s.request({"to": ["user@pf.test"], "subject": "Battery low", "text": "Sensor 4: 9 %.\n",
               "id": "pf-1"})
    queued, final = s.results(2)
    assert (queued["status"], final["status"]) == ("queued", "delivered"), (queued, final)
    assert final["queue_id"] == queued["queue_id"] and final["id"] == "pf-1"
    [rc] = final["recipients"]
    assert rc["address"] == "user@pf.test" and rc["status"] == "delivered"
    assert re.search(r"\b250 2\.0\.0 Ok: queued as \w+$", rc["reply"]), rc
    [raw] = s.pf.wait_for_mail("user", timeout=30)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Subject"] == "Battery low"
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == "Sensor 4: 9 %.\n"
    assert msg["Return-Path"] == f"<{MQTT_FROM}>"


def assert_raw_kept(body, raw):
    """The message as published, byte for byte, below at most some trace
    header fields rawmail may add on the way (a Received:, say)."""
    want = raw.replace(b"\r\n", b"\n")
    assert body.endswith(want), f"published message not kept:\n{body!r}\nwant {want!r}"
    added = body[:len(body) - len(want)]
    for line in added.split(b"\n")[:-1] if added else []:
        assert re.match(rb"[\x21-\x39\x3b-\x7e]+:|[ \t]", line), f"not a header line: {line!r}"


def test_raw_rfc5322_requests_topic_address_and_header_recipients(
        tmp_path, start_broker, start_server, nsd):
    need("--mqtt", "--mqtt-client-id", "--mqtt-send", "--mqtt-send-allow", "--mqtt-from")
    s = SendSetup(tmp_path, start_broker, start_server, nsd)
    # PREFIX/send/ADDR: the topic's address, not the To header's.
    raw1 = crlf(f"From: {MQTT_FROM}\nTo: someone.else@dest.test\nSubject: raw one\n"
                "Message-ID: <raw.1@example.test>\nDate: Sun, 06 Dec 2026 12:00:00 +0000\n\n"
                "first raw body\n.leading dot\n")
    s.request(raw1, topic=f"{PREFIX}/send/bob@dest.test")
    r = s.results(2)
    assert [x["status"] for x in r] == ["queued", "delivered"], r
    [got] = s.dest_mail("bob")
    assert_raw_kept(Delivered(got).body, raw1)
    # PREFIX/send: To and Cc.
    raw2 = crlf(f"From: {MQTT_FROM}\nTo: carol@dest.test\nCc: Dave <dave@dest.test>\n"
                "Subject: raw two\nMessage-ID: <raw.2@example.test>\n"
                "Date: Sun, 06 Dec 2026 12:00:00 +0000\n\nsecond raw body\n")
    s.request(raw2)
    r = s.results(4)[2:]
    assert [x["status"] for x in r] == ["queued", "delivered"], r
    assert sorted(x["address"] for x in r[1]["recipients"]) == ["carol@dest.test",
                                                                "dave@dest.test"]
    for box in ("carol", "dave"):
        [got] = s.dest_mail(box)
        assert_raw_kept(Delivered(got).body, raw2)
    assert mailbox_messages(s.dest.mailroot, "someone.else") == []


def test_refused_requests_send_nothing(tmp_path, start_broker, start_server, nsd):
    need("--mqtt", "--mqtt-client-id", "--mqtt-send", "--mqtt-send-allow", "--mqtt-from")
    s = SendSetup(tmp_path, start_broker, start_server, nsd, "--max-message-size", "100K")
    bad = [
        ("disallowed", {"to": "evil@elsewhere.test", "subject": "x", "text": "x",
                        "id": "bad-1"}),
        ("one disallowed of two", {"to": ["bob@dest.test", "mallory@evil.test"],
                                   "subject": "x", "text": "x", "id": "bad-2"}),
        ("malformed JSON", '{"to": "bob@dest.test", "subject": "x", "text": '),
        ("no recipient", {"subject": "x", "text": "x", "id": "bad-3"}),
        ("header injection", {"to": "bob@dest.test", "subject": "hi\r\nBcc: eve@dest.test",
                              "text": "x", "id": "bad-4"}),
        ("too large", {"to": "bob@dest.test", "subject": "big", "text": "z" * 200_000,
                       "id": "bad-5"}),
        # From is the configured sender: the topic's address is what is refused.
        ("raw, disallowed topic address",
         f"From: {MQTT_FROM}\r\nTo: bob@dest.test\r\nSubject: raw\r\n\r\nx\r\n"),
    ]
    # The refusal names what it refuses.
    names = {"disallowed": "evil@elsewhere.test", "one disallowed of two": "mallory@evil.test",
             "raw, disallowed topic address": "evil@elsewhere.test"}
    for i, (what, payload) in enumerate(bad):
        topic = f"{PREFIX}/send/evil@elsewhere.test" if what.startswith("raw") \
            else f"{PREFIX}/send"
        s.request(payload, topic=topic)
        r = s.results(i + 1)[i]
        assert r["status"] == "refused", (what, r)
        assert isinstance(r.get("reason"), str) and len(r["reason"]) > 5, (what, r)
        if isinstance(payload, dict) and "id" in payload:
            assert r.get("id") == payload["id"], (what, r)
        assert not r.get("queue_id"), (what, r)
        if what in names:
            assert names[what] in r["reason"], (what, r)
        print(f"\n[refused: {what}] {r['reason']}")
    time.sleep(2)
    assert spool_entries(s.spool) == []
    assert not (s.dest.mailroot).exists() or all(
        mailbox_messages(s.dest.mailroot, b) == [] for b in ("bob", "eve"))
    assert "event=delivery" not in s.srv.log()
    assert len(s.sub.matching(f"{PREFIX}/result")) == len(bad)


def test_rate_limit_refuses_past_n_per_minute(tmp_path, start_broker, start_server, nsd):
    need("--mqtt", "--mqtt-client-id", "--mqtt-send", "--mqtt-send-allow", "--mqtt-from",
         "--mqtt-send-rate")
    s = SendSetup(tmp_path, start_broker, start_server, nsd, "--mqtt-send-rate", "3")
    for i in range(5):
        s.request({"to": "bob@dest.test", "subject": f"rate {i}", "text": "x",
                   "id": f"rate-{i}"})
    # 3 queued (then delivered) and 2 refused: 3 * 2 + 2 results.
    rs = s.results(8)
    time.sleep(1.5)
    rs = [json.loads(m.payload) for m in s.sub.matching(f"{PREFIX}/result")]
    by_id = {}
    for r in rs:
        by_id.setdefault(r["id"], []).append(r["status"])
    assert by_id == {"rate-0": ["queued", "delivered"], "rate-1": ["queued", "delivered"],
                     "rate-2": ["queued", "delivered"], "rate-3": ["refused"],
                     "rate-4": ["refused"]}, by_id
    assert re.search(r"(?i)rate", [r for r in rs if r["id"] == "rate-3"][0]["reason"])
    got = s.dest_mail("bob", n=3)
    time.sleep(1)
    assert sorted(email.message_from_bytes(m)["Subject"]
                  for m in mailbox_messages(s.dest.mailroot, "bob")) == \
        ["rate 0", "rate 1", "rate 2"], got
