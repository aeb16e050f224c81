"""A private Mosquitto broker on loopback for the MQTT bridge's tests
(issue 12, "Tests (real broker)"), and subscribers that collect what it
delivers.  Debian's /usr/sbin/mosquitto (2.0.x) runs from a configuration
generated here; nothing of a system broker (port 1883) is used or touched.

Import the fixtures into a test module::

    from mqtt_broker import broker, start_broker

``start_broker(tls=True)`` -- factory (function scope) -> a started ``Broker``:

  Two listeners on 127.0.0.1, each with its own settings
  (per_listener_settings true):
    .port       anonymous, plain MQTT            url() -> "mqtt://127.0.0.1:PORT"
    .tls_port   TLS, user USER with PASSWORD     url(tls=True)
                (password_file made by mosquitto_passwd -b; anonymous
                clients refused) -> "mqtts://rawmail@localhost:TLS_PORT"
  .ca_path      the test CA that signed the broker's certificate (SANs
                DNS:localhost, IP:127.0.0.1), for --mqtt-cafile
  .password_file_for_client(path, password=PASSWORD): write a 0600 file
                holding the password, for --mqtt-password-file
  persistence true in the broker's directory, saved on SIGTERM and every
  second: a restart (stop, then start on the same ports) keeps retained
  messages, persistent sessions and the QoS 1 messages queued for them.
  .start(), .stop() (SIGTERM, wait), .kill() (SIGKILL), .restart()
  (stop + start, same ports), .running()
  .log()        its log (log_type all: connections with client ids and
                users, disconnections, will messages, every PUBLISH)
  .connects(client_id)   how many times that client id connected
  .wait_log(regex, timeout)

``broker`` -- ``start_broker()``.

Subscribers (both keep a persistent session under a fixed client id, so
nothing is lost across their own reconnects or a broker restart; both
subscribe at QoS 1 and are ready when the constructor returns):

``Subscriber(broker, topics, tls=False)`` -- Python paho-mqtt (Debian's
  python3-paho-mqtt, importable from /usr/bin/python3 only).  Reconnects by
  itself.  .messages: [Message(topic, payload bytes, qos, retain, dup, t)]
  in arrival order; .wait_for(n, topic_filter="#", timeout) -> the
  matching messages once there are >= n of them (fails the test with what
  arrived otherwise); .matching(filter); .close().

``MosquittoSub(broker, topics)`` -- mosquitto_sub -F '%r %q %l %t %x': the
  payload as hex, so that it is compared byte by byte, from a client in
  another language than the test; same .messages / .wait_for / .close.

``retained(broker, topic)`` -> the retained Message on topic (a fresh,
  clean subscriber), or None.

The broker runs as root (`user root`): its files live in a directory made by
tempfile in /tmp (mode 0755, so that rawmail's unprivileged processes may
read the CA) and moved to tmp_path/mosquittoN when it stops, so nothing is
left in /tmp.
"""

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from helpers import free_port

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"
MOSQUITTO_SUB = "/usr/bin/mosquitto_sub"
MOSQUITTO_PUB = "/usr/bin/mosquitto_pub"
USER = "rawmail"
PASSWORD = "broker pass phrase 42"
HOST = "127.0.0.1"
TLS_NAME = "localhost"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
WAIT_TIMEOUT = 20.0


def require_mosquitto():
    for tool in (MOSQUITTO, MOSQUITTO_PASSWD, MOSQUITTO_SUB, MOSQUITTO_PUB):
        if not os.access(tool, os.X_OK):
            pytest.skip(f"{tool} missing: run scripts/deps test (Debian mosquitto, "
                        "mosquitto-clients)")
    try:
        import paho.mqtt.client  # noqa: F401
    except ImportError:
        pytest.skip("paho-mqtt missing: run under /usr/bin/python3 with python3-paho-mqtt")


def _openssl(*args):
    p = subprocess.run(["openssl", *map(str, args)], capture_output=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args))}: "
                           f"{p.stderr.decode(errors='replace')}")


