"""rawmail as a client of a smarthost (issue 10, "Relaying through a
smarthost"): --relay, smtps://, AUTH PLAIN/LOGIN, --route and [routes],
the queue's [delivery] relay.

The smarthost is scripted here with raw sockets and the ssl module: it
requires STARTTLS (or speaks implicit TLS), offers AUTH only under TLS
(or, when told, in plaintext), refuses MAIL before AUTH (530 5.7.0), and
records every line with whether it came through TLS, the credentials it
decoded, and the messages.  Certificates come from tls_util's test PKI
(SANs mx.example.test, 127.0.0.1, ::1)."""

import base64
import os
import select
import socket
import ssl
import threading
import time

import pytest

from queue_util import entries, rawmail, write_entry
from postfix_util import start_postfix  # noqa: F401  (fixture)
from send_util import fresh_spool, send
from dns_util import nsd  # noqa: F401  (fixture)
from tls_util import pki  # noqa: F401  (fixture)

USER = "relayuser@example.net"
PASSWORD = "s3cret pass\u00e9word"   # a space and UTF-8: sent as they are
MSG = b"From: alice@client.test\r\nTo: bob@example.org\r\nSubject: relayed\r\n\r\nhello\r\n"


class Smarthost:
    """One listening socket on host (any free port), serving connections
    one after the other in a thread.

      starttls    offer STARTTLS (needs tls_context)
      implicit    TLS from the first octet (smtps, RFC 8314)
      mechs       AUTH mechanisms offered (under TLS, or always with
                  auth_plaintext)
      require_auth  MAIL before AUTH gets 530 5.7.0
      password    the one accepted for USER

    Recorded: lines [(tls, bytes)], auths [(mech, user, password)],
    messages [(mail, [rcpts], data)], tls_errors."""

    def __init__(self, ctx=None, host="127.0.0.1", starttls=True, implicit=False,
                 mechs=("PLAIN", "LOGIN"), auth_plaintext=False, require_auth=True,
                 password=PASSWORD, family=socket.AF_INET):
        self.ctx, self.starttls, self.implicit = ctx, starttls, implicit
        self.mechs, self.auth_plaintext, self.require_auth = mechs, auth_plaintext, require_auth
        self.password = password
        self.lines, self.auths, self.messages, self.tls_errors = [], [], [], []
        self.connections = 0
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def close(self):
        self._stop.set()
        self.thread.join(10)
        self.sock.close()

    def commands(self):
        return [l for _, l in self.lines]

    def _run(self):
        while not self._stop.is_set():
            r, _, _ = select.select([self.sock], [], [], 0.05)
            if not r:
                continue
            c, _ = self.sock.accept()
            self.connections += 1
            c.settimeout(15)
            try:
                self._serve(c)
            except (OSError, ValueError) as e:
                self.tls_errors.append(str(e))
            finally:
                c.close()

    def _serve(self, c):
        # Replies go out at once (Nagle would hold each small one).
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tls = False
        if self.implicit:
            c = self.ctx.wrap_socket(c, server_side=True)
            tls = True
        f = c.makefile("rb")

        def say(data):
            c.sendall(data)

        def readline():
            line = f.readline(20000)
            if not line:
                raise EOFError
            line = line.rstrip(b"\r\n")
            self.lines.append((tls, line))
            return line

        say(b"220 smarthost.test ESMTP\r\n")
        authed = False
        mail, rcpts = None, []
        try:
            while True:
                line = readline()
                verb = line.split(b" ")[0].upper()
                if verb == b"EHLO":
                    ext = [b"smarthost.test", b"PIPELINING", b"8BITMIME"]
                    if self.starttls and not tls:
                        ext.append(b"STARTTLS")
                    if self.mechs and (tls or self.auth_plaintext):
                        ext.append(b"AUTH " + " ".join(self.mechs).encode())
                    say(b"".join((b"250-" if i < len(ext) - 1 else b"250 ") + e + b"\r\n"
                                 for i, e in enumerate(ext)))
                elif verb == b"STARTTLS" and self.starttls and not tls:
                    say(b"220 2.0.0 go ahead\r\n")
                    f.close()
                    c = self.ctx.wrap_socket(c, server_side=True)
                    f = c.makefile("rb")
                    tls = True
                elif verb == b"AUTH":
                    parts = line.split(b" ")
                    mech = parts[1].upper().decode()
                    if mech == "PLAIN":
                        if len(parts) > 2:
                            resp = parts[2]
                        else:
                            say(b"334 \r\n")
                            resp = readline()
                        _, user, pw = base64.b64decode(resp).split(b"\0")
                    elif mech == "LOGIN":
                        say(b"334 VXNlcm5hbWU6\r\n")
                        user = base64.b64decode(readline())
                        say(b"334 UGFzc3dvcmQ6\r\n")
                        pw = base64.b64decode(readline())
                    else:
                        say(b"504 5.5.4 unknown mechanism\r\n")
                        continue
                    self.auths.append((mech, user.decode(), pw.decode()))
                    if user.decode() == USER and pw.decode() == self.password:
                        authed = True
                        say(b"235 2.7.0 Authentication successful\r\n")
                    else:
                        say(b"535 5.7.8 Authentication credentials invalid\r\n")
                elif verb == b"MAIL":
                    if self.require_auth and not authed:
                        say(b"530 5.7.0 Authentication required\r\n")
                        continue
                    mail, rcpts = line, []
                    say(b"250 2.1.0 ok\r\n")
                elif verb == b"RCPT":
                    rcpts.append(line)
                    say(b"250 2.1.5 ok\r\n")
                elif verb == b"DATA":
                    if not rcpts:
                        say(b"554 5.5.1 no valid recipients\r\n")
                        continue
                    say(b"354 go\r\n")
                    data = bytearray()
                    while True:
                        l = f.readline(20000)
                        if not l or l == b".\r\n":
                            break
                        data += l
                    self.messages.append((mail, rcpts, bytes(data)))
                    say(b"250 2.0.0 queued as X\r\n")
                elif verb == b"RSET":
                    mail, rcpts = None, []
                    say(b"250 2.0.0 ok\r\n")
                elif verb == b"QUIT":
                    say(b"221 2.0.0 bye\r\n")
                    return
                else:
                    say(b"502 5.5.1 what\r\n")
        except EOFError:
            return


