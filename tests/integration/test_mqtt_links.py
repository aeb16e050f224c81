"""The bridge's two MQTT connections (issue 12; doc/DESIGN.md "The MQTT
bridge"): libmosquitto publishes the status, the events and the results
under the configured client id; with --mqtt-send, Paho receives the send
requests under that id + "-send" (Paho acknowledges a QoS 1 message only
after its callback queued it).  Against a real Mosquitto: each id connects
once, also across reloads, only the receiving one subscribes, and only the
publishing one carries the status.  And a broker that accepts TCP but never
answers (a silent socket, started here) neither delays mail nor stalls the
bridge: the attempt times out with a log line, and the bridge tries again."""

import re
import signal
import socket
import threading
import time

from dns_util import nsd  # noqa: F401 (fixture)
from mqtt_broker import Subscriber, start_broker  # noqa: F401 (fixture)
from test_mqtt import (CLIENT_ID, PREFIX, SendSetup, bridge, deliver, events, message, need,
                       outbox_files, status_payloads, wait_for)
from helpers import mailbox_messages


def test_requests_on_their_own_connection_and_both_kept_across_reloads(
        tmp_path, start_broker, start_server, nsd):
    need("--mqtt", "--mqtt-send", "--mqtt-from", "--mqtt-send-allow")
    s = SendSetup(tmp_path, start_broker, start_server, nsd)
    status = Subscriber(s.broker, [f"{PREFIX}/status", f"{PREFIX}/received/#"])
    wait_for(lambda: b"online" in status_payloads(status), 20, s.srv.log)
    for _ in range(2):
        s.srv.signal(signal.SIGHUP)
        time.sleep(0.7)
    s.request({"to": "bob@dest.test", "subject": "two links", "text": "x", "id": "links-1"})
    deliver(s.srv, ["user@example.test"], message("an event too"))
    events(status, "user", 1, what=s.srv.log)
    rs = s.results(2)
    assert [(r.get("id"), r["status"]) for r in rs] == [("links-1", "queued"),
                                                        ("links-1", "delivered")], rs
    log = s.broker.log()
    assert s.broker.connects(CLIENT_ID) == 1, s.broker.client_ids()
    assert s.broker.connects(f"{CLIENT_ID}-send") == 1, s.broker.client_ids()
    # Only the receiving connection subscribes; the will is the publisher's.
    assert re.search(rf"Received SUBSCRIBE from {CLIENT_ID}-send\b", log)
    assert not re.search(rf"Received SUBSCRIBE from {CLIENT_ID} ", log)
    assert b"offline" not in status_payloads(status)
    assert not re.search(rf"Client {CLIENT_ID}(-send)? (disconnected|closed)", log)
    s.srv.assert_alive()


class SilentBroker:
    """A TCP listener that accepts connections and never says a word."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(c)

    def close(self):
        self.sock.close()
        for c in self.accepted:
            c.close()


def test_silent_broker_times_out_and_mail_is_accepted(tmp_path, start_server):
    need("--mqtt", "--mqtt-client-id")
    silent = SilentBroker()
    try:
        srv = start_server("--mqtt", f"mqtt://127.0.0.1:{silent.port}", "--mqtt-client-id",
                           CLIENT_ID)
        t0 = time.monotonic()
        deliver(srv, ["user@example.test"], message("while the broker says nothing"))
        assert time.monotonic() - t0 < 3.0
        assert len(mailbox_messages(srv.mailroot, "user", wait=5)) == 1
        m = wait_for(lambda: re.search(r"(?m)^.*event=mqtt_connect_failed.*timed out.*$",
                                       srv.log()), 30,
                     lambda: f"no time-out of the silent broker:\n{srv.log()}")
        print(f"\n[silent broker] {m.group(0)}")
        # Then it tries again (1 s later, doubling), on a new connection.
        wait_for(lambda: len(silent.accepted) >= 2, 20,
                 lambda: f"{len(silent.accepted)} connection(s):\n{srv.log()}")
        assert outbox_files(srv.mailroot), "the event is not kept for later"
        srv.assert_alive()
    finally:
        silent.close()
