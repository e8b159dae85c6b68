"""A faithful pure-Python implementation of Go's text/template, for consul-template ``.ctmpl`` files.

    from meshctl.template.gotemplate import Template, TemplateError
    t = Template(name="haproxy.ctmpl", text=source, funcs={"key": fn}, missing_key="default")
    out = t.execute(data)
    part = t.execute_template("blockname", data)
"""

from .exec import MAX_EXEC_DEPTH, Template, TemplateError
from .fmt import NO_VALUE, format_value, sprint, sprintf, sprintln

__all__ = [
    "Template",
    "TemplateError",
    "NO_VALUE",
    "MAX_EXEC_DEPTH",
    "format_value",
    "sprint",
    "sprintf",
    "sprintln",
]
