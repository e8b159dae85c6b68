"""Go ``fmt`` formatting (Sprint, Sprintln, Sprintf and the ``%v`` rules) for Python values.

Python values are mapped onto Go kinds: ``None`` is a nil interface, ``bool`` is bool, ``int`` is
int, ``float`` is float64, ``str`` is string, ``list``/``tuple`` are slices, ``dict`` is a map,
dataclasses are structs and objects with their own ``__str__`` are Stringers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "NO_VALUE",
    "go_type_name",
    "format_value",
    "sprint",
    "sprintln",
    "sprintf",
    "quote",
    "format_float",
    "sort_keys",
]


class _NoValue:
    """Go's invalid reflect.Value: printed as ``<no value>`` by the template engine."""

    __slots__ = ()
    _inst: _NoValue | None = None

    def __new__(cls) -> _NoValue:
        if cls._inst is None:
            cls._inst = super().__new__(cls)
        return cls._inst

    def __repr__(self) -> str:
        return "<no value>"

    def __bool__(self) -> bool:
        return False


NO_VALUE = _NoValue()

_LOWER = "0123456789abcdefx"
_UPPER = "0123456789ABCDEFX"


def go_type_name(v: Any) -> str:
    """A Go-like type name for a Python value (as ``%T`` would print it)."""
    if v is None or v is NO_VALUE:
        return "<nil>"
    t = type(v)
    if t is bool:
        return "bool"
    if t is int:
        return "int"
    if t is float:
        return "float64"
    if t is str:
        return "string"
    if t is complex:
        return "complex128"
    if isinstance(v, bytes | bytearray):
        return "[]uint8"
    if isinstance(v, Mapping):
        return "map[" + _elem_type(v.keys(), "string") + "]" + _elem_type(v.values(), "interface {}")
    if isinstance(v, list | tuple):
        return "[]" + _elem_type(v, "interface {}")
    if isinstance(v, BaseException):
        return "*errors.errorString"
    if hasattr(v, "__next__"):
        return "chan interface {}"
    if callable(v) and not isinstance(v, type):
        return "func"
    return "*" + t.__name__


_BASIC_NAMES = {str: "string", int: "int", float: "float64", bool: "bool"}


def _elem_type(values: Any, default: str) -> str:
    """Go element type name for homogeneous basic values (a []int, a map[string]string), else default."""
    it = iter(values)
    try:
        t = type(next(it))
    except StopIteration:
        return default
    name = _BASIC_NAMES.get(t)
    if name is None or any(type(x) is not t for x in it):
        return default
    return name


def _is_stringer(v: Any) -> bool:
    t = type(v)
    if dataclasses.is_dataclass(v):
        return "__str__" in t.__dict__
    return t.__str__ is not object.__str__


def sort_keys(keys: Any) -> list:
    """Keys in Go fmtsort order (numbers numerically, strings bytewise, mixed types grouped)."""
    keys = list(keys)
    try:
        return sorted(keys)
    except TypeError:
        def rank(k: Any) -> tuple:
            if k is None:
                return (0, 0)
            if isinstance(k, bool):
                return (1, int(k))
            if isinstance(k, int | float):
                return (2, k)
            if isinstance(k, str):
                return (3, k)
            return (4, str(k))
        return sorted(keys, key=rank)


# ---------------------------------------------------------------------------------------------
# strconv helpers


def _is_print(ch: str) -> bool:
    return ch.isprintable() and not (0xD800 <= ord(ch) <= 0xDFFF)


def _escape_rune(ch: str, q: str, ascii_only: bool) -> str:
    if ch == q or ch == "\\":
        return "\\" + ch
    o = ord(ch)
    if ascii_only:
        if o < 0x80 and _is_print(ch):
            return ch
    elif _is_print(ch):
        return ch
    esc = _SIMPLE_ESC.get(ch)
    if esc is not None:
        return esc
    if o < 0x20 or o == 0x7F:
        return f"\\x{o:02x}"
    if 0xD800 <= o <= 0xDFFF or o > 0x10FFFF:
        o = 0xFFFD
    if o < 0x10000:
        return f"\\u{o:04x}"
    return f"\\U{o:08x}"