@pytest.fixture
def server_ctx(pki):  # noqa: F811
    def make(name="mx"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki.cert(name), pki.key(name))
        return ctx
    return make


@pytest.fixture
def hosts():
    made = []

    def make(*a, **kw):
        h = Smarthost(*a, **kw)
        made.append(h)
        return h
    yield make
    for h in made:
        h.close()


@pytest.fixture
def pwfile(tmp_path):
    p = tmp_path / "relay.pw"
    p.write_text(PASSWORD + "\n", encoding="utf-8")
    p.chmod(0o600)
    return p


def auth_args(pwfile):
    return ["--auth-user", USER, "--auth-password-file", pwfile]


def secret_forms():
    """The password as it could leak: clear, and inside base64 PLAIN or LOGIN."""
    pw = PASSWORD.encode()
    return [pw, base64.b64encode(b"\0" + USER.encode() + b"\0" + pw), base64.b64encode(pw)]


def assert_no_secret(text):
    if isinstance(text, str):
        text = text.encode()
    for form in secret_forms():
        assert form not in text, text


def test_plain_after_starttls_verified(hosts, server_ctx, pki, pwfile):  # noqa: F811
    h = hosts(server_ctx())
    s = send(["-v", "--relay", f"127.0.0.1:{h.port}", "--cafile", pki.ca, *auth_args(pwfile),
              "-f", "alice@client.test", "bob@example.org", "carol@example.com"], MSG,
             expect="ok")
    assert h.auths == [("PLAIN", USER, PASSWORD)]
    # Nothing of AUTH (nor MAIL) before TLS.
    assert all(tls for tls, l in h.lines if l.upper().startswith((b"AUTH", b"MAIL"))), h.lines
    assert [l for tls, l in h.lines if not tls] == [b"EHLO " + h.lines[0][1][5:], b"STARTTLS"]
    rcpts = sorted(r for m in h.messages for r in m[1])
    assert rcpts == [b"RCPT TO:<bob@example.org>", b"RCPT TO:<carol@example.com>"]
    assert b"hello" in h.messages[0][2]
    # -v: the relay named, the credentials hidden.
    assert "C> AUTH PLAIN <hidden>" in s.err, s
    assert_no_secret(s.err)
    assert_no_secret(s.out)
    assert f"-- connecting to relay [127.0.0.1]:{h.port}" in s.err or \
        f"-- connecting to relay 127.0.0.1 [127.0.0.1]:{h.port}" in s.err, s
    assert ", verified" in s.err, s
    assert f"delivered via relay [127.0.0.1]:{h.port}" in s.result("bob@example.org"), s


