"""A template: parsed once (Go text/template or Jinja2), executed against the brain many times.

Each execution records the dependencies it used and those still missing data; the runner
writes the output only when nothing is missing (consul-template's n-pass evaluation).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meshctl.template.api import Api
from meshctl.template.brain import Brain
from meshctl.template.dependency import Dependency
from meshctl.template.funcs import apply_denylist, make_helpers
from meshctl.template.gotemplate import Template as GoTemplate
from meshctl.template.gotemplate import TemplateError as GoTemplateError
from meshctl.template.gotemplate import execute_template_func

JINJA_EXTENSIONS = (".j2", ".jinja", ".jinja2")
SYNTAXES = ("go", "jinja")


class TemplateError(Exception):
    """The template does not parse, or its execution failed."""


def syntax_for(path: str, explicit: str = "") -> str:
    """"jinja" for .j2/.jinja/.jinja2 files (or when asked), else "go"."""
    if explicit:
        if explicit not in SYNTAXES:
            raise TemplateError(f"unknown template syntax {explicit!r} (want go or jinja)")
        return explicit
    return "jinja" if path.lower().endswith(JINJA_EXTENSIONS) else "go"


@dataclass
class Execution:
    """The result of one execution: rendered bytes and the dependencies seen."""

    output: bytes
    used: dict[str, Dependency] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)

    @property
    def complete(self) -> bool:
        """Every dependency had data: the output may be written."""
        return not self.missing


class Template:
    """One template's text, parsed with its engine and bound to consul-template's functions.

    `name`: shown in errors (the source path); `syntax`: "go" or "jinja"; `env`: overlay for
    env/mustEnv/envOrDefault; `function_denylist`: globs of functions that error when called.
    """

    def __init__(self, name: str, text: str, *, syntax: str = "go", left_delim: str = "{{",
                 right_delim: str = "}}", error_on_missing_key: bool = False,
                 function_denylist: list[str] | None = None, sandbox_path: str = "",
                 env: Mapping[str, str] | None = None, err_on_failed_lookup: bool = False) -> None:
        self.name = name
        self.text = text
        self.syntax = syntax
        self.api = Api(sandbox_path=sandbox_path, err_on_failed_lookup=err_on_failed_lookup)
        funcs: dict[str, Any] = make_helpers(env)
        funcs["scratch"] = lambda: self.api.scratch
        funcs.update(self.api.functions())
        funcs["key_or_default"] = funcs["keyOrDefault"]  # the old name some templates still use
        self.functions = apply_denylist(funcs, function_denylist)
        self._engine: Any
        if syntax == "jinja":
            from meshctl.template.jinja import JinjaTemplate

            self._engine = JinjaTemplate(name, text, self.functions, self.api,
                                         strict=error_on_missing_key, left=left_delim, right=right_delim)
        else:
            go_funcs = dict(self.functions)
            go_funcs["executeTemplate"] = execute_template_func
            try:
                self._engine = GoTemplate(name, text, go_funcs, left_delim or "{{", right_delim or "}}",
                                          "error" if error_on_missing_key else "default")
            except GoTemplateError as e:
                raise TemplateError(str(e)) from None

    @classmethod
    def from_file(cls, path: str, **options: Any) -> Template:
        """Read and parse a template file (syntax from its extension unless given)."""
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
        except OSError as e:
            raise TemplateError(f"failed reading template {path}: {e.strerror or e}") from None
        options["syntax"] = syntax_for(path, options.get("syntax") or "")
        return cls(path, text, **options)

    @property
    def id(self) -> str:
        """A stable identity of the text (sha256)."""
        return hashlib.sha256(self.text.encode("utf-8", "surrogateescape")).hexdigest()

    def execute(self, brain: Brain) -> Execution:
        """Render against `brain`; TemplateError if the template fails."""
        with self.api.lock:
            self.api.begin(brain)
            try:
                out = self._engine.execute(None)
            except GoTemplateError as e:
                raise TemplateError(str(e)) from None
            except TemplateError:
                raise
            except Exception as e:  # jinja and function errors
                raise TemplateError(f"{self.name}: {type(e).__name__}: {e}") from None
            return Execution(out.encode("utf-8", "surrogateescape"), dict(self.api.used), set(self.api.missing))


def read_source(path: str) -> str:
    """A template file's text (for reload checks)."""
    with open(os.fspath(path), encoding="utf-8", errors="surrogateescape") as f:
        return f.read()
