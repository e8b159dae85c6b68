"""Helpers for the tests that drive real third-party programs (Debian packages) against meshctl.

A missing program fails the test on CI (env CI=true: the Makefile's APT_PACKAGES installs it) and
skips it elsewhere, so a developer without the package still runs the rest of the suite.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import pytest


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def require(program: str, package: str, *candidates: str) -> str:
    """The path of `program` (on PATH or one of `candidates`); fail on CI, skip elsewhere, if absent."""
    found = shutil.which(program) or next((c for c in candidates if os.access(c, os.X_OK)), None)
    if found:
        return found
    absent(f"{program} is not installed (Debian package {package!r}; `make system-deps` installs it)")


def absent(message: str) -> NoReturn:
    """Something the test needs is not installed: a failure on CI, a skip elsewhere."""
    if on_ci():
        pytest.fail(message)
    pytest.skip(message)


class Child:
    """A child process whose output goes to a log file; stopped by its own process group."""

    def __init__(self, name: str, cmd: list[str], log_path: Path, cwd: Path | None = None,
                 env: dict[str, str] | None = None, user: str | None = None) -> None:
        self.name, self.cmd, self.log_path = name, cmd, log_path
        self.cwd, self.env, self.user = cwd, env, user
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Child:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.cwd,
                                         env=self.env, user=self.user, start_new_session=True)
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the child's whole process group (it and what it started)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 20) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill(signal.SIGKILL)  # whatever of its group is left
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass


def eventually(predicate: Callable[[], Any], timeout: float, what: str,
               diagnostics: Callable[[], str] | None = None, interval: float = 0.2) -> Any:
    """Poll `predicate` until it returns a truthy value (returned); AssertionError after `timeout` s.

    Exceptions count as "not yet" (the programs under test restart, refuse connections...).
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = predicate()
        except Exception as exc:  # any failure is "not yet" until the deadline
            last = exc
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            extra = f"\n{diagnostics()}" if diagnostics else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r}){extra}")
        time.sleep(interval)


def tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])
