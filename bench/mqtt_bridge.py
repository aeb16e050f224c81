#!/usr/bin/python3
"""bench/mqtt_bridge.py — the cost of the MQTT bridge (issue 12,
"Performance"), in one run, against one private Mosquitto:

  (a) `rawmail serve` accepted msg/s without and with --mqtt (an event
      published for every message), and the ratio (the issue: at least 90%),
      twice: with nobody subscribed to the events (the prefix "quiet": the
      cost of --mqtt itself, broker included), and with a subscriber on the
      same two cores (what the subscriber and the broker's deliveries to it
      cost lands on serve too: on this machine any busy CPU slows the disk's
      syncs, see doc/DESIGN.md); for the latter also how fast the events
      reach the subscriber (messages / time from the load's start to the
      last event).
  (b) latency from the 250 (as the client reads it) to the event at a
      subscriber, median and p99, one message at a time (low load) (the
      issue: aim for a median under 5 ms).
  (c) bench/py_mqtt_bridge.py, a Python bridge of the kind users run today
      (aiosmtpd + paho-mqtt, QoS 1, no storage and no wait for the PUBACK),
      and the same with a Maildir and fsync per message (durable like
      rawmail): accepted msg/s and msg/s through to the subscriber, against
      rawmail --mqtt on the same broker; (b) for it too.

Load: Postfix's smtp-source -s SESSIONS -m MSGS -l SIZE -A (one message per
connection), as bench/run; each run to a mailbox of its own.  Runs are
interleaved (rawmail, rawmail --mqtt, python, python+maildir) for ROUNDS
rounds and the median is reported; latency samples alternate between
rawmail and the Python bridges.  Both subscribers are mosquitto_sub
processes (-F %U: their own wall-clock stamps), the throughput one counting
arrivals per topic, the latency one compared with time.time() after smtplib
read the 250.  SUB=paho counts with paho-mqtt in this process instead (the
harness until December 2026: ~70 us of Python per message on the shared
CPUs, which made every bridge look slower).

    bench/mqtt_bridge.py [BUILD]     (default build/: `make` first; as root)

Runs only when `rawmail serve --help` names --mqtt.  Environment: ROUNDS (3),
MSGS (3000), SESSIONS (20), SIZE (4096), LAT_N (200 per bridge), LAT_GAP
(0.02 s between latency samples), SUB (c; paho: the Python subscriber),
KEEP (0; 1 keeps the work directory),
OUT (bench/results-mqtt.txt), PY_ONLY (0; 1 measures the Python bridge
alone, to check the harness while rawmail has no --mqtt).

Nothing is asserted: a benchmark, not a test.  Prints a table and writes it
to OUT.  Compare only ratios within one run (../shared/PEERS.md: the disk's
fsync rate drifts by 2x within minutes).
"""

import json
import os
import re
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build"
RAWMAIL = BUILD / "rawmail"
PY = "/usr/bin/python3"
PYBRIDGE = ROOT / "bench" / "py_mqtt_bridge.py"
MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_SUB = "/usr/bin/mosquitto_sub"
MOSQUITTO_PUB = "/usr/bin/mosquitto_pub"
SMTP_SOURCE = "/usr/sbin/smtp-source"
ROUNDS = int(os.environ.get("ROUNDS", "3"))
MSGS = int(os.environ.get("MSGS", "3000"))
SESSIONS = int(os.environ.get("SESSIONS", "20"))
SIZE = int(os.environ.get("SIZE", "4096"))
LAT_N = int(os.environ.get("LAT_N", "200"))
LAT_GAP = float(os.environ.get("LAT_GAP", "0.02"))
KEEP = os.environ.get("KEEP", "0") == "1"
SUB = os.environ.get("SUB", "c")
PY_ONLY = os.environ.get("PY_ONLY", "0") == "1"
OUT = Path(os.environ.get("OUT", ROOT / "bench" / "results-mqtt.txt"))
DRAIN_TIMEOUT = 180.0
TICK = os.sysconf("SC_CLK_TCK")


