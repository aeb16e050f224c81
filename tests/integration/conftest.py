"""Fixtures for the integration tests of `rawmail serve`; helpers live in
helpers.py.  Run with Debian's Python (its pytest is the one installed):

    /usr/bin/python3 -m pytest tests/integration

RAWMAIL_BIN selects the binary (default: build-asan/rawmail, ASan + UBSan).
"""

import pytest

from helpers import DOMAIN, HOSTNAME, SANITIZER_MARKERS, STOP_TIMEOUT, Server, free_port


@pytest.fixture
def start_server(tmp_path):
    """Factory: start_server(*extra_args, listen=[...], mailroot=..., defaults=True,
    listen_in_config=False).

    Adds --hostname mx.test --domain example.test unless defaults=False.
    Teardown sends SIGTERM to every server still running, and asserts exit
    status 0, no process left behind, and no sanitizer report."""
    servers = []

    def start(*extra, listen=None, mailroot=None, defaults=True, listen_in_config=False):
        if listen is None:
            listen = [f"127.0.0.1:{free_port()}"]
        if mailroot is None:
            mailroot = tmp_path / "mail"
        args = []
        if defaults:
            args += ["--hostname", HOSTNAME, "--domain", DOMAIN]
        args += [str(a) for a in extra]
        srv = Server(tmp_path, args, listen, mailroot, name=f"serve{len(servers)}")
        # listen_in_config: a -c FILE among the args gives --listen and
        # --mailroot; `listen` and `mailroot` only tell the tests where.
        srv.listen_in_config = listen_in_config
        servers.append(srv)
        return srv.start()

    yield start

    problems = []
    for srv in servers:
        if srv.proc is not None:
            code = srv.stop()
            if code != 0:
                problems.append(f"{srv.log_path.name}: exit status after SIGTERM: {code} "
                                f"(None = still running {STOP_TIMEOUT} s after SIGTERM)")
        if getattr(srv, "leftover", False):
            problems.append(f"{srv.log_path.name}: processes of the server's group were still "
                            "alive after it exited")
        text = srv.log()
        for marker in SANITIZER_MARKERS:
            if marker in text:
                problems.append(f"{srv.log_path.name}: sanitizer report ({marker!r}) in the log")
    if problems:
        logs = "".join(f"\n--- {srv.log_path} ---\n{srv.log()[-20000:]}" for srv in servers)
        pytest.fail("server teardown: " + "; ".join(problems) + logs, pytrace=False)


@pytest.fixture
def server(start_server):
    """A server on 127.0.0.1 with the default options."""
    return start_server()
