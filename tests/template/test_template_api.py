"""Every consul-template API function against a hand-filled brain: results, used/missing, first pass."""

from __future__ import annotations

import pytest

from meshctl.template.brain import Brain
from meshctl.template.dependency import (
    CatalogNode,
    CatalogNodeService,
    CatalogSnippet,
    HealthService,
    KeyPair,
    Node,
    Weights,
)
from meshctl.template.template import Template, TemplateError


def pair(path: str, value: str, prefix: str = "") -> KeyPair:
    return KeyPair(Path=path, Key=path.removeprefix(prefix).lstrip("/"), Value=value)


def svc(node: str, sid: str, addr: str, port: int, tags: list[str] | None = None, name: str = "web",
        meta: dict | None = None) -> HealthService:
    return HealthService(Node=node, NodeID="", NodeAddress=addr, NodeDatacenter="dc1", NodeTaggedAddresses={},
                         NodeMeta={}, ServiceMeta=meta or {}, Address=addr, ServiceTaggedAddresses={}, ID=sid,
                         Name=name, Kind="", Tags=tags or [], Checks=[], Status="passing", Port=port,
                         Weights=Weights())


def run(text: str, brain: Brain | None = None, syntax: str = "go", **kw) -> tuple[str, set[str], set[str]]:
    ex = Template("t", text, syntax=syntax, **kw).execute(brain or Brain())
    return ex.output.decode(), set(ex.used), ex.missing


def test_key_first_pass_is_empty_and_missing():
    out, used, missing = run('[{{ key "app/port" }}]')
    assert out == "[]"
    assert used == missing == {"kv.get(app/port)"}


def test_key_returns_value_once_known():
    b = Brain()
    b.remember("kv.get(app/port)", pair("app/port", "8080"))
    assert run('{{ key "app/port" }}', b) == ("8080", {"kv.get(app/port)"}, set())


def test_key_on_absent_key_stays_missing():
    b = Brain()
    b.remember("kv.get(nope)", None)
    out, _, missing = run('{{ key "nope" }}', b)
    assert out == "" and missing == {"kv.get(nope)"}


def test_key_absent_errors_with_err_on_failed_lookup():
    b = Brain()
    b.remember("kv.get(nope)", None)
    with pytest.raises(TemplateError, match="does not exist"):
        run('{{ key "nope" }}', b, err_on_failed_lookup=True)


def test_key_with_datacenter_and_leading_slash():
    _, used, _ = run('{{ key "/a/b@dc2" }}')
    assert used == {"kv.get(a/b@dc2)"}


def test_key_exists_shares_the_key_dependency():
    b = Brain()
    b.remember("kv.get(a)", pair("a", ""))
    b.remember("kv.get(b)", None)
    out, used, missing = run('{{ keyExists "a" }} {{ keyExists "b" }} {{ key "a" }}', b)
    assert out == "true false " and used == {"kv.get(a)", "kv.get(b)"} and not missing


def test_key_or_default_default_when_absent_empty_or_unknown():
    b = Brain()
    b.remember("kv.get(empty)", pair("empty", ""))
    b.remember("kv.get(gone)", None)
    b.remember("kv.get(set)", pair("set", "v"))
    out, _, missing = run('{{ keyOrDefault "empty" "d1" }} {{ keyOrDefault "gone" "d2" }} '
                          '{{ keyOrDefault "set" "d3" }} {{ keyOrDefault "unknown" "d4" }}', b)
    assert out == "d1 d2 v d4"
    assert missing == {"kv.get(unknown)"}


def test_ls_keeps_direct_children_only():
    b = Brain()
    b.remember("kv.list(cfg)", [pair("cfg/", "", "cfg"), pair("cfg/a", "1", "cfg"), pair("cfg/sub/b", "2", "cfg"),
                                pair("cfg/c", "3", "cfg")])
    out, used, missing = run('{{ range ls "cfg" }}{{ .Key }}={{ .Value }};{{ end }}', b)
    assert out == "a=1;c=3;" and used == {"kv.list(cfg)"} and not missing


def test_tree_keeps_leaves_at_all_depths():
    b = Brain()
    b.remember("kv.list(cfg)", [pair("cfg/", "", "cfg"), pair("cfg/a", "1", "cfg"), pair("cfg/sub/", "", "cfg"),
                                pair("cfg/sub/b", "2", "cfg")])
    out, _, _ = run('{{ range tree "cfg" }}{{ .Key }}|{{ .Path }}={{ .Value }};{{ end }}', b)
    assert out == "a|cfg/a=1;sub/b|cfg/sub/b=2;"


