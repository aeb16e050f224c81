"""The Mosquitto fixture of the MQTT bridge's tests (mqtt_broker.py) on its
own, with Mosquitto's own clients and paho-mqtt: if these fail, a failure in
test_mqtt.py says nothing about rawmail."""

import subprocess
import time

import pytest

from mqtt_broker import (HOST, MOSQUITTO_PUB, MOSQUITTO_SUB, PASSWORD, USER, MosquittoSub,
                         Subscriber, broker, publish, retained, start_broker)  # noqa: F401


def pub_tls(b, topic, payload, user=USER, password=PASSWORD):
    return subprocess.run([MOSQUITTO_PUB, "-h", "localhost", "-p", str(b.tls_port), "--cafile",
                           str(b.ca_path), "-u", user, "-P", password, "-q", "1", "-t", topic,
                           "-m", payload], capture_output=True, timeout=30)


def test_anonymous_publish_reaches_both_subscribers_byte_for_byte(broker):
    paho = Subscriber(broker, "fx/#")
    msub = MosquittoSub(broker, "fx/#")
    try:
        payload = bytes(range(256)) + b"\r\n\0 end"
        publish(broker, "fx/a", payload)
        publish(broker, "fx/b", b"")
        for s in (paho, msub):
            got = s.wait_for(2, "fx/#", timeout=10)
            assert [(m.topic, m.payload, m.qos) for m in got] == [("fx/a", payload, 1),
                                                                  ("fx/b", b"", 1)]
    finally:
        paho.close()
        msub.close()


def test_tls_listener_wants_the_password_and_the_ca(broker):
    sub = Subscriber(broker, "tls/#", tls=True)
    try:
        assert pub_tls(broker, "tls/x", "over tls").returncode == 0
        assert sub.wait_for(1, "tls/x", timeout=10)[0].payload == b"over tls"
        bad = pub_tls(broker, "tls/x", "wrong password", password="nope")
        assert bad.returncode != 0
        # No CA given: the certificate is not trusted.
        p = subprocess.run([MOSQUITTO_PUB, "-h", "localhost", "-p", str(broker.tls_port),
                            "--capath", "/nonexistent", "-u", USER, "-P", PASSWORD,
                            "-t", "tls/x", "-m", "no ca"], capture_output=True, timeout=30)
        assert p.returncode != 0
        # Anonymous on the TLS listener: refused (per_listener_settings).
        p = subprocess.run([MOSQUITTO_PUB, "-h", "localhost", "-p", str(broker.tls_port),
                            "--cafile", str(broker.ca_path), "-t", "tls/x", "-m", "anon"],
                           capture_output=True, timeout=30)
        assert p.returncode != 0
        time.sleep(0.3)
        assert [m.payload for m in sub.matching("tls/#")] == [b"over tls"]
        assert "u'rawmail'" in broker.log()
    finally:
        sub.close()


def test_restart_keeps_queued_qos1_messages_and_retained(broker):
    sub = Subscriber(broker, "keep/#")
    publish(broker, "keep/status", "online", retain=True)
    sub.wait_for(1, "keep/status", timeout=10)
    # The subscriber goes away; its session stays and queues messages.
    sub.close()
    for i in range(5):
        publish(broker, "keep/q", f"queued {i}")
    broker.restart()
    assert broker.starts == 2
    again = Subscriber(broker, "keep/#", client_id=sub.client_id)
    try:
        got = again.wait_for(5, "keep/q", timeout=10)
        assert [m.payload for m in got] == [f"queued {i}".encode() for i in range(5)]
    finally:
        again.close()
    r = retained(broker, "keep/status")
    assert r is not None and r.payload == b"online" and r.retain
    assert broker.connects(sub.client_id) == 2


def test_subscriber_reconnects_by_itself_across_a_restart(broker):
    sub = Subscriber(broker, "re/#")
    try:
        broker.stop()
        assert not broker.running()
        broker.start()
        deadline = time.monotonic() + 10
        while broker.connects(sub.client_id) < 1 or not sub.connected.is_set():
            assert time.monotonic() < deadline, broker.log()
            time.sleep(0.05)
        publish(broker, "re/x", "after restart")
        assert sub.wait_for(1, "re/x", timeout=10)[0].payload == b"after restart"
    finally:
        sub.close()


def test_kill_fires_no_will_of_the_broker_but_a_client_will_on_kill(broker):
    """A client's last will goes out at once when its TCP connection dies
    (PEERS.md, 13): what the status tests rely on."""
    sub = Subscriber(broker, "will/#")
    p = subprocess.Popen([MOSQUITTO_SUB, "-h", HOST, "-p", str(broker.port), "-t", "x/none",
                          "-i", "will-client", "--will-topic", "will/status", "--will-payload",
                          "offline", "--will-retain", "--will-qos", "1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        broker.wait_log(r"New client connected from \S+ as will-client ", timeout=10)
        p.kill()
        p.wait(5)
        got = sub.wait_for(1, "will/status", timeout=5)
        assert got[0].payload == b"offline"
        r = retained(broker, "will/status")
        assert r is not None and r.payload == b"offline"
    finally:
        if p.poll() is None:
            p.kill()
        sub.close()


@pytest.mark.parametrize("sub, topic, want", [
    ("a/#", "a/b/c", True), ("a/+", "a/b", True), ("a/+", "a/b/c", False),
    ("a/b", "a/b", True), ("a/b", "a/c", False), ("#", "x", True)])
def test_topic_matches(sub, topic, want):
    from mqtt_broker import topic_matches
    assert topic_matches(sub, topic) is want
