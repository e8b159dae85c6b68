"""consul-template's pure helper functions, by their template names.

``HELPERS`` maps every name to a plain callable taking positional arguments, the piped value last.
The runner builds its table with :func:`make_helpers` (env overlay, a fresh :class:`Scratch` per
execution) and then applies the template's ``function_denylist`` with :func:`apply_denylist`.
API functions (key, service, tree ...) and executeTemplate belong to the runner and the engine.
sprig_* come from funcs_sprig. Not provided: spew_printf/spew_sprintf, Vault and Nomad functions. spew_dump/spew_sdump
print a Python repr, not go-spew's format.

Values follow the engine's mapping of Go types: parseJSON numbers are floats (Go's float64), so
the engine must print floats as Go's fmt does (see funcs_format.go_format_float: 8080.0 -> "8080").
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from meshctl.template import funcs_data as data
from meshctl.template import funcs_format as fmt
from meshctl.template import funcs_math as math_
from meshctl.template import funcs_system as system
from meshctl.template import funcs_text as text
from meshctl.template.funcs_data import field
from meshctl.template.funcs_scratch import Scratch
from meshctl.template.funcs_sprig import SPRIG
from meshctl.template.funcs_time import timestamp

__all__ = [
    "HELPERS",
    "FunctionDisabled",
    "Scratch",
    "apply_denylist",
    "field",
    "make_helpers",
    "spew_dump",
    "spew_sdump",
]


def spew_sdump(*args: Any) -> str:
    """Debug dump of the values (a Python repr per value, not go-spew's exact format)."""
    return "".join(f"({type(a).__name__}) {a!r}\n" for a in args)


def spew_dump(*args: Any) -> str:
    """Print :func:`spew_sdump` of the values to stdout; renders as ""."""
    print(spew_sdump(*args), end="", flush=True)
    return ""


_PURE: dict[str, Callable[..., Any]] = {
    # text
    "base64Decode": text.base64_decode,
    "base64Encode": text.base64_encode,
    "base64URLDecode": text.base64_url_decode,
    "base64URLEncode": text.base64_url_encode,
    "trim": text.trim,
    "trimPrefix": text.trim_prefix,
    "trimSuffix": text.trim_suffix,
    "trimSpace": text.trim_space,
    "split": text.split,
    "splitToMap": text.split_to_map,
    "join": text.join,
    "indent": text.indent,
    "replaceAll": text.replace_all,
    "regexMatch": text.regex_match,
    "regexReplaceAll": text.regex_replace_all,
    "sha256Hex": text.sha256_hex,
    "md5sum": text.md5sum,
    "hmacSHA256Hex": text.hmac_sha256_hex,
    "toLower": text.to_lower,
    "toUpper": text.to_upper,
    "toTitle": text.to_title,
    "parseBool": text.parse_bool,
    "parseFloat": text.parse_float,
    "parseInt": text.parse_int,
    "parseUint": text.parse_uint,
    # data
    "byKey": data.by_key,
    "byTag": data.by_tag,
    "byPort": data.by_port,
    "byMeta": data.by_meta,
    "contains": data.contains,
    "in": data.in_,
    "containsAll": data.contains_all,
    "containsAny": data.contains_any,
    "containsNone": data.contains_none,
    "containsNotAll": data.contains_not_all,
    "explode": data.explode,
    "explodeMap": data.explode_map,
    "mergeMap": data.merge_map,
    "mergeMapWithOverride": data.merge_map_with_override,
    "loop": data.loop,
    # formats
    "parseJSON": fmt.parse_json,
    "parseYAML": fmt.parse_yaml,
    "toJSON": fmt.to_json,
    "toJSONPretty": fmt.to_json_pretty,
    "toUnescapedJSON": fmt.to_unescaped_json,
    "toUnescapedJSONPretty": fmt.to_unescaped_json_pretty,
    "toYAML": fmt.to_yaml,
    "toTOML": fmt.to_toml,
    # math
    "add": math_.add,
    "subtract": math_.subtract,
    "multiply": math_.multiply,
    "divide": math_.divide,
    "modulo": math_.modulo,
    "minimum": math_.minimum,
    "maximum": math_.maximum,
    # host
    "timestamp": timestamp,
    "plugin": system.plugin,
    "writeToFile": system.write_to_file,
    "sockaddr": system.sockaddr,
    # debug
    "spew_sdump": spew_sdump,
    "spew_dump": spew_dump,
    # Masterminds/sprig, as consul-template 0.25+ registers it
    **SPRIG,
}


def make_helpers(
    env: Mapping[str, str] | None = None, scratch: Scratch | None = None
) -> dict[str, Callable[..., Any]]:
    """The helper table for one template execution.

    ``env`` overlays the process environment for env/mustEnv/envOrDefault; ``scratch`` is the
    execution's scratchpad (a new one when omitted), returned by the ``scratch`` function.
    """
    pad = Scratch() if scratch is None else scratch
    table = dict(_PURE)
    table.update(system.make_env_funcs(env))
    table["scratch"] = lambda: pad
    return table


#: Every helper with the process environment and a shared scratchpad; prefer make_helpers() per run.
HELPERS: dict[str, Callable[..., Any]] = make_helpers()


class FunctionDisabled(RuntimeError):
    """Raised by a function removed through ``function_denylist``."""


def _denied(*_args: Any) -> str:
    raise FunctionDisabled("function is disabled")


def apply_denylist(
    funcs: Mapping[str, Callable[..., Any]], globs: Iterable[str] | None
) -> dict[str, Callable[..., Any]]:
    """A copy of ``funcs`` where every name matching one of ``globs`` errors "function is disabled"."""
    patterns = [g for g in (globs or ()) if g]
    out = dict(funcs)
    for name in out:
        if any(fnmatch.fnmatchcase(name, g) for g in patterns):
            out[name] = _denied
    return out
