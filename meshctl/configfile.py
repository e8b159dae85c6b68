"""Configuration files of every meshctl part: reading JSON / HCL / YAML, Consul's merge, the one ConfigError.

`read(path)` gives a `Source` (its text and data; format by extension or `-config-format`),
`merge(a, b)` combines two sources the way Consul's agent does (agent/config/merge.go:
objects merge key by key, lists append, any other value is replaced by the later one), and
`line_of(text, key_path)` finds the line a key is set on, for error messages that point at it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from meshctl import hcl

FORMATS = ("json", "hcl", "yaml")
EXTENSIONS = {".json": "json", ".hcl": "hcl", ".yaml": "yaml", ".yml": "yaml"}


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the file, the key and the line when known."""


@dataclass
class Source:
    """One configuration file as read: where it is, its text, its data (a JSON object's worth)."""

    path: str
    text: str
    data: dict[str, Any] = field(default_factory=dict)


def format_of(path: str, fmt: str | None = None) -> str | None:
    """`fmt` (-config-format wins, as in Consul), else json / hcl / yaml by extension; None: unknown."""
    if fmt:
        return fmt
    for ext, name in EXTENSIONS.items():
        if path.endswith(ext):
            return name
    return None


def read(path: str, fmt: str | None = None) -> Source:
    """Read and parse one file; ConfigError names the file (and the line, where the format gives one)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ConfigError(f"Error reading {path}: {reason}") from None
    return Source(path, text, parse(text, path, format_of(path, fmt) or "hcl"))


def parse(text: str, path: str, fmt: str) -> dict[str, Any]:
    """`text` in format `fmt` as data; the top level must be an object."""
    data: Any
    try:
        if fmt == "json":
            data = json.loads(text) if text.strip() else {}
        elif fmt == "yaml":
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = hcl.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"Error parsing {path}: line {exc.lineno}: {exc.msg}") from None
    except hcl.HCLError as exc:
        raise ConfigError(f"Error parsing {path}: line {exc.line}: {exc}") from None
    except Exception as exc:  # yaml's errors carry their position in the text
        first = " ".join(str(exc).split())
        raise ConfigError(f"Error parsing {path}: {first}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"Error parsing {path}: the top level must be an object")
    return data


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Consul's merge of a later source into an earlier one (objects: by key; lists: appended)."""
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            out[key] = merge(old, value)
        elif isinstance(old, list) and isinstance(value, list):
            out[key] = old + value
        else:
            out[key] = value
    return out


def line_of(text: str, path: tuple[str | int, ...]) -> int | None:
    """The line setting the key at `path` (("ports", "http")), searched key by key; None if not found."""
    lines = text.splitlines()
    start, found = 0, None
    for part in path:
        if isinstance(part, int):
            continue
        pattern = re.compile(r'(^|[\s{,\[])["\']?' + re.escape(part) + r'["\']?\s*[=:{]', re.I)
        for number in range(start, len(lines)):
            if pattern.search(lines[number]):
                start, found = number + 1, number + 1
                break
        else:
            return found
    return found
