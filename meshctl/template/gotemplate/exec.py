"""Executor for Go text/template parse trees (text/template/exec.go) and the Template class."""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from . import builtins as B
from .fmt import NO_VALUE, format_value, go_type_name, quote, sort_keys
from .parser import (
    ActionNode,
    BoolNode,
    BreakNode,
    ChainNode,
    CommandNode,
    CommentNode,
    ContinueNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    IfNode,
    ListNode,
    NilNode,
    Node,
    NumberNode,
    ParseError,
    PipeNode,
    RangeNode,
    StringNode,
    TemplateNode,
    TextNode,
    Tree,
    VariableNode,
    WithNode,
    parse,
)

__all__ = ["Template", "TemplateError", "TemplateParseError", "TemplateExecError", "MAX_EXEC_DEPTH",
           "execute_template_func"]

MAX_EXEC_DEPTH = 100  # Go allows 100000 nested {{template}} calls; Python's stack does not


class TemplateError(Exception):
    """A parse or execution error; the message follows Go's text/template format."""


class TemplateParseError(TemplateError):
    """The template text is not valid (raised by the :class:`Template` constructor)."""


class TemplateExecError(TemplateError):
    """Executing the template failed (Go's ExecError)."""


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()  # "no final argument" (Go's missingVal)


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_BREAK = _Break()
_CONTINUE = _Continue()

_MAX_INT = (1 << 63) - 1
_NO_ATTR_TYPES = (str, int, float, bool, complex, list, tuple, bytes, bytearray, set, frozenset)
_ABSENT = object()


