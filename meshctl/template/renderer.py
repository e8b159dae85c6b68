"""Writing a rendered template: compare, atomic write, perms, backup. Nothing else.

The destination is replaced atomically: a temp file in the same directory is written,
fsynced, chmod-ed, then renamed over the destination (readers see the old or the new file,
never a half). Identical bytes are not written at all ("would render": no command runs).
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from dataclasses import dataclass
from typing import IO

log = logging.getLogger(__name__)

DEFAULT_PERMS = 0o644


class RenderError(OSError):
    """The destination could not be written."""


@dataclass
class RenderResult:
    """`did_render`: the file was written; `would_render`: the content is as wanted (written or not)."""

    did_render: bool
    would_render: bool
    contents: bytes


def render(path: str, contents: bytes, *, perms: int | None = None, backup: bool = False,
           create_dest_dirs: bool = True, dry: bool = False, dry_stream: IO[str] | None = None) -> RenderResult:
    """Write `contents` to `path` unless it already holds exactly them.

    `perms`: explicit mode (else keep the existing file's mode, else 0644). `backup`: keep the
    previous file as `<path>.bak`. `dry`: print `> path` and the contents to `dry_stream` instead.
    """
    if dry and not path:
        existing: bytes | None = None
    else:
        existing = _read(path)
    if existing == contents and (perms is None or _mode(path) == perms):
        return RenderResult(False, True, contents)
    if dry:
        if dry_stream is not None:
            dry_stream.write(f"> {path}\n{contents.decode('utf-8', 'replace')}")
            dry_stream.flush()
        return RenderResult(True, True, contents)
    atomic_write(path, contents, perms=perms, backup=backup, create_dest_dirs=create_dest_dirs)
    return RenderResult(True, True, contents)


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise RenderError(f"failed reading {path}: {e.strerror or e}") from e


def _mode(path: str) -> int | None:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


def atomic_write(path: str, contents: bytes, *, perms: int | None = None, backup: bool = False,
                 create_dest_dirs: bool = True) -> None:
    """Temp file in the destination's directory → write → fsync → chmod → (backup) → rename."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        if not create_dest_dirs:
            raise RenderError(f"failed writing {path}: parent directory is missing")
        try:
            os.makedirs(directory, 0o755, exist_ok=True)
        except OSError as e:
            raise RenderError(f"failed creating {directory}: {e.strerror or e}") from e
    mode = perms if perms is not None else _mode(path)
    if mode is None:
        mode = DEFAULT_PERMS
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    except OSError as e:
        raise RenderError(f"failed creating a temp file in {directory}: {e.strerror or e}") from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(contents)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        if backup and os.path.exists(path):
            _backup(path)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise RenderError(f"failed writing {path}: {e.strerror or e}") from e
    try:
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _backup(path: str) -> None:
    """Keep the current file as `<path>.bak` (a hard link; a copy where links fail)."""
    bak = path + ".bak"
    old = path + ".old.bak"
    if os.path.exists(bak):
        os.replace(bak, old)
    try:
        os.link(path, bak)
    except OSError:
        with open(path, "rb") as src, open(bak, "wb") as dst:
            dst.write(src.read())
        os.chmod(bak, stat.S_IMODE(os.stat(path).st_mode))
    if os.path.exists(old):
        os.unlink(old)
