"""`file`: a local file's contents, re-read when its size or modification time changes."""

from __future__ import annotations

import os
from typing import ClassVar

from meshctl.client import Client, Reply
from meshctl.template.dependency.base import Dependency


class FileError(OSError):
    """The file cannot be read, or lies outside the sandbox."""


class FileQuery(Dependency):
    """The file's text; polled by stat (consul-template polls every 2 s; we poll every 0.5 s)."""

    blocking: ClassVar[bool] = False
    poll_interval: ClassVar[float] = 0.5

    def __init__(self, path: str, sandbox: str = "") -> None:
        if not path:
            raise ValueError("file: missing file path")
        self.path = path
        self.sandbox = sandbox

    def __str__(self) -> str:
        return f"file({self.path})"

    def check_sandbox(self) -> None:
        """Refuse a path that resolves (symlinks included) outside `sandbox`."""
        if not self.sandbox:
            return
        real = os.path.realpath(self.path)
        root = os.path.realpath(self.sandbox)
        if os.path.commonpath([real, root]) != root:
            raise FileError(f"'{self.path}' is outside of allowed sandbox path '{self.sandbox}'")

    def stamp(self) -> tuple[int, int, int]:
        """(size, mtime_ns, inode): what changes when the file does."""
        st = os.stat(self.path)
        return st.st_size, st.st_mtime_ns, st.st_ino

    def fetch(self, client: Client | None = None, index: int = 0, wait: str | float | None = None,
              stale: bool = False) -> Reply[str]:
        """Read the file (errors as FileError)."""
        self.check_sandbox()
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise FileError(f"file: {self.path}: {e.strerror or e}") from e
        return Reply(value=data.decode("utf-8", "surrogateescape"))
