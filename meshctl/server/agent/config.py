"""The agent's configuration sources: -config-file / -config-dir files, then the flags, merged as Consul does.

Consul's order (https://developer.hashicorp.com/consul/docs/agent/config): files and
directories in the order given on the command line, a directory's files in lexical order
(.json and .hcl, and .yaml here; any file when -config-format is given; subdirectories
skipped); each later source is merged into the earlier ones (objects key by key, lists
such as retry_join appended, other values replaced) and the flags come last. Every source
is checked against the schema (schema.py) on its own, so an unknown key or a wrong type is
reported with the file, the key and its line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from meshctl.configfile import EXTENSIONS, ConfigError, Source, line_of, merge, read
from meshctl.server.agent.schema import AgentSettings, describe

FLAGS_SOURCE = "command-line flags"


@dataclass
class FileConfig:
    """Everything the sources said: the typed settings, their definitions, which files were read."""

    settings: AgentSettings = field(default_factory=AgentSettings)
    files: list[str] = field(default_factory=list)

    @property
    def services(self) -> list[dict[str, Any]]:
        return self.settings.services

    @property
    def checks(self) -> list[dict[str, Any]]:
        return self.settings.checks


def config_paths(sources: list[tuple[str, str]], fmt: str | None = None) -> list[str]:
    """The files to read: ("file", path) as given, ("dir", path) as its config files in lexical order."""
    paths: list[str] = []
    for kind, path in sources:
        if kind == "file":
            if os.path.isdir(path):  # Consul's -config-file takes a directory too
                kind = "dir"
            else:
                paths.append(path)
                continue
        if not os.path.isdir(path):
            raise ConfigError(f"Error reading '{path}': " + ("no such directory" if not os.path.exists(path)
                                                             else "not a directory"))
        try:
            names = sorted(os.listdir(path))
        except OSError as exc:
            raise ConfigError(f"Error reading '{path}': {exc.strerror or exc}") from None
        for name in names:
            full = os.path.join(path, name)
            if os.path.isfile(full) and (fmt or name.endswith(tuple(EXTENSIONS))):
                paths.append(full)
    return paths


def check_source(source: Source) -> dict[str, Any]:
    """One source checked against the schema: its settings, normalised (Consul's key names, typed values)."""
    try:
        model = AgentSettings.model_validate(source.data)
    except ValidationError as exc:
        reasons = []
        for loc, reason in describe(exc):
            line = line_of(source.text, loc) if source.text else None
            reasons.append(f"line {line}: {reason}" if line else reason)
        where = "Error in " + source.path if source.path == FLAGS_SOURCE else "Error parsing " + source.path
        raise ConfigError(f"{where}: {'; '.join(reasons)}") from None
    return model.model_dump(exclude_unset=True)


def load(sources: list[tuple[str, str]], fmt: str | None = None,
         flags: dict[str, Any] | None = None) -> FileConfig:
    """Read, check and merge the files of `sources`, then the `flags` (settings in the schema's shape)."""
    out = FileConfig()
    merged: dict[str, Any] = {}
    for path in config_paths(sources, fmt):
        merged = merge(merged, check_source(read(path, fmt)))
        out.files.append(path)
    if flags:
        merged = merge(merged, check_source(Source(FLAGS_SOURCE, "", flags)))
    out.settings = AgentSettings.model_validate(merged)
    return out


def load_paths(config_dirs: list[str], config_files: list[str], fmt: str | None = None) -> FileConfig:
    """-config-file files, then every config file of each -config-dir (no flags)."""
    return load([("file", p) for p in config_files] + [("dir", d) for d in config_dirs], fmt)
