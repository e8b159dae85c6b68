"""Fixtures for the CLI tests (helpers live in cli_support.py)."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
from cli_support import Result, run_meshctl


@pytest.fixture(scope="module")
def cli(shared_dev_server) -> Callable[..., Result]:
    """Run meshctl against the module's dev server (through CONSUL_HTTP_ADDR)."""

    def run(*args: str, **kwargs) -> Result:
        env = {"CONSUL_HTTP_ADDR": shared_dev_server.addr, **kwargs.pop("env", {})}
        return run_meshctl(*args, env=env, **kwargs)

    return run


@pytest.fixture
def closed_addr() -> str:
    """A 127.0.0.1 address nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"
