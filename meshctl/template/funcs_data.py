"""consul-template data helpers: grouping service/KV records, membership tests, maps, loop.

Records (HealthService, CatalogSnippet, KeyPair ...) may be dicts or objects; :func:`field` reads both.
Functions returning Go maps return dicts with keys inserted in sorted order, as Go ranges over maps.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from meshctl.template.funcs_text import go_quote, parse_int

__all__ = [
    "by_key",
    "by_meta",
    "by_port",
    "by_tag",
    "contains",
    "contains_all",
    "contains_any",
    "contains_none",
    "contains_not_all",
    "explode",
    "explode_map",
    "field",
    "in_",
    "loop",
    "merge_map",
    "merge_map_with_override",
]

_MISSING = object()


def field(obj: Any, name: str, default: Any = None) -> Any:
    """Read field ``name`` of a record that is either a mapping or an object."""
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _has_field(obj: Any, name: str) -> bool:
    return name in obj if isinstance(obj, Mapping) else hasattr(obj, name)


def _sorted_dict(d: dict) -> dict:
    return {k: d[k] for k in sorted(d)}


def _records(fn: str, services: Any) -> list:
    if services is None:
        return []
    if isinstance(services, (str, bytes, Mapping)) or not isinstance(services, Iterable):
        raise TypeError(f"{fn}: wrong argument type {type(services).__name__}")
    return list(services)


# --- grouping --------------------------------------------------------------------------------


def by_key(pairs: Iterable[Any] | None) -> dict[str, dict[str, Any]]:
    """Group KeyPairs by their first path segment; each copy's Key has that segment stripped."""
    out: dict[str, dict[str, Any]] = {}
    for pair in _records("byKey", pairs):
        top, _, rest = str(field(pair, "Key", "")).partition("/")
        if rest == "":
            continue
        out.setdefault(top, {})[rest] = _with_key(pair, rest)
    return {top: _sorted_dict(group) for top, group in sorted(out.items())}


def _with_key(pair: Any, key: str) -> Any:
    if isinstance(pair, Mapping):
        return {**pair, "Key": key}
    if dataclasses.is_dataclass(pair) and not isinstance(pair, type):
        return dataclasses.replace(pair, Key=key)
    renamed = copy.copy(pair)
    renamed.Key = key
    return renamed


def by_tag(services: Iterable[Any] | None) -> dict[str, list[Any]]:
    """Group services by each of their tags (``Tags``, or ``ServiceTags`` for catalog services)."""
    out: dict[str, list[Any]] = {}
    for svc in _records("byTag", services):
        tags = field(svc, "Tags") if _has_field(svc, "Tags") else field(svc, "ServiceTags")
        for tag in tags or ():
            out.setdefault(tag, []).append(svc)
    return _sorted_dict(out)


def by_port(services: Iterable[Any] | None) -> dict[int, list[Any]]:
    """Group services by ``Port`` (or ``ServicePort`` for catalog services)."""
    out: dict[int, list[Any]] = {}
    for svc in _records("byPort", services):
        port = field(svc, "Port") if _has_field(svc, "Port") else field(svc, "ServicePort")
        out.setdefault(int(port or 0), []).append(svc)
    return _sorted_dict(out)


_NOT_KEY_CHAR = re.compile(r"[^a-zA-Z0-9_-]")
_ATOI = re.compile(r"[+-]?[0-9]+")


def by_meta(meta: str, services: Iterable[Any] | None) -> dict[str, list[Any]]:
    """Group services by ServiceMeta values: ``"a,b|int"`` → keys like ``dev_00001``."""
    keys = meta.split(",")
    out: dict[str, list[Any]] = {}
    for svc in _records("byMeta", services):
        sm = field(svc, "ServiceMeta") or {}
        parts = []
        for key in keys:
            as_int = key.endswith("|int")
            real = key.removesuffix("|int")
            value = sm.get(real) or ""
            if value == "":
                value = "0" if as_int else f"_no_{real}_"
            if as_int:
                if not _ATOI.fullmatch(value):
                    raise ValueError(
                        f"cannot parse {value} as number : strconv.Atoi: parsing {go_quote(value)}: invalid syntax"
                    )
                value = f"{int(value):05d}"
            parts.append(_NOT_KEY_CHAR.sub("_", value))
        out.setdefault("_".join(parts), []).append(svc)
    return _sorted_dict(out)


# --- membership ------------------------------------------------------------------------------


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    return "other"


def in_(items: Any, needle: Any) -> bool:
    """Go ``in``: slice membership for ints, floats and strings (same kind only), or a substring test."""
    if isinstance(items, str):
        return isinstance(needle, str) and needle in items
    if isinstance(items, (list, tuple)):
        nk = _kind(needle)
        for el in items:
            ek = _kind(el)
            if ek in ("int", "float", "string") and ek == nk and el == needle:
                return True
    return False


