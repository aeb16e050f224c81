"""rawmail send and its sendmail entry read rawmail.conf(5) (issue 9): the
[delivery] and [send] sections give cron and PHP, which pass no options,
the site's settings; flags override the file; a key the section does not
know is an error naming the file, the line and the key.

Every file here names the test's NSD (or only address literals are used),
so nothing asks this machine's resolver."""

import os
import pwd

import pytest

from dns_util import nsd  # noqa: F401 (fixture)
from helpers import Delivered, assert_no_mail, free_port, mailbox_messages, sample_message
from send_util import send

ZONE = """\
@             MX 10 mx1
mx1           A 127.0.0.2
"""

NODOT_HOST = "rawmailtestvm"


@pytest.fixture
def port():
    return free_port()


@pytest.fixture
def dns(nsd):
    return nsd({"example.test": ZONE})


@pytest.fixture
def mx(start_server, port):
    """The MX of example.test: a rawmail serve on 127.0.0.2."""
    return start_server(listen=[f"127.0.0.2:{port}"])


def conf(tmp_path, text, name="rawmail.conf"):
    path = tmp_path / name
    path.write_text(text)
    return path


def delivered(srv, user="user"):
    [data] = mailbox_messages(srv.mailroot, user, wait=5)
    return Delivered(data)


def login():
    return pwd.getpwuid(os.geteuid()).pw_name


@pytest.mark.parametrize("how", ["RAWMAIL_CONF", "-c", "--config"])
def test_delivery_section_sends_with_no_flags(tmp_path, dns, mx, port, how):
    """[delivery] port and dns: `rawmail send user@example.test` with no
    option finds the MX through the file's resolver and the file's port."""
    path = conf(tmp_path, f"[delivery]\ndns = {dns.addr}\nport = {port}\n"
                          "tls = none\n")
    env, args = {}, []
    if how == "RAWMAIL_CONF":
        env["RAWMAIL_CONF"] = str(path)
    else:
        args = [how, str(path)]
    send([*args, "-f", "alice@client.test", "user@example.test"], sample_message("conf"),
         env=env, dns_guard=False, expect="ok")
    assert delivered(mx).return_path == "<alice@client.test>"


def test_sendmail_link_reads_the_file(tmp_path, dns, mx, port):
    """cron's command line, nothing but -t -i and the message: the link
    takes the site's [delivery] and [send] from RAWMAIL_CONF."""
    path = conf(tmp_path, f"[send]\norigin = client.test\n"
                          f"[delivery]\ndns = {dns.addr}\nport = {port}\n")
    msg = "To: user@example.test\nSubject: Cron <root@vm> backup\n\nall good\n"
    s = send(["-t", "-i"], msg, argv0="sendmail", cwd=tmp_path,
             env={"RAWMAIL_CONF": str(path)}, dns_guard=False, expect="ok")
    assert "warning" not in s.err and "rawmail.conf" not in s.err, s
    d = delivered(mx)
    assert d.return_path == f"<{login()}@client.test>"
    assert f"From: {login()}@client.test".encode() in d.body


def test_flags_override_the_file(tmp_path, dns, mx, port):
    """The file's port is closed; --port on the command line wins.  The
    file's tls = require is overridden by --tls none (serve here offers
    STARTTLS, so this only shows the flag is taken: a require against a
    resolver that does not exist would fail first)."""
    dead = free_port()
    path = conf(tmp_path, f"[delivery]\ndns = 127.0.0.1:1\nport = {dead}\ntls = require\n"
                          "timeout = 5\n")
    env = {"RAWMAIL_CONF": str(path)}
    # The file alone: its resolver does not answer, so nothing is sent.
    s = send(["-f", "alice@client.test", "user@example.test"], sample_message("x"),
             env=env, dns_guard=False)
    assert s.rc == 75, s
    s = send(["-v", "--dns", dns.addr, "--port", port, "--tls", "none", "-f",
              "alice@client.test", "user@example.test"], sample_message("flags"), env=env,
             expect="ok")
    assert "STARTTLS" not in "\n".join(s.commands()), s
    assert delivered(mx).return_path == "<alice@client.test>"


