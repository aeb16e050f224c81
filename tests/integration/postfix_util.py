"""A private Postfix on loopback as the receiving MTA for integration tests
(e.g. of `rawmail send`), delivering to one Maildir per user.

Import the fixtures into a test module::

    from postfix_util import postfix, start_postfix

``start_postfix`` -- factory (function scope)::

    pf = start_postfix(domains=("example.test",), users=("user",), literals=None,
                       tls=False, ipv6=False, host="127.0.0.1", port=None,
                       hostname=None, resolve_numeric_domain=False,
                       message_size_limit=64 MiB, main_cf=None, files=None,
                       wrapper=())

  domains   mail domains delivered locally (the MX names a test's DNS points at).
  users     local parts: every user gets every domain and literal, all into
            one Maildir named after the user.  An entry with an "@"
            ("bob@other.test") is that one address only, delivered to a
            Maildir named after the whole (lower-cased) address; its domain is
            added to the local domains.
  literals  address literals delivered locally, e.g. ["[127.0.0.2]"].  Default:
            "[HOST]", and "[IPv6:::1]" with ipv6.  Give [] for none: user@[HOST]
            then gets 554 (relay access denied), or 550 (unknown user) when
            HOST is 127.0.0.1 (see "Literals" below).
  tls       offer STARTTLS (smtpd_tls_security_level = may) with a self-signed
            certificate for HOSTNAME made by the openssl CLI (``.cert_path``).
  ipv6      also listen on [::1] with the same port (``.port6``).
  host      the IPv4 loopback address to listen on: any 127.x.y.z works with
            no setup (PEERS.md, gotcha 12).  It is bound in master.cf.
  port      None: a free port (no listener at all on it per ``ss``, and
            bindable on 127.0.0.1 and ::1).  Given: used as is, after checking
            with ``ss`` that nothing listens on HOST:PORT or on a wildcard
            address with that port.  So two instances can share a port on two
            addresses: ``a = start_postfix(host="127.0.0.2");
            b = start_postfix(host="127.0.0.3", port=a.port)``.  Port 25 works
            as root.
  hostname  myhostname (greeting, Received:); default "postfixN.test".
  resolve_numeric_domain
            False (Postfix's default, and RFC 5321's rule): "user@127.0.0.1"
            without brackets gets "501 5.1.3 Bad recipient address syntax".
            True: Postfix takes it as user@[127.0.0.1] (PEERS.md, gotcha 2).
            Default False, so that a client sending a bare IP domain is caught.
  message_size_limit
            bytes; default 64 MiB (Postfix's own default is 10 MB).
  main_cf   dict of main.cf settings applied last (override anything), e.g.
            {"smtpd_tls_security_level": "encrypt"} or
            {"smtpd_recipient_restrictions":
             "check_recipient_access texthash:$config_directory/access"}.
  files     dict name -> text written into the config directory before the
            start (maps for main_cf, referred to as $config_directory/NAME).
  wrapper   a command prefix for `postfix start`, e.g. ["strace", "-D", "-f",
            "-o", FILE]: traces master and every child for their whole life
            (test_postfix_peer.py uses it to show that nothing queries DNS).

  Returns a started ``Postfix`` (master.pid written and HOST:PORT held by
  our master, checked with ``ss -p``) with:

    .host, .port         "127.0.0.1" (or the given host), the port
    .addr                (host, port) for socket.connect / smtplib
    .host6, .port6       "::1" and the port with ipv6=True, else None
    .hostname            its myhostname
    .domains, .literals  what is local to it
    .maildir(user)       Path of that user's Maildir (user: local part, or the
                         full address for an "@" entry; case-insensitive)
    .messages(user)      bytes of every file in its new/ and cur/, oldest first
    .wait_for_mail(user, count=1, timeout=10)
                         poll until the Maildir holds >= count messages;
                         returns .messages(user); fails the test with the
                         queue contents and the log tail on timeout.
                         Delivery is asynchronous (smtpd -> queue -> virtual),
                         so a 250 to the final dot does not mean it is there.
    .wait_idle(timeout=10)
                         poll until the queue is empty (every accepted
                         message delivered or bounced): use it before
                         asserting that nothing was delivered.
    .clear_mail()        remove every delivered message (all Maildirs)
    .log()               text of its maillog (Postfix's own log file)
    .wait_log(regex, timeout=10) -> re.Match on the maillog
    .stop()              stop it now (idempotent); see "Stopping"
    .dir                 the instance's directory: etc/ (config_directory),
                         queue/, data/, mail/ (Maildirs), log/maillog,
                         log/postfix.out (output of the postfix command), tls/
                         (see "Where it lives": it moves at stop)
    .config_dir, .queue_dir, .data_dir, .mail_root, .log_path, .cert_path,
    .key_path            paths below .dir
    .master_pid          pid of its master(8), which leads its process group
    .start_seconds       how long `postfix start` took, until HOST:PORT was held

  Several may run at once (each its own directory, tmp_path/postfix0,
  postfix1, ...).

``postfix`` -- ``start_postfix()`` with the defaults: user@example.test and
  user@[127.0.0.1] -> Maildir "user", on 127.0.0.1 and a free port.

Start-up takes ~0.2 s (measured here: `postfix start` until HOST:PORT is
held 0.16-0.27 s, the whole factory call 0.2-0.36 s; stop 0.04-0.07 s), so the fixtures are function-scoped: every
test gets a fresh instance with an empty queue and no mail.  Two things make
it that fast:
  * main.cf and the texthash: maps are back-dated by a minute: Postfix
    re-reads a file every 0.3 s until its mtime is more than a second old
    (dict_load_file: it may still be being written), ~2 s per start.
  * the queue directories (and data_directory) are made here, with the
    owners and modes of $meta_directory/postfix-files, as post-install would,
    and queue/quick-start is touched, so that `postfix start` skips its
    check-fatal/check-warn (post-install create-missing, postsuper, a find
    over the installation), which only matter for an old queue.

Configuration (main.cf; see _main_cf): virtual(8) delivery to Maildir for
all local domains (local_transport = virtual, local_recipient_maps =
$virtual_mailbox_maps, a texthash: map; PEERS.md gotcha 3), so an unknown user
gets "550 5.1.1 ... User unknown in local recipient table" at RCPT; no
relaying (smtpd_relay_restrictions = reject_unauth_destination: "554 5.7.1
Relay access denied"; default and relay transports are error(8), no smtp(8)
in master.cf); smtpd_peername_lookup = no (PEERS.md gotcha 4); no DNS
anywhere (smtp/lmtp_dns_support_level = disabled, explicit myhostname,
mydomain, mynetworks and inet_interfaces, nothing that resolves a name;
test_no_dns_lookups straces every process: no packet to port 53, not even
/etc/resolv.conf or /etc/hosts opened);
maillog_file (no syslog: gotcha 6); in_flow_delay = 0; local_header_rewrite_clients
empty, so Postfix neither rewrites headers nor adds a missing Message-Id: or
Date: for loopback clients: what a test sent is stored below Postfix's
Return-Path:, X-Original-To:, Delivered-To: and Received:, with LF line ends.

Literals: Postfix treats user@[A] as local when A is one of its own
addresses (inet_interfaces) or "[A]" is listed in mydestination (gotcha 1).
inet_interfaces cannot name 127.0.0.2 (not configured on lo), so every
instance has inet_interfaces = 127.0.0.1 (and ::1 with ipv6) and binds its
own HOST in master.cf.  Hence [127.0.0.1] is a local domain of every
instance, even one on 127.0.0.3 started with literals=[] or the default
["[127.0.0.3]"]: there user@[127.0.0.1] gets "550 5.1.1 User unknown"
(no user has that address) where other foreign literals get "554 5.7.1
Relay access denied".

Where it lives: unprivileged Postfix processes open files by absolute
path (master takes data_directory/master.lock as user postfix, virtual(8)
opens the texthash map and writes the Maildirs as user nobody), so every
directory above them must be searchable by others.  pytest's tmp_path is
below /tmp/pytest-of-root (mode 0700), and pytest resets that mode on every
run.  So an instance runs in a directory of its own made by tempfile in /tmp
(mode 0755, named rawmail-postfix-*), with tmp_path/postfixN a symbolic link
to it; stop() moves the whole directory to tmp_path/postfixN (where pytest
keeps it for post-mortems and cleans it up later), so nothing is left in
/tmp, and every path attribute (.dir, .log_path, .maildir()) follows.

Stopping: SIGTERM to the master (what ``postfix stop`` sends; master then
terminates its process group), then wait until no process of its group
(pgid = master pid: master calls setsid) is alive, SIGKILL to that group as
a last resort; then a check that the port is free again.  ``postfix stop``
itself polls in 1 s steps, which would make every test a second slower: it
is used only when the master pid is unknown.  Teardown stops every instance
even when the test failed, and prints each maillog (pytest shows it under
"Captured stdout teardown" on failure); an atexit hook stops any instance
still running when the session ends.  If pytest itself is killed outright
(SIGKILL), neither runs: the next session's first start_postfix stops such
leftovers and removes their run directories (each names the pytest process
that made it; only those whose process is gone are touched, and only a master
whose working directory is that run directory's queue is signalled).

Needs root (Postfix's master) and Debian's postfix package, installed by
``scripts/deps test`` with no system instance (main_mailer_type = No
configuration); the users postfix and nobody and the group postdrop come with
it and with Debian.
"""