def contains(needle: Any, items: Any) -> bool:
    """``in`` with reversed arguments, for pipes: ``.Tags | contains "x"``."""
    return in_(items, needle)


def _needles(fn: str, needles: Any) -> list:
    if needles is None:
        return []
    if isinstance(needles, (list, tuple)):
        return list(needles)
    raise TypeError(f"{fn}: wrong type for value; expected []interface {{}}; got {type(needles).__name__}")


def contains_all(needles: Any, items: Any) -> bool:
    """True if every needle is in ``items`` (true for no needles)."""
    return all(in_(items, n) for n in _needles("containsAll", needles))


def contains_any(needles: Any, items: Any) -> bool:
    """True if some needle is in ``items`` (false for no needles)."""
    return any(in_(items, n) for n in _needles("containsAny", needles))


def contains_none(needles: Any, items: Any) -> bool:
    """True if no needle is in ``items`` (true for no needles)."""
    return not any(in_(items, n) for n in _needles("containsNone", needles))


def contains_not_all(needles: Any, items: Any) -> bool:
    """True if some needle is missing from ``items`` (false for no needles)."""
    return any(not in_(items, n) for n in _needles("containsNotAll", needles))


# --- maps ------------------------------------------------------------------------------------


def _explode_into(m: dict[str, Any], key: str, value: Any, path: str) -> None:
    while "/" in key:
        top, key = key.split("/", 1)
        nest = m.setdefault(top, {})
        if not isinstance(nest, dict):
            raise ValueError(
                f"not a map: {go_quote(path)}: {go_quote(top)} already has value {go_quote(nest)}"
            )
        path = top + "/" + key
        m = nest
    if key != "":
        m[key] = value


def _sort_deep(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _sort_deep(v[k]) for k in sorted(v)}
    return v


def explode(pairs: Iterable[Any] | None) -> dict[str, Any]:
    """Turn ``tree``/``ls`` KeyPairs into a nested map split on "/"."""
    out: dict[str, Any] = {}
    for pair in _records("explode", pairs):
        key = str(field(pair, "Key", ""))
        try:
            _explode_into(out, key, field(pair, "Value", ""), key)
        except ValueError as e:
            raise ValueError(f"explode: {e}") from None
    return _sort_deep(out)


def explode_map(mapping: Mapping[str, Any] | None) -> dict[str, Any]:
    """Turn a flat map with "/"-separated keys into a nested map (keys processed in sorted order)."""
    out: dict[str, Any] = {}
    mapping = mapping or {}
    for key in sorted(mapping):
        try:
            _explode_into(out, key, mapping[key], key)
        except ValueError as e:
            raise ValueError(f"explodeMap: {e}") from None
    return _sort_deep(out)


def _is_empty(v: Any) -> bool:
    return v is None or v is False or (isinstance(v, (int, float, str, list, tuple, dict)) and not v)


def _merge(dst: dict, src: Mapping, override: bool) -> None:
    """mergo.Map semantics on map[string]interface{} values."""
    for k, sv in src.items():
        present = k in dst
        dv = dst.get(k)
        if sv is None:
            if override:
                dst[k] = None
            continue
        if isinstance(sv, Mapping) and isinstance(dv, dict):
            _merge(dv, sv, override)
            if not _is_empty(dv):
                continue
        elif isinstance(sv, (list, tuple)) and present and not _is_empty(dv):
            if override:
                dst[k] = sv
            continue
        if override or not present or _is_empty(dv):
            dst[k] = sv


def _resort(d: dict) -> None:
    items = sorted(d.items(), key=lambda kv: kv[0])
    d.clear()
    d.update(items)
    for v in d.values():
        if isinstance(v, dict):
            _resort(v)


def merge_map(dst: dict | None, src: Mapping | None) -> dict:
    """Fill keys missing (or empty) in the argument map from the piped map; the argument wins.

    Like Go, the argument map is updated in place and returned.
    """
    dst = {} if dst is None else dst
    _merge(dst, src or {}, override=False)
    _resort(dst)
    return dst


def merge_map_with_override(dst: dict | None, src: Mapping | None) -> dict:
    """Merge the piped map into the argument map, the piped map's values winning."""
    dst = {} if dst is None else dst
    _merge(dst, src or {}, override=True)
    _resort(dst)
    return dst


# --- loop ------------------------------------------------------------------------------------


def _loop_int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise TypeError(f"loop: bad argument type: {type(v).__name__}")
    return parse_int(v) if isinstance(v, str) else v


def loop(*args: Any) -> Iterator[int]:
    """``loop n`` yields 0..n-1; ``loop start stop`` yields start..stop-1. Numeric strings accepted."""
    if len(args) == 1:
        start, stop = 0, _loop_int(args[0])
    elif len(args) == 2:
        start, stop = _loop_int(args[0]), _loop_int(args[1])
    else:
        raise TypeError(f"loop: wrong number of arguments, expected 1 or 2, but got {len(args)}")
    return iter(range(start, stop))
