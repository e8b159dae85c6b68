"""Consul ``?filter=`` expressions (HashiCorp go-bexpr language) compiled to Python predicates.

Pure module, no I/O::

    pred = compile_filter('ServiceMeta.version == "1" and "web" in ServiceTags')
    rows = [r for r in rows if pred(r)]

Grammar (go-bexpr ``grammar.peg``; keywords are lower case)::

    expr     := or
    or       := and ("or" and)*
    and      := not ("and" not)*              precedence: not > and > or
    not      := "not" not | "(" or ")" | match
    match    := Selector ("==" | "!=") Value
              | Selector "is" ["not"] "empty"
              | Selector ["not"] ("contains" | "matches") Value
              | Value ["not"] "in" Selector
    Selector := Ident ("." Ident | "." Digits | "[" String "]")*     Ident = [A-Za-z][A-Za-z0-9_/]*
    Value    := "double quoted" (Go escapes) | `raw` | number | Selector (taken literally: foo.bar)

Evaluation against a decoded Consul JSON record, following go-bexpr as used by Consul:

* Values stay raw strings until compared; they are coerced to the record value's type (Go
  ``strconv.ParseBool`` / ``ParseInt(s, 0, 64)`` / ``ParseFloat``), so ``ServicePort == 80`` and
  ``ServicePort == "80"`` are the same.  A string field compares as text.
* A selector passing *through* a list applies the whole match to every element and is true if any
  element matches (``Checks.Status == "critical"``: some check is critical; ``Checks.Status !=
  "passing"``: some check is not passing; an empty list matches nothing).  A numeric segment
  (``Checks.0.Status``) indexes the list instead.
* ``in`` / ``contains`` test map keys, list elements (coerced equality) or substrings of a string;
  ``is empty`` tests the length of a string, list or map; ``matches`` searches a string with a regex
  (unanchored like Go's ``Match``).  Patterns use Python ``re`` syntax, which agrees with Go's RE2
  on common patterns but, unlike RE2, backtracks: a pathological pattern is slow on long values.
* Selectors: Consul validates them against the record type of the endpoint (go-bexpr's field
  configurations); given ``fields`` (meshctl/server/selectors.py), an unknown one is the same
  error, ``Selector "X" is not valid``. Past that, a missing key, ``null`` or a path through a
  scalar is treated the way go-bexpr treats a missing map key: ``==``, ``in``, ``contains``, ``matches`` and ``is not empty``
  are false; their negations (``!=``, ``not in``, ``not contains``, ``not matches``, ``is empty``)
  are true.
* Where go-bexpr would reject the operation for the value's type (``ServiceTags == "x"`` on a list,
  ``ServicePort == "abc"``, ``Port matches "8"``), both the operator and its negation are false.

Not supported: go-bexpr's JSON-pointer selectors (``"/a/b"``), inline ``["a", "b"]`` values and
the ordering operators of later versions (Consul does not document them).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = ["ANY_KEY", "FilterError", "Fields", "Predicate", "compile_filter"]

Predicate = Callable[[Any], bool]
ANY_KEY = "*"  # in Fields.names: a map, any key


@dataclass(frozen=True, eq=False)  # identity hash: compiled filters are cached per (expression, fields)
class Fields:
    """The selectors a record type offers, as go-bexpr's field configuration of a Go struct.

    `names` maps each field to its own fields (None: a value with none); `ANY_KEY` stands for
    any key of a map. Digits pass through (a list index, meshctl's extension).
    """

    names: Mapping[str, Fields | None]

    def check(self, path: tuple[str, ...]) -> str | None:
        """The invalid prefix of selector `path` (as go-bexpr reports it), or None if valid."""
        node: Fields | None = self
        for i, segment in enumerate(path):
            if segment.isdigit():
                continue
            if node is None or (segment not in node.names and ANY_KEY not in node.names):
                return ".".join(path[: i + 1])
            node = node.names[segment] if segment in node.names else node.names[ANY_KEY]
        return None

_PREFIX = "Failed to create boolean expression evaluator: "
_KEYWORDS = frozenset({"and", "or", "not", "in", "is", "empty", "contains", "matches"})
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_/]*")
_DIGITS = re.compile(r"[0-9]+")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_WS = " \t\r\n"
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            "\\": "\\", '"': '"', "'": "'"}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}
_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_OPERATORS = "==, !=, is empty, is not empty, in, not in, contains, not contains, matches, not matches"
_MISSING: Any = object()
_MAX_DEPTH = 100


class FilterError(ValueError):
    """A filter expression that does not compile; the message mirrors Consul's."""


class _Tok(NamedTuple):
    kind: str  # "sel" (val: path tuple), "str", "num", "op", "kw", "(", ")", "eof"
    val: Any
    pos: int


def _error(text: str, pos: int, reason: str) -> FilterError:
    """FilterError with a pigeon-style ``line:col (byte offset)`` position, as go-bexpr prints."""
    before = text[:pos]
    line = before.count("\n") + 1
    col = pos - (before.rfind("\n") + 1) + 1
    return FilterError(f"{_PREFIX}{line}:{col} ({len(before.encode())}): {reason}")


# ---------------------------------------------------------------------------------------- lexer
def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def _read_string(text: str, start: int) -> tuple[str, int]:
    """Decode the quoted literal at ``start``; return (value, index after the closing quote)."""
    quote, i = text[start], start + 1
    out: list[str] = []
    while i < len(text):
        c = text[i]
        if c == quote:
            return "".join(out), i + 1
        if quote == "`":  # raw string: no escapes; Go drops carriage returns
            if c != "\r":
                out.append(c)
            i += 1
        elif c != "\\":
            out.append(c)
            i += 1
        else:
            e = text[i + 1 : i + 2]
            if not e:
                break
            if e in _ESCAPES:
                out.append(_ESCAPES[e])
                i += 2
                continue
            # \xHH, \uHHHH, \UHHHHHHHH or \ooo (three octal digits), as in Go
            hexa = e in _HEX_ESCAPES
            skip, width = (2, _HEX_ESCAPES[e]) if hexa else (1, 3)
            digits = text[i + skip : i + skip + width]
            ok = re.fullmatch(r"[0-9a-fA-F]+" if hexa else r"[0-7]+", digits) and len(digits) == width
            code = int(digits, 16 if hexa else 8) if ok else -1
            if not 0 <= code <= (0x10FFFF if hexa else 0o377):
                seq = text[i : i + skip + width] if hexa or e in "01234567" else text[i : i + 2]
                raise _error(text, i, f"invalid escape sequence {seq!r} in string literal")
            out.append(chr(code))
            i += skip + width
    raise _error(text, start, "Unterminated string literal")


def _read_selector(text: str, i: int) -> tuple[tuple[str, ...], int]:
    m = _IDENT.match(text, i)
    assert m is not None
    path, i = [m.group()], m.end()
    while i < len(text):
        if text[i] == "." and (m := _IDENT.match(text, i + 1) or _DIGITS.match(text, i + 1)):
            path.append(m.group())
            i = m.end()
        elif text[i] == "[":
            j = _skip_ws(text, i + 1)
            if j >= len(text) or text[j] not in '"`':
                raise _error(text, j, 'Invalid index: expected a quoted map key such as ["key"]')
            key, j = _read_string(text, j)
            j = _skip_ws(text, j)
            if j >= len(text) or text[j] != "]":
                raise _error(text, j, "Unclosed index expression: expected ']'")
            path.append(key)
            i = j + 1
        else:
            break
    return tuple(path), i


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i = _skip_ws(text, 0)
    while i < len(text):
        c = text[i]
        if c in "()":
            toks.append(_Tok(c, c, i))
            j = i + 1
        elif text.startswith(("==", "!="), i):
            toks.append(_Tok("op", text[i : i + 2], i))
            j = i + 2
        elif c in '"`':
            s, j = _read_string(text, i)
            toks.append(_Tok("str", s, i))
        elif "0" <= c <= "9" or c == "-" and "0" <= text[i + 1 : i + 2] <= "9":
            m = _NUMBER.match(text, i)
            j = m.end() if m else i
            if not m or (j < len(text) and text[j] not in _WS and text[j] != ")"):
                raise _error(text, i, "Invalid number literal")
            toks.append(_Tok("num", m.group(), i))
        elif _IDENT.match(text, i):
            path, j = _read_selector(text, i)
            kind = "kw" if len(path) == 1 and path[0] in _KEYWORDS else "sel"
            toks.append(_Tok(kind, path[0] if kind == "kw" else path, i))
        else:
            hint = ""
            if toks and toks[-1].kind == "sel" and text[i - 1] not in _WS:
                hint = '; a map key that is not an identifier needs an index: Meta["my-key"]'
            raise _error(text, i, f"unexpected character {c!r}{hint}")
        i = _skip_ws(text, j)
    toks.append(_Tok("eof", None, len(text)))
    return toks


def _describe(t: _Tok) -> str:
    if t.kind == "eof":
        return "end of expression"
    kind = {"str": "string ", "num": "number ", "sel": "selector "}.get(t.kind, "")
    return f"{kind}{'.'.join(t.val) if t.kind == 'sel' else t.val!r}"


# ------------------------------------------------------------------------------------- matching
def _coerce_equal(v: Any, raw: str) -> bool | None:
    """``v == raw`` with raw coerced to v's type; None when go-bexpr could not compare them."""
    if isinstance(v, str):
        return v == raw
    if isinstance(v, bool):
        return v if raw in _GO_TRUE else (not v) if raw in _GO_FALSE else None
    try:
        if isinstance(v, int):  # strconv.ParseInt(raw, 0, 64): 0x.., 0o.., 0b.., and 0.. is octal
            return v == (int(raw, 8) if re.fullmatch(r"[+-]?0[0-7_]+", raw) else int(raw, 0))
        if isinstance(v, float):
            return v == float(raw)
    except ValueError:
        return None
    return None


def _contains(v: Any, raw: str) -> bool | None:
    if isinstance(v, dict):
        return raw in v
    if isinstance(v, list):
        return any(_coerce_equal(item, raw) for item in v)
    if isinstance(v, str):
        return raw in v
    return None


def _is_empty(v: Any, _raw: str) -> bool | None:
    return len(v) == 0 if isinstance(v, str | list | dict) else None


def _walk(node: Any, path: tuple[str, ...], i: int, leaf: Callable[[Any], bool]) -> bool:
    """Follow ``path`` from ``node``; lists fan out (any element), missing keys reach the leaf."""
    while i < len(path):
        if isinstance(node, dict):
            node = node.get(path[i], _MISSING)
            i += 1
            if node is _MISSING:
                break
        elif isinstance(node, list):
            if path[i].isascii() and path[i].isdigit():
                idx = int(path[i])
                node = node[idx] if idx < len(node) else _MISSING
                i += 1
                continue
            return any(_walk(item, path, i, leaf) for item in node)
        else:
            node = _MISSING
            break
    return leaf(node)


def _matcher(text: str, path: tuple[str, ...], op: str, raw: str, pos: int) -> Predicate:
    negate = op in ("!=", "not in", "not contains", "not matches", "is not empty")
    test: Callable[[Any, str], bool | None]
    if op.endswith("matches"):
        try:
            rx = re.compile(raw)
        except re.error as e:
            raise _error(text, pos, f"Failed to compile regular expression {raw!r}: {e}") from None

        def matches(v: Any, _raw: str) -> bool | None:
            return bool(rx.search(v)) if isinstance(v, str) else None

        test = matches
    elif op.endswith("empty"):
        test = _is_empty
    elif op in ("==", "!="):
        test = _coerce_equal
    else:
        test = _contains
    on_missing = (test is _is_empty) != negate

    def leaf(v: Any) -> bool:
        if v is _MISSING or v is None:
            return on_missing
        r = test(v, raw)
        return False if r is None else r != negate

    return lambda record: _walk(record, path, 0, leaf)


# -------------------------------------------------------------------------------------- parser
def _all(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    parts = tuple(preds)  # flat, so long `a and b and ...` chains do not nest closures
    return lambda r: all(p(r) for p in parts)


def _any(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    parts = tuple(preds)
    return lambda r: any(p(r) for p in parts)


class _Parser:
    def __init__(self, text: str, fields: Fields | None = None) -> None:
        self.text = text
        self.fields = fields
        self.toks = _tokenize(text)
        self.i = 0
        self.depth = 0

    def peek(self, k: int = 0) -> _Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def take(self) -> _Tok:
        t = self.toks[self.i]
        self.i = min(self.i + 1, len(self.toks) - 1)
        return t

    def kw(self, word: str, k: int = 0) -> bool:
        t = self.peek(k)
        return t.kind == "kw" and t.val == word

    def accept(self, word: str) -> bool:
        if self.kw(word):
            self.take()
            return True
        return False

    def fail(self, t: _Tok, reason: str) -> FilterError:
        return _error(self.text, t.pos, reason)

    def selector(self, path: tuple[str, ...]) -> tuple[str, ...]:
        """`path`, if the record type has it (go-bexpr's error, without a position, if not)."""
        bad = self.fields.check(path) if self.fields is not None else None
        if bad is not None:
            raise FilterError(f'{_PREFIX}Selector "{bad}" is not valid')
        return path

    def parse(self) -> Predicate:
        if self.peek().kind == "eof":
            raise self.fail(self.peek(), "empty filter expression")
        pred = self.or_expr()
        t = self.peek()
        if t.kind == ")":
            raise self.fail(t, "Unmatched parentheses: unexpected ')'")
        if t.kind != "eof":
            hint = " (keywords are lower case)" if t.kind == "sel" and t.val[0].lower() in _KEYWORDS else ""
            raise self.fail(t, f"unexpected {_describe(t)}, expected 'and', 'or' or end of expression{hint}")
        return pred

    def or_expr(self) -> Predicate:
        preds = [self.and_expr()]
        while self.accept("or"):
            preds.append(self.and_expr())
        return _any(preds)

    def and_expr(self) -> Predicate:
        preds = [self.not_expr()]
        while self.accept("and"):
            preds.append(self.not_expr())
        return _all(preds)

    def not_expr(self) -> Predicate:
        self.depth += 1
        if self.depth > _MAX_DEPTH:  # keep hostile input away from Python's recursion limit
            raise self.fail(self.peek(), f"expression nested too deeply (more than {_MAX_DEPTH} levels)")
        try:
            return self._not_expr()
        finally:
            self.depth -= 1

    def _not_expr(self) -> Predicate:
        if self.accept("not"):
            inner = self.not_expr()
            return lambda r: not inner(r)
        if self.peek().kind == "(":
            self.take()
            inner = self.or_expr()
            if self.peek().kind != ")":
                raise self.fail(self.peek(), f"Unmatched parentheses: expected ')' before {_describe(self.peek())}")
            self.take()
            return inner
        return self.match_expr()

    def value(self) -> tuple[str, int]:
        t = self.take()
        if t.kind == "sel":
            return ".".join(t.val), t.pos
        if t.kind in ("str", "num"):
            return t.val, t.pos
        raise self.fail(t, f"expected a value (quoted string, number or identifier), found {_describe(t)}")

    def match_expr(self) -> Predicate:
        t = self.take()
        if t.kind == "sel":
            if self.peek().kind == "op":
                op = self.take().val
                return _matcher(self.text, self.selector(t.val), op, *self.value())
            if self.kw("is"):
                self.take()
                negate = self.accept("not")
                if not self.kw("empty"):
                    raise self.fail(self.peek(), f"expected 'empty' after 'is', found {_describe(self.peek())}")
                self.take()
                return _matcher(self.text, self.selector(t.val), "is not empty" if negate else "is empty", "",
                                t.pos)
            negate = self.kw("not") and (self.kw("contains", 1) or self.kw("matches", 1))
            if negate:
                self.take()
            if self.kw("contains") or self.kw("matches"):
                op = ("not " if negate else "") + self.take().val
                return _matcher(self.text, self.selector(t.val), op, *self.value())
            if not (self.kw("in") or self.kw("not") and self.kw("in", 1)):
                raise self.fail(self.peek(), f"no match found, expected one of {_OPERATORS} after "
                                f"{_describe(t)}, found {_describe(self.peek())}")
            raw = ".".join(t.val)  # an unquoted value: `web in ServiceTags`
        elif t.kind in ("str", "num"):
            raw = t.val
        else:
            raise self.fail(t, f"no match found, expected a selector, a value, 'not' or '(', found {_describe(t)}")
        negate = self.accept("not")
        if not self.kw("in"):
            raise self.fail(self.peek(), f"expected 'in' or 'not in' after {_describe(t)}, found "
                            f"{_describe(self.peek())} (selectors go on the left of ==, contains, ...)")
        self.take()
        s = self.take()
        if s.kind != "sel":
            raise self.fail(s, f"Invalid selector: expected a selector after 'in', found {_describe(s)}")
        return _matcher(self.text, self.selector(s.val), "not in" if negate else "in", raw, t.pos)


@functools.lru_cache(maxsize=512)
def compile_filter(expression: str, fields: Fields | None = None) -> Predicate:
    """Compile a go-bexpr filter into ``pred(record) -> bool``; raises FilterError on bad syntax
    or, given the record type's `fields`, on a selector it does not have.

    Cached: blocking queries re-send the same expression on every wake-up.  An empty ``?filter=``
    means "no filter" in Consul; callers should skip filtering instead of compiling ``""``.
    """
    return _Parser(expression, fields).parse()
