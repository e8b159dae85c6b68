"""Shared fixtures: real `meshctl agent -dev` processes on free 127.0.0.1 ports (helpers in devserver.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from devserver import DevServer, free_port, start_dev_server

__all__ = ["DevServer", "free_port", "start_dev_server"]


@pytest.fixture
def dev_server(tmp_path) -> Iterator[DevServer]:
    """A fresh dev server per test."""
    server = start_dev_server(tmp_path)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shared_dev_server(tmp_path_factory) -> Iterator[DevServer]:
    """One dev server for a whole test module (tests must use their own key prefixes / names)."""
    server = start_dev_server(tmp_path_factory.mktemp("shared"))
    yield server
    server.stop()
