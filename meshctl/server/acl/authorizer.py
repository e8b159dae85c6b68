"""Compiled permissions of one token: `Authorizer.allowed(resource, name, access)`.

Resolution, per segment type: an exact rule on the name wins; else the longest matching
prefix rule; else the cluster's default policy. Levels grant: `read` ⊂ `list` ⊂ `write`,
`deny` grants nothing. The single-value resources (`acl`, `operator`, `keyring`, `mesh`,
`peering`) have one level each; with no rule, `acl` is denied even under a default
`allow` (as Consul's allow-all authorizer, which may not manage ACLs).

Speed: prefixes are kept in a dict, probed only at the lengths that some prefix has; every
answer is memoised per (resource, name, access). An authorizer is built once per token and
ACL index (`AuthorizerCache`), so a hot KV GET costs two dict lookups.
"""

from __future__ import annotations

from typing import Any

from meshctl.server.acl.policy import (
    GRANTS,
    SEGMENTS,
    Rules,
    node_identity_rules,
    parse_rules,
    service_identity_rules,
)

MEMO_LIMIT = 50_000
CACHE_LIMIT = 4096


class Authorizer:
    """What one token may do (its merged policies over the default policy)."""

    __slots__ = ("accessor", "default_allow", "_exact", "_prefix", "_lengths", "_single", "_memo")

    def __init__(self, rules: Rules, default_allow: bool, accessor: str = "") -> None:
        self.accessor = accessor
        self.default_allow = default_allow
        self._exact = rules.exact
        self._prefix = rules.prefix
        self._lengths = {kind: sorted({len(p) for p in rules.prefix[kind]}, reverse=True) for kind in SEGMENTS}
        self._single = dict(rules.single)
        self._memo: dict[tuple[str, str, str], bool] = {}

    def level(self, resource: str, name: str) -> str | None:
        """The level the rules give on `resource` `name` (None: no rule applies)."""
        if resource not in self._exact:
            return self._single.get(resource)
        level = self._exact[resource].get(name)
        if level is not None:
            return level
        prefixes = self._prefix[resource]
        size = len(name)
        for length in self._lengths[resource]:
            if length <= size:
                level = prefixes.get(name[:length])
                if level is not None:
                    return level
        return None

    def allowed(self, resource: str, name: str, access: str) -> bool:
        """May this token have `access` (read, list, write) on `resource` `name`?"""
        key = (resource, name, access)
        answer = self._memo.get(key)
        if answer is None:
            level = self.level(resource, name)
            if level is None:
                answer = self.default_allow and resource != "acl"
            else:
                answer = level in GRANTS[access]
            if len(self._memo) >= MEMO_LIMIT:
                self._memo.clear()
            self._memo[key] = answer
        return answer


def compile_rules(rule_texts: list[str], services: list[str] | None = None, nodes: list[str] | None = None) -> Rules:
    """Merge policy rule texts and synthesised identity policies into one `Rules`."""
    merged = Rules()
    for text in rule_texts:
        merged.merge(_parsed(text))
    for service in services or ():
        merged.merge(service_identity_rules(service))
    for node in nodes or ():
        merged.merge(node_identity_rules(node))
    return merged


_PARSED: dict[str, Rules] = {}


def _parsed(text: str) -> Rules:
    """Parse a stored policy's rules once (they were validated when the policy was written)."""
    rules = _PARSED.get(text)
    if rules is None:
        try:
            rules = parse_rules(text)
        except ValueError:
            rules = Rules()  # cannot happen for rules written through the API
        if len(_PARSED) >= CACHE_LIMIT:
            _PARSED.clear()
        _PARSED[text] = rules
    return rules


class AuthorizerCache:
    """Authorizers by token secret, valid while the ACL index they were built at holds."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, bool], tuple[int, Any]] = {}

    def get(self, secret: str, index: int, default_allow: bool, build: Any) -> Any:
        """The cached value for `secret` at `index`, else `build()` (whose result is cached)."""
        key = (secret, default_allow)
        entry = self._entries.get(key)
        if entry is not None and entry[0] == index:
            return entry[1]
        value = build()
        if len(self._entries) >= CACHE_LIMIT:
            self._entries.clear()
        self._entries[key] = (index, value)
        return value

    def clear(self) -> None:
        self._entries.clear()
