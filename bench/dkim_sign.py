#!/usr/bin/python3
"""bench/dkim_sign.py — the cost of DKIM signing per message (issue 11,
"Performance"): rawmail's signer against dkimpy and opendkim on the same
messages and keys, in one run.

Keys: an RSA-2048 and an Ed25519 key made by `rawmail dkim keygen`.
Messages: a 4 KiB and a 64 KiB message with a typical header section.
Two ways of measuring, each comparing like with like:
  in process     rawmail: tests/tools/dkim_sign.c signs N times in one
                 process (dkim_sign, as `rawmail send` calls it);
                 dkimpy: dkim.sign() N times in one Python process.
  per process    one process per message, key loaded each time:
                 tool_dkim_sign with N=1, and opendkim-testmsg (libopendkim,
                 what opendkim runs); its temporary files in a tmpfs-free
                 directory next to the key.
opendkim-testmsg does not take an Ed25519 PKCS#8 key (it fails with
"Resource unavailable"), so it is measured for RSA only.

    bench/dkim_sign.py [BUILD]      (default build/: rawmail and tests/tool_dkim_sign;
                                `make && make tools` first)

Nothing is asserted: a benchmark, not a test.  Prints a table and writes it
to bench/results-dkim.txt.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dkim

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build"
RAWMAIL = BUILD / "rawmail"
TOOL = BUILD / "tests" / "tool_dkim_sign"
N_IN = int(os.environ.get("N_IN", "500"))       # signatures per in-process run
N_PROC = int(os.environ.get("N_PROC", "100"))   # processes per per-process run
DOMAIN = "bench.example"


def message(size):
    head = (f"From: Alice <alice@{DOMAIN}>\r\nTo: bob@example.org\r\nCc: carol@example.net\r\n"
            f"Subject: a message of {size} octets\r\nDate: Sun, 06 Dec 2026 12:00:00 +0000\r\n"
            f"Message-ID: <bench.{size}@{DOMAIN}>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n")
    line = "The quick brown fox jumps over the lazy dog, again and again.  \r\n"
    body = (line * (size // len(line) + 1))[: max(0, size - len(head))]
    return (head + body).encode()


def keygen(work, kind):
    out = work / f"{kind}.key"
    subprocess.run([str(RAWMAIL), "dkim", "keygen", "--domain", DOMAIN, "--selector", kind,
                    "--type", kind, "--out", str(out)], check=True, capture_output=True)
    return out


def rawmail_in_process(key, kind, msg):
    p = subprocess.run([str(TOOL), str(key), DOMAIN, kind, str(N_IN)], input=msg,
                       capture_output=True, check=True)
    line = [l for l in p.stderr.decode().splitlines() if l.startswith("us_per_message")][0]
    return float(line.split()[1])


def dkimpy_in_process(key, kind, msg):
    pem = key.read_bytes()
    if kind == "ed25519":
        # dkimpy wants the raw 32-octet seed, base64, for Ed25519.
        from cryptography.hazmat.primitives import serialization
        import base64
        k = serialization.load_pem_private_key(pem, password=None)
        raw = k.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                              serialization.NoEncryption())
        pem = base64.b64encode(raw)
    n = max(20, N_IN // (25 if kind == "rsa" else 1))
    t0 = time.perf_counter()
    for _ in range(n):
        dkim.sign(msg, kind.encode(), DOMAIN.encode(), pem,
                  canonicalize=(b"relaxed", b"relaxed"),
                  signature_algorithm=b"rsa-sha256" if kind == "rsa" else b"ed25519-sha256")
    return (time.perf_counter() - t0) / n * 1e6


def per_process(argv, msg):
    t0 = time.perf_counter()
    for _ in range(N_PROC):
        subprocess.run(argv, input=msg, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True)
    return (time.perf_counter() - t0) / N_PROC * 1e6


def main():
    if not RAWMAIL.exists() or not TOOL.exists():
        sys.exit(f"bench/dkim_sign.py: build {RAWMAIL} and {TOOL} first (make && make tools)")
    rows = []
    with tempfile.TemporaryDirectory(dir=ROOT) as d:
        work = Path(d)
        keys = {k: keygen(work, k) for k in ("rsa", "ed25519")}
        for size in (4096, 65536):
            msg = message(size)
            for kind, key in keys.items():
                ours = statistics.median(rawmail_in_process(key, kind, msg) for _ in range(3))
                theirs = statistics.median(dkimpy_in_process(key, kind, msg) for _ in range(3))
                rows.append((f"{kind} {size // 1024} KiB", "in process", "dkimpy", ours, theirs))
                ours_p = per_process([str(TOOL), str(key), DOMAIN, kind, "1"], msg)
                if kind == "rsa":
                    theirs_p = per_process(["opendkim-testmsg", "-C", "-d", DOMAIN, "-k",
                                            str(key), "-s", kind, "-t", str(work)], msg)
                    rows.append((f"{kind} {size // 1024} KiB", "per process", "opendkim-testmsg",
                                 ours_p, theirs_p))
                else:
                    rows.append((f"{kind} {size // 1024} KiB", "per process", "(none)", ours_p,
                                 None))
    lines = [f"DKIM signing cost per message, µs (in process: N={N_IN}; per process: "
             f"{N_PROC} processes); ratio = peer / rawmail (higher: rawmail faster)",
             f"{'message':<16} {'how':<12} {'rawmail':>10} {'peer':>10} {'ratio':>7}  peer"]
    for what, how, peer, ours, theirs in rows:
        t = f"{theirs:10.1f}" if theirs else f"{'-':>10}"
        r = f"{theirs / ours:6.1f}x" if theirs else f"{'-':>7}"
        lines.append(f"{what:<16} {how:<12} {ours:10.1f} {t} {r}  {peer}")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    (ROOT / "bench" / "results-dkim.txt").write_text(text)


if __name__ == "__main__":
    main()
