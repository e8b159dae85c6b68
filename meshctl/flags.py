"""Go-style command-line flags on top of argparse.

Consul's tools take `-flag value` and `-flag=value` (one dash); Python users type
`--flag value`. Every flag declared here answers to both spellings.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


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


def duration_arg(value: str) -> float:
    """`parse_duration` as an argparse `type=`: a bad value is a flag error, not a traceback."""
    try:
        return parse_duration(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


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


def parse_duration(value: str | int | float) -> float:
    """Parse a Go duration ("1m30s", "250ms", "10s") into seconds; bare numbers are seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    text = value.strip()
    if not text:
        raise ValueError("empty duration")
    try:
        return float(text)
    except ValueError:
        pass
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    pos, total = 0, 0.0
    for match in _GO_DURATION.finditer(body):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(body) or pos == 0:
        raise ValueError(f"invalid duration {value!r}")
    return sign * total


def format_duration(seconds: float) -> str:
    """Format seconds the way Go's time.Duration.String() does ("15s", "1m30s", "250ms", "0s")."""
    if seconds == 0:
        return "0s"
    neg = seconds < 0
    s = abs(seconds)
    if s < 1:
        ms = s * 1000
        out = f"{ms:g}ms" if ms >= 1 else f"{s * 1e6:g}µs"
    else:
        h, rem = divmod(s, 3600)
        m, sec = divmod(rem, 60)
        out = ""
        if h:
            out += f"{int(h)}h"
        if h or m:
            out += f"{int(m)}m"
        out += f"{round(sec, 9):g}s"
    return ("-" if neg else "") + out
