"""Go text/template builtin functions (text/template/funcs.go) on Python values.

Arguments may be ``NO_VALUE`` (Go's invalid reflect.Value, e.g. a missing map key) or ``None``
(a nil interface). Errors are raised as :class:`BuiltinError` carrying Go's message; the executor
turns them into ``error calling <name>: <message>``.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from .fmt import NO_VALUE, format_value, go_type_name, sprint, sprintf, sprintln

__all__ = ["BuiltinError", "truth", "BUILTINS", "BUILTIN_ARITY", "REFLECT_ARGS", "ZERO_STRING_MAPS"]


class BuiltinError(Exception):
    """An error returned by a builtin function."""


def is_nil(v: Any) -> bool:
    return v is None or v is NO_VALUE


_SEQ_TYPES = (list, tuple, str, dict, bytes, bytearray, set, frozenset, range)


def truth(v: Any) -> bool:
    """Go's isTrue: false, 0, nil, empty string/slice/map are false; structs are true."""
    t = type(v)
    if t is bool:
        return v
    if t is str or t is list or t is dict or t is tuple:
        return len(v) > 0
    if t is int or t is float:
        return v != 0
    if v is None or v is NO_VALUE:
        return False
    if isinstance(v, bool | int | float | complex):
        return v != 0
    if isinstance(v, _SEQ_TYPES) or isinstance(v, Mapping):
        return len(v) > 0
    return True


# ---------------------------------------------------------------------------------------------
# comparison

_BOOL, _INT, _FLOAT, _COMPLEX, _STRING, _INVALID = range(6)


def _basic_kind(v: Any) -> int:
    t = type(v)
    if t is str:
        return _STRING
    if t is int:
        return _INT
    if t is bool:
        return _BOOL
    if t is float:
        return _FLOAT
    if isinstance(v, bool):
        return _BOOL
    if isinstance(v, int):
        return _INT
    if isinstance(v, float):
        return _FLOAT
    if isinstance(v, complex):
        return _COMPLEX
    if isinstance(v, str):
        return _STRING
    return _INVALID


ERR_BAD_COMPARISON_TYPE = "invalid type for comparison"
ERR_BAD_COMPARISON = "incompatible types for comparison"
ERR_NO_COMPARISON = "missing argument for comparison"


def _go_kind(v: Any) -> str:
    if is_nil(v):
        return "invalid"
    if isinstance(v, Mapping):
        return "map"
    if isinstance(v, list | tuple):
        return "slice"
    if hasattr(v, "__next__"):
        return "chan"
    if callable(v):
        return "func"
    return "struct"


def _eq2(a: Any, b: Any) -> bool:
    k1 = _basic_kind(a)
    k2 = _basic_kind(b)
    if k1 != k2:
        if k1 != _INVALID and k2 != _INVALID:
            raise BuiltinError(ERR_BAD_COMPARISON)
        if not is_nil(a) and not is_nil(b):
            raise BuiltinError(ERR_BAD_COMPARISON)
        return False
    if k1 != _INVALID:
        return a == b
    # neither is a basic kind
    na, nb = is_nil(a), is_nil(b)
    if na or nb:
        return na and nb
    ka, kb = _go_kind(a), _go_kind(b)
    if ka != kb:
        raise BuiltinError(
            f"non-comparable types {format_value(a)}: {go_type_name(a)}, {go_type_name(b)}: {format_value(b)}"
        )
    if ka in ("map", "slice", "func"):
        raise BuiltinError(f"non-comparable type {format_value(b)}: {go_type_name(b)}")
    return a is b or a == b


def eq(arg1: Any = NO_VALUE, *args: Any) -> bool:
    """eq a b c: a == b || a == c."""
    if not args:
        raise BuiltinError(ERR_NO_COMPARISON)
    for b in args:
        if _eq2(arg1, b):
            return True
    return False


def ne(a: Any, b: Any) -> bool:
    return not eq(a, b)