import atexit
import functools
import os
import pwd
import grp
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from dns_util import _group_running  # one /proc walker for both fixtures
from helpers import free_port


POSTFIX = os.environ.get("POSTFIX_BIN", "/usr/sbin/postfix")
POSTCONF = os.environ.get("POSTCONF_BIN", "/usr/sbin/postconf")
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
DEFAULT_SIZE_LIMIT = 64 * 1024 * 1024
QUEUE_DIRS = ("maildrop", "incoming", "active", "deferred", "hold")

_running = []          # every started instance not yet stopped: see _stop_all


# ---------------------------------------------------------------------------
# processes and ports


def _ss_listeners(port):
    """[(local address, process info)] of TCP listeners on `port` (any address)."""
    p = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True,
                       text=True, timeout=10)
    if p.returncode != 0:
        raise RuntimeError(f"ss failed: {p.stderr}")
    out = []
    for line in p.stdout.splitlines():
        f = line.split()
        # State Recv-Q Send-Q Local:Port Peer:Port [Process]
        if len(f) >= 4:
            out.append((f[3], " ".join(f[5:])))
    return out


def _addr_host(local):
    """'127.0.0.2:2525' -> '127.0.0.2'; '[::1]:25' -> '::1'; '*:25' -> '*';
    '0.0.0.0%lo:25' -> '0.0.0.0'."""
    host = local.rpartition(":")[0].strip("[]")
    return host.split("%")[0]