def test_login_when_only_login_offered(hosts, server_ctx, pki, pwfile):  # noqa: F811
    h = hosts(server_ctx(), mechs=("LOGIN",))
    s = send(["-v", "--relay", f"127.0.0.1:{h.port}", "--cafile", pki.ca, *auth_args(pwfile),
              "-f", "alice@client.test", "bob@example.org"], MSG, expect="ok")
    assert h.auths == [("LOGIN", USER, PASSWORD)]
    assert s.commands().count("<hidden>") == 2, s
    assert "C> AUTH LOGIN" in s.err
    assert_no_secret(s.err)
    assert len(h.messages) == 1


def test_smtps_implicit_tls(hosts, server_ctx, pki, pwfile):  # noqa: F811
    h = hosts(server_ctx(), implicit=True, starttls=False)
    s = send(["-v", "--relay", f"smtps://127.0.0.1:{h.port}", "--cafile", pki.ca,
              *auth_args(pwfile), "-f", "alice@client.test", "bob@example.org"], MSG,
             expect="ok")
    assert h.auths == [("PLAIN", USER, PASSWORD)]
    assert all(tls for tls, _ in h.lines)
    assert b"STARTTLS" not in h.commands()
    assert len(h.messages) == 1
    assert "(implicit TLS)" in s.err, s


@pytest.mark.parametrize("cert", ["untrusted", "wrongname", "selfsigned"])
def test_certificate_not_verified_nothing_sent(hosts, server_ctx, pki, pwfile, cert):  # noqa: F811
    h = hosts(server_ctx(cert))
    spool = fresh_spool()
    s = send(["--spool", spool, "--relay", f"127.0.0.1:{h.port}", "--cafile", pki.ca,
              *auth_args(pwfile), "-f", "alice@client.test", "bob@example.org"], MSG,
             expect="tempfail")
    # The handshake failed: after STARTTLS nothing, no AUTH, no MAIL.
    assert h.commands()[-1] == b"STARTTLS", h.lines
    assert not h.auths and not h.messages
    assert "certificate" in s.result("bob@example.org"), s
    assert len(entries(spool)) == 1


def test_relay_without_starttls_refused(hosts, pwfile, pki):  # noqa: F811
    # Port 587 mode requires STARTTLS: a relay that does not offer it
    # gets no credentials and no mail (even at 127.0.0.1).
    h = hosts(None, starttls=False, auth_plaintext=True)
    s = send(["--relay", f"127.0.0.1:{h.port}", *auth_args(pwfile), "-f", "alice@client.test",
              "bob@example.org"], MSG, expect="tempfail")
    assert not any(l.upper().startswith((b"AUTH", b"MAIL")) for l in h.commands()), h.lines
    assert "STARTTLS not offered" in s.result("bob@example.org"), s


def test_plaintext_auth_only_to_loopback(hosts, pwfile):
    # --tls none: to 127.0.0.1 the password may go in plaintext ...
    h = hosts(None, starttls=False, auth_plaintext=True)
    send(["--tls", "none", "--relay", f"127.0.0.1:{h.port}", *auth_args(pwfile),
          "-f", "alice@client.test", "bob@example.org"], MSG, expect="ok")
    assert h.auths == [("PLAIN", USER, PASSWORD)]
    assert len(h.messages) == 1
    # ... to 127.0.0.2 (not this machine's own address for us) never.
    h2 = hosts(None, host="127.0.0.2", starttls=False, auth_plaintext=True)
    s = send(["--tls", "none", "--relay", f"127.0.0.2:{h2.port}", *auth_args(pwfile),
              "-f", "alice@client.test", "bob@example.org"], MSG, expect="tempfail")
    assert not any(l.upper().startswith((b"AUTH", b"MAIL")) for l in h2.commands()), h2.lines
    assert "without TLS" in s.result("bob@example.org"), s
    assert_no_secret(bytes(b"".join(l for _, l in h2.lines)))


