#!/usr/bin/python3
"""bench/check_wall.py — wall time of `rawmail check` for 20 destinations
(issue 11, "Performance").

20 domains d0..d19.example.test, each with one MX on its own loopback
address (127.0.1.1 .. 127.0.1.20), all served by a private NSD; each MX is
a scripted SMTP peer that greets, answers EHLO with STARTTLS and runs the
TLS handshake (a self-signed RSA certificate), so every probe does the
whole work: MX lookup, A lookup, connect, greeting, EHLO, STARTTLS,
handshake.  With --from, the SPF and DMARC queries run beside them, and
the source's PTR is confirmed.  ROUNDS (5) runs; the median and range
are printed, with rawmail's own elapsed_ms.

    bench/check_wall.py [RAWMAIL]     (default build/rawmail)

Nothing is asserted: a benchmark, not a test.
"""

import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from dns_util import NSD, free_dns_port, ptr_zones  # noqa: E402
from helpers import free_port  # noqa: E402
from peers import ScriptedPeer  # noqa: E402
from tls_util import TestPKI  # noqa: E402

N = 20
ROUNDS = int(os.environ.get("ROUNDS", "5"))


def script(line):
    if line.startswith(b"EHLO"):
        return b"250-mx Hello [127.0.0.1]\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
    if line == b"STARTTLS":
        return b"220 go\r\n"
    return b"221 bye\r\n"


def main():
    rawmail = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "build" / "rawmail")
    with tempfile.TemporaryDirectory() as tmp:
        pki = TestPKI(Path(tmp) / "pki")
        zone = "".join(f"d{i} MX 10 mx.d{i}\nmx.d{i} A 127.0.1.{i + 1}\n" for i in range(N))
        zone += ("me A 127.0.0.1\n"
                 'bench TXT "v=spf1 ip4:127.0.0.1 -all"\n'
                 '_dmarc.bench TXT "v=DMARC1; p=reject"\n')
        zones = {"example.test": zone, "test": ""}
        zones.update(ptr_zones({"127.0.0.1": "me.example.test"}))
        dns = NSD(Path(tmp) / "nsd", zones)
        dns.port = free_dns_port()
        dns._write()
        dns.check()
        problem = dns.start()
        if problem:
            sys.exit(f"nsd: {problem}")
        port = free_port()
        peers = []
        try:
            for i in range(N):
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(pki.cert("selfsigned"), pki.key("selfsigned"))
                peers.append(ScriptedPeer(script, tls_context=ctx, host=f"127.0.1.{i + 1}",
                                          port=port, connections=ROUNDS + 1))
            cmd = [rawmail, "check", "--json", "--dns", dns.addr, "--port", str(port),
                   "--from", "a@bench.example.test",
                   *[f"user@d{i}.example.test" for i in range(N)]]
            walls, inner = [], []
            for r in range(ROUNDS):
                t0 = time.monotonic()
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
                walls.append(time.monotonic() - t0)
                doc = json.loads(p.stdout)
                inner.append(doc["elapsed_ms"])
                passed = sum(1 for x in doc["results"]
                             if x["test"] == "smtp" and x["status"] == "pass")
                if passed != N:
                    print(p.stdout)
                    sys.exit(f"round {r}: {passed} of {N} probes passed")
            print(f"rawmail check, {N} destinations (MX + A lookups, connect, EHLO, STARTTLS, "
                  f"TLS handshake each; SPF, DMARC, FCrDNS), {ROUNDS} rounds:")
            print(f"  wall time  median {statistics.median(walls) * 1000:.0f} ms  "
                  f"(min {min(walls) * 1000:.0f}, max {max(walls) * 1000:.0f})")
            print(f"  elapsed_ms median {statistics.median(inner):.0f} ms (rawmail's own)")
        finally:
            for pe in peers:
                pe.close()
            dns.stop()


if __name__ == "__main__":
    main()
