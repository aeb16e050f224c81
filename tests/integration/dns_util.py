"""A private authoritative DNS server (NSD) on loopback for integration tests,
and a tiny DNS client to query it.

Nothing here ever talks to the system resolver: every query goes to an
explicit loopback address and port.

Fixtures (import them into a test module: ``from dns_util import nsd, dead_dns``):

``nsd`` -- factory::

    dns = nsd({"example.test": "client A 127.0.0.1\\n",
               "0.0.127.in-addr.arpa": "1 PTR client.example.test.\\n"},
              ipv6=False, verbosity=2)

  zones     dict: zone name (no trailing dot needed) -> zone file text.  The
            text is written to tmp_path/nsdN/ZONE.zone behind
            ``$ORIGIN ZONE.`` and ``$TTL 60`` lines; if it has no SOA record a
            default SOA and ``NS ns.invalid.`` are added, so a zone can be
            just its records (relative owner names are relative to the
            zone; ``@`` is the apex).  Give a full zone text (with its own
            SOA) when a test needs a particular SOA.
  ipv6      also listen on [::1] (same port).
  verbosity NSD's verbosity (its log is tmp_path/nsdN/nsd.log).

  Returns an ``NSD`` that already answers (its zones' SOA queries were
  answered authoritatively over UDP), with:

    .host, .port        "127.0.0.1", the port (UDP and TCP, also on ::1)
    .addr               "127.0.0.1:PORT"  (what `rawmail --dns` takes)
    .addr6              "[::1]:PORT"      (only with ipv6=True)
    .query(name, qtype="A", family=AF_INET, tcp=False) -> DNSReply
    .log()              NSD's log file text
    .stop()             stop it now (SIGTERM; e.g. to test a resolver that died)
    .dir                its directory (config, zones, pid file, log)

  Several may run at once.  Teardown stops every one (SIGTERM to the process
  started, which is the pid in NSD's pid file and stops all of NSD's
  processes) and prints its log: pytest shows it on failure under
  "Captured stdout teardown".

``dead_dns`` -- factory: ``dead_dns(host="127.0.0.1") -> "127.0.0.1:PORT"``,
  a port where a UDP socket is bound and a TCP socket listens but nothing
  ever answers (queries time out rather than being refused).

``slow_dns`` -- factory: ``slow_dns(upstream, delay=0.3, drop=None) -> SlowDNS``,
  a UDP proxy on 127.0.0.1 that forwards each query to ``upstream`` (an NSD,
  or "HOST:PORT") ``delay`` seconds after it arrives and relays the answer:
  a resolver that answers, but slowly.  ``drop(qname, qtype)`` returning true
  makes it ignore that query (e.g. ``lambda n, t: t == "A"``: PTRs answered,
  forward lookups time out).  ``.addr`` is "127.0.0.1:PORT"; ``.queries``
  lists (seconds since start, qname, qtype name) as they arrive.

Helpers: ``query(host, port, name, qtype)`` (the DNS client), ``reverse_name(ip)``
("127.0.0.1" -> "1.0.0.127.in-addr.arpa"), ``ptr_zones({ip: name, ...})``
(zones holding those PTR records, one per /24 or /124, to merge into the
``zones`` dict), ``free_dns_port(ipv6)``.

NSD facts (../shared/PEERS.md): it is authoritative only, so a name outside
its zones gets REFUSED and a missing name inside one NXDOMAIN; it runs with
``database: ""`` (no zone db); glibc cannot use a port other than 53, which is
why rawmail takes ``--dns ADDR:PORT``.
"""

import ipaddress
import os
import random
import re
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest


NSD_BIN = os.environ.get("NSD_BIN", "/usr/sbin/nsd")
NSD_START_TIMEOUT = 5.0
NSD_STOP_TIMEOUT = 5.0

QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16,
          "AAAA": 28, "SRV": 33, "ANY": 255}
QTYPE_NAMES = {v: k for k, v in QTYPES.items()}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


# ---------------------------------------------------------------------------
# a minimal DNS client (RFC 1035), for loopback test servers only


