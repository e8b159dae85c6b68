"""Durations in request bodies, read as Consul (Go) reads them.

A string goes through Go's `time.ParseDuration` — exactly its grammar, its int64 range and its
error texts (`time: invalid duration "NaN"`, `time: missing unit in duration "10"`, ...); a JSON
number is a count of nanoseconds, as Go's `time.Duration(float64)`. Nothing here ever yields
NaN, an infinity or a value past int64: those are the errors Go gives.
"""

from __future__ import annotations

import math

MAX_NS = (1 << 63) - 1
_UNITS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
          "h": 3600 * 10**9}
_DIGITS = "0123456789"


class DurationError(ValueError):
    """A duration Go refuses; the message is Go's."""


def _quote(text: str) -> str:
    """Go's time.quote: the text in double quotes, `"` and `\\` escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_go_duration(text: str) -> int:
    """Go's time.ParseDuration: nanoseconds, or DurationError with Go's message."""
    invalid = DurationError(f"time: invalid duration {_quote(text)}")
    s = text
    neg = False
    if s and s[0] in "+-":
        neg, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    if not s:
        raise invalid
    total = 0
    while s:
        if s[0] != "." and s[0] not in _DIGITS:
            raise invalid
        i = 0
        while i < len(s) and s[i] in _DIGITS:
            i += 1
        whole, had_whole, s = int(s[:i] or "0"), i > 0, s[i:]
        if whole > 1 << 63:
            raise invalid  # Go's leadingInt overflow
        frac, scale, had_frac = 0, 1, False
        if s.startswith("."):
            s = s[1:]
            i = 0
            while i < len(s) and s[i] in _DIGITS:
                if frac <= MAX_NS // 10:  # Go's leadingFraction stops adding digits at overflow
                    frac, scale = frac * 10 + int(s[i]), scale * 10
                i += 1
            had_frac, s = i > 0, s[i:]
        if not had_whole and not had_frac:
            raise invalid
        i = 0
        while i < len(s) and s[i] != "." and s[i] not in _DIGITS:
            i += 1
        if i == 0:
            raise DurationError(f"time: missing unit in duration {_quote(text)}")
        unit_name, s = s[:i], s[i:]
        unit = _UNITS.get(unit_name)
        if unit is None:
            raise DurationError(f"time: unknown unit {_quote(unit_name)} in duration {_quote(text)}")
        if whole > (1 << 63) // unit:
            raise invalid
        value = whole * unit
        if frac:
            value += int(float(frac) * (float(unit) / scale))
        total += value
        if total > 1 << 63:
            raise invalid
    if neg:
        return -total
    if total > MAX_NS:
        raise invalid
    return total


def json_duration_ns(value: object, field: str) -> int:
    """A duration field of a JSON body: a Go duration string, or a number of nanoseconds.

    `field` names the field in the error, as Go's decoder does (`CheckType.TTL`).
    """
    if isinstance(value, str):
        return parse_go_duration(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = {bool: "bool", list: "array", dict: "object"}.get(type(value), "value")
        raise DurationError(f"json: cannot unmarshal {kind} into Go struct field {field} of type time.Duration")
    if not math.isfinite(value) or not -(1 << 63) <= value <= MAX_NS:
        literal = f"{value:g}".replace("e+", "e")
        raise DurationError(f"json: cannot unmarshal number {literal} into Go struct field {field} "
                            "of type time.Duration")
    return int(value)
