"""What the executable under test is (issue 13): PIE with full RELRO, as
serve needs, and no MQTT client library loaded at start (the bridge loads
libmosquitto and Paho itself, src/mqtt/libs.c), so that `rawmail send`,
one process per message, does not pay for them.  OpenSSL likewise, where
the build loads it when first needed (src/net/ossl_lazy.h): a plaintext
send never loads it, a STARTTLS one does."""

import os
import shutil
import subprocess

import pytest

from helpers import free_port, mailbox_messages, rawmail_bin, sample_message
from send_util import SENDER


def run(*argv):
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(not shutil.which("readelf"), reason="readelf (binutils) is needed")
def test_pie_and_full_relro():
    dyn = run("readelf", "-d", str(rawmail_bin()))
    assert "BIND_NOW" in dyn, dyn
    flags = [line for line in dyn.splitlines() if "FLAGS_1" in line]
    assert flags and "NOW" in flags[0] and "PIE" in flags[0], dyn
    assert "DYN" in run("readelf", "-h", str(rawmail_bin()))
    assert "GNU_RELRO" in run("readelf", "-lW", str(rawmail_bin()))


def test_no_mqtt_library_at_start():
    out = run("ldd", str(rawmail_bin()))
    assert "libc.so" in out, out
    for lib in ("libmosquitto", "libpaho"):
        assert lib not in out, out


@pytest.mark.skipif(not shutil.which("nm"), reason="nm (binutils) is needed")
def test_mqtt_forwarders_are_not_exported():
    """src/mqtt/libs.c defines mosquitto_* and MQTTAsync_* forwarders under
    the libraries' own names; they are safe only while the executable does
    not export them (the loaded libraries' calls to their own functions
    must reach their own)."""
    out = run("nm", "-D", "--defined-only", str(rawmail_bin()))
    leaked = [l for l in out.splitlines() if "mosquitto_" in l or "MQTTAsync_" in l
              or "MQTTProperties_" in l]
    assert not leaked, leaked


def lazy_openssl():
    """The stubs' table (scripts/ossl_stubs) is defined (ossl_lazy.c's weak
    reference to it is all a build that links OpenSSL has)."""
    return any(l.split()[1:] in (["D", "rawmail_ossl_table"], ["d", "rawmail_ossl_table"])
               for l in run("nm", str(rawmail_bin())).splitlines())


@pytest.mark.skipif(not shutil.which("nm"), reason="nm (binutils) is needed")
def test_openssl_stubs_are_not_exported():
    """The stubs carry OpenSSL's own names (scripts/ossl_stubs): hidden, or
    libssl's calls to its own functions would come back to them."""
    out = run("nm", "-D", "--defined-only", str(rawmail_bin()))
    leaked = [l for l in out.splitlines()
              if any(f" {p}" in l for p in ("SSL_", "EVP_", "X509", "bufferevent_openssl"))]
    assert not leaked, leaked


@pytest.mark.skipif(not shutil.which("strace") or not shutil.which("nm"),
                    reason="strace and nm are needed")
def test_openssl_loaded_only_for_tls(start_server, tmp_path):
    if not lazy_openssl():
        pytest.skip("this build links OpenSSL (LAZY_OSSL=0, STATIC_LIBS=1 or not x86-64)")
    assert "libssl" not in run("ldd", str(rawmail_bin()))
    port = free_port()
    srv = start_server(listen=[f"127.0.0.1:{port}"])
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")   # LeakSanitizer cannot run under ptrace
    loaded = {}
    for tls in ("none", "require"):
        trace = tmp_path / f"strace-{tls}"
        p = subprocess.run(["strace", "-f", "-qq", "-e", "trace=openat", "-o", str(trace),
                            str(rawmail_bin()), "send", "--spool", str(tmp_path / "spool"),
                            "-f", SENDER, "--port", str(port), "--tls", tls, "user@[127.0.0.1]"],
                           input=sample_message(), capture_output=True, timeout=60, env=env)
        assert p.returncode == 0, p.stderr.decode(errors="replace")
        loaded[tls] = [l for l in trace.read_text().splitlines()
                       if ("libssl" in l or "libcrypto" in l) and "ENOENT" not in l]
    assert loaded["none"] == [], loaded["none"]
    assert any("libssl.so" in l for l in loaded["require"]), loaded["require"]
    assert len(mailbox_messages(srv.mailroot, "user", wait=2)) == 2


def libssl_path():
    out = run("/sbin/ldconfig", "-p")
    paths = [l.split(" => ")[1] for l in out.splitlines() if "libssl.so.3 " in l and " => " in l]
    return paths[0] if paths else None


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                    reason="needs root and unshare (a private mount namespace)")
def test_openssl_missing_is_said(start_server, tmp_path):
    """With libssl.so.3 made unloadable (an empty file bound over it in a
    mount namespace of the test's own): a command that loads OpenSSL at
    start says so and exits 72; a plaintext send still delivers; a STARTTLS
    one ends with the same message when it first needs OpenSSL."""
    if not lazy_openssl():
        pytest.skip("this build links OpenSSL (LAZY_OSSL=0, STATIC_LIBS=1 or not x86-64)")
    lib = libssl_path()
    if not lib:
        pytest.skip("libssl.so.3 not in ldconfig's cache")
    port = free_port()
    srv = start_server(listen=[f"127.0.0.1:{port}"])
    empty = tmp_path / "empty.so"
    empty.write_bytes(b"")

    def hidden(*args, stdin=b""):
        return subprocess.run(["unshare", "-m", "sh", "-c", 'mount --bind "$1" "$2" && shift 2 && exec "$@"',
                               "sh", str(empty), lib, str(rawmail_bin()), *args],
                              input=stdin, capture_output=True, timeout=60)

    p = hidden("queue", "list", "--spool", str(tmp_path / "spool"))
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 72 and "libssl.so.3" in err, (p.returncode, err)
    send = ["send", "--spool", str(tmp_path / "spool"), "-f", SENDER, "--port", str(port)]
    p = hidden(*send, "--tls", "none", "user@[127.0.0.1]", stdin=sample_message())
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    assert len(mailbox_messages(srv.mailroot, "user", wait=2)) == 1
    p = hidden(*send, "--tls", "require", "user@[127.0.0.1]", stdin=sample_message())
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 72 and "OpenSSL is needed here" in err and "libssl.so.3" in err, err
