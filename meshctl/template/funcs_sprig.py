"""consul-template's ``sprig_*`` functions: Masterminds/sprig v3's hermetic text functions.

consul-template registers ``sprig.HermeticTxtFuncMap()`` with every name prefixed ``sprig_``
(``{{ "hello" | sprig_upper }}``); :data:`SPRIG` is that table. Hermetic means sprig minus the
functions that read the clock, the environment, the network or randomness (``now``, ``date``,
``env``, ``uuidv4``, ``randAlpha`` ...); ``shuffle``, ``randInt``, ``bcrypt`` and the key and
certificate generators stay, as they do in sprig's own hermetic map.

Arguments arrive as the engine maps Go values (see gotemplate/fmt.py): lists for slices, dicts for
maps, ints for int64. Library work is left to libraries: semantic versions (``semver``), bcrypt
(``bcrypt``), AES and X.509 (``cryptography``), scrypt and digests (hashlib), decimals (decimal).
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as _dt
import decimal
import hashlib
import hmac
import ipaddress
import math
import os
import random
import re
import struct
import zlib
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from meshctl.durations import format_duration, parse_duration
from meshctl.template import funcs_text
from meshctl.template.funcs_regex import go_expand, go_regexp
from meshctl.template.funcs_time import format_go_time, go_layout_tokens
from meshctl.template.gotemplate.fmt import NO_VALUE, format_value, quote

__all__ = ["SPRIG", "GoTime", "SemVersion", "strval", "to_float64", "to_int64"]


# --- conversions (spf13/cast as sprig uses it) ------------------------------------------------

_OCTAL = re.compile(r"[+-]?0[0-7]+")


def strval(v: Any) -> str:
    """sprig's strval: strings as they are, bytes decoded, errors by message, else Go's %v."""
    if isinstance(v, str):
        return v
    if isinstance(v, bytes | bytearray):
        return bytes(v).decode("utf-8", "replace")
    if isinstance(v, BaseException):
        return str(v)
    return format_value(v)


def to_int64(v: Any) -> int:
    """cast.ToInt64: numbers truncated, bools 0/1, strings in base 0 (0x, 0o, leading-0 octal); else 0."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return 0 if math.isnan(v) or math.isinf(v) else int(v)
    if isinstance(v, str):
        s = v.strip()
        if s.endswith(".0"):  # cast trims a zero decimal part
            s = s[:-2]
        try:
            if _OCTAL.fullmatch(s):
                return int(s, 8)
            return int(s, 0)
        except ValueError:
            return 0
    return 0


