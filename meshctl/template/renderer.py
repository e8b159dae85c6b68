"""Writing a rendered template: compare, atomic write, perms, ownership, backup. Nothing else.

The destination is replaced atomically: a temp file in the same directory is written,
fsynced, chown-ed and chmod-ed, then renamed over the destination (readers see the old or the
new file, never a half, and never the new one with the wrong mode or owner). Identical bytes
with the wanted owner are not written at all ("would render": no command runs).
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
           create_dest_dirs: bool = True, dry: bool = False, dry_stream: IO[str] | None = None,
           uid: int | None = None, gid: int | None = None) -> RenderResult:
    """Write `contents` to `path` unless it already holds exactly them (with the wanted mode and owner).

    `perms`: explicit mode (else keep the existing file's mode, else 0644). `uid`/`gid`: owner
    and group (None: keep the existing file's, else the process's). `backup`: keep the previous
    file as `<path>.bak`. `dry`: print `> path` and the contents to `dry_stream` instead.
    """
    if dry and not path:
        existing: bytes | None = None
    else:
        existing = _read(path)
    if existing == contents and (perms is None or _mode(path) == perms) and not _chown_needed(path, uid, gid):
        return RenderResult(False, True, contents)
    if dry:
        if dry_stream is not None:
            dry_stream.write(f"> {path}\n{contents.decode('utf-8', 'replace')}")
            dry_stream.flush()
        return RenderResult(True, True, contents)
    atomic_write(path, contents, perms=perms, backup=backup, create_dest_dirs=create_dest_dirs, uid=uid, gid=gid)
    return RenderResult(True, True, contents)


def _chown_needed(path: str, uid: int | None, gid: int | None) -> bool:
    """Whether the existing file's owner or group differs from the wanted ones."""
    if uid is None and gid is None:
        return False
    try:
        st = os.stat(path)
    except OSError:
        return True
    return (uid is not None and st.st_uid != uid) or (gid is not None and st.st_gid != gid)


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
                 create_dest_dirs: bool = True, uid: int | None = None, gid: int | None = None) -> None:
    """Temp file in the destination's directory → write → fsync → chown → chmod → (backup) → rename.

    Without `uid`/`gid` the existing file's owner and group are kept (when this process may
    set them; else a warning, as consul-template); a wanted owner that cannot be set is an error.
    """
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
        _chown(tmp, path, uid, gid)
        os.chmod(tmp, mode)  # after chown, which clears set-user/group-ID bits
        if backup and os.path.exists(path):
            _backup(path)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, RenderError):
            raise
        raise RenderError(f"failed writing {path}: {e.strerror or e}") from e
    try:
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _chown(tmp: str, path: str, uid: int | None, gid: int | None) -> None:
    """Give the temp file the wanted owner/group, the existing file's for what is not given."""
    try:
        current = os.stat(path)
    except OSError:
        current = None
    want_uid = uid if uid is not None else (current.st_uid if current else -1)
    want_gid = gid if gid is not None else (current.st_gid if current else -1)
    st = os.stat(tmp)
    if (want_uid in (-1, st.st_uid)) and (want_gid in (-1, st.st_gid)):
        return
    try:
        os.chown(tmp, want_uid, want_gid)
    except OSError as e:
        if uid is not None or gid is not None:
            raise RenderError(f"failed setting the owner of {path} to {_owner(uid, gid)}: {e.strerror or e}") from e
        # only preserving what was there: the write still happens (consul-template warns too)
        log.warning("could not keep the owner of %s (%d:%d): %s", path, want_uid, want_gid, e.strerror or e)


def _owner(uid: int | None, gid: int | None) -> str:
    return f"{'' if uid is None else uid}:{'' if gid is None else gid}"


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