def _encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if not label:
            continue
        raw = label.encode("ascii")
        if len(raw) > 63:
            raise ValueError(f"DNS label too long: {label!r}")
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def build_query(name, qtype="A", qid=None, rd=False):
    """Wire form of a query for (name, qtype, IN); returns (qid, bytes)."""
    if qid is None:
        qid = random.randrange(0x10000)
    t = QTYPES[qtype.upper()] if isinstance(qtype, str) else int(qtype)
    flags = 0x0100 if rd else 0
    return qid, struct.pack("!HHHHHH", qid, flags, 1, 0, 0, 0) + _encode_name(name) + struct.pack("!HH", t, 1)


def _read_name(msg, off):
    """(name with trailing dot, offset after the name in place)."""
    labels = []
    end = None
    seen = 0
    while True:
        if off >= len(msg):
            raise ValueError("truncated name")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if end is None:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            seen += 1
            if seen > 64:
                raise ValueError("compression loop")
            continue
        off += 1
        if n == 0:
            break
        labels.append(msg[off:off + n].decode("ascii", errors="replace"))
        off += n
    return ".".join(labels) + ".", (end if end is not None else off)


def _rdata(msg, rtype, off, rdlen):
    rd = msg[off:off + rdlen]
    if rtype == 1 and rdlen == 4:
        return str(ipaddress.IPv4Address(rd))
    if rtype == 28 and rdlen == 16:
        return str(ipaddress.IPv6Address(rd))
    if rtype in (2, 5, 12):
        return _read_name(msg, off)[0]
    if rtype == 15:
        return (struct.unpack("!H", rd[:2])[0], _read_name(msg, off + 2)[0])
    if rtype == 16:
        parts, i = [], 0
        while i < len(rd):
            parts.append(rd[i + 1:i + 1 + rd[i]].decode("utf-8", errors="replace"))
            i += 1 + rd[i]
        return "".join(parts)
    if rtype == 6:
        mname, o = _read_name(msg, off)
        rname, o = _read_name(msg, o)
        return (mname, rname) + struct.unpack("!IIIII", msg[o:o + 20])
    return rd.hex()


class DNSReply:
    """A parsed reply: .id, .rcode ("NOERROR", "NXDOMAIN", ...), .aa, .tc,
    .answers / .authority: lists of (name, type name, ttl, rdata) where rdata
    is a str for A/AAAA (address), PTR/CNAME/NS (name with trailing dot) and
    TXT (strings joined), (pref, name) for MX, a tuple for SOA, hex otherwise."""

    def __init__(self, msg):
        if len(msg) < 12:
            raise ValueError(f"short DNS message: {msg!r}")
        self.raw = msg
        self.id, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", msg[:12])
        self.qr = bool(flags & 0x8000)
        self.aa = bool(flags & 0x0400)
        self.tc = bool(flags & 0x0200)
        self.rcode = RCODES.get(flags & 0xF, str(flags & 0xF))
        off = 12
        for _ in range(qd):
            _, off = _read_name(msg, off)
            off += 4
        self.answers, off = self._rrs(msg, off, an)
        self.authority, off = self._rrs(msg, off, ns)

    @staticmethod
    def _rrs(msg, off, count):
        out = []
        for _ in range(count):
            name, off = _read_name(msg, off)
            rtype, _cls, ttl, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
            off += 10
            out.append((name, QTYPE_NAMES.get(rtype, str(rtype)), ttl, _rdata(msg, rtype, off, rdlen)))
            off += rdlen
        return out, off

    def values(self, qtype=None):
        """The rdata of the answers (of one type if given)."""
        return [r[3] for r in self.answers if qtype is None or r[1] == qtype.upper()]

    def __repr__(self):
        return f"DNSReply(id={self.id}, rcode={self.rcode}, aa={self.aa}, answers={self.answers})"