def test_wrong_password_stays_queued(hosts, server_ctx, pki, tmp_path):  # noqa: F811
    h = hosts(server_ctx(), password="another one")
    bad = tmp_path / "bad.pw"
    bad.write_text(PASSWORD + "\n")
    bad.chmod(0o600)
    spool = fresh_spool()
    s = send(["--spool", spool, "--relay", f"127.0.0.1:{h.port}", "--cafile", pki.ca,
              *auth_args(bad), "-f", "alice@client.test", "bob@example.org"], MSG,
             expect="tempfail")
    r = s.result("bob@example.org")
    assert "535" in r and "temporary" in r, s
    assert "--auth-password-file" in r, s
    assert not h.messages and not any(l.startswith(b"MAIL") for l in h.commands())
    assert len(entries(spool)) == 1
    assert_no_secret(s.err)
    # The queue keeps the reply and whose setting to fix; a run with the
    # password fixed delivers.
    [qid] = entries(spool)
    show = rawmail(["queue", "show", "--spool", spool, qid])
    assert "535 5.7.8" in show.out and "--auth-user" in show.out, show
    h.password = PASSWORD
    r = rawmail(["queue", "flush", "--spool", spool, "--dns", "127.0.0.1:1", "--relay",
                 f"127.0.0.1:{h.port}", "--cafile", pki.ca, *auth_args(bad)])
    assert r.rc == 0, r
    assert len(h.messages) == 1 and entries(spool) == []
    assert_no_secret(r.err)


def test_no_auth_offered(hosts, server_ctx, pki, pwfile):  # noqa: F811
    h = hosts(server_ctx(), mechs=())
    s = send(["--relay", f"127.0.0.1:{h.port}", "--cafile", pki.ca, *auth_args(pwfile),
              "-f", "alice@client.test", "bob@example.org"], MSG, expect="tempfail")
    assert "offers no AUTH" in s.result("bob@example.org"), s
    assert not h.messages


def test_password_file_problems(tmp_path, pwfile):
    empty = tmp_path / "empty.pw"
    empty.write_text("\nsecond line\n")
    for f, words in ((tmp_path / "missing.pw", "cannot read"), (empty, "empty")):
        s = send(["--relay", "127.0.0.1:1", "--auth-user", USER, "--auth-password-file", f,
                  "-f", "alice@client.test", "bob@example.org"], MSG, expect=78)
        assert words in s.err and str(f) in s.err, s
    pwfile.chmod(0o644)
    s = send(["--dry-run", "--relay", "127.0.0.1:1", *auth_args(pwfile), "-f",
              "alice@client.test", "bob@example.org"], MSG)
    assert "may be read by other users" in s.err, s
    s = send(["--auth-user", USER, "--auth-password-file", pwfile, "bob@example.org"], MSG,
             expect="usage")
    assert "--relay" in s.err


def test_route_without_dns(hosts):
    # The lab network: lab.test has no DNS (the resolver given answers
    # nothing), its host is given by address; port 25's rules (no AUTH,
    # opportunistic TLS).
    h = hosts(None, host="127.0.0.3", starttls=False, mechs=(), require_auth=False)
    s = send(["-v", "--route", f"LAB.test=127.0.0.3:{h.port}", "-f", "alice@client.test",
              "bob@lab.test"], MSG, expect="ok")
    assert [m[1] for m in h.messages] == [[b"RCPT TO:<bob@lab.test>"]]
    assert f"delivered via route [127.0.0.3]:{h.port}" in s.result("bob@lab.test"), s


