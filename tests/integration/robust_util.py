"""Helpers and fixtures for the robustness tests (durability, disk full,
limits, signals, memory).  Builds on helpers.py and conftest.py, which it
only imports.

- `rstart_server`: like conftest's `start_server`, plus a choice of binary
  (`binary=release_bin()`), a command prefix (`wrap=["strace", ...]`: the
  server then runs under that program, and signals go to rawmail's own
  parent process, not to the wrapper), and the same teardown checks.
- /proc helpers: the server's children, which child is the smtp process
  (the one that holds the listening socket; the parent holds it too, the
  store closes it), VmRSS.
- many connections from many 127.x.y.z source addresses, read with
  selectors so that 10,000 sockets stay cheap for the test itself.
- a real small tmpfs (`mount_tmpfs`), unmounted at teardown.

Run with /usr/bin/python3 -m pytest, as root for the tmpfs and for the
per-address tests' process lookups (the smtp process runs as nobody then).
"""

import os
import resource
import selectors
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from helpers import (
    DOMAIN, HOSTNAME, REPO_ROOT, STOP_TIMEOUT, Server, check_servers_stopped, free_port,
)


# ---------------------------------------------------------------------------
# binaries, limits


def release_bin():
    """The release binary (no ASan): for strace and RSS measurements.
    RAWMAIL_RELEASE_BIN overrides build/rawmail."""
    path = os.environ.get("RAWMAIL_RELEASE_BIN")
    p = Path(path).resolve() if path else REPO_ROOT / "build" / "rawmail"
    if not p.exists():
        pytest.skip(f"release binary {p} not built (make)")
    return p


