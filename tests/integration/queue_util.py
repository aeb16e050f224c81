"""The queue's spool from the tests' side: entries written byte for byte in
the envelope format (src/queue/envelope.h, QUEUE.md "Envelope file format"),
so a test can put any state, reply or damage there; and `rawmail queue ...`
runs, failing the test on a sanitizer report."""

import hashlib
import os
import subprocess
from pathlib import Path

from helpers import SANITIZER_MARKERS, rawmail_bin


def _enc(value):
    """Percent-encodes as the formatter does: octets <= 0x20, >= 0x7f and
    '%'; the whole field when it would read as a token ("-", "<>")."""
    if isinstance(value, str):
        value = value.encode()
    if value in (b"-", b"<>"):
        return "".join(f"%{c:02X}" for c in value)
    return "".join(f"%{c:02X}" if c <= 0x20 or c >= 0x7F or c == 0x25 else chr(c)
                   for c in value)


def make_spool(path):
    path = Path(path)
    for sub in ("tmp", "msg", "env", "corrupt"):
        (path / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def write_entry(spool, qid, rcpts, sender="alice@client.test", created=1796558400,
                message=b"From: alice@client.test\r\nSubject: queued\r\n\r\nbody\r\n",
                flags="-", origin="sendmail"):
    """rcpts: dicts with addr and optionally state, attempts, next, last_attempt,
    orcpt, last (str or bytes)."""
    spool = make_spool(spool)
    lines = ["rawmail-queue 1", f"id {qid}", f"created {created}",
             "sender " + (_enc(sender) if sender else "<>"), f"size {len(message)}",
             f"sha256 {hashlib.sha256(message).hexdigest()}", f"flags {flags}",
             f"origin {origin}"]
    for r in rcpts:
        orcpt = _enc(r["orcpt"]) if r.get("orcpt") else "-"
        last = _enc(r["last"]) if r.get("last") is not None else "-"
        lines.append(f"rcpt {r.get('state', 'queued')} {r.get('attempts', 0)} "
                     f"{r.get('next', 0)} {r.get('last_attempt', 0)} {_enc(r['addr'])} "
                     f"{orcpt} {last}")
    lines.append("end")
    (spool / "msg" / qid).write_bytes(message)
    (spool / "env" / qid).write_bytes(("\n".join(lines) + "\n").encode())
    return qid


class Run:
    def __init__(self, p):
        self.rc = p.returncode
        self.out_bytes, self.err_bytes = p.stdout, p.stderr
        self.out = p.stdout.decode(errors="replace")
        self.err = p.stderr.decode(errors="replace")
        for mark in SANITIZER_MARKERS:
            assert mark not in self.err, self.err

    def __repr__(self):
        return f"exit {self.rc}\n--- stdout ---\n{self.out}--- stderr ---\n{self.err}"


def rawmail(args, argv0=None, cwd=None, timeout=120, **kw):
    """rawmail ARGS, or the binary through a link named argv0 (mailq,
    sendmail) made in cwd."""
    binary = str(rawmail_bin())
    if argv0:
        link = Path(cwd) / argv0
        if not link.exists():
            link.symlink_to(binary)
        argv = [str(link), *[str(a) for a in args]]
    else:
        argv = [binary, *[str(a) for a in args]]
    return Run(subprocess.run(argv, capture_output=True, timeout=timeout, **kw))


def queue(spool, *args, **kw):
    sub, *rest = args
    return rawmail(["queue", sub, "--spool", spool, *rest], **kw)


def entries(spool):
    return sorted(os.listdir(Path(spool) / "env"))
