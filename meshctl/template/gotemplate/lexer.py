"""Lexer for Go text/template source, following text/template/parse/lex.go."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Item", "lex", "item_str"]

# item types
ERROR = 0
BOOL = 1
CHAR = 2
CHAR_CONSTANT = 3
COMMENT = 4
COMPLEX = 5
ASSIGN = 6
DECLARE = 7
EOF = 8
FIELD = 9
IDENTIFIER = 10
LEFT_DELIM = 11
LEFT_PAREN = 12
NUMBER = 13
PIPE = 14
RAW_STRING = 15
RIGHT_DELIM = 16
RIGHT_PAREN = 17
SPACE = 18
STRING = 19
TEXT = 20
VARIABLE = 21
KEYWORD = 30  # keywords follow
BLOCK = 31
BREAK = 32
CONTINUE = 33
DOT = 34
DEFINE = 35
ELSE = 36
END = 37
IF = 38
NIL = 39
RANGE = 40
TEMPLATE = 41
WITH = 42

KEYWORDS = {
    ".": DOT,
    "block": BLOCK,
    "break": BREAK,
    "continue": CONTINUE,
    "define": DEFINE,
    "else": ELSE,
    "end": END,
    "if": IF,
    "range": RANGE,
    "nil": NIL,
    "template": TEMPLATE,
    "with": WITH,
}

_SPACE = " \t\r\n"
_TERMINATORS = frozenset(" \t\r\n.,|:)(")


class Item(NamedTuple):
    """One lexical item: type, position (offset), text, line."""

    typ: int
    pos: int
    val: str
    line: int


def _go_quote_trunc(s: str, n: int) -> str:
    from .fmt import quote

    return quote(s[:n])


def item_str(it: Item) -> str:
    """Go's item.String()."""
    if it.typ == EOF:
        return "EOF"
    if it.typ == ERROR:
        return it.val
    if it.typ > KEYWORD:
        return "<" + it.val + ">"
    if len(it.val) > 10:
        return _go_quote_trunc(it.val, 10) + "..."
    from .fmt import quote

    return quote(it.val)


def _is_alnum(c: str) -> bool:
    return c == "_" or c.isalnum()


def _unicode_desc(c: str) -> str:
    """Go's %#U of a rune."""
    o = ord(c)
    s = f"U+{o:04X}"
    if c.isprintable():
        s += " '" + c + "'"
    return s


