"""Helpers for the integration tests of `rawmail serve` (fixtures: conftest.py).

Every test starts its own server on a free loopback port, talks to it with a
real client (swaks, curl, msmtp, Python's smtplib, or the raw-socket helper
below), and stops it with SIGTERM.  Teardown checks that the server exits 0
and that its log holds no sanitizer report.

Run with Debian's Python (its pytest is the one installed):

    /usr/bin/python3 -m pytest tests/integration

RAWMAIL_BIN selects the binary; the default is build-asan/rawmail (ASan and
UBSan) relative to the repository root.
"""

import email.utils
import mailbox
import os
import re
import signal
import socket
import ssl
import subprocess
import time

import pytest
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parents[2]
HOSTNAME = "mx.test"
DOMAIN = "example.test"
# Every read from the server is bounded by this, so that a hang fails the
# test quickly instead of stalling the suite.
READ_TIMEOUT = 10.0
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
# What a sanitizer prints when it finds a bug.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")


def mail_user_args():
    """--mail-user for a server whose mail root the test made itself: run as
    root, rawmail refuses a root-owned mail root (the store never runs as
    root) unless told which user to give it to."""
    return ["--mail-user", "mail"] if os.geteuid() == 0 else []


def make_maildir(mailroot, name):
    """An existing Maildir, as its owner would have made it: owned like the
    mail root (the store runs as that user, never as root)."""
    root = Path(mailroot)
    st = root.stat()
    for p in (root / name, *(root / name / sub for sub in ("cur", "new", "tmp"))):
        p.mkdir(exist_ok=True)
        os.chown(p, st.st_uid, st.st_gid)
    return root / name


def rawmail_bin():
    path = os.environ.get("RAWMAIL_BIN")
    if path:
        return Path(path).resolve()
    return REPO_ROOT / "build-asan" / "rawmail"


# ---------------------------------------------------------------------------
# ports and addresses


def _port_free(family, host, port):
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port():
    """A TCP port free on both 127.0.0.1 and ::1 (so tests may listen on either)."""
    for _ in range(100):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if _port_free(socket.AF_INET6, "::1", port):
            return port
    raise RuntimeError("no free port on 127.0.0.1 and ::1")


def parse_listen(spec):
    """'127.0.0.1:2525' or '[::1]:2525' -> (family, host, port)."""
    m = re.fullmatch(r"\[([^\]]+)\]:(\d+)", spec)
    if m:
        return socket.AF_INET6, m.group(1), int(m.group(2))
    host, _, port = spec.rpartition(":")
    return socket.AF_INET, host, int(port)


# ---------------------------------------------------------------------------
# the server under test


