"""Jinja2 templates with consul-template's functions as globals and as filters.

    {% for svc in service("web") %}server {{ svc.Node }} {{ svc.Address }}:{{ svc.Port }}
    {% endfor %}{{ "app/port" | key }}  {{ services() | map(attribute="Name") | join(",") }}

As globals, functions take consul-template's argument order. As filters, the piped value is
consul-template's *last* argument: `{{ s | replaceAll("a", "b") }}` is `replaceAll "a" "b" s`.
Jinja's own filters keep their names (join, indent, trim, replace ...); `scratch` is the
scratchpad object itself (`scratch.Set("k", 1)`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jinja2

from meshctl.template.api import Api


def _as_filter(fn: Callable[..., Any]) -> Callable[..., Any]:
    @jinja2.pass_context  # never folded at compile time: `"k" | key` must read the brain at render time
    def flt(_ctx: Any, value: Any, *args: Any) -> Any:
        return fn(*args, value)

    flt.__name__ = getattr(fn, "__name__", "filter")
    return flt


class _ScratchProxy:
    """`scratch.Get(...)` in Jinja: the current execution's scratchpad."""

    def __init__(self, api: Api) -> None:
        self._api = api

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api.scratch, name)


class JinjaTemplate:
    """A Jinja2 template sharing the Go engine's function table."""

    def __init__(self, name: str, text: str, functions: Mapping[str, Callable[..., Any]], api: Api,
                 strict: bool = False, left: str = "{{", right: str = "}}") -> None:
        env = jinja2.Environment(
            undefined=jinja2.StrictUndefined if strict else jinja2.Undefined,
            keep_trailing_newline=True, autoescape=False, optimized=False,  # no constant folding of key "x"
            variable_start_string=left or "{{", variable_end_string=right or "}}",
        )
        for fname, fn in functions.items():
            if fname == "scratch":
                continue
            env.globals[fname] = fn
            if fname not in env.filters:
                env.filters[fname] = _as_filter(fn)
        env.globals["scratch"] = _ScratchProxy(api)
        try:
            self.template = env.from_string(text)
        except jinja2.TemplateSyntaxError as e:
            from meshctl.template.template import TemplateError

            raise TemplateError(f"template: {name}:{e.lineno}: {e.message}") from None
        self.name = name

    def execute(self, data: Any = None) -> str:
        """Render (no context variables: everything comes from the functions)."""
        return self.template.render()