def test_ls_and_tree_share_one_list_dependency():
    _, used, missing = run('{{ ls "p" }}{{ tree "p" }}{{ safeLs "p" }}{{ safeTree "p" }}')
    assert used == missing == {"kv.list(p)"}


def test_empty_ls_renders_but_safe_ls_does_not():
    b = Brain()
    b.remember("kv.list(p)", [])
    assert run('{{ range ls "p" }}x{{ end }}ok', b)[2] == set()
    assert run('{{ range safeLs "p" }}x{{ end }}ok', b)[2] == {"kv.list(p)"}
    assert run('{{ range safeTree "p" }}x{{ end }}ok', b)[2] == {"kv.list(p)"}
    assert run('{{ range tree "p" }}x{{ end }}ok', b)[2] == set()


def test_service_first_pass_is_empty_list():
    out, used, missing = run('{{ range service "web" }}x{{ end }}n={{ len (service "web") }}')
    assert out == "n=0" and used == missing == {"health.service(web|passing)"}


def test_service_extra_arguments_become_the_filter():
    _, used, _ = run('{{ service "web" "passing,warning" }}{{ service "db" "any" }}')
    assert used == {"health.service(web|passing,warning)", "health.service(db|any)"}


def test_service_tag_dc_near_filter_identity():
    _, used, _ = run('{{ service "v1.web@dc2~_agent|warning,passing" }}')
    assert used == {"health.service(v1.web@dc2~_agent|passing,warning)"}


def test_service_fields():
    b = Brain()
    b.remember("health.service(web|passing)", [svc("n1", "web-1", "10.0.0.1", 80, ["a", "b"]),
                                               svc("n2", "web-2", "10.0.0.2", 81)])
    out, _, _ = run('{{ range service "web" }}{{ .Node }} {{ .ID }} {{ .Name }} {{ .Address }}:{{ .Port }} '
                    '{{ .Tags }} {{ .Status }} {{ .Weights.Passing }}\n{{ end }}', b)
    assert out == "n1 web-1 web 10.0.0.1:80 [a b] passing 1\nn2 web-2 web 10.0.0.2:81 [] passing 1\n"


def test_index_of_empty_first_pass_is_an_error_as_in_consul_template():
    with pytest.raises(TemplateError):
        run('{{ (index (service "web") 0).Address }}')


def test_services_and_catalog_snippet_fields():
    b = Brain()
    b.remember("catalog.services()", [CatalogSnippet("db", ["primary"]), CatalogSnippet("web", ["a", "b"])])
    out, used, _ = run('{{ range services }}{{ .Name }}:{{ join "," .Tags }} {{ end }}', b)
    assert out == "db:primary web:a,b " and used == {"catalog.services()"}
    assert run('{{ services "@dc2" }}')[1] == {"catalog.services(@dc2)"}


def test_node_without_name_is_the_agents_node_and_nil_first():
    out, used, missing = run('{{ with node }}{{ .Node.Node }}{{ else }}none{{ end }}')
    assert out == "none" and used == missing == {"catalog.node()"}


def test_node_fields():
    b = Brain()
    node = Node(ID="id1", Node="n1", Address="10.0.0.1", Datacenter="dc1", TaggedAddresses={}, Meta={"r": "x"})
    b.remember("catalog.node(n1)", CatalogNode(node, [CatalogNodeService("web1", "web", ["t"], {}, 80, "")]))
    out, _, _ = run('{{ with node "n1" }}{{ .Node.Address }} {{ .Node.Meta.r }}'
                    '{{ range .Services }} {{ .Service }}:{{ .Port }}{{ end }}{{ end }}', b)
    assert out == "10.0.0.1 x web:80"


def test_nodes_and_datacenters():
    b = Brain()
    b.remember("catalog.nodes()", [Node("", "a", "1.1.1.1", "dc1", {}, {}), Node("", "b", "2.2.2.2", "dc1", {}, {})])
    b.remember("catalog.datacenters(ignore_inaccessible=false)", ["dc1", "dc2"])
    out, used, _ = run('{{ range nodes }}{{ .Node }}={{ .Address }} {{ end }}{{ datacenters }}', b)
    assert out == "a=1.1.1.1 b=2.2.2.2 [dc1 dc2]"
    assert run('{{ nodes "@dc2~n1" }}{{ datacenters true }}')[1] == {
        "catalog.nodes(@dc2~n1)", "catalog.datacenters(ignore_inaccessible=true)"}