def lt(a: Any, b: Any) -> bool:
    k1 = _basic_kind(a)
    if k1 == _INVALID:
        raise BuiltinError(ERR_BAD_COMPARISON_TYPE)
    k2 = _basic_kind(b)
    if k2 == _INVALID:
        raise BuiltinError(ERR_BAD_COMPARISON_TYPE)
    if k1 != k2:
        raise BuiltinError(ERR_BAD_COMPARISON)
    if k1 == _BOOL or k1 == _COMPLEX:
        raise BuiltinError(ERR_BAD_COMPARISON_TYPE)
    return a < b


def le(a: Any, b: Any) -> bool:
    return lt(a, b) or eq(a, b)


def gt(a: Any, b: Any) -> bool:
    return not le(a, b)


def ge(a: Any, b: Any) -> bool:
    return not lt(a, b)


def not_(a: Any) -> bool:
    return not truth(a)


# ---------------------------------------------------------------------------------------------
# length, indexing, slicing

ZERO_STRING_MAPS = True  # index on a missing key of an all-string dict yields "" (map[string]string)


def length(item: Any) -> int:
    if item is NO_VALUE:
        raise BuiltinError("reflect: call of reflect.Value.Type on zero Value")
    if item is None:
        raise BuiltinError("len of nil pointer")
    if isinstance(item, str):
        return len(item) if item.isascii() else len(item.encode("utf-8", "surrogateescape"))
    if isinstance(item, list | tuple | Mapping | bytes | bytearray | range | set | frozenset):
        return len(item)
    raise BuiltinError(f"len of type {go_type_name(item)}")


def _index_arg(index: Any, cap: int) -> int:
    if isinstance(index, bool) or not isinstance(index, int):
        if is_nil(index):
            raise BuiltinError("cannot index slice/array with nil")
        raise BuiltinError(f"cannot index slice/array with type {go_type_name(index)}")
    if index < 0 or index > cap:
        raise BuiltinError(f"index out of range: {index}")
    return index


_ZEROS: dict[type, Any] = {str: "", int: 0, float: 0.0, bool: False}


def _map_zero(m: Mapping) -> Any:
    """The zero value of a map's element type: a ``go_zero`` attribute, else inferred from the values.

    A plain dict whose values all have one basic type (str, int, float, bool) behaves like
    map[string]string / map[string]int...; anything else is a map[string]interface{} (zero: nil).
    """
    z = getattr(m, "go_zero", NO_VALUE)
    if z is not NO_VALUE:
        return z
    if ZERO_STRING_MAPS and type(m) is dict and m:
        it = iter(m.values())
        t = type(next(it))
        if t in _ZEROS and all(type(v) is t for v in it):
            return _ZEROS[t]
    return None


def index(item: Any = NO_VALUE, *indexes: Any) -> Any:
    """index x 1 2 3 is x[1][2][3]; missing map keys give the element zero value."""
    if is_nil(item):
        raise BuiltinError("index of untyped nil")
    for ix in indexes:
        if item is None:
            raise BuiltinError("index of nil pointer")
        if isinstance(item, Mapping):
            try:
                item = item[ix]
            except KeyError:
                if type(ix) is not str and item and all(type(k) is str for k in item):
                    raise BuiltinError(f"value has type {go_type_name(ix)}; should be string") from None
                item = _map_zero(item)
            except TypeError:
                raise BuiltinError(
                    f"value has type {go_type_name(ix)}; should be string"
                ) from None
        elif isinstance(item, str):
            b = item.encode("utf-8", "surrogateescape") if not item.isascii() else item
            x = _index_arg(ix, len(b))
            if x == len(b):
                raise BuiltinError("reflect: string index out of range")
            item = b[x] if isinstance(b, bytes) else ord(b[x])
        elif isinstance(item, list | tuple | bytes | bytearray | range):
            x = _index_arg(ix, len(item))
            if x == len(item):
                raise BuiltinError("reflect: slice index out of range")
            item = item[x]
        else:
            raise BuiltinError(f"can't index item of type {go_type_name(item)}")
    return item


