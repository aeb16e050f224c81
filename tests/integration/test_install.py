"""`make install` and `make install-sendmail` (issue 9): the tree they make
under DESTDIR, rawmail-sendmail next to rawmail, the links (relative,
resolving to the installed programs: sendmail to rawmail-sendmail), the
systemd units naming the binary's path for PREFIX, the example settings,
and the refusal to replace another MTA's /usr/sbin/sendmail.

The binaries installed are the ones under test (RAWMAIL_BIN's build
directory when it is this repository's), so make links nothing new."""

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from helpers import REPO_ROOT, rawmail_bin


def build_args():
    """BUILD= (and SAN=1) so that make installs the binary being tested."""
    build = rawmail_bin().parent
    if build.parent != REPO_ROOT.resolve():
        pytest.skip(f"RAWMAIL_BIN {rawmail_bin()} is not built in this repository")
    args = [f"BUILD={build.name}"]
    if "asan" in build.name:
        args.append("SAN=1")
    return args


def make(*args, check=True):
    p = subprocess.run(["make", "-s", "-C", str(REPO_ROOT), *build_args(), *args],
                       capture_output=True, text=True, timeout=600)
    if check:
        assert p.returncode == 0, f"make {args}: {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def installed(root, prefix):
    return root / prefix.lstrip("/")