def test_route_wins_over_relay(hosts, server_ctx, pki, pwfile):  # noqa: F811
    relay = hosts(server_ctx())
    lab = hosts(None, host="127.0.0.4", starttls=False, mechs=(), require_auth=False)
    send(["--relay", f"127.0.0.1:{relay.port}", "--cafile", pki.ca, *auth_args(pwfile),
          "--route", f"lab.test=127.0.0.4:{lab.port}", "-f", "alice@client.test",
          "bob@lab.test", "carol@example.org"], MSG, expect="ok")
    assert [m[1] for m in lab.messages] == [[b"RCPT TO:<bob@lab.test>"]]
    assert [m[1] for m in relay.messages] == [[b"RCPT TO:<carol@example.org>"]]
    assert not any(l.startswith(b"AUTH") for l in lab.commands())


def test_address_literal_not_relayed(hosts, server_ctx, pki, pwfile):  # noqa: F811
    # An address literal names its host: delivered there (port --port),
    # not through the relay.
    relay = hosts(server_ctx())
    direct = hosts(None, host="127.0.0.6", starttls=False, mechs=(), require_auth=False)
    send(["--port", direct.port, "--relay", f"127.0.0.1:{relay.port}", "--cafile", pki.ca,
          *auth_args(pwfile), "-f", "alice@client.test", "bob@[127.0.0.6]", "carol@example.org"],
         MSG, expect="ok")
    assert [m[1] for m in direct.messages] == [[b"RCPT TO:<bob@[127.0.0.6]>"]]
    assert [m[1] for m in relay.messages] == [[b"RCPT TO:<carol@example.org>"]]


def test_queue_run_uses_relay_from_config(hosts, server_ctx, pki, pwfile, tmp_path):  # noqa: F811
    h = hosts(server_ctx())
    lab = hosts(None, host="127.0.0.5", starttls=False, mechs=(), require_auth=False)
    conf = tmp_path / "rawmail.conf"
    conf.write_text(f"[delivery]\nrelay = 127.0.0.1:{h.port}\ncafile = {pki.ca}\n"
                    f"auth-user = {USER}\nauth-password-file = {pwfile}\ndns = 127.0.0.1:1\n"
                    f"[routes]\nlab.test = 127.0.0.5:{lab.port}\n")
    spool = tmp_path / "spool"
    write_entry(spool, "06B154E07658CE179A7A70",
                [{"addr": "bob@example.org"}, {"addr": "dave@lab.test"}], message=MSG)
    r = rawmail(["queue", "run", "--spool", spool, "-c", conf], timeout=60)
    assert r.rc == 0, r
    assert h.auths == [("PLAIN", USER, PASSWORD)]
    assert [m[1] for m in h.messages] == [[b"RCPT TO:<bob@example.org>"]]
    assert [m[1] for m in lab.messages] == [[b"RCPT TO:<dave@lab.test>"]]
    assert entries(spool) == []
    assert_no_secret(r.err)


# A relay by name: A/AAAA only (its MX, pointing nowhere, is not asked),
# the certificate checked for the name, which is sent as SNI.
RELAY_ZONE = """\
mx            A 127.0.0.1
mx            AAAA ::1
mx            MX 10 nowhere
nowhere       A 127.0.0.9
"""


@pytest.mark.parametrize("family", ["-4", "-6"])
def test_relay_by_name_verified(hosts, server_ctx, pki, pwfile, nsd, family):  # noqa: F811
    dns = nsd({"example.test": RELAY_ZONE})
    ctx = server_ctx()
    seen = []
    ctx.sni_callback = lambda sslobj, name, c: seen.append(name)
    if family == "-4":
        h = hosts(ctx)
    else:
        h = hosts(ctx, host="::1", family=socket.AF_INET6)
    s = send(["-v", family, "--dns", dns.addr, "--relay", f"mx.example.test:{h.port}",
              "--cafile", pki.ca, *auth_args(pwfile), "-f", "alice@client.test",
              "bob@example.org"], MSG, expect="ok")
    assert seen == ["mx.example.test"]
    assert h.auths == [("PLAIN", USER, PASSWORD)]
    ip = "127.0.0.1" if family == "-4" else "::1"
    assert f"delivered via relay mx.example.test [{ip}]:{h.port}" in s.result("bob@example.org")
    # --tls verify says the same for the relay (and would for an MX).
    h.auths.clear()
    send([family, "--dns", dns.addr, "--tls", "verify", "--relay", f"mx.example.test:{h.port}",
          "--cafile", pki.ca, *auth_args(pwfile), "-f", "alice@client.test", "bob@example.org"],
         MSG, expect="ok")
    assert h.auths == [("PLAIN", USER, PASSWORD)]