class _Lexer:
    def __init__(self, text: str, left: str, right: str, break_ok: bool, continue_ok: bool) -> None:
        self.input = text
        self.left = left or "{{"
        self.right = right or "}}"
        self.break_ok = break_ok
        self.continue_ok = continue_ok
        self.items: list[Item] = []
        self.pos = 0
        self._lpos = 0
        self._lline = 1
        self.paren_depth = 0

    def line_at(self, pos: int) -> int:
        if pos >= self._lpos:
            self._lline += self.input.count("\n", self._lpos, pos)
        else:
            self._lline -= self.input.count("\n", pos, self._lpos)
        self._lpos = pos
        return self._lline

    def emit(self, typ: int, start: int, end: int) -> None:
        self.items.append(Item(typ, start, self.input[start:end], self.line_at(start)))

    def error(self, start: int, msg: str) -> bool:
        self.items.append(Item(ERROR, start, msg, self.line_at(start)))
        return False

    def at_right_delim(self) -> tuple[bool, bool]:
        s = self.input
        p = self.pos
        if len(s) - p >= 2 and s[p] in _SPACE and s[p + 1] == "-" and s.startswith(self.right, p + 2):
            return True, True
        if s.startswith(self.right, p):
            return True, False
        return False, False

    def at_terminator(self) -> bool:
        p = self.pos
        s = self.input
        if p >= len(s):
            return True
        if s[p] in _TERMINATORS:
            return True
        return s.startswith(self.right, p)

    def run(self) -> list[Item]:
        s = self.input
        n = len(s)
        left = self.left
        ld = len(left)
        while True:
            x = s.find(left, self.pos)
            if x < 0:
                if self.pos < n:
                    self.emit(TEXT, self.pos, n)
                self.items.append(Item(EOF, n, "", self.line_at(n)))
                return self.items
            after = x + ld
            trim = n - after >= 2 and s[after] == "-" and s[after + 1] in _SPACE
            text_end = x
            if trim:
                text_end = len(s[self.pos : x].rstrip(_SPACE)) + self.pos
            if text_end > self.pos:
                self.emit(TEXT, self.pos, text_end)
            # left delimiter
            self.pos = after
            after_marker = after + 2 if trim else after
            if s.startswith("/*", after_marker):
                if not self.lex_comment(x, after_marker):
                    break
                continue
            self.emit(LEFT_DELIM, x, after)
            self.pos = after_marker
            self.paren_depth = 0
            if not self.lex_inside_action():
                break
        return self.items

    def lex_comment(self, start: int, at: int) -> bool:
        s = self.input
        x = s.find("*/", at + 2)
        if x < 0:
            return self.error(start, "unclosed comment")
        self.pos = x + 2
        delim, trim = self.at_right_delim()
        if not delim:
            return self.error(start, "comment ends before closing delimiter")
        if trim:
            self.pos += 2
        self.pos += len(self.right)
        if trim:
            self.skip_left_space()
        return True

    def skip_left_space(self) -> None:
        s = self.input
        p = self.pos
        n = len(s)
        while p < n and s[p] in _SPACE:
            p += 1
        self.pos = p

    def lex_inside_action(self) -> bool:
        s = self.input
        n = len(s)
        while True:
            delim, trim = self.at_right_delim()
            if delim:
                if self.paren_depth == 0:
                    if trim:
                        self.pos += 2
                    start = self.pos
                    self.pos += len(self.right)
                    self.emit(RIGHT_DELIM, start, self.pos)
                    if trim:
                        self.skip_left_space()
                    return True
                return self.error(self.pos, "unclosed left paren")
            p = self.pos
            if p >= n:
                return self.error(p, "unclosed action")
            c = s[p]
            if c in _SPACE:
                q = p
                while q < n and s[q] in _SPACE:
                    q += 1
                num = q - p
                self.pos = q
                # a trim-marked closing delimiter has a minus after a space
                if s.startswith("-" + self.right, q):
                    self.pos = q - 1
                    if num == 1:
                        continue
                self.emit(SPACE, p, self.pos)
            elif c == "=":
                self.pos += 1
                self.emit(ASSIGN, p, self.pos)
            elif c == ":":
                if p + 1 >= n or s[p + 1] != "=":
                    return self.error(p, "expected :=")
                self.pos += 2
                self.emit(DECLARE, p, self.pos)
            elif c == "|":
                self.pos += 1
                self.emit(PIPE, p, self.pos)
            elif c == '"':
                if not self.lex_quote(p, '"', STRING, "unterminated quoted string"):
                    return False
            elif c == "`":
                x = s.find("`", p + 1)
                if x < 0:
                    return self.error(p, "unterminated raw quoted string")
                self.pos = x + 1
                self.emit(RAW_STRING, p, self.pos)
            elif c == "$":
                self.pos += 1
                if not self.lex_field_or_variable(p, VARIABLE):
                    return False
            elif c == "'":
                if not self.lex_quote(p, "'", CHAR_CONSTANT, "unterminated character constant"):
                    return False
            elif c == ".":
                if p + 1 < n and "0" <= s[p + 1] <= "9":
                    if not self.lex_number(p):
                        return False
                else:
                    self.pos += 1
                    if not self.lex_field_or_variable(p, FIELD):
                        return False
            elif c == "+" or c == "-" or "0" <= c <= "9":
                if not self.lex_number(p):
                    return False
            elif _is_alnum(c):
                if not self.lex_identifier(p):
                    return False
            elif c == "(":
                self.pos += 1
                self.paren_depth += 1
                self.emit(LEFT_PAREN, p, self.pos)
            elif c == ")":
                self.pos += 1
                self.paren_depth -= 1
                if self.paren_depth < 0:
                    return self.error(p, "unexpected right paren")
                self.emit(RIGHT_PAREN, p, self.pos)
            elif ord(c) < 0x80 and c.isprintable():
                self.pos += 1
                self.emit(CHAR, p, self.pos)
            else:
                return self.error(p, "unrecognized character in action: " + _unicode_desc(c))

    def lex_quote(self, start: int, q: str, typ: int, msg: str) -> bool:
        s = self.input
        n = len(s)
        p = start + 1
        while True:
            if p >= n:
                return self.error(start, msg)
            c = s[p]
            p += 1
            if c == "\\":
                if p >= n or s[p] == "\n":
                    return self.error(start, msg)
                p += 1
            elif c == "\n":
                return self.error(start, msg)
            elif c == q:
                break
        self.pos = p
        self.emit(typ, start, p)
        return True

    def lex_field_or_variable(self, start: int, typ: int) -> bool:
        if self.at_terminator():
            if typ == VARIABLE:
                self.emit(VARIABLE, start, self.pos)
            else:
                self.emit(DOT, start, self.pos)
            return True
        s = self.input
        n = len(s)
        p = self.pos
        while p < n and _is_alnum(s[p]):
            p += 1
        self.pos = p
        if not self.at_terminator():
            return self.error(start, "bad character " + _unicode_desc(s[p]))
        self.emit(typ, start, p)
        return True

    def lex_identifier(self, start: int) -> bool:
        s = self.input
        n = len(s)
        p = start
        while p < n and _is_alnum(s[p]):
            p += 1
        self.pos = p
        if not self.at_terminator():
            return self.error(start, "bad character " + _unicode_desc(s[p]))
        word = s[start:p]
        kw = KEYWORDS.get(word)
        if kw is not None and kw != DOT:
            if (kw == BREAK and not self.break_ok) or (kw == CONTINUE and not self.continue_ok):
                self.emit(IDENTIFIER, start, p)
            else:
                self.emit(kw, start, p)
        elif word == "true" or word == "false":
            self.emit(BOOL, start, p)
        else:
            self.emit(IDENTIFIER, start, p)
        return True

    def _scan_number(self) -> bool:
        s = self.input
        n = len(s)

        def accept(valid: str) -> bool:
            if self.pos < n and s[self.pos] in valid:
                self.pos += 1
                return True
            return False

        def accept_run(valid: str) -> None:
            while self.pos < n and s[self.pos] in valid:
                self.pos += 1

        accept("+-")
        digits = "0123456789_"
        if accept("0"):
            if accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif accept("oO"):
                digits = "01234567_"
            elif accept("bB"):
                digits = "01_"
        accept_run(digits)
        if accept("."):
            accept_run(digits)
        if len(digits) == 11 and accept("eE"):
            accept("+-")
            accept_run("0123456789_")
        if len(digits) == 23 and accept("pP"):
            accept("+-")
            accept_run("0123456789_")
        accept("i")
        if self.pos < n and _is_alnum(s[self.pos]):
            self.pos += 1
            return False
        return True

    def lex_number(self, start: int) -> bool:
        self.pos = start
        if not self._scan_number():
            return self.error(start, "bad number syntax: " + _go_quote_trunc(self.input[start : self.pos], 1 << 30))
        s = self.input
        if self.pos < len(s) and s[self.pos] in "+-":
            if not self._scan_number() or s[self.pos - 1] != "i":
                return self.error(start, "bad number syntax: " + _go_quote_trunc(s[start : self.pos], 1 << 30))
            self.emit(COMPLEX, start, self.pos)
            return True
        self.emit(NUMBER, start, self.pos)
        return True


def lex(text: str, left: str = "{{", right: str = "}}", break_ok: bool = True, continue_ok: bool = True) -> list[Item]:
    """Tokenize template text; the list ends with an EOF item or an ERROR item."""
    return _Lexer(text, left, right, break_ok, continue_ok).run()