def make_tls(directory):
    """A CA and a broker certificate it signed (EC P-256, SANs localhost and
    127.0.0.1), made with the openssl command line."""
    d = Path(directory)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", d / "ca.key", "-out", d / "ca.pem", "-days", "30",
             "-subj", "/CN=rawmail MQTT test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", d / "broker.key", "-out", d / "broker.csr", "-subj", f"/CN={TLS_NAME}")
    (d / "broker.ext").write_text(
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature\n"
        "extendedKeyUsage = serverAuth\n"
        f"subjectAltName = DNS:{TLS_NAME}, IP:{HOST}\n")
    _openssl("x509", "-req", "-in", d / "broker.csr", "-CA", d / "ca.pem", "-CAkey",
             d / "ca.key", "-CAcreateserial", "-days", "30", "-sha256",
             "-extfile", d / "broker.ext", "-out", d / "broker.pem")
    for name in ("ca.pem", "broker.pem"):
        os.chmod(d / name, 0o644)
    # The broker runs as root; its key stays root's.
    os.chmod(d / "broker.key", 0o600)


def _port_listening(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(0.5)
    try:
        s.connect((HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _free_port_ipv4():
    """A port nothing listens on (helpers.free_port also checks ::1)."""
    return free_port()


class Broker:
    def __init__(self, keep_dir, tls=True):
        self.keep_dir = Path(keep_dir)
        self.dir = Path(tempfile.mkdtemp(prefix="rawmail-mosquitto-", dir="/tmp"))
        os.chmod(self.dir, 0o755)
        self.tls = tls
        self.port = _free_port_ipv4()
        self.tls_port = _free_port_ipv4() if tls else None
        while self.tls_port == self.port:
            self.tls_port = _free_port_ipv4()
        self.proc = None
        self.starts = 0
        self.clients = []          # subscribers to close at teardown
        self.conf_path = self.dir / "mosquitto.conf"
        self.log_path = self.dir / "mosquitto.log"
        self.out_path = self.dir / "mosquitto.out"
        self.ca_path = self.dir / "ca.pem"
        self.passwd_path = self.dir / "passwd"
        self.write()

    # -- configuration
    def write(self):
        if self.tls:
            make_tls(self.dir)
            p = subprocess.run([MOSQUITTO_PASSWD, "-c", "-b", str(self.passwd_path), USER,
                                PASSWORD], capture_output=True, timeout=30)
            assert p.returncode == 0, p.stderr
            os.chmod(self.passwd_path, 0o600)
        lines = [
            "per_listener_settings true",
            "user root",
            "persistence true",
            f"persistence_location {self.dir}/",
            "persistence_file mosquitto.db",
            "autosave_interval 1",
            f"log_dest file {self.log_path}",
            "log_type all",
            "log_timestamp true",
            "connection_messages true",
            # The default 100 in flight / 1000 queued per client would drop
            # QoS 1 messages queued for a subscriber while it is away.
            "max_queued_messages 0",
            "max_inflight_messages 0",
            "",
            f"listener {self.port} {HOST}",
            "allow_anonymous true",
        ]
        if self.tls:
            lines += [
                "",
                f"listener {self.tls_port} {HOST}",
                "allow_anonymous false",
                f"password_file {self.passwd_path}",
                f"cafile {self.ca_path}",
                f"certfile {self.dir / 'broker.pem'}",
                f"keyfile {self.dir / 'broker.key'}",
            ]
        self.conf_path.write_text("\n".join(lines) + "\n")

    def url(self, tls=False, user=None, host=None):
        if tls:
            return f"mqtts://{user or USER}@{host or TLS_NAME}:{self.tls_port}"
        return f"mqtt://{user + '@' if user else ''}{host or HOST}:{self.port}"

    def password_file_for_client(self, path, password=PASSWORD):
        """A file holding the password (as a user would make it: one line),
        readable by root only."""
        path = Path(path)
        path.write_text(password + "\n")
        os.chmod(path, 0o600)
        return path

    # -- life cycle
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        assert not self.running(), "broker already running"
        ports = [self.port] + ([self.tls_port] if self.tls else [])
        for port in ports:
            assert not _port_listening(port), f"port {port} is taken before the broker starts"
        out = open(self.out_path, "ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf_path)],
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                     cwd=self.dir, start_new_session=True)
        out.close()
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT
        pending = list(ports)
        while pending:
            if self.proc.poll() is not None:
                raise AssertionError(f"mosquitto exited {self.proc.returncode} at start:\n"
                                     f"{self.output()}\n{self.log()}")
            if _port_listening(pending[0]):
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"mosquitto did not listen on {pending} within "
                                     f"{START_TIMEOUT} s:\n{self.output()}\n{self.log()}")
            time.sleep(0.02)
        return self

    def stop(self):
        """SIGTERM (the broker saves its persistence file and sends no will
        for its clients), wait.  Returns its exit status."""
        if not self.running():
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"mosquitto still running {STOP_TIMEOUT} s after SIGTERM")

    def kill(self):
        """SIGKILL: what was not yet saved (autosave every second) is lost."""
        if self.running():
            self.proc.kill()
            self.proc.wait(5)

    def restart(self):
        self.stop()
        return self.start()

    def close(self):
        """Teardown: close its subscribers, stop it and keep its directory
        in tmp_path."""
        for c in self.clients:
            try:
                c.close()
            except Exception:
                pass
        try:
            self.stop()
        finally:
            self.kill()
            if self.dir != self.keep_dir:
                if self.keep_dir.exists():
                    shutil.rmtree(self.keep_dir, ignore_errors=True)
                shutil.move(str(self.dir), str(self.keep_dir))
                self.dir = self.keep_dir
                self.log_path = self.dir / "mosquitto.log"
                self.out_path = self.dir / "mosquitto.out"
                self.ca_path = self.dir / "ca.pem"

    # -- what it saw
    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def output(self):
        try:
            return self.out_path.read_text(errors="replace")
        except OSError:
            return ""

    def connects(self, client_id):
        """Connections made under client_id so far (all starts of the broker)."""
        pat = re.compile(r"New client connected from \S+ as (\S+) \(")
        return sum(1 for m in pat.finditer(self.log()) if m.group(1) == client_id)

    def client_ids(self):
        """Every client id that connected, in order (repeats included)."""
        return re.findall(r"New client connected from \S+ as (\S+) \(", self.log())

    def wait_log(self, regex, timeout=WAIT_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(regex, self.log())
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError(f"{regex!r} not in the broker's log within {timeout} s:\n"
                                     f"{self.log()[-5000:]}")
            time.sleep(0.05)

    def __repr__(self):
        return f"<Broker {HOST}:{self.port} tls={self.tls_port} dir={self.dir}>"


# ---------------------------------------------------------------------------
# subscribers


@dataclass
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    dup: bool = False
    t: float = field(default_factory=time.monotonic)


def topic_matches(sub, topic):
    """MQTT 3.1.1 §4.7 topic filter matching ('+' one level, '#' the rest)."""
    fs, ts = sub.split("/"), topic.split("/")
    for i, f in enumerate(fs):
        if f == "#":
            return True
        if i >= len(ts):
            return False
        if f != "+" and f != ts[i]:
            return False
    return len(fs) == len(ts)


class _Collector:
    def __init__(self):
        self.messages = []
        self.cond = threading.Condition()

    def _add(self, msg):
        with self.cond:
            self.messages.append(msg)
            self.cond.notify_all()

    def matching(self, topic_filter="#"):
        with self.cond:
            return [m for m in self.messages if topic_matches(topic_filter, m.topic)]

    def wait_for(self, n, topic_filter="#", timeout=WAIT_TIMEOUT, what=None):
        """The messages matching topic_filter once there are at least n."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = [m for m in self.messages if topic_matches(topic_filter, m.topic)]
                if len(got) >= n:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    extra = what() if callable(what) else (what or "")
                    shown = "\n".join(f"  {m.topic} {m.payload[:300]!r}" for m in got[-20:])
                    raise AssertionError(
                        f"{len(got)} of {n} messages on {topic_filter!r} within {timeout} s; "
                        f"last ones:\n{shown}\n{extra}")
                self.cond.wait(min(left, 0.2))

    def wait_quiet(self, seconds, topic_filter="#"):
        """Wait until nothing new matching arrived for `seconds`; returns them."""
        last = -1
        while True:
            got = self.matching(topic_filter)
            if len(got) == last:
                return got
            last = len(got)
            time.sleep(seconds)


_sub_seq = 0


def _next_id(prefix):
    global _sub_seq
    _sub_seq += 1
    return f"{prefix}-{os.getpid()}-{_sub_seq}"


class Subscriber(_Collector):
    """paho-mqtt 1.6 client, MQTT 3.1.1, clean_session False, QoS 1."""

    def __init__(self, broker, topics, tls=False, client_id=None, clean=False,
                 timeout=START_TIMEOUT):
        super().__init__()
        import paho.mqtt.client as mqtt
        self.mqtt = mqtt
        if isinstance(topics, str):
            topics = [topics]
        self.topics = list(topics)
        self.client_id = client_id or _next_id("test-sub")
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.connect_results = []
        self.closed = False
        c = mqtt.Client(client_id=self.client_id, clean_session=clean,
                        protocol=mqtt.MQTTv311)
        if tls:
            c.tls_set_context(ssl.create_default_context(cafile=str(broker.ca_path)))
            c.username_pw_set(USER, PASSWORD)
        c.reconnect_delay_set(min_delay=1, max_delay=1)
        c.on_connect = self._on_connect
        c.on_subscribe = lambda client, userdata, mid, granted: self.subscribed.set()
        c.on_message = self._on_message
        c.on_disconnect = lambda client, userdata, rc: self.connected.clear()
        self.client = c
        broker.clients.append(self)
        c.connect(TLS_NAME if tls else HOST, broker.tls_port if tls else broker.port,
                  keepalive=30)
        c.loop_start()
        if not self.subscribed.wait(timeout):
            c.loop_stop()
            raise AssertionError(f"subscriber {self.client_id} not subscribed within "
                                 f"{timeout} s: {self.connect_results}\n{broker.log()[-3000:]}")

    def _on_connect(self, client, userdata, flags, rc):
        self.connect_results.append(rc)
        if rc == 0:
            self.connected.set()
            # Also on a reconnect: harmless with a kept session, needed if
            # the broker lost it.
            client.subscribe([(t, 1) for t in self.topics])

    def _on_message(self, client, userdata, msg):
        self._add(Message(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain),
                          bool(getattr(msg, "dup", False))))

    def close(self):
        if self.closed:
            return
        self.closed = True
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()


class MosquittoSub(_Collector):
    """mosquitto_sub, persistent session (-c, fixed -i), QoS 1, payloads in hex."""

    def __init__(self, broker, topics, timeout=START_TIMEOUT):
        super().__init__()
        if isinstance(topics, str):
            topics = [topics]
        self.client_id = _next_id("test-msub")
        argv = [MOSQUITTO_SUB, "-h", HOST, "-p", str(broker.port), "-q", "1", "-c",
                "-i", self.client_id, "-V", "mqttv311", "-F", "%r %q %l %t %x"]
        for t in topics:
            argv += ["-t", t]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        broker.clients.append(self)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        # Ready once the broker has logged its subscription.
        deadline = time.monotonic() + timeout
        pat = re.compile(rf"Received SUBSCRIBE from {re.escape(self.client_id)}\b")
        while not pat.search(broker.log()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise AssertionError(f"mosquitto_sub not subscribed within {timeout} s: "
                                     f"{self.proc.stderr.read()!r}\n{broker.log()[-3000:]}")
            time.sleep(0.02)
        # The SUBACK follows the log line at once; give it that moment.
        time.sleep(0.05)

    def _read(self):
        for line in self.proc.stdout:
            parts = line.rstrip(b"\n").split(b" ")
            # "%r %q %l %t %x": an empty payload leaves an empty last field.
            if len(parts) < 4:
                continue
            retain, qos, length, topic = parts[:4]
            data = bytes.fromhex(parts[4].decode()) if len(parts) > 4 else b""
            assert len(data) == int(length), line
            self._add(Message(topic.decode("utf-8", "surrogateescape"), data, int(qos),
                              retain == b"1"))

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.thread.join(5)


def retained(broker, topic, wait=1.0):
    """The retained message on topic, or None: a clean subscriber takes what
    the broker hands it at once."""
    s = Subscriber(broker, topic, clean=True)
    try:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            got = [m for m in s.matching(topic) if m.retain]
            if got:
                return got[0]
            time.sleep(0.02)
        return None
    finally:
        s.close()


def publish(broker, topic, payload, qos=1, retain=False):
    """mosquitto_pub, anonymous listener; payload bytes (given on stdin with -s)."""
    if isinstance(payload, str):
        payload = payload.encode()
    # -s refuses an empty stdin: -n sends a zero-length payload.
    argv = [MOSQUITTO_PUB, "-h", HOST, "-p", str(broker.port), "-q", str(qos), "-t", topic,
            "-s" if payload else "-n", "-V", "mqttv311"]
    if retain:
        argv.append("-r")
    p = subprocess.run(argv, input=payload, capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p


# ---------------------------------------------------------------------------
# fixtures


@pytest.fixture
def start_broker(tmp_path):
    """Factory: start_broker(tls=True) -> a started Broker (see above)."""
    require_mosquitto()
    brokers = []

    def start(tls=True):
        b = Broker(tmp_path / f"mosquitto{len(brokers)}", tls=tls)
        brokers.append(b)
        return b.start()

    yield start

    for b in brokers:
        b.close()


@pytest.fixture
def broker(start_broker):
    return start_broker()
