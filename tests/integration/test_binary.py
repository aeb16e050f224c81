"""What the executable under test is (issue 13): PIE with full RELRO, as
serve needs, and no MQTT client library loaded at start (the bridge loads
libmosquitto and Paho itself, src/mqtt/libs.c), so that `rawmail send`,
one process per message, does not pay for them."""

import shutil
import subprocess

import pytest

from helpers import rawmail_bin


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
