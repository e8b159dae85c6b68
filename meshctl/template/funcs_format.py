"""consul-template encoders and decoders: toJSON (Go encoding/json), toYAML (yaml.v2 style), toTOML,
parseJSON and parseYAML, plus Go float formatting shared by them.

Go maps (dicts) are written with sorted keys; Go structs (dataclasses and plain objects) keep their
field order.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import math
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import yaml

__all__ = [
    "go_format_float",
    "parse_json",
    "parse_yaml",
    "to_json",
    "to_json_pretty",
    "to_toml",
    "to_unescaped_json",
    "to_unescaped_json_pretty",
    "to_yaml",
]


# --- Go float formatting -------------------------------------------------------------------


def _digits(f: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of abs(f) and exponent, so that abs(f) == int(digits) * 10**exp."""
    t = Decimal(repr(abs(f))).as_tuple()
    ds = "".join(map(str, t.digits)).lstrip("0") or "0"
    exp = int(t.exponent)
    stripped = ds.rstrip("0")
    if stripped:
        exp += len(ds) - len(stripped)
        ds = stripped
    else:
        ds, exp = "0", 0
    return ds, exp


def _fixed(ds: str, exp: int) -> str:
    if exp >= 0:
        return ds + "0" * exp if ds != "0" else "0"
    point = len(ds) + exp
    if point > 0:
        return ds[:point] + "." + ds[point:]
    return "0." + "0" * (-point) + ds


def _sci(ds: str, exp: int) -> str:
    e = len(ds) - 1 + exp
    mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
    return f"{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"


def go_format_float(f: float, fmt: str = "g") -> str:
    """Format like Go: ``"g"`` is fmt's %v / strconv 'g' -1; ``"json"`` is encoding/json's rule."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, f) < 0 else ""
    ds, exp = _digits(f)
    if ds == "0":
        return sign + "0"
    dexp = len(ds) - 1 + exp  # decimal exponent of the leading digit
    if fmt == "json":
        a = abs(f)
        if a < 1e-6 or a >= 1e21:
            s = _sci(ds, exp)
            s = re.sub(r"e-0(\d)$", r"e-\1", s)
            return sign + s
        return sign + _fixed(ds, exp)
    # strconv 'g' with the shortest digits switches to the exponent form at precision 6.
    if dexp < -4 or dexp >= 6:
        return sign + _sci(ds, exp)
    return sign + _fixed(ds, exp)


# --- Go values to plain Python ---------------------------------------------------------------


class _Struct(list):
    """Ordered (name, value) pairs of a Go struct: encoders keep this order instead of sorting."""


def _is_struct(v: Any) -> bool:
    return (dataclasses.is_dataclass(v) and not isinstance(v, type)) or (
        hasattr(v, "__dict__") and not isinstance(v, type) and not callable(v)
    )


def _struct_fields(v: Any) -> list[tuple[str, Any]]:
    if dataclasses.is_dataclass(v):
        return [(f.name, getattr(v, f.name)) for f in dataclasses.fields(v) if not f.name.startswith("_")]
    return [(k, x) for k, x in vars(v).items() if not k.startswith("_")]


# --- JSON -----------------------------------------------------------------------------------

_JSON_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _json_str(s: str, escape_html: bool) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch in _JSON_SHORT:
            out.append(_JSON_SHORT[ch])
        elif o < 0x20 or (escape_html and ch in "<>&") or o in (0x2028, 0x2029):
            out.append(f"\\u{o:04x}")
        elif 0xD800 <= o <= 0xDFFF:  # invalid UTF-8 / lone surrogate
            out.append("\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


class JSONError(ValueError):
    """A value Go's encoding/json refuses."""


