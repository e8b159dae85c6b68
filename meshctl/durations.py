"""Durations as Go writes them: time.ParseDuration's grammar, time.Duration.String()'s output.

The one parser of the project (flags, config files, HTTP parameters, template and tool
configs). Go's grammar: an optional sign, then one or more `<number><unit>` parts
("1h30m", "1.5s", ".5ms", "-2m"), units ns, us (µs, μs), ms, s, m, h; "0" alone needs no
unit. meshctl's one extension, kept from its first release: a bare number ("5", 2.5) is
seconds, where Go would say "missing unit".
"""

from __future__ import annotations

import argparse
import re

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
          "m": 60_000_000_000, "h": 3_600_000_000_000}
_PART = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
MAX_NS = 2**63 - 1  # Go's time.Duration is an int64 of nanoseconds


def parse_go_ns(text: str) -> int:
    """Go's time.ParseDuration exactly: nanoseconds, or ValueError with Go's message."""
    quoted = f'"{text}"'
    s = text
    negative = False
    if s[:1] in ("+", "-"):
        negative = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f"time: invalid duration {quoted}")
    total = 0
    while s:
        match = _PART.match(s)
        assert match is not None  # every group may be empty
        whole, frac, unit = match.group(1), match.group(2), match.group(3)
        if not whole and not frac:
            raise ValueError(f"time: invalid duration {quoted}")
        if not unit:
            raise ValueError(f"time: missing unit in duration {quoted}")
        scale = _UNITS.get(unit)
        if scale is None:
            raise ValueError(f'time: unknown unit "{unit}" in duration {quoted}')
        part = int(whole or "0") * scale
        if frac:
            part += int(frac) * scale // 10 ** len(frac)
        total += part
        if total > MAX_NS:
            raise ValueError(f"time: invalid duration {quoted}")
        s = s[match.end():]
    return -total if negative else total


def parse_duration(value: str | int | float) -> float:
    """A Go duration ("1m30s", "250ms") in seconds; a bare number is seconds."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    text = value.strip()
    if _NUMBER.fullmatch(text):
        return float(text)
    return parse_go_ns(text) / 1e9


def duration_arg(value: str) -> float:
    """`parse_duration` as an argparse `type=`: a bad value is a flag error, not a traceback."""
    try:
        return parse_duration(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


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
