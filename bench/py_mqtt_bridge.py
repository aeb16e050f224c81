#!/usr/bin/python3
"""bench/py_mqtt_bridge.py — an SMTP -> MQTT bridge of the kind users run
today (smtp2mqtt, emqtt, mailqtt: issue 12), the baseline bench/mqtt_bridge.py
compares `rawmail serve --mqtt` with.

aiosmtpd (Debian python3-aiosmtpd) takes each message; the handler parses it
with the email package, builds the same JSON event rawmail publishes (id,
mailbox, from, to, client_ip, helo, header_from, subject, date, message_id,
size, text, attachments) and hands it to paho-mqtt (python3-paho-mqtt) at
QoS 1 on PREFIX/received/MAILBOX, one per mailbox, then answers 250.  Like
those scripts it does not wait for the PUBACK (paho's network thread sends
it later): a broker that is down or a crash loses events, which is what the
issue sets out to fix; the bench measures speed only.

    /usr/bin/python3 bench/py_mqtt_bridge.py --listen 127.0.0.1:PORT
        --broker 127.0.0.1:PORT [--topic PREFIX] [--maildir DIR]

--maildir DIR: also store each message in DIR/MAILBOX (Maildir: tmp/, fsync,
rename to new/, fsync of new/) before the 250, as rawmail does; without it
nothing is stored, as in most such scripts.  The fsync runs in the event
loop, blocking every session meanwhile: the simple way these scripts do it.

Prints "ready" on stdout once it listens and the broker acknowledged its
connection; stops on SIGTERM.
"""

import argparse
import asyncio
import email
import email.policy
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from aiosmtpd.smtp import SMTP

TEXT_MAX = 64 * 1024


def hostport(spec):
    host, _, port = spec.rpartition(":")
    return host, int(port)


def mailbox_of(addr):
    local = addr.rpartition("@")[0] or addr
    return local.split("+", 1)[0].lower() or "postmaster"


def topic_level(name):
    return "".join("%%%02X" % ord(c) if c in "+#/%\0" else c for c in name)


def text_of(msg):
    try:
        part = msg.get_body(("plain",))
        if part is None:
            return "", False
        text = part.get_content()
    except Exception:                     # broken MIME: what could be read
        return "", False
    data = text.encode("utf-8", "replace")
    if len(data) <= TEXT_MAX:
        return text, False
    return data[:TEXT_MAX].decode("utf-8", "ignore"), True


def attachments_of(msg):
    out = []
    try:
        for part in msg.iter_attachments():
            payload = part.get_payload(decode=True) or b""
            out.append({"name": part.get_filename() or "", "type": part.get_content_type(),
                        "size": len(payload)})
    except Exception:
        pass
    return out


class Maildir:
    def __init__(self, root):
        self.root = root
        self.seq = 0

    def store(self, mailbox, data):
        d = os.path.join(self.root, mailbox)
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        self.seq += 1
        name = f"{time.time():.6f}.P{os.getpid()}Q{self.seq}.{socket.gethostname()}"
        tmp = os.path.join(d, "tmp", name)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(d, "new", name))
        dfd = os.open(os.path.join(d, "new"), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        return os.path.join(mailbox, "new", name)


class Handler:
    def __init__(self, client, prefix, maildir):
        self.client = client
        self.prefix = prefix
        self.maildir = maildir

    async def handle_DATA(self, server, session, envelope):
        data = envelope.content if isinstance(envelope.content, bytes) else \
            envelope.content.encode()
        msg = email.message_from_bytes(data, policy=email.policy.default)
        qid = uuid.uuid4().hex[:16]
        text, cut = text_of(msg)

        def header(name):
            try:
                v = msg.get(name)
                return str(v) if v is not None else ""
            except Exception:
                return ""

        boxes = {}
        for rcpt in envelope.rcpt_tos:
            boxes.setdefault(mailbox_of(rcpt), []).append(rcpt)
        for box, rcpts in boxes.items():
            event = {"id": qid, "mailbox": box, "from": envelope.mail_from, "to": rcpts,
                     "client_ip": session.peer[0], "helo": session.host_name or "",
                     "header_from": header("From"), "subject": header("Subject"),
                     "date": header("Date"), "message_id": header("Message-ID"),
                     "size": len(data), "text": text, "attachments": attachments_of(msg)}
            if cut:
                event["text_truncated"] = True
            if self.maildir:
                event["path"] = self.maildir.store(box, data)
            self.client.publish(f"{self.prefix}/received/{topic_level(box)}",
                                json.dumps(event, ensure_ascii=False), qos=1)
        return "250 2.0.0 OK queued as " + qid


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", required=True)
    ap.add_argument("--broker", required=True)
    ap.add_argument("--topic", default="pybridge")
    ap.add_argument("--maildir")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)

    connected = threading.Event()
    client = mqtt.Client(client_id=f"py-mqtt-bridge-{os.getpid()}", clean_session=True,
                         protocol=mqtt.MQTTv311)
    client.max_queued_messages_set(0)
    client.on_connect = lambda c, u, f, rc: rc == 0 and connected.set()
    bhost, bport = hostport(args.broker)
    client.connect(bhost, bport, keepalive=60)
    client.loop_start()
    if not connected.wait(10):
        sys.exit("py_mqtt_bridge: no CONNACK from the broker")

    maildir = Maildir(args.maildir) if args.maildir else None
    handler = Handler(client, args.topic, maildir)
    host, port = hostport(args.listen)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(
        lambda: SMTP(handler, hostname="pybridge.test", data_size_limit=64 * 1024 * 1024,
                     enable_SMTPUTF8=True), host=host, port=port, reuse_address=True))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.add_signal_handler(signal.SIGINT, loop.stop)
    print("ready", flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()
        client.disconnect()
        client.loop_stop()


if __name__ == "__main__":
    main()