def _json(v: Any, escape_html: bool, indent: str, level: int) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            raise JSONError(f"json: unsupported value: {go_format_float(v)}")
        return go_format_float(v, "json")
    if isinstance(v, str):
        return _json_str(v, escape_html)
    if isinstance(v, (bytes, bytearray)):
        return '"' + base64.b64encode(bytes(v)).decode("ascii") + '"'
    if isinstance(v, Mapping):
        items = []
        for k, x in v.items():
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                raise JSONError(f"json: unsupported type: map[{type(k).__name__}]interface {{}}")
            items.append((str(k), x))
        items.sort(key=lambda kv: kv[0])
        return _json_object(items, escape_html, indent, level)
    if isinstance(v, (list, tuple, set, frozenset)) or (isinstance(v, Iterable) and not _is_struct(v)):
        elems = [_json(x, escape_html, indent, level + 1) for x in v]
        if not elems:
            return "[]"
        if not indent:
            return "[" + ",".join(elems) + "]"
        pad = "\n" + indent * (level + 1)
        return "[" + pad + ("," + pad).join(elems) + "\n" + indent * level + "]"
    if _is_struct(v):
        return _json_object(_struct_fields(v), escape_html, indent, level)
    raise JSONError(f"json: unsupported type: {type(v).__name__}")


def _json_object(items: list[tuple[str, Any]], escape_html: bool, indent: str, level: int) -> str:
    if not items:
        return "{}"
    sep = ": " if indent else ":"
    parts = [_json_str(k, escape_html) + sep + _json(x, escape_html, indent, level + 1) for k, x in items]
    if not indent:
        return "{" + ",".join(parts) + "}"
    pad = "\n" + indent * (level + 1)
    return "{" + pad + ("," + pad).join(parts) + "\n" + indent * level + "}"


def to_json(v: Any) -> str:
    """json.Marshal: compact, map keys sorted, ``<``, ``>``, ``&`` escaped as ``\\u003c`` etc."""
    return _json(v, True, "", 0).strip()


def to_json_pretty(v: Any) -> str:
    """json.MarshalIndent with a two-space indent."""
    return _json(v, True, "  ", 0).strip()


def to_unescaped_json(v: Any) -> str:
    """Like toJSON without HTML escaping."""
    return _json(v, False, "", 0).rstrip("\r\n")


def to_unescaped_json_pretty(v: Any) -> str:
    """Like toJSONPretty without HTML escaping."""
    return _json(v, False, "  ", 0).rstrip("\r\n")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


def parse_json(s: str) -> Any:
    """json.Unmarshal into interface{}: numbers are floats (float64); "" gives an empty map."""
    if s == "":
        return {}
    return json.loads(s, parse_int=float, parse_constant=_reject_constant)