def say(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_listen(port, proc, what, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited {proc.returncode} at start")
        s = socket.socket()
        try:
            s.connect(("127.0.0.1", port))
            return
        except OSError:
            time.sleep(0.05)
        finally:
            s.close()
    raise SystemExit(f"{what} did not listen on {port}")


def busy_pct(seconds=1.0):
    """How busy the machine's CPUs are (all of them, %), over seconds: on a
    shared machine the figures are only as good as this is low."""
    def ticks():
        f = Path("/proc/stat").read_text().split("\n")[0].split()[1:]
        v = [int(x) for x in f]
        return sum(v[0:3]) + sum(v[5:8]), sum(v[0:8])
    b0, t0 = ticks()
    time.sleep(seconds)
    b1, t1 = ticks()
    return 100.0 * (b1 - b0) / max(1, t1 - t0)


def has_mqtt():
    p = subprocess.run([str(RAWMAIL), "serve", "--help"], capture_output=True, text=True)
    return re.search(r"(?<![\w-])--mqtt(?![\w-])", p.stdout + p.stderr) is not None


# ---------------------------------------------------------------- peers


class Procs:
    """Everything started here, stopped with SIGTERM (then SIGKILL) at the end."""

    def __init__(self):
        self.procs = []

    def start(self, argv, log, **kw):
        f = open(log, "ab")
        p = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=f,
                             stderr=f, start_new_session=True, **kw)
        f.close()
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)


