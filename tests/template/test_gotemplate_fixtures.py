"""Real consul-template templates (fixtures/ctmpl, sources in its README) through meshctl.template.gotemplate.

Every fixture must parse with a stub function map holding every consul-template function name
(fixtures/consul-template-funcmap.md); a few render against stub data and are compared with the
output their upstream repositories document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from meshctl.template.gotemplate import Template, TemplateError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ctmpl"
FUNCMAP_MD = FIXTURES.parent / "consul-template-funcmap.md"

# Every function listed in consul-template-funcmap.md (consul-template's funcMap).
CT_FUNCS = """
key keyExists keyOrDefault ls safeLs tree safeTree service connect services node nodes datacenters
partitions peerings exportedServices importedServices caRoots caLeaf file secret secrets pkiCert
nomadServices nomadService nomadVar nomadVarExists nomadVarList nomadVarListSafe scratch
base64Encode base64Decode base64URLEncode base64URLDecode byKey byTag byPort byMeta contains in
containsAll containsAny containsNone containsNotAll env mustEnv envOrDefault executeTemplate explode
explodeMap mergeMap mergeMapWithOverride indent loop join split splitToMap trim trimPrefix trimSuffix
trimSpace parseBool parseFloat parseInt parseUint parseJSON parseYAML plugin regexMatch regexReplaceAll
replaceAll sha256Hex md5sum hmacSHA256Hex timestamp toJSON toJSONPretty toUnescapedJSON
toUnescapedJSONPretty toTOML toYAML toLower toUpper toTitle sockaddr writeToFile add subtract multiply
divide modulo minimum maximum spew_dump spew_sdump spew_printf spew_sprintf sprig_upper
""".split()

STUBS = {name: (lambda *args: "") for name in CT_FUNCS}

# Fixtures that real consul-template (Go text/template) rejects too, with the error it gives.
EXPECTED_PARSE_ERRORS = {
    # `key_or_default` was renamed keyOrDefault long ago; it is not in today's funcMap.
    "mantl__mantl__marathon-iptables.tmpl": 'mantl__mantl__marathon-iptables.tmpl:3: function "key_or_default" not defined',
    "mantl__mantl__mesos-leader-iptables.tmpl":
        'mantl__mantl__mesos-leader-iptables.tmpl:3: function "key_or_default" not defined',
    # "{{ /* ... */ -}}": a comment must follow the delimiter directly (INDEX.md flags this one).
    "nikotrone__consul-template-examples__test.ctmpl":
        'nikotrone__consul-template-examples__test.ctmpl:7: unexpected "/" in command',
}


def _fixture_files() -> list[Path]:
    return sorted(list(FIXTURES.glob("*.ctmpl")) + list(FIXTURES.glob("*.tmpl")))


def test_fixtures_are_present() -> None:
    assert len(_fixture_files()) >= 30


def test_stub_names_are_the_documented_functions() -> None:
    section = FUNCMAP_MD.read_text()
    assert section.startswith("### 1a. Template functions")
    missing = [n for n in CT_FUNCS if not re.search(r"\b" + re.escape(n) + r"\b", section)]
    assert missing == []


@pytest.mark.parametrize("path", _fixture_files(), ids=lambda p: p.name)
def test_fixture_parses(path: Path) -> None:
    text = path.read_text()
    if path.name in EXPECTED_PARSE_ERRORS:
        with pytest.raises(TemplateError) as ei:
            Template(name=path.name, text=text, funcs=STUBS)
        assert str(ei.value) == "template: " + EXPECTED_PARSE_ERRORS[path.name]
        # ...and with the legacy name provided, the template itself is fine.
        if "key_or_default" in text:
            Template(name=path.name, text=text, funcs={**STUBS, "key_or_default": STUBS["keyOrDefault"]})
        return
    t = Template(name=path.name, text=text, funcs=STUBS)
    assert path.name in t.defined_templates()


@dataclass
class HealthService:
    Node: str
    Address: str
    Port: int
    ID: str = ""
    Name: str = ""
    Tags: list[str] = field(default_factory=list)
    ServiceMeta: dict[str, str] = field(default_factory=dict)


@dataclass
class CatalogService:
    Name: str
    Tags: list[str] = field(default_factory=list)


def test_render_consul_template_2014_haproxy_fixture() -> None:
    """consul-template's own 2014 fixture: one `consul` service at 127.0.0.1:8500.

    The saved .expected file has no blank line after "backend app", but the template's range body
    starts with a newline ("{{range ...}}\n    server ..."), which Go's text/template always copies
    to the output; that one line is the only difference.
    """
    src = (FIXTURES / "hashicorp__consul-template__haproxy.cfg.ctmpl").read_text()
    expected = (FIXTURES / "hashicorp__consul-template__haproxy.cfg.expected").read_text()
    seen: list[str] = []

    def service(name: str) -> list[HealthService]:
        seen.append(name)
        return [HealthService(Node="consul", Name="consul", Address="127.0.0.1", Port=8500)]

    out = Template(name="haproxy.cfg", text=src, funcs={"service": service}).execute(None)
    assert out == expected.replace("\nbackend app\n", "\nbackend app\n\n")
    assert seen == ["consul@nyc1"]


def test_render_services_example_matches_upstream_docs() -> None:
    src = (FIXTURES / "hashicorp__consul-template__examples-services.ctmpl").read_text()
    doc = (FIXTURES / "sources" / "hashicorp__consul-template__examples_services.md").read_text()
    expected = doc.split("```text\n", 1)[1].split("```", 1)[0]
    addrs = {
        "consul": ["104.131.121.232"],
        "redis": ["104.131.86.92", "104.131.109.224", "104.131.59.59"],
        "web": ["104.131.86.92", "104.131.109.224", "104.131.59.59"],
    }
    funcs = {
        "services": lambda: [CatalogService(n) for n in sorted(addrs)],
        "service": lambda name: [HealthService(Node="n", Address=a, Port=80) for a in addrs[name]],
    }
    out = Template(name="all.ctmpl", text=src, funcs=funcs).execute(None)
    assert out.rstrip("\n") == expected.rstrip("\n")


def test_render_trimmed_if_else_example() -> None:
    src = (FIXTURES / "nikotrone__consul-template-examples__remove_evaluated_lines.ctmpl").read_text()
    out = Template(name="x", text=src).execute(None)
    header = src[: src.index("{{")]
    assert out == header + "The value of x is TRUE\n"


def test_render_preserved_lines_example() -> None:
    src = (FIXTURES / "nikotrone__consul-template-examples__preserve_evaluated_lines.ctmpl").read_text()
    out = Template(name="x", text=src).execute(None)
    header = src[: src.index("{{")]
    assert out == header + "\n\nThe value of x is TRUE\n\n"


def test_render_template_with_define_and_execute_template() -> None:
    """mclueppers' haproxy.conf uses {{define}} + executeTemplate, env/keyOrDefault defaults, ls, service."""
    path = FIXTURES / "mclueppers__haproxy-consul-template__haproxy.conf.ctmpl"

    def execute_template(tmpl: Template, name: str, dot: Any = None) -> str:
        return tmpl.execute_template(name, dot)

    execute_template.wants_template = True  # type: ignore[attr-defined]
    funcs = {
        **STUBS,
        "env": lambda name: "",
        "keyOrDefault": lambda key, default: default,
        "ls": lambda prefix: [],
        "service": lambda *a: [],
        "contains": lambda needle, haystack: needle in haystack,
        "executeTemplate": execute_template,
    }
    out = Template(name=path.name, text=path.read_text(), funcs=funcs).execute(None)
    assert "bind *:80" in out
    assert "maxconn 2000" in out


