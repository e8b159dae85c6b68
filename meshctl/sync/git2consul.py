"""`meshctl git2consul`: mirror git repositories into the KV store, as git2consul 0.12 does.

    cfg = parse_config(client.kv.get("git2consul/config").value)   # users' existing JSON, unchanged
    result = BranchSync(client, cfg.repos[0], "master", cfg.local_store).sync()

This module holds what one sync is made of: the configuration (`parse_config`, git2consul's
checks and messages), the key layout (`file_key`, `ref_key`), the expanders (`.json`,
`.yaml`/`.yml`, `.properties` with `${var}` and `common_properties`) and `BranchSync`, the
per-branch state machine: update the clone → read the branch's `.ref` → list what changed
(`git diff --no-renames --name-status <ref> HEAD`, or every file when there is no usable ref)
→ plan the KV operations → apply them → advance `.ref`. The daemon around it (workers, hooks,
halt_on_change) is `meshctl.sync.git2consul_daemon`.

Where git2consul loses or damages data, this does better:

- a failed store read or write never sends the branch down a purge path (git2consul #126:
  "No cluster leader" on reading `.ref` was taken for a broken clone, the clone purged, `.ref`
  reset and keys deleted); only a failing *git* command re-clones, and `.ref` is never reset;
- an expanded file's old keys are deleted exactly: the file's key itself plus its subtree
  with a trailing "/", never the greedy prefix (#118, #128, #184: updating `application.yml`
  wiped `application-dev`'s keys); and only after the store was read successfully;
- `.ref` advances only after every write and delete of the sync succeeded, so a failure is
  retried from the old commit on the next trigger;
- writes go in transactions of at most 64 operations (an expanded file's deletes and writes
  together when they fit), so readers never see an expanded file half-deleted.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

import yaml

from meshctl.client import Client, ConsulError, Unreachable, kv_op
from meshctl.sync import gitcli
from meshctl.sync.gitcli import Change, GitError

log = logging.getLogger(__name__)

# git2consul's exit codes.
EXIT_OK = 0
EXIT_NO_REPOS = 1  # also: bad command line
EXIT_INIT = 2  # invalid repo config, seeding or reading the config failed, a repo failed to initialise
EXIT_FLAG_VALUE = {"endpoint": 3, "local_store": 3, "config_key": 4, "port": 5, "token": 6, "config_file": 7}

DEFAULT_CONFIG_KEY = "git2consul/config"
EXPAND_EXTENSIONS = ("json", "yaml", "yml", "properties")
HOOK_TYPES = ("polling", "github", "gitlab", "stash", "bitbucket")
WEBHOOK_TYPES = HOOK_TYPES[1:]

TXN_MAX_OPS = 64  # Consul's limit before 1.x raised it to 128: safe against any Consul
TXN_MAX_BYTES = 256 * 1024  # raw value bytes per transaction; larger values go alone as plain PUTs


class ConfigProblem(Exception):
    """The configuration cannot be used; `exit_code` is git2consul's for that case."""

    def __init__(self, message: str, exit_code: int = EXIT_INIT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# -- configuration ---------------------------------------------------------------------------


@dataclass
class HookConfig:
    """One entry of a repo's `hooks`: polling every `interval` minutes, or a webhook on `port`/`url`."""

    type: str
    interval: float | None = None  # minutes; fractions allowed (a meshctl extension)
    port: int | None = None
    url: str | None = None
    address: str = "127.0.0.1"  # meshctl extension: the webhook's listen address
    secret: str | None = None  # meshctl extension: GitHub/Bitbucket signature or GitLab token


@dataclass
class RepoConfig:
    """One entry of `repos`, with git2consul's defaults."""

    name: str
    url: str
    branches: list[str]
    hooks: list[HookConfig] = field(default_factory=list)
    include_branch_name: bool = True
    ignore_repo_name: bool = False
    mountpoint: str | None = None
    source_root: str | None = None
    expand_keys: bool = False
    expand_keys_diff: bool = False
    ignore_file_extension: bool = False
    common_properties: str | None = None
    support_tags: bool = False


@dataclass
class Git2ConsulConfig:
    """The whole config document (the `git2consul/config` key)."""

    repos: list[RepoConfig]
    local_store: str | None = None
    no_daemon: bool = False
    halt_on_change: bool = False
    log_level: str | None = None  # the lowest level of the bunyan `logger.streams`


def _is_true(value: Any) -> bool:
    # git2consul tests options with `=== true`: "true" (a string) or 1 leave them off.
    return value is True


def _number(value: Any) -> float | None:
    """A JSON number or a numeric string (git2consul accepts `"interval": "1"`), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _parse_hook(repo: str, raw: Any) -> HookConfig:
    if not isinstance(raw, dict):
        raise ConfigProblem(f"Failed to load repo {repo} due to Hook configuration failed: a hook must be an object")
    kind = raw.get("type")
    if kind not in HOOK_TYPES:
        raise ConfigProblem(f"Failed to load repo {repo} due to Invalid hook type {kind}")
    hook = HookConfig(type=kind)
    if kind == "polling":
        interval = _number(raw.get("interval"))
        if interval is None or not math.isfinite(interval) or interval <= 0:
            raise ConfigProblem(f"Failed to load repo {repo} due to Hook configuration failed due to "
                                f"Polling intervals must be positive numbers (minutes), got {raw.get('interval')!r}")
        hook.interval = interval
        return hook
    port = _number(raw.get("port"))
    if port is None or port != int(port) or not 0 < port < 65536:
        raise ConfigProblem(f"Failed to load repo {repo} due to Hook configuration failed due to "
                            f"Invalid webhook port {raw.get('port')}")
    url = raw.get("url")
    if not isinstance(url, str) or not url:
        raise ConfigProblem(f"Failed to load repo {repo} due to Hook configuration failed due to No config url provided")
    hook.port, hook.url = int(port), "/" + url.strip("/")  # express matched "/hook" and "/hook/" alike
    if isinstance(raw.get("address"), str) and raw["address"]:
        hook.address = raw["address"]
    if isinstance(raw.get("secret"), str) and raw["secret"]:
        hook.secret = raw["secret"]
    return hook


def _parse_repo(raw: Any) -> RepoConfig:
    if not isinstance(raw, dict):
        raise ConfigProblem("Failed to load repo: each entry of repos must be an object")
    name, url, branches = raw.get("name"), raw.get("url"), raw.get("branches")
    if not (isinstance(name, str) and name and isinstance(url, str) and url and isinstance(branches, list)):
        label = name if isinstance(name, str) and name else "<unnamed>"
        raise ConfigProblem(f"Failed to load repo {label} due to A repo must have a local_store, a url, a name, "
                            "and a branch array.")
    mountpoint = raw.get("mountpoint")
    if mountpoint is not None and not isinstance(mountpoint, str):
        raise ConfigProblem(f"Failed to load repo {name} due to mountpoint must be a string.")
    if mountpoint and (mountpoint.startswith("/") or mountpoint.endswith("/")):
        raise ConfigProblem(f"Failed to load repo {name} due to mountpoint must not start or end with /.")
    if not branches:
        raise ConfigProblem(f"Failed to load repo {name} due to No branches specified.")
    if not all(isinstance(b, str) and b for b in branches):
        raise ConfigProblem(f"Failed to load repo {name} due to branch names must be non-empty strings.")
    if len(set(branches)) != len(branches):
        raise ConfigProblem(f"Failed to load repo {name} due to Duplicate name found in branches for repo {name}: "
                            f"{','.join(branches)}")
    source_root = raw.get("source_root")
    if source_root is not None and not isinstance(source_root, str):
        raise ConfigProblem(f"Failed to load repo {name} due to source_root must be a string.")
    common = raw.get("common_properties")
    hooks_raw = raw.get("hooks") or []
    if not isinstance(hooks_raw, list):
        raise ConfigProblem(f"Failed to load repo {name} due to hooks must be an array.")
    include = raw.get("include_branch_name")
    return RepoConfig(
        name=name, url=url, branches=list(branches), hooks=[_parse_hook(name, h) for h in hooks_raw],
        include_branch_name=include is None or include is True,
        ignore_repo_name=_is_true(raw.get("ignore_repo_name")),
        mountpoint=mountpoint or None,
        # git2consul strips one trailing "/"; a leading one made every file fall outside the root.
        source_root=(source_root.strip("/") or None) if source_root else None,
        expand_keys=_is_true(raw.get("expand_keys")),
        expand_keys_diff=_is_true(raw.get("expand_keys_diff")),
        ignore_file_extension=_is_true(raw.get("ignore_file_extension")),
        common_properties=common if isinstance(common, str) and common else None,
        support_tags=_is_true(raw.get("support_tags")),
    )


_BUNYAN_LEVELS = {"trace": 10, "debug": 20, "info": 30, "warn": 40, "error": 50, "fatal": 60}


def _log_level(logger: Any) -> str | None:
    """The most verbose level among the bunyan `logger.streams` (git2consul's logging config)."""
    if not isinstance(logger, dict):
        return None
    levels = [s.get("level") for s in logger.get("streams") or [] if isinstance(s, dict)]
    known = [lv for lv in levels if isinstance(lv, str) and lv in _BUNYAN_LEVELS]
    return min(known, key=_BUNYAN_LEVELS.__getitem__) if known else None


def parse_config(raw: bytes | str | None) -> Git2ConsulConfig:
    """Parse and validate git2consul's config JSON; ConfigProblem carries git2consul's exit code."""
    if raw is None:
        raise ConfigProblem("Config value is not valid JSON: the key holds no value")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigProblem(f"Config value is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ConfigProblem("Config value is not valid JSON: expected an object")
    repos_raw = data.get("repos")
    if not isinstance(repos_raw, list) or not repos_raw:
        raise ConfigProblem("No repos found in configuration.  Halting.", EXIT_NO_REPOS)
    repos = [_parse_repo(r) for r in repos_raw]
    seen: set[str] = set()
    for repo in repos:
        if repo.name in seen:
            raise ConfigProblem(f"Failed to load repo {repo.name} due to A repo with that name is already tracked.")
        seen.add(repo.name)
    routes: set[tuple[int, str]] = set()
    for repo in repos:
        for hook in repo.hooks:
            if hook.type in WEBHOOK_TYPES:
                assert hook.port is not None and hook.url is not None
                if (hook.port, hook.url) in routes:
                    raise ConfigProblem(f"Failed to load repo {repo.name} due to Hook configuration failed due to "
                                        f"A webhook is already listening on {hook.port}, {hook.url}")
                routes.add((hook.port, hook.url))
    local_store = data.get("local_store")
    return Git2ConsulConfig(
        repos=repos,
        local_store=local_store if isinstance(local_store, str) and local_store else None,
        no_daemon=_is_true(data.get("no_daemon")),
        halt_on_change=_is_true(data.get("halt_on_change")),
        log_level=_log_level(data.get("logger")),
    )


def validate_local_store(path: str) -> None:
    """Create the clone directory if needed and check it is a writable directory (ConfigProblem if not)."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise ConfigProblem(f"Failed to create local store {path}: {e.strerror or e}") from None
    if not os.path.isdir(path):
        raise ConfigProblem(f"local store {path} is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigProblem(f"local store {path} is not writeable")


# -- key layout ------------------------------------------------------------------------------


def _join(*parts: str | None) -> str:
    return "/".join(p for p in parts if p)


def branch_root(repo: RepoConfig, branch: str) -> str:
    """The key prefix every file of the branch lands under ("" when all parts are switched off)."""
    root = _join(repo.mountpoint, None if repo.ignore_repo_name else repo.name,
                 branch if repo.include_branch_name else None)
    return root + "/" if root else ""


def file_key(repo: RepoConfig, branch: str, path: str) -> str | None:
    """`[mountpoint/][repo/][branch/]<path under source_root>`; None for a file outside `source_root`.

    git2consul tested `source_root` as a bare string prefix (root `conf` took `config/x` as
    `ig/x`); here the root must be a whole directory.
    """
    if repo.source_root:
        if not path.startswith(repo.source_root + "/"):
            return None
        path = path[len(repo.source_root) + 1:]
    if repo.ignore_file_extension and (repo.expand_keys or repo.expand_keys_diff):
        stem, dot, ext = path.rpartition(".")
        if dot and stem and ext in EXPAND_EXTENSIONS:
            path = stem
    return branch_root(repo, branch) + path


def ref_key(repo: RepoConfig, branch: str) -> str:
    """Where the last synced commit of a branch lives: `[mountpoint/][repo/]<branch>.ref`."""
    return _join(repo.mountpoint, None if repo.ignore_repo_name else repo.name, f"{branch}.ref")


# -- expanders -------------------------------------------------------------------------------


def trim(raw: bytes) -> bytes:
    """The file body with surrounding whitespace removed (JavaScript's `trim`, BOM included)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.strip()  # binary content: git2consul mangled it through UTF-8; keep the bytes
    return text.strip().lstrip("\ufeff").strip().encode("utf-8")


def _js_number(value: float) -> str:
    """A float as JavaScript's String(number) writes it (1.0 -> "1", 1e-07 -> "1e-7")."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:  # Python writes 1e-07, JavaScript 1e-7
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{'-' if exponent.startswith('-') else '+'}{int(exponent.lstrip('+-'))}"
    return text


def leaf_text(value: Any) -> str:
    """A scalar as git2consul stores it: JavaScript's String(value); null is an empty value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _js_number(value)
    if isinstance(value, (datetime, date)):
        # js-yaml made a Date, which git2consul then wrote as nothing at all; the text is more useful.
        return value.isoformat()
    return str(value)


def _segment(name: Any) -> str:
    # encodeURIComponent: everything but A-Z a-z 0-9 - _ . ! ~ * ' ( ) is percent-encoded.
    return quote(leaf_text(name), safe="-_.!~*'()")


def flatten(obj: Mapping[Any, Any], prefix: str) -> dict[str, bytes]:
    """One key per leaf: nested objects become path segments (URI-encoded), arrays are skipped."""
    out: dict[str, bytes] = {}

    def walk(node: Mapping[Any, Any], at: str) -> None:
        for name, value in node.items():
            key = f"{at}/{_segment(name)}"
            if isinstance(value, (list, tuple, set)):
                continue
            if isinstance(value, Mapping):
                walk(value, key)
            else:
                out[key] = leaf_text(value).encode("utf-8")

    walk(obj, prefix)
    return out


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 booleans, as js-yaml's safeLoad reads them.

    Under YAML 1.1 `enabled: yes` would become "true"; git2consul (js-yaml) stores "yes".
    """


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


class PropertiesError(ValueError):
    """A .properties file that cannot be expanded (an undefined `${variable}`)."""


_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def _decode_properties_text(raw: str, lookup: Callable[[str], str]) -> str:
    """Java escapes (`\\t`, `\\uXXXX`, `\\=`...) and `${name}` variables; `\\${` stays literal."""
    out: list[str] = []
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c == "\\" and i + 1 < n:
            nxt = raw[i + 1]
            if nxt == "u" and _HEX4.fullmatch(raw, i + 2, i + 6):
                out.append(chr(int(raw[i + 2:i + 6], 16)))
                i += 6
            else:
                out.append(_ESCAPES.get(nxt, nxt))
                i += 2
            continue
        if c == "$" and raw.startswith("{", i + 1):
            end = raw.find("}", i + 2)
            if end != -1:
                out.append(lookup(raw[i + 2:end]))
                i = end + 1
                continue
        out.append(c)
        i += 1
    return "".join(out)


def _logical_lines(text: str) -> Iterable[str]:
    """Lines with comments and blanks dropped and backslash continuations joined."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].lstrip(" \t\f")
        i += 1
        if not line or line[0] in "#!":
            continue
        while (len(line) - len(line.rstrip("\\"))) % 2 == 1:
            line = line[:-1]
            if i >= len(lines):
                break
            line += lines[i].lstrip(" \t\f")
            i += 1
        yield line


def _split_property(line: str) -> tuple[str, str]:
    """Key and value: the key ends at the first unescaped `=`, `:` or whitespace."""
    i, n = 0, len(line)
    while i < n:
        if line[i] == "\\":
            i += 2
            continue
        if line[i] in "=: \t\f":
            break
        i += 1
    key, j = line[:i], i
    while j < n and line[j] in " \t\f":
        j += 1
    if j < n and line[j] in "=:":
        j += 1
    while j < n and line[j] in " \t\f":
        j += 1
    return key, line[j:]


def parse_properties(text: str, variables: Mapping[str, str] | None = None) -> dict[str, str]:
    """A Java .properties file as flat key → value, with `${var}` from earlier keys, then `variables`.

    git2consul's parser (node `properties`, variables on) also turned values into numbers and
    booleans before writing them back as text ("1.0" became "1"); here values stay as written.
    """
    props: dict[str, str] = {}
    external = variables or {}

    def lookup(name: str) -> str:
        if name in props:
            return props[name]
        if name in external:
            return external[name]
        raise PropertiesError(f'The property "{name}" is not defined')

    for line in _logical_lines(text):
        raw_key, raw_value = _split_property(line)
        key = _decode_properties_text(raw_key, lookup)
        props[key] = _decode_properties_text(raw_value, lookup)
    return props


def expand_entries(repo: RepoConfig, path: str, key: str, raw: bytes,
                   common: Callable[[], bytes | None] = lambda: None) -> dict[str, bytes]:
    """The keys one file produces: itself trimmed, or (expand_keys) one key per leaf of its document.

    A document that does not parse (invalid JSON or YAML, a .properties file with an undefined
    variable) is stored flat, as git2consul does. A JSON or YAML document whose top level is
    not an object is stored flat too (git2consul wrote array indices, or nothing at all).
    """
    body = trim(raw)
    flat = {key: body}
    if not repo.expand_keys:
        return flat
    ext = path.rpartition(".")[2] if "." in path else ""
    if ext not in EXPAND_EXTENSIONS:
        return flat
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return flat
    doc: Any
    try:
        if ext == "json":
            doc = json.loads(text)
        elif ext in ("yaml", "yml"):
            doc = yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass
        else:
            common_raw = common()
            shared = parse_properties(common_raw.decode("utf-8", "replace")) if common_raw else {}
            doc = parse_properties(raw.decode("utf-8", "replace"), shared)
    except (ValueError, yaml.YAMLError) as e:
        log.warning("Failed to parse %s (%s). Using body string as a KV.", path, str(e).splitlines()[0])
        return flat
    if not isinstance(doc, Mapping):
        return flat
    return flatten(doc, key)


# -- applying operations ---------------------------------------------------------------------


def set_op(key: str, value: bytes) -> dict[str, Any]:
    """A txn `set` with the raw value (`client.txn.apply` base64-encodes bytes; a large one goes as a PUT)."""
    return {"KV": {"Verb": "set", "Key": key, "Value": value}}


def _value_size(op: dict[str, Any]) -> int:
    value = op["KV"].get("Value")
    return len(value) if isinstance(value, (bytes, str)) else 0


def batches(groups: Iterable[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """Pack groups of KV operations into transactions, in order, keeping a group whole when it fits.

    A value larger than TXN_MAX_BYTES travels alone (it is sent as a plain PUT).
    """
    out: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0

    def flush() -> None:
        nonlocal current, size
        if current:
            out.append(current)
        current, size = [], 0

    for group in groups:
        group_size = sum(_value_size(op) for op in group)
        if current and (len(current) + len(group) > TXN_MAX_OPS or size + group_size > TXN_MAX_BYTES):
            flush()
        for op in group:
            op_size = _value_size(op)
            if op_size > TXN_MAX_BYTES:
                flush()
                out.append([op])
                continue
            if len(current) >= TXN_MAX_OPS or size + op_size > TXN_MAX_BYTES:
                flush()
            current.append(op)
            size += op_size
    flush()
    return out


def apply_batches(client: Client, txns: list[list[dict[str, Any]]]) -> list[str]:
    """Apply the transactions in order; the errors (empty when everything was applied).

    An unreachable store stops at once (nothing after it can succeed); any other failure is
    recorded and the remaining transactions still run, so one bad file does not hold back the
    others (the sync stays failed and `.ref` where it was).
    """
    errors: list[str] = []
    for ops in txns:
        try:
            if len(ops) == 1 and _value_size(ops[0]) > TXN_MAX_BYTES:
                kv = ops[0]["KV"]
                client.kv.put(kv["Key"], kv["Value"])
                continue
            result = client.txn.apply(ops)
        except Unreachable as e:
            errors.append(f"store unreachable: {e}")
            break
        except ConsulError as e:
            keys = ", ".join(op["KV"]["Key"] for op in ops[:3]) + (" ..." if len(ops) > 3 else "")
            errors.append(f"Failed to write {keys} due to {e}")
            continue
        if not result.ok:
            errors.extend(f"Failed to write {ops[err.op_index]['KV']['Key']} due to {err.what}"
                          for err in result.errors)
    return errors


# -- the per-branch state machine ----------------------------------------------------------------


@dataclass
class SyncResult:
    """The outcome of one `BranchSync.sync()`."""

    branch: str
    status: str  # "unchanged" | "synced" | "failed"
    ref: str | None = None  # the commit now recorded in `.ref` (the old one when failed)
    written: int = 0
    deleted: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the store now mirrors the branch's head."""
        return self.status != "failed"


@dataclass
class _FileWrite:
    path: str
    key: str
    entries: dict[str, bytes]


class BranchSync:
    """Keeps one branch (or tag) of one repo mirrored in the KV store; `sync()` is one step."""

    def __init__(self, client: Client, repo: RepoConfig, branch: str, local_store: str, *, tag: bool = False) -> None:
        self.client = client
        self.repo = repo
        self.branch = branch
        self.tag = tag  # tags are immutable: cloned once, never fetched again
        self.workdir = os.path.join(local_store, repo.name, branch)
        self._fresh = False  # this process has already brought the clone up to date once (tags)

    def __repr__(self) -> str:
        return f"BranchSync({self.repo.name}/{self.branch})"

    # git -----------------------------------------------------------------------------------

    def _clone(self) -> None:
        if os.path.lexists(self.workdir):
            log.warning("Purging branch cache %s for branch %s in repo %s", self.workdir, self.branch, self.repo.name)
            shutil.rmtree(self.workdir, ignore_errors=True)
        gitcli.clone(self.repo.url, self.branch, self.workdir)

    def checkout(self) -> None:
        """Bring the local clone to the remote's head: update it, or (re-)clone when it is missing or broken.

        Only git failures lead here to a fresh clone; the store is not touched and `.ref` keeps
        its value, so the next diff still starts from the last synced commit.
        """
        if self.tag and self._fresh:
            return
        if os.path.isdir(os.path.join(self.workdir, ".git")):
            try:
                if gitcli.cloned_from(self.workdir) != self.repo.url:
                    raise GitError(f"its origin is not {self.repo.url}")  # the config's url changed
                if not self.tag:
                    gitcli.update(self.workdir, self.branch)
                gitcli.head(self.workdir)
                self._fresh = True
                return
            except GitError as e:
                log.warning("Failed to update %s (%s); cloning it again", self.workdir, e)
        self._clone()
        self._fresh = True

    def _read(self, path: str) -> bytes | None:
        """A file of the checked-out tree; None (with a warning) when it cannot be a value."""
        full = os.path.join(self.workdir, path)
        if os.path.islink(full):
            # git2consul followed links anywhere, publishing e.g. /etc files: only inside the clone here.
            target = os.path.realpath(full)
            if os.path.commonpath([target, os.path.realpath(self.workdir)]) != os.path.realpath(self.workdir):
                log.warning("Skipping %s: symbolic link leaves the repository", path)
                return None
        try:
            with open(full, "rb") as f:
                return f.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:
            log.warning("Skipping %s: %s", path, e.strerror or e)
            return None

    # planning --------------------------------------------------------------------------------

    def _changes(self, last: str | None, head: str) -> list[Change]:
        if last and gitcli.has_commit(self.workdir, last):
            changes = gitcli.changed_files(self.workdir, last, head)
        else:
            if last:
                log.warning("Last synced commit %s of %s/%s is not in its history (force push?); "
                            "writing every file", last, self.repo.name, self.branch)
            changes = [Change("M", p) for p in gitcli.list_files(self.workdir, head)]
        common = self.repo.common_properties
        if common and any(c.path == common for c in changes):
            # The shared variables changed: every other .properties file may expand differently.
            listed = {c.path for c in changes}
            changes += [Change("M", p) for p in gitcli.list_files(self.workdir, head)
                        if p.endswith(".properties") and p not in listed]
        return changes

    def _common(self) -> bytes | None:
        path = self.repo.common_properties
        if not path:
            return None
        data = self._read(path)
        if data is None:
            log.warning("Failed to read common variables %s", path)
        return data

    def plan(self, changes: list[Change]) -> list[list[dict[str, Any]]]:
        """The KV operations for `changes`, grouped per file: deletions first, then each written file.

        With expand_keys, the branch's existing keys are read once (an error propagates, and
        nothing is deleted) so each written file also removes exactly the keys of its previous
        version that vanished: its own key and its subtree, never a sibling sharing a prefix.
        """
        repo = self.repo
        expand = repo.expand_keys
        deletes: list[dict[str, Any]] = []
        writes: list[_FileWrite] = []
        common_cache: list[bytes | None] = []

        def common() -> bytes | None:
            if not common_cache:
                common_cache.append(self._common())
            return common_cache[0]

        for change in changes:
            key = file_key(repo, self.branch, change.path)
            if key is None:
                continue
            if change.status == "D":
                deletes.append(kv_op("delete", key))
                if expand:
                    deletes.append(kv_op("delete-tree", key + "/"))
            elif change.status in ("A", "M", "T"):
                raw = self._read(change.path)
                if raw is not None:
                    writes.append(_FileWrite(change.path, key, expand_entries(repo, change.path, key, raw, common)))
            else:
                log.error("Unknown git status %s for %s", change.status, change.path)

        groups: list[list[dict[str, Any]]] = [[op] for op in deletes]
        if not expand:
            groups += [[set_op(k, v) for k, v in w.entries.items()] for w in writes]
            return groups

        root = branch_root(repo, self.branch)
        existing: dict[str, bytes | None]
        if not writes:
            existing = {}
        elif repo.expand_keys_diff:
            existing = {p.key: p.value or b"" for p in self.client.kv.list_prefix(root).value}
        else:
            existing = dict.fromkeys(self.client.kv.keys(root).value)
        names = sorted(existing)
        wanted = {k for w in writes for k in w.entries}
        for w in writes:
            ops = []
            lo = bisect.bisect_left(names, w.key + "/")
            hi = bisect.bisect_left(names, w.key + "0")  # "0" sorts right after "/"
            scope = ([w.key] if w.key in existing else []) + names[lo:hi]
            ops += [kv_op("delete", k) for k in scope if k not in wanted]
            for k, v in w.entries.items():
                if repo.expand_keys_diff and existing.get(k) == v:
                    continue
                ops.append(set_op(k, v))
            groups.append(ops)
        return groups

    # the step ----------------------------------------------------------------------------------

    def sync(self) -> SyncResult:
        """Mirror the branch's current head into the store; never raises for git or store failures."""
        name = f"{self.repo.name}/{self.branch}"
        try:
            self.checkout()
            head = gitcli.head(self.workdir)
        except (GitError, OSError) as e:
            return SyncResult(self.branch, "failed", errors=[f"git: {e}"])
        key = ref_key(self.repo, self.branch)
        try:
            pair = self.client.kv.get(key).value
        except ConsulError as e:
            # Not "no ref": a failed read must neither purge nor rewrite anything (git2consul #126).
            return SyncResult(self.branch, "failed", errors=[f"Failed to read {key} due to {e}"])
        last = (pair.value or b"").decode("utf-8", "replace").strip() if pair else ""
        last = "" if last == "null" else last  # git2consul's purge path wrote null
        if last == head:
            log.debug("Ref %s already processed for branch %s", head, name)
            return SyncResult(self.branch, "unchanged", ref=head)
        try:
            changes = self._changes(last or None, head)
            groups = self.plan(changes)
        except GitError as e:
            return SyncResult(self.branch, "failed", ref=last or None, errors=[f"git: {e}"])
        except ConsulError as e:
            return SyncResult(self.branch, "failed", ref=last or None,
                              errors=[f"Failed to read existing keys due to {e}"])
        except OSError as e:  # an unreadable file: nothing written, retried on the next trigger
            return SyncResult(self.branch, "failed", ref=last or None, errors=[f"Failed to read a file: {e}"])
        ops = [op for g in groups for op in g]
        errors = apply_batches(self.client, batches(groups))
        written = sum(1 for op in ops if op["KV"]["Verb"] == "set")
        deleted = len(ops) - written
        if errors:
            for error in errors:
                log.error("%s: %s", name, error)
            return SyncResult(self.branch, "failed", ref=last or None, written=written, deleted=deleted,
                              errors=errors)
        try:
            self.client.kv.put(key, head)
        except ConsulError as e:
            return SyncResult(self.branch, "failed", ref=last or None, written=written, deleted=deleted,
                              errors=[f"Failed to write {key} due to {e}"])
        log.info("Synced %s to %s (%d changed files: %d keys written, %d deleted)", name, head[:12],
                 len(changes), written, deleted)
        return SyncResult(self.branch, "synced", ref=head, written=written, deleted=deleted)
