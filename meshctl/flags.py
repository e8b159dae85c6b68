"""Go-style command-line flags on top of argparse.

Consul's tools take `-flag value` and `-flag=value` (one dash); Python users type
`--flag value`. Every flag declared here answers to both spellings.
"""

from __future__ import annotations

import argparse
from typing import Any


class FlagParser(argparse.ArgumentParser):
    """An ArgumentParser whose `flag()` registers `-name` and `--name` together."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def flag(self, name: str, *aliases: str, **kwargs: Any) -> argparse.Action:
        """Declare a flag reachable as `-name`, `--name` and any extra aliases."""
        names = [f"-{name}", f"--{name}"]
        for alias in aliases:
            names += [f"-{alias}", f"--{alias}"]
        kwargs.setdefault("dest", name.replace("-", "_"))
        return self.add_argument(*names, **kwargs)

    def bool_flag(self, name: str, *aliases: str, default: bool | None = False, help: str | None = None) -> None:
        """A Go boolean flag: `-x`, `-x=true`, `-x=false` (and `--x`); a None default tells "not given"."""
        self.flag(name, *aliases, nargs="?", const=True, default=default, type=parse_bool, help=help)

    def _get_option_tuples(self, option_string: str) -> list[Any]:
        # Go's flag package neither abbreviates nor glues a value to a one-letter flag: without
        # this, `-vault-addr` would read as `-v ault-addr` instead of an unknown flag.
        return []

    def error(self, message: str) -> None:  # type: ignore[override]
        # One clear line and exit 1, as Consul's tools do on bad flags.
        self.exit(1, f"{self.prog}: {message}\n")


class FlagError(Exception):
    """A bad command line, raised by a `RaisingFlagParser` (tools with their own exit codes)."""


class RaisingFlagParser(FlagParser):
    """A FlagParser that raises FlagError instead of exiting (consul-template's tools exit 13)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise FlagError(message)


def parse_bool(value: str | bool) -> bool:
    """Go's strconv.ParseBool."""
    if isinstance(value, bool):
        return value
    v = value.strip()
    if v in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if v in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {value!r}")