@pytest.mark.parametrize("prefix", ["/usr", "/usr/local"])
def test_install_tree(tmp_path, prefix):
    root = tmp_path / "root"
    make("install", f"DESTDIR={root}", f"PREFIX={prefix}")
    base = installed(root, prefix)
    binary = base / "bin" / "rawmail"
    assert os.access(binary, os.X_OK)
    assert binary.read_bytes() == rawmail_bin().read_bytes()
    # The sendmail link's small program, next to rawmail (which it runs).
    small = base / "bin" / "rawmail-sendmail"
    assert os.access(small, os.X_OK)
    assert small.read_bytes() == (rawmail_bin().parent / "rawmail-sendmail").read_bytes()
    # The links: relative, so they resolve inside DESTDIR to the binaries.
    for name, target in (("sendmail", small), ("mailq", binary), ("newaliases", binary)):
        link = base / "sbin" / name
        assert link.is_symlink(), link
        assert not os.readlink(link).startswith("/"), os.readlink(link)
        assert link.resolve() == target.resolve(), (link, link.resolve())
    assert (base / "share/man/man1/rawmail.1").is_file()
    assert (base / "share/man/man5/rawmail.conf.5").is_file()
    example = (REPO_ROOT / "contrib/rawmail.conf.example").read_text()
    assert (base / "share/doc/rawmail/rawmail.conf.example").read_text() == example
    # /etc whatever the PREFIX, since that is where every command looks.
    assert (root / "etc/rawmail.conf").read_text() == example

    units = base / "lib/systemd/system"
    serve = (units / "rawmail.service").read_text()
    queue = (units / "rawmail-queue.service").read_text()
    timer = (units / "rawmail-queue.timer").read_text()
    assert re.search(rf"^ExecStart={re.escape(prefix)}/bin/rawmail serve$", serve, re.M), serve
    assert re.search(r"^Type=simple$", serve, re.M)
    assert re.search(rf"^ExecStart={re.escape(prefix)}/bin/rawmail queue run$", queue, re.M)
    assert re.search(r"^OnUnitActiveSec=5min$", timer, re.M), timer
    assert "@BINDIR@" not in serve and "@BINDIR@" not in queue
    # The system's spool, and the maildrop users queue through.
    spool = root / "var/spool/rawmail"
    assert stat.S_IMODE(spool.stat().st_mode) == 0o711
    assert stat.S_IMODE((spool / "maildrop").stat().st_mode) == 0o3733

    # The installed entries work through their links.
    p = subprocess.run([str(base / "sbin/sendmail"), "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "usage: sendmail" in p.stdout, p
    p = subprocess.run([str(base / "sbin/mailq"), "--spool", str(tmp_path / "spool")],
                       capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.startswith("queue is empty"), p
    # sendmail -bp: handed over by rawmail-sendmail to the rawmail next to it.
    p = subprocess.run([str(base / "sbin/sendmail"), "-bp", "--spool", str(tmp_path / "spool")],
                       capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.startswith("queue is empty"), p
    # The example, as installed and with its [send], [delivery] and
    # [queue] keys uncommented, is a file send reads.
    for conf in (root / "etc/rawmail.conf", uncommented(tmp_path, example)):
        p = subprocess.run([str(binary), "send", "-c", str(conf), "--dry-run", "-f",
                            "a@client.test", "user@[127.0.0.1]"], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 0 and "[127.0.0.1]" in p.stdout, (conf, p)


def uncommented(tmp_path, example):
    """The example with every 'key = value' of [send], [delivery] and [queue]
    uncommented (but the placeholder fingerprint)."""
    out, section = [], ""
    for line in example.splitlines():
        m = re.match(r"^\[(\w+)\]", line)
        if m:
            section = m.group(1)
        if (section in ("send", "delivery", "queue") and re.match(r"^# [a-z-]+ = ", line)
                and "tls-fingerprint" not in line):
            line = line[2:]
        out.append(line)
    path = tmp_path / "uncommented.conf"
    path.write_text("\n".join(out) + "\n")
    assert path.read_text().count("\nport = 25") == 1
    return path


def test_systemd_units_verify(tmp_path):
    tool = shutil.which("systemd-analyze")
    if not tool:
        pytest.skip("systemd-analyze is not installed here")
    root = tmp_path / "root"
    make("install", f"DESTDIR={root}", "PREFIX=/usr")
    # verify checks that ExecStart's binary exists: point the copies at
    # the DESTDIR tree's binary (the units are otherwise as installed).
    check = tmp_path / "units"
    check.mkdir()
    for unit in ("rawmail.service", "rawmail-queue.service", "rawmail-queue.timer"):
        text = (root / "usr/lib/systemd/system" / unit).read_text()
        (check / unit).write_text(text.replace("/usr/bin/rawmail", str(root / "usr/bin/rawmail")))
    p = subprocess.run([tool, "verify", "--man=no", *sorted(str(u) for u in check.iterdir())],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stderr.strip() == "", p


def test_existing_config_is_kept(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/rawmail.conf").write_text("[send]\norigin = example.org\n")
    make("install", f"DESTDIR={root}", "PREFIX=/usr")
    assert (root / "etc/rawmail.conf").read_text() == "[send]\norigin = example.org\n"


def test_install_sendmail_refuses_another_mtas_file(tmp_path):
    root = tmp_path / "root"
    (root / "usr/sbin").mkdir(parents=True)
    postfix = root / "usr/sbin/sendmail"
    postfix.write_bytes(b"\x7fELF postfix's sendmail")
    p = make("install-sendmail", f"DESTDIR={root}", check=False)
    assert p.returncode != 0, p
    assert f"{postfix} is a file of another program" in p.stderr, p.stderr
    assert "refusing to replace it" in p.stderr
    assert postfix.read_bytes() == b"\x7fELF postfix's sendmail"
    # Checked first: nothing else was installed.
    assert not (root / "usr/local").exists()
    # A plain install with PREFIX=/usr leaves it alone too, and says so.
    p = make("install", f"DESTDIR={root}", "PREFIX=/usr")
    assert f"left {postfix} alone" in p.stderr, p
    assert postfix.read_bytes() == b"\x7fELF postfix's sendmail"
    assert (root / "usr/sbin/mailq").resolve() == (root / "usr/bin/rawmail").resolve()


def test_install_sendmail_refuses_a_link_to_another_mta(tmp_path):
    root = tmp_path / "root"
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/sbin/sendmail").symlink_to("exim4")
    p = make("install-sendmail", f"DESTDIR={root}", check=False)
    assert p.returncode != 0 and "is a link to exim4" in p.stderr, p
    assert os.readlink(root / "usr/sbin/sendmail") == "exim4"


def test_install_sendmail_makes_the_link_and_can_run_again(tmp_path):
    root = tmp_path / "root"
    # An older install's link, to rawmail itself, is ours to replace.
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/sbin/sendmail").symlink_to("../local/bin/rawmail")
    for _ in range(2):
        make("install-sendmail", f"DESTDIR={root}")
        link = root / "usr/sbin/sendmail"
        assert link.is_symlink() and os.readlink(link) == "../local/bin/rawmail-sendmail"
        assert link.resolve() == (root / "usr/local/bin/rawmail-sendmail").resolve()
    # The link replaces one of ours from another PREFIX, never another's.
    make("install-sendmail", f"DESTDIR={root}", "PREFIX=/opt/rawmail")
    assert ((root / "usr/sbin/sendmail").resolve()
            == (root / "opt/rawmail/bin/rawmail-sendmail").resolve())


def test_serve_starts_with_the_installed_settings(tmp_path, start_server):
    """The installed /etc/rawmail.conf (all comments, every section) is a
    file serve starts with."""
    root = tmp_path / "root"
    make("install", f"DESTDIR={root}", "PREFIX=/usr")
    srv = start_server("-c", root / "etc/rawmail.conf")
    c = srv.connect()
    assert c.cmd("EHLO client.test").code == 250
