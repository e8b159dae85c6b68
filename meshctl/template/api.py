"""The data-source functions (key, service, tree ...) bound to a brain, recording what they used.

One `Api` object per template; `begin(brain)` starts an execution, the functions record each
dependency in `used` and, while the brain has no data for it, in `missing` (returning the
empty value consul-template returns on a first pass: "", [], None, False).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from meshctl.template.brain import Brain
from meshctl.template.dependency import (
    CatalogDatacentersQuery,
    CatalogNodeQuery,
    CatalogNodesQuery,
    CatalogServicesQuery,
    Dependency,
    FileQuery,
    HealthServiceQuery,
    KVGetQuery,
    KVListQuery,
)
from meshctl.template.dependency.kv_list import leaves, top_level
from meshctl.template.funcs import Scratch


class LookupError_(RuntimeError):
    """err_on_failed_lookup: a key that does not exist."""


class Api:
    """consul-template's API functions over one brain; not re-entrant across threads (one lock)."""

    def __init__(self, sandbox_path: str = "", err_on_failed_lookup: bool = False) -> None:
        self.sandbox_path = sandbox_path
        self.err_on_failed_lookup = err_on_failed_lookup
        self.brain = Brain()
        self.used: dict[str, Dependency] = {}
        self.missing: set[str] = set()
        self.scratch = Scratch()
        self.lock = threading.Lock()
        self._deps: dict[tuple[str, Any], Dependency] = {}

    def begin(self, brain: Brain) -> None:
        """Start an execution: fresh used/missing sets and scratchpad."""
        self.brain = brain
        self.used = {}
        self.missing = set()
        self.scratch = Scratch()

    def _dep(self, kind: type[Dependency], arg: Any) -> Dependency:
        key = (kind.__name__, arg)
        dep = self._deps.get(key)
        if dep is None:
            dep = kind(arg)  # type: ignore[call-arg]
            if len(self._deps) > 100_000:
                self._deps.clear()
            self._deps[key] = dep
        return dep

    def _recall(self, dep: Dependency) -> tuple[Any, bool]:
        key = str(dep)
        self.used[key] = dep
        value, ok = self.brain.recall(key)
        if not ok:
            self.missing.add(key)
        return value, ok

    # -- KV --------------------------------------------------------------------------------

    def key(self, path: str) -> str:
        """The value of a key; blocks the render until the key exists."""
        if not path:
            return ""
        dep = self._dep(KVGetQuery, path)
        pair, ok = self._recall(dep)
        if not ok:
            return ""
        if pair is None:
            if self.err_on_failed_lookup:
                raise LookupError_(f"key {path!r} does not exist")
            self.missing.add(str(dep))
            return ""
        return pair.Value

    def key_exists(self, path: str) -> bool:
        """Whether the key exists."""
        if not path:
            return False
        pair, _ = self._recall(self._dep(KVGetQuery, path))
        return pair is not None

    def key_or_default(self, path: str, default: Any) -> Any:
        """The key's value, or `default` when it is absent or empty."""
        if not path:
            return default
        pair, _ = self._recall(self._dep(KVGetQuery, path))
        if pair is None or pair.Value == "":
            return default
        return pair.Value

    def _list(self, prefix: str, pick: Callable[[list[Any]], list[Any]], safe: bool) -> list[Any]:
        dep = self._dep(KVListQuery, prefix or "")
        pairs, ok = self._recall(dep)
        if not ok:
            return []
        result = pick(pairs)
        if safe and not result:
            self.missing.add(str(dep))
        return result

    def ls(self, prefix: str = "") -> list[Any]:
        """Direct children of a prefix."""
        return self._list(prefix, top_level, False)

    def safe_ls(self, prefix: str = "") -> list[Any]:
        """Like ls, but an empty answer is not rendered."""
        return self._list(prefix, top_level, True)

    def tree(self, prefix: str = "") -> list[Any]:
        """Every entry under a prefix, folders excluded."""
        return self._list(prefix, leaves, False)

    def safe_tree(self, prefix: str = "") -> list[Any]:
        """Like tree, but an empty answer is not rendered."""
        return self._list(prefix, leaves, True)

    # -- catalog and health ----------------------------------------------------------------

    def service(self, *args: str) -> list[Any]:
        """Healthy instances: `service "tag.name@dc~near|filter"` or `service "name" "passing,warning"`."""
        if not args:
            raise ValueError("service: missing service name")
        text = "|".join(str(a) for a in args)
        value, ok = self._recall(self._dep(HealthServiceQuery, text))
        return value if ok else []

    def services(self, *args: str) -> list[Any]:
        """Every service with its tags: `services` or `services "@dc"`."""
        if len(args) > 1:
            raise ValueError(f"services: wrong number of arguments, expected 0 or 1, got {len(args)}")
        value, ok = self._recall(self._dep(CatalogServicesQuery, args[0] if args else ""))
        return value if ok else []

    def node(self, *args: str) -> Any:
        """One node with its services (the agent's node without a name); None until data."""
        if len(args) > 1:
            raise ValueError(f"node: wrong number of arguments, expected 0 or 1, got {len(args)}")
        value, ok = self._recall(self._dep(CatalogNodeQuery, args[0] if args else ""))
        return value if ok else None

    def nodes(self, *args: str) -> list[Any]:
        """Every node: `nodes` or `nodes "@dc~near"`."""
        if len(args) > 1:
            raise ValueError(f"nodes: wrong number of arguments, expected 0 or 1, got {len(args)}")
        value, ok = self._recall(self._dep(CatalogNodesQuery, args[0] if args else ""))
        return value if ok else []

    def datacenters(self, *args: Any) -> list[str]:
        """The known datacenters; `datacenters true` leaves out those without a reachable leader."""
        if len(args) > 1:
            raise ValueError(f"datacenters: wrong number of arguments, expected 0 or 1, got {len(args)}")
        ignore = bool(args[0]) if args else False
        value, ok = self._recall(self._dep(CatalogDatacentersQuery, ignore))
        return list(value) if ok else []

    def file(self, path: str) -> str:
        """A local file's contents (watched for changes)."""
        dep = self._dep(FileQuery, path)
        if self.sandbox_path:
            FileQuery(path, self.sandbox_path).check_sandbox()
        value, ok = self._recall(dep)
        return value if ok else ""

    def functions(self) -> dict[str, Callable[..., Any]]:
        """The API functions by their template names."""
        return {
            "key": self.key, "keyExists": self.key_exists, "keyOrDefault": self.key_or_default,
            "ls": self.ls, "safeLs": self.safe_ls, "tree": self.tree, "safeTree": self.safe_tree,
            "service": self.service, "services": self.services, "node": self.node, "nodes": self.nodes,
            "datacenters": self.datacenters, "file": self.file,
        }