def to_float64(v: Any) -> float:
    """cast.ToFloat64: numbers, bools, numeric strings; else 0."""
    if isinstance(v, bool | int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            return 0.0
    return 0.0


def _list(fn: str, v: Any) -> list[Any]:
    if isinstance(v, list | tuple):
        return list(v)
    raise TypeError(f"Cannot find {fn} on type {_type_of(v)}")


def _strslice(v: Any) -> list[str]:
    if v is None or v is NO_VALUE:
        return []
    if isinstance(v, list | tuple):
        return [strval(x) for x in v if x is not None]
    return [strval(v)]


# --- empty, defaults ------------------------------------------------------------------------


def empty(v: Any) -> bool:
    """Go's zero value test: nil, false, 0, "", empty list or dict (structs are never empty)."""
    if v is None or v is NO_VALUE:
        return True
    if isinstance(v, bool | int | float | complex):
        return not v
    if isinstance(v, str | bytes | list | tuple | Mapping):
        return len(v) == 0
    return False


def default(d: Any, *given: Any) -> Any:
    """``default "foo" .Bar``: .Bar unless it is empty."""
    return d if not given or empty(given[0]) else given[0]


def coalesce(*v: Any) -> Any:
    """The first non-empty argument (nil when all are empty)."""
    return next((x for x in v if not empty(x)), None)


def ternary(vt: Any, vf: Any, cond: bool) -> Any:
    """``ternary "foo" "bar" true`` is "foo"."""
    return vt if cond else vf


def _from_json(s: str) -> Any:
    from meshctl.template.funcs_format import parse_json

    return parse_json(s) if s.strip() else _json_error(s)


def _json_error(s: str) -> Any:
    raise ValueError("unexpected end of JSON input")


def from_json(s: str) -> Any:
    """Decode JSON; "" when it does not decode (mustFromJson errors instead)."""
    try:
        return _from_json(s)
    except ValueError:
        return ""


def _json_funcs() -> dict[str, Callable[..., Any]]:
    from meshctl.template import funcs_format as f

    return {"toJson": f.to_json, "mustToJson": f.to_json, "toPrettyJson": f.to_json_pretty,
            "mustToPrettyJson": f.to_json_pretty, "toRawJson": f.to_unescaped_json,
            "mustToRawJson": f.to_unescaped_json, "fromJson": from_json, "mustFromJson": _from_json}


# --- strings --------------------------------------------------------------------------------


def _is_separator(ch: str) -> bool:
    """unicode.IsSeparator as strings.Title uses it."""
    if ch.isascii():
        return not (ch.isalnum() or ch == "_")
    return ch.isspace()


def title(s: str) -> str:
    """strings.Title: the first letter of every word upper-cased, the rest kept."""
    out, prev = [], " "
    for ch in s:
        out.append(ch.upper() if _is_separator(prev) else ch)
        prev = ch
    return "".join(out)


def _per_word(s: str, fn: Callable[[str], str]) -> str:
    out, at_start = [], True
    for ch in s:
        out.append(fn(ch) if at_start else ch)
        at_start = ch.isspace()
    return "".join(out)


def untitle(s: str) -> str:
    """goutils.Uncapitalize: the first letter of every word lower-cased."""
    return _per_word(s, str.lower)


def initials(s: str) -> str:
    """goutils.Initials: the first letter of every whitespace-separated word."""
    return "".join(w[0] for w in s.split())


def swapcase(s: str) -> str:
    """goutils.SwapCase: upper and title to lower; lower to title after a space, else to upper."""
    out, after_space = [], True
    for ch in s:
        if ch.isupper() or ch.istitle():
            out.append(ch.lower())
        elif ch.islower():
            out.append(ch.title() if after_space else ch.upper())
        else:
            out.append(ch)
        after_space = ch.isspace()
    return "".join(out)


def substr(start: int, end: int, s: str) -> str:
    """sprig substring: start < 0 means from 0; end < 0 or past the end means to the end."""
    if start < 0:
        return s[:end]
    if end < 0 or end > len(s):
        return s[start:]
    return s[start:end]


def trunc(c: int, s: str) -> str:
    """The first c characters, or the last -c when c is negative."""
    if c < 0 and len(s) + c > 0:
        return s[len(s) + c:]
    if c >= 0 and len(s) > c:
        return s[:c]
    return s


def _abbreviate(s: str, offset: int, width: int) -> str:
    """goutils.AbbreviateFull (the string unchanged where it reports an error, as sprig returns it)."""
    if width < 4 or len(s) <= width:
        return s
    offset = min(offset, len(s))
    if len(s) - offset < width - 3:
        offset = len(s) - (width - 3)
    if offset <= 4:
        return s[:width - 3] + "..."
    if width < 7:
        return s
    if offset + width - 3 < len(s):
        return "..." + _abbreviate(s[offset:], 0, width - 3)
    return "..." + s[len(s) - (width - 3):]


def abbrev(width: int, s: str) -> str:
    """Truncate with "..." counted against the width."""
    return _abbreviate(s, 0, width)


def abbrevboth(left: int, right: int, s: str) -> str:
    """Abbreviate both ends: left offset, max width."""
    return _abbreviate(s, left, right)


def wrap_with(width: int, newline: str, s: str, long_words: bool = True) -> str:
    """goutils.WrapCustom: break lines at spaces so that they stay within width."""
    width = max(width, 1)
    out: list[str] = []
    offset, n = 0, len(s)
    while n - offset > width:
        if s[offset] == " ":
            offset += 1
            continue
        space = s.rfind(" ", offset, width + offset + 1)
        if space >= offset:
            out += [s[offset:space], newline]
            offset = space + 1
        elif long_words:
            out += [s[offset:width + offset], newline]
            offset += width
        else:
            space = s.find(" ", width + offset)
            if space < 0:
                break
            out += [s[offset:space], newline]
            offset = space + 1
    out.append(s[offset:])
    return "".join(out)


def wrap(width: int, s: str) -> str:
    """Wrap at width columns with newlines (long words kept whole)."""
    return wrap_with(width, "\n", s, long_words=False)


_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def _words(s: str) -> list[str]:
    return [w for w in re.split(r"[\s_\-.]+", _WORD_BOUNDARY.sub(" ", s)) if w]


def snakecase(s: str) -> str:
    """``FirstName`` -> ``first_name``."""
    return "_".join(w.lower() for w in _words(s))


def kebabcase(s: str) -> str:
    """``FirstName`` -> ``first-name``."""
    return "-".join(w.lower() for w in _words(s))


def camelcase(s: str) -> str:
    """``http_server`` -> ``HttpServer`` (xstrings.ToPascalCase)."""
    return "".join(w[0].upper() + w[1:] for w in re.split(r"[\s_\-.]+", s) if w)


def shuffle(s: str) -> str:
    """The characters of s in random order."""
    chars = list(s)
    random.shuffle(chars)
    return "".join(chars)


def quote_(*v: Any) -> str:
    """Each non-nil argument double-quoted (Go %q), joined by spaces."""
    return " ".join(quote(strval(x)) for x in v if x is not None)


def squote(*v: Any) -> str:
    """Each non-nil argument single-quoted, joined by spaces."""
    return " ".join(f"'{strval(x)}'" for x in v if x is not None)


def cat(*v: Any) -> str:
    """The non-nil arguments printed and joined by spaces."""
    return " ".join(format_value(x) for x in v if x is not None)


def indent(spaces: int, s: str) -> str:
    """Every line (empty ones too) prefixed with `spaces` spaces."""
    pad = " " * spaces
    return pad + s.replace("\n", "\n" + pad)


def plural(one: str, many: str, count: int) -> str:
    """`one` when count is 1, else `many`."""
    return one if count == 1 else many


def split_dict(sep: str, s: str, n: int = -1) -> dict[str, str]:
    """``split "$" "a$b"`` -> {_0: a, _1: b}."""
    if n == 0:
        return {}
    parts = s.split(sep, n - 1) if n > 0 else s.split(sep)
    return {f"_{i}": p for i, p in enumerate(parts)}


def regex_find_all(pattern: str, s: str, n: int) -> list[str]:
    """Up to n matches (all when n < 0)."""
    found = [m.group(0) for m in go_regexp(pattern).finditer(s)]
    return found if n < 0 else found[:n]


def regex_find(pattern: str, s: str) -> str:
    """The leftmost match, or ""."""
    m = go_regexp(pattern).search(s)
    return m.group(0) if m else ""


def _replace_all(pattern: str, s: str, expand: Callable[[re.Match[str]], str]) -> str:
    out, last = [], 0
    for m in go_regexp(pattern).finditer(s):
        a, b = m.span()
        out.append(s[last:a])
        if b > last or a == 0:  # Go skips an empty match abutting the previous one
            out.append(expand(m))
        last = b
    out.append(s[last:])
    return "".join(out)


def regex_replace_all(pattern: str, s: str, repl: str) -> str:
    """Replace every match, expanding $1 / ${1} / ${name} in repl."""
    return _replace_all(pattern, s, lambda m: go_expand(repl, m))


def regex_replace_all_literal(pattern: str, s: str, repl: str) -> str:
    """Replace every match with repl as it is."""
    return _replace_all(pattern, s, lambda m: repl)


def regex_split(pattern: str, s: str, n: int) -> list[str]:
    """Regexp.Split: the pieces between matches; at most n pieces (all when n < 0)."""
    if n == 0:
        return []
    rx = go_regexp(pattern)
    if rx.pattern and len(s) == 0:
        return [""]
    parts: list[str] = []
    start = 0
    for m in rx.finditer(s):
        if n > 0 and len(parts) == n - 1:
            break
        a, b = m.span()
        if b == 0:
            continue
        parts.append(s[start:a])
        start = b
    parts.append(s[start:])
    return parts


_META = set("\\.+*?()|[]{}^$")


def regex_quote_meta(s: str) -> str:
    """regexp.QuoteMeta: every RE2 metacharacter escaped."""
    return "".join("\\" + ch if ch in _META else ch for ch in s)


# --- numbers ----------------------------------------------------------------------------------


def _go_div(a: int, b: int) -> int:
    if b == 0:
        raise ZeroDivisionError("runtime error: integer divide by zero")
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _go_mod(a: int, b: int) -> int:
    if b == 0:
        raise ZeroDivisionError("runtime error: integer divide by zero")
    r = abs(a) % abs(b)
    return -r if a < 0 else r


def _mul(a: Any, *v: Any) -> int:
    out = to_int64(a)
    for b in v:
        out *= to_int64(b)
    return out


def _decimal_op(op: Callable[[decimal.Decimal, decimal.Decimal], decimal.Decimal]) -> Callable[..., float]:
    def fn(a: Any, *v: Any) -> float:
        acc = decimal.Decimal(repr(to_float64(a)))
        for b in v:
            acc = op(acc, decimal.Decimal(repr(to_float64(b))))
        return float(acc)

    return fn


def round_(a: Any, places: Any, round_on: float = 0.5) -> float:
    """sprig round: `places` digits after the point, rounding up from `round_on` (0.5)."""
    pow_ = math.pow(10, to_float64(places))
    digit = pow_ * to_float64(a)
    frac = math.modf(digit)[0]
    return (math.ceil(digit) if frac >= round_on else math.floor(digit)) / pow_


def until_step(start: int, stop: int, step: int) -> list[int]:
    """Python's range as a list (empty when the step goes the wrong way or is 0)."""
    if step == 0 or (step > 0 and start >= stop) or (step < 0 and start <= stop):
        return []
    return list(range(start, stop, step))


def until(count: int) -> list[int]:
    """[0, count) (counting down for a negative count)."""
    return until_step(0, count, 1 if count >= 0 else -1)


def seq(*params: int) -> str:
    """Like the shell's seq: end; start end; start step end — inclusive, space-separated."""
    if not params or len(params) > 3:
        return ""
    if len(params) == 1:
        start, step, end = 1, None, params[0]
    elif len(params) == 2:
        start, step, end = params[0], None, params[1]
    else:
        start, step, end = params
    inc = -1 if end < start else 1
    if step is None:
        step = inc
    elif inc < 0 and step > 0:
        return ""
    return " ".join(str(i) for i in until_step(start, end + inc, step))


def to_decimal(v: Any) -> int:
    """A unix octal permission string as an integer ("0777" -> 511); 0 when it does not parse."""
    try:
        return int(strval(v), 8)
    except ValueError:
        return 0


def atoi(s: str) -> int:
    """strconv.Atoi, 0 on error."""
    try:
        return int(s, 10) if re.fullmatch(r"[+-]?\d+", s) else 0
    except ValueError:
        return 0


# --- lists and dicts --------------------------------------------------------------------------


def _deep_equal(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, Mapping):
        return a.keys() == b.keys() and all(_deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_deep_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def first(v: Any) -> Any:
    """The first item (nil for an empty list)."""
    items = _list("first", v)
    return items[0] if items else None


def last(v: Any) -> Any:
    """The last item (nil for an empty list)."""
    items = _list("last", v)
    return items[-1] if items else None


def rest(v: Any) -> Any:
    """All but the first item."""
    items = _list("rest", v)
    return items[1:] if items else None


def initial(v: Any) -> Any:
    """All but the last item."""
    items = _list("initial", v)
    return items[:-1] if items else None


def uniq(v: Any) -> list[Any]:
    """The list without duplicates, first occurrences kept."""
    out: list[Any] = []
    for x in _list("uniq", v):
        if not any(_deep_equal(x, y) for y in out):
            out.append(x)
    return out


def without(v: Any, *omit: Any) -> list[Any]:
    """The list without the given items."""
    return [x for x in _list("without", v) if not any(_deep_equal(x, o) for o in omit)]


def has(needle: Any, v: Any) -> bool:
    """Whether the list holds needle."""
    if v is None:
        return False
    return any(_deep_equal(x, needle) for x in _list("has", v))


def slice_(v: Any, *indices: int) -> list[Any]:
    """``slice $l n m`` is l[n:m]."""
    items = _list("slice", v)
    start = indices[0] if indices else 0
    end = indices[1] if len(indices) > 1 else len(items)
    return items[start:end]


def concat(*lists: Any) -> list[Any]:
    """The lists joined into one."""
    return [x for v in lists for x in _list("concat", v)]


def chunk(size: int, v: Any) -> list[list[Any]]:
    """The list cut into lists of `size` items."""
    items = _list("chunk", v)
    if size <= 0:
        raise ValueError("chunk size must be positive")
    return [items[i:i + size] for i in range(0, len(items), size)]


def compact(v: Any) -> list[Any]:
    """The list without empty items."""
    return [x for x in _list("compact", v) if not empty(x)]


def dict_(*pairs: Any) -> dict[str, Any]:
    """``dict "k1" v1 "k2" v2``; an odd last key maps to ""."""
    out: dict[str, Any] = {}
    for i in range(0, len(pairs), 2):
        out[strval(pairs[i])] = pairs[i + 1] if i + 1 < len(pairs) else ""
    return out


def _dict(fn: str, d: Any) -> dict[str, Any]:
    if isinstance(d, dict):
        return d
    raise TypeError(f"{fn}: wrong type for value; expected map[string]interface {{}}; got {_type_of(d)}")


def set_(d: Any, key: str, value: Any) -> dict[str, Any]:
    """Set d[key] (in place); returns d."""
    _dict("set", d)[key] = value
    return d


def unset(d: Any, key: str) -> dict[str, Any]:
    """Delete d[key] (in place); returns d."""
    _dict("unset", d).pop(key, None)
    return d


def dig(*args: Any) -> Any:
    """``dig "a" "b" "default" $dict``: $dict.a.b, or the default when a key is missing."""
    if len(args) < 3:
        raise TypeError("dig needs at least three arguments")
    *keys, fallback, d = args
    cur: Any = d
    for k in keys:
        if not isinstance(cur, Mapping) or k not in cur:
            return fallback
        cur = cur[k]
    return cur


def _merge_into(dst: dict[str, Any], src: Mapping[str, Any], overwrite: bool) -> None:
    for k, sv in src.items():
        dv = dst.get(k)
        if isinstance(dv, dict) and isinstance(sv, Mapping):
            _merge_into(dv, sv, overwrite)
        elif k not in dst or empty(dv) or overwrite:
            dst[k] = sv


def merge(dst: Any, *srcs: Any) -> dict[str, Any]:
    """Deep merge into dst: the first dict holding a non-empty value wins."""
    for s in srcs:
        _merge_into(_dict("merge", dst), _dict("merge", s), False)
    return dst


def merge_overwrite(dst: Any, *srcs: Any) -> dict[str, Any]:
    """Deep merge into dst: later dicts win."""
    for s in srcs:
        _merge_into(_dict("mergeOverwrite", dst), _dict("mergeOverwrite", s), True)
    return dst


# --- reflection -------------------------------------------------------------------------------


def _type_of(v: Any) -> str:
    if isinstance(v, list | tuple):
        return "[]interface {}"
    if isinstance(v, Mapping):
        return "map[string]interface {}"
    if isinstance(v, SemVersion):
        return "*semver.Version"
    if isinstance(v, _dt.datetime):
        return "time.Time"
    from meshctl.template.gotemplate.fmt import go_type_name

    return go_type_name(v)


def kind_of(v: Any) -> str:
    """reflect.Kind: string, int, float64, bool, slice, map, ptr, struct; invalid for nil."""
    if v is None or v is NO_VALUE:
        return "invalid"
    for t, name in ((bool, "bool"), (int, "int"), (float, "float64"), (str, "string")):
        if isinstance(v, t):
            return name
    if isinstance(v, list | tuple):
        return "slice"
    if isinstance(v, Mapping):
        return "map"
    if isinstance(v, _dt.datetime):
        return "struct"
    return "ptr"


# --- paths (Go's path package; path/filepath is the same on this OS) -------------------------------


def path_clean(p: str) -> str:
    """path.Clean: the shortest equivalent path."""
    if p == "":
        return "."
    rooted = p.startswith("/")
    parts: list[str] = []
    for seg in p.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(seg)
    body = "/".join(parts)
    return "/" + body if rooted else (body or ".")


def path_base(p: str) -> str:
    """path.Base: the last element."""
    if p == "":
        return "."
    p = p.rstrip("/")
    return p[p.rfind("/") + 1:] if p else "/"


def path_dir(p: str) -> str:
    """path.Dir: all but the last element, cleaned."""
    return path_clean(p[:p.rfind("/") + 1])


def path_ext(p: str) -> str:
    """path.Ext: the extension of the last element, with its dot."""
    for i in range(len(p) - 1, -1, -1):
        if p[i] == "/":
            break
        if p[i] == ".":
            return p[i:]
    return ""


# --- encoding ---------------------------------------------------------------------------------


def _decoder(fn: Callable[[bytes], bytes]) -> Callable[[str], str]:
    def decode(s: str) -> str:
        try:
            return fn(s.encode()).decode("utf-8", "replace")
        except (binascii.Error, ValueError) as e:
            return str(e)  # sprig returns the error's text

    return decode


# --- URLs -------------------------------------------------------------------------------------


def url_parse(s: str) -> dict[str, Any]:
    """net/url.Parse as a dict: scheme, host, hostname, path, query, opaque, fragment, userinfo."""
    u = urlsplit(s)
    netloc = u.netloc
    userinfo, _, host = netloc.rpartition("@")
    opaque = ""
    path = u.path
    if u.scheme and not s[len(u.scheme) + 1:].startswith("/"):
        opaque, path = path, ""
    return {"scheme": u.scheme, "host": host, "hostname": u.hostname or "", "path": path,
            "query": u.query, "opaque": opaque, "fragment": u.fragment, "userinfo": userinfo}


def url_join(d: Mapping[str, Any]) -> str:
    """The URL of a dict as urlParse returns it."""
    def part(k: str) -> str:
        return strval(d.get(k, "") or "")

    out = ""
    if part("scheme"):
        out += part("scheme") + ":"
    if part("opaque"):
        out += part("opaque")
    else:
        if part("scheme") or part("host") or part("userinfo"):
            out += "//"
            if part("userinfo"):
                out += part("userinfo") + "@"
            out += part("host")
        path = part("path")
        if path and not path.startswith("/") and part("host"):
            out += "/"
        out += path
    if part("query"):
        out += "?" + part("query")
    if part("fragment"):
        out += "#" + part("fragment")
    return out


# --- dates and durations ----------------------------------------------------------------------


class GoTime(_dt.datetime):
    """A datetime printed as Go's time.Time is ("2017-12-31 00:00:00 +0000 UTC")."""

    def __str__(self) -> str:
        return format_go_time(self, "2006-01-02 15:04:05.999999999 -0700 MST")


_STRPTIME = {
    "2006": "%Y", "06": "%y", "01": "%m", "1": "%m", "Jan": "%b", "January": "%B", "02": "%d", "2": "%d",
    "_2": "%d", "15": "%H", "03": "%I", "3": "%I", "04": "%M", "4": "%M", "05": "%S", "5": "%S",
    "PM": "%p", "pm": "%p", "Mon": "%a", "Monday": "%A", "MST": "%Z", "-0700": "%z", "-07:00": "%z",
    "Z0700": "%z", "Z07:00": "%z", "002": "%j",
}


def must_to_date(layout: str, value: str) -> GoTime:
    """time.ParseInLocation(layout, value, time.Local); an error when it does not parse."""
    fmt = ""
    for kind, text in go_layout_tokens(layout):
        if kind == "lit":
            fmt += text.replace("%", "%%")
        elif text.startswith((".0", ",0", ".9", ",9")):
            fmt += text[0] + "%f"
        elif text in _STRPTIME:
            fmt += _STRPTIME[text]
        else:
            raise ValueError(f"toDate: layout element {text!r} is not supported")
    try:
        t = _dt.datetime.strptime(value, fmt)
    except ValueError as e:
        raise ValueError(f'parsing time "{value}" as "{layout}": {e}') from None
    if t.tzinfo is None:
        t = t.astimezone()  # Go's time.Local
    return GoTime.fromtimestamp(t.timestamp(), t.tzinfo)


def to_date(layout: str, value: str) -> Any:
    """mustToDate, or Go's zero time when the string does not parse."""
    try:
        return must_to_date(layout, value)
    except ValueError:
        return GoTime(1, 1, 1, tzinfo=_dt.UTC)


def _as_time(v: Any) -> _dt.datetime:
    if isinstance(v, _dt.datetime):
        return v
    if isinstance(v, int | float) and not isinstance(v, bool):
        return _dt.datetime.fromtimestamp(v, _dt.UTC)
    raise TypeError(f"expected a time, got {_type_of(v)}")


def unix_epoch(t: Any) -> str:
    """The seconds since the epoch of a time, as a string."""
    return str(int(_as_time(t).timestamp()))


def must_date_modify(fmt: str, t: Any) -> GoTime:
    """The time moved by a Go duration ("-1.5h"); an error when the duration does not parse."""
    d = parse_duration(fmt)
    moved = _as_time(t) + _dt.timedelta(seconds=d)
    return GoTime.fromtimestamp(moved.timestamp(), moved.tzinfo)


def ago(t: Any) -> str:
    """The time since t, whole seconds, as a Go duration string."""
    since = _dt.datetime.now(_dt.UTC) - _as_time(t).astimezone(_dt.UTC)
    return format_duration(round(since.total_seconds()))


def duration(sec: Any) -> str:
    """Seconds as a Go duration string: ``duration "95"`` is 1m35s."""
    return format_duration(to_int64(sec))


_ROUND_UNITS = (("y", 365 * 86400), ("mo", 30 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def duration_round(v: Any) -> str:
    """A duration rounded to its largest unit: "2h10m5s" -> 2h; ints are nanoseconds; times are since."""
    if isinstance(v, str):
        try:
            seconds = parse_duration(v)
        except ValueError:
            seconds = 0.0
    elif isinstance(v, _dt.datetime):
        seconds = (_dt.datetime.now(_dt.UTC) - v.astimezone(_dt.UTC)).total_seconds()
    else:
        seconds = to_int64(v) / 1e9
    u = abs(seconds)
    sign = "-" if seconds < 0 else ""
    for unit, size in _ROUND_UNITS:
        if u > size:
            return f"{sign}{int(u // size)}{unit}"
    return "0s"


# --- semantic versions ------------------------------------------------------------------------


class SemVersion:
    """Masterminds/semver's Version: Major, Minor, Patch, Prerelease, Metadata, Original, Compare."""

    def __init__(self, text: str) -> None:
        import semver

        self.Original = text
        s = text.strip()
        s = s[1:] if s[:1] in ("v", "V") else s
        try:
            self._v = semver.Version.parse(s, optional_minor_and_patch=True)
        except (ValueError, TypeError):
            raise ValueError("Invalid Semantic Version") from None
        self.Major: int = self._v.major
        self.Minor: int = self._v.minor
        self.Patch: int = self._v.patch
        self.Prerelease: str = self._v.prerelease or ""
        self.Metadata: str = self._v.build or ""

    def Compare(self, other: SemVersion) -> int:  # noqa: N802 (Go's method name)
        """-1, 0 or 1 (metadata ignored)."""
        return int(self._v.compare(other._v))

    def String(self) -> str:  # noqa: N802
        """The normalised version."""
        return str(self._v)

    def __str__(self) -> str:
        return str(self._v)


_COMPARATOR = re.compile(
    r"(=|!=|>=|<=|>|<|~>|~|\^)?\s*(v?([0-9]+|[xX*])(?:\.([0-9]+|[xX*]))?(?:\.([0-9]+|[xX*]))?"
    r"(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?)")
_HYPHEN = re.compile(r"(\S+)\s+-\s+(\S+)")


def _part(s: str | None) -> int | None:
    return None if s is None or s in ("x", "X", "*") else int(s)


def _satisfies(op: str, m: re.Match[str], v: SemVersion) -> bool:
    import semver

    major, minor, patch, pre = _part(m.group(3)), _part(m.group(4)), _part(m.group(5)), m.group(6)
    if v.Prerelease and not pre:
        return False  # a constraint without a prerelease never matches prereleases
    if major is None:
        return op in ("", "=", ">=", "<=", "~", "~>", "^")
    base = semver.Version(major, minor or 0, patch or 0, pre)
    have = v._v.finalize_version() if not pre else v._v.replace(build=None)
    c = have.compare(base)
    head = (v.Major, v.Minor)
    if op in ("", "=", "!="):
        if minor is None:
            eq = v.Major == major
        elif patch is None:
            eq = head == (major, minor)
        else:
            eq = c == 0
        return eq if op != "!=" else not eq
    if op == ">":
        return v.Major > major if minor is None else head > (major, minor) if patch is None else c > 0
    if op == ">=":
        return c >= 0
    if op == "<":
        return c < 0
    if op == "<=":
        return v.Major <= major if minor is None else head <= (major, minor) if patch is None else c <= 0
    if op in ("~", "~>"):
        return c >= 0 and (v.Major == major if minor is None else head == (major, minor))
    # ^: the leftmost non-zero part is fixed
    if major > 0 or minor is None:
        return c >= 0 and v.Major == major
    if minor > 0 or patch is None:
        return c >= 0 and head == (major, minor)
    return c >= 0 and head == (0, 0) and v.Patch == patch


def semver_compare(constraint: str, version: str) -> bool:
    """Whether version meets the constraint (">= 1.2 < 3.0.0 || ^4.2", "~1.2.x", "1.2 - 1.4.5")."""
    v = SemVersion(version)
    for group in constraint.split("||"):
        group = _HYPHEN.sub(r">= \1 <= \2", group.strip())
        comparators = list(_COMPARATOR.finditer(group))
        leftover = _COMPARATOR.sub("", group).replace(",", " ").strip()
        if not comparators or leftover:
            raise ValueError(f"improper constraint: {constraint}")
        if all(_satisfies(m.group(1) or "", m, v) for m in comparators):
            return True
    return False


# --- crypto -----------------------------------------------------------------------------------


def _digest(name: str) -> Callable[[str], str]:
    return lambda s: hashlib.new(name, s.encode()).hexdigest()


def bcrypt_(s: str) -> str:
    """A bcrypt hash (cost 10, as Go's DefaultCost)."""
    import bcrypt

    return bcrypt.hashpw(s.encode(), bcrypt.gensalt(10)).decode()


def htpasswd(user: str, password: str, algorithm: str = "bcrypt") -> str:
    """An htpasswd line: bcrypt (the default) or {SHA}."""
    if ":" in user:
        return f"invalid username: {user}"
    if algorithm == "sha":
        return f"{user}:{{SHA}}" + base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()
    return f"{user}:{bcrypt_(password)}"


def _aes_key(password: str) -> bytes:
    return password.encode()[:32].ljust(32, b"\0")


def encrypt_aes(password: str, plaintext: str) -> str:
    """AES-256-CBC with a random IV in front, PKCS#7 padded, base64: decryptAES's input."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    if plaintext == "":
        return ""
    data = plaintext.encode()
    pad = 16 - len(data) % 16
    iv = os.urandom(16)
    enc = Cipher(algorithms.AES(_aes_key(password)), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + enc.update(data + bytes([pad]) * pad) + enc.finalize()).decode()


def decrypt_aes(password: str, crypt64: str) -> str:
    """The text encryptAES made."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    if crypt64 == "":
        return ""
    raw = base64.b64decode(crypt64)
    if len(raw) < 16 or len(raw) % 16:
        raise ValueError("ciphertext too short" if len(raw) < 16 else "ciphertext is not a multiple of the block size")
    dec = Cipher(algorithms.AES(_aes_key(password)), modes.CBC(raw[:16])).decryptor()
    out = dec.update(raw[16:]) + dec.finalize()
    return out[:len(out) - out[-1]].decode("utf-8", "replace") if out else ""


_PASSWORD_TEMPLATES = {
    "maximum": ["anoxxxxxxxxxxxxxxxxx", "axxxxxxxxxxxxxxxxxno"],
    "long": ["CvcvnoCvcvCvcv", "CvcvCvcvnoCvcv", "CvcvCvcvCvcvno", "CvccnoCvcvCvcv", "CvccCvcvnoCvcv",
             "CvccCvcvCvcvno", "CvcvnoCvccCvcv", "CvcvCvccnoCvcv", "CvcvCvccCvcvno", "CvcvnoCvcvCvcc",
             "CvcvCvcvnoCvcc", "CvcvCvcvCvccno", "CvccnoCvccCvcv", "CvccCvccnoCvcv", "CvccCvccCvcvno",
             "CvcvnoCvccCvcc", "CvcvCvccnoCvcc", "CvcvCvccCvccno", "CvccnoCvcvCvcc", "CvccCvcvnoCvcc",
             "CvccCvcvCvccno"],
    "medium": ["CvcnoCvc", "CvcCvcno"], "short": ["Cvcn"], "basic": ["aaanaaan", "aannaaan", "aaannaaa"],
    "pin": ["nnnn"],
}
_PASSWORD_CHARS = {
    "V": "AEIOU", "C": "BCDFGHJKLMNPQRSTVWXYZ", "v": "aeiou", "c": "bcdfghjklmnpqrstvwxyz",
    "A": "AEIOUBCDFGHJKLMNPQRSTVWXYZ", "a": "AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz",
    "n": "0123456789", "o": "@&%?,=[]_:-+*$#!'^~;()/.",
    "x": "AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz0123456789!@#$%^&*()",
}
_SEED = b"com.lyndir.masterpassword"


def derive_password(counter: int, kind: str, password: str, user: str, site: str) -> str:
    """The Spectre (Master Password) algorithm sprig's derivePassword implements."""
    templates = _PASSWORD_TEMPLATES.get(kind)
    if templates is None:
        return f"cannot find password template {kind}"
    salt = _SEED + struct.pack(">I", len(user)) + user.encode()
    key = hashlib.scrypt(password.encode(), salt=salt, n=32768, r=8, p=2, dklen=64, maxmem=64 << 20)
    msg = _SEED + struct.pack(">I", len(site)) + site.encode() + struct.pack(">I", counter)
    seed = hmac.new(key, msg, hashlib.sha256).digest()
    tmpl = templates[seed[0] % len(templates)]
    return "".join(_PASSWORD_CHARS[ch][seed[i + 1] % len(_PASSWORD_CHARS[ch])] for i, ch in enumerate(tmpl))


class Certificate:
    """What genCA and friends return: ``.Cert`` and ``.Key``, both PEM."""

    def __init__(self, cert: str, key: str) -> None:
        self.Cert = cert
        self.Key = key


def _new_key(kind: str = "rsa2048") -> Any:
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa

    if kind == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "dsa":
        return dsa.generate_private_key(2048)
    return rsa.generate_private_key(65537, 4096 if kind == "rsa" else 2048)


def _key_pem(key: Any) -> str:
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(key, rsa.RSAPrivateKey):
        fmt = ser.PrivateFormat.TraditionalOpenSSL  # "RSA PRIVATE KEY", as Go's PKCS#1
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        fmt = ser.PrivateFormat.TraditionalOpenSSL  # "EC PRIVATE KEY"
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        fmt = ser.PrivateFormat.PKCS8
    else:
        fmt = ser.PrivateFormat.TraditionalOpenSSL
    return key.private_bytes(ser.Encoding.PEM, fmt, ser.NoEncryption()).decode()


def gen_private_key(kind: str) -> str:
    """A new PEM private key: rsa (4096), ecdsa (P-256), ed25519 or dsa."""
    if kind not in ("rsa", "ecdsa", "ed25519", "dsa"):
        return "Unknown type " + kind
    return _key_pem(_new_key(kind))


def _load_key(pem: str) -> Any:
    from cryptography.hazmat.primitives import serialization as ser

    return ser.load_pem_private_key(pem.encode(), None)


def _cert(cn: str, ips: Any, names: Any, days: int, key: Any, ca: Certificate | None, is_ca: bool) -> Certificate:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = _dt.datetime.now(_dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    if ca is not None:
        ca_cert = x509.load_pem_x509_certificate(ca.Cert.encode())
        issuer, signer = ca_cert.subject, _load_key(ca.Key)
    else:
        issuer, signer = subject, key
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now)
         .not_valid_after(now + _dt.timedelta(days=to_int64(days))))
    if is_ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        b = b.add_extension(x509.KeyUsage(True, False, True, False, False, True, True, False, False), critical=True)
    else:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                            critical=False)
        sans: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(strval(i))) for i in ips or []]
        sans += [x509.DNSName(strval(n)) for n in names or []]
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    algo = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    cert = b.sign(signer, algo)
    return Certificate(cert.public_bytes(ser.Encoding.PEM).decode(), _key_pem(key))


