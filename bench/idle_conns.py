#!/usr/bin/python3
"""Memory per idle SMTP connection.

    idle_conns.py HOST PORT PID N [--tls] [--per-ip K]

Opens N connections to HOST:PORT from many 127.x.y.z source addresses (K per
address), waits for every 220 greeting (and with --tls: EHLO, STARTTLS and a
finished TLS handshake), reads VmRSS of PID before and after, then closes
them.  Prints one line of key=value fields for bench/run:

    conns=N ok=N failed=0 rss_before_kib=... rss_after_kib=... kib_per_conn=...

Run by /usr/bin/python3 (PEERS.md gotcha 8).  Needs no third-party module.
"""
import argparse
import asyncio
import resource
import ssl
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return
        except (ValueError, OSError):
            want = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def source_addr(i, per_ip):
    """127.1.0.1, 127.1.0.2, ... one address per `per_ip` connections."""
    n = i // per_ip
    return f"127.{1 + n // 65024}.{(n // 254) % 256}.{1 + n % 254}"


async def read_reply(reader, timeout):
    """One SMTP reply (possibly multi-line); returns (code, last line)."""
    while True:
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line:
            raise ConnectionError("closed by server")
        if len(line) >= 4 and line[3:4] != b"-":
            return int(line[:3]), line


async def one(i, args, gate, ctx, conns, errors):
    async with gate:  # bound the connects in flight: the listen backlog is finite
        try:
            r, w = await asyncio.wait_for(
                asyncio.open_connection(args.host, args.port,
                                        local_addr=(source_addr(i, args.per_ip), 0)),
                args.timeout)
            code, line = await read_reply(r, args.timeout)
            if code != 220:
                raise ConnectionError(f"greeting {line!r}")
            if ctx is not None:
                w.write(b"EHLO bench.test\r\n")
                code, line = await read_reply(r, args.timeout)
                if code != 250:
                    raise ConnectionError(f"EHLO {line!r}")
                w.write(b"STARTTLS\r\n")
                code, line = await read_reply(r, args.timeout)
                if code != 220:
                    raise ConnectionError(f"STARTTLS {line!r}")
                await asyncio.wait_for(w.start_tls(ctx), args.timeout)
            conns.append((r, w))
        except Exception as e:  # report, do not stop the others
            errors.append(f"{type(e).__name__}: {e}")


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("pid", type=int, help="process whose VmRSS is measured")
    ap.add_argument("n", type=int)
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--per-ip", type=int, default=40)
    ap.add_argument("--parallel", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--settle", type=float, default=1.0)
    args = ap.parse_args()
    raise_nofile(args.n + 1024)

    ctx = None
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE

    # One warm-up session so that one-time allocations (TLS context, first
    # session, log buffer) are not charged to the idle connections.
    warm, errors = [], []
    await one(0, args, asyncio.Semaphore(1), ctx, warm, errors)
    for r, w in warm:
        w.close()
    await asyncio.sleep(args.settle)
    before = rss_kib(args.pid)

    conns = []
    gate = asyncio.Semaphore(args.parallel)
    t0 = time.monotonic()
    await asyncio.gather(*(one(i, args, gate, ctx, conns, errors)
                           for i in range(args.n)))
    t_open = time.monotonic() - t0
    await asyncio.sleep(args.settle)
    after = rss_kib(args.pid)
    ok = len(conns)
    for r, w in conns:
        w.close()
    await asyncio.sleep(0.2)
    per = (after - before) / ok if ok else float("nan")
    addrs = (args.n + args.per_ip - 1) // args.per_ip
    print(f"conns={args.n} ok={ok} failed={len(errors)} source_addrs={addrs} "
          f"rss_before_kib={before} rss_after_kib={after} kib_per_conn={per:.2f} "
          f"open_seconds={t_open:.1f}")
    if errors:
        kinds = {}
        for e in errors:
            kinds[e] = kinds.get(e, 0) + 1
        for e, c in sorted(kinds.items(), key=lambda kv: -kv[1])[:5]:
            print(f"  {c} x {e}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