def query(host, port, name, qtype="A", timeout=2.0, tcp=False, rd=False):
    """Ask host:port (a loopback address, never the system resolver) one
    question; returns a DNSReply or raises socket.timeout / OSError."""
    ip = ipaddress.ip_address(host)
    if not ip.is_loopback:
        raise ValueError(f"dns_util.query is for loopback test servers only, not {host}")
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    qid, packet = build_query(name, qtype, rd=rd)
    deadline = time.monotonic() + timeout
    if tcp:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(struct.pack("!H", len(packet)) + packet)
            data = b""
            while len(data) < 2 or len(data) < 2 + struct.unpack("!H", data[:2])[0]:
                s.settimeout(max(0.001, deadline - time.monotonic()))
                chunk = s.recv(65536)
                if not chunk:
                    raise OSError(f"DNS over TCP: connection closed after {len(data)} bytes")
                data += chunk
            reply = DNSReply(data[2:2 + struct.unpack("!H", data[:2])[0]])
            if reply.id != qid:
                raise OSError(f"DNS over TCP: reply id {reply.id} != {qid}")
            return reply
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect((host, port))
        s.send(packet)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout(f"no DNS reply from {host}:{port} for {name} {qtype}")
            s.settimeout(remaining)
            data = s.recv(65536)
            try:
                reply = DNSReply(data)
            except (ValueError, struct.error):
                continue
            if reply.id == qid and reply.qr:
                return reply


# ---------------------------------------------------------------------------
# names and zones


def reverse_name(ip):
    """'127.0.0.1' -> '1.0.0.127.in-addr.arpa'; '::1' -> '1.0.0...0.ip6.arpa'."""
    return ipaddress.ip_address(ip).reverse_pointer


def ptr_zones(mapping):
    """{ip: name} -> {zone: text} with one PTR record per ip, grouped in the
    zone one label above each reverse name (a /24 for IPv4, a /124 for IPv6).
    Names are made absolute (a trailing dot added)."""
    zones = {}
    for ip, name in mapping.items():
        label, _, zone = reverse_name(ip).partition(".")
        target = name if name.endswith(".") else name + "."
        zones[zone] = zones.get(zone, "") + f"{label} IN PTR {target}\n"
    return zones


def zone_text(zone, text):
    """The zone file written for `zone`: origin and TTL lines, a default SOA
    and NS unless the text has a SOA record, then the text."""
    origin = zone.rstrip(".") + "."
    head = f"$ORIGIN {origin}\n$TTL 60\n"
    if not re.search(r"(?mi)^[^;\n]*\sSOA\s", text):
        head += ("@ IN SOA ns.invalid. hostmaster.invalid. 1 3600 600 86400 60\n"
                 "@ IN NS ns.invalid.\n")
    return head + text + ("" if text.endswith("\n") else "\n")


# ---------------------------------------------------------------------------
# ports