def test_flag_config_wins_over_environment(tmp_path, dns, mx, port):
    bad = conf(tmp_path, "[delivery]\nport = 0\n", name="bad.conf")
    good = conf(tmp_path, f"[delivery]\ndns = {dns.addr}\nport = {port}\n")
    send(["-c", str(good), "-f", "alice@client.test", "user@example.test"],
         sample_message("env"), env={"RAWMAIL_CONF": str(bad)}, dns_guard=False, expect="ok")
    delivered(mx)


@pytest.mark.parametrize("argv0, prog", [(None, "rawmail send"), ("sendmail", "sendmail")])
def test_unknown_key_is_an_error_naming_file_line_key(tmp_path, mx, port, argv0, prog):
    path = conf(tmp_path, f"# site settings\n[delivery]\nport = {port}\n"
                          "smarthost = smtp.example.org\n")
    s = send(["-f", "alice@client.test", "user@[127.0.0.2]"], sample_message("bad"),
             argv0=argv0, cwd=tmp_path, env={"RAWMAIL_CONF": str(path)})
    assert s.rc == 78, s
    assert f"{prog}: {path}:4: unknown setting 'smarthost' in [delivery]" in s.err, s
    assert_no_mail(mx.mailroot)


def test_bad_value_and_missing_file(tmp_path, mx):
    path = conf(tmp_path, "[send]\norigin = example.org\n\n[delivery]\nfamily = ipv9\n")
    s = send(["-f", "alice@client.test", "user@[127.0.0.2]"], sample_message("x"),
             env={"RAWMAIL_CONF": str(path)})
    assert s.rc == 78, s
    assert f"{path}:5: family 'ipv9': use 4, 6 or auto" in s.err, s
    s = send(["-c", str(tmp_path / "none.conf"), "user@[127.0.0.2]"], sample_message("x"))
    assert s.rc == 78 and "none.conf: cannot open: No such file or directory" in s.err, s


def test_file_values_checked_where_they_are_used(tmp_path):
    """A sender from the file that is not an address is the file's fault
    (78, named as the file's); a literal that the file's family excludes
    says it is the file's setting."""
    path = conf(tmp_path, "[send]\nfrom = webmaster\n")
    s = send(["-c", str(path), "user@[127.0.0.2]"], sample_message("x"))
    assert s.rc == 78 and f"rawmail send: from in {path} 'webmaster': " in s.err, s
    s = send(["-c", str(path), "-f", "a@client.test", "--port", "1", "-4", "user@[IPv6:::1]"],
             sample_message("x"))
    assert s.rc == 64 and "an IPv6 address, but -4 was given" in s.err, s
    path = conf(tmp_path, "[delivery]\nfamily = 6\n")
    s = send(["-c", str(path), "-f", "a@client.test", "user@[127.0.0.2]"], sample_message("x"))
    assert s.rc == 64, s
    assert "an IPv4 address, but family = 6 is set in the settings file" in s.err, s


def test_serve_shares_the_file(tmp_path, start_server, port):
    """One rawmail.conf for every command: serve reads its own keys and
    skips [send], [delivery] and [queue]."""
    path = conf(tmp_path, f"[serve]\nlisten = 127.0.0.2:{port}\nmailroot = {tmp_path}/m\n"
                          "[send]\norigin = client.test\n[delivery]\nport = 2525\n"
                          "[queue]\nretry-schedule = 1m\n")
    srv = start_server("-c", path, listen=[f"127.0.0.2:{port}"], mailroot=tmp_path / "m",
                       listen_in_config=True)
    send(["-c", str(path), "--port", port, "-f", "a@client.test", "user@[127.0.0.2]"],
         sample_message("shared"), expect="ok")
    delivered(srv)


def test_origin_is_the_default_sender_domain(tmp_path, mx, port):
    path = conf(tmp_path, "[send]\norigin = Client.Test\n")
    send(["-c", str(path), "--port", port, "-s", "hello", "user@[127.0.0.2]"], "text\n",
         hostname=NODOT_HOST, expect="ok")
    d = delivered(mx)
    assert d.return_path == f"<{login()}@client.test>"
    assert f"From: {login()}@client.test".encode() in d.body


