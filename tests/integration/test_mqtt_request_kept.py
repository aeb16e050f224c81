"""A request the spool cannot take is not acknowledged (issue 12: "put in
the outgoing queue ... before the broker is acknowledged: ... never zero
times").  With the spool's tmp/ made unwritable for the bridge's user, the
bridge logs why, exits without the PUBACK (Paho sends it only after
messageArrived returns), serve's parent starts it again, and the broker,
which still holds the unacknowledged QoS 1 message in the persistent
session, sends it again; once the spool is writable the request is queued
and delivered, once."""

import json
import os
import time

import pytest

from dns_util import nsd  # noqa: F401 (fixture)
from mqtt_broker import start_broker  # noqa: F401 (fixture)
from test_mqtt import PREFIX, SendSetup, need, wait_for


def test_request_kept_by_the_broker_until_the_spool_takes_it(tmp_path, start_broker,
                                                             start_server, nsd):
    need("--mqtt", "--mqtt-send", "--mqtt-from", "--mqtt-send-allow")
    if os.geteuid() != 0:
        pytest.skip("needs root: the bridge runs as the mail user, the test changes modes")
    s = SendSetup(tmp_path, start_broker, start_server, nsd)
    tmp = s.spool / "tmp"
    mode = tmp.stat().st_mode & 0o7777
    tmp.chmod(0o500)              # the mail user can no longer create files there
    try:
        s.request({"to": "bob@dest.test", "subject": "kept by the broker", "text": "x",
                   "id": "kept-1"})
        wait_for(lambda: s.srv.log().count("event=mqtt_request_not_queued") >= 2, 30,
                 lambda: f"the bridge did not refuse to acknowledge:\n{s.srv.log()[-3000:]}")
        assert "exiting without PUBACK" in s.srv.log()
        assert "role=mqtt" in s.srv.log()        # the parent saw it exit and restarts it
        assert list((s.spool / "env").iterdir()) == []
    finally:
        tmp.chmod(mode)
    [m] = s.dest_mail("bob", n=1, timeout=60)
    assert b"Subject: kept by the broker" in m
    rs = s.results(2)
    assert [(r.get("id"), r["status"]) for r in rs] == [("kept-1", "queued"),
                                                        ("kept-1", "delivered")], rs
    time.sleep(2)
    assert len(s.sub.matching(f"{PREFIX}/result")) == 2
    assert s.srv.log().count("event=mqtt_request_queued") == 1, s.srv.log()[-3000:]
