"""The project's one HCL reader (python-hcl2): agent config files, ACL rules, service files, templates.

`loads(text)` gives plain data: attributes as values, blocks as lists of objects (a block
repeated is several objects), strings without their quotes, no python-hcl2 metadata keys.
HCL1 habits of Consul's and consul-template's files are accepted: octal file modes
(`perms = 0644` stays the string "0644") and several attributes on one line
(`wait { min = "2s" max = "10s" }`). A syntax error is an `HCLError` with its line.
"""

from __future__ import annotations

import re
from typing import Any

_OCTAL = re.compile(r"(=\s*)(0[0-7]+)\b")
_ONE_LINE_ATTR = re.compile(r"(?<=[\"\d\]}a-z])[ \t]+(?=[A-Za-z_][\w-]*\s*=[^=])")
_LINE = re.compile(r"line (\d+)")


class HCLError(ValueError):
    """Text that is not HCL; `line` is where the parser stopped (1 when it does not say)."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def loads(text: str, heredocs: bool = False) -> dict[str, Any]:
    """HCL text as plain data; `heredocs`: keep `<<EOT` strings raw (the caller finishes them)."""
    if not text.strip():
        return {}
    import hcl2
    from hcl2.utils import SerializationOptions

    options = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True,
                                   preserve_heredocs=heredocs)
    text = _OCTAL.sub(lambda m: f'{m.group(1)}"{m.group(2)}"', text)
    try:
        data = hcl2.loads(text, serialization_options=options)
    except Exception as first:
        fixed = _ONE_LINE_ATTR.sub("\n", text)
        if fixed == text:
            raise _error(first) from None
        try:
            data = hcl2.loads(fixed, serialization_options=options)
        except Exception:
            raise _error(first) from None
    clean = _clean(data)
    if not isinstance(clean, dict):
        raise HCLError("the top level must be an object", 1)
    return clean


def _error(exc: Exception) -> HCLError:
    line = getattr(exc, "line", None)
    if not isinstance(line, int) or line < 1:
        match = _LINE.search(str(exc))
        line = int(match.group(1)) if match else 1
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    first = re.sub(r" at line \d+, column \d+\.?", "", first)
    return HCLError(first, line)


def unquote(value: Any) -> Any:
    """A string without the quotes python-hcl2 may leave on it."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {unquote(k): _clean(v) for k, v in value.items() if not str(k).startswith("__")}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return unquote(value)
