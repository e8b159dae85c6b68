"""Helpers for containers of the meshctl image: a directory they can read and write, zombies seen from the host."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def shared_dir() -> Iterator[Path]:
    """A host directory the image's non-root user (uid 10001) can read and write, bind-mounted by tests.

    pytest's tmp_path sits under a 0700 directory, out of that user's reach.
    """
    path = Path(tempfile.mkdtemp(prefix="meshctl-container-"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _stat(pid: str) -> tuple[str, int] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2:].split()  # comm may hold spaces: split after the last ')'
    return fields[0].decode(), int(fields[1])


def descendants(root: int) -> dict[int, str]:
    """Every process under host pid `root` (a container's PID 1), by pid, with its state letter."""
    procs = {int(p): s for p in os.listdir("/proc") if p.isdigit() and (s := _stat(p))}
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (state, ppid) in procs.items():
            if ppid == parent and pid not in found:
                found[pid] = state
                frontier.append(pid)
    return found


def zombies(root: int) -> int:
    """How many zombies are left under host pid `root`."""
    return sum(1 for state in descendants(root).values() if state == "Z")