def slice_(item: Any = NO_VALUE, *indexes: Any) -> Any:
    """slice x 1 2 is x[1:2]."""
    if is_nil(item):
        raise BuiltinError("slice of untyped nil")
    if len(indexes) > 3:
        raise BuiltinError(f"too many slice indexes: {len(indexes)}")
    is_str = isinstance(item, str)
    if is_str:
        if len(indexes) == 3:
            raise BuiltinError("cannot 3-index slice a string")
        seq: Any = item.encode("utf-8", "surrogateescape")
    elif isinstance(item, list | tuple | bytes | bytearray):
        seq = item
    else:
        raise BuiltinError(f"can't slice item of type {go_type_name(item)}")
    cap = len(seq)
    idx = [0, len(seq), len(seq)]
    for i, ix in enumerate(indexes):
        idx[i] = _index_arg(ix, cap)
    if idx[0] > idx[1]:
        raise BuiltinError(f"invalid slice index: {idx[0]} > {idx[1]}")
    if len(indexes) == 3 and idx[1] > idx[2]:
        raise BuiltinError(f"invalid slice index: {idx[1]} > {idx[2]}")
    res = seq[idx[0] : idx[1]]
    if is_str:
        return res.decode("utf-8", "surrogateescape")
    return res


# ---------------------------------------------------------------------------------------------
# printing and escaping


def _nil_to_none(args: tuple) -> list:
    return [None if a is NO_VALUE else a for a in args]


def print_(*args: Any) -> str:
    return sprint(_nil_to_none(args))


def println(*args: Any) -> str:
    return sprintln(_nil_to_none(args))


def printf(fmt: Any, *args: Any) -> str:
    if not isinstance(fmt, str):
        raise BuiltinError(f"wrong type for value; expected string; got {go_type_name(fmt)}")
    return sprintf(fmt, _nil_to_none(args))


def _eval_args(args: tuple) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(["<no value>" if is_nil(a) else a for a in args])


_HTML = {'"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;", "\0": "\ufffd"}


def html_escape_string(s: str) -> str:
    if not any(c in s for c in "\"'&<>\0"):
        return s
    return "".join(_HTML.get(c, c) for c in s)


def html(*args: Any) -> str:
    return html_escape_string(_eval_args(args))


_JS = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026", "=": "\\u003D"}


def js_escape_string(s: str) -> str:
    out = []
    for c in s:
        r = _JS.get(c)
        if r is not None:
            out.append(r)
        elif c < " ":
            out.append(f"\\u00{ord(c):02X}")
        elif ord(c) >= 0x80 and not c.isprintable():
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(c)
    return "".join(out)


def js(*args: Any) -> str:
    return js_escape_string(_eval_args(args))


def urlquery(*args: Any) -> str:
    return urllib.parse.quote_plus(_eval_args(args), safe="")


def call(fn: Any = NO_VALUE, *args: Any) -> Any:
    """call fn a b: fn(a, b)."""
    if is_nil(fn):
        raise BuiltinError("call of nil")
    if not callable(fn):
        raise BuiltinError(f"non-function of type {go_type_name(fn)}")
    return fn(*_nil_to_none(args))


BUILTINS: dict[str, Callable[..., Any]] = {
    "and": lambda *a: a[-1],  # short-circuit evaluation is done by the executor
    "or": lambda *a: a[-1],
    "not": not_,
    "len": length,
    "index": index,
    "slice": slice_,
    "print": print_,
    "printf": printf,
    "println": println,
    "html": html,
    "js": js,
    "urlquery": urlquery,
    "call": call,
    "eq": eq,
    "ne": ne,
    "lt": lt,
    "le": le,
    "gt": gt,
    "ge": ge,
}

# (fixed arg count, variadic?) as Go declares them
BUILTIN_ARITY: dict[str, tuple[int, bool]] = {
    "and": (1, True),
    "or": (1, True),
    "not": (1, False),
    "len": (1, False),
    "index": (1, True),
    "slice": (1, True),
    "print": (0, True),
    "printf": (1, True),
    "println": (0, True),
    "html": (0, True),
    "js": (0, True),
    "urlquery": (0, True),
    "call": (1, True),
    "eq": (1, True),
    "ne": (2, False),
    "lt": (2, False),
    "le": (2, False),
    "gt": (2, False),
    "ge": (2, False),
}

# builtins whose parameters are reflect.Value in Go: a literal nil argument is an error for them
REFLECT_ARGS = frozenset(("and", "or", "not", "len", "index", "slice", "call", "eq", "ne", "lt", "le", "gt", "ge"))
