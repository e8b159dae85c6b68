"""Go fmt verbs (meshctl.template.gotemplate.fmt): Sprintf/Sprint/Sprintln as Go prints them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest

from meshctl.template.gotemplate import Template
from meshctl.template.gotemplate.fmt import format_float, format_value, quote, sprint, sprintf, sprintln


@dataclass
class P:
    X: int
    Y: str


class S:
    def __str__(self) -> str:
        return "stringer"


SPRINTF_CASES: list[tuple[str, list[Any], str]] = [
    ("%*d|", [-5, 42], "42   |"),
    ("%.*d", [-1, 42], "%!(BADPREC)42"),
    ("%[x]d", [1], "%!d(BADINDEX)"),
    ("%#v", ["a"], '"a"'),
    ("%#v", [5], "5"),
    ("%0-5d|", [7], "7    |"),
    ("%-05d|", [7], "7    |"),
    ("%+.3e", [12345.678], "+1.235e+04"),
    ("% .2f", [1.5], " 1.50"),
    ("%08.3f", [-1.5], "-001.500"),
    ("%+08d", [42], "+0000042"),
    ("% 08d", [42], " 0000042"),
    ("%U", [-1], "U+FFFFFFFFFFFFFFFF"),
    ("%c", [0x110000], "\ufffd"),
    ("%6.2f%%", [99.5], " 99.50%"),
    ("% v", [[1, 11, 111]], "[ 1  11  111]"),
    ("%+v", [[1, 11, 111]], "[1 11 111]"),
    ('%d', [12345], '12345'),
    ('%v', [12345], '12345'),
    ('%+d', [12345], '+12345'),
    ('% d', [12], ' 12'),
    ('%5d', [12], '   12'),
    ('%-5d|', [12], '12   |'),
    ('%05d', [-12], '-0012'),
    ('%.3d', [7], '007'),
    ('%8.3d', [7], '     007'),
    ('%x', [255], 'ff'),
    ('%X', [255], 'FF'),
    ('%#x', [255], '0xff'),
    ('%#o', [8], '010'),
    ('%O', [8], '0o10'),
    ('%b', [5], '101'),
    ('%#b', [5], '0b101'),
    ('%c', [65], 'A'),
    ('%q', [65], "'A'"),
    ('%U', [128512], 'U+1F600'),
    ('%#U', [65], "U+0041 'A'"),
    ('%x', [-255], '-ff'),
    ('%#08x', [255], '0x000000ff'),
    ('%.0d', [0], ''),
    ('%5.0d|', [0], '     |'),
    ('%f', [3.14159], '3.141590'),
    ('%.2f', [3.14159], '3.14'),
    ('%8.3f', [3.14159], '   3.142'),
    ('%-8.3f|', [3.14159], '3.142   |'),
    ('%+.2f', [3.14159], '+3.14'),
    ('%e', [1234.5678], '1.234568e+03'),
    ('%E', [1234.5678], '1.234568E+03'),
    ('%g', [1234.5678], '1234.5678'),
    ('%g', [1e+21], '1e+21'),
    ('%g', [1000000.0], '1e+06'),
    ('%G', [1e-07], '1E-07'),
    ('%.3g', [1234.5678], '1.23e+03'),
    ('%v', [0.1], '0.1'),
    ('%v', [1e+20], '1e+20'),
    ('%v', [123456789.0], '1.23456789e+08'),
    ('%06.2f', [-3.14159], '-03.14'),
    ('%v', [math.inf], '+Inf'),
    ('%v', [-math.inf], '-Inf'),
    ('%v', [math.nan], 'NaN'),
    ('%f', [math.inf], '+Inf'),
    ('%5.1f|', [math.nan], '  NaN|'),
    ('%e', [0.0], '0.000000e+00'),
    ('%g', [0.0], '0'),
    ('%.1f', [0.25], '0.2'),
    ('%.0f', [2.5], '2'),
    ('%x', [1.0], '0x1p+00'),
    ('%v', [1e-05], '1e-05'),
    ('%v', [0.0001], '0.0001'),
    ('%s', ['hello'], 'hello'),
    ('%10s|', ['hello'], '     hello|'),
    ('%-10s|', ['hello'], 'hello     |'),
    ('%.2s', ['hello'], 'he'),
    ('%q', ['hello'], '"hello"'),
    ('%q', ['a"b\n'], '"a\\"b\\n"'),
    ('%#q', ['hello'], '`hello`'),
    ('%+q', ['héllo'], '"h\\u00e9llo"'),
    ('%q', ['héllo\x01'], '"héllo\\x01"'),
    ('%x', ['hello'], '68656c6c6f'),
    ('% x', ['hi'], '68 69'),
    ('%X', ['hi'], '6869'),
    ('%#x', ['hi'], '0x6869'),
    ('% #x', ['hi'], '0x68 0x69'),
    ('%05s', ['ab'], '000ab'),
    ('%.1q', ['héllo'], '"h"'),
    ('%t', [True], 'true'),
    ('%v', [False], 'false'),
    ('%d', [True], '%!d(bool=true)'),
    ('%5t|', [True], ' true|'),
    ('%d', ['hello'], '%!d(string=hello)'),
    ('%d', [], '%!d(MISSING)'),
    ('%d %d', [1], '1 %!d(MISSING)'),
    ('hi', [1], 'hi%!(EXTRA int=1)'),
    ('%s', [None], '%!s(<nil>)'),
    ('%v', [None], '<nil>'),
    ('%', [], '%!(NOVERB)'),
    ('%z', [1], '%!z(int=1)'),
    ('100%%', [], '100%'),
    ('%d%%', [5], '5%'),
    ('%v', [[1, 2, 3]], '[1 2 3]'),
    ('%d', [[1, 2]], '[1 2]'),
    ('%s', [['a', 'b']], '[a b]'),
    ('%q', [['a', 'b']], '["a" "b"]'),
    ('%v', [{'b': 2, 'a': 1}], 'map[a:1 b:2]'),
    ('%v', [[None]], '[<nil>]'),
    ('%d', [['a']], '[%!d(string=a)]'),
    ('%3d', [[1, 22]], '[  1  22]'),
    ('%[2]d %[1]d', [1, 2], '2 1'),
    ('%[3]d', [1, 2], '%!d(BADINDEX)'),
    ('%[1]d %d', [1, 2], '1 2'),
    ('%*d', [5, 42], '   42'),
    ('%-*d|', [5, 42], '42   |'),
    ('%.*f', [2, 3.14159], '3.14'),
    ('%*d', ['x', 42], '%!(BADWIDTH)42'),
    ('%[2]*[1]d', [12, 5], '   12'),
    ('%T', [1], 'int'),
    ('%T', ['s'], 'string'),
    ('%T', [1.5], 'float64'),
    ('%T', [True], 'bool'),
    ('%T', [None], '<nil>'),
    ('%T', [[1]], '[]int'),
    ('%T', [{'a': 'b'}], 'map[string]string'),
    ('%v', [P(1, 'a')], '{1 a}'),
    ('%+v', [P(1, 'a')], '{X:1 Y:a}'),
    ('%s', [S()], 'stringer'),
    ('%v', [S()], 'stringer'),
    ('%d', [S()], '%!d(*S=stringer)'),
    ('%v', [ValueError("boom")], 'boom'),
    ('%v', [(1+2j)], '(1+2i)'),
    ('%.2f', [(1+2j)], '(1.00+2.00i)'),
    ('%s %s', ['a', 'b', 'c'], 'a b%!(EXTRA string=c)'),
    ('%!', [], '%!!(MISSING)'),
    ('%-05d|', [3], '3    |'),
    ('%+v', [-1], '-1'),
    ('%x', [b'hi'], '6869'),
    ('%s', [b'hi'], 'hi'),
    ('%v', [b'hi'], '[104 105]'),
]


@pytest.mark.parametrize("fmt,args,want", SPRINTF_CASES, ids=[f"{i}:{c[0]}" for i, c in enumerate(SPRINTF_CASES)])
def test_sprintf(fmt: str, args: list[Any], want: str) -> None:
    assert sprintf(fmt, args) == want


def test_sprintf_bad_verb_on_stringer_uses_its_string() -> None:
    assert sprintf("%d", [S()]) == "%!d(*S=stringer)"


def test_sprint_spaces_only_between_non_strings() -> None:
    assert sprint([1, "a", 2, 3, "b", "c", None, None]) == "1a2 3bc<nil> <nil>"
    assert sprint([]) == ""
    assert sprint(["a", "b"]) == "ab"
    assert sprint([1, 2]) == "1 2"


def test_sprintln_always_spaces_and_newline() -> None:
    assert sprintln(["a", 1, None]) == "a 1 <nil>\n"
    assert sprintln([]) == "\n"


@pytest.mark.parametrize(
    "value,want",
    [
        (True, "true"),
        (None, "<nil>"),
        (3, "3"),
        (-7, "-7"),
        (3.5, "3.5"),
        (2.0, "2"),
        (1e21, "1e+21"),
        (1e6, "1e+06"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-0.0, "-0"),
        (1 / 3, "0.3333333333333333"),
        (["a", "b", "c"], "[a b c]"),
        ([], "[]"),
        ({}, "map[]"),
        ({"k2": "v2", "k1": "v1"}, "map[k1:v1 k2:v2]"),
        ({"a": [1, {"b": None}]}, "map[a:[1 map[b:<nil>]]]"),
        (P(1, "x"), "{1 x}"),
        (S(), "stringer"),
        ("plain", "plain"),
    ],
)
def test_format_value_is_go_percent_v(value: Any, want: str) -> None:
    assert format_value(value) == want


@pytest.mark.parametrize(
    "x,verb,prec,want",
    [
        (1234.5678, "g", -1, "1234.5678"),
        (1234.5678, "e", -1, "1.2345678e+03"),
        (1234.5678, "f", -1, "1234.5678"),
        (1e21, "f", -1, "1000000000000000000000"),
        (0.000001234, "g", -1, "1.234e-06"),
        (100.0, "g", 3, "100"),
        (12.5, "g", 5, "12.5"),
        (1e5, "g", 10, "100000"),
        (2.675, "f", 2, "2.67"),
    ],
)
def test_format_float_matches_strconv(x: float, verb: str, prec: int, want: str) -> None:
    assert format_float(x, verb, prec) == want


def test_quote_is_strconv_quote() -> None:
    assert quote("tab\there") == '"tab\\there"'
    assert quote("bell\a") == '"bell\\a"'
    assert quote("\x7f") == '"\\x7f"'
    assert quote("\u00a0") == '"\\u00a0"'
    assert quote("日本") == '"日本"'
    assert quote("日本", ascii_only=True) == '"\\u65e5\\u672c"'
    assert quote("\U0001F600", ascii_only=True) == '"\\U0001f600"'


def test_printf_in_templates() -> None:
    t = Template(name="t", text='{{printf "%-10s|%5d|%6.2f|%v|%q" .Name .Port .W .Tags .Name}}')
    data = {"Name": "web", "Port": 80, "W": 1.5, "Tags": ["a", "b"]}
    assert t.execute(data) == 'web       |   80|  1.50|[a b]|"web"'


def test_printf_missing_and_extra_args_in_templates() -> None:
    t = Template(name="t", text='{{printf "%s-%s" "a"}} {{printf "%d" 1 "x"}}')
    assert t.execute(None) == "a-%!s(MISSING) 1%!(EXTRA string=x)"


def test_print_nan_and_inf() -> None:
    assert format_value(math.inf) == "+Inf"
    assert format_value(-math.inf) == "-Inf"
    assert format_value(math.nan) == "NaN"