@pytest.mark.parametrize("argv0, verbose, warned", [
    (None, False, True),          # rawmail send: said, the user is at the terminal
    ("sendmail", False, False),   # the sendmail entry: silent, as Postfix's
    ("sendmail", True, True),     # ... unless -v
])
def test_no_dot_warning_only_for_send_or_verbose(tmp_path, mx, port, argv0, verbose, warned):
    args = ["-v"] if verbose else []
    s = send([*args, "--port", port, "user@[127.0.0.2]"], "Subject: x\n\ny\n", argv0=argv0,
             cwd=tmp_path, hostname=NODOT_HOST, env={"RAWMAIL_CONF": ""}, expect="ok")
    assert ("is not a public domain" in s.err) == warned, s
    assert ("warning" in s.err) == warned, s


@pytest.mark.parametrize("key, value, why", [
    ("retry-schedule", "5m,soon", "retry-schedule '5m,soon': "),
    ("max-queue-lifetime", "5x", "max-queue-lifetime '5x': "),
    ("max-queue-lifetime", "0", "max-queue-lifetime '0': at least 1 second"),
    ("delay-warning", "tomorrow", "delay-warning 'tomorrow': "),
])
@pytest.mark.parametrize("command", ["send", "sendmail", "queue run", "serve"])
def test_bad_queue_value_is_a_settings_error(tmp_path, key, value, why, command):
    """A malformed [queue] duration is the settings file's fault: 78
    (EX_CONFIG) and FILE:LINE, as for [delivery] and [send], whichever
    command reads it."""
    from queue_util import rawmail
    path = conf(tmp_path, f"# site\n[queue]\nspool = {tmp_path}/spool\n{key} = {value}\n")
    if command == "send":
        s = send(["-c", str(path), "-f", "a@client.test", "user@[127.0.0.2]"],
                 sample_message("x"))
    elif command == "sendmail":
        s = send(["user@[127.0.0.2]"], sample_message("x"), argv0="sendmail", cwd=tmp_path,
                 env={"RAWMAIL_CONF": str(path)})
    elif command == "queue run":
        s = rawmail(["queue", "run", "-c", path], timeout=30)
    else:
        s = rawmail(["serve", "-c", path, "--listen", f"127.0.0.2:{free_port()}",
                     "--mailroot", tmp_path / "m"], timeout=30)
    assert s.rc == 78, s
    assert f"{path}:4: {why}" in s.err, s


def test_conflicting_delivery_keys_are_a_settings_error(tmp_path):
    """tls-fingerprint with tls = none, both from the file: the file is
    wrong (78, named), not the command line (64)."""
    from queue_util import rawmail
    pin = "SHA256:" + "ab" * 32
    path = conf(tmp_path, f"[delivery]\ntls = none\ntls-fingerprint = {pin}\n")
    s = send(["-c", str(path), "-f", "a@client.test", "user@[127.0.0.2]"], sample_message("x"))
    assert s.rc == 78 and f"{path}: " in s.err and "needs TLS" in s.err, s
    s = rawmail(["queue", "run", "-c", path, "--spool", tmp_path / "spool"], timeout=30)
    assert s.rc == 78 and f"{path}: " in s.err, s
    # A flag that settles it is fine: --tls require wins over the file's none.
    s = send(["-c", str(path), "--tls", "require", "--port", "1", "-f", "a@client.test",
              "--no-queue", "user@[127.0.0.2]"], sample_message("x"))
    assert s.rc not in (64, 78), s
    # A CA file the file names that cannot be read: the file's fault too.
    path = conf(tmp_path, "[delivery]\ntls = verify\ncafile = /nonexistent/ca.pem\n")
    s = send(["-c", str(path), "-f", "a@client.test", "--port", "1", "user@[127.0.0.2]"],
             sample_message("x"))
    assert s.rc == 78 and "/nonexistent/ca.pem" in s.err, s
    s = rawmail(["queue", "run", "-c", path, "--spool", tmp_path / "spool"], timeout=30)
    assert s.rc == 78 and "/nonexistent/ca.pem" in s.err, s