def build_custom_cert(cert64: str, key64: str) -> Certificate:
    """A certificate object from base64-encoded PEM certificate and key (a CA for genSignedCert)."""
    return Certificate(base64.b64decode(cert64).decode(), base64.b64decode(key64).decode())


# --- the table --------------------------------------------------------------------------------


def _fail(msg: str) -> str:
    raise RuntimeError(msg)


def _max(a: Any, *v: Any) -> int:
    return max([to_int64(a)] + [to_int64(x) for x in v])


def _min(a: Any, *v: Any) -> int:
    return min([to_int64(a)] + [to_int64(x) for x in v])


_FUNCS: dict[str, Callable[..., Any]] = {
    "hello": lambda: "Hello!",
    # dates (the hermetic ones)
    "ago": ago, "duration": duration, "durationRound": duration_round, "toDate": to_date,
    "mustToDate": must_to_date, "unixEpoch": unix_epoch, "mustDateModify": must_date_modify,
    "must_date_modify": must_date_modify,
    # strings
    "abbrev": abbrev, "abbrevboth": abbrevboth, "trunc": trunc, "trim": str.strip, "upper": str.upper,
    "lower": str.lower, "title": title, "untitle": untitle, "substr": substr,
    "repeat": lambda count, s: s * max(count, 0),
    "trimall": lambda cut, s: s.strip(cut), "trimAll": lambda cut, s: s.strip(cut),
    "trimSuffix": funcs_text.trim_suffix, "trimPrefix": funcs_text.trim_prefix,
    "nospace": lambda s: "".join(s.split()), "initials": initials, "swapcase": swapcase, "shuffle": shuffle,
    "snakecase": snakecase, "camelcase": camelcase, "kebabcase": kebabcase, "wrap": wrap,
    "wrapWith": lambda width, sep, s: wrap_with(width, sep, s, long_words=True),
    "contains": lambda sub, s: sub in s, "hasPrefix": lambda p, s: s.startswith(p),
    "hasSuffix": lambda p, s: s.endswith(p), "quote": quote_, "squote": squote, "cat": cat,
    "indent": indent, "nindent": lambda n, s: "\n" + indent(n, s),
    "replace": lambda old, new, s: s.replace(old, new), "plural": plural,
    "sha1sum": _digest("sha1"), "sha256sum": _digest("sha256"), "sha512sum": _digest("sha512"),
    "adler32sum": lambda s: str(zlib.adler32(s.encode())), "toString": strval,
    # conversions
    "atoi": atoi, "int64": to_int64, "int": to_int64, "float64": to_float64, "seq": seq, "toDecimal": to_decimal,
    "split": lambda sep, s: split_dict(sep, s), "splitList": lambda sep, s: s.split(sep),
    "splitn": lambda sep, n, s: split_dict(sep, s, n), "toStrings": _strslice,
    "until": until, "untilStep": until_step,
    # integer math
    "add1": lambda i: to_int64(i) + 1, "add": lambda *v: sum(to_int64(x) for x in v),
    "sub": lambda a, b: to_int64(a) - to_int64(b), "div": lambda a, b: _go_div(to_int64(a), to_int64(b)),
    "mod": lambda a, b: _go_mod(to_int64(a), to_int64(b)), "mul": _mul,
    "randInt": lambda lo, hi: random.randrange(lo, hi),
    "biggest": _max, "max": _max, "min": _min,
    # float math
    "add1f": lambda i: _decimal_op(lambda a, b: a + b)(i, 1),
    "addf": lambda *v: _decimal_op(lambda a, b: a + b)(0.0, *v),
    "subf": _decimal_op(lambda a, b: a - b), "divf": _decimal_op(lambda a, b: a / b),
    "mulf": _decimal_op(lambda a, b: a * b),
    "maxf": lambda a, *v: max([to_float64(a)] + [to_float64(x) for x in v]),
    "minf": lambda a, *v: min([to_float64(a)] + [to_float64(x) for x in v]),
    "ceil": lambda a: float(math.ceil(to_float64(a))), "floor": lambda a: float(math.floor(to_float64(a))),
    "round": round_,
    # string lists
    "join": lambda sep, v: sep.join(_strslice(v)), "sortAlpha": lambda v: sorted(_strslice(v)),
    # defaults
    "default": default, "empty": empty, "coalesce": coalesce, "all": lambda *v: all(not empty(x) for x in v),
    "any": lambda *v: any(not empty(x) for x in v), "compact": compact, "mustCompact": compact,
    "ternary": ternary, "deepCopy": copy.deepcopy, "mustDeepCopy": copy.deepcopy,
    **_json_funcs(),
    # reflection
    "typeOf": _type_of, "typeIs": lambda t, v: _type_of(v) == t,
    "typeIsLike": lambda t, v: _type_of(v) in (t, "*" + t), "kindOf": kind_of,
    "kindIs": lambda k, v: kind_of(v) == k, "deepEqual": _deep_equal,
    # paths (filepath is path on this OS)
    "base": path_base, "dir": path_dir, "clean": path_clean, "ext": path_ext, "isAbs": lambda p: p.startswith("/"),
    "osBase": path_base, "osDir": path_dir, "osClean": path_clean, "osExt": path_ext,
    "osIsAbs": lambda p: p.startswith("/"),
    # encoding
    "b64enc": lambda s: base64.b64encode(strval(s).encode()).decode(), "b64dec": _decoder(lambda b: base64.b64decode(b, validate=True)),
    "b32enc": lambda s: base64.b32encode(strval(s).encode()).decode(), "b32dec": _decoder(base64.b32decode),
    # dicts
    "tuple": lambda *v: list(v), "list": lambda *v: list(v), "dict": dict_,
    "get": lambda d, k: _dict("get", d).get(k, ""), "set": set_, "unset": unset,
    "hasKey": lambda d, k: k in _dict("hasKey", d),
    "pluck": lambda name, *ds: [d[name] for d in ds if name in d],
    "keys": lambda *ds: [k for d in ds for k in d],
    "pick": lambda d, *ks: {k: v for k, v in _dict("pick", d).items() if k in ks},
    "omit": lambda d, *ks: {k: v for k, v in _dict("omit", d).items() if k not in ks},
    "merge": merge, "mergeOverwrite": merge_overwrite, "mustMerge": merge, "mustMergeOverwrite": merge_overwrite,
    "values": lambda d: list(_dict("values", d).values()), "dig": dig,
    # lists
    "append": lambda v, x: _list("append", v) + [x], "push": lambda v, x: _list("push", v) + [x],
    "prepend": lambda v, x: [x] + _list("prepend", v),
    "first": first, "rest": rest, "last": last, "initial": initial,
    "reverse": lambda v: _list("reverse", v)[::-1], "uniq": uniq, "without": without, "has": has,
    "slice": slice_, "concat": concat, "chunk": chunk,
    # crypto
    "bcrypt": bcrypt_, "htpasswd": htpasswd, "derivePassword": derive_password,
    "genPrivateKey": gen_private_key, "buildCustomCert": build_custom_cert,
    "genCA": lambda cn, days: _cert(cn, None, None, days, _new_key(), None, True),
    "genCAWithKey": lambda cn, days, key: _cert(cn, None, None, days, _load_key(key), None, True),
    "genSelfSignedCert": lambda cn, ips, names, days: _cert(cn, ips, names, days, _new_key(), None, False),
    "genSelfSignedCertWithKey": lambda cn, ips, names, days, key: _cert(cn, ips, names, days, _load_key(key),
                                                                         None, False),
    "genSignedCert": lambda cn, ips, names, days, ca: _cert(cn, ips, names, days, _new_key(), ca, False),
    "genSignedCertWithKey": lambda cn, ips, names, days, ca, key: _cert(cn, ips, names, days, _load_key(key),
                                                                         ca, False),
    "encryptAES": encrypt_aes, "decryptAES": decrypt_aes,
    # semantic versions
    "semver": SemVersion, "semverCompare": semver_compare,
    # flow control
    "fail": _fail,
    # regular expressions
    "regexMatch": funcs_text.regex_match, "regexFindAll": regex_find_all, "regexFind": regex_find,
    "regexReplaceAll": regex_replace_all, "regexReplaceAllLiteral": regex_replace_all_literal,
    "regexSplit": regex_split, "regexQuoteMeta": regex_quote_meta,
    # URLs
    "urlParse": url_parse, "urlJoin": url_join,
}

# the must* twins: sprig's plain versions panic where these return an error; here both raise
for _name in ("Append", "Push", "Prepend", "First", "Rest", "Last", "Initial", "Reverse", "Uniq", "Without",
              "Has", "Slice", "Chunk", "RegexMatch", "RegexFindAll", "RegexFind", "RegexReplaceAll",
              "RegexReplaceAllLiteral", "RegexSplit"):
    _FUNCS["must" + _name] = _FUNCS[_name[0].lower() + _name[1:]]

#: consul-template's names: every function above as ``sprig_<name>``.
SPRIG: dict[str, Callable[..., Any]] = {"sprig_" + name: fn for name, fn in _FUNCS.items()}