def test_file_dependency(tmp_path):
    p = tmp_path / "f.txt"
    b = Brain()
    b.remember(f"file({p})", "hello")
    assert run(f'{{{{ file "{p}" }}}}', b) == ("hello", {f"file({p})"}, set())


def test_file_outside_sandbox_is_refused(tmp_path):
    (tmp_path / "box").mkdir()
    with pytest.raises(TemplateError, match="sandbox"):
        run('{{ file "/etc/hostname" }}', sandbox_path=str(tmp_path / "box"))


def test_env_functions_and_overlay(monkeypatch):
    monkeypatch.setenv("CT_TEST_A", "a")
    monkeypatch.setenv("CT_TEST_EMPTY", "")
    monkeypatch.delenv("CT_TEST_UNSET", raising=False)
    out, _, _ = run('{{ env "CT_TEST_A" }} {{ env "CONSUL_HTTP_ADDR" }} {{ envOrDefault "CT_TEST_EMPTY" "d" }}|'
                    '{{ envOrDefault "CT_TEST_UNSET" "d" }}', env={"CONSUL_HTTP_ADDR": "1.2.3.4:8500"})
    assert out == "a 1.2.3.4:8500 |d"
    with pytest.raises(TemplateError, match="CT_TEST_UNSET"):
        run('{{ mustEnv "CT_TEST_UNSET" }}')


def test_scratch_is_fresh_per_execution():
    t = Template("t", '{{ scratch.SetX "k" "v1" }}{{ scratch.Get "k" }}{{ scratch.Set "k" "v2" }}'
                      '{{ scratch.Get "k" }}{{ scratch.Key "k" }}')
    assert t.execute(Brain()).output == b"v1v2true"
    assert t.execute(Brain()).output == b"v1v2true"


def test_helpers_are_available():
    out, _, _ = run('{{ "a,b" | split "," | join "-" }} {{ "x" | toUpper }} {{ 3 | add 2 }} '
                    '{{ "zkid-7" | regexReplaceAll "zkid-([0-9]*)" "$1" }} {{ parseJSON "{\\"a\\": 1}" }}')
    assert out == "a-b X 5 7 map[a:1]"


def test_executetemplate_and_define():
    assert run('{{ define "x" }}[{{ . }}]{{ end }}{{ executeTemplate "x" "y" }}')[0] == "[y]"


def test_function_denylist():
    with pytest.raises(TemplateError, match="function is disabled"):
        run('{{ env "HOME" }}', function_denylist=["env"])


def test_custom_delimiters_and_missing_key_error():
    assert run('<% key "a" %>', left_delim="<%", right_delim="%>")[1] == {"kv.get(a)"}
    with pytest.raises(TemplateError):
        run('{{ (parseJSON "{}").nope }}', error_on_missing_key=True)


def test_old_key_or_default_alias():
    assert run('{{ key_or_default "a" "d" }}')[0] == "d"


def test_bad_query_string_is_a_template_error():
    with pytest.raises(TemplateError, match="invalid"):
        run('{{ service "web|bogus" }}')
    with pytest.raises(TemplateError, match="invalid query parameter"):
        run('{{ key "a?color=red" }}')


# -- Jinja2 -----------------------------------------------------------------------------------


def test_jinja_functions_as_globals_and_filters():
    b = Brain()
    b.remember("health.service(web|passing)", [svc("n1", "web-1", "10.0.0.1", 80)])
    b.remember("kv.get(app/name)", pair("app/name", "shop"))
    text = ('{% for s in service("web") %}server {{ s.Node }} {{ s.Address }}:{{ s.Port }}\n{% endfor %}'
            '{{ "app/name" | key | toUpper }} {{ "a-b" | replaceAll("-", "+") }} {{ [1, 2] | join(",") }}\n')
    out, used, missing = run(text, b, syntax="jinja")
    assert out == "server n1 10.0.0.1:80\nSHOP a+b 1,2\n"
    assert used == {"health.service(web|passing)", "kv.get(app/name)"} and not missing


def test_jinja_first_pass_records_missing():
    out, used, missing = run('{% for s in services() %}{{ s.Name }}{% endfor %}x', syntax="jinja")
    assert out == "x" and missing == {"catalog.services()"}


def test_jinja_scratch_and_strict_undefined():
    assert run('{{ scratch.Set("a", 1) }}{{ scratch.Get("a") }}', syntax="jinja")[0] == "1"
    with pytest.raises(TemplateError):
        run("{{ nope.x }}", syntax="jinja", error_on_missing_key=True)


def test_jinja_syntax_error_is_a_template_error():
    with pytest.raises(TemplateError):
        Template("t.j2", "{% for %}", syntax="jinja")