def _port_taken(host, port, host6=None):
    """Listeners that would get (or share) connections to host:port (and ::1)."""
    wild = {"*", "0.0.0.0", "::"}
    mine = {host} | ({host6} if host6 else set())
    return [l for l in _ss_listeners(port) if _addr_host(l[0]) in wild | mine]


def _pick_port(host, ipv6):
    for _ in range(100):
        port = free_port()          # bindable on 127.0.0.1 and ::1
        if _ss_listeners(port):
            continue                # gotcha 5: in use with SO_REUSEPORT, or racing
        if host != "127.0.0.1":
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((host, port))
            except OSError:
                continue
            finally:
                s.close()
        return port
    raise RuntimeError("no free port for postfix")


def _traversable(path):
    """Every directory from / down to path is searchable by others."""
    p = Path(path).resolve()
    for d in [p] + list(p.parents):
        if not os.stat(d).st_mode & 0o001:
            return False
    return True


RUN_PREFIX = "rawmail-postfix-"
OWNER_FILE = "owner"        # in a run directory: "PID START_TIME" of the pytest that made it


def _run_bases():
    return [b for b in dict.fromkeys((tempfile.gettempdir(), "/tmp", "/var/tmp"))
            if os.path.isdir(b) and _traversable(b)]


def _proc_start_time(pid):
    """Field 22 of /proc/PID/stat (start time in clock ticks), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return stat[stat.rfind(b")") + 2:].split()[19].decode()


def _run_dir():
    """A new mode-0755 directory that users postfix and nobody can reach,
    marked with the pytest process that owns it (see _sweep_stale)."""
    for base in _run_bases():
        d = Path(tempfile.mkdtemp(prefix=RUN_PREFIX, dir=base))
        os.chmod(d, 0o755)
        (d / OWNER_FILE).write_text(f"{os.getpid()} {_proc_start_time(os.getpid())}\n")
        return d
    raise RuntimeError("no temporary directory that user nobody can walk into")


_swept = False


def _sweep_stale():
    """Once per session: stop and remove what a pytest killed outright
    (SIGKILL: no teardown, no atexit) left of its instances.  Only run
    directories made here (their owner file) whose owning process is gone
    (pid dead, or reused: another start time) are touched, and only a
    master whose working directory is that run directory's queue is
    signalled, so another session's running instances are safe."""
    global _swept
    if _swept:
        return
    _swept = True
    for base in _run_bases():
        for run in Path(base).glob(RUN_PREFIX + "*"):
            try:
                pid, start = (run / OWNER_FILE).read_text().split()
            except (OSError, ValueError):
                continue
            if _proc_start_time(pid) == start:
                continue                              # its pytest still runs
            try:
                master = int((run / "queue" / "pid" / "master.pid").read_text().strip())
                if os.path.realpath(f"/proc/{master}/cwd") == str((run / "queue").resolve()):
                    os.kill(master, signal.SIGTERM)
                    deadline = time.monotonic() + 5
                    while _group_running(master) and time.monotonic() < deadline:
                        time.sleep(0.02)
                    if _group_running(master):
                        os.killpg(master, signal.SIGKILL)
            except (OSError, ValueError):
                pass
            shutil.rmtree(run, ignore_errors=True)