def _bindable(family, kind, host, port):
    s = socket.socket(family, kind)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_dns_port(ipv6=False):
    """A port free for both UDP and TCP on 127.0.0.1 (and ::1 if ipv6)."""
    for _ in range(200):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        checks = [(socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1"),
                  (socket.AF_INET, socket.SOCK_DGRAM, "127.0.0.1")]
        if ipv6:
            checks += [(socket.AF_INET6, socket.SOCK_STREAM, "::1"),
                       (socket.AF_INET6, socket.SOCK_DGRAM, "::1")]
        if all(_bindable(f, k, h, port) for f, k, h in checks):
            return port
    raise RuntimeError("no free UDP+TCP port on loopback")


# ---------------------------------------------------------------------------
# NSD


def _group_running(pgid):
    """Whether a process of group pgid is alive and not a zombie (/proc)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


class NSD:
    """One private NSD; see the module docstring."""

    def __init__(self, directory, zones, ipv6=False, verbosity=2):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.zones = {z.rstrip(".").lower(): t for z, t in zones.items()}
        if not self.zones:
            raise ValueError("nsd fixture: give at least one zone")
        self.ipv6 = ipv6
        self.verbosity = verbosity
        self.host = "127.0.0.1"
        self.port = None
        self.proc = None
        self.conf_path = self.dir / "nsd.conf"
        self.log_path = self.dir / "nsd.log"
        self.pid_path = self.dir / "nsd.pid"
        self.out_path = self.dir / "nsd.out"     # its stdout/stderr

    @property
    def addr(self):
        return f"{self.host}:{self.port}"

    @property
    def addr6(self):
        if not self.ipv6:
            raise AttributeError("this NSD was started without ipv6=True")
        return f"[::1]:{self.port}"

    def _write(self):
        for z, text in self.zones.items():
            (self.dir / f"{z}.zone").write_text(zone_text(z, text))
        d = self.dir
        lines = [
            "server:",
            f"    ip-address: 127.0.0.1@{self.port}",
        ]
        if self.ipv6:
            lines.append(f"    ip-address: ::1@{self.port}")
        lines += [
            f"    port: {self.port}",
            "    do-ip4: yes",
            f"    do-ip6: {'yes' if self.ipv6 else 'no'}",
            "    server-count: 1",
            "    reuseport: no",
            '    username: ""',
            '    chroot: ""',
            '    database: ""',
            f'    zonesdir: "{d}"',
            f'    zonelistfile: "{d}/zone.list"',
            f'    xfrdfile: "{d}/xfrd.state"',
            f'    xfrdir: "{d}"',
            f'    pidfile: "{self.pid_path}"',
            f'    logfile: "{self.log_path}"',
            f'    cookie-secret-file: "{d}/cookiesecrets.txt"',
            f"    verbosity: {self.verbosity}",
            "    hide-version: yes",
            "",
            "remote-control:",
            "    control-enable: no",
            "",
        ]
        for z in self.zones:
            lines += ["zone:", f"    name: {z}.", f'    zonefile: "{d}/{z}.zone"', ""]
        self.conf_path.write_text("\n".join(lines))

    def log(self):
        parts = []
        for p in (self.log_path, self.out_path):
            try:
                parts.append(p.read_text(errors="replace"))
            except OSError:
                pass
        return "".join(parts)

    def query(self, name, qtype="A", family=socket.AF_INET, tcp=False, timeout=2.0):
        host = "::1" if family == socket.AF_INET6 else self.host
        return query(host, self.port, name, qtype, timeout=timeout, tcp=tcp)

    def _ready(self):
        """Every zone's SOA answered authoritatively over UDP (and on ::1)."""
        families = [socket.AF_INET] + ([socket.AF_INET6] if self.ipv6 else [])
        for fam in families:
            for z in self.zones:
                try:
                    r = self.query(z, "SOA", family=fam, timeout=0.2)
                except OSError:
                    return False
                if r.rcode != "NOERROR" or not r.aa or not r.values("SOA"):
                    return False
        return True

    def check(self):
        """nsd-checkconf and nsd-checkzone on what _write wrote: a mistake in a
        test's zone text fails at once with NSD's own message."""
        cmds = [[NSD_BIN + "-checkconf", str(self.conf_path)]]
        cmds += [[NSD_BIN + "-checkzone", z + ".", str(self.dir / f"{z}.zone")] for z in self.zones]
        for cmd in cmds:
            if not Path(cmd[0]).exists():
                continue
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                pytest.fail(f"{' '.join(cmd)}: {p.stdout}{p.stderr}\n--- {cmd[-1]} ---\n"
                            f"{Path(cmd[-1]).read_text()}", pytrace=False)

    def start(self):
        """Start NSD and wait until it answers; None, or what went wrong."""
        self.out = open(self.out_path, "ab")
        # -d: foreground; the process started is the one whose pid NSD writes
        # to its pid file (xfrd), and SIGTERM to it stops every NSD process.
        # Its own session keeps it out of pytest's process group.
        self.proc = subprocess.Popen([NSD_BIN, "-d", "-c", str(self.conf_path)],
                                     stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + NSD_START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                self.out.close()
                return f"nsd exited with {code} at start"
            if self._ready():
                return None
            if time.monotonic() > deadline:
                self.stop()
                return f"nsd did not answer SOA queries within {NSD_START_TIMEOUT} s"
            time.sleep(0.02)

    def stop(self):
        """SIGTERM to the NSD we started; returns its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(NSD_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            code = None
        # Its children (the server processes) are in its own process group,
        # which this fixture created: make sure none outlives the test.  A
        # child already exited but not yet reaped by init (a zombie, which
        # holds no socket) counts as gone.
        deadline = time.monotonic() + NSD_STOP_TIMEOUT
        while _group_running(self.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _group_running(self.proc.pid):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if code is None:
            self.proc.wait(5)
        self.proc = None
        self.out.close()
        return code


@pytest.fixture
def nsd(tmp_path):
    """Factory: nsd(zones, ipv6=False, verbosity=2) -> NSD (see module docstring)."""
    started = []

    def start(zones, ipv6=False, verbosity=2):
        failures = []
        for attempt in range(3):   # a port taken between the check and NSD's bind: retry
            n = NSD(tmp_path / f"nsd{len(started)}", zones, ipv6=ipv6, verbosity=verbosity)
            n.port = free_dns_port(ipv6)
            n._write()
            n.check()
            started.append(n)
            problem = n.start()
            if problem is None:
                return n
            failures.append(f"attempt {attempt + 1} (port {n.port}): {problem}\n"
                            f"--- {n.log_path} ---\n{n.log()}")
            if not re.search(r"(?i)can't bind|address already in use", n.log()):
                break
        pytest.fail("could not start nsd:\n" + "\n".join(failures) +
                    f"\n--- {n.conf_path} ---\n{n.conf_path.read_text()}", pytrace=False)

    yield start

    for n in started:
        n.stop()
        print(f"--- {n.log_path} (port {n.port}) ---\n{n.log()}")


@pytest.fixture
def dead_dns():
    """Factory: dead_dns(host="127.0.0.1") -> "HOST:PORT" (IPv6 as "[::1]:PORT")
    where a UDP socket is bound and a TCP socket listens, and nothing answers."""
    socks = []

    def make(host="127.0.0.1"):
        v6 = ":" in host
        fam = socket.AF_INET6 if v6 else socket.AF_INET
        for _ in range(100):
            u = socket.socket(fam, socket.SOCK_DGRAM)
            u.bind((host, 0))
            port = u.getsockname()[1]
            t = socket.socket(fam, socket.SOCK_STREAM)
            try:
                t.bind((host, port))
            except OSError:
                u.close()
                t.close()
                continue
            t.listen(16)
            socks.extend([u, t])
            return f"[{host}]:{port}" if v6 else f"{host}:{port}"
        raise RuntimeError("no free UDP+TCP port")

    yield make
    for s in socks:
        s.close()


class SlowDNS:
    """A UDP proxy that answers through `upstream` after `delay` seconds."""

    def __init__(self, upstream, delay, drop=None):
        self.drop = drop
        if isinstance(upstream, NSD):
            upstream = upstream.addr
        host, _, port = upstream.rpartition(":")
        self.upstream = (host.strip("[]"), int(port))
        self.delay = delay
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.addr = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.queries = []
        self.t0 = time.monotonic()
        self.stopping = False
        self.timers = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                data, peer = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                name, off = _read_name(data, 12)
                qtype = QTYPE_NAMES.get(struct.unpack("!H", data[off:off + 2])[0], "?")
            except (ValueError, struct.error, IndexError):
                name, qtype = "?", "?"
            self.queries.append((round(time.monotonic() - self.t0, 3), name, qtype))
            if self.drop is not None and self.drop(name, qtype):
                continue
            t = threading.Timer(self.delay, self._forward, (data, peer))
            t.daemon = True
            self.timers.append(t)
            t.start()

    def _forward(self, data, peer):
        fam = socket.AF_INET6 if ":" in self.upstream[0] else socket.AF_INET
        with socket.socket(fam, socket.SOCK_DGRAM) as u:
            u.settimeout(2.0)
            try:
                u.sendto(data, self.upstream)
                reply = u.recv(65536)
            except OSError:
                return
        if not self.stopping:
            try:
                self.sock.sendto(reply, peer)
            except OSError:
                pass

    def stop(self):
        self.stopping = True
        for t in self.timers:
            t.cancel()
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def slow_dns():
    """Factory: slow_dns(upstream, delay=0.3, drop=None) -> SlowDNS (see module docstring)."""
    proxies = []

    def make(upstream, delay=0.3, drop=None):
        p = SlowDNS(upstream, delay, drop)
        proxies.append(p)
        return p

    yield make
    for p in proxies:
        p.stop()
        print(f"--- slow_dns {p.addr} -> {p.upstream} queries: {p.queries}")