class Server:
    """One `rawmail serve` process group, started by a test."""

    def __init__(self, tmp_path, args, listen, mailroot, name):
        self.tmp_path = tmp_path
        self.listen = listen                # list of "ADDR:PORT" strings
        self.mailroot = mailroot
        self.log_path = tmp_path / f"{name}.log"
        self.home = tmp_path / "home"       # HOME for the server: keeps it hermetic
        self.home.mkdir(exist_ok=True)
        self.args = args
        self.proc = None
        self.returncode = None
        family, host, port = parse_listen(listen[0])
        self.family, self.host, self.port = family, host, port

    @property
    def addr(self):
        return (self.host, self.port)

    def command(self):
        cmd = [str(rawmail_bin()), "serve"]
        if not getattr(self, "listen_in_config", False):
            for spec in self.listen:
                cmd += ["--listen", spec]
            cmd += ["--mailroot", str(self.mailroot)]
        cmd += self.args
        return cmd

    def start(self):
        env = dict(os.environ)
        env["HOME"] = str(self.home)
        env["XDG_STATE_HOME"] = str(self.home / ".local" / "state")
        env["XDG_CONFIG_HOME"] = str(self.home / ".config")
        env["XDG_CACHE_HOME"] = str(self.home / ".cache")
        env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=self.log_file,
            stderr=self.log_file, cwd=self.tmp_path, env=env,
            start_new_session=True)   # its own process group: children are ours
        self.pgid = self.proc.pid
        deadline = time.monotonic() + START_TIMEOUT
        pending = [parse_listen(s) for s in self.listen]
        while pending:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"rawmail serve exited with {self.proc.returncode} at start:\n{self.log()}")
            family, host, port = pending[0]
            s = socket.socket(family, socket.SOCK_STREAM)
            s.settimeout(1.0)
            try:
                s.connect((host, port))
                pending.pop(0)
            except OSError:
                if time.monotonic() > deadline:
                    self.kill()
                    raise AssertionError(
                        f"rawmail serve did not accept on {host}:{port} within "
                        f"{START_TIMEOUT} s:\n{self.log()}")
                time.sleep(0.01)
            finally:
                s.close()
        return self

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        """SIGTERM, wait, return the exit code (None if it had to be killed)."""
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            self.returncode = None
        self.leftover = self._group_alive()
        if self.leftover:
            self._kill_group()
        self.log_file.close()
        self.proc = None
        return self.returncode

    def wait_exit(self, timeout=STOP_TIMEOUT):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def _group_alive(self):
        try:
            os.killpg(self.pgid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True

    def _kill_group(self):
        # Only this server's own process group, which the test started.
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 5
        while self._group_alive() and time.monotonic() < deadline:
            time.sleep(0.05)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self._kill_group()
            self.proc.wait(5)

    def check_log_clean(self):
        text = self.log()
        for marker in SANITIZER_MARKERS:
            assert marker not in text, f"sanitizer report in the server log:\n{text}"

    def connect(self, family=None, host=None, port=None, timeout=READ_TIMEOUT, greet=True):
        c = SMTPConn(host or self.host, port or self.port, timeout=timeout,
                     family=family or (socket.AF_INET6 if ":" in (host or self.host) else socket.AF_INET))
        if greet:
            r = c.read_reply()
            assert r.code == 220, f"greeting: {r}"
        return c

    def session(self, helo="client.test", ehlo=True):
        c = self.connect()
        r = c.cmd(("EHLO " if ehlo else "HELO ") + helo)
        assert r.code == 250, r
        return c

    def assert_alive(self):
        """The server still answers a fresh connection with a full exchange."""
        c = self.connect()
        r = c.cmd("EHLO alive.test")
        assert r.code == 250, r
        r = c.cmd("NOOP")
        assert r.code == 250, r
        r = c.cmd("QUIT")
        assert r.code == 221, r
        c.close()


# ---------------------------------------------------------------------------
# raw SMTP client


class Reply:
    def __init__(self, lines, raw):
        self.raw = raw                     # bytes as received, CRLFs included
        self.lines = lines                 # decoded lines without CRLF
        self.code = int(lines[-1][:3])
        self.texts = [l[4:] for l in lines]
        m = re.match(r"([245])\.(\d{1,3})\.(\d{1,3})(?: |$)", self.texts[0])
        self.enhanced = m.group(0).strip() if m else None

    @property
    def text(self):
        return "\n".join(self.texts)

    def __repr__(self):
        return f"Reply({self.raw!r})"

    __str__ = __repr__


class ConnectionClosed(AssertionError):
    pass


class SMTPConn:
    """A raw SMTP client: send bytes, read whole replies, every read bounded."""

    def __init__(self, host, port, timeout=READ_TIMEOUT, family=socket.AF_INET,
                 source=None):
        self.timeout = timeout
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.buf = b""
        self.transcript = []               # ("C"|"S", bytes)
        self.tls = False

    # -- low level
    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.transcript.append(("C", data))
        self.sock.sendall(data)

    def _recv(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("read deadline passed")
        self.sock.settimeout(remaining)
        chunk = self.sock.recv(65536)
        if chunk:
            self.transcript.append(("S", chunk))
        return chunk

    def read_line(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\n" not in self.buf:
            try:
                chunk = self._recv(deadline)
            except socket.timeout:
                raise AssertionError(
                    f"timed out waiting for a reply line; so far {self.buf!r}\n"
                    f"transcript: {self.format_transcript()}") from None
            if not chunk:
                raise ConnectionClosed(
                    f"connection closed by server; pending {self.buf!r}\n"
                    f"transcript: {self.format_transcript()}")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def read_reply(self, timeout=None):
        """One whole (possibly multi-line) reply."""
        raw = b""
        lines = []
        while True:
            line = self.read_line(timeout)
            raw += line
            text = line.rstrip(b"\r\n").decode("utf-8", errors="replace")
            assert re.match(r"[1-5]\d\d([ -]|$)", text), f"malformed reply line {line!r}"
            assert line.endswith(b"\r\n"), f"reply line not ended by CRLF: {line!r}"
            lines.append(text)
            if len(text) == 3 or text[3] == " ":
                if lines:
                    codes = {l[:3] for l in lines}
                    assert len(codes) == 1, f"multi-line reply with different codes: {raw!r}"
                return Reply(lines, raw)

    def read_replies(self, n, timeout=None):
        return [self.read_reply(timeout) for _ in range(n)]

    def cmd(self, line, timeout=None):
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.read_reply(timeout)

    def read_until_closed(self, timeout=None):
        """Everything the server sends until it closes (bounded)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        data = self.buf
        self.buf = b""
        while True:
            try:
                chunk = self._recv(deadline)
            except socket.timeout:
                raise AssertionError(
                    f"server did not close the connection; got {data!r}") from None
            except (ConnectionResetError, ssl.SSLError):
                return data
            if not chunk:
                return data
            data += chunk

    def pending_bytes(self, wait=0.3):
        """What arrives within `wait` seconds (b'' if nothing)."""
        data = self.buf
        self.buf = b""
        deadline = time.monotonic() + wait
        while True:
            try:
                chunk = self._recv(deadline)
            except (socket.timeout, OSError):
                return data
            if not chunk:
                return data
            data += chunk

    def format_transcript(self):
        return "".join(f"\n{who}: {data!r}" for who, data in self.transcript)

    # -- higher level
    def starttls(self, context=None):
        r = self.cmd("STARTTLS")
        assert r.code == 220, r
        assert self.buf == b"", f"bytes after the 220 to STARTTLS: {self.buf!r}"
        self.wrap_tls(context)
        return r

    def wrap_tls(self, context=None):
        if context is None:
            context = client_tls_context()
        self.sock.settimeout(self.timeout)
        self.sock = context.wrap_socket(self.sock, server_hostname=None)
        self.tls = True

    def mail_transaction(self, sender, rcpts, data, ehlo=None):
        """MAIL, RCPT..., DATA, message (dot-stuffed here), final dot; returns
        the reply to the final dot.  `data` is bytes with CRLF line ends."""
        if ehlo:
            r = self.cmd("EHLO " + ehlo)
            assert r.code == 250, r
        r = self.cmd(f"MAIL FROM:<{sender}>")
        assert r.code == 250, r
        for rcpt in rcpts:
            r = self.cmd(f"RCPT TO:<{rcpt}>")
            assert r.code == 250, r
        r = self.cmd("DATA")
        assert r.code == 354, r
        self.send(dot_stuff(data) + b".\r\n")
        return self.read_reply()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def client_tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def dot_stuff(data):
    """RFC 5321 §4.5.2 transparency for CRLF data; ensures a final CRLF."""
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    lines = data.split(b"\r\n")[:-1]
    return b"".join((b"." + l if l.startswith(b".") else l) + b"\r\n" for l in lines)


def crlf(text):
    """str or bytes with LF line ends -> bytes with CRLF line ends."""
    if isinstance(text, str):
        text = text.encode()
    return text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def sample_message(subject="integration test", extra_body=b""):
    """A message with edge cases for transparency: leading dots, a lone dot
    line, a double dot line, trailing spaces, an empty line in the body."""
    token = os.urandom(6).hex()
    msg = (
        "From: Alice <alice@client.test>\n"
        "To: User <user@example.test>\n"
        f"Subject: {subject} {token}\n"
        f"Message-ID: <{token}@client.test>\n"
        "Date: Mon, 03 Nov 2025 10:00:00 +0000\n"
        "\n"
        "Hello from the integration tests.\n"
        ".leading dot line\n"
        "..two leading dots\n"
        ".\n"
        "..\n"
        "trailing spaces   \n"
        "\n"
        "last line\n"
    )
    return crlf(msg) + extra_body


def sample_message_no_lone_dot(subject="integration test"):
    """For clients (swaks) that treat a lone '.' line as the end of the data."""
    token = os.urandom(6).hex()
    return crlf(
        "From: Alice <alice@client.test>\n"
        "To: User <user@example.test>\n"
        f"Subject: {subject} {token}\n"
        f"Message-ID: <{token}@client.test>\n"
        "Date: Mon, 03 Nov 2025 10:00:00 +0000\n"
        "\n"
        "Hello from the integration tests.\n"
        ".leading dot line\n"
        "..two leading dots\n"
        "trailing spaces   \n"
        "\n"
        "last line\n")


# ---------------------------------------------------------------------------
# Maildir helpers


def mailbox_messages(mailroot, name, wait=0.0):
    """Raw bytes of every message in MAILROOT/name/new (sorted by file name).

    Read through Python's mailbox.Maildir.  `wait`: poll up to that many
    seconds for at least one message to appear."""
    path = Path(mailroot) / name
    deadline = time.monotonic() + wait
    while True:
        msgs = []
        # A Maildir is whole once cur/ exists too: the store makes tmp/,
        # new/ and cur/ in turn, and mailbox.Maildir reads all three.
        if (path / "new").is_dir() and (path / "cur").is_dir():
            md = mailbox.Maildir(str(path), factory=None, create=False)
            keys = sorted(md.keys(), key=lambda k: md._lookup(k))
            msgs = [md.get_bytes(k) for k in keys]
        if msgs or time.monotonic() >= deadline:
            return msgs
        time.sleep(0.05)


def maildir_files(mailroot):
    """Every regular file in a new/, cur/ or tmp/ directory under mailroot."""
    out = []
    root = Path(mailroot)
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath).name in ("new", "cur", "tmp"):
            out += [Path(dirpath) / f for f in filenames]
    return sorted(out)


def assert_no_mail(mailroot, settle=0.1):
    """Nothing stored (and no partial file) anywhere under mailroot.

    Waits `settle` seconds first so that a commit in flight would show."""
    time.sleep(settle)
    files = maildir_files(mailroot)
    assert files == [], f"mail files found under {mailroot}: {files}"


def mailboxes_with_mail(mailroot):
    return sorted({p.parent.parent.name for p in maildir_files(mailroot) if p.parent.name == "new"})


def mailbox_name(addr):
    """The mailbox (Maildir name) of an address as the server's policy makes
    it: local part unquoted, +tag dropped (a leading '+' stays), ASCII
    folded to lower case."""
    local = addr.rpartition("@")[0] if "@" in addr else addr
    local = local.split(":")[-1]                    # a source route
    if local.startswith('"') and local.endswith('"'):
        local = local[1:-1]
    plus = local.find("+")
    if plus > 0:
        local = local[:plus]
    return local.lower()


def delivered_to_for(addr):
    """Delivered-To of the copy for addr (as the server formatted it): the
    mailbox, with the domain folded to lower case unless it is a literal."""
    box = mailbox_name(addr)
    if "@" not in addr:
        return box
    domain = addr.rpartition("@")[2]
    return f"{box}@{domain if domain.startswith('[') else domain.lower()}"


class Delivered:
    """A stored message split into the headers the server added and the rest:
    Return-Path, one X-Original-To per recipient given for this mailbox,
    Delivered-To naming the mailbox (as Postfix writes them), Received."""

    def __init__(self, data):
        self.data = data
        lines = data.split(b"\n")
        assert lines[0].startswith(b"Return-Path: "), f"first line is not Return-Path: {data[:300]!r}"
        self.return_path = lines[0][len(b"Return-Path: "):].decode()
        i = 1
        self.original_to = []
        while lines[i].startswith(b"X-Original-To: "):
            self.original_to.append(lines[i][len(b"X-Original-To: "):].decode())
            i += 1
        assert self.original_to, f"no X-Original-To after Return-Path: {data[:300]!r}"
        assert lines[i].startswith(b"Delivered-To: "), f"no Delivered-To after X-Original-To: {data[:300]!r}"
        self.delivered_to = lines[i][len(b"Delivered-To: "):].decode()
        i += 1
        assert lines[i].startswith(b"Received: "), f"no Received: after Delivered-To: {data[:300]!r}"
        received = [lines[i]]
        i += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            received.append(lines[i])
            i += 1
        self.received_raw = b"\n".join(received) + b"\n"
        self.received = " ".join(l.strip().decode() for l in received)[len("Received: "):]
        self.body = b"\n".join(lines[i:])
        assert b"\r" not in self.data[:len(self.data) - len(self.body)], "CR in added headers"

    def received_fields(self):
        """Parse 'from H (... [IP]) by HOST with PROTO ... id QID [for <R>]; DATE'."""
        m = re.fullmatch(
            r"from (?P<helo>\S+) \((?P<info>[^()]*\[(?P<ip>[^\]]+)\][^()]*)\)"
            r"(?: \([^()]*\))*"
            r" by (?P<by>\S+)(?: \([^()]*\))*"
            r" with (?P<proto>[A-Za-z0-9]+)(?P<tls>(?: \([^()]*\))*)"
            r" id (?P<id>\S+)"
            r"(?: for <(?P<for>[^>]*)>)?"
            r"; (?P<date>.+)", self.received)
        assert m, f"Received: header does not parse: {self.received!r}"
        d = m.groupdict()
        assert email.utils.parsedate_tz(d["date"]) is not None, \
            f"bad Received date {d['date']!r}"
        return d


def expected_stored_body(sent):
    """What must be stored for a message sent as `sent` (unstuffed CRLF data)."""
    return sent.replace(b"\r\n", b"\n")


def address_forms(addr):
    """The forms a stored header may show for an address: as sent, and for a
    bare IPv4 domain (user@127.0.0.1) also the literal it stands for
    (user@[127.0.0.1]), which the server may write instead."""
    forms = {addr}
    local, at, domain = addr.rpartition("@")
    if at and re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", domain):
        forms.add(f"{local}@[{domain}]")
    return forms


def check_delivery(data, sent, sender, rcpt, helo=None, ip="127.0.0.1", proto="ESMTP",
                   single_rcpt=True):
    """Check one stored message byte for byte against what the client sent."""
    d = Delivered(data)
    assert d.return_path in {f"<{a}>" for a in address_forms(sender)}, d.return_path
    given = [a for a in address_forms(rcpt) if a in d.original_to]
    assert given, f"{rcpt} not among X-Original-To {d.original_to}"
    assert d.delivered_to == delivered_to_for(given[0]), d.delivered_to
    f = d.received_fields()
    if helo is not None:
        assert f["helo"] == helo, f
    ips = {ip}
    if ip == "::1":
        ips |= {"IPv6:::1"}
    assert f["ip"] in ips, f
    assert f["by"] == HOSTNAME, f
    if isinstance(proto, str):
        assert f["proto"] == proto, f
    else:
        assert f["proto"] in proto, f
    if single_rcpt:
        assert f["for"] is not None, f"Received: lacks 'for' with one recipient: {d.received!r}"
        assert f["for"].lower() in {a.lower() for a in address_forms(rcpt)}, f
    else:
        assert f["for"] is None, f"Received: has 'for' with several recipients: {d.received!r}"
    assert d.body == expected_stored_body(sent), (
        f"stored message differs from what was sent:\nstored: {d.body!r}\n"
        f"sent:   {expected_stored_body(sent)!r}")
    return d, f


def run_client(argv, input=None, timeout=30, check=True):
    """Run a client program with a bounded time; returns CompletedProcess."""
    try:
        p = subprocess.run(argv, input=input, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{argv[0]} hung for {timeout} s: {e.stdout!r} {e.stderr!r}")
    if check:
        assert p.returncode == 0, (
            f"{argv} exited {p.returncode}\nstdout: {p.stdout.decode(errors='replace')}\n"
            f"stderr: {p.stderr.decode(errors='replace')}")
    return p


def check_servers_stopped(servers):
    """Teardown of every server fixture: SIGTERM each server still running,
    then fail the test if one did not exit 0, left processes behind, or has
    a sanitizer report in its log (the log tails are printed)."""
    problems = []
    for srv in servers:
        if srv.proc is not None:
            code = srv.stop()
            if code != 0:
                problems.append(f"{srv.log_path.name}: exit status after SIGTERM: {code} "
                                f"(None = still running {STOP_TIMEOUT} s after SIGTERM)")
        if getattr(srv, "leftover", False):
            problems.append(f"{srv.log_path.name}: processes of the server's group were still "
                            "alive after it exited")
        text = srv.log()
        for marker in SANITIZER_MARKERS:
            if marker in text:
                problems.append(f"{srv.log_path.name}: sanitizer report ({marker!r}) in the log")
    if problems:
        logs = "".join(f"\n--- {srv.log_path} ---\n{srv.log()[-20000:]}" for srv in servers)
        pytest.fail("server teardown: " + "; ".join(problems) + logs, pytrace=False)