def start_broker(procs, work):
    d = work / "mosquitto"
    d.mkdir()
    port = free_port()
    (d / "mosquitto.conf").write_text(
        "user root\npersistence false\n"
        f"log_dest file {d}/mosquitto.log\nlog_type error\nlog_type warning\n"
        "max_queued_messages 0\n"
        f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    p = procs.start([MOSQUITTO, "-c", d / "mosquitto.conf"], d / "out")
    wait_listen(port, p, "mosquitto")
    return port


PGIDS = {}      # port -> process group of the peer listening there


def group_cpu(pgid):
    """{process title: CPU ticks (utime + stime)} of the live processes of
    a group: rawmail's children are titled 'rawmail: smtp', 'rawmail: store',
    'rawmail: mqtt'...; anything else counts as its command's name."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
            fields = stat[stat.rfind(")") + 2:].split()
            if int(fields[2]) != pgid:          # field 5: pgrp
                continue
            argv0 = Path(f"/proc/{d}/cmdline").read_bytes().split(b"\0")[0].decode(
                errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        title = argv0 if argv0.startswith("rawmail:") else Path(argv0).name
        out[title] = out.get(title, 0) + int(fields[11]) + int(fields[12])
    return out


def start_rawmail(procs, work, name, *extra):
    d = work / name
    d.mkdir()
    port = free_port()
    p = procs.start([RAWMAIL, "serve", "--listen", f"127.0.0.1:{port}", "--mailroot", d / "mail",
                     "--domain", "example.test", "--hostname", "bench.test",
                     "--max-connections-per-ip", "1000", "--max-new-mailboxes-per-ip", "1000",
                     "--max-new-mailboxes", "1000", *extra], d / "log")
    wait_listen(port, p, f"rawmail ({name})")
    PGIDS[port] = p.pid
    return port


def start_pybridge(procs, work, name, broker_port, prefix, maildir=False):
    d = work / name
    d.mkdir()
    port = free_port()
    argv = [PY, PYBRIDGE, "--listen", f"127.0.0.1:{port}", "--broker",
            f"127.0.0.1:{broker_port}", "--topic", prefix]
    if maildir:
        argv += ["--maildir", d / "mail"]
    p = procs.start(argv, d / "log")
    wait_listen(port, p, f"py_mqtt_bridge ({name})")
    PGIDS[port] = p.pid
    return port


class Arrivals:
    """What both subscribers share: count(topic), and wait for the n-th."""

    def wait(self, topic, n, timeout=DRAIN_TIMEOUT):
        """Time of the n-th arrival on topic, or None (with the count) on timeout."""
        deadline = time.monotonic() + timeout
        last, still = -1, time.monotonic()
        while time.monotonic() < deadline:
            ts = self.arrivals(topic)
            if len(ts) >= n:
                return ts[n - 1], len(ts)
            if len(ts) != last:
                last, still = len(ts), time.monotonic()
            elif time.monotonic() - still > 30:
                break                          # nothing new for 30 s: stalled
            time.sleep(0.05)
        return None, self.count(topic)

    def count(self, topic):
        return len(self.arrivals(topic))


class Sub(Arrivals):
    """Counts arrivals per topic: a mosquitto_sub process (C, QoS 1) prints
    one line per arrival, its own wall-clock stamp (-F %U) and the topic,
    line-buffered (stdbuf) into a file read here.  A C subscriber costs the
    shared CPUs ~15 us a message where paho-mqtt in this process cost ~70:
    what is measured is the bridges, not the subscriber."""

    def __init__(self, port, topics, work):
        self.path = work / "throughput.sub"
        self.f = open(self.path, "wb")
        argv = ["stdbuf", "-oL", MOSQUITTO_SUB, "-h", "127.0.0.1", "-p", str(port), "-q", "1",
                "-F", "%U %t", "-i", f"bench-sub-{os.getpid()}"]
        for t in topics:
            argv += ["-t", t]
        self.proc = subprocess.Popen(argv, stdout=self.f, stderr=subprocess.DEVNULL)
        self.reader = open(self.path, "rb")
        self.partial = b""
        self.times = {}        # topic -> [monotonic]
        # %U is wall-clock: arrivals are compared with time.monotonic().
        self.offset = time.time() - time.monotonic()
        if not self._subscribed(port):
            raise SystemExit("bench subscriber: mosquitto_sub did not subscribe")

    def _subscribed(self, port):
        """A probe message on the first topic's namespace comes back."""
        probe = Path(str(self.path) + ".probe")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            subprocess.run([MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(port), "-q", "1",
                            "-t", "rawmail/received/_probe", "-m", "probe"], check=False)
            time.sleep(0.1)
            self._read()
            if self.times.pop("rawmail/received/_probe", None):
                return True
        return False

    def _read(self):
        data = self.partial + self.reader.read()
        lines = data.split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            stamp, _, topic = line.decode(errors="replace").partition(" ")
            try:
                t = float(stamp) - self.offset
            except ValueError:
                continue
            self.times.setdefault(topic, []).append(t)

    def arrivals(self, topic):
        self._read()
        return list(self.times.get(topic, []))

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.f.close()
        self.reader.close()


class PahoSub(Arrivals):
    """Counts arrivals per topic, stamped in paho's network thread (the
    subscriber before mosquitto_sub: kept for comparison, SUB=paho)."""

    def __init__(self, port, topics):
        self.lock = threading.Lock()
        self.times = {}        # topic -> [monotonic]
        ready = threading.Event()
        c = mqtt.Client(client_id=f"bench-sub-{os.getpid()}", clean_session=True,
                        protocol=mqtt.MQTTv311)
        c.on_connect = lambda cl, u, f, rc: cl.subscribe([(t, 1) for t in topics])
        c.on_subscribe = lambda *a: ready.set()
        c.on_message = self._on_message
        c.connect("127.0.0.1", port, keepalive=60)
        c.loop_start()
        if not ready.wait(10):
            raise SystemExit("bench subscriber: no SUBACK")
        self.client = c

    def _on_message(self, client, userdata, msg):
        t = time.monotonic()
        with self.lock:
            self.times.setdefault(msg.topic, []).append(t)

    def arrivals(self, topic):
        with self.lock:
            return list(self.times.get(topic, []))

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


# ---------------------------------------------------------------- load


def load(port, rcpt, work):
    t0 = time.monotonic()
    with open(work / "smtp-source.log", "ab") as log:
        rc = subprocess.run([SMTP_SOURCE, "-s", str(SESSIONS), "-m", str(MSGS), "-l", str(SIZE),
                             "-A", "-f", "a@example.test", "-t", rcpt, f"127.0.0.1:{port}"],
                            stdout=log, stderr=log).returncode
    t1 = time.monotonic()
    if rc != 0:
        say(f"  smtp-source exited {rc} (see {work}/smtp-source.log)")
    return t0, t1


def floor_build(work):
    """bench/mqtt_floor_pub.c, built here: its path, or None."""
    exe = work / "mqtt_floor_pub"
    rc = subprocess.run(["cc", "-O2", "-o", str(exe), str(ROOT / "bench" / "mqtt_floor_pub.c"),
                         "-lmosquitto"], capture_output=True, text=True)
    if rc.returncode != 0:
        say(f"  mqtt_floor_pub not built (no floor rows): {rc.stderr.strip()[:300]}")
        return None
    return exe


def floor_round(label, port, bport, exe, burst, rate, rnd, work, results):
    """serve without --mqtt loaded while mqtt_floor_pub publishes MSGS
    SIZE-octet messages at rate (the round's own accepted rate without
    --mqtt), burst at a time: what publishing alone costs serve."""
    box = f"r{rnd}" + "".join(c for c in label.lower() if c.isalnum())
    pub = subprocess.Popen([str(exe), str(bport), str(MSGS), str(SIZE), f"{rate:.0f}", str(burst)],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(0.05)
    t0, t1 = load(port, f"{box}@example.test", work)
    out, _ = pub.communicate(timeout=DRAIN_TIMEOUT)
    try:
        pub_us = float(out.strip())
    except ValueError:
        pub_us = None
    results.append({"label": label, "round": rnd, "accepted": MSGS / (t1 - t0),
                    "cpu_us": {"mqtt_floor_pub": pub_us or 0}})
    say(f"  {label} round {rnd}: accepted {MSGS / (t1 - t0):.0f} msg/s (publisher "
        f"{pub_us or 0:.0f} us a message)")


QUIET = "quiet"      # the prefix nobody subscribes to
FLOORS = [("rawmail + bare publisher", 1), ("rawmail + bare publisher x16", 16)]
OUTBOXES = {}        # port -> the outbox directory of the rawmail there


def outbox_drained(outbox, timeout=DRAIN_TIMEOUT):
    """When the outbox was first seen empty (time.monotonic()), or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not any(True for _ in os.scandir(outbox)):
                return time.monotonic()
        except FileNotFoundError:
            pass
        time.sleep(0.01)
    return None


def throughput(label, port, prefix, sub, rnd, work, results):
    box = f"r{rnd}" + "".join(c for c in label.lower() if c.isalnum())
    cpu0 = group_cpu(PGIDS[port])
    t0, t1 = load(port, f"{box}@example.test", work)
    row = {"label": label, "round": rnd, "accepted": MSGS / (t1 - t0)}
    if prefix == QUIET:
        # Nobody subscribed: the events are out once the outbox is empty
        # (each file is removed after its last PUBACK).
        t_last = outbox_drained(OUTBOXES[port])
        row["events"] = MSGS if t_last else 0
        row["drain_s"] = (t_last - t1) if t_last else None
    elif prefix:
        t_last, n = sub.wait(f"{prefix}/received/{box}", MSGS)
        row["events"] = n if t_last is None else MSGS
        row["through"] = MSGS / (t_last - t0) if t_last else None
        row["drain_s"] = (t_last - t1) if t_last else None
    cpu1 = group_cpu(PGIDS[port])
    # CPU microseconds per message of each process (until the last event).
    row["cpu_us"] = {k: (cpu1[k] - cpu0.get(k, 0)) / TICK * 1e6 / MSGS for k in cpu1}
    results.append(row)
    extra = ""
    if prefix == QUIET:
        extra = f", outbox empty {row['drain_s'] or 0:.2f} s after the load"
    elif prefix:
        extra = (f", events {row['events']}/{MSGS}, through to the subscriber "
                 f"{row['through'] or 0:.0f} msg/s (drain {row['drain_s'] or 0:.2f} s after the load)")
    say(f"  {label} round {rnd}: accepted {row['accepted']:.0f} msg/s{extra}")


def latency(targets, bport, work):
    """targets: [(label, port, prefix)]; one sample each in turn, LAT_N times.
    The 250 is stamped here (time.time() once smtplib has read it), each
    event's arrival by a mosquitto_sub process (-F %U: its own wall-clock
    stamp), so that neither waits for the other's thread or Python's GIL.
    Returns {label: [ms]}."""
    out_path = work / "latency.sub"
    argv = [MOSQUITTO_SUB, "-h", "127.0.0.1", "-p", str(bport), "-q", "1", "-F", "%U %t %p"]
    for _, _, prefix in targets:
        argv += ["-t", f"{prefix}/received/lat"]
    with open(out_path, "wb") as f:
        msub = subprocess.Popen(argv, stdout=f, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    conns = {}
    sent = {label: [] for label, _, _ in targets}     # (token, t_250)
    try:
        for label, port, _ in targets:
            c = smtplib.SMTP("127.0.0.1", port, timeout=30)
            c.ehlo("bench.client")
            conns[label] = c
        for i in range(LAT_N):
            for label, port, prefix in targets:
                token = f"lat-{i}-{os.urandom(4).hex()}"
                msg = (f"From: a@example.test\r\nTo: lat@example.test\r\nSubject: {token}\r\n"
                       f"Message-ID: <{token}@bench.test>\r\n\r\nlatency sample {i}\r\n")
                conns[label].sendmail("a@example.test", ["lat@example.test"], msg)
                sent[label].append((token, time.time()))
                time.sleep(LAT_GAP)
        time.sleep(2)
    finally:
        for c in conns.values():
            try:
                c.quit()
            except smtplib.SMTPException:
                pass
        msub.terminate()
        msub.wait(10)
    first = {}
    for line in out_path.read_bytes().splitlines():
        stamp, _, rest = line.partition(b" ")
        topic, _, payload = rest.partition(b" ")
        try:
            subj = json.loads(payload)["subject"]
        except (ValueError, KeyError, TypeError):
            continue
        first.setdefault(subj, float(stamp))
    out = {}
    for label, _, _ in targets:
        out[label] = [(first[tok] - t250) * 1000 for tok, t250 in sent[label] if tok in first]
        missing = len(sent[label]) - len(out[label])
        if missing:
            say(f"  latency {label}: {missing} of {len(sent[label])} events missing")
    return out


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, int(round(p / 100 * len(xs) + 0.5)) - 1))
    return xs[k]


# ---------------------------------------------------------------- main


def main():
    if os.geteuid() != 0:
        raise SystemExit("bench/mqtt_bridge.py: run as root (serve drops privileges itself)")
    for tool in (MOSQUITTO, MOSQUITTO_SUB, MOSQUITTO_PUB, SMTP_SOURCE, PY):
        if not os.access(tool, os.X_OK):
            raise SystemExit(f"{tool} missing: scripts/deps test")
    if not RAWMAIL.is_file():
        raise SystemExit(f"no {RAWMAIL}: make first")
    mqtt_ok = has_mqtt()
    if not mqtt_ok and not PY_ONLY:
        print(f"bench/mqtt_bridge.py: {RAWMAIL} serve has no --mqtt yet: nothing measured")
        return
    busy = busy_pct()
    if busy > 10:
        say(f"warning: the machine was {busy:.0f}% busy before the benchmark; figures will be noisy")
    work = Path(tempfile.mkdtemp(prefix="tmp.mqtt.", dir=ROOT / "bench"))
    os.chmod(work, 0o755)
    fstype = subprocess.run(["stat", "-f", "-c", "%T", str(work)], capture_output=True,
                            text=True).stdout.strip()
    procs = Procs()
    sub = None
    try:
        bport = start_broker(procs, work)
        topics = ["rawmail/received/#", "pybridge/received/#", "pystore/received/#"]
        sub = PahoSub(bport, topics) if SUB == "paho" else Sub(bport, topics, work)
        targets = []          # (label, port, prefix or None)
        if mqtt_ok:
            targets.append(("rawmail", start_rawmail(procs, work, "raw"), None))
            # A client id each: two clients with one id knock each other off.
            targets.append(("rawmail --mqtt", start_rawmail(
                procs, work, "rawmqtt", "--mqtt", f"mqtt://127.0.0.1:{bport}",
                "--mqtt-client-id", "bench-rawmail"), "rawmail"))
            quiet = start_rawmail(procs, work, "rawquiet", "--mqtt", f"mqtt://127.0.0.1:{bport}",
                                  "--mqtt-topic", QUIET, "--mqtt-client-id", "bench-quiet")
            OUTBOXES[quiet] = work / "rawquiet" / "mail" / ".rawmail" / "outbox"
            targets.append(("rawmail --mqtt, unread", quiet, QUIET))
        targets.append(("python", start_pybridge(procs, work, "py", bport, "pybridge"),
                        "pybridge"))
        targets.append(("python+maildir", start_pybridge(procs, work, "pystore", bport,
                                                         "pystore", maildir=True), "pystore"))
        say(f"work dir {work} ({fstype}); broker 127.0.0.1:{bport}; "
            + ", ".join(f"{l} :{p}" for l, p, _ in targets))
        results = []
        floor_exe = floor_build(work) if mqtt_ok else None
        for rnd in range(1, ROUNDS + 1):
            for label, port, prefix in targets:
                throughput(label, port, prefix, sub, rnd, work, results)
            if floor_exe:
                plain = [r for r in results if r["label"] == "rawmail" and r["round"] == rnd][0]
                for label, burst in FLOORS:
                    floor_round(label, targets[0][1], bport, floor_exe, burst,
                                plain["accepted"], rnd, work, results)
        say(f"latency: {LAT_N} samples per bridge, {LAT_GAP * 1000:.0f} ms apart, interleaved")
        lat = latency([t for t in targets if t[2] and t[2] != QUIET], bport, work)
    finally:
        if sub:
            sub.close()
        procs.stop_all()

    def med(label, key):
        xs = [r[key] for r in results if r["label"] == label and r.get(key)]
        return statistics.median(xs) if xs else None

    lines = [f"bench/mqtt_bridge.py  {time.strftime('%Y-%m-%d %H:%M:%S %Z')}  "
             f"rounds={ROUNDS} msgs={MSGS} sessions={SESSIONS} size={SIZE} sub={SUB} fs={fstype} "
             f"cpus={os.cpu_count()} busy_before={busy:.0f}%",
             "",
             f"{'peer':<30} {'accepted msg/s':>15} {'to subscriber msg/s':>20} "
             f"{'events':>8}  per round (accepted)"]
    floors = [(label, None, None) for label, _ in FLOORS
              if any(r["label"] == label for r in results)]
    for label, _, prefix in targets + floors:
        acc = med(label, "accepted")
        thr = med(label, "through") if prefix else None
        evs = min((r.get("events", MSGS) for r in results if r["label"] == label), default=0)
        rounds = " ".join(f"{r['accepted']:.0f}" for r in results if r["label"] == label)
        lines.append(f"{label:<30} {acc:>15.0f} {thr if thr else float('nan'):>20.0f} "
                     f"{(str(evs) if prefix else '-'):>8}  {rounds}")
    lines.append("")
    lines.append("CPU per message, us (median over rounds; until the last event arrived):")
    for label, _, _ in targets + floors:
        rows = [r for r in results if r["label"] == label]
        names = sorted({k for r in rows for k in r["cpu_us"]})
        parts = [f"{k} {statistics.median(r['cpu_us'].get(k, 0) for r in rows):.0f}"
                 for k in names]
        total = statistics.median(sum(r["cpu_us"].values()) for r in rows)
        lines.append(f"    {label:<30} total {total:.0f}: " + ", ".join(parts))
    lines.append("")
    if mqtt_ok:
        a, b = med("rawmail", "accepted"), med("rawmail --mqtt", "accepted")
        pairs = [(x["accepted"], y["accepted"]) for x, y in zip(
            [r for r in results if r["label"] == "rawmail"],
            [r for r in results if r["label"] == "rawmail --mqtt"])]
        q = med("rawmail --mqtt, unread", "accepted")
        qpairs = [(x["accepted"], y["accepted"]) for x, y in zip(
            [r for r in results if r["label"] == "rawmail"],
            [r for r in results if r["label"] == "rawmail --mqtt, unread"])]
        lines.append(f"(a) rawmail --mqtt publishing every message (nobody subscribed) / rawmail "
                     f"accepted: {q / a:.2f} (medians); per round "
                     + " ".join(f"{y / x:.2f}" for x, y in qpairs) + "  [issue: >= 0.90]")
        lines.append(f"    the same with a subscriber on the same cores: {b / a:.2f} (medians); "
                     "per round " + " ".join(f"{y / x:.2f}" for x, y in pairs))
        if floors:
            fl = []
            for label, _, _ in floors:
                fpairs = [(x["accepted"], y["accepted"]) for x, y in zip(
                    [r for r in results if r["label"] == "rawmail"],
                    [r for r in results if r["label"] == label])]
                fl.append(f"{label[len('rawmail + '):]} {statistics.median(y / x for x, y in fpairs):.2f}")
            lines.append("    floor: rawmail (no --mqtt) beside a bare publisher of the same messages at "
                         "its rate, nobody subscribed: " + ", ".join(fl))
        rt, pt = med("rawmail --mqtt", "through"), med("python", "through")
        ps = med("python+maildir", "through")
        if rt and pt and ps:
            lines.append(f"(c) through to the subscriber: rawmail --mqtt / python = {rt / pt:.2f}, "
                         f"rawmail --mqtt / python+maildir = {rt / ps:.2f}")
    lines.append("(b) 250 -> event at the subscriber, ms (one message at a time):")
    for label, xs in lat.items():
        if xs:
            lines.append(f"    {label:<18} n={len(xs):<4} median {statistics.median(xs):7.2f}  "
                         f"p99 {pct(xs, 99):7.2f}  min {min(xs):7.2f}  max {max(xs):7.2f}"
                         + ("  [issue: median < 5 ms]" if label == "rawmail --mqtt" else ""))
    lines += ["",
              "rawmail --mqtt, unread: events on a prefix nobody subscribes to (the broker takes",
              "and acknowledges each); its events are out when the outbox is empty.",
              "rawmail + bare publisher: the rawmail row's serve loaded again while",
              "bench/mqtt_floor_pub.c (libmosquitto, QoS 1, no file, MIME or JSON) publishes as many",
              "SIZE-octet messages at the rate that serve accepted in the round, one at a time",
              "(x16: in bursts of 16): what publishing alone costs serve on these cores.",
              "python: bench/py_mqtt_bridge.py (aiosmtpd + paho-mqtt, QoS 1 without waiting for the",
              "PUBACK, nothing stored: events are lost when the broker is down or it crashes);",
              "python+maildir: the same storing each message with fsync before the 250.",
              "A negative latency means the event reached the subscriber before the client read",
              "the 250 (the bridge publishes before it answers)."]
    text = "\n".join(lines) + "\n"
    print(text)
    OUT.write_text(text)
    if KEEP:
        say(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
