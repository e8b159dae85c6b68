"""Go (RE2) regular expressions on Python's ``re``: pattern translation and ``$1`` expansion.

Differences handled: Go's ``$`` means end of text (unless ``(?m)``); ``\\z``; ASCII-only ``\\d \\w \\s``;
``(?<name>...)``; ``\\Q...\\E``; ``\\x{...}`` and octal escapes; POSIX ``[[:alpha:]]`` classes; flag
groups such as ``(?i)`` anywhere in the pattern (scoped to the rest of the enclosing group).
"""

from __future__ import annotations

import functools
import re

__all__ = ["go_expand", "go_regexp", "translate_go_regex"]

_POSIX = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_PERL_IN_CLASS = {"d": "0-9", "w": "0-9A-Za-z_", "s": "\\t\\n\\f\\r "}
_UNICODE = {"L": "[^\\W\\d_]", "Letter": "[^\\W\\d_]", "N": "\\d", "Nd": "\\d"}
_FLAG_CHARS = set("imsU-")
_REPEAT = re.compile(r"\{([0-9]+)(,([0-9]*))?\}")


class GoRegexError(ValueError):
    """A pattern Go would reject, or one this translator cannot express in Python."""


def _lit(ch: str) -> str:
    return re.escape(ch) if ch not in "\n" else "\\n"


def translate_go_regex(pattern: str) -> str:
    """Translate a Go RE2 pattern into an equivalent Python ``re`` pattern."""
    out: list[str] = []
    i, n = 0, len(pattern)
    # One frame per open group: [multiline flag, number of scoped flag groups to close at ")"].
    stack: list[list] = [[False, 0]]

    def escape(i: int, in_class: bool) -> tuple[str, int]:
        if i + 1 >= n:
            raise GoRegexError("error parsing regexp: trailing backslash at end of expression")
        c = pattern[i + 1]
        j = i + 2
        if c in "dws":
            return (_PERL_IN_CLASS[c] if in_class else f"[{_PERL_IN_CLASS[c]}]"), j
        if c in "DWS":
            return (f"\\{c}" if in_class else f"[^{_PERL_IN_CLASS[c.lower()]}]"), j
        if c == "z" and not in_class:
            return "\\Z", j
        if c == "Z":
            raise GoRegexError("error parsing regexp: invalid escape sequence: `\\Z`")
        if c == "Q":
            end = pattern.find("\\E", j)
            text = pattern[j:] if end < 0 else pattern[j:end]
            return "".join(_lit(ch) for ch in text), (n if end < 0 else end + 2)
        if c in "pP":
            if j < n and pattern[j] == "{":
                k = pattern.find("}", j)
                if k < 0:
                    raise GoRegexError("error parsing regexp: invalid character class range")
                name, j = pattern[j + 1 : k], k + 1
            else:
                name, j = pattern[j : j + 1], j + 1
            neg = c == "P"
            if name.startswith("^"):
                name, neg = name[1:], not neg
            if name not in _UNICODE or in_class:
                raise GoRegexError(f"unsupported Unicode class \\{c}{{{name}}}")
            cls = _UNICODE[name]
            if neg:
                cls = {"\\d": "\\D", "[^\\W\\d_]": "[\\W\\d_]"}[cls]
            return cls, j
        if c == "x":
            if j < n and pattern[j] == "{":
                k = pattern.find("}", j)
                if k < 0:
                    raise GoRegexError("error parsing regexp: invalid escape sequence")
                return _lit(chr(int(pattern[j + 1 : k], 16))), k + 1
            return "\\x" + pattern[j : j + 2], j + 2
        if c.isdigit():
            k = i + 1
            if c != "0" and not (k + 1 < n and pattern[k + 1] in "01234567"):
                raise GoRegexError(f"error parsing regexp: invalid escape sequence: `\\{c}`")
            m = re.match(r"[0-7]{1,3}", pattern[k:])
            digits = m.group(0) if m else "0"
            return _lit(chr(int(digits, 8))), k + len(digits)
        return "\\" + c, j

    while i < n:
        ch = pattern[i]
        if ch == "\\":
            piece, i = escape(i, False)
            out.append(piece)
        elif ch == "[":
            j = i + 1
            parts = ["["]
            if j < n and pattern[j] == "^":
                parts.append("^")
                j += 1
            first = True
            while j < n and (pattern[j] != "]" or first):
                c = pattern[j]
                first = False
                if c == "[" and pattern.startswith("[:", j):
                    k = pattern.find(":]", j + 2)
                    name = pattern[j + 2 : k] if k > 0 else ""
                    neg = name.startswith("^")
                    if neg:
                        name = name[1:]
                    if k < 0 or name not in _POSIX:
                        raise GoRegexError("error parsing regexp: invalid character class range")
                    if neg:
                        raise GoRegexError("negated POSIX classes are not supported")
                    parts.append(_POSIX[name])
                    j = k + 2
                elif c == "\\":
                    piece, j = escape(j, True)
                    parts.append(piece)
                elif c in "[&|~":
                    parts.append("\\" + c)
                    j += 1
                elif c == "]":  # literal ] as the first character
                    parts.append("\\]")
                    j += 1
                else:
                    parts.append(c)
                    j += 1
            if j >= n:
                raise GoRegexError(f"error parsing regexp: missing closing ]: `{pattern[i:]}`")
            parts.append("]")
            out.append("".join(parts))
            i = j + 1
        elif ch == "(":
            if pattern.startswith("(?", i):
                if pattern.startswith("(?P<", i) or pattern.startswith("(?<", i):
                    k = pattern.index("<", i) + 1
                    end = pattern.find(">", k)
                    if end < 0:
                        raise GoRegexError("error parsing regexp: invalid named capture")
                    out.append(f"(?P<{pattern[k:end]}>")
                    stack.append([stack[-1][0], 0])
                    i = end + 1
                    continue
                k = i + 2
                while k < n and pattern[k] in _FLAG_CHARS:
                    k += 1
                flags = pattern[i + 2 : k]
                if k >= n or pattern[k] not in ":)":
                    raise GoRegexError(
                        f"error parsing regexp: invalid or unsupported Perl syntax: `{pattern[i : k + 1]}`"
                    )
                if "U" in flags:
                    raise GoRegexError("the U (ungreedy) flag is not supported")
                on, _, off = flags.partition("-")
                multiline = stack[-1][0]
                if "m" in on:
                    multiline = True
                if "m" in off:
                    multiline = False
                group = f"(?{flags}:" if flags not in ("", "-") else "(?:"
                if pattern[k] == ":":
                    out.append(group)
                    stack.append([multiline, 0])
                else:  # (?flags) applies to the rest of the enclosing group
                    out.append(group)
                    stack[-1][0] = multiline
                    stack[-1][1] += 1
                i = k + 1
                continue
            out.append("(")
            stack.append([stack[-1][0], 0])
            i += 1
        elif ch == ")":
            if len(stack) == 1:
                raise GoRegexError(f"error parsing regexp: unexpected ): `{pattern}`")
            frame = stack.pop()
            out.append(")" * frame[1] + ")")
            i += 1
        elif ch == "{":
            # Go only treats {n}, {n,} and {n,m} as repetition (n, m <= 1000); any other { is literal.
            rep = _REPEAT.match(pattern, i)
            if rep is None:
                out.append("\\{")
                i += 1
                continue
            if any(g and int(g) > 1000 for g in (rep.group(1), rep.group(3))):
                raise GoRegexError(f"error parsing regexp: invalid repeat count: `{rep.group(0)}`")
            out.append(rep.group(0))
            i = rep.end()
        elif ch == "$":
            out.append("$" if stack[-1][0] else "\\Z")
            i += 1
        else:
            out.append(ch)
            i += 1
    if len(stack) != 1:
        raise GoRegexError(f"error parsing regexp: missing closing ): `{pattern}`")
    out.append(")" * stack[0][1])
    return "".join(out)