# --- YAML -----------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps timestamps as strings, as yaml.v2 does for interface{} targets."""


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def parse_yaml(s: str) -> Any:
    """yaml.Unmarshal into interface{}; "" gives an empty map."""
    if s == "":
        return {}
    try:
        return yaml.load(s, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        raise ValueError(f"yaml: {e}") from None


def _yaml_key_cmp(a: Any, b: Any) -> int:
    """yaml.v2's key order: numbers first, then strings with digit runs compared as numbers."""
    an, bn = isinstance(a, (int, float)), isinstance(b, (int, float))
    if an or bn:
        if an and bn:
            return (a > b) - (a < b)
        return -1 if an else 1
    ar, br = str(a), str(b)
    for i in range(min(len(ar), len(br))):
        ca, cb = ar[i], br[i]
        if ca == cb:
            continue
        al, bl = ca.isalpha(), cb.isalpha()
        if al and bl:
            return -1 if ca < cb else 1
        if al or bl:
            return -1 if bl else 1
        na = nb = 0
        if ca == "0" or cb == "0":
            j = i - 1
            while j >= 0 and ar[j].isdigit():
                if ar[j] != "0":
                    na = nb = 1
                    break
                j -= 1
        ai = i
        while ai < len(ar) and ar[ai].isdigit():
            na = na * 10 + int(ar[ai])
            ai += 1
        bi = i
        while bi < len(br) and br[bi].isdigit():
            nb = nb * 10 + int(br[bi])
            bi += 1
        if na != nb:
            return -1 if na < nb else 1
        if ai != bi:
            return -1 if ai < bi else 1
        return -1 if ca < cb else 1
    return (len(ar) > len(br)) - (len(ar) < len(br))


def _yaml_plain(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode("utf-8", "replace")
    if isinstance(v, Mapping):
        keys = sorted(v, key=functools.cmp_to_key(_yaml_key_cmp))
        return {k: _yaml_plain(v[k]) for k in keys}
    if isinstance(v, (list, tuple, set, frozenset)) or (isinstance(v, Iterable) and not _is_struct(v)):
        return [_yaml_plain(x) for x in v]
    if _is_struct(v):
        return {k.lower(): _yaml_plain(x) for k, x in _struct_fields(v)}
    return str(v)


class _Dumper(yaml.SafeDumper):
    """yaml.v2-like output: double quotes for strings that look like other types, literal blocks."""


def _represent_str(dumper: _Dumper, data: str) -> yaml.Node:
    style = None
    if "\n" in data:
        style = "|"
    elif dumper.resolve(yaml.ScalarNode, data, (True, False)) != "tag:yaml.org,2002:str":
        style = '"'
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


def _represent_float(dumper: _Dumper, data: float) -> yaml.Node:
    if math.isnan(data):
        text = ".nan"
    elif math.isinf(data):
        text = ".inf" if data > 0 else "-.inf"
    else:
        text = go_format_float(data)
    tag = dumper.resolve(yaml.ScalarNode, text, (True, False))
    return dumper.represent_scalar(tag, text)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(float, _represent_float)


def to_yaml(v: Any) -> str:
    """yaml.Marshal, trimmed."""
    out = yaml.dump(
        _yaml_plain(v), Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False
    )
    out = out.strip()
    if out.endswith("\n..."):
        out = out[: -len("\n...")]
    elif out == "...":
        out = ""
    return out


# --- TOML -----------------------------------------------------------------------------------


class TOMLError(ValueError):
    """A value the TOML encoder cannot represent."""


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _toml_str(s: str) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\b\t\n\f\r":
            out.append({"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}[ch])
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\u{o:04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_key(k: str) -> str:
    return k if _BARE_KEY.fullmatch(k) else _toml_str(k)


def _toml_plain(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _toml_plain(x) for k, x in v.items()}
    if _is_struct(v) and not isinstance(v, (str, bytes, list, tuple)) and not isinstance(v, Iterable):
        return {k: _toml_plain(x) for k, x in _struct_fields(v)}
    if isinstance(v, (list, tuple, set, frozenset)) or (
        isinstance(v, Iterable) and not isinstance(v, (str, bytes))
    ):
        return [_toml_plain(x) for x in v]
    return v


def _toml_value(v: Any) -> str:
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        s = go_format_float(v, "json") if abs(v) < 1e21 else go_format_float(v)
        return s if any(c in s for c in ".eE") else s + ".0"
    if isinstance(v, str):
        return _toml_str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v if x is not None) + "]"
    if isinstance(v, dict):
        return (
            "{"
            + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in sorted(v.items()) if x is not None)
            + "}"
        )
    raise TOMLError(f"toml: cannot encode a value of type {type(v).__name__}")


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _toml_table(path: list[str], table: dict, lines: list[str]) -> None:
    indent = "  " * max(len(path), 0)
    direct = [
        (k, x)
        for k, x in sorted(table.items())
        if x is not None and not isinstance(x, dict) and not _is_table_array(x)
    ]
    sub = [(k, x) for k, x in sorted(table.items()) if isinstance(x, dict) or _is_table_array(x)]
    for k, x in direct:
        lines.append(f"{indent}{_toml_key(k)} = {_toml_value(x)}")
    for k, x in sub:
        full = [*path, k]
        header = ".".join(_toml_key(p) for p in full)
        head_indent = "  " * (len(full) - 1)
        if isinstance(x, dict):
            if len(full) == 1 and lines:
                lines.append("")
            lines.append(f"{head_indent}[{header}]")
            _toml_table(full, x, lines)
        else:
            for item in x:
                if lines:
                    lines.append("")
                lines.append(f"{head_indent}[[{header}]]")
                _toml_table(full, item, lines)


def to_toml(v: Any) -> str:
    """Encode a map as TOML (BurntSushi/toml layout: values, then [tables] indented by depth), trimmed."""
    plain = _toml_plain(v)
    if not isinstance(plain, dict):
        raise TOMLError("toml: top-level values must be Go maps or structs")
    lines: list[str] = []
    _toml_table([], plain, lines)
    return "\n".join(lines).strip()