def raise_nofile(want=None):
    """Raise our own RLIMIT_NOFILE to the hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if want is None else min(max(want, soft), hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ---------------------------------------------------------------------------
# /proc


def proc_ppid(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may hold spaces and parentheses: the fields follow the last ')'.
    return int(stat[stat.rindex(")") + 2:].split()[1])


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and proc_ppid(int(d)) == pid:
            out.append(int(d))
    return sorted(out)


def proc_status(pid):
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        fields[k] = v.strip()
    return fields


def rss_kib(pid):
    return int(proc_status(pid)["VmRSS"].split()[0])


def _listening_inodes(port):
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:   # LISTEN
                inodes.add(f[9])
    return inodes


def holds_socket(pid, inodes):
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return True
    return False


def server_roles(main_pid, port, timeout=5.0):
    """{'smtp': [pids], 'store': [pids]} among main_pid's children: a child
    that holds the listening socket is an smtp process, the other a store."""
    deadline = time.monotonic() + timeout
    while True:
        inodes = _listening_inodes(port)
        kids = children(main_pid)
        roles = {"smtp": [], "store": []}
        for k in kids:
            roles["smtp" if holds_socket(k, inodes) else "store"].append(k)
        if (roles["smtp"] and roles["store"]) or time.monotonic() > deadline:
            return roles
        time.sleep(0.05)


def tcp_queues(local_port=None, remote_port=None):
    """[(local_port, remote_port, tx_queue, rx_queue)] for IPv4 TCP sockets
    from /proc/net/tcp, filtered by port."""
    out = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        lp = int(f[1].rsplit(":", 1)[1], 16)
        rp = int(f[2].rsplit(":", 1)[1], 16)
        if f[3] == "0A":
            continue
        if local_port is not None and lp != local_port:
            continue
        if remote_port is not None and rp != remote_port:
            continue
        tx, rx = (int(x, 16) for x in f[4].split(":"))
        out.append((lp, rp, tx, rx))
    return out


# ---------------------------------------------------------------------------
# the server, optionally under a wrapper, optionally another binary


class RServer(Server):
    def __init__(self, *a, binary=None, wrap=None, **kw):
        super().__init__(*a, **kw)
        self.binary = binary
        self.wrap = list(wrap or [])
        self._main_pid = None

    def command(self):
        cmd = super().command()
        if self.binary is not None:
            cmd[0] = str(self.binary)
        return self.wrap + cmd

    @property
    def main_pid(self):
        """rawmail's parent process (the wrapper's child when wrapped)."""
        if not self.wrap:
            return self.proc.pid
        if self._main_pid is None:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                kids = children(self.proc.pid)
                if kids:
                    self._main_pid = kids[0]
                    break
                time.sleep(0.02)
            else:
                raise AssertionError("the wrapped rawmail process did not appear")
        return self._main_pid

    def roles(self):
        return server_roles(self.main_pid, self.port)

    def smtp_pid(self):
        pids = self.roles()["smtp"]
        assert len(pids) == 1, f"expected one smtp process, found {pids}"
        return pids[0]

    def store_pid(self):
        pids = self.roles()["store"]
        assert len(pids) == 1, f"expected one store process, found {pids}"
        return pids[0]

    def signal(self, sig):
        os.kill(self.main_pid, sig)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        try:
            return self.proc.wait(timeout)   # a wrapper (strace) exits with rawmail's status
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=None):
        if self.proc is None:
            return self.returncode
        timeout = timeout or (STOP_TIMEOUT + (20 if self.wrap else 0))
        if self.proc.poll() is None:
            try:
                self.signal(signal.SIGTERM)
            except (ProcessLookupError, AssertionError):
                pass
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.returncode = None
        self.leftover = self._group_alive()
        if self.leftover:
            self._kill_group()
        self.log_file.close()
        self.proc = None
        return self.returncode


@pytest.fixture
def rstart_server(tmp_path):
    """Factory: rstart_server(*extra, listen=, mailroot=, defaults=True,
    binary=None, wrap=None).  Teardown as conftest's start_server: SIGTERM,
    exit status 0, nothing left of the process group, no sanitizer report."""
    servers = []

    def start(*extra, listen=None, mailroot=None, defaults=True, binary=None, wrap=None):
        if listen is None:
            listen = [f"127.0.0.1:{free_port()}"]
        if mailroot is None:
            mailroot = tmp_path / "mail"
        args = []
        if defaults:
            args += ["--hostname", HOSTNAME, "--domain", DOMAIN]
        args += [str(a) for a in extra]
        srv = RServer(tmp_path, args, listen, mailroot, name=f"rserve{len(servers)}",
                      binary=binary, wrap=wrap)
        servers.append(srv)
        return srv.start()

    yield start

    check_servers_stopped(servers)


# ---------------------------------------------------------------------------
# many connections


def source_addrs(n, second=0, start=1):
    """n distinct loopback source addresses 127.<second>.x.y (y in 1..254),
    skipping 127.0.0.1 (kept for the real clients)."""
    out = []
    i = start
    while len(out) < n:
        x, y = divmod(i, 254)
        addr = f"127.{second}.{x}.{y + 1}"
        i += 1
        if addr == "127.0.0.1":
            continue
        out.append(addr)
    return out


class Crowd:
    """Many raw connections to one server, driven with a selector.

    Each entry tracks what the server sent and whether it closed."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.socks = []
        self.data = {}        # fileno -> bytes received
        self.closed = set()   # filenos the server closed (EOF or reset)
        self.answered = set() # filenos that got data or were closed
        self.sel = selectors.DefaultSelector()

    def open(self, sources, per_source=1, connect_timeout=5.0, batch=100, greet_wait=10.0):
        """Blocking connects, `batch` at a time; after each batch, read until
        every connection so far got something or was closed (so the server
        has accepted it) before the next, which keeps its accept queue short."""
        pending = 0
        for src in sources:
            for _ in range(per_source):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((src, 0))
                s.settimeout(connect_timeout)
                s.connect((self.host, self.port))
                s.setblocking(False)
                self.socks.append(s)
                self.data[s.fileno()] = b""
                self.sel.register(s, selectors.EVENT_READ)
                pending += 1
                if pending >= batch:
                    self.pump(greet_wait, until=lambda c: len(c.answered) == len(c.socks))
                    pending = 0
        self.pump(greet_wait, until=lambda c: len(c.answered) == len(c.socks))
        return self

    def pump(self, seconds, until=None):
        """Read whatever arrives for up to `seconds` (or until until(self))."""
        deadline = time.monotonic() + seconds
        while True:
            if until is not None and until(self):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            for key, _ in self.sel.select(min(left, 0.2)):
                s = key.fileobj
                try:
                    chunk = s.recv(65536)
                except BlockingIOError:
                    continue
                except (ConnectionResetError, OSError):
                    chunk = b""
                self.answered.add(s.fileno())
                if chunk:
                    self.data[s.fileno()] += chunk
                else:
                    self.closed.add(s.fileno())
                    self.sel.unregister(s)

    def greeted(self):
        return sum(1 for d in self.data.values() if d.startswith(b"220 "))

    def open_socks(self):
        return [s for s in self.socks if s.fileno() not in self.closed]

    def send_all(self, data, socks=None):
        """One short write to each still-open socket; errors count as closed."""
        n = 0
        for s in (socks if socks is not None else self.open_socks()):
            try:
                s.send(data)
                n += 1
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self.closed.add(s.fileno())
        return n

    def close(self):
        for s in self.socks:
            try:
                self.sel.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()
        self.sel.close()
        self.socks = []


# ---------------------------------------------------------------------------
# a real small tmpfs


class Tmpfs:
    def __init__(self, path, size):
        self.path = Path(path)
        self.size = size

    def free(self):
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize

    def total(self):
        st = os.statvfs(self.path)
        return st.f_blocks * st.f_frsize


@pytest.fixture
def mount_tmpfs(tmp_path):
    """Factory: mount_tmpfs(size='2m') -> Tmpfs mounted at a fresh directory;
    unmounted at teardown (after the servers, which were started later and
    are stopped first).  Skips when mounting is not permitted."""
    mounts = []

    def mount(size="2m"):
        path = tmp_path / f"tmpfs{len(mounts)}"
        path.mkdir()
        try:
            p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755",
                                "tmpfs", str(path)], capture_output=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired) as e:
            pytest.skip(f"cannot mount a tmpfs (needed for a real full disk): {e}")
        if p.returncode != 0:
            pytest.skip("cannot mount a tmpfs (needed for a real full disk; run as root "
                        f"with CAP_SYS_ADMIN): {p.stderr.decode(errors='replace').strip()}")
        mounts.append(path)
        return Tmpfs(path, size)

    yield mount

    for path in reversed(mounts):
        p = subprocess.run(["umount", str(path)], capture_output=True, timeout=20)
        if p.returncode != 0:
            # Something still holds it (a server that would not die): detach
            # it so that the machine is not left with a stray mount.
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=20)