@functools.lru_cache(maxsize=None)
def _postfix_dir_entries():
    """[(path template, owner, group, mode)] of the directories in
    $queue_directory and $data_directory that Postfix's own installer
    (post-install, from $meta_directory/postfix-files and postfix-files.d/*)
    creates, so that they follow the installed Postfix version."""
    p = subprocess.run([POSTCONF, "-dh", "meta_directory"], capture_output=True, text=True,
                       timeout=30)
    meta = Path(p.stdout.strip() or "/etc/postfix")
    files = [meta / "postfix-files"] + sorted((meta / "postfix-files.d").glob("*"))
    out = []
    for f in files:
        try:
            text = f.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            fields = line.split(":")
            if (len(fields) >= 5 and fields[1] == "d" and
                    re.fullmatch(r"\$(queue|data)_directory(/[\w.-]+)?", fields[0])):
                out.append((fields[0], fields[2], fields[3], int(fields[4], 8)))
    if not any(t == "$queue_directory/incoming" for t, *_ in out):
        raise RuntimeError(f"no queue directories found in {files}")
    return out


def _make_postfix_dirs(queue_dir, data_dir):
    """Create queue_dir's subdirectories and data_dir as post-install would."""
    names = {"$mail_owner": "postfix", "$setgid_group": "postdrop"}
    for template, owner, group, mode in _postfix_dir_entries():
        path = Path(template.replace("$queue_directory", str(queue_dir))
                    .replace("$data_directory", str(data_dir)))
        path.mkdir(exist_ok=True)
        uid = pwd.getpwnam(names.get(owner, owner)).pw_uid
        gid = -1 if group == "-" else grp.getgrnam(names.get(group, group)).gr_gid
        os.chown(path, uid, gid)
        os.chmod(path, mode)


