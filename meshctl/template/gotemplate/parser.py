"""Parse trees for Go text/template (text/template/parse/node.go and parse.go)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from . import lexer as L
from .fmt import quote

__all__ = ["parse", "ParseError", "Node", "ListNode"]


class ParseError(Exception):
    """A template parse error (message already in Go's format)."""


# ---------------------------------------------------------------------------------------------
# nodes


class Node:
    """Base of all parse-tree nodes; ``pos`` is the byte offset of the node in the source."""

    __slots__ = ("pos", "tree")
    pos: int
    tree: Tree

    def __str__(self) -> str:  # pragma: no cover - overridden
        return type(self).__name__


class ListNode(Node):
    __slots__ = ("nodes",)

    def __init__(self, pos: int, tree: Tree) -> None:
        self.pos, self.tree = pos, tree
        # Any: the executor dispatches on `type(n) is X` (faster than isinstance), which mypy cannot narrow
        self.nodes: list[Any] = []

    def __str__(self) -> str:
        return "".join(str(n) for n in self.nodes)


class TextNode(Node):
    __slots__ = ("text",)

    def __init__(self, pos: int, tree: Tree, text: str) -> None:
        self.pos, self.tree, self.text = pos, tree, text

    def __str__(self) -> str:
        return self.text


class CommentNode(Node):
    __slots__ = ("text",)

    def __init__(self, pos: int, tree: Tree, text: str) -> None:
        self.pos, self.tree, self.text = pos, tree, text

    def __str__(self) -> str:
        return "{{" + self.text + "}}"


class PipeNode(Node):
    __slots__ = ("line", "is_assign", "decl", "cmds")

    def __init__(self, pos: int, tree: Tree, line: int) -> None:
        self.pos, self.tree, self.line = pos, tree, line
        self.is_assign = False
        self.decl: list[VariableNode] = []
        self.cmds: list[CommandNode] = []

    def __str__(self) -> str:
        s = ""
        if self.decl:
            s = ", ".join(str(v) for v in self.decl) + (" = " if self.is_assign else " := ")
        return s + " | ".join(str(c) for c in self.cmds)


class ActionNode(Node):
    __slots__ = ("line", "pipe")

    def __init__(self, pos: int, tree: Tree, line: int, pipe: PipeNode) -> None:
        self.pos, self.tree, self.line, self.pipe = pos, tree, line, pipe

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


class CommandNode(Node):
    __slots__ = ("args",)

    def __init__(self, pos: int, tree: Tree) -> None:
        self.pos, self.tree = pos, tree
        self.args: list[Any] = []  # Any: see ListNode.nodes

    def __str__(self) -> str:
        return " ".join("(" + str(a) + ")" if isinstance(a, PipeNode) else str(a) for a in self.args)


class IdentifierNode(Node):
    __slots__ = ("ident",)

    def __init__(self, pos: int, tree: Tree, ident: str) -> None:
        self.pos, self.tree, self.ident = pos, tree, ident

    def __str__(self) -> str:
        return self.ident


class VariableNode(Node):
    __slots__ = ("ident",)

    def __init__(self, pos: int, tree: Tree, ident: str) -> None:
        self.pos, self.tree, self.ident = pos, tree, ident.split(".")

    def __str__(self) -> str:
        return ".".join(self.ident)


class DotNode(Node):
    __slots__ = ()

    def __init__(self, pos: int, tree: Tree) -> None:
        self.pos, self.tree = pos, tree

    def __str__(self) -> str:
        return "."


class NilNode(Node):
    __slots__ = ()

    def __init__(self, pos: int, tree: Tree) -> None:
        self.pos, self.tree = pos, tree

    def __str__(self) -> str:
        return "nil"


class FieldNode(Node):
    __slots__ = ("ident",)

    def __init__(self, pos: int, tree: Tree, ident: str) -> None:
        self.pos, self.tree = pos, tree
        self.ident = ident[1:].split(".")  # ".A.B" -> ["A", "B"]

    def __str__(self) -> str:
        return "".join("." + i for i in self.ident)


class ChainNode(Node):
    __slots__ = ("node", "field")

    def __init__(self, pos: int, tree: Tree, node: Node) -> None:
        self.pos, self.tree, self.node = pos, tree, node
        self.field: list[str] = []

    def add(self, field: str) -> None:
        if not field or field[0] != ".":
            raise ParseError("no dot in field")
        field = field[1:]
        if not field:
            raise ParseError("empty field")
        self.field.append(field)

    def __str__(self) -> str:
        s = str(self.node)
        if isinstance(self.node, PipeNode):
            s = "(" + s + ")"
        return s + "".join("." + f for f in self.field)


class BoolNode(Node):
    __slots__ = ("value",)

    def __init__(self, pos: int, tree: Tree, value: bool) -> None:
        self.pos, self.tree, self.value = pos, tree, value

    def __str__(self) -> str:
        return "true" if self.value else "false"


class NumberNode(Node):
    """A numeric constant; ``value`` is the ideal-constant value (int, float or complex)."""

    __slots__ = ("text", "value", "is_int")

    def __init__(self, pos: int, tree: Tree, text: str, value: Any, is_int: bool) -> None:
        self.pos, self.tree, self.text, self.value, self.is_int = pos, tree, text, value, is_int

    def __str__(self) -> str:
        return self.text


class StringNode(Node):
    __slots__ = ("quoted", "text")

    def __init__(self, pos: int, tree: Tree, quoted: str, text: str) -> None:
        self.pos, self.tree, self.quoted, self.text = pos, tree, quoted, text

    def __str__(self) -> str:
        return self.quoted


class EndNode(Node):
    __slots__ = ()

    def __init__(self, pos: int, tree: Tree) -> None:
        self.pos, self.tree = pos, tree

    def __str__(self) -> str:
        return "{{end}}"


class ElseNode(Node):
    __slots__ = ("line",)

    def __init__(self, pos: int, tree: Tree, line: int) -> None:
        self.pos, self.tree, self.line = pos, tree, line

    def __str__(self) -> str:
        return "{{else}}"


class BranchNode(Node):
    __slots__ = ("line", "pipe", "list", "else_list")
    keyword = ""

    def __init__(self, pos: int, tree: Tree, line: int, pipe: PipeNode, lst: ListNode, else_list: ListNode | None):
        self.pos, self.tree, self.line = pos, tree, line
        self.pipe, self.list, self.else_list = pipe, lst, else_list

    def __str__(self) -> str:
        s = "{{" + self.keyword + " " + str(self.pipe) + "}}" + str(self.list)
        if self.else_list is not None:
            s += "{{else}}" + str(self.else_list)
        return s + "{{end}}"


class IfNode(BranchNode):
    __slots__ = ()
    keyword = "if"


class RangeNode(BranchNode):
    __slots__ = ()
    keyword = "range"


class WithNode(BranchNode):
    __slots__ = ()
    keyword = "with"


class BreakNode(Node):
    __slots__ = ("line",)

    def __init__(self, pos: int, tree: Tree, line: int) -> None:
        self.pos, self.tree, self.line = pos, tree, line

    def __str__(self) -> str:
        return "{{break}}"


class ContinueNode(Node):
    __slots__ = ("line",)

    def __init__(self, pos: int, tree: Tree, line: int) -> None:
        self.pos, self.tree, self.line = pos, tree, line

    def __str__(self) -> str:
        return "{{continue}}"


class TemplateNode(Node):
    __slots__ = ("line", "name", "pipe")

    def __init__(self, pos: int, tree: Tree, line: int, name: str, pipe: PipeNode | None) -> None:
        self.pos, self.tree, self.line, self.name, self.pipe = pos, tree, line, name, pipe

    def __str__(self) -> str:
        if self.pipe is None:
            return "{{template " + quote(self.name) + "}}"
        return "{{template " + quote(self.name) + " " + str(self.pipe) + "}}"


# ---------------------------------------------------------------------------------------------
# string and number literals


_ESC = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def unquote(s: str) -> str:
    """strconv.Unquote for "..." , `...` and '...' literals; raises ValueError("invalid syntax")."""
    if len(s) < 2:
        raise ValueError("invalid syntax")
    q = s[0]
    if q != s[-1]:
        raise ValueError("invalid syntax")
    body = s[1:-1]
    if q == "`":
        if "`" in body:
            raise ValueError("invalid syntax")
        return body.replace("\r", "")
    if q not in "\"'":
        raise ValueError("invalid syntax")
    if "\\" not in body and q not in body and "\n" not in body:
        if q == "'" and len(body) != 1:
            raise ValueError("invalid syntax")
        return body
    out = []
    i = 0
    n = len(body)
    while i < n:
        c = body[i]
        if c == q or c == "\n":
            raise ValueError("invalid syntax")
        if c != "\\":
            out.append(c)
            i += 1
            continue
        i += 1
        if i >= n:
            raise ValueError("invalid syntax")
        c = body[i]
        i += 1
        if c in _ESC:
            out.append(_ESC[c])
        elif c == q:
            out.append(c)
        elif c in "xuU":
            w = {"x": 2, "u": 4, "U": 8}[c]
            h = body[i : i + w]
            if len(h) != w or not all(ch in "0123456789abcdefABCDEF" for ch in h):
                raise ValueError("invalid syntax")
            v = int(h, 16)
            i += w
            if c == "x":
                if q == "'":
                    out.append(chr(v))
                else:
                    out.append(bytes([v]).decode("latin-1") if v < 0x80 else chr(0xDC00 + v))
            else:
                if v > 0x10FFFF or 0xD800 <= v <= 0xDFFF:
                    raise ValueError("invalid syntax")
                out.append(chr(v))
        elif c in "01234567":
            h = body[i - 1 : i + 2]
            if len(h) != 3 or not all(ch in "01234567" for ch in h):
                raise ValueError("invalid syntax")
            v = int(h, 8)
            if v > 255:
                raise ValueError("invalid syntax")
            i += 2
            out.append(chr(v) if v < 0x80 or q == "'" else chr(0xDC00 + v))
        else:
            raise ValueError("invalid syntax")
    res = "".join(out)
    if q == "'" and len(res) != 1:
        raise ValueError("invalid syntax")
    if any(0xDC80 <= ord(ch) <= 0xDCFF for ch in res):
        # raw bytes from \x / octal escapes: reassemble as UTF-8 where possible
        parts = []
        for ch in res:
            if 0xDC80 <= ord(ch) <= 0xDCFF:
                parts.append(bytes([ord(ch) - 0xDC00]))
            else:
                parts.append(ch.encode("utf-8"))
        res = b"".join(parts).decode("utf-8", "replace")
    return res


_OCTAL_RE = re.compile(r"^[+-]?0[0-7_]+$")


def _parse_int(text: str) -> int | None:
    t = text
    try:
        if _OCTAL_RE.match(t):
            sign = -1 if t[0] == "-" else 1
            return sign * int(t.lstrip("+-")[1:].lstrip("_") or "0", 8)
        return int(t, 0)
    except ValueError:
        return None


def parse_number(text: str, typ: int) -> tuple[Any, bool]:
    """Evaluate a number literal the way Go's ideal constants are turned into values.

    Returns (value, is_int). Raises ValueError with Go's message on bad syntax.
    """
    if typ == L.CHAR_CONSTANT:
        try:
            r = unquote(text)
        except ValueError:
            raise ValueError(f"malformed character constant: {text}") from None
        return ord(r), True
    if typ == L.COMPLEX or text.endswith("i"):
        try:
            return complex(text.replace("_", "").replace("i", "j")), False
        except ValueError:
            raise ValueError(f"illegal number syntax: {quote(text)}") from None
    iv = _parse_int(text)
    is_hex_int = len(text) > 2 and text.lstrip("+-")[:2] in ("0x", "0X") and not any(c in "pP" for c in text)
    if iv is not None:
        if iv > (1 << 64) - 1 or iv < -(1 << 63):
            raise ValueError(f"integer overflow: {text}")
        return iv, True  # a uint64 beyond int64 parses; using it is an execution error (Go)
    try:
        t = text.lstrip("+-")
        if t[:2] in ("0x", "0X"):
            fv = float.fromhex(text.replace("_", ""))
        else:
            fv = float(text)
    except ValueError:
        raise ValueError(f"illegal number syntax: {quote(text)}") from None
    if not any(c in ".eEpP" for c in text) or is_hex_int:
        raise ValueError(f"integer overflow: {text}")
    return fv, False


# ---------------------------------------------------------------------------------------------
# the parser


class Tree:
    """One parsed template: ``name``, ``root`` and the source text for error positions."""

    __slots__ = ("name", "parse_name", "root", "text")

    def __init__(self, name: str, parse_name: str, text: str) -> None:
        self.name = name
        self.parse_name = parse_name
        self.text = text
        self.root: ListNode | None = None

    def error_context(self, node: Node) -> tuple[str, str]:
        """Go's Tree.ErrorContext: ("name:line:col", node text)."""
        pos = node.pos
        text = self.text
        line_start = text.rfind("\n", 0, pos) + 1
        segment = text[line_start:pos]
        byte_num = len(segment) if segment.isascii() else len(segment.encode("utf-8", "surrogatepass"))
        line = 1 + text.count("\n", 0, pos)
        return f"{self.parse_name}:{line}:{byte_num}", str(node)


def is_empty_tree(n: Node | None) -> bool:
    """Go's IsEmptyTree: only whitespace text and comments."""
    if n is None:
        return True
    if isinstance(n, ListNode):
        return all(is_empty_tree(x) for x in n.nodes)
    if isinstance(n, TextNode):
        return not n.text.strip()
    if isinstance(n, CommentNode):
        return True
    return False


class _Parser:
    def __init__(self, name: str, items: list[L.Item], text: str, has_func: Callable[[str], bool],
                 trees: dict[str, Tree]) -> None:
        self.parse_name = name
        self.items = items
        self.i = 0
        self.text = text
        self.has_func = has_func
        self.trees = trees
        self.cur = items[0]
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.action_line = 0
        self.tree = Tree(name, name, text)

    # token stream -----------------------------------------------------------------------------
    def next(self) -> L.Item:
        items = self.items
        it = items[self.i] if self.i < len(items) else items[-1]
        self.i += 1
        self.cur = it
        return it

    def backup(self, n: int = 1) -> None:
        self.i -= n

    def peek(self) -> L.Item:
        it = self.items[min(self.i, len(self.items) - 1)]
        self.cur = it
        return it

    def next_non_space(self) -> L.Item:
        while True:
            it = self.next()
            if it.typ != L.SPACE:
                return it

    def peek_non_space(self) -> L.Item:
        it = self.next_non_space()
        self.backup()
        return it

    # errors -----------------------------------------------------------------------------------
    def errorf(self, msg: str) -> None:
        raise ParseError(f"template: {self.parse_name}:{self.cur.line}: {msg}")

    def expect(self, typ: int, context: str) -> L.Item:
        tok = self.next_non_space()
        if tok.typ != typ:
            self.unexpected(tok, context)
        return tok

    def unexpected(self, tok: L.Item, context: str) -> None:
        self.cur = tok
        if tok.typ == L.ERROR:
            extra = ""
            if self.action_line != 0 and self.action_line != tok.line:
                extra = f" in action started at {self.parse_name}:{self.action_line}"
                if tok.val.endswith(" action"):
                    extra = extra[len(" in action"):]
            self.errorf(tok.val + extra)
        self.errorf(f"unexpected {L.item_str(tok)} in {context}")

    # top level --------------------------------------------------------------------------------
    def parse(self) -> None:
        t = self.tree
        t.root = ListNode(self.peek().pos, t)
        while self.peek().typ != L.EOF:
            if self.peek().typ == L.LEFT_DELIM:
                mark = self.i
                self.next()
                if self.next_non_space().typ == L.DEFINE:
                    self.parse_definition()
                    continue
                self.i = mark
            n = self.text_or_action()
            if isinstance(n, EndNode | ElseNode):
                self.errorf(f"unexpected {n}")
            t.root.nodes.append(n)
        self.add(t)

    def add(self, t: Tree) -> None:
        existing = self.trees.get(t.name)
        if existing is None or is_empty_tree(existing.root):
            self.trees[t.name] = t
            return
        if not is_empty_tree(t.root):
            self.errorf(f"template: multiple definition of template {quote(t.name)}")

    def with_tree(self, tree: Tree) -> tuple[Tree, list[str], int]:
        saved = (self.tree, self.vars, self.range_depth)
        self.tree, self.vars, self.range_depth = tree, ["$"], 0
        return saved

    def restore(self, saved: tuple[Tree, list[str], int]) -> None:
        self.tree, self.vars, self.range_depth = saved

    def parse_definition(self) -> None:
        context = "define clause"
        tok = self.next_non_space()
        if tok.typ not in (L.STRING, L.RAW_STRING):
            self.unexpected(tok, context)
        try:
            name = unquote(tok.val)
        except ValueError as e:
            self.errorf(str(e))
        self.expect(L.RIGHT_DELIM, context)
        tree = Tree(name, self.parse_name, self.text)
        saved = self.with_tree(tree)
        root, end = self.item_list()
        if not isinstance(end, EndNode):
            self.errorf(f"unexpected {end} in {context}")
        tree.root = root
        self.add(tree)
        self.restore(saved)

    def item_list(self) -> tuple[ListNode, Node]:
        lst = ListNode(self.peek_non_space().pos, self.tree)
        while self.peek_non_space().typ != L.EOF:
            n = self.text_or_action()
            if isinstance(n, EndNode | ElseNode):
                return lst, n
            lst.nodes.append(n)
        self.errorf("unexpected EOF")
        raise AssertionError

    def text_or_action(self) -> Node:
        tok = self.next_non_space()
        if tok.typ == L.TEXT:
            return TextNode(tok.pos, self.tree, tok.val)
        if tok.typ == L.LEFT_DELIM:
            self.action_line = tok.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        if tok.typ == L.COMMENT:
            return CommentNode(tok.pos, self.tree, tok.val)
        self.unexpected(tok, "input")
        raise AssertionError

    def action(self) -> Node:
        tok = self.next_non_space()
        typ = tok.typ
        if typ == L.BLOCK:
            return self.block_control()
        if typ == L.BREAK:
            return self.break_control(tok)
        if typ == L.CONTINUE:
            return self.continue_control(tok)
        if typ == L.ELSE:
            return self.else_control()
        if typ == L.END:
            return self.end_control()
        if typ == L.IF:
            return IfNode(*self.parse_control("if"))
        if typ == L.RANGE:
            return RangeNode(*self.parse_control("range"))
        if typ == L.TEMPLATE:
            return self.template_control()
        if typ == L.WITH:
            return WithNode(*self.parse_control("with"))
        self.backup()
        tok = self.peek()
        pipe = self.pipeline("command", L.RIGHT_DELIM)
        return ActionNode(tok.pos, self.tree, tok.line, pipe)

    def break_control(self, tok: L.Item) -> Node:
        t = self.next_non_space()
        if t.typ != L.RIGHT_DELIM:
            self.unexpected(t, "{{break}}")
        if self.range_depth == 0:
            self.errorf("{{break}} outside {{range}}")
        return BreakNode(tok.pos, self.tree, tok.line)

    def continue_control(self, tok: L.Item) -> Node:
        t = self.next_non_space()
        if t.typ != L.RIGHT_DELIM:
            self.unexpected(t, "{{continue}}")
        if self.range_depth == 0:
            self.errorf("{{continue}} outside {{range}}")
        return ContinueNode(tok.pos, self.tree, tok.line)

    def else_control(self) -> Node:
        peek = self.peek_non_space()
        if peek.typ in (L.IF, L.WITH):
            return ElseNode(peek.pos, self.tree, peek.line)
        tok = self.expect(L.RIGHT_DELIM, "else")
        return ElseNode(tok.pos, self.tree, tok.line)

    def end_control(self) -> Node:
        tok = self.expect(L.RIGHT_DELIM, "end")
        return EndNode(tok.pos, self.tree)

    def parse_control(self, context: str) -> tuple:
        nvars = len(self.vars)
        try:
            pipe = self.pipeline(context, L.RIGHT_DELIM)
            if context == "range":
                self.range_depth += 1
            lst, nxt = self.item_list()
            if context == "range":
                self.range_depth -= 1
            else_list = None
            if isinstance(nxt, ElseNode):
                if context == "if" and self.peek().typ == L.IF:
                    self.next()
                    else_list = ListNode(nxt.pos, self.tree)
                    else_list.nodes.append(IfNode(*self.parse_control("if")))
                elif context == "with" and self.peek().typ == L.WITH:
                    self.next()
                    else_list = ListNode(nxt.pos, self.tree)
                    else_list.nodes.append(WithNode(*self.parse_control("with")))
                else:
                    else_list, nxt = self.item_list()
                    if not isinstance(nxt, EndNode):
                        self.errorf(f"expected end; found {nxt}")
            return pipe.pos, self.tree, pipe.line, pipe, lst, else_list
        finally:
            del self.vars[nvars:]

    def parse_template_name(self, tok: L.Item, context: str) -> str:
        if tok.typ in (L.STRING, L.RAW_STRING):
            try:
                return unquote(tok.val)
            except ValueError as e:
                self.errorf(str(e))
        self.unexpected(tok, context)
        raise AssertionError

    def template_control(self) -> Node:
        context = "template clause"
        tok = self.next_non_space()
        name = self.parse_template_name(tok, context)
        pipe = None
        if self.next_non_space().typ != L.RIGHT_DELIM:
            self.backup()
            pipe = self.pipeline(context, L.RIGHT_DELIM)
        return TemplateNode(tok.pos, self.tree, tok.line, name, pipe)

    def block_control(self) -> Node:
        context = "block clause"
        tok = self.next_non_space()
        name = self.parse_template_name(tok, context)
        pipe = self.pipeline(context, L.RIGHT_DELIM)
        tree = Tree(name, self.parse_name, self.text)
        saved = self.with_tree(tree)
        root, end = self.item_list()
        if not isinstance(end, EndNode):
            self.errorf(f"unexpected {end} in {context}")
        tree.root = root
        self.add(tree)
        self.restore(saved)
        return TemplateNode(tok.pos, self.tree, tok.line, name, pipe)

    # pipelines --------------------------------------------------------------------------------
    _OPERAND_START = frozenset((L.BOOL, L.CHAR_CONSTANT, L.COMPLEX, L.DOT, L.FIELD, L.IDENTIFIER, L.NUMBER,
                                L.NIL, L.RAW_STRING, L.STRING, L.VARIABLE, L.LEFT_PAREN))

    def pipeline(self, context: str, end: int) -> PipeNode:
        tok = self.peek_non_space()
        pipe = PipeNode(tok.pos, self.tree, tok.line)
        while True:  # declarations
            v = self.peek_non_space()
            if v.typ != L.VARIABLE:
                break
            mark = self.i
            self.next_non_space()
            token_after = self.peek()
            nxt = self.peek_non_space()
            if nxt.typ in (L.ASSIGN, L.DECLARE):
                pipe.is_assign = nxt.typ == L.ASSIGN
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, self.tree, v.val))
                self.vars.append(v.val)
            elif nxt.typ == L.CHAR and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, self.tree, v.val))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().typ in (L.VARIABLE, L.RIGHT_DELIM, L.RIGHT_PAREN):
                        continue
                    self.errorf("range can only initialize variables")
                self.errorf(f"too many declarations in {context}")
            elif token_after.typ == L.SPACE:
                self.i = mark
            else:
                self.i = mark
            break
        while True:
            tok = self.next_non_space()
            if tok.typ == end:
                self.check_pipeline(pipe, context)
                return pipe
            if tok.typ in self._OPERAND_START:
                self.backup()
                pipe.cmds.append(self.command())
            else:
                self.unexpected(tok, context)

    def check_pipeline(self, pipe: PipeNode, context: str) -> None:
        if not pipe.cmds:
            self.errorf(f"missing value for {context}")
        for i, c in enumerate(pipe.cmds[1:]):
            if isinstance(c.args[0], BoolNode | DotNode | NilNode | NumberNode | StringNode):
                self.errorf(f"non executable command in pipeline stage {i + 2}")

    def command(self) -> CommandNode:
        cmd = CommandNode(self.peek_non_space().pos, self.tree)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.typ == L.SPACE:
                continue
            if tok.typ in (L.RIGHT_DELIM, L.RIGHT_PAREN):
                self.backup()
            elif tok.typ == L.PIPE:
                pass
            else:
                self.unexpected(tok, "operand")
            break
        if not cmd.args:
            self.errorf("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().typ == L.FIELD:
            chain = ChainNode(self.peek().pos, self.tree, node)
            while self.peek().typ == L.FIELD:
                chain.add(self.next().val)
            if isinstance(node, FieldNode):
                return FieldNode(chain.pos, self.tree, str(chain))
            if isinstance(node, VariableNode):
                return VariableNode(chain.pos, self.tree, str(chain))
            if isinstance(node, BoolNode | StringNode | NumberNode | NilNode | DotNode):
                self.errorf(f"unexpected . after term {quote(str(node))}")
            return chain
        return node

    def term(self) -> Node | None:
        tok = self.next_non_space()
        typ = tok.typ
        if typ == L.IDENTIFIER:
            if not self.has_func(tok.val):
                self.errorf(f"function {quote(tok.val)} not defined")
            return IdentifierNode(tok.pos, self.tree, tok.val)
        if typ == L.DOT:
            return DotNode(tok.pos, self.tree)
        if typ == L.NIL:
            return NilNode(tok.pos, self.tree)
        if typ == L.VARIABLE:
            return self.use_var(tok)
        if typ == L.FIELD:
            return FieldNode(tok.pos, self.tree, tok.val)
        if typ == L.BOOL:
            return BoolNode(tok.pos, self.tree, tok.val == "true")
        if typ in (L.CHAR_CONSTANT, L.COMPLEX, L.NUMBER):
            try:
                value, is_int = parse_number(tok.val, typ)
            except ValueError as e:
                self.errorf(str(e))
            return NumberNode(tok.pos, self.tree, tok.val, value, is_int)
        if typ == L.LEFT_PAREN:
            return self.pipeline("parenthesized pipeline", L.RIGHT_PAREN)
        if typ in (L.STRING, L.RAW_STRING):
            try:
                s = unquote(tok.val)
            except ValueError as e:
                self.errorf(str(e))
            return StringNode(tok.pos, self.tree, tok.val, s)
        self.backup()
        return None

    def use_var(self, tok: L.Item) -> Node:
        v = VariableNode(tok.pos, self.tree, tok.val)
        if v.ident[0] in self.vars:
            return v
        self.errorf(f"undefined variable {quote(v.ident[0])}")
        raise AssertionError


def parse(name: str, text: str, left: str, right: str, has_func: Callable[[str], bool],
          trees: dict[str, Tree] | None = None) -> dict[str, Tree]:
    """Parse ``text``; returns every template defined in it by name (the main one under ``name``)."""
    items = L.lex(text, left, right, break_ok=not has_func("break"), continue_ok=not has_func("continue"))
    trees = {} if trees is None else trees
    p = _Parser(name, items, text, has_func, trees)
    p.parse()
    return trees
