"""Consul's ACL policy language: rules in HCL or JSON, parsed into `Rules`.

    key_prefix "app/" { policy = "read" }       # longest prefix wins
    key "app/secret"  { policy = "deny" }       # an exact rule beats any prefix
    service_prefix "" { policy = "read" }
    operator = "read"                           # single-value resources

Segments (`key`, `service`, `node`, `session`, `event`, `agent`, `query`, each with a
`_prefix` form) take `read`, `write` or `deny` (`key` also `list`); the single-value
resources (`acl`, `operator`, `keyring`, `mesh`, `peering`) take `read`, `write`, `deny`.
When several policies name the same segment they merge as Consul's policy merger does:
deny beats write beats list beats read. Errors name the line of the offending rule.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from meshctl import hcl

SEGMENTS = ("key", "service", "node", "session", "event", "agent", "query")
SINGLES = ("acl", "operator", "keyring", "mesh", "peering")
LEVELS = ("read", "list", "write", "deny")
RANK = {"read": 1, "list": 2, "write": 3, "deny": 4}  # merge precedence
GRANTS = {"read": frozenset({"read", "list", "write"}), "list": frozenset({"list", "write"}),
          "write": frozenset({"write"})}


class PolicyError(ValueError):
    """Rules that do not parse; the message names the line (HTTP 400)."""


@dataclass
class Rules:
    """Parsed rules: per segment type, exact names and prefixes -> level; single values."""

    exact: dict[str, dict[str, str]] = field(default_factory=lambda: {s: {} for s in SEGMENTS})
    prefix: dict[str, dict[str, str]] = field(default_factory=lambda: {s: {} for s in SEGMENTS})
    single: dict[str, str] = field(default_factory=dict)

    def merge(self, other: Rules) -> None:
        """Add another policy's rules (deny > write > list > read on the same segment)."""
        for kind in SEGMENTS:
            for mine, theirs in ((self.exact[kind], other.exact[kind]), (self.prefix[kind], other.prefix[kind])):
                for name, level in theirs.items():
                    if RANK[level] > RANK.get(mine.get(name, ""), 0):
                        mine[name] = level
        for name, level in other.single.items():
            if RANK[level] > RANK.get(self.single.get(name, ""), 0):
                self.single[name] = level


def parse_rules(text: str) -> Rules:
    """Parse HCL or JSON rules (JSON when the text starts with `{`); PolicyError names the line."""
    text = text or ""
    if not text.strip():
        return Rules()
    data = _parse_json(text) if text.lstrip().startswith("{") else _parse_hcl(text)
    rules = Rules()
    for raw_kind, value in data.items():
        kind = str(raw_kind)
        base = kind[: -len("_prefix")] if kind.endswith("_prefix") else kind
        if kind in SINGLES:
            level = _level_of(value)
            if level not in ("read", "write", "deny"):
                raise PolicyError(_at(text, kind, f'invalid {kind} policy "{level}"'))
            rules.merge(_single(kind, level))
        elif base in SEGMENTS:
            table = rules.prefix[base] if kind.endswith("_prefix") else rules.exact[base]
            for name, body in _segments(text, kind, value):
                segment_level = body.get("policy") if isinstance(body, dict) else None
                if not isinstance(segment_level, str):
                    raise PolicyError(_at(text, kind, f'{kind} "{name}": missing policy'))
                allowed = LEVELS if base == "key" else ("read", "write", "deny")
                if segment_level not in allowed:
                    raise PolicyError(_at(text, kind, f'invalid {kind} policy "{segment_level}" for "{name}"', name,
                                          segment_level))
                if RANK[segment_level] > RANK.get(table.get(name, ""), 0):
                    table[name] = segment_level
        else:
            raise PolicyError(_at(text, kind, f'unknown rule type "{kind}"'))
    return rules


def _single(kind: str, level: str) -> Rules:
    out = Rules()
    out.single[kind] = level
    return out


def _level_of(value: Any) -> str:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, dict) and "policy" in value:
        value = value["policy"]
    return value if isinstance(value, str) else repr(value)


def _segments(text: str, kind: str, value: Any) -> list[tuple[str, Any]]:
    """(name, body) pairs of a segment rule, from HCL's block lists or JSON's objects."""
    items = value if isinstance(value, list) else [value]
    out: list[tuple[str, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            raise PolicyError(_at(text, kind, f"{kind} must be a block with a name"))
        if "policy" in item and not any(isinstance(v, dict) for v in item.values()):
            raise PolicyError(_at(text, kind, f"{kind} needs a name, e.g. {kind} \"name\" {{ ... }}"))
        for name, body in item.items():
            out.append((str(name), body))
    return out


def _parse_json(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyError(f"line {exc.lineno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise PolicyError("line 1: rules must be a JSON object")
    return data


def _parse_hcl(text: str) -> dict[str, Any]:
    try:
        return hcl.loads(text)
    except hcl.HCLError as exc:
        raise PolicyError(f"line {exc.line}: {exc}") from None


def _at(text: str, kind: str, message: str, name: str | None = None, value: str | None = None) -> str:
    """`line N: message`: N is the line of the rule (its segment name; the bad value, if given)."""
    lines = text.splitlines()
    pattern = re.compile(r'(^|[\s{,"])' + re.escape(kind) + r'("|\s|=|:|$)')
    found = None
    for number, line in enumerate(lines, 1):
        if pattern.search(line) and (name is None or f'"{name}"' in line):
            found = number
            break
        if found is None and pattern.search(line) and name is not None:
            found = -number  # the rule type, if its name is on another line (JSON)
    start = abs(found) if found else 1
    if value is not None:
        for number in range(start, len(lines) + 1):
            if f'"{value}"' in lines[number - 1]:
                return f"line {number}: {message}"
    return f"line {start}: {message}"


GLOBAL_MANAGEMENT_RULES = """\
acl = "write"
agent_prefix "" {
  policy = "write"
}
event_prefix "" {
  policy = "write"
}
key_prefix "" {
  policy = "write"
}
keyring = "write"
node_prefix "" {
  policy = "write"
}
operator = "write"
mesh = "write"
peering = "write"
query_prefix "" {
  policy = "write"
}
service_prefix "" {
  policy = "write"
  intentions = "write"
}
session_prefix "" {
  policy = "write"
}"""


def service_identity_rules(service: str) -> Rules:
    """The policy Consul synthesises for a token's service identity."""
    rules = Rules()
    rules.exact["service"][service] = "write"
    rules.exact["service"][f"{service}-sidecar-proxy"] = "write"
    rules.prefix["service"][""] = "read"
    rules.prefix["node"][""] = "read"
    return rules


def node_identity_rules(node: str) -> Rules:
    """The policy Consul synthesises for a token's node identity."""
    rules = Rules()
    rules.exact["node"][node] = "write"
    rules.prefix["service"][""] = "read"
    return rules