def _arity(fn: Callable[..., Any], skip: int) -> tuple[int, int | None] | None:
    """(min, max) positional args of ``fn`` (max None = variadic), or None if unknown."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    lo = 0
    hi: int | None = 0
    for p in sig.parameters.values():
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            if p.default is p.empty:
                lo += 1
            if hi is not None:
                hi += 1
        elif p.kind == p.VAR_POSITIONAL:
            hi = None
        elif p.kind == p.KEYWORD_ONLY and p.default is p.empty:
            return None
    lo = max(lo - skip, 0)
    if hi is not None:
        hi = max(hi - skip, 0)
    return lo, hi


def _is_iterator_like(v: Any) -> bool:
    return hasattr(v, "__next__") or (hasattr(v, "__iter__") and not isinstance(v, str | bytes | bytearray))


# The function table of the execution running in this context (so that a nested
# execute_template, e.g. consul-template's executeTemplate, sees per-execution overrides).
_CURRENT_FUNCS: contextvars.ContextVar[tuple[Template, dict[str, Callable[..., Any]]] | None] = (
    contextvars.ContextVar("gotemplate_funcs", default=None)
)


class _State:
    __slots__ = ("tmpl", "name", "out", "vars", "node", "depth", "missing", "funcs")

    def __init__(self, tmpl: Template, name: str, out: list[str], depth: int,
                 funcs: dict[str, Callable[..., Any]]) -> None:
        self.funcs = funcs
        self.tmpl = tmpl
        self.name = name
        self.out = out
        self.vars: list[list[Any]] = []
        self.node: Node | None = None
        self.depth = depth
        self.missing = tmpl.missing_key

    # errors ------------------------------------------------------------------------------------
    def errorf(self, msg: str) -> NoReturn:
        node = self.node
        if node is None:
            raise TemplateExecError(f"template: {self.name}: {msg}")
        location, context = node.tree.error_context(node)
        if len(context) > 20:
            context = context[:20] + "..."
        raise TemplateExecError(f"template: {location}: executing {quote(self.name)} at <{context}>: {msg}")

    # variables ---------------------------------------------------------------------------------
    def var_value(self, name: str) -> Any:
        for i in range(len(self.vars) - 1, -1, -1):
            v = self.vars[i]
            if v[0] == name:
                return v[1]
        self.errorf(f"undefined variable: {name}")

    def set_var(self, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            v = self.vars[i]
            if v[0] == name:
                v[1] = value
                return
        self.errorf(f"undefined variable: {name}")

    # walking -----------------------------------------------------------------------------------
    def walk_list(self, dot: Any, lst: ListNode) -> None:
        out = self.out
        for n in lst.nodes:
            t = type(n)
            if t is TextNode:
                out.append(n.text)
            elif t is ActionNode:
                pipe = n.pipe
                val = self.eval_pipeline(dot, pipe)
                if not pipe.decl:
                    self.print_value(n, val)
            elif t is IfNode or t is WithNode:
                self.walk_if_or_with(dot, n)
            elif t is RangeNode:
                self.walk_range(dot, n)
            elif t is TemplateNode:
                self.walk_template(dot, n)
            elif t is BreakNode:
                raise _BREAK
            elif t is ContinueNode:
                raise _CONTINUE
            elif t is CommentNode:
                pass
            elif t is ListNode:
                self.walk_list(dot, n)
            else:
                self.node = n
                self.errorf(f"unknown node: {n}")

    def print_value(self, node: Node, v: Any) -> None:
        t = type(v)
        if t is str:
            self.out.append(v)
        elif v is NO_VALUE:
            self.out.append("<no value>")
        elif t is int or t is float or t is bool:
            self.out.append(format_value(v))
        else:
            if inspect.isgenerator(v) or inspect.isfunction(v) or inspect.ismethod(v) or inspect.isbuiltin(v):
                self.node = node
                self.errorf(f"can't print {node} of type {go_type_name(v)}")
            self.out.append(format_value(v))

    def walk_if_or_with(self, dot: Any, n: IfNode | WithNode) -> None:
        mark = len(self.vars)
        try:
            val = self.eval_pipeline(dot, n.pipe)
            if B.truth(val):
                if type(n) is WithNode:
                    self.walk_list(val, n.list)
                else:
                    self.walk_list(dot, n.list)
            elif n.else_list is not None:
                self.walk_list(dot, n.else_list)
        finally:
            del self.vars[mark:]

    def walk_range(self, dot: Any, r: RangeNode) -> None:
        self.node = r
        outer_mark = len(self.vars)
        try:
            val = self.eval_pipeline(dot, r.pipe)
            mark = len(self.vars)
            decl = r.pipe.decl
            ndecl = len(decl)
            is_assign = r.pipe.is_assign
            vars_ = self.vars
            body = r.list
            ran = False

            def one(index: Any, elem: Any) -> None:
                if ndecl:
                    if is_assign:
                        if ndecl > 1:
                            self.set_var(decl[0].ident[0], index)
                            self.set_var(decl[1].ident[0], elem)
                        else:
                            self.set_var(decl[0].ident[0], elem)
                    else:
                        vars_[mark - 1][1] = elem
                        if ndecl > 1:
                            vars_[mark - 2][1] = index
                try:
                    self.walk_list(elem, body)
                except _Continue:
                    pass
                finally:
                    del vars_[mark:]

            try:
                t = type(val)
                if t is list or t is tuple or isinstance(val, list | tuple | range | bytes | bytearray):
                    for i, e in enumerate(val):
                        ran = True
                        one(i, e)
                elif t is dict or isinstance(val, Mapping):
                    for k in sort_keys(val.keys()):
                        ran = True
                        one(k, val[k])
                elif isinstance(val, set | frozenset):
                    for i, e in enumerate(sort_keys(val)):
                        ran = True
                        one(i, e)
                elif t is int or (isinstance(val, int) and not isinstance(val, bool)):
                    if ndecl > 1:
                        self.errorf(f"can't use {val} to iterate over more than one variable")
                    for i in range(val):
                        ran = True
                        one(NO_VALUE, i)
                elif val is NO_VALUE or val is None:
                    pass
                elif not isinstance(val, str | bool | float | complex) and _is_iterator_like(val):
                    it = iter(val)
                    i = 0
                    while True:
                        try:
                            e = next(it)
                        except StopIteration:
                            break
                        except Exception as exc:  # a generator function failing mid-way
                            self.node = r.pipe
                            self.errorf(f"error receiving from {go_type_name(val)}: {exc}")
                        ran = True
                        one(i, e)
                        i += 1
                else:
                    self.errorf(f"range can't iterate over {format_value(val)}")
            except _Break:
                return
            if not ran and r.else_list is not None:
                self.walk_list(dot, r.else_list)
        finally:
            del self.vars[outer_mark:]

    def walk_template(self, dot: Any, t: TemplateNode) -> None:
        self.node = t
        tree = self.tmpl.trees.get(t.name)
        if tree is None:
            self.errorf(f"template {quote(t.name)} not defined")
        if self.depth >= MAX_EXEC_DEPTH:
            self.errorf(f"exceeded maximum template depth ({MAX_EXEC_DEPTH})")
        dot = self.eval_pipeline(dot, t.pipe)
        st = _State(self.tmpl, t.name, self.out, self.depth + 1, self.funcs)
        st.vars = [["$", dot]]
        if tree.root is None:  # Go: a template that was declared but never defined
            st.errorf(f"{quote(t.name)} is an incomplete or empty template")
        st.walk_list(dot, tree.root)

    # evaluation --------------------------------------------------------------------------------
    def eval_pipeline(self, dot: Any, pipe: PipeNode | None) -> Any:
        if pipe is None:
            return NO_VALUE
        self.node = pipe
        value = MISSING
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
            if value is None:
                value = NO_VALUE  # a nil interface{} digs down to an invalid value
        if pipe.decl:
            for v in pipe.decl:
                if pipe.is_assign:
                    self.set_var(v.ident[0], value)
                else:
                    self.vars.append([v.ident[0], value])
        return value

    def not_a_function(self, args: list[Node], final: Any) -> None:
        if len(args) > 1 or final is not MISSING:
            self.errorf(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: Any, cmd: CommandNode, final: Any) -> Any:
        first = cmd.args[0]
        t = type(first)
        if t is FieldNode:
            self.node = first
            return self.eval_field_chain(dot, dot, first, first.ident, cmd.args, final)
        if t is IdentifierNode:
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if t is VariableNode:
            return self.eval_variable_node(dot, first, cmd.args, final)
        if t is ChainNode:
            return self.eval_chain_node(dot, first, cmd.args, final)
        if t is PipeNode:
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        self.node = first
        self.not_a_function(cmd.args, final)
        if t is StringNode:
            return first.text
        if t is NumberNode:
            return self.ideal_constant(first)
        if t is BoolNode:
            return first.value
        if t is DotNode:
            return dot
        if t is NilNode:
            self.errorf("nil is not a command")
        self.errorf(f"can't evaluate command {quote(str(first))}")

    def ideal_constant(self, n: NumberNode) -> Any:
        v = n.value
        if type(v) is int and v > _MAX_INT:
            self.node = n
            self.errorf(f"{n.text} overflows int")
        return v

    def eval_variable_node(self, dot: Any, v: VariableNode, args: list[Node] | None, final: Any) -> Any:
        self.node = v
        value = self.var_value(v.ident[0])
        if len(v.ident) == 1:
            if args is not None:
                self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, v, v.ident[1:], args, final)

    def eval_chain_node(self, dot: Any, chain: ChainNode, args: list[Node] | None, final: Any) -> Any:
        self.node = chain
        if type(chain.node) is NilNode:
            self.errorf(f"indirection through explicit nil in {chain}")
        pipe = self.eval_arg(dot, chain.node)
        return self.eval_field_chain(dot, pipe, chain, chain.field, args, final)

    def eval_field_chain(self, dot: Any, receiver: Any, node: Node, ident: list[str],
                         args: list[Node] | None, final: Any) -> Any:
        n = len(ident)
        for i in range(n - 1):
            receiver = self.eval_field(dot, ident[i], node, None, MISSING, receiver)
        return self.eval_field(dot, ident[n - 1], node, args, final, receiver)

    def eval_field(self, dot: Any, name: str, node: Node, args: list[Node] | None, final: Any,
                   receiver: Any) -> Any:
        if type(receiver) is dict or isinstance(receiver, Mapping):
            try:
                v = receiver[name]
            except KeyError:
                pass
            else:
                if (args is not None and len(args) > 1) or final is not MISSING:
                    self.node = node
                    self.errorf(f"{name} is not a method but has arguments")
                return v
            if type(receiver) is not dict and not hasattr(dict, name) and callable(getattr(receiver, name, None)):
                return self.eval_call(dot, getattr(receiver, name), False, node, name, args, final)
            if (args is not None and len(args) > 1) or final is not MISSING:
                self.node = node
                self.errorf(f"{name} is not a method but has arguments")
            if self.missing == "error":
                self.node = node
                self.errorf(f"map has no entry for key {quote(name)}")
            if self.missing == "zero":
                return B._map_zero(receiver)
            return NO_VALUE
        if receiver is NO_VALUE:
            if self.missing == "error":
                self.node = node
                self.errorf(f"nil data; no entry for key {quote(name)}")
            return NO_VALUE
        if receiver is None:
            self.node = node
            self.errorf(f"nil pointer evaluating interface {{}}.{name}")
        has_args = (args is not None and len(args) > 1) or final is not MISSING
        attr = _ABSENT
        if not name.startswith("__") and not isinstance(receiver, _NO_ATTR_TYPES):
            try:
                attr = getattr(receiver, name, _ABSENT)
            except Exception as e:  # a property raising
                self.node = node
                self.errorf(f"error calling {name}: {e}")
        if attr is _ABSENT:
            self.node = node
            self.errorf(f"can't evaluate field {name} in type {go_type_name(receiver)}")
        if callable(attr) and not isinstance(attr, type):
            d = getattr(receiver, "__dict__", None)
            if d is None or name not in d:
                return self.eval_call(dot, attr, False, node, name, args, final)
        if has_args:
            self.node = node
            self.errorf(f"{name} has arguments but cannot be invoked as function")
        return attr

    def eval_function(self, dot: Any, node: IdentifierNode, cmd: Node, args: list[Node] | None,
                      final: Any) -> Any:
        self.node = node
        name = node.ident
        fn = self.funcs.get(name)
        if fn is not None:
            return self.eval_call(dot, fn, False, cmd, name, args, final)
        fn = B.BUILTINS.get(name)
        if fn is None:
            self.errorf(f"{quote(name)} is not a defined function")
        return self.eval_builtin(dot, fn, cmd, name, args, final)

    def _check_arity(self, name: str, nargs: int, has_final: bool, fixed: int, variadic: bool,
                     hi: int | None = None) -> None:
        num_in = nargs + (1 if has_final else 0)
        if variadic:
            if num_in < fixed:
                self.errorf(f"wrong number of args for {name}: want at least {fixed} got {nargs}")
        elif hi is not None and hi != fixed:
            if num_in < fixed:
                self.errorf(f"wrong number of args for {name}: want at least {fixed} got {num_in}")
            if num_in > hi:
                self.errorf(f"wrong number of args for {name}: want at most {hi} got {num_in}")
        elif num_in != fixed:
            self.errorf(f"wrong number of args for {name}: want {fixed} got {num_in}")

    def eval_builtin(self, dot: Any, fn: Callable[..., Any], cmd: Node, name: str,
                     args: list[Node] | None, final: Any) -> Any:
        argn = args[1:] if args else []
        fixed, variadic = B.BUILTIN_ARITY[name]
        self._check_arity(name, len(argn), final is not MISSING, fixed, variadic)
        reflect_args = name in B.REFLECT_ARGS
        if name == "and" or name == "or":
            want = name == "or"
            v: Any = NO_VALUE
            for a in argn:
                v = self.eval_builtin_arg(dot, a, reflect_args)
                if B.truth(v) == want:
                    return v
            if final is not MISSING:
                v = final
            return v
        argv = [self.eval_builtin_arg(dot, a, reflect_args) for a in argn]
        if final is not MISSING:
            argv.append(final)
        if name == "printf" and not isinstance(argv[0], str):
            self.errorf(f"wrong type for value; expected string; got {go_type_name(argv[0])}")
        try:
            return fn(*argv)
        except B.BuiltinError as e:
            self.node = cmd
            self.errorf(f"error calling {name}: {e}")
        except (TemplateError, _Break, _Continue):
            raise
        except RecursionError:
            raise
        except Exception as e:
            self.node = cmd
            self.errorf(f"error calling {name}: {e}")

    def eval_builtin_arg(self, dot: Any, n: Node, reflect_args: bool) -> Any:
        if reflect_args and type(n) is NilNode:
            self.node = n
            self.errorf("cannot assign nil to reflect.Value")
        return self.eval_arg(dot, n)

    def eval_call(self, dot: Any, fn: Callable[..., Any], is_builtin: bool, node: Node, name: str,
                  args: list[Node] | None, final: Any) -> Any:
        argn = args[1:] if args else []
        wants = getattr(fn, "wants_template", False) is True
        ar = self.tmpl.arity(fn, wants)
        if ar is not None:
            lo, hi = ar
            self._check_arity(name, len(argn), final is not MISSING, lo, hi is None, hi)
        argv = [self.eval_arg(dot, a) for a in argn]
        if final is not MISSING:
            argv.append(final)
        for i, a in enumerate(argv):
            if a is NO_VALUE:
                argv[i] = None
        if wants:
            argv.insert(0, self.tmpl)
        try:
            return fn(*argv)
        except (_Break, _Continue):
            raise
        except RecursionError:
            raise
        except Exception as e:
            self.node = node
            self.errorf(f"error calling {name}: {e}")

    def eval_arg(self, dot: Any, n: Any) -> Any:  # Any: dispatched on type(n), see ListNode.nodes
        self.node = n
        t = type(n)
        if t is StringNode:
            return n.text
        if t is FieldNode:
            return self.eval_field_chain(dot, dot, n, n.ident, [n], MISSING)
        if t is VariableNode:
            return self.eval_variable_node(dot, n, None, MISSING)
        if t is DotNode:
            return dot
        if t is NumberNode:
            return self.ideal_constant(n)
        if t is PipeNode:
            return self.eval_pipeline(dot, n)
        if t is IdentifierNode:
            return self.eval_function(dot, n, n, None, MISSING)
        if t is ChainNode:
            return self.eval_chain_node(dot, n, None, MISSING)
        if t is BoolNode:
            return n.value
        if t is NilNode:
            return None
        self.errorf(f"can't handle {n} for arg")


class Template:
    """A parsed Go text/template with its ``{{define}}``d templates.

    ``funcs`` maps function names to Python callables (called positionally, piped value last;
    a callable with ``wants_template = True`` gets this Template as its first argument).
    ``missing_key`` is Go's missingkey option: "default" (or "invalid"), "zero" or "error".
    """

    def __init__(self, name: str = "", text: str = "", funcs: Mapping[str, Callable[..., Any]] | None = None,
                 left_delim: str = "{{", right_delim: str = "}}", missing_key: str = "default") -> None:
        if missing_key == "invalid":
            missing_key = "default"
        if missing_key not in ("default", "zero", "error"):
            raise ValueError(f"unrecognized missingkey option: {missing_key!r}")
        self.name = name
        self.text = text
        self.funcs: dict[str, Callable[..., Any]] = dict(funcs or {})
        self.left_delim = left_delim or "{{"
        self.right_delim = right_delim or "}}"
        self.missing_key = missing_key
        self._arity: dict[int, tuple[Callable[..., Any], tuple[int, int | None] | None]] = {}
        self.trees: dict[str, Tree] = {}
        try:
            parse(name, text, self.left_delim, self.right_delim, self._has_func, self.trees)
        except ParseError as e:
            raise TemplateParseError(str(e)) from None
        except RecursionError:
            raise TemplateParseError(f"template: {name}: template too deeply nested") from None
        self.parse_tree: Tree = self.trees[name]

    def _has_func(self, name: str) -> bool:
        return name in self.funcs or name in B.BUILTINS

    def arity(self, fn: Callable[..., Any], wants_template: bool) -> tuple[int, int | None] | None:
        """Cached (min, max) argument count of a function (None when unknown)."""
        if len(self._arity) > 4096:  # per-execution closures would otherwise pile up
            self._arity.clear()
        key = id(fn)
        hit = self._arity.get(key)
        if hit is not None and hit[0] is fn:
            return hit[1]
        if inspect.ismethod(fn):
            # bound methods are created per attribute access: cache by the underlying function
            base = fn.__func__
            hit = self._arity.get(id(base))
            if hit is not None and hit[0] is base:
                return hit[1]
            ar = _arity(fn, 1 if wants_template else 0)
            self._arity[id(base)] = (base, ar)
            return ar
        ar = _arity(fn, 1 if wants_template else 0)
        self._arity[key] = (fn, ar)
        return ar

    def defined_templates(self) -> list[str]:
        """Names of all templates known to this Template (sorted)."""
        return sorted(self.trees)

    def lookup(self, name: str) -> Tree | None:
        """The parse tree of a named template, or None."""
        return self.trees.get(name)

    def execute(self, data: Any = None, funcs: Mapping[str, Callable[..., Any]] | None = None) -> str:
        """Render the root template with ``data`` as dot.

        ``funcs`` optionally replaces some functions for this execution only (e.g. a fresh
        ``scratch`` per run); the names used by the template must have been known at parse time.
        """
        return self.execute_template(self.name, data, funcs)

    def execute_template(self, name: str, data: Any = None,
                         funcs: Mapping[str, Callable[..., Any]] | None = None) -> str:
        """Render the template called ``name`` (e.g. one made with ``{{define}}``)."""
        tree = self.trees.get(name)
        if tree is None:
            raise TemplateExecError(
                f"template: no template {quote(name)} associated with template {quote(self.name)}"
            )
        if funcs:
            table = {**self.funcs, **funcs}
        else:
            current = _CURRENT_FUNCS.get()
            table = current[1] if current is not None and current[0] is self else self.funcs
        return self._run(tree, name, data, table)

    def _run(self, tree: Tree, name: str, data: Any, funcs: dict[str, Callable[..., Any]]) -> str:
        if data is None:
            data = NO_VALUE
        out: list[str] = []
        st = _State(self, name, out, 0, funcs)
        token = _CURRENT_FUNCS.set((self, funcs))
        st.vars = [["$", data]]
        try:
            if tree.root is None:  # Go: a template that was declared but never defined
                st.errorf(f"{quote(name)} is an incomplete or empty template")
            st.walk_list(data, tree.root)
        except TemplateError:
            raise
        except RecursionError:
            st.errorf(f"exceeded maximum template depth ({MAX_EXEC_DEPTH})")
        except Exception as e:  # unexpected data trouble: still report it as a template error
            st.errorf(f"{type(e).__name__}: {e}")
        finally:
            _CURRENT_FUNCS.reset(token)
        return "".join(out)

    def __repr__(self) -> str:
        return f"Template(name={self.name!r}, templates={self.defined_templates()!r})"



def execute_template_func(tmpl: Template, name: str, *data: Any) -> str:
    """consul-template's ``executeTemplate NAME [DOT]``: render a ``{{define}}``d template to a string."""
    if len(data) > 1:
        raise ValueError(
            f"executeTemplate: wrong number of arguments, expected 1 or 2, got {len(data) + 1}"
        )
    return tmpl.execute_template(name, data[0] if data else None)


execute_template_func.wants_template = True  # type: ignore[attr-defined]
