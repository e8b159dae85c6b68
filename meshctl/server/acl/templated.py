"""ACL templated policies (Consul 1.17+): builtin/service, builtin/node, builtin/dns.

A token or role lists `TemplatedPolicies: [{"TemplateName": ..., "TemplateVariables": {"Name": ...}}]`;
each expands to the rules of Consul's template (the docs' "ACL templated policies" page), which the
enforcer compiles as any policy's rules — so a template grants exactly what its rules say.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

NAME_RE = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9\-_]*[a-zA-Z0-9])?$")
_NAME_SCHEMA = json.dumps({"type": "object", "properties": {"name": {"type": "string", "$ref": "#/definitions/min-length-one"}},
                           "required": ["name"], "definitions": {"min-length-one": {"type": "string", "minLength": 1}}},
                          indent=2)


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    rules: str  # `{{.Name}}` is the TemplateVariables' Name
    needs_name: bool

    def json(self) -> dict[str, str]:
        return {"TemplateName": self.name, "Schema": _NAME_SCHEMA if self.needs_name else "",
                "Template": self.rules, "Description": self.description}

    def expand(self, variables: dict[str, Any]) -> str:
        return self.rules.replace("{{.Name}}", str(variables.get("Name", "")))


TEMPLATES = {t.name: t for t in (
    Template("builtin/service", "Gives the token or role permissions to register a service and discover "
             "services in the Consul catalog. It also gives the specified service's sidecar proxy the "
             "permission to discover and route traffic to other services.",
             'service "{{.Name}}" {\n  policy = "write"\n}\nservice "{{.Name}}-sidecar-proxy" {\n'
             '  policy = "write"\n}\nservice_prefix "" {\n  policy = "read"\n}\nnode_prefix "" {\n'
             '  policy = "read"\n}', True),
    Template("builtin/node", "Gives the token or role permissions for a register an agent/node into the "
             "catalog. A node is typically a consul agent but can also be a physical server, cloud "
             "instance or a container.",
             'node "{{.Name}}" {\n  policy = "write"\n}\nservice_prefix "" {\n  policy = "read"\n}', True),
    Template("builtin/dns", "Gives the token or role permissions for the Consul DNS to query services "
             "in the network.",
             'node_prefix "" {\n  policy = "read"\n}\nservice_prefix "" {\n  policy = "read"\n}\n'
             'query_prefix "" {\n  policy = "read"\n}', False),
)}


def validate(links: Any) -> str | None:
    """Why a TemplatedPolicies list is refused (Consul's messages), or None."""
    if links is None:
        return None
    if not isinstance(links, list):
        return "Request decode failed: TemplatedPolicies must be a list"
    for link in links:
        if not isinstance(link, dict):
            return f"Invalid templated policy: {link!r}"
        template = TEMPLATES.get(str(link.get("TemplateName") or ""))
        if template is None:
            return f"templated policy {link.get('TemplateName')!r} does not exist"
        if link.get("Datacenters"):  # the enforcer is not datacenter-aware: refused, never ignored
            return "Datacenters on a templated policy are not supported by meshctl"
        variables = link.get("TemplateVariables") or {}
        if not isinstance(variables, dict):
            return "Request decode failed: TemplateVariables must be an object"
        name = variables.get("Name")
        if template.needs_name and not (isinstance(name, str) and name):
            return f"Failed to validate templated policy {template.name}: name is required"
        if template.needs_name and not NAME_RE.match(str(name)):
            return f"Failed to validate templated policy {template.name}: name {name!r} is not a valid name"
    return None


def normalised(links: Any) -> list[dict[str, Any]]:
    """The stored form: TemplateName, TemplateVariables (only for templates with variables), Datacenters."""
    out = []
    for link in links or []:
        template = TEMPLATES[link["TemplateName"]]
        rec: dict[str, Any] = {"TemplateName": template.name}
        if template.needs_name:
            rec["TemplateVariables"] = {"Name": link["TemplateVariables"]["Name"]}
        if rec not in out:
            out.append(rec)
    return out


def rules_of(links: list[dict[str, Any]]) -> list[str]:
    """The rule texts a token's (or role's) templated policies grant."""
    return [TEMPLATES[link["TemplateName"]].expand(link.get("TemplateVariables") or {}) for link in links]
