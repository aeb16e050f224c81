"""Fixtures for the integration tests of `rawmail serve`; helpers live in
helpers.py.  Run with Debian's Python (its pytest is the one installed):

    /usr/bin/python3 -m pytest tests/integration

RAWMAIL_BIN selects the binary (default: build-asan/rawmail, ASan + UBSan).
"""

import pytest

from helpers import DOMAIN, HOSTNAME, Server, check_servers_stopped, free_port


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

    check_servers_stopped(servers)


@pytest.fixture
def server(start_server):
    """A server on 127.0.0.1 with the default options."""
    return start_server()
