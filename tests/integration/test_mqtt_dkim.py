"""DKIM signing of MQTT send requests (issue 11: "sign only the configured
sender"; issue 12: requests go through the queue, where DKIM applies).
The bridge reads [dkim]'s keys as root before its privilege drop and signs
a request's message when a key's domain covers its From (the configured
--mqtt-from, the only sender a request may use) before queueing it; the
message a second rawmail serve receives through the queue verifies with
dkimpy against the record the test's NSD publishes.  A key for another
domain signs nothing."""

import email
import email.policy
import json
import os
import re

import pytest

from dns_util import nsd  # noqa: F401 (fixture)
from helpers import crlf, mail_user_args, mailbox_messages
from mqtt_broker import Subscriber, publish, start_broker  # noqa: F401 (fixture)
from test_dkim import dnsfunc_for, keygen, signatures
from test_mqtt import CLIENT_ID, DEST, MQTT_FROM, PREFIX, bridge, dest_port, need, wait_for

dkim = pytest.importorskip("dkim")


def bridge_with_keys(tmp_path, start_broker, start_server, nsd, keys, records):
    need("--mqtt", "--mqtt-send", "--mqtt-from", "--mqtt-send-allow")
    port = dest_port()
    dns = nsd({"dest.test": "@ MX 10 mx\nmx A 127.0.0.3\n",
               "example.test": "".join(r + "\n" for r in records)})
    conf = tmp_path / "rawmail.conf"
    conf.write_text("".join(f"[dkim]\nkey = {k}\nselector = {sel}\ndomain = {dom}\n"
                            for k, sel, dom in keys))
    broker = start_broker()
    sub = Subscriber(broker, f"{PREFIX}/result")
    dest = start_server(*mail_user_args(), "--domain", "dest.test", listen=[f"{DEST}:{port}"],
                        mailroot=tmp_path / "destmail")
    srv = bridge(start_server, broker, "-c", conf, "--mqtt-send", "--mqtt-from", MQTT_FROM,
                 "--mqtt-send-allow", "@dest.test", "--spool", tmp_path / "spool", "--port",
                 port, "--dns", dns.addr, "--retry-schedule", "1s")
    wait_for(lambda: re.search(rf"Received SUBSCRIBE from {CLIENT_ID}\b", broker.log()), 20,
             lambda: f"no subscription:\n{srv.log()}")
    return dns, broker, sub, dest, srv


def delivered(dest, box, n, srv):
    return wait_for(lambda: len(mailbox_messages(dest.mailroot, box)) >= n and
                    mailbox_messages(dest.mailroot, box), 60,
                    lambda: f"nothing delivered to {box}:\n{srv.log()[-3000:]}")


def test_request_signed_for_the_configured_sender(tmp_path, start_broker, start_server, nsd):
    key, rr = keygen(tmp_path, "mq1", "rsa")
    ed, ed_rr = keygen(tmp_path, "mq2", "ed25519")
    # 0600 and root's: the bridge (the mail user after its drop) could not
    # read them later; it reads them before.
    if os.geteuid() == 0:
        assert os.stat(key).st_uid == 0 and (os.stat(key).st_mode & 0o077) == 0
    dns, broker, sub, dest, srv = bridge_with_keys(tmp_path, start_broker, start_server, nsd,
                                        [(key, "mq1", "example.test"),
                                         (ed, "mq2", "example.test")], [rr, ed_rr])
    publish(broker, f"{PREFIX}/send", json.dumps(
        {"to": "bob@dest.test", "subject": "signed by the bridge", "text": "UPS on battery.",
         "id": "dkim-1"}))
    publish(broker, f"{PREFIX}/send/bob@dest.test",
            "From: House <house@example.test>\nSubject: raw and signed\n\nraw body\n")
    [a, b] = delivered(dest, "bob", 2, srv)
    by_subject = {email.message_from_bytes(m, policy=email.policy.compat32)["Subject"]: crlf(m)
                  for m in (a, b)}
    assert sorted(by_subject) == ["raw and signed", "signed by the bridge"], sorted(by_subject)
    for subject, msg in by_subject.items():
        sigs = signatures(msg)
        assert len(sigs) == 2, (subject, msg[:1500])
        assert all(b"d=example.test" in s for s in sigs), sigs
        d = dkim.DKIM(msg)
        for i in range(2):
            assert d.verify(idx=i, dnsfunc=dnsfunc_for(dns)), (subject, i, msg[:1500])
    assert srv.log().count("event=mqtt_request_queued") == 2, srv.log()
    assert srv.log().count("event=dkim_signed domain=example.test") == 4, srv.log()
    results = [json.loads(m.payload) for m in
               sub.wait_for(3, f"{PREFIX}/result", timeout=60, what=srv.log)]
    assert {r["status"] for r in results if r.get("id") == "dkim-1"} >= {"queued"}


def test_key_for_another_domain_signs_nothing(tmp_path, start_broker, start_server, nsd):
    key, rr = keygen(tmp_path, "other", "rsa", domain="other.test")
    dns, broker, sub, dest, srv = bridge_with_keys(tmp_path, start_broker, start_server, nsd,
                                        [(key, "other", "other.test")], [])
    publish(broker, f"{PREFIX}/send", json.dumps(
        {"to": "bob@dest.test", "subject": "not signed", "text": "x"}))
    [m] = delivered(dest, "bob", 1, srv)
    assert signatures(crlf(m)) == [], m[:1000]
    srv.assert_alive()