def test_render_fixture_with_error_on_missing_key() -> None:
    src = '{{range service "web"}}{{.Address}}:{{.Port}} {{.Missing}}{{end}}'
    funcs = {"service": lambda name: [{"Address": "10.0.0.1", "Port": 80}]}
    assert Template(name="w", text=src, funcs=funcs).execute(None) == "10.0.0.1:80 <no value>"
    with pytest.raises(TemplateError) as ei:
        Template(name="w", text=src, funcs=funcs, missing_key="error").execute(None)
    assert str(ei.value) == 'template: w:1:48: executing "w" at <.Missing>: map has no entry for key "Missing"'


HAPROXY_BIG = """global
    maxconn 256
{{- range $name, $svcs := services | byName }}
backend {{$name}}
    balance roundrobin{{range $i, $s := service $name}}
    server {{$s.Node}}_{{$s.ID}} {{.Address}}:{{.Port}}{{if .Tags | contains "primary"}} check{{end}}
        {{- with index .ServiceMeta "weight"}} weight {{.}}{{end}}{{if eq .Port 8001}} backup{{end}}
        {{- printf " # %s-%d" .Name $i}}{{end}}
{{end}}"""


def test_large_haproxy_template_renders_every_instance() -> None:
    instances = [
        HealthService(f"node{i}", f"10.0.{i // 256}.{i % 256}", 8000 + i % 100, f"web-{i}", "web", ["primary", "v1"],
                      {"weight": str(i % 10)})
        for i in range(3000)
    ]
    funcs = {
        "services": lambda: [CatalogService("web")],
        "byName": lambda svcs: {s.Name: s for s in svcs},
        "service": lambda name: instances,
        "contains": lambda needle, lst: needle in lst,
    }
    t = Template(name="haproxy.ctmpl", text=HAPROXY_BIG, funcs=funcs)
    out = t.execute(None)  # its speed is bench/template.py's business
    lines = out.splitlines()
    assert lines[:4] == ["global", "    maxconn 256", "backend web", "    balance roundrobin"]
    assert lines[4] == "    server node0_web-0 10.0.0.0:8000 check weight 0 # web-0"
    assert lines[5] == "    server node1_web-1 10.0.0.1:8001 check weight 1 backup # web-1"
    assert len(lines) == 4 + 3000
