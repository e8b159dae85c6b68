"""Agent configuration files: -config-dir / -config-file in JSON, HCL or YAML.

Consul's layout: top-level `service` / `services` / `check` / `checks` definitions plus
agent settings (`enable_local_script_checks`, `dns_config`, `recursors`, `domain`, `ports`,
`node_name`, ...). Files of a directory load in lexical order; later files override
earlier settings, definitions accumulate. HCL blocks (`service { ... }`, repeatable)
arrive from python-hcl2 as lists of objects and are flattened here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import yaml

EXTENSIONS = (".json", ".hcl", ".yaml", ".yml")
# keys whose value is one object even when HCL gives a list of blocks
_OBJECT_KEYS = {"dns_config", "ports", "addresses", "meta", "node_meta", "weights", "header", "performance",
                "telemetry", "tagged_addresses", "service_ttl", "limits", "connect", "proxy", "acl", "tokens",
                "ui_config"}
# definitions: several blocks of these are several definitions
_MULTI_KEYS = {"service", "services", "check", "checks"}


class ConfigError(ValueError):
    """A configuration file that cannot be read; the message names the file."""


@dataclass
class FileConfig:
    """Everything the config files said: definitions and agent settings."""

    services: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


def load_paths(config_dirs: list[str], config_files: list[str]) -> FileConfig:
    """Read -config-file files and every config file in each -config-dir (lexical order)."""
    out = FileConfig()
    paths: list[str] = []
    for path in config_files:
        paths.append(path)
    for directory in config_dirs:
        if not os.path.isdir(directory):
            raise ConfigError(f"Error reading '{directory}': not a directory")
        for name in sorted(os.listdir(directory)):
            full = os.path.join(directory, name)
            if name.endswith(EXTENSIONS) and os.path.isfile(full):
                paths.append(full)
    for path in paths:
        merge(out, load_file(path))
        out.files.append(path)
    return out


def load_file(path: str) -> dict[str, Any]:
    """One file as a plain dict (HCL blocks flattened)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(f"Error reading '{path}': {exc}") from None
    return parse_text(text, path)


def parse_text(text: str, path: str) -> dict[str, Any]:
    """Parse by extension: .json, .yaml/.yml, else HCL."""
    try:
        if path.endswith(".json"):
            data = json.loads(text) if text.strip() else {}
        elif path.endswith((".yaml", ".yml")):
            data = yaml.safe_load(text) or {}
        else:
            data = _flatten(_parse_hcl(text))
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"Error parsing {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"Error parsing {path}: the top level must be an object")
    return data


def _parse_hcl(text: str) -> dict[str, Any]:
    import hcl2

    try:
        from hcl2.utils import SerializationOptions
    except ImportError:  # python-hcl2 < 6 already gives plain values
        return hcl2.loads(text)
    options = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True,
                                   preserve_heredocs=False)
    return hcl2.loads(text, serialization_options=options)


def _unquote(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _flatten(value: Any, key: str = "") -> Any:
    """HCL's block lists -> objects; stray quotes and metadata keys removed."""
    if isinstance(value, dict):
        return {_unquote(k): _flatten(v, _unquote(k)) for k, v in value.items() if not str(k).startswith("__")}
    if isinstance(value, list):
        items = [_flatten(v) for v in value]
        if key in _OBJECT_KEYS and items and all(isinstance(i, dict) for i in items):
            merged: dict[str, Any] = {}
            for item in items:
                merged.update(item)
            return merged
        return items
    return _unquote(value)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def merge(into: FileConfig, data: dict[str, Any]) -> None:
    """Add one file's definitions and settings (later settings win; maps merge one level)."""
    for key, value in data.items():
        if key in ("service", "services"):
            for svc in _as_list(value):
                if isinstance(svc, dict):
                    into.services.append(_service_blocks(svc))
                else:
                    raise ConfigError(f"'{key}' must be an object or a list of objects")
        elif key in ("check", "checks"):
            for chk in _as_list(value):
                if not isinstance(chk, dict):
                    raise ConfigError(f"'{key}' must be an object or a list of objects")
                into.checks.append(chk)
        elif isinstance(value, dict) and isinstance(into.settings.get(key), dict):
            into.settings[key] = {**into.settings[key], **value}
        else:
            into.settings[key] = value


def _service_blocks(svc: dict[str, Any]) -> dict[str, Any]:
    """Inside a service: several HCL `check` blocks become `checks`."""
    out = dict(svc)
    check = out.get("check")
    if isinstance(check, list):
        out.pop("check")
        out["checks"] = list(check) + _as_list(out.get("checks"))
    return out


def setting(settings: dict[str, Any], *path: str, default: Any = None) -> Any:
    """A nested setting by snake_case or CamelCase path, e.g. setting(s, "dns_config", "only_passing")."""
    node: Any = settings
    for part in path:
        if not isinstance(node, dict):
            return default
        camel = "".join(p[:1].upper() + p[1:] for p in part.split("_"))
        if part in node:
            node = node[part]
        elif camel in node:
            node = node[camel]
        else:
            return default
    return node