def _require_postfix():
    if os.geteuid() != 0:
        pytest.fail("the postfix fixture must run as root (Postfix's master does)",
                    pytrace=False)
    if not (os.access(POSTFIX, os.X_OK) and shutil.which("ss") and shutil.which("openssl")):
        pytest.fail(f"{POSTFIX}, ss or openssl missing: run scripts/deps test", pytrace=False)
    for name in ("postfix", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            pytest.fail(f"no user {name!r}: reinstall Debian's postfix (scripts/deps test)",
                        pytrace=False)
    try:
        grp.getgrnam("postdrop")
    except KeyError:
        pytest.fail("no group 'postdrop': reinstall Debian's postfix (scripts/deps test)",
                    pytrace=False)


# ---------------------------------------------------------------------------
# one instance


class Postfix:
    """One private Postfix instance; see the module docstring."""

    def __init__(self, keep_dir, domains=("example.test",), users=("user",), literals=None,
                 tls=False, ipv6=False, host="127.0.0.1", port=None, hostname=None,
                 resolve_numeric_domain=False, message_size_limit=DEFAULT_SIZE_LIMIT,
                 main_cf=None, files=None, wrapper=()):
        # While it runs the instance lives in a run directory that users
        # postfix and nobody can walk into (keep_dir, in tmp_path, is a
        # symbolic link to it); stop() moves it to keep_dir.
        self.keep_dir = Path(keep_dir)
        self.dir = self.keep_dir
        self.host = host
        self.port = port
        self.ipv6 = ipv6
        self.host6 = "::1" if ipv6 else None
        self.tls = tls
        self.hostname = hostname or f"{self.keep_dir.name}.test"
        self.resolve_numeric_domain = resolve_numeric_domain
        self.message_size_limit = message_size_limit
        self.extra_main_cf = dict(main_cf or {})
        self.files = dict(files or {})
        self.wrapper = list(wrapper)
        if literals is None:
            literals = [f"[{host}]"] + (["[IPv6:::1]"] if ipv6 else [])
        self.literals = list(literals)
        for l in self.literals:
            if not re.fullmatch(r"\[[^\]\s]+\]", l):
                raise ValueError(f"postfix: literal {l!r} is not of the form [ADDR]")
        self.domains = [d.lower().rstrip(".") for d in domains]
        self.users = [u.lower() for u in users]
        for u in self.users:
            if "@" in u:
                dom = u.rpartition("@")[2]
                if dom not in self.domains and dom not in [l.lower() for l in self.literals]:
                    (self.literals if dom.startswith("[") else self.domains).append(dom)
        self.master_pid = None
        self.started = False
        self.start_seconds = None
        self._live = False            # self.dir is the run directory

    # -- paths (all below self.dir, which moves at stop)
    config_dir = property(lambda self: self.dir / "etc")
    queue_dir = property(lambda self: self.dir / "queue")
    data_dir = property(lambda self: self.dir / "data")
    mail_root = property(lambda self: self.dir / "mail")
    log_path = property(lambda self: self.dir / "log" / "maillog")
    out_path = property(lambda self: self.dir / "log" / "postfix.out")
    tls_dir = property(lambda self: self.dir / "tls")
    cert_path = property(lambda self: self.tls_dir / "cert.pem" if self.tls else None)
    key_path = property(lambda self: self.tls_dir / "key.pem" if self.tls else None)

    # -- addresses
    @property
    def addr(self):
        return (self.host, self.port)

    @property
    def port6(self):
        return self.port if self.ipv6 else None

    @property
    def addr6(self):
        if not self.ipv6:
            raise AttributeError("this Postfix was started without ipv6=True")
        return ("::1", self.port)

    # -- configuration
    def _mailbox_map(self):
        lines = []
        for u in self.users:
            if "@" in u:
                lines.append(f"{u} {u}/")
                continue
            for d in self.domains + self.literals:
                lines.append(f"{u}@{d.lower()} {u}/")     # texthash keys: lower case
        return "\n".join(lines) + "\n"

    def _main_cf(self):
        nobody = pwd.getpwnam("nobody")
        d = self.dir
        ifaces = "127.0.0.1" + (", [::1]" if self.ipv6 else "")
        cf = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": self.hostname,
            "mydomain": "postfix.test",
            "myorigin": "$myhostname",
            "inet_interfaces": ifaces,
            "inet_protocols": "ipv4, ipv6" if self.ipv6 else "ipv4",
            "mynetworks": "127.0.0.0/8" + (" [::1]/128" if self.ipv6 else ""),
            "mydestination": " ".join(self.domains + self.literals),
            "resolve_numeric_domain": "yes" if self.resolve_numeric_domain else "no",
            # Maildir delivery by virtual(8) for the local domains (gotcha 3).
            "local_transport": "virtual",
            "local_recipient_maps": "$virtual_mailbox_maps",
            "virtual_mailbox_maps": f"texthash:{self.config_dir}/vmailbox",
            "virtual_mailbox_base": str(self.mail_root),
            "virtual_uid_maps": f"static:{nobody.pw_uid}",
            "virtual_gid_maps": f"static:{nobody.pw_gid}",
            "virtual_mailbox_limit": "0",
            "mailbox_size_limit": "0",
            "message_size_limit": str(self.message_size_limit),
            # No relaying, no smtp(8) client at all.
            "smtpd_relay_restrictions": "reject_unauth_destination",
            "default_transport": "error",
            "relay_transport": "error",
            "relay_domains": "",
            "alias_maps": "",
            "alias_database": "",
            # No DNS (and no PTR lookup per connection: gotcha 4).
            "smtpd_peername_lookup": "no",
            "smtp_dns_support_level": "disabled",
            "lmtp_dns_support_level": "disabled",
            # Logging to a file: no syslog here (gotcha 6).
            "maillog_file": str(self.log_path),
            "maillog_file_prefixes": str(d),
            # A peer stores what it was sent: no header rewriting and no
            # Message-Id:/Date: added for clients on its own addresses
            # (127.0.0.1 is one: the default is permit_inet_interfaces).
            "local_header_rewrite_clients": "",
            "biff": "no",
            "in_flow_delay": "0s",
            "smtpd_tls_security_level": "none",
        }
        if self.tls:
            cf.update({
                "smtpd_tls_security_level": "may",
                "smtpd_tls_chain_files": f"{self.key_path}, {self.cert_path}",
                "smtpd_tls_loglevel": "1",
                "smtpd_tls_received_header": "yes",
                "smtpd_tls_session_cache_database": "",
            })
        cf.update(self.extra_main_cf)
        return "".join(f"{k} = {v}\n" for k, v in cf.items())

    def _master_cf(self):
        lines = [f"{self.host}:{self.port} inet n - n - - smtpd"]
        if self.ipv6:
            lines.append(f"[::1]:{self.port} inet n - n - - smtpd")
        lines += [
            "pickup     unix  n - n 60    1 pickup",
            "cleanup    unix  n - n -     0 cleanup",
            "qmgr       unix  n - n 300   1 qmgr",
            "rewrite    unix  - - n -     - trivial-rewrite",
            "bounce     unix  - - n -     0 bounce",
            "defer      unix  - - n -     0 bounce",
            "trace      unix  - - n -     0 bounce",
            "verify     unix  - - n -     1 verify",
            "flush      unix  n - n 1000? 0 flush",
            "proxymap   unix  - - n -     - proxymap",
            "proxywrite unix  - - n -     1 proxymap",
            "showq      unix  n - n -     - showq",
            "error      unix  - - n -     - error",
            "retry      unix  - - n -     - error",
            "discard    unix  - - n -     - discard",
            "virtual    unix  - n n -     - virtual",
            "anvil      unix  - - n -     1 anvil",
            "scache     unix  - - n -     1 scache",
            "postlog    unix-dgram n - n - 1 postlogd",
        ]
        if self.tls:
            lines.append("tlsmgr     unix  - - n 1000? 1 tlsmgr")
        return "\n".join(lines) + "\n"

    def _make_cert(self):
        self.tls_dir.mkdir(mode=0o755)
        p = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-days", "7",
             "-subj", f"/CN={self.hostname}", "-addext", f"subjectAltName=DNS:{self.hostname}",
             "-keyout", str(self.key_path), "-out", str(self.cert_path)],
            capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            raise RuntimeError(f"openssl req failed: {p.stdout}{p.stderr}")
        os.chmod(self.key_path, 0o600)

    def write(self):
        run = _run_dir()
        os.symlink(run, self.keep_dir)
        self.dir = run
        self._live = True
        for sub in ("etc", "queue", "log"):
            (run / sub).mkdir(mode=0o755)
        _make_postfix_dirs(self.queue_dir, self.data_dir)
        # Skip postfix-script's check-fatal/check-warn (post-install
        # create-missing, postsuper, find over the install: ~2 s) on this
        # empty queue whose directories were just made as post-install would.
        (self.queue_dir / "quick-start").touch()
        nobody = pwd.getpwnam("nobody")
        self.mail_root.mkdir(mode=0o755)
        os.chown(self.mail_root, nobody.pw_uid, nobody.pw_gid)
        if self.tls:
            self._make_cert()
        for name, text in self.files.items():
            (self.config_dir / name).write_text(text)
        (self.config_dir / "vmailbox").write_text(self._mailbox_map())
        (self.config_dir / "main.cf").write_text(self._main_cf())
        (self.config_dir / "master.cf").write_text(self._master_cf())
        # Postfix re-reads main.cf and texthash: files every 0.3 s until
        # their mtime is more than a second old (dict_load_file: "still being
        # written?"): back-date them, or every start waits ~2 s.
        past = time.time() - 60
        for f in self.config_dir.iterdir():
            os.utime(f, (past, past))

    # -- running
    def _postfix(self, *args, timeout=60, wrapper=()):
        """Run `postfix -c CONFIG ARGS`; its output goes to log/postfix.out
        (a file, not a pipe: a wrapper such as `strace -D` may outlive it)."""
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}
        cmd = [*wrapper, POSTFIX, "-c", str(self.config_dir), *args]
        with open(self.out_path, "ab") as out:
            out.write(f"$ {' '.join(cmd)}\n".encode())
            out.flush()
            start = out.tell()
            code = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, timeout=timeout).returncode
        with open(self.out_path, "rb") as f:
            f.seek(start)
            text = f.read().decode(errors="replace")
        with open(self.out_path, "ab") as out:
            out.write(f"-> exit {code}\n".encode())
        return code, text

    def start(self):
        """Start it; None, or what went wrong (the caller fails the test).
        self.wrapper: a command prefix for `postfix start`, e.g.
        ["strace", "-D", "-f", "-o", FILE] to trace the master and all its
        children for their whole life."""
        t0 = time.monotonic()
        # Counted as running from here, so that an interrupt during the start
        # still stops it (teardown, or the atexit hook).
        _running.append(self)
        self.started = True
        code, output = self._postfix("start", wrapper=self.wrapper)
        self._read_pid()
        if code != 0:
            self.stop()
            return f"postfix start exited {code}:\n{output}"
        # `postfix start` returns after master -w saw it initialise, with the
        # listening sockets open; make sure they are ours (gotcha 5).
        deadline = time.monotonic() + START_TIMEOUT
        want = [self.host] + ([self.host6] if self.ipv6 else [])
        while True:
            self._read_pid()
            held = {_addr_host(a) for a, proc in _ss_listeners(self.port)
                    if self.master_pid and f"pid={self.master_pid}," in proc}
            if self.master_pid and all(h in held for h in want):
                break
            if time.monotonic() > deadline:
                listeners = _ss_listeners(self.port)
                self.stop()
                return (f"master (pid {self.master_pid}) does not hold {want} port "
                        f"{self.port} after {START_TIMEOUT} s; listeners: {listeners}")
            time.sleep(0.02)
        self.start_seconds = time.monotonic() - t0
        return None

    def _read_pid(self):
        try:
            text = (self.queue_dir / "pid" / "master.pid").read_text()
        except OSError:
            return
        if text.strip().isdigit():
            self.master_pid = int(text.strip())

    def running(self):
        return self.master_pid is not None and _group_running(self.master_pid)

    def stop(self):
        """Stop every process of this instance; returns a list of problems
        (empty when it stopped cleanly).  Idempotent."""
        problems = []
        if self.started:
            problems += self._stop_master()
        problems += self._keep_run_dir()
        return problems

    def _stop_master(self):
        problems = []
        self._read_pid()
        pid = self.master_pid
        if pid is None:
            # No pid file: let postfix find its master (it may not be running).
            self._postfix("stop", timeout=30)
        else:
            try:
                os.kill(pid, signal.SIGTERM)    # what `postfix stop` does
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + STOP_TIMEOUT
            while _group_running(pid) and time.monotonic() < deadline:
                time.sleep(0.01)
            if _group_running(pid):
                problems.append(f"processes of master {pid}'s group still alive "
                                f"{STOP_TIMEOUT} s after SIGTERM: SIGKILL")
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                deadline = time.monotonic() + 5
                while _group_running(pid) and time.monotonic() < deadline:
                    time.sleep(0.02)
                if _group_running(pid):
                    problems.append(f"group {pid} survived SIGKILL")
        self.started = False
        if self in _running:
            _running.remove(self)
        left = [l for l in _port_taken(self.host, self.port, self.host6)
                if pid and f"pid={pid}," in l[1]]
        if left:
            problems.append(f"port {self.port} still held after stop: {left}")
        return problems

    def _keep_run_dir(self):
        """Move the run directory to keep_dir (in tmp_path), replacing the
        symbolic link: everything is kept for post-mortems, nothing left in /tmp."""
        if not self._live:
            return []
        run = self.dir
        try:
            if self.keep_dir.is_symlink():
                self.keep_dir.unlink()
            shutil.move(str(run), str(self.keep_dir))
        except OSError as e:
            return [f"could not move {run} to {self.keep_dir}: {e}"]
        self.dir = self.keep_dir
        self._live = False
        return []

    # -- mail
    def maildir(self, user):
        return self.mail_root / user.lower()

    def messages(self, user):
        """Bytes of every message in the user's new/ and cur/, oldest first."""
        md = self.maildir(user)
        files = []
        for sub in ("new", "cur"):
            try:
                with os.scandir(md / sub) as it:
                    files += [(e.stat().st_mtime_ns, e.name, e.path) for e in it if e.is_file()]
            except FileNotFoundError:
                pass
        out = []
        for _, _, path in sorted(files):
            try:
                out.append(Path(path).read_bytes())
            except FileNotFoundError:      # moved new/ -> cur/ meanwhile: not by Postfix
                pass
        return out

    def queue_files(self):
        """Names of the queue files not yet delivered (or bounced)."""
        out = []
        for q in QUEUE_DIRS:
            for dirpath, _, names in os.walk(self.queue_dir / q):
                out += [f"{q}/{n}" for n in names]
        return out

    def _diagnose(self):
        return (f"queue: {self.queue_files()}\n--- {self.log_path} (tail) ---\n"
                f"{self.log()[-6000:]}")

    def wait_for_mail(self, user, count=1, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            msgs = self.messages(user)
            if len(msgs) >= count:
                return msgs
            if time.monotonic() > deadline:
                pytest.fail(f"postfix {self.host}:{self.port}: {len(msgs)} of {count} "
                            f"message(s) in {self.maildir(user)} after {timeout} s\n"
                            f"{self._diagnose()}", pytrace=False)
            time.sleep(0.02)

    def wait_idle(self, timeout=10.0):
        """Until nothing is left in the queue (delivered, bounced or refused)."""
        deadline = time.monotonic() + timeout
        while self.queue_files():
            if time.monotonic() > deadline:
                pytest.fail(f"postfix {self.host}:{self.port}: queue not empty after "
                            f"{timeout} s\n{self._diagnose()}", pytrace=False)
            time.sleep(0.02)

    def clear_mail(self):
        for p in sorted(self.mail_root.glob("*/*")):
            if p.name in ("new", "cur", "tmp"):
                for f in p.iterdir():
                    f.unlink()

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_log(self, regex, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(regex, self.log(), re.M)
            if m:
                return m
            if time.monotonic() > deadline:
                pytest.fail(f"postfix {self.host}:{self.port}: no {regex!r} in its log after "
                            f"{timeout} s\n{self._diagnose()}", pytrace=False)
            time.sleep(0.02)

    def __repr__(self):
        return f"<Postfix {self.hostname} {self.host}:{self.port} dir={self.dir}>"


def _stop_all():
    for pf in list(_running):
        pf.stop()


atexit.register(_stop_all)


# ---------------------------------------------------------------------------
# fixtures


@pytest.fixture
def start_postfix(tmp_path):
    """Factory: start_postfix(domains, users, literals, tls, ipv6, host, port,
    hostname, resolve_numeric_domain, message_size_limit, main_cf, files)
    -> Postfix (see the module docstring)."""
    _require_postfix()
    _sweep_stale()
    started = []

    def start(domains=("example.test",), users=("user",), literals=None, tls=False,
              ipv6=False, host="127.0.0.1", port=None, **kw):
        failures = []
        fixed_port = port is not None
        for attempt in range(3):    # a port taken between the check and the bind: retry
            pf = Postfix(tmp_path / f"postfix{len(started)}", domains=domains, users=users,
                         literals=literals, tls=tls, ipv6=ipv6, host=host, port=port, **kw)
            started.append(pf)
            if fixed_port:
                taken = _port_taken(host, port, pf.host6)
                if taken:
                    pytest.fail(f"postfix: {host}:{port} is already in use: {taken}",
                                pytrace=False)
            else:
                pf.port = _pick_port(host, ipv6)
            pf.write()
            problem = pf.start()
            if problem is None:
                return pf
            failures.append(f"attempt {attempt + 1} ({host}:{pf.port}): {problem}\n"
                            f"--- {pf.out_path} ---\n{_read(pf.out_path)}"
                            f"--- {pf.log_path} ---\n{pf.log()}")
            if fixed_port or not re.search(r"does not hold|address already in use",
                                           problem + pf.log(), re.I):
                break
        pytest.fail("could not start postfix:\n" + "\n".join(failures), pytrace=False)

    yield start

    problems = []
    for pf in started:
        problems += [f"{pf}: {p}" for p in pf.stop()]
        print(f"--- {pf.log_path} ({pf.host}:{pf.port}) ---\n{pf.log()}")
    if problems:
        pytest.fail("postfix teardown: " + "; ".join(problems), pytrace=False)


@pytest.fixture
def postfix(start_postfix):
    """A Postfix on 127.0.0.1 with the defaults: user@example.test and
    user@[127.0.0.1] -> Maildir "user"."""
    return start_postfix()


def _read(path):
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""
