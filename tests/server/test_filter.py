"""Table-driven tests for meshctl.server.filter (go-bexpr `?filter=` expressions)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from meshctl.server.filter import FilterError, compile_filter

PREFIX = "Failed to create boolean expression evaluator: "


def _service_node(
    sid: str, name: str, node: str, *, tags: list[str], meta: dict[str, str], port: int, **extra: Any
) -> dict[str, Any]:
    """A /v1/catalog/service/:name entry (structs.ServiceNode JSON)."""
    rec: dict[str, Any] = {
        "ID": f"{node}-uuid",
        "Node": node,
        "Address": "10.0.0.1" if node == "node-1" else "10.0.0.2",
        "Datacenter": "dc1",
        "TaggedAddresses": {"lan": "10.0.0.1", "wan": "198.18.0.1"} if node == "node-1" else None,
        "NodeMeta": {"os": "linux", "rack": "r1"} if node == "node-1" else {"os": "darwin"},
        "ServiceKind": "",
        "ServiceID": sid,
        "ServiceName": name,
        "ServiceTags": tags,
        "ServiceAddress": "",
        "ServiceWeights": {"Passing": 1, "Warning": 1},
        "ServiceMeta": meta,
        "ServicePort": port,
        "ServiceSocketPath": "",
        "ServiceEnableTagOverride": False,
        "ServiceProxy": {"MeshGateway": {}, "Expose": {}},
        "ServiceConnect": {},
        "CreateIndex": 10,
        "ModifyIndex": 12,
    }
    rec.update(extra)
    return rec


CATALOG = [
    _service_node("web-1", "web", "node-1", tags=["primary", "v1"], meta={"version": "1", "team name": "edge"},
                  port=8080),
    _service_node("web-2", "web", "node-2", tags=["secondary"], meta={"version": "2"}, port=8081,
                  ServiceEnableTagOverride=True),
    _service_node("api-1", "api", "node-1", tags=[], meta={}, port=9090, ServiceAddress="10.0.0.9",
                  ServiceWeights={"Passing": 10, "Warning": 1}),
]


def _check(node: str, check_id: str, status: str, *, service: str = "", tags: list[str] | None = None,
           output: str = "") -> dict[str, Any]:
    """A HealthCheck JSON object."""
    return {
        "Node": node, "CheckID": check_id, "Name": check_id, "Status": status, "Notes": "", "Output": output,
        "ServiceID": service, "ServiceName": service.rsplit("-", 1)[0] if service else "",
        "ServiceTags": tags or [], "Type": "ttl" if service else "", "ExposedPort": 0, "Definition": {},
        "CreateIndex": 5, "ModifyIndex": 6,
    }


def _entry(node: str, sid: str, *, tags: list[str], meta: dict[str, str], port: int,
           checks: list[dict[str, Any]]) -> dict[str, Any]:
    """A /v1/health/service/:name entry {Node, Service, Checks}."""
    return {
        "Node": {"ID": f"{node}-uuid", "Node": node, "Address": "10.0.0.1", "Datacenter": "dc1",
                 "TaggedAddresses": {"lan": "10.0.0.1"}, "Meta": {"os": "linux" if node != "node-2" else "darwin"},
                 "CreateIndex": 1, "ModifyIndex": 1},
        "Service": {"ID": sid, "Service": "web", "Tags": tags, "Address": "", "Meta": meta, "Port": port,
                    "Weights": {"Passing": 1, "Warning": 1}, "EnableTagOverride": False, "Proxy": {},
                    "Connect": {}, "CreateIndex": 10, "ModifyIndex": 10},
        "Checks": checks,
    }


HEALTH = [
    _entry("node-1", "web-1", tags=["primary", "v1"], meta={"version": "1"}, port=8080, checks=[
        _check("node-1", "serfHealth", "passing", output="Agent alive and reachable"),
        _check("node-1", "service:web-1", "passing", service="web-1", tags=["primary", "v1"]),
    ]),
    _entry("node-2", "web-2", tags=["secondary"], meta={"version": "2"}, port=8081, checks=[
        _check("node-2", "serfHealth", "passing", output="Agent alive and reachable"),
        _check("node-2", "service:web-2", "critical", service="web-2", tags=["secondary"],
               output="dial tcp 10.0.0.2:8081: connect: connection refused"),
    ]),
    _entry("node-3", "web-3", tags=[], meta={}, port=8082, checks=[]),
]

# Agent /v1/agent/services values and /v1/health/node checks, from Consul's filtering docs.
AGENT_SERVICES = [
    {"ID": "redis1", "Service": "redis", "Tags": ["primary", "production"], "Meta": {"env": "production"},
     "Port": 1234, "Address": "", "Weights": {"Passing": 1, "Warning": 1}, "EnableTagOverride": False},
    {"ID": "redis3", "Service": "redis", "Tags": ["primary", "qa"], "Meta": {"env": "qa"}, "Port": 1234,
     "Address": "", "Weights": {"Passing": 1, "Warning": 1}, "EnableTagOverride": False},
]
NODE_CHECKS = [_check("node-1", "node-health", "critical"),
               _check("node-1", "svc-web-health", "warning", service="web-1")]


def _ids(records: list[dict[str, Any]], expr: str, key: Any) -> set[str]:
    pred = compile_filter(expr)
    return {key(r) for r in records if pred(r)}


CATALOG_CASES = [
    # == / != on strings, numbers (with coercion) and booleans
    ('ServiceName == "web"', {"web-1", "web-2"}),
    ('ServiceName != "web"', {"api-1"}),
    ('ServiceID == "WEB-1"', set()),  # case-sensitive values
    ("ServicePort == 8080", {"web-1"}),
    ('ServicePort == "8080"', {"web-1"}),
    ('ServicePort == "0x1f90"', {"web-1"}),  # strconv.ParseInt(s, 0, 64)
    ("ServicePort != 8080", {"web-2", "api-1"}),
    ('ServicePort == "abc"', set()),  # not coercible: no match either way
    ('ServicePort != "abc"', set()),
    ("ServiceWeights.Passing == 10", {"api-1"}),
    ("ServiceEnableTagOverride == true", {"web-2"}),
    ("ServiceEnableTagOverride == false", {"web-1", "api-1"}),
    ('ServiceEnableTagOverride == "T"', {"web-2"}),  # strconv.ParseBool spellings
    ("ServiceEnableTagOverride != true", {"web-1", "api-1"}),
    ('ServiceAddress == ""', {"web-1", "web-2"}),
    ("NodeMeta.os == linux", {"web-1", "api-1"}),  # unquoted value is taken literally
    # map selectors
    ('ServiceMeta.version == "1"', {"web-1"}),
    ('ServiceMeta["version"] == "2"', {"web-2"}),
    ("ServiceMeta[`version`] == `2`", {"web-2"}),
    ('ServiceMeta["team name"] == "edge"', {"web-1"}),
    ('ServiceMeta[ "team name" ] == "edge"', {"web-1"}),
    ('ServiceMeta.version != "1"', {"web-2", "api-1"}),  # missing key: != is true
    ('ServiceMeta.version is empty', {"api-1"}),
    ('ServiceMeta.version is not empty', {"web-1", "web-2"}),
    ('TaggedAddresses.wan == "198.18.0.1"', {"web-1", "api-1"}),  # node fields copied to each ServiceNode
    ("TaggedAddresses is empty", {"web-2"}),  # JSON null
    ('"version" in ServiceMeta', {"web-1", "web-2"}),  # `in` on a map tests keys
    ('"1" in ServiceMeta', set()),
    ('ServiceMeta contains "team name"', {"web-1"}),
    ("ServiceMeta is empty", {"api-1"}),
    ("ServiceMeta is not empty", {"web-1", "web-2"}),
    ("ServiceProxy.MeshGateway is empty", {"web-1", "web-2", "api-1"}),
    # list selectors
    ('"primary" in ServiceTags', {"web-1"}),
    ("primary in ServiceTags", {"web-1"}),
    ('"primary" not in ServiceTags', {"web-2", "api-1"}),
    ('ServiceTags contains "secondary"', {"web-2"}),
    ('ServiceTags not contains "secondary"', {"web-1", "api-1"}),
    ('"prim" in ServiceTags', set()),  # list elements compare whole
    ("ServiceTags is empty", {"api-1"}),
    ("ServiceTags is not empty", {"web-1", "web-2"}),
    ('ServiceTags == "primary"', set()),  # == on a list is not a valid comparison
    ('ServiceTags != "primary"', set()),
    ('ServiceTags.0 == "primary"', {"web-1"}),  # numeric segment indexes a list
    ('ServiceTags.1 == "v1"', {"web-1"}),
    # substring in / contains on strings
    ('"eb" in ServiceName', {"web-1", "web-2"}),
    ('ServiceName contains "ap"', {"api-1"}),
    ('ServiceName not contains "w"', {"api-1"}),
    ('"10.0.0" in ServiceAddress', {"api-1"}),
    # regex
    ('Node matches "^node-[12]$"', {"web-1", "web-2", "api-1"}),
    ('Node matches "2$"', {"web-2"}),
    ('ServiceName matches "eb"', {"web-1", "web-2"}),  # unanchored, like Go's regexp.Match
    ('ServiceName not matches "^w"', {"api-1"}),
    (r'ServiceID matches "^web-\\d$"', {"web-1", "web-2"}),  # "\\d" escape in a double-quoted string
    (r"ServiceID matches `^web-\d$`", {"web-1", "web-2"}),  # raw string
    ('ServicePort matches "80"', set()),  # regex on a number: no match either way
    ('ServiceMeta.version matches "."', {"web-1", "web-2"}),
    ('ServiceMeta.version not matches "1"', {"web-2", "api-1"}),  # missing key: not matches is true
    # missing fields: positive operators false, negations true
    ('NoSuchField == "x"', set()),
    ('NoSuchField != "x"', {"web-1", "web-2", "api-1"}),
    ("NoSuchField is empty", {"web-1", "web-2", "api-1"}),
    ('"x" in NoSuchField', set()),
    ('"x" not in NoSuchField', {"web-1", "web-2", "api-1"}),
    ('ServiceName.Sub == "web"', set()),  # path through a scalar
    ('servicename == "web"', set()),  # selectors are case-sensitive JSON field names
    # string escapes
    (r'ServiceMeta["team name"] == "\x65dge"', {"web-1"}),
    (r'ServiceMeta["team name"] == "\u0065d\147e"', {"web-1"}),
    ('ServiceMeta["team name"] == `edge`', {"web-1"}),
    # logic, precedence (not > and > or) and grouping
    ('ServiceName == "web" and ServicePort == 8081', {"web-2"}),
    ('ServiceName == "api" or ServicePort == 8081', {"api-1", "web-2"}),
    ('ServiceName == "api" or ServiceName == "web" and ServicePort == 8081', {"api-1", "web-2"}),
    ('(ServiceName == "api" or ServiceName == "web") and ServicePort == 8081', {"web-2"}),
    ('ServicePort == 8081 and ServiceName == "web" or ServiceName == "api"', {"api-1", "web-2"}),
    ('ServicePort == 8081 and (ServiceName == "web" or ServiceName == "api")', {"web-2"}),
    ('not ServiceName == "web" and ServicePort == 9090', {"api-1"}),
    ('not ServiceName == "web" or ServicePort == 8080', {"api-1", "web-1"}),
    ('not (ServiceName == "web" and ServicePort == 8080)', {"web-2", "api-1"}),
    ('not not ServiceName == "api"', {"api-1"}),
    ('not(ServiceName == "api")', {"web-1", "web-2"}),
    ('ServiceName == "web" and not "primary" in ServiceTags', {"web-2"}),
    ('((ServiceName == "web"))', {"web-1", "web-2"}),
    ('( (Node == "node-1") and (("v1" in ServiceTags) or ServicePort == 9090) )', {"web-1", "api-1"}),
    ('ServiceName == "web" and ServicePort == 8080 and "v1" in ServiceTags and NodeMeta.rack == r1', {"web-1"}),
    ('ServiceName == "x" or ServiceName == "y" or ServiceName == "api"', {"api-1"}),
    ('\n  ServiceName\t==\r\n"api"  ', {"api-1"}),
]


@pytest.mark.parametrize(("expr", "expected"), CATALOG_CASES)
def test_catalog_service_nodes(expr: str, expected: set[str]) -> None:
    assert _ids(CATALOG, expr, lambda r: r["ServiceID"]) == expected


HEALTH_CASES = [
    ('Service.ID == "web-1"', {"web-1"}),
    ('Service.Meta.version == "2"', {"web-2"}),
    ('Service.Meta.version is empty', {"web-3"}),
    ('Service.Tags contains "primary"', {"web-1"}),
    ('"secondary" in Service.Tags', {"web-2"}),
    ("Service.Port == 8082", {"web-3"}),
    ('Node.Node == "node-2"', {"web-2"}),
    ('Node.Meta.os == "linux"', {"web-1", "web-3"}),
    ('Node.TaggedAddresses.lan == "10.0.0.1"', {"web-1", "web-2", "web-3"}),
    # selectors through the Checks list: any element
    ('Checks.Status == "critical"', {"web-2"}),
    ('Checks.Status == "passing"', {"web-1", "web-2"}),
    ('Checks.Status != "passing"', {"web-2"}),  # some check not passing
    ('not Checks.Status != "passing"', {"web-1", "web-3"}),  # all checks passing (vacuous for none)
    ('not Checks.Status == "critical"', {"web-1", "web-3"}),
    ('"critical" in Checks.Status', {"web-2"}),
    ('"crit" in Checks.Status', {"web-2"}),  # `in` on each Status string is a substring test
    ('"critical" not in Checks.Status', {"web-1", "web-2"}),  # some check without it
    ('Checks.CheckID contains "serf"', {"web-1", "web-2"}),
    ('Checks.Output matches "connection refused$"', {"web-2"}),
    ('Checks.Output not matches "refused"', {"web-1", "web-2"}),
    ('"v1" in Checks.ServiceTags', {"web-1"}),  # list inside a list
    ('Checks.ServiceTags is not empty', {"web-1", "web-2"}),
    ('Checks is empty', {"web-3"}),
    ('Checks is not empty', {"web-1", "web-2"}),
    ('Checks.0.CheckID == "serfHealth"', {"web-1", "web-2"}),
    ('Checks.1.Status == "critical"', {"web-2"}),
    ('Checks.5.Status == "critical"', set()),
    ('Checks.Status is empty', set()),  # every Status is set; no element for web-3
    ('Service.Meta.version == "1" and "passing" in Checks.Status', {"web-1"}),
    ('Checks.ServiceID == "web-2" and Checks.Status == "critical"', {"web-2"}),
]


@pytest.mark.parametrize(("expr", "expected"), HEALTH_CASES)
def test_health_service_entries(expr: str, expected: set[str]) -> None:
    assert _ids(HEALTH, expr, lambda r: r["Service"]["ID"]) == expected


@pytest.mark.parametrize(
    ("records", "expr", "expected"),
    [
        (AGENT_SERVICES, 'Meta.env == "qa"', {"redis3"}),
        (AGENT_SERVICES, '"production" in Tags', {"redis1"}),
        (AGENT_SERVICES, "Port == 1234 and Weights.Passing == 1", {"redis1", "redis3"}),
        (NODE_CHECKS, 'ServiceName != ""', {"svc-web-health"}),
        (NODE_CHECKS, 'Status == "critical"', {"node-health"}),
        (NODE_CHECKS, "ServiceTags is empty", {"node-health", "svc-web-health"}),
    ],
)
def test_agent_and_check_records(records: list[dict[str, Any]], expr: str, expected: set[str]) -> None:
    assert _ids(records, expr, lambda r: r.get("ID") or r["CheckID"]) == expected


def test_float_and_null_values() -> None:
    rec = {"Coord": {"Error": 1.5, "Vec": [0.0, 0.25]}, "Note": None, "Nested": {"a": {"b": [{"c": "x"}]}}}
    assert compile_filter("Coord.Error == 1.5")(rec)
    assert compile_filter('Coord.Error == "1.50"')(rec)
    assert compile_filter("0.25 in Coord.Vec")(rec)
    assert not compile_filter("Coord.Error == 2")(rec)
    assert compile_filter("Note is empty")(rec)
    assert not compile_filter('Note == ""')(rec)
    assert compile_filter('Nested.a.b.c == "x"')(rec)
    assert compile_filter("-1 not in Coord.Vec")(rec)


ERROR_CASES = [
    ("", "1:1 (0)", "empty"),
    ("ServiceName", "1:12 (11)", "expected one of =="),
    ("ServiceName ==", "1:15 (14)", "expected a value"),
    ('ServiceName = "web"', "1:13 (12)", "unexpected character '='"),
    ('ServiceName == "web', "1:16 (15)", "Unterminated string literal"),
    ("ServiceName == `web", "1:16 (15)", "Unterminated string literal"),
    ('(ServiceName == "web"', "1:22 (21)", "Unmatched parentheses"),
    ('ServiceName == "web")', "1:21 (20)", "Unmatched parentheses"),
    ('ServiceName == "web" and', "1:25 (24)", "expected a selector"),
    ('ServiceName == "web" or or Node == "a"', "1:25 (24)", "expected a selector"),
    ('ServiceName == "web" Node == "a"', "1:22 (21)", "expected 'and', 'or'"),
    ('ServiceName == "a" AND Node == "b"', "1:20 (19)", "lower case"),
    ('"web" == ServiceName', "1:7 (6)", "expected 'in' or 'not in'"),
    ('"web" ServiceTags', "1:7 (6)", "expected 'in' or 'not in'"),
    ('"web" in "ServiceTags"', "1:10 (9)", "Invalid selector"),
    ('80 in 90', "1:7 (6)", "Invalid selector"),
    ('ServiceMeta[version] == "1"', "1:13 (12)", "Invalid index"),
    ('ServiceMeta["version" == "1"', "1:23 (22)", "Unclosed index"),
    ('ServiceMeta.my-key == "1"', "1:15 (14)", 'Meta["my-key"]'),
    ("ServicePort == 80x", "1:16 (15)", "Invalid number literal"),
    ("ServicePort == 080", "1:16 (15)", "Invalid number literal"),
    ('ServiceName is "web"', "1:16 (15)", "expected 'empty'"),
    ("ServiceName is not", "1:19 (18)", "expected 'empty'"),
    ('ServiceName not "web"', "1:13 (12)", "expected one of"),
    ("ServiceName contains", "1:21 (20)", "expected a value"),
    ('Node matches "("', "1:14 (13)", "regular expression"),
    (r'Node == "\q"', "1:10 (9)", "invalid escape"),
    (r'Node == "\x4"', "1:10 (9)", "invalid escape"),
    (r'Node == "\400"', "1:10 (9)", "invalid escape"),
    ("not", "1:4 (3)", "expected a selector"),
    ("()", "1:2 (1)", "expected a selector"),
    ('Node == "x" and\n  ]', "2:3 (18)", "unexpected character ']'"),
    ('Node == "é" and =', "1:17 (17)", "unexpected character '='"),  # byte offset, rune column
    ('.Node == "x"', "1:1 (0)", "unexpected character '.'"),
    ("Node == node-2", "1:13 (12)", "unexpected number '-2'"),  # unquoted values are identifiers
    ('_Node == "x"', "1:1 (0)", "unexpected character '_'"),
]


@pytest.mark.parametrize(("expr", "position", "reason"), ERROR_CASES)
def test_syntax_errors(expr: str, position: str, reason: str) -> None:
    with pytest.raises(FilterError) as info:
        compile_filter(expr)
    msg = str(info.value)
    assert msg.startswith(f"{PREFIX}{position}: "), msg
    assert reason in msg, msg


def test_error_is_value_error_and_message_shape() -> None:
    with pytest.raises(ValueError, match=r"^Failed to create boolean expression evaluator: \d+:\d+ \(\d+\): "):
        compile_filter("Foo ==")


def test_compiled_filters_are_cached() -> None:
    expr = 'ServiceMeta.version == "1" and "primary" in ServiceTags'
    pred = compile_filter(expr)
    assert compile_filter(expr) is pred
    assert [r["ServiceID"] for r in CATALOG if pred(r)] == ["web-1"]


def test_predicate_returns_bool_and_does_not_mutate() -> None:
    rec = CATALOG[0]
    snapshot = repr(rec)
    for expr, _ in CATALOG_CASES:
        assert type(compile_filter(expr)(rec)) is bool, expr
    assert repr(rec) == snapshot


def test_keywords_need_not_be_separated_from_parentheses() -> None:
    pred = compile_filter('(ServiceName == "api")or(ServiceName == "web" and not(ServicePort == 8080))')
    assert {r["ServiceID"] for r in CATALOG if pred(r)} == {"api-1", "web-2"}


def test_error_message_quotes_selector() -> None:
    with pytest.raises(FilterError, match=re.escape("selector 'Service.Meta'")):
        compile_filter("Service.Meta version")


def test_long_chains_and_deep_nesting() -> None:
    chain = " or ".join(f'ServicePort == {p}' for p in range(5000)) + ' or ServiceName == "web"'
    assert {r["ServiceID"] for r in CATALOG if compile_filter(chain)(r)} == {"web-1", "web-2"}
    nested = "(" * 50 + 'ServiceName == "api"' + ")" * 50
    assert [r["ServiceID"] for r in CATALOG if compile_filter(nested)(r)] == ["api-1"]
    assert compile_filter("not " * 51 + 'ServiceName == "api"')(CATALOG[0])
    with pytest.raises(FilterError, match="nested too deeply"):
        compile_filter("(" * 5000 + 'ServiceName == "api"' + ")" * 5000)
    with pytest.raises(FilterError, match="nested too deeply"):
        compile_filter("not " * 5000 + 'ServiceName == "api"')
