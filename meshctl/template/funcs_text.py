"""consul-template string helpers: base64, hashing, trimming, splitting, case, parsing, regex.

Every function follows consul-template's argument order: the piped value is the LAST argument.
Strings hold arbitrary bytes the Go way via ``surrogateescape`` when they come from decoding.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
from collections.abc import Iterable

from meshctl.template.funcs_regex import go_expand, go_regexp

__all__ = [
    "base64_decode",
    "base64_encode",
    "base64_url_decode",
    "base64_url_encode",
    "go_quote",
    "hmac_sha256_hex",
    "indent",
    "join",
    "md5sum",
    "parse_bool",
    "parse_float",
    "parse_int",
    "parse_uint",
    "regex_match",
    "regex_replace_all",
    "replace_all",
    "sha256_hex",
    "split",
    "split_to_map",
    "to_lower",
    "to_title",
    "to_upper",
    "trim",
    "trim_prefix",
    "trim_space",
    "trim_suffix",
]

# Go's unicode.IsSpace set (strings.TrimSpace); narrower than Python's str.isspace().
GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


def _b(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def _s(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def _want_str(fn: str, v: object) -> str:
    if not isinstance(v, str):
        raise TypeError(f"{fn}: expected string, got {type(v).__name__}")
    return v


def go_quote(s: object) -> str:
    """Go's %q for a string (double-quoted, backslash escapes)."""
    if not isinstance(s, str):
        return str(s)
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif 0xDC80 <= o <= 0xDCFF:  # a raw byte kept by surrogateescape
            out.append(f"\\x{o - 0xDC00:02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


# --- base64 -------------------------------------------------------------------------------

_STD_RE = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_URL_RE = re.compile(r"(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=)?")


def _b64decode(fn: str, s: str, pattern: re.Pattern[str], altchars: bytes | None) -> str:
    s = _want_str(fn, s)
    clean = s.replace("\r", "").replace("\n", "")  # Go ignores CR/LF inside the data
    m = pattern.match(clean)
    if m is None or m.end() != len(clean):
        bad = m.end() if m is not None else 0
        raise ValueError(f"{fn}: illegal base64 data at input byte {bad}")
    try:
        raw = base64.b64decode(clean, altchars=altchars, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError(f"{fn}: illegal base64 data: {e}") from None
    return _s(raw)


def base64_encode(s: str) -> str:
    """Standard (padded) base64 of the string's UTF-8 bytes."""
    return base64.b64encode(_b(_want_str("base64Encode", s))).decode("ascii")


def base64_decode(s: str) -> str:
    """Decode standard padded base64; error on bad input."""
    return _b64decode("base64Decode", s, _STD_RE, None)


def base64_url_encode(s: str) -> str:
    """URL-safe (padded) base64."""
    return base64.urlsafe_b64encode(_b(_want_str("base64URLEncode", s))).decode("ascii")


def base64_url_decode(s: str) -> str:
    """Decode URL-safe padded base64; error on bad input."""
    return _b64decode("base64URLDecode", s, _URL_RE, b"-_")


# --- hashing ------------------------------------------------------------------------------


def sha256_hex(s: str) -> str:
    """Hex SHA-256 of the string."""
    return hashlib.sha256(_b(_want_str("sha256Hex", s))).hexdigest()


def md5sum(s: str) -> str:
    """Hex MD5 of the string."""
    return hashlib.md5(_b(_want_str("md5sum", s))).hexdigest()


def hmac_sha256_hex(message: str, key: str) -> str:
    """Hex HMAC-SHA256 of ``message`` keyed with ``key`` (key is the piped value)."""
    return hmac.new(_b(key), _b(message), hashlib.sha256).hexdigest()


# --- trimming, splitting, joining -----------------------------------------------------------


def trim(cutset: str, s: str) -> str:
    """strings.Trim(s, cutset)."""
    return _want_str("trim", s).strip(cutset) if cutset else s


def trim_prefix(prefix: str, s: str) -> str:
    """strings.TrimPrefix(s, prefix)."""
    return _want_str("trimPrefix", s).removeprefix(prefix)


def trim_suffix(suffix: str, s: str) -> str:
    """strings.TrimSuffix(s, suffix)."""
    return _want_str("trimSuffix", s).removesuffix(suffix)


def trim_space(s: str) -> str:
    """strings.TrimSpace: Go's Unicode white space on both ends."""
    return _want_str("trimSpace", s).strip(GO_SPACE)


def _go_split(s: str, sep: str) -> list[str]:
    return list(s) if sep == "" else s.split(sep)


def split(sep: str, s: str) -> list[str]:
    """Trim white space, then split on ``sep``; an empty string gives an empty list."""
    s = trim_space(s)
    return [] if s == "" else _go_split(s, sep)


def split_to_map(sep1: str, sep2: str, s: str) -> dict[str, str]:
    """Split on ``sep1``, then each item once on ``sep2`` into key/value; items without sep2 are skipped."""
    s = trim_space(s)
    out: dict[str, str] = {}
    if s == "":
        return out
    for item in _go_split(s, sep1):
        if sep2 == "":
            out[""] = item
            continue
        k, found, v = item.partition(sep2)
        if found:
            out[k] = v
    return dict(sorted(out.items()))


def join(sep: str, items: Iterable[object]) -> str:
    """strings.Join(items, sep)."""
    if isinstance(items, str) or items is None:
        raise TypeError("join: wrong type for value; expected []string")
    parts = []
    for x in items:
        if isinstance(x, str):
            parts.append(x)
        elif isinstance(x, int) and not isinstance(x, bool):
            parts.append(str(x))
        else:
            raise TypeError(f"join: wrong type for value; expected []string, got element {type(x).__name__}")
    return sep.join(parts)


def indent(spaces: int, s: str) -> str:
    """Prefix every non-empty line with ``spaces`` spaces; error if negative."""
    if isinstance(spaces, bool) or not isinstance(spaces, int):
        raise TypeError(f"indent: wrong type for value; expected int, got {type(spaces).__name__}")
    if spaces < 0:
        raise ValueError("indent value must be a positive integer")
    prefix = " " * spaces
    return re.sub(r"(?m)^(?=[^\n])", prefix, _want_str("indent", s)) if prefix else s


def replace_all(old: str, new: str, s: str) -> str:
    """strings.Replace(s, old, new, -1), including Go's behaviour for an empty ``old``."""
    s = _want_str("replaceAll", s)
    if old == "":
        # Go inserts ``new`` before every rune and at the end.
        return new + "".join(ch + new for ch in s)
    return s.replace(old, new)


# --- case -----------------------------------------------------------------------------------


def _simple_map(s: str, upper: bool) -> str:
    if s.isascii():
        return s.upper() if upper else s.lower()
    out = []
    for ch in s:
        m = ch.upper() if upper else ch.lower()
        if len(m) != 1:  # Go uses simple (1:1) case mappings only
            m = "i" if ch == "\u0130" and not upper else ch
        out.append(m)
    return "".join(out)


def to_lower(s: str) -> str:
    """strings.ToLower."""
    return _simple_map(_want_str("toLower", s), upper=False)


def to_upper(s: str) -> str:
    """strings.ToUpper."""
    return _simple_map(_want_str("toUpper", s), upper=True)


# A word: letters/digits/marks/underscore, joined by mid-word punctuation (UAX #29 MidLetter/MidNumLet).
_WORD_RE = re.compile(r"[^\W]+(?:[.'’:·][^\W]+)*")


def to_title(s: str) -> str:
    """Title-case the first letter of every word, leaving the rest untouched (cases.Title + NoLower)."""
    s = _want_str("toTitle", s)

    def up(m: re.Match[str]) -> str:
        w = m.group(0)
        return w[0].title() + w[1:] if w[0].isalpha() else w

    return _WORD_RE.sub(up, s)


# --- parsing ---------------------------------------------------------------------------------

_INT_RE = re.compile(r"[+-]?[0-9]+")
_UINT_RE = re.compile(r"[0-9]+")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+(?:_[0-9]+)*\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_FLOAT_SPECIAL_RE = re.compile(r"[+-]?(?:inf|infinity|nan)", re.IGNORECASE)
_HEXFLOAT_RE = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+")


def _syntax(fn: str, go_fn: str, s: str) -> ValueError:
    return ValueError(f"{fn}: strconv.{go_fn}: parsing {go_quote(s)}: invalid syntax")


def parse_bool(s: str) -> bool:
    """strconv.ParseBool; "" is false."""
    s = _want_str("parseBool", s)
    if s == "":
        return False
    if s in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if s in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise _syntax("parseBool", "ParseBool", s)


def parse_int(s: str) -> int:
    """strconv.ParseInt(s, 10, 64); "" is 0."""
    s = _want_str("parseInt", s)
    if s == "":
        return 0
    if not _INT_RE.fullmatch(s):
        raise _syntax("parseInt", "ParseInt", s)
    v = int(s)
    if not -(2**63) <= v < 2**63:
        raise ValueError(f"parseInt: strconv.ParseInt: parsing {go_quote(s)}: value out of range")
    return v


def parse_uint(s: str) -> int:
    """strconv.ParseUint(s, 10, 64); "" is 0."""
    s = _want_str("parseUint", s)
    if s == "":
        return 0
    if not _UINT_RE.fullmatch(s):
        raise _syntax("parseUint", "ParseUint", s)
    v = int(s)
    if v >= 2**64:
        raise ValueError(f"parseUint: strconv.ParseUint: parsing {go_quote(s)}: value out of range")
    return v


def parse_float(s: str) -> float:
    """strconv.ParseFloat(s, 64); "" is 0.0."""
    s = _want_str("parseFloat", s)
    if s == "":
        return 0.0
    if _FLOAT_SPECIAL_RE.fullmatch(s):
        return float(s)
    if _HEXFLOAT_RE.fullmatch(s):
        v = float.fromhex(s)
    elif _FLOAT_RE.fullmatch(s) and "_" not in s:
        v = float(s)
    else:
        raise _syntax("parseFloat", "ParseFloat", s)
    if math.isinf(v):
        raise ValueError(f"parseFloat: strconv.ParseFloat: parsing {go_quote(s)}: value out of range")
    return v


# --- regular expressions ----------------------------------------------------------------------


def regex_match(pattern: str, s: str) -> bool:
    """True when the Go (RE2) regular expression matches anywhere in ``s``."""
    return go_regexp(pattern).search(_want_str("regexMatch", s)) is not None


def regex_replace_all(pattern: str, repl: str, s: str) -> str:
    """Regexp.ReplaceAllString: replace every match, expanding ``$1``, ``${1}``, ``$name``, ``${name}``."""
    s = _want_str("regexReplaceAll", s)
    rx = go_regexp(pattern)
    out: list[str] = []
    last_end = 0
    for m in rx.finditer(s):
        a, b = m.span()
        out.append(s[last_end:a])
        # Go skips an empty match that abuts the previous match.
        if b > last_end or a == 0:
            out.append(go_expand(repl, m))
        last_end = b
    out.append(s[last_end:])
    return "".join(out)