def test_relay_name_wrong_certificate_and_require(hosts, server_ctx, pki, pwfile, nsd):  # noqa: F811
    # wrongname holds wrong.example.test only: refused by default, taken
    # with --tls require (unverified), or with its pin.
    dns = nsd({"example.test": RELAY_ZONE})
    h = hosts(server_ctx("wrongname"))
    base = ["-4", "--dns", dns.addr, "--relay", f"mx.example.test:{h.port}", "--cafile", pki.ca,
            *auth_args(pwfile), "-f", "alice@client.test", "bob@example.org"]
    s = send(base, MSG, expect="tempfail")
    assert "name" in s.result("bob@example.org"), s
    assert not h.auths and not h.messages
    send(["--tls", "require", *base[:5], *base[7:]], MSG, expect="ok")
    assert len(h.messages) == 1
    send(["--tls-fingerprint", pki.pin("wrongname"), *base[:5], *base[7:]], MSG, expect="ok")
    assert len(h.messages) == 2
    s = send(["--tls-fingerprint", pki.pin("mx"), *base[:5], *base[7:]], MSG, expect="tempfail")
    assert len(h.messages) == 2 and len(h.auths) == 2


def test_sendmail_entry_runner_uses_relay(hosts, server_ctx, pki, pwfile, tmp_path):  # noqa: F811
    # cron's sendmail: no options; the settings file names the relay, the
    # background runner (rawmail queue run --gather, given the settings as
    # flags) delivers through it.
    h = hosts(server_ctx())
    spool = tmp_path / "spool"
    conf = tmp_path / "rawmail.conf"
    conf.write_text(f"[delivery]\nrelay = 127.0.0.1:{h.port}\n"
                    f"cafile = {pki.ca}\nauth-user = {USER}\nauth-password-file = {pwfile}\n"
                    "dns = 127.0.0.1:1\n")
    s = send(["--spool", spool, "-i", "bob@example.org"], "Subject: cron\n\nx\n",
             argv0="sendmail", cwd=tmp_path,
             env={"RAWMAIL_CONF": str(conf)}, dns_guard=False, expect="ok")
    assert s.err == "", s
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not h.messages:
        time.sleep(0.1)
    assert [m[1] for m in h.messages] == [[b"RCPT TO:<bob@example.org>"]], h.lines
    assert h.auths == [("PLAIN", USER, PASSWORD)]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and entries(spool):
        time.sleep(0.1)
    assert entries(spool) == []


def test_serve_reads_routes_section(tmp_path, start_server):
    # [routes] belongs to the queue's settings: rawmail serve starts with
    # it in the shared file (an unknown section would stop it).
    conf = tmp_path / "serve.conf"
    conf.write_text("[routes]\nlab.test = 192.168.1.100\n")
    srv = start_server("--config", conf)
    assert srv.proc.poll() is None


def test_route_to_postfix_lab_domain(start_postfix, hosts, server_ctx, pki, pwfile):  # noqa: F811
    # The lab network: lab.test lives at a Postfix on 127.0.0.7, with no
    # DNS at all (the resolver given answers nothing); the relay takes the
    # rest.  Postfix offers STARTTLS: opportunistic TLS as for an MX.
    pf = start_postfix(domains=("lab.test",), users=("user",), host="127.0.0.7", tls=True)
    relay = hosts(server_ctx())
    s = send(["-v", "--relay", f"127.0.0.1:{relay.port}", "--cafile", pki.ca,
              *auth_args(pwfile), "--route", f"lab.test=127.0.0.7:{pf.port}",
              "-f", "alice@client.test", "user@lab.test", "carol@example.org"], MSG,
             expect="ok")
    [data] = pf.wait_for_mail("user")
    assert b"Subject: relayed" in data and b"with ESMTPS" in data
    assert f"delivered via route [127.0.0.7]:{pf.port}" in s.result("user@lab.test"), s
    assert [m[1] for m in relay.messages] == [[b"RCPT TO:<carol@example.org>"]]
