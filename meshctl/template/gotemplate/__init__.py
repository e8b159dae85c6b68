"""A faithful pure-Python implementation of Go's text/template, for consul-template ``.ctmpl`` files.

    from meshctl.template.gotemplate import Template, TemplateError
    t = Template(name="haproxy.ctmpl", text=source, funcs={"key": fn}, missing_key="default")
    out = t.execute(data)                       # the root template
    part = t.execute_template("blockname", data)  # a {{define}}d template

Templates are parsed once (in the constructor) and can be executed many times, also concurrently.

How Python values map onto Go's:

* ``None`` is a nil interface; like Go's ``interface{}`` values it becomes "no value" once it is the
  result of a pipeline stage, so ``{{.k}}`` prints ``<no value>`` for ``{"k": None}`` as Go does for
  ``map[string]interface{}{"k": nil}``; as an argument to a function it is passed as ``None``.
* ``bool``, ``int``, ``float``, ``complex``, ``str`` are Go's bool, int, float64, complex128, string
  (comparisons follow Go: ``eq 1 1.0`` is an error, ``lt`` on bools is an error).
* ``list``/``tuple`` are slices, ``dict`` (any Mapping) is a map, ranged over in sorted key order;
  iterators and generators are channels (``range`` consumes them).
* ``.Name`` on a Mapping is a key lookup (a missing key is ``<no value>``, or an error with
  ``missing_key="error"``); on any other object it is an attribute, and an attribute that is a
  method (defined on the class) is called with the command's arguments (``.Method a b``).
* ``index`` on a missing map key gives the element type's zero value: ``""`` for a dict whose values
  are all strings (a Go ``map[string]string``), ``0`` for all-int dicts and so on, else nil;
  a dict subclass may set ``go_zero`` to choose.
* Function errors: any exception raised by a function becomes a :class:`TemplateError`
  ``template: NAME:LINE:COL: executing "NAME" at <cmd>: error calling FN: MESSAGE``.
* ``execute(data, funcs=...)`` can replace functions for one execution (names are checked at parse
  time, so the template must be built with every name it uses).
* A function with attribute ``wants_template = True`` is called with the :class:`Template` first;
  :func:`execute_template_func` is consul-template's ``executeTemplate`` built that way.

Differences from Go: nested ``{{template}}`` calls are limited to ``MAX_EXEC_DEPTH`` (Python's
stack), there are no typed function signatures (arguments are not converted), and struct values
print without Go's type information.
"""

from .exec import (
    MAX_EXEC_DEPTH,
    Template,
    TemplateError,
    TemplateExecError,
    TemplateParseError,
    execute_template_func,
)
from .fmt import NO_VALUE, format_value, sprint, sprintf, sprintln

__all__ = [
    "Template",
    "TemplateError",
    "TemplateParseError",
    "TemplateExecError",
    "NO_VALUE",
    "MAX_EXEC_DEPTH",
    "execute_template_func",
    "format_value",
    "sprint",
    "sprintf",
    "sprintln",
]
