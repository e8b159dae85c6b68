"""The `git` binary, as git2consul drives it: clone, update, ls-tree, diff, ls-remote.

Every call runs the real `git` (no library), with prompts disabled so a repository that
needs credentials fails instead of hanging the sync, and paths read NUL-separated (`-z`)
so names with spaces, quotes or non-ASCII characters arrive unmangled (git2consul's own
unquoting turned `"caf\\303\\251"` into a key of its own).
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

GIT_TIMEOUT = 600.0  # a clone of a large repository may take minutes; a hung remote must not block forever


class GitError(Exception):
    """A git command failed (its stderr is in the message)."""


@dataclass(frozen=True)
class Change:
    """One line of `git diff --name-status`: A(dded), M(odified), T(ype changed) or D(eleted)."""

    status: str
    path: str


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["GIT_TERMINAL_PROMPT"] = "0"  # fail, don't ask for a password on a daemon's (absent) terminal
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    env["LC_ALL"] = "C"
    return env


def git(args: Sequence[str], cwd: str | None = None, timeout: float = GIT_TIMEOUT) -> str:
    """Run `git <args>` in `cwd`; its stdout, or GitError with its stderr."""
    log.debug("git %s (in %s)", " ".join(args), cwd or ".")
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, env=_env(), capture_output=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise GitError(f"git {args[0]} timed out after {timeout:g}s") from e
    except OSError as e:
        raise GitError(f"cannot run git: {e}") from e
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip() or f"exit status {proc.returncode}"
        raise GitError(f"git {args[0]} failed: {detail}")
    return proc.stdout.decode("utf-8", "surrogateescape")


def clone(url: str, ref: str, dest: str) -> None:
    """`git clone -b <ref> <url> <dest>` (a branch, or a tag checked out detached).

    The URL is also kept as given in the clone's config (`git2consul.url`): git rewrites a
    relative path in `remote.origin.url`, and the daemon compares against the config's URL.
    """
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    git(["clone", "--quiet", "-b", ref, "--", url, dest])
    git(["config", "git2consul.url", url], cwd=dest)


def update(workdir: str, branch: str) -> None:
    """Bring the clone to the remote branch's head.

    git2consul ran `git pull origin <branch>`, which merges: a force-pushed branch needed a
    merge commit (and a committer identity), failed, and sent git2consul down its purge path.
    Fetching and resetting to what was fetched follows the remote exactly, force pushes too,
    and keeps the old commits around so the diff from the last synced commit still works.
    """
    git(["fetch", "--quiet", "origin", branch], cwd=workdir)
    git(["reset", "--quiet", "--hard", "FETCH_HEAD"], cwd=workdir)


def head(workdir: str) -> str:
    """The checked-out commit's SHA."""
    return git(["rev-parse", "HEAD"], cwd=workdir).strip()


def cloned_from(workdir: str) -> str | None:
    """The URL the clone was made from, as configured then (None for a clone made elsewhere)."""
    try:
        return git(["config", "--get", "git2consul.url"], cwd=workdir).rstrip("\n")
    except GitError:
        return None


def has_commit(workdir: str, sha: str) -> bool:
    """Whether `sha` names a commit present in the clone (a force push may have dropped it)."""
    try:
        git(["cat-file", "-e", f"{sha}^{{commit}}"], cwd=workdir)
    except GitError:
        return False
    return True


def list_files(workdir: str, rev: str = "HEAD") -> list[str]:
    """Every file of `rev` (`git ls-tree -r`), submodules left out (they have no content here)."""
    out = git(["ls-tree", "-r", "-z", rev], cwd=workdir)
    files = []
    for entry in out.split("\0"):
        if not entry:
            continue
        meta, _, path = entry.partition("\t")
        if meta.split(" ")[1:2] == ["blob"]:
            files.append(path)
    return files


def changed_files(workdir: str, old: str, new: str) -> list[Change]:
    """`git diff --no-renames --name-status old new`: a rename is a delete plus an add."""
    out = git(["diff", "--no-renames", "--name-status", "-z", old, new], cwd=workdir)
    fields = out.split("\0")
    changes = []
    i = 0
    while i + 1 < len(fields):
        status, path = fields[i], fields[i + 1]
        i += 2
        if status:
            changes.append(Change(status[0], path))
    return changes


def remote_tags(url: str, cwd: str | None = None) -> list[str]:
    """Annotated tags of the remote (`git ls-remote --tags`, the peeled `^{}` lines), as git2consul lists them."""
    out = git(["ls-remote", "--tags", url], cwd=cwd)
    tags = []
    for line in out.splitlines():
        _, _, ref = line.partition("\t")
        if ref.startswith("refs/tags/") and ref.endswith("^{}"):
            tags.append(ref[len("refs/tags/"):-3])
    return tags
