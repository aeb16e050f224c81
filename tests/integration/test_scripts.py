"""scripts/deps and tests/run as a new user meets them (issue 8 item 17).

Both run here against stand-ins for apt, dpkg and the build tools placed first
on PATH, so the tests install nothing and run no real suite: they check what
the scripts ask apt for, and that tests/run always ends with its total.
"""

import os
import re
import shutil
import subprocess
import textwrap

from helpers import REPO_ROOT


def _stub(path, body):
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(0o755)


def _fake_apt(tmp_path, apt_status):
    """A bin/ directory where every package is missing, we are root, and
    apt-get logs its arguments then exits with apt_status."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    _stub(bin_dir / "dpkg-query", "exit 1\n")
    _stub(bin_dir / "id", 'if [ "$1" = -u ]; then echo 0; else exec /usr/bin/id "$@"; fi\n')
    _stub(bin_dir / "debconf-set-selections", "cat >/dev/null\n")
    _stub(bin_dir / "apt-get", f"""\
        echo "$*" >> {log}
        if [ {apt_status} -ne 0 ]; then
            echo "E: Could not get lock /var/lib/dpkg/lock-frontend" >&2
        fi
        exit {apt_status}
        """)
    return bin_dir, log


def test_deps_waits_for_the_dpkg_lock(tmp_path):
    bin_dir, log = _fake_apt(tmp_path, 0)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    p = subprocess.run([str(REPO_ROOT / "scripts" / "deps"), "test"], env=env,
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    calls = log.read_text().splitlines()
    assert any(re.search(r"\bupdate\b", c) for c in calls), calls
    assert any("install" in c for c in calls), calls
    for c in calls:
        # Another apt (unattended-upgrades on a fresh machine) may hold the
        # lock for minutes: every apt-get waits for it instead of failing.
        assert re.search(r"-o DPkg::Lock::Timeout=(\d+)", c), c
        assert int(re.search(r"Timeout=(\d+)", c).group(1)) >= 300, c


def test_run_ends_with_the_total_when_deps_fail(tmp_path):
    # A copy of tests/run in a tree where scripts/deps fails as apt does
    # when the lock is held, and everything else is a quick stand-in.
    root = tmp_path / "repo"
    (root / "tests" / "unit").mkdir(parents=True)
    (root / "tests" / "fuzz").mkdir()
    (root / "tests" / "integration").mkdir()
    (root / "scripts").mkdir()
    shutil.copy(REPO_ROOT / "tests" / "run", root / "tests" / "run")
    _stub(root / "scripts" / "deps",
          'echo "E: Could not get lock /var/lib/dpkg/lock-frontend" >&2\nexit 100\n')
    _stub(root / "tests" / "lint", "exit 0\n")
    _stub(root / "tests" / "fuzz" / "run", "exit 0\n")
    (root / "tests" / "unit" / "test_x.c").write_text("")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(bin_dir / "make", "exit 0\n")
    _stub(bin_dir / "valgrind", "exit 0\n")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    p = subprocess.run([str(root / "tests" / "run")], env=env, cwd=root,
                       capture_output=True, timeout=120)
    out = p.stdout.decode(errors="replace")
    lines = [l for l in out.splitlines() if l.strip()]
    assert lines, (out, p.stderr.decode(errors="replace"))
    m = re.fullmatch(r"(\d+) passed, (\d+) failed", lines[-1])
    assert m, f"last line is not the total: {lines[-1]!r}\n{out}"
    assert int(m.group(2)) >= 1, out
    assert "=== deps: FAILED" in out, out
    assert p.returncode != 0
