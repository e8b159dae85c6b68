"""consul-template math helpers with Go's numeric rules.

Argument order is reversed (the piped value is the left operand): ``subtract 2 5`` is 5 - 2.
int op int gives int (division truncates toward zero); any float makes the result a float.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from meshctl.template.funcs_text import go_quote

__all__ = ["add", "divide", "maximum", "minimum", "modulo", "multiply", "subtract"]

Number = int | float


def _check(fn: str, v: Any, ints_only: bool = False) -> Number:
    ok = (int,) if ints_only else (int, float)
    if isinstance(v, bool) or not isinstance(v, ok):
        raise TypeError(f"{fn}: unknown type for {go_quote(v)} ({_go_type(v)})")
    return v


def _go_type(v: Any) -> str:
    return {bool: "bool", int: "int", float: "float64", str: "string", type(None): "<nil>"}.get(
        type(v), type(v).__name__
    )


def _binary(fn: str, op: Callable[[Number, Number], Number]) -> Callable[[Any, Any], Number]:
    def helper(b: Any, a: Any) -> Number:
        a = _check(fn, a)
        b = _check(fn, b)
        if isinstance(a, float) or isinstance(b, float):
            return op(float(a), float(b))
        return op(a, b)

    helper.__name__ = fn
    helper.__doc__ = f"consul-template ``{fn}`` (b, a): piped value a is the left operand."
    return helper


def _div(a: Number, b: Number) -> Number:
    if isinstance(a, float):
        if b == 0:
            return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a) * math.copysign(1.0, b)
        return a / b
    if b == 0:
        raise ZeroDivisionError("runtime error: integer divide by zero")
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


add = _binary("add", lambda a, b: a + b)
subtract = _binary("subtract", lambda a, b: a - b)
multiply = _binary("multiply", lambda a, b: a * b)
divide = _binary("divide", _div)


def modulo(b: Any, a: Any) -> int:
    """consul-template ``modulo`` (b, a) = a % b with Go's truncated remainder; integers only."""
    a = _check("modulo", a, ints_only=True)
    b = _check("modulo", b, ints_only=True)
    if b == 0:
        raise ZeroDivisionError("runtime error: integer divide by zero")
    r = abs(a) % abs(b)
    return -r if a < 0 else r


def minimum(b: Any, a: Any) -> Number:
    """The smaller of a and b, keeping the winner's own type (b on ties)."""
    a, b = _check("minimum", a), _check("minimum", b)
    return a if a < b else b


def maximum(b: Any, a: Any) -> Number:
    """The larger of a and b, keeping the winner's own type (b on ties)."""
    a, b = _check("maximum", a), _check("maximum", b)
    return a if a > b else b
