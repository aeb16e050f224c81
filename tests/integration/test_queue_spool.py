"""The queue's spool on a real full disk (issue 9: "a full disk at enqueue
time gives 75 and no half-written entry").  The spool is a 1 MiB tmpfs
mounted by the test; tool_spoolfill (tests/tools/spoolfill.c) enqueues
through src/queue/spool.c exactly as `rawmail send` and `sendmail` will.
Messages of falling sizes are queued until the disk refuses each size,
then one that takes exactly the free space, so that the refusal lands at
the message's write and at the envelope's.  Every refusal must be exit 75 (temporary) with the cause, and after
each: tmp/ empty, msg/ and env/ holding the same ids, those of the "queued
as" lines exactly, every entry listed and parsed, and, once space is freed,
enqueueing works again."""

import os
import subprocess

import pytest

from helpers import REPO_ROOT
from robust_util import mount_tmpfs  # noqa: F401  (fixture)

TOOLS = os.environ.get("RAWMAIL_TOOLS", str(REPO_ROOT / "build-asan" / "tests"))
SPOOLFILL = os.path.join(TOOLS, "tool_spoolfill")
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer")


@pytest.fixture(scope="module", autouse=True)
def tool_built():
    if not os.access(SPOOLFILL, os.X_OK):
        pytest.skip(f"{SPOOLFILL} missing: make -s SAN=1 tools")


def enqueue(spool, size, tag):
    body = (f"Subject: {tag}\r\n\r\n".encode() + b"x" * 76 + b"\r\n") * (size // 78 + 1)
    p = subprocess.run([SPOOLFILL, "enqueue", str(spool), "rcpt@example.net"], input=body[:size],
                       capture_output=True, timeout=60)
    out, err = p.stdout.decode(), p.stderr.decode()
    for mark in SANITIZER_MARKS:
        assert mark not in err, err
    return p.returncode, out, err


def check_spool(spool, queued):
    assert sorted(os.listdir(spool / "tmp")) == []
    assert sorted(os.listdir(spool / "msg")) == sorted(queued)
    assert sorted(os.listdir(spool / "env")) == sorted(queued)
    p = subprocess.run([SPOOLFILL, "list", str(spool)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"listed {len(queued)} entries, {len(queued)} recipients "
                               "(0 unreadable)"), p.stdout


def test_full_disk_enqueue_is_temporary_and_leaves_nothing(mount_tmpfs):  # noqa: F811
    fs = mount_tmpfs("1m")
    spool = fs.path / "spool"
    queued = []
    refusals = 0
    for size in (150_000, 20_000, 3_000, 200):
        for i in range(2000):
            rc, out, err = enqueue(spool, size, f"{size}-{i}")
            if rc == 0:
                assert out.startswith("queued as ")
                queued.append(out.split()[2])
                continue
            assert rc == 75, (rc, err)
            assert "not queued (temporary)" in err and "No space left on device" in err, err
            refusals += 1
            check_spool(spool, queued)
            break
        else:
            pytest.fail(f"a 1 MiB tmpfs took 2000 messages of {size} octets")
    assert refusals == 4
    assert len(queued) >= 6
    # Space freed (an entry delivered and removed).  A message that takes
    # exactly the free pages is written, and the disk refuses its envelope:
    # the message must go too.
    victim = queued.pop(0)
    os.unlink(spool / "env" / victim)
    os.unlink(spool / "msg" / victim)
    rc, out, err = enqueue(spool, fs.free(), "exact")
    assert rc == 75, (rc, err)
    assert ".env: No space left on device" in err, err
    check_spool(spool, queued)
    # And with that space back, queueing works again.
    rc, out, err = enqueue(spool, 2_000, "again")
    assert rc == 0, err
    queued.append(out.split()[2])
    check_spool(spool, queued)


def test_unwritable_spool_is_permanent(tmp_path):
    # A spool path under a regular file cannot work until someone fixes it.
    (tmp_path / "file").write_text("x")
    rc, out, err = enqueue(tmp_path / "file" / "spool", 100, "perm")
    assert rc == 73, err
    assert "not queued (permanent)" in err and "Not a directory" in err, err