_SIMPLE_ESC = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def quote(s: str, ascii_only: bool = False) -> str:
    """strconv.Quote / QuoteToASCII."""
    if s.isascii() and s.isprintable() and '"' not in s and "\\" not in s:
        return '"' + s + '"'
    return '"' + "".join(_escape_rune(c, '"', ascii_only) for c in s) + '"'


def quote_rune(r: int, ascii_only: bool = False) -> str:
    """strconv.QuoteRune."""
    if r > 0x10FFFF or r < 0 or 0xD800 <= r <= 0xDFFF:
        r = 0xFFFD
    return "'" + _escape_rune(chr(r), "'", ascii_only) + "'"


def _can_backquote(s: str) -> bool:
    for c in s:
        o = ord(c)
        if c == "`" or c == "\ufeff" or (o < 0x20 and c != "\t") or o == 0x7F:
            return False
    return True


def _shortest_digits(x: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of abs(x) and the decimal point position."""
    s = repr(abs(x))
    mant, _, e = s.partition("e")
    exp10 = int(e) if e else 0
    ip, _, fp = mant.partition(".")
    digits = ip + fp
    dp = len(ip) + exp10
    stripped = digits.lstrip("0")
    dp -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    if not digits:
        return "", 0
    return digits, dp


def _fmt_e(digits: str, dp: int, prec: int, ch: str) -> str:
    nd = len(digits)
    out = digits[0] if nd else "0"
    if prec > 0:
        frac = digits[1 : prec + 1]
        out += "." + frac + "0" * (prec - len(frac))
    exp = dp - 1 if nd else 0
    sign = "-" if exp < 0 else "+"
    exp = abs(exp)
    return out + ch + sign + f"{exp:02d}"


def _fmt_f(digits: str, dp: int, prec: int) -> str:
    nd = len(digits)
    if dp > 0:
        ip = digits[:dp] + "0" * max(0, dp - nd)
    else:
        ip = "0"
    if prec > 0:
        frac = []
        for i in range(prec):
            j = dp + i
            frac.append(digits[j] if 0 <= j < nd else "0")
        return ip + "." + "".join(frac)
    return ip


def format_float(x: float, verb: str = "g", prec: int = -1) -> str:
    """strconv.FormatFloat(x, verb, prec, 64) for verbs e E f F g G."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    neg = math.copysign(1.0, x) < 0
    sign = "-" if neg else ""
    if prec >= 0:
        if verb in "gG":
            p = prec or 1
            s = f"{abs(x):.{p}{verb}}"
        else:
            s = f"{abs(x):.{prec}{verb}}"
            if verb == "F":
                s = s.replace("INF", "Inf")
        return sign + s
    digits, dp = _shortest_digits(x)
    nd = len(digits)
    if verb in "eE":
        return sign + _fmt_e(digits, dp, max(nd - 1, 0), verb)
    if verb in "fF":
        return sign + _fmt_f(digits, dp, max(nd - dp, 0))
    # g / G shortest
    exp = dp - 1
    if nd and (exp < -4 or exp >= 6):
        return sign + _fmt_e(digits, dp, nd - 1, "e" if verb == "g" else "E")
    p = nd
    if p > dp:
        p = nd
    return sign + _fmt_f(digits, dp, max(p - dp, 0))


# ---------------------------------------------------------------------------------------------
# the printer


class _Flags:
    __slots__ = ("plus", "minus", "sharp", "space", "zero", "plus_v", "sharp_v", "wid", "prec", "wid_p", "prec_p")

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.plus = self.minus = self.sharp = self.space = self.zero = False
        self.plus_v = self.sharp_v = False
        self.wid = self.prec = 0
        self.wid_p = self.prec_p = False


_PLAIN = _Flags()


def _pad(s: str, f: _Flags) -> str:
    if not f.wid_p or f.wid == 0:
        return s
    width = f.wid - len(s)
    if width <= 0:
        return s
    if f.minus:
        return s + " " * width
    return ("0" if f.zero else " ") * width + s


def _pad_spaces(s: str, f: _Flags) -> str:
    if not f.wid_p or f.wid == 0:
        return s
    width = f.wid - len(s)
    if width <= 0:
        return s
    if f.minus:
        return s + " " * width
    return " " * width + s


def _fmt_integer(v: int, base: int, verb: str, f: _Flags, upper: bool = False) -> str:
    negative = v < 0
    u = -v if negative else v
    prec = 0
    if f.prec_p:
        prec = f.prec
        if prec == 0 and u == 0:
            return " " * f.wid if f.wid_p else ""
    elif f.zero and f.wid_p and not f.minus:
        prec = f.wid
        if negative or f.plus or f.space:
            prec -= 1
    if base == 10:
        digits = str(u)
    elif base == 16:
        digits = format(u, "X" if upper else "x")
    elif base == 8:
        digits = format(u, "o")
    else:
        digits = format(u, "b")
    if len(digits) < prec:
        digits = "0" * (prec - len(digits)) + digits
    if f.sharp:
        if base == 2:
            digits = "0b" + digits
        elif base == 8:
            if digits[0] != "0":
                digits = "0" + digits
        elif base == 16:
            digits = ("0X" if upper else "0x") + digits
    if verb == "O":
        digits = "0o" + digits
    if negative:
        digits = "-" + digits
    elif f.plus:
        digits = "+" + digits
    elif f.space:
        digits = " " + digits
    return _pad_spaces(digits, f)


def _fmt_unicode(u: int, f: _Flags) -> str:
    if u < 0:
        u += 1 << 64  # Go formats the value as a uint64
    prec = 4
    if f.prec_p and f.prec > 4:
        prec = f.prec
    s = "U+" + format(u, "X").rjust(prec, "0")
    if f.sharp and 0 <= u <= 0x10FFFF and _is_print(chr(u)):
        s += " '" + chr(u) + "'"
    return _pad_spaces(s, f)


def _fmt_c(u: int, f: _Flags) -> str:
    if u < 0 or u > 0x10FFFF or 0xD800 <= u <= 0xDFFF:
        u = 0xFFFD
    return _pad(chr(u), f)


def _bad_verb(arg: Any, verb: str) -> str:
    if arg is None or arg is NO_VALUE:
        return "%!" + verb + "(<nil>)"
    return "%!" + verb + "(" + go_type_name(arg) + "=" + _print_arg(arg, "v", _PLAIN, 0) + ")"


def _fmt_int_verb(v: int, verb: str, f: _Flags) -> str:
    if verb == "v" or verb == "d":
        if not f.wid_p and not f.prec_p and not f.plus and not f.space:
            return str(v)
        return _fmt_integer(v, 10, verb, f)
    if verb == "x":
        return _fmt_integer(v, 16, verb, f)
    if verb == "X":
        return _fmt_integer(v, 16, verb, f, True)
    if verb == "o" or verb == "O":
        return _fmt_integer(v, 8, verb, f)
    if verb == "b":
        return _fmt_integer(v, 2, verb, f)
    if verb == "c":
        return _fmt_c(v, f)
    if verb == "q":
        return _pad(quote_rune(v, f.plus), f)
    if verb == "U":
        return _fmt_unicode(v, f)
    return _bad_verb(v, verb)


def _hex_float(v: float, upper: bool) -> str:
    """strconv.FormatFloat(v, 'x', -1, 64): shortest hexadecimal mantissa, binary exponent."""
    if math.isnan(v) or math.isinf(v):
        return format_float(v)
    h = float.hex(abs(v))  # e.g. 0x1.8000000000000p+1
    mant, _, exp = h[2:].partition("p")
    ip, _, fp = mant.partition(".")
    e = int(exp)
    if ip == "0" and fp.strip("0"):  # subnormal: normalise to 1.xxx
        bits = int(fp, 16)
        nbits = len(fp) * 4
        shift = nbits - bits.bit_length() + 1
        e -= shift
        bits = (bits << shift) & ((1 << nbits) - 1)
        ip, fp = "1", f"{bits:0{len(fp)}x}"
    if v == 0:
        e = 0
    fp = fp.rstrip("0")
    s = "0x" + ip + ("." + fp if fp else "") + "p" + ("-" if e < 0 else "+") + f"{abs(e):02d}"
    if math.copysign(1.0, v) < 0:
        s = "-" + s
    return s.upper() if upper else s


def _fmt_float(v: float, verb: str, f: _Flags) -> str:
    if verb == "x" or verb == "X":
        s = _hex_float(v, verb == "X")
        if f.plus and s[0] != "-":
            s = "+" + s
        elif f.space and s[0] != "-":
            s = " " + s
        return _pad_spaces(s, f)
    if verb == "v":
        verb, prec = "g", -1
    elif verb in "gG":
        prec = -1
    elif verb in "eEfF":
        prec = 6
    else:
        return _bad_verb(v, verb)
    if f.prec_p:
        prec = f.prec
    num = format_float(v, verb, prec)
    if f.sharp and verb in "gG" and "." not in num and "e" not in num.lower() and "Inf" not in num and num != "NaN":
        num += "."
    if num[0] in "+-":
        sign, body = num[0], num[1:]
    else:
        sign, body = "+", num
    if f.space and sign == "+" and not f.plus:
        sign = " "
    if body in ("Inf", "NaN"):
        if body == "NaN" and not f.space and not f.plus:
            s = body
        else:
            s = sign + body
        return _pad_spaces(s, f)
    if f.plus or sign != "+":
        if f.zero and f.wid_p and f.wid > len(body) + 1 and not f.minus:
            return sign + "0" * (f.wid - len(body) - 1) + body
        return _pad(sign + body, f)
    return _pad(body, f)


def _fmt_string(s: str, verb: str, f: _Flags) -> str:
    if verb == "v" or verb == "s":
        if f.sharp_v:
            return _pad(quote(s), f)
        if f.prec_p:
            s = s[: f.prec]
        return _pad(s, f)
    if verb == "q":
        if f.prec_p:
            s = s[: f.prec]
        if f.sharp and _can_backquote(s):
            return _pad("`" + s + "`", f)
        return _pad(quote(s, f.plus), f)
    if verb == "x" or verb == "X":
        return _fmt_sx(s.encode("utf-8", "surrogateescape"), verb, f)
    return _bad_verb(s, verb)


def _fmt_sx(b: bytes, verb: str, f: _Flags) -> str:
    digits = _UPPER if verb == "X" else _LOWER
    length = len(b)
    if f.prec_p and f.prec < length:
        length = f.prec
    if length == 0:
        return " " * f.wid if f.wid_p else ""
    parts = []
    for i in range(length):
        c = b[i]
        h = digits[c >> 4] + digits[c & 0xF]
        if f.space:
            if f.sharp:
                h = "0" + digits[16] + h
            parts.append(h)
        else:
            parts.append(h)
    if f.space:
        s = " ".join(parts)
    else:
        s = "".join(parts)
        if f.sharp:
            s = "0" + digits[16] + s
    return _pad_spaces(s, f)


def _print_arg(arg: Any, verb: str, f: _Flags, depth: int) -> str:
    t = type(arg)
    if verb == "T" and depth == 0:
        return _pad(go_type_name(arg), f)
    if t is str:
        return _fmt_string(arg, verb, f)
    if t is int:
        return _fmt_int_verb(arg, verb, f)
    if t is bool:
        if verb == "v" or verb == "t":
            return _pad("true" if arg else "false", f)
        return _bad_verb(arg, verb)
    if t is float:
        return _fmt_float(arg, verb, f)
    if arg is None or arg is NO_VALUE:
        if depth > 0:
            return _pad("<nil>", f)
        if verb == "v" or verb == "T":
            return _pad("<nil>", f)
        return _bad_verb(None, verb)
    if isinstance(arg, bool):
        return _print_arg(bool(arg), verb, f, depth)
    if isinstance(arg, int):
        if _is_stringer(arg) and verb in "vsqxX" and type(arg).__str__ is not int.__str__:
            return _fmt_string(str(arg), verb, f)
        return _fmt_int_verb(int(arg), verb, f)
    if isinstance(arg, float):
        return _fmt_float(float(arg), verb, f)
    if isinstance(arg, str):
        if type(arg).__str__ is not str.__str__:
            return _fmt_string(str(arg), verb, f) if verb in "vsqxX" else _fmt_string(str.__str__(arg), verb, f)
        return _fmt_string(str(arg), verb, f)
    if t is complex:
        if verb not in "vbgGxXfFeE":
            return _bad_verb(arg, verb)
        fl = _Flags()
        for name in _Flags.__slots__:
            setattr(fl, name, getattr(f, name))
        re_s = _fmt_float(arg.real, verb, fl)
        fl.plus = True
        im_s = _fmt_float(arg.imag, verb, fl)
        return "(" + re_s + im_s + "i)"
    if isinstance(arg, bytes | bytearray):
        if verb == "s" or verb == "q":
            return _fmt_string(bytes(arg).decode("utf-8", "replace"), verb, f)
        if verb == "x" or verb == "X":
            return _fmt_sx(bytes(arg), verb, f)
        return "[" + " ".join(_fmt_int_verb(c, verb, f) for c in arg) + "]"
    if isinstance(arg, BaseException):
        if verb in "vsqxX":
            return _fmt_string(str(arg), verb, f)
        return _bad_verb(arg, verb)
    if isinstance(arg, Mapping):
        parts = []
        for k in sort_keys(arg.keys()):
            parts.append(_print_arg(k, verb, f, depth + 1) + ":" + _print_arg(arg[k], verb, f, depth + 1))
        return "map[" + " ".join(parts) + "]"
    if isinstance(arg, list | tuple):
        return "[" + " ".join([_print_arg(x, verb, f, depth + 1) for x in arg]) + "]"
    if dataclasses.is_dataclass(arg) and not isinstance(arg, type):
        if "__str__" in t.__dict__ and verb in "vsqxX":
            return _fmt_string(str(arg), verb, f)
        parts = []
        for fld in dataclasses.fields(arg):
            val = _print_arg(getattr(arg, fld.name), verb, f, depth + 1)
            parts.append(fld.name + ":" + val if f.plus_v else val)
        return "{" + " ".join(parts) + "}"
    if isinstance(arg, Sequence) and not isinstance(arg, str):
        return "[" + " ".join([_print_arg(x, verb, f, depth + 1) for x in arg]) + "]"
    # Stringer or arbitrary object.
    if verb in "vsqxX":
        return _fmt_string(str(arg), verb, f)
    return _bad_verb(arg, verb)


def format_value(v: Any) -> str:
    """Go's ``fmt.Sprint(v)`` (the ``%v`` verb without flags)."""
    t = type(v)
    if t is str:
        return v
    if t is int:
        return str(v)
    if t is bool:
        return "true" if v else "false"
    if t is float:
        return format_float(v)
    return _print_arg(v, "v", _PLAIN, 0)


def _is_string(v: Any) -> bool:
    return isinstance(v, str)


def sprint(args: Sequence[Any]) -> str:
    """fmt.Sprint: spaces between operands when neither is a string."""
    out = []
    prev_string = False
    for i, a in enumerate(args):
        is_string = isinstance(a, str)
        if i > 0 and not is_string and not prev_string:
            out.append(" ")
        out.append(format_value(a))
        prev_string = is_string
    return "".join(out)


def sprintln(args: Sequence[Any]) -> str:
    """fmt.Sprintln: always spaces between operands, newline at the end."""
    return " ".join(format_value(a) for a in args) + "\n"


def _parsenum(s: str, start: int, end: int) -> tuple[int, bool, int]:
    if start >= end:
        return 0, False, end
    num = 0
    isnum = False
    i = start
    while i < end and "0" <= s[i] <= "9":
        num = num * 10 + ord(s[i]) - 48
        if num > 1_000_000:
            return 0, False, end
        isnum = True
        i += 1
    return num, isnum, i


def _parse_arg_number(fmt: str, i: int) -> tuple[int, int, bool]:
    """Parse ``[n]`` at fmt[i:]; returns (index, width consumed, ok)."""
    s = fmt[i:]
    if len(s) < 3:
        return 0, 1, False
    for j in range(1, len(s)):
        if s[j] == "]":
            width, ok, newi = _parsenum(s, 1, j)
            if not ok or newi != j:
                return 0, j + 1, False
            return width - 1, j + 1, True
    return 0, 1, False


def _arg_number(fmt: str, i: int, argnum: int, nargs: int) -> tuple[int, int, bool, bool]:
    """Go's argNumber for a ``[n]`` at fmt[i]: (argnum, new i, found, n in range)."""
    idx, width, ok = _parse_arg_number(fmt, i)
    if ok and 0 <= idx < nargs:
        return idx, i + width, True, True
    return argnum, i + width, ok, False


def _int_from_arg(args: Sequence[Any], argnum: int) -> tuple[int, bool, int]:
    num, isint, new = 0, False, argnum
    if argnum < len(args):
        a = args[argnum]
        if isinstance(a, int) and not isinstance(a, bool):
            num, isint = a, True
        new = argnum + 1
        if num > 1_000_000 or num < -1_000_000:
            num, isint = 0, False
    return num, isint, new


def sprintf(fmt: str, args: Sequence[Any]) -> str:
    """fmt.Sprintf with Go's verbs, flags, width, precision, ``*`` and ``[n]`` argument indexes."""
    out: list[str] = []
    end = len(fmt)
    argnum = 0
    nargs = len(args)
    reordered = False
    f = _Flags()
    i = 0
    while i < end:
        good_argnum = True
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        if j > i:
            out.append(fmt[i:j])
        i = j + 1
        f.clear()
        # flags
        simple_done = False
        while i < end:
            c = fmt[i]
            if c == "#":
                f.sharp = True
            elif c == "0":
                f.zero = not f.minus
            elif c == "+":
                f.plus = True
            elif c == "-":
                f.minus = True
                f.zero = False
            elif c == " ":
                f.space = True
            else:
                if "a" <= c <= "z" and argnum < nargs:
                    if c == "v":
                        f.sharp_v, f.sharp = f.sharp, False
                        f.plus_v, f.plus = f.plus, False
                    out.append(_print_arg(args[argnum], c, f, 0))
                    argnum += 1
                    i += 1
                    simple_done = True
                break
            i += 1
        if simple_done:
            continue
        after_index = False
        # argument index
        if i < end and fmt[i] == "[":
            reordered = True
            argnum, i, after_index, in_range = _arg_number(fmt, i, argnum, nargs)
            good_argnum = good_argnum and in_range
        # width
        if i < end and fmt[i] == "*":
            i += 1
            f.wid, f.wid_p, argnum = _int_from_arg(args, argnum)
            if not f.wid_p:
                out.append("%!(BADWIDTH)")
            if f.wid < 0:
                f.wid = -f.wid
                f.minus = True
                f.zero = False
            after_index = False
        else:
            f.wid, f.wid_p, i = _parsenum(fmt, i, end)
            if after_index and f.wid_p:
                good_argnum = False
        # precision
        if i + 1 < end and fmt[i] == ".":
            i += 1
            if after_index:
                good_argnum = False
            if i < end and fmt[i] == "[":
                reordered = True
                argnum, i, after_index, in_range = _arg_number(fmt, i, argnum, nargs)
                good_argnum = good_argnum and in_range
            if i < end and fmt[i] == "*":
                i += 1
                f.prec, f.prec_p, argnum = _int_from_arg(args, argnum)
                if f.prec < 0:
                    f.prec, f.prec_p = 0, False
                if not f.prec_p:
                    out.append("%!(BADPREC)")
                after_index = False
            else:
                f.prec, f.prec_p, i = _parsenum(fmt, i, end)
                if not f.prec_p:
                    f.prec, f.prec_p = 0, True
        if not after_index and i < end and fmt[i] == "[":
            reordered = True
            idx, w, ok = _parse_arg_number(fmt, i)
            if ok and 0 <= idx < nargs:
                argnum = idx
                after_index = True
            else:
                good_argnum = False
                after_index = ok
            i += w
        if i >= end:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
        elif not good_argnum:
            out.append("%!" + verb + "(BADINDEX)")
        elif argnum >= nargs:
            out.append("%!" + verb + "(MISSING)")
        else:
            if verb == "v":
                f.sharp_v, f.sharp = f.sharp, False
                f.plus_v, f.plus = f.plus, False
            out.append(_print_arg(args[argnum], verb, f, 0))
            argnum += 1
    if not reordered and argnum < nargs:
        extra = []
        for a in args[argnum:]:
            if a is None or a is NO_VALUE:
                extra.append("<nil>")
            else:
                extra.append(go_type_name(a) + "=" + _print_arg(a, "v", _PLAIN, 0))
        out.append("%!(EXTRA " + ", ".join(extra) + ")")
    return "".join(out)
