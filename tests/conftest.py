"""Shared fixtures: real `meshctl agent -dev` processes on free 127.0.0.1 ports (helpers in devserver.py),
the session's real Docker Engine and the meshctl image built from the checkout (docker_engine.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker_engine
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


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory) -> Iterator[docker_engine.Dockerd]:
    """A real dockerd for the session (started here, as CI does; fails loudly if it cannot run)."""
    with docker_engine.engine(Path(tmp_path_factory.mktemp("dockerd"))) as d:
        yield d


@pytest.fixture(scope="session")
def meshctl_image(dockerd) -> str:
    """The repository's Dockerfile built once per session, offline, on a cached Debian python image."""
    return docker_engine.build_meshctl_image(dockerd)
