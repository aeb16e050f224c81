"""DKIM signing (issue 11, "DKIM"): keys from `rawmail dkim keygen`, their
TXT records published by the test's NSD exactly as keygen printed them,
messages signed by `rawmail send` (flags or [dkim] in the settings file)
and received by a scripted SMTP peer, then verified by verifiers nobody
here wrote:

- dkimpy (Debian python3-dkim), reading the key from the NSD over DNS;
- OpenDKIM's opendkim-testmsg (Debian opendkim-tools), which resolves with
  glibc (port 53 only): it runs in a mount namespace of its own whose
  /etc/resolv.conf names 127.0.0.153, where a UDP relay forwards to the
  NSD (as root; skipped otherwise).

Cases: long and folded headers, trailing white space, an empty body, an
8-bit body, LF and CRLF input, rsa-sha256 and ed25519-sha256, two
signatures at once; the queue keeps the signature of the first attempt."""

import os
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from dns_util import nsd, query  # noqa: F401  (fixture)
from helpers import rawmail_bin
from peers import ScriptedPeer, ehlo_ok
from send_util import fresh_spool, send

dkim = pytest.importorskip("dkim")

DOMAIN = "example.test"
RELAY_ADDR = "127.0.0.153"


def keygen(tmp_path, selector, typ, domain=DOMAIN):
    out = tmp_path / f"{selector}.key"
    p = subprocess.run([str(rawmail_bin()), "dkim", "keygen", "--domain", domain,
                        "--selector", selector, "--type", typ, "--out", str(out)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert str(out) in p.stderr
    assert (out.stat().st_mode & 0o777) == 0o600
    line = p.stdout.strip()
    assert line.startswith(f"{selector}._domainkey.{domain}. IN TXT ( \""), line
    return out, line


class Keys:
    pass


@pytest.fixture
def keys(tmp_path, nsd):  # noqa: F811
    k = Keys()
    k.rsa, rsa_rr = keygen(tmp_path, "rsa1", "rsa")
    k.ed, ed_rr = keygen(tmp_path, "ed1", "ed25519")
    # A key the zone does not publish: its signature must not verify.
    k.other, _ = keygen(tmp_path, "other", "rsa")
    k.dns = nsd({DOMAIN: rsa_rr + "\n" + ed_rr + "\n"})
    return k


def dnsfunc_for(dns):
    """dkimpy's DNS lookup: the TXT record asked of the test's NSD."""
    def lookup(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        r = query(dns.host, dns.port, name.rstrip("."), "TXT")
        for _n, t, _ttl, rdata in r.answers:
            if t == "TXT":
                return rdata.encode() if isinstance(rdata, str) else rdata
        return None
    return lookup


def sink():
    """A peer that takes one message (8BITMIME offered)."""
    def script(line):
        if line.startswith(b"EHLO"):
            return b"250-peer.test\r\n250-8BITMIME\r\n250 PIPELINING\r\n"
        if line == b"<dot>":
            return b"250 2.0.0 queued\r\n"
        return ehlo_ok(line)
    return ScriptedPeer(script)


def received(peer):
    """The message as the peer got it, dot-stuffing undone."""
    lines = bytes(peer.conns[0].body).split(b"\r\n")[:-1]
    return b"".join((l[1:] if l.startswith(b"..") else l) + b"\r\n" for l in lines)


def key_flags(*groups):
    out = []
    for path, sel in groups:
        out += ["--dkim-key", str(path), "--dkim-selector", sel, "--dkim-domain", DOMAIN]
    return out


def send_signed(keys, message, groups, extra=()):
    peer = sink()
    s = send(["--tls", "none", "--port", peer.port, *key_flags(*groups), *extra,
              "-f", f"alice@{DOMAIN}", "bob@[127.0.0.1]"], message, expect="ok")
    peer.close()
    msg = received(peer)
    assert msg.startswith(b"DKIM-Signature: "), (s, msg[:300])
    return msg


def signatures(msg):
    head = msg.split(b"\r\n\r\n", 1)[0]
    return [f for f in head.replace(b"\r\n ", b" ").split(b"\r\n")
            if f.lower().startswith(b"dkim-signature:")]


def dkimpy_verify(keys, msg, count=1):
    """Every one of the first count signatures verifies with dkimpy."""
    d = dkim.DKIM(msg)
    for i in range(count):
        assert d.verify(idx=i, dnsfunc=dnsfunc_for(keys.dns)), (i, msg[:600])


class Relay:
    """UDP DNS relay on RELAY_ADDR:53 to the NSD (glibc asks port 53)."""

    def __init__(self, dns):
        self.up = (dns.host, dns.port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((RELAY_ADDR, 53))
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop.is_set():
            try:
                q, client = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.settimeout(2)
                u.sendto(q, self.up)
                try:
                    self.sock.sendto(u.recvfrom(4096)[0], client)
                except socket.timeout:
                    pass

    def close(self):
        self.stop.set()
        self.t.join(2)
        self.sock.close()


@pytest.fixture
def opendkim(keys, tmp_path):
    """verify(msg) -> (returncode, output) of opendkim-testmsg, resolving
    through the relay to the test's NSD."""
    prog = shutil.which("opendkim-testmsg") or "/usr/sbin/opendkim-testmsg"
    if not os.path.exists(prog) or os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("opendkim-testmsg, root and unshare are needed")
    relay = Relay(keys.dns)
    conf = tmp_path / "resolv.conf"
    conf.write_text(f"nameserver {RELAY_ADDR}\noptions timeout:2 attempts:2\n")

    def verify(msg):
        p = subprocess.run(["unshare", "-m", "sh", "-c",
                            'mount --bind "$0" /etc/resolv.conf && exec "$1"', str(conf), prog],
                           input=msg, capture_output=True, timeout=60)
        return p.returncode, (p.stdout + p.stderr).decode(errors="replace")

    yield verify
    relay.close()


LONG_SUBJECT = "A subject long enough to be folded " + "word " * 40
MESSAGES = {
    "plain": f"From: Alice <alice@{DOMAIN}>\r\nTo: bob@[127.0.0.1]\r\nSubject: hi\r\n"
             "\r\nHello Bob.\r\n",
    "folded": f"From: Alice\r\n <alice@{DOMAIN}>\r\nTo: bob@[127.0.0.1],\r\n\tcarol@[127.0.0.1]\r\n"
              f"Subject: {LONG_SUBJECT.strip()[:70]}\r\n {LONG_SUBJECT[70:]}\r\n"
              "References: <1@x.test>\r\n <2@x.test>\r\n\t<3@x.test>\r\n\r\nbody\r\n",
    "trailing_ws": f"From: alice@{DOMAIN}   \r\nTo:   bob@[127.0.0.1]\t\r\nSubject: spaces  \r\n"
                   "\r\nline with trailing spaces   \r\n\tindented\t\r\n  \r\n\r\n\r\n",
    "empty_body": f"From: alice@{DOMAIN}\r\nTo: bob@[127.0.0.1]\r\nSubject: empty\r\n\r\n",
    "no_body": f"From: alice@{DOMAIN}\r\nTo: bob@[127.0.0.1]\r\nSubject: nothing\r\n",
    "eight_bit": f"From: alice@{DOMAIN}\r\nTo: bob@[127.0.0.1]\r\nSubject: 8bit\r\n"
                 "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                 "Content-Transfer-Encoding: 8bit\r\n\r\nGr\u00fc\u00dfe, \u00e7a va? \u2603\r\n",
    "lf": f"From: alice@{DOMAIN}\nTo: bob@[127.0.0.1]\nSubject: lf\n\nline one\n\nline  two \n",
    "dots": f"From: alice@{DOMAIN}\r\nTo: bob@[127.0.0.1]\r\nSubject: dots\r\n\r\n.leading dot\r\n"
            "..two\r\n.\r\nend\r\n",
}


@pytest.mark.parametrize("name", sorted(MESSAGES))
@pytest.mark.parametrize("typ", ["rsa", "ed25519"])
def test_dkimpy_verifies(keys, name, typ):
    path, sel = (keys.rsa, "rsa1") if typ == "rsa" else (keys.ed, "ed1")
    msg = send_signed(keys, MESSAGES[name].encode(), [(path, sel)])
    (sig,) = signatures(msg)
    assert (b"a=rsa-sha256;" if typ == "rsa" else b"a=ed25519-sha256;") in sig
    # The field's lines (it comes first) are at most 78 characters.
    in_field = True
    for i, line in enumerate(msg.split(b"\r\n\r\n", 1)[0].split(b"\r\n")):
        in_field = i == 0 or (in_field and line[:1] in (b" ", b"\t"))
        if in_field:
            assert len(line) <= 78, line
    dkimpy_verify(keys, msg)


def test_two_signatures_and_over_signed_from(keys):
    msg = send_signed(keys, MESSAGES["folded"].encode(), [(keys.rsa, "rsa1"), (keys.ed, "ed1")])
    sigs = signatures(msg)
    assert len(sigs) == 2
    assert b"a=rsa-sha256" in sigs[0] and b"a=ed25519-sha256" in sigs[1]
    # rawmail send added Date and Message-ID; From is signed once more than
    # it occurs.
    assert all(b"h=from:from:to:subject:date:message-id:references;" in s.replace(b" ", b"")
               for s in sigs), sigs
    dkimpy_verify(keys, msg, 2)
    # A second From added in transit breaks both (From is over-signed).
    head, body = msg.split(b"\r\n\r\n", 1)
    forged = head + b"\r\nFrom: mallory@evil.test\r\n\r\n" + body
    d = dkim.DKIM(forged)
    assert not d.verify(idx=0, dnsfunc=dnsfunc_for(keys.dns))
    assert not d.verify(idx=1, dnsfunc=dnsfunc_for(keys.dns))
    # A changed body breaks them too: the verifier is not saying yes to all.
    assert not dkim.verify(msg.replace(b"body\r\n", b"bodY\r\n"), dnsfunc=dnsfunc_for(keys.dns))


def test_unpublished_key_does_not_verify(keys):
    """Signed with a key whose selector has no record: dkimpy says no."""
    msg = send_signed(keys, MESSAGES["plain"].encode(), [(keys.other, "rsa1")])
    assert not dkim.verify(msg, dnsfunc=dnsfunc_for(keys.dns))


def test_lf_and_crlf_sign_alike(keys):
    """The LF form and the CRLF form of one message have the same body
    hash and both verify."""
    lf = MESSAGES["lf"].encode()
    a = send_signed(keys, lf, [(keys.ed, "ed1")])
    b = send_signed(keys, lf.replace(b"\n", b"\r\n"), [(keys.ed, "ed1")])
    bh = lambda m: signatures(m)[0].split(b"bh=")[1].split(b";")[0]
    assert bh(a) == bh(b)
    dkimpy_verify(keys, a)
    dkimpy_verify(keys, b)


def test_no_key_for_the_from_domain(keys):
    """A From domain no key covers: sent unsigned, with a warning."""
    peer = sink()
    m = b"From: alice@other.test\r\nTo: bob@[127.0.0.1]\r\nSubject: x\r\n\r\nbody\r\n"
    s = send(["--tls", "none", "--port", peer.port, *key_flags((keys.rsa, "rsa1")),
              "bob@[127.0.0.1]"], m, expect="ok")
    peer.close()
    assert not received(peer).startswith(b"DKIM-Signature"), received(peer)
    assert "not DKIM-signed: no key for the From domain other.test" in s.err, s


def test_subdomain_is_signed_by_parent(keys):
    m = f"From: alice@mail.{DOMAIN}\r\nTo: bob@[127.0.0.1]\r\nSubject: sub\r\n\r\nx\r\n".encode()
    msg = send_signed(keys, m, [(keys.ed, "ed1")])
    assert f"d={DOMAIN};".encode() in signatures(msg)[0]
    dkimpy_verify(keys, msg)


def test_bad_key_and_incomplete_group(keys, tmp_path):
    bad = tmp_path / "bad.key"
    bad.write_text("not a key\n")
    s = send(["--port", "9", *key_flags((bad, "rsa1")), "bob@[127.0.0.1]"],
             MESSAGES["plain"], expect=78)
    assert str(bad) in s.err and "not a PEM private key" in s.err, s
    s = send(["--port", "9", "--dkim-key", str(keys.rsa), "--dkim-selector", "rsa1",
              "bob@[127.0.0.1]"], MESSAGES["plain"], expect="usage")
    assert "--dkim-domain is missing" in s.err, s


def test_config_section_and_queue_keeps_signature(keys, tmp_path):
    """[dkim] groups from the settings file; a first attempt that fails
    temporarily leaves the signed message queued, and the retry sends the
    very same bytes (signed once, before the first attempt)."""
    conf = tmp_path / "rawmail.conf"
    conf.write_text(f"[dkim]\nkey = {keys.rsa}\nselector = rsa1\ndomain = {DOMAIN}\n"
                    f"[dkim]\nselector = ed1\nkey = {keys.ed}\ndomain = {DOMAIN.upper()}\n")
    spool = fresh_spool()
    # Nothing listens: the first attempt fails, the message stays queued.
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()
    s = send(["-c", conf, "--spool", spool, "--tls", "none", "--port", port,
              "-f", f"alice@{DOMAIN}", "bob@[127.0.0.1]"], MESSAGES["eight_bit"], expect="tempfail")
    queued = list(Path(spool).glob("msg/*"))
    assert len(queued) == 1, s
    stored = queued[0].read_bytes()
    assert len(signatures(stored)) == 2
    peer = ScriptedPeer(lambda line: b"250-peer.test\r\n250 8BITMIME\r\n"
                        if line.startswith(b"EHLO") else b"250 2.0.0 queued\r\n"
                        if line == b"<dot>" else ehlo_ok(line), port=port)
    p = subprocess.run([str(rawmail_bin()), "queue", "flush", "-c", str(conf), "--spool", spool,
                        "--tls", "none", "--port", str(port), "--dns", "127.0.0.1:1"],
                       capture_output=True, timeout=60)
    peer.close()
    assert peer.conns, (p.returncode, p.stderr)
    got = received(peer)
    assert got == stored, (got[:400], stored[:400])
    dkimpy_verify(keys, got, 2)


@pytest.mark.parametrize("name", ["plain", "folded", "trailing_ws", "empty_body", "eight_bit",
                                  "lf"])
@pytest.mark.parametrize("typ", ["rsa", "ed25519"])
def test_opendkim_verifies(keys, opendkim, name, typ):
    path, sel = (keys.rsa, "rsa1") if typ == "rsa" else (keys.ed, "ed1")
    msg = send_signed(keys, MESSAGES[name].encode(), [(path, sel)])
    rc, out = opendkim(msg)
    assert rc == 0 and out.strip() == "", (rc, out, msg[:500])
    # and it does say no to a changed message, through the same DNS.
    rc, out = opendkim(msg.replace(b"Subject:", b"Subject: changed", 1))
    assert rc != 0, out


def test_sendmail_link_signs_through_rawmail(keys, tmp_path):
    """The sendmail link's small program links no OpenSSL: with [dkim] keys
    it hands the message to rawmail, which signs it before queueing."""
    conf = tmp_path / "rawmail.conf"
    conf.write_text(f"[dkim]\nkey = {keys.ed}\nselector = ed1\ndomain = {DOMAIN}\n")
    link = tmp_path / "sendmail"
    link.symlink_to(rawmail_bin().parent / "rawmail-sendmail")
    spool = fresh_spool()
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()
    env = dict(os.environ, RAWMAIL_CONF=str(conf))
    env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
    p = subprocess.run([str(link), "--spool", spool, "--port", str(port), "--tls", "none",
                        "--dns", "127.0.0.1:1", "-f", f"alice@{DOMAIN}", "bob@[127.0.0.1]"],
                       input=MESSAGES["lf"].encode(), capture_output=True, timeout=60, env=env)
    assert p.returncode == 0, p.stderr
    (stored,) = [f.read_bytes() for f in Path(spool).glob("msg/*")]
    assert len(signatures(stored)) == 1, stored[:400]
    dkimpy_verify(keys, stored)


def test_sendmail_bs_signs(keys, tmp_path):
    """sendmail -bs (SMTP on standard input) signs each message it queues
    with the [dkim] keys, before queueing it."""
    conf = tmp_path / "rawmail.conf"
    conf.write_text(f"[dkim]\nkey = {keys.rsa}\nselector = rsa1\ndomain = {DOMAIN}\n")
    link = tmp_path / "sendmail"
    link.symlink_to(rawmail_bin().parent / "rawmail-sendmail")
    spool = fresh_spool()
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()
    env = dict(os.environ, RAWMAIL_CONF=str(conf))
    env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
    p = subprocess.Popen([str(link), "-bs", "--spool", spool, "--port", str(port), "--tls",
                          "none", "--dns", "127.0.0.1:1"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    p.stdin.write(f"EHLO client.test\r\nMAIL FROM:<alice@{DOMAIN}>\r\n"
                  "RCPT TO:<bob@[127.0.0.1]>\r\nDATA\r\n".encode())
    p.stdin.flush()
    seen = b""
    while not seen.endswith(b"\n") or not seen.splitlines()[-1].startswith(b"354"):
        c = p.stdout.read(1)
        assert c, seen
        seen += c
    p.stdin.write(MESSAGES["trailing_ws"].encode() + b".\r\nQUIT\r\n")
    p.stdin.close()
    out = seen + p.stdout.read()
    assert p.wait(60) == 0 and b"250 2.0.0 Ok: queued as" in out, (out, p.stderr.read())
    (stored,) = [f.read_bytes() for f in Path(spool).glob("msg/*")]
    assert stored.startswith(b"DKIM-Signature: "), stored[:300]
    dkimpy_verify(keys, stored)


def test_keygen_record_strings_and_no_overwrite(keys, tmp_path):
    """keygen's TXT record: strings of at most 255 octets that NSD serves
    joined as one key record; a second keygen to the same file is refused
    (73) and leaves the key as it was."""
    import re
    out = tmp_path / "k.key"
    argv = [str(rawmail_bin()), "dkim", "keygen", "--domain", DOMAIN, "--selector", "x",
            "--out", str(out)]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    strings = re.findall(r'"([^"]*)"', p.stdout)
    assert len(strings) == 2 and all(len(s) <= 255 for s in strings), strings
    assert "".join(strings).startswith("v=DKIM1; k=rsa; p=MIIB")
    before = out.read_bytes()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert p.returncode == 73 and "exists" in p.stderr, p.stderr
    assert out.read_bytes() == before
    # What NSD serves for keygen's record is the joined text.
    r = query(keys.dns.host, keys.dns.port, f"rsa1._domainkey.{DOMAIN}", "TXT")
    (txt,) = [rd for _n, t, _ttl, rd in r.answers if t == "TXT"]
    assert txt.startswith("v=DKIM1; k=rsa; p=MIIB") and len(txt) > 255
    p = subprocess.run([str(rawmail_bin()), "dkim", "keygen", "--domain", "nodot",
                        "--selector", "x"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 64 and "not a domain name" in p.stderr, p.stderr