@functools.lru_cache(maxsize=512)
def go_regexp(pattern: str) -> re.Pattern[str]:
    """Compile a Go RE2 pattern (cached)."""
    if not isinstance(pattern, str):
        raise TypeError(f"regexp: expected string pattern, got {type(pattern).__name__}")
    try:
        return re.compile(translate_go_regex(pattern))
    except re.error as e:
        raise GoRegexError(f"error parsing regexp: {e}: `{pattern}`") from None


def _name_len(s: str) -> int:
    i = 0
    while i < len(s) and (s[i].isalpha() or s[i].isdigit() or s[i] == "_"):
        i += 1
    return i


def go_expand(template: str, m: re.Match[str]) -> str:
    """Regexp.Expand: ``$1``/``${1}``/``$name``/``${name}``/``$$``; unknown groups expand to ""."""
    out: list[str] = []
    rest = template
    while True:
        before, dollar, rest = rest.partition("$")
        out.append(before)
        if not dollar:
            break
        if rest.startswith("$"):
            out.append("$")
            rest = rest[1:]
            continue
        brace = rest.startswith("{")
        body = rest[1:] if brace else rest
        k = _name_len(body)
        if k == 0 or (brace and (k >= len(body) or body[k] != "}")):
            out.append("$")  # malformed: a literal dollar
            continue
        name = body[:k]
        rest = body[k + 1 :] if brace else body[k:]
        if name.isascii() and name.isdigit() and not (name[0] == "0" and len(name) > 1):
            num = int(name)
            if num <= m.re.groups and m.group(num) is not None:
                out.append(m.group(num))
        elif name in m.re.groupindex and m.group(name) is not None:
            out.append(m.group(name))
    return "".join(out)
