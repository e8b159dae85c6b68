"""``timestamp`` and a formatter for Go time layouts (reference time Mon Jan 2 15:04:05 MST 2006).

The layout is tokenised exactly as Go's time.Format does (nextStdChunk), then each token is
rendered directly; unlike strftime this is locale-independent and supports unpadded fields.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable

__all__ = ["format_go_time", "go_layout_tokens", "timestamp"]

_MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

# Tests replace this to freeze time.
now: Callable[[], _dt.datetime] = lambda: _dt.datetime.now(_dt.UTC)  # noqa: E731


def _starts_lower(s: str) -> bool:
    return bool(s) and "a" <= s[0] <= "z"


def go_layout_tokens(layout: str) -> list[tuple[str, str]]:
    """Split a Go layout into ("lit", text) and ("std", token) pieces."""
    out: list[tuple[str, str]] = []
    lit: list[str] = []
    i, n = 0, len(layout)

    def std(tok: str, width: int) -> int:
        if lit:
            out.append(("lit", "".join(lit)))
            lit.clear()
        out.append(("std", tok))
        return i + width

    while i < n:
        c = layout[i]
        rest = layout[i:]
        if c == "J" and rest.startswith("Jan"):
            if rest.startswith("January"):
                i = std("January", 7)
                continue
            if not _starts_lower(rest[3:]):
                i = std("Jan", 3)
                continue
        elif c == "M" and len(rest) >= 3:
            if rest.startswith("Mon"):
                if rest.startswith("Monday"):
                    i = std("Monday", 6)
                    continue
                if not _starts_lower(rest[3:]):
                    i = std("Mon", 3)
                    continue
            if rest.startswith("MST"):
                i = std("MST", 3)
                continue
        elif c == "0":
            if len(rest) >= 2 and "1" <= rest[1] <= "6":
                i = std(rest[:2], 2)
                continue
            if rest.startswith("002"):
                i = std("002", 3)
                continue
        elif c == "1":
            if rest.startswith("15"):
                i = std("15", 2)
                continue
            i = std("1", 1)
            continue
        elif c == "2":
            if rest.startswith("2006"):
                i = std("2006", 4)
                continue
            i = std("2", 1)
            continue
        elif c == "_":
            if rest.startswith("_2"):
                if rest.startswith("_2006"):
                    lit.append("_")
                    i += 1
                    i = std("2006", 4)
                    continue
                i = std("_2", 2)
                continue
            if rest.startswith("__2"):
                i = std("__2", 3)
                continue
        elif c in "345":
            i = std(c, 1)
            continue
        elif c == "P" and rest.startswith("PM"):
            i = std("PM", 2)
            continue
        elif c == "p" and rest.startswith("pm"):
            i = std("pm", 2)
            continue
        elif c in "-Z":
            found = False
            for tok in ("070000", "07:00:00", "0700", "07:00", "07"):
                if rest[1:].startswith(tok):
                    i = std(c + tok, 1 + len(tok))
                    found = True
                    break
            if found:
                continue
        elif c in ".," and len(rest) >= 2 and rest[1] in "09":
            d = rest[1]
            j = 1
            while j < len(rest) and rest[j] == d:
                j += 1
            if not (j < len(rest) and rest[j].isdigit()):
                i = std(c + rest[1:j], j)
                continue
        lit.append(c)
        i += 1
    if lit:
        out.append(("lit", "".join(lit)))
    return out


def _zone(t: _dt.datetime, tok: str) -> str:
    off = t.utcoffset() or _dt.timedelta(0)
    secs = int(off.total_seconds())
    if tok.startswith("Z") and secs == 0:
        return "Z"
    sign = "-" if secs < 0 else "+"
    secs = abs(secs)
    hh, mm, ss = secs // 3600, secs // 60 % 60, secs % 60
    body = tok[1:]
    if body == "07":
        return f"{sign}{hh:02d}"
    if body == "0700":
        return f"{sign}{hh:02d}{mm:02d}"
    if body == "07:00":
        return f"{sign}{hh:02d}:{mm:02d}"
    if body == "070000":
        return f"{sign}{hh:02d}{mm:02d}{ss:02d}"
    return f"{sign}{hh:02d}:{mm:02d}:{ss:02d}"


def _render(t: _dt.datetime, tok: str) -> str:
    h12 = t.hour % 12 or 12
    simple = {
        "January": _MONTHS[t.month - 1],
        "Jan": _MONTHS[t.month - 1][:3],
        "1": str(t.month),
        "01": f"{t.month:02d}",
        "Monday": _DAYS[t.weekday()],
        "Mon": _DAYS[t.weekday()][:3],
        "2": str(t.day),
        "_2": f"{t.day:2d}",
        "02": f"{t.day:02d}",
        "__2": f"{t.timetuple().tm_yday:3d}",
        "002": f"{t.timetuple().tm_yday:03d}",
        "15": f"{t.hour:02d}",
        "3": str(h12),
        "03": f"{h12:02d}",
        "4": str(t.minute),
        "04": f"{t.minute:02d}",
        "5": str(t.second),
        "05": f"{t.second:02d}",
        "2006": f"{t.year:04d}",
        "06": f"{t.year % 100:02d}",
        "PM": "PM" if t.hour >= 12 else "AM",
        "pm": "pm" if t.hour >= 12 else "am",
    }
    if tok in simple:
        return simple[tok]
    if tok == "MST":
        name = t.tzname()
        if name and name != "UTC" and not name[0].isalpha():
            return _zone(t, "-0700")
        return name or "UTC"
    if tok[0] in "-Z":
        return _zone(t, tok)
    # fractional seconds: .000 (fixed) or .999 (trailing zeros trimmed, omitted if zero)
    digits = f"{t.microsecond * 1000:09d}"[: len(tok) - 1]
    if tok[1] == "9":
        digits = digits.rstrip("0")
        return tok[0] + digits if digits else ""
    return tok[0] + digits


def format_go_time(t: _dt.datetime, layout: str) -> str:
    """time.Time.Format(layout) for a timezone-aware datetime."""
    return "".join(text if kind == "lit" else _render(t, text) for kind, text in go_layout_tokens(layout))


def timestamp(*args: str) -> str:
    """Current UTC time: RFC3339 with no argument, epoch seconds for "unix", else a Go layout."""
    if len(args) > 1:
        raise TypeError(f"timestamp: wrong number of arguments, expected 0 or 1, but got {len(args)}")
    t = now().astimezone(_dt.UTC)
    if not args:
        return format_go_time(t, "2006-01-02T15:04:05Z07:00")
    if args[0] == "unix":
        return str(int(t.timestamp()))
    return format_go_time(t, args[0])
