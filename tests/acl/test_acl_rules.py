"""The policy language and the authorizer: parsing, errors naming the line, the rule matrix."""

from __future__ import annotations

import itertools

import pytest

from meshctl.server.acl.authorizer import Authorizer, compile_rules
from meshctl.server.acl.policy import GLOBAL_MANAGEMENT_RULES, SEGMENTS, PolicyError, parse_rules

ACCESSES = ("read", "list", "write")


def authz(text: str, default_allow: bool = False) -> Authorizer:
    return Authorizer(compile_rules([text]), default_allow, "acc")


def granted(level: str, access: str) -> bool:
    return {"read": {"read"}, "list": {"read", "list"}, "write": {"read", "list", "write"}, "deny": set()}[level] \
        .__contains__(access)


@pytest.mark.parametrize("kind,level,form", [
    (kind, level, form) for kind in SEGMENTS for level in ("read", "write", "deny") + (("list",) if kind == "key" else ())
    for form in ("exact", "prefix")])
def test_rule_matrix_segment_level_and_form(kind: str, level: str, form: str) -> None:
    name = "web-frontend/x" if kind == "key" else "web-frontend"
    target = name if form == "exact" else "web-"
    rule = f'{kind}{"_prefix" if form == "prefix" else ""} "{target}" {{ policy = "{level}" }}'
    a = authz(rule)
    for access in ACCESSES:
        assert a.allowed(kind, name, access) is granted(level, access), (rule, access)
        assert a.allowed(kind, "other", access) is False  # no rule: the default policy (deny)
    if form == "exact":
        assert a.allowed(kind, name + "2", "read") is False  # an exact rule is not a prefix
    else:
        assert a.allowed(kind, "web-x", "read") is granted(level, "read")


@pytest.mark.parametrize("kind,level", list(itertools.product(("acl", "operator", "keyring", "mesh", "peering"),
                                                               ("read", "write", "deny"))))
def test_single_value_resources(kind: str, level: str) -> None:
    a = authz(f'{kind} = "{level}"')
    assert a.allowed(kind, "", "read") is granted(level, "read")
    assert a.allowed(kind, "", "write") is granted(level, "write")


def test_exact_beats_prefix_and_longest_prefix_wins() -> None:
    a = authz('key_prefix "" { policy = "read" }\nkey_prefix "app/" { policy = "write" }\n'
              'key_prefix "app/secret/" { policy = "deny" }\nkey "app/secret/ok" { policy = "read" }')
    assert a.allowed("key", "zzz", "read") and not a.allowed("key", "zzz", "write")
    assert a.allowed("key", "app/x", "write")
    assert not a.allowed("key", "app/secret/x", "read")
    assert a.allowed("key", "app/secret/ok", "read") and not a.allowed("key", "app/secret/ok", "write")


def test_merging_policies_deny_beats_write_beats_read() -> None:
    merged = Authorizer(compile_rules(['key "k" { policy = "read" }', 'key "k" { policy = "write" }']), False)
    assert merged.allowed("key", "k", "write")
    merged = Authorizer(compile_rules(['key "k" { policy = "write" }', 'key "k" { policy = "deny" }']), False)
    assert not merged.allowed("key", "k", "read")


def test_default_allow_grants_everything_but_acl_management() -> None:
    a = authz("", default_allow=True)
    assert a.allowed("key", "x", "write") and a.allowed("operator", "", "write")
    assert not a.allowed("acl", "", "read")
    assert not authz('key "x" { policy = "deny" }', default_allow=True).allowed("key", "x", "read")


def test_global_management_grants_everything() -> None:
    a = authz(GLOBAL_MANAGEMENT_RULES)
    for kind in SEGMENTS:
        assert a.allowed(kind, "anything", "write")
    assert a.allowed("acl", "", "write") and a.allowed("operator", "", "write")


def test_service_and_node_identities() -> None:
    a = Authorizer(compile_rules([], services=["web"], nodes=["n1"]), False)
    assert a.allowed("service", "web", "write") and a.allowed("service", "web-sidecar-proxy", "write")
    assert a.allowed("service", "db", "read") and not a.allowed("service", "db", "write")
    assert a.allowed("node", "n1", "write") and a.allowed("node", "n2", "read") and not a.allowed("node", "n2", "write")


def test_json_rules_equal_hcl_rules() -> None:
    hcl = parse_rules('key_prefix "a/" { policy = "list" }\nservice "web" { policy = "write" }\noperator = "read"')
    js = parse_rules('{"key_prefix": {"a/": {"policy": "list"}}, "service": {"web": {"policy": "write"}}, '
                     '"operator": "read"}')
    assert hcl == js


@pytest.mark.parametrize("text,line,words", [
    ('key_prefix "" {\n  policy = "read"\n}\nservice "web" {\n  policy = "bogus"\n}\n', 5, 'service policy "bogus"'),
    ('key "a" {\n policy = \n}\n', 2, ""),
    ('operator = "read"\nacl = "list"\n', 2, 'acl policy "list"'),
    ('node "x" {\n  policy = "read"\n}\nfrobnicate "y" { policy = "read" }\n', 4, 'unknown rule type "frobnicate"'),
    ('{\n "key_prefix": {\n  "a/": {\n   "policy": "nope"\n  }\n }\n}', 4, 'key_prefix policy "nope"'),
    ('{\n "key": {"a": {"policy": "read"}},\n "x" 1\n}', 3, ""),
    ('service "x" { policy = "list" }', 1, 'service policy "list"'),
])
def test_malformed_rules_name_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_rules(text)
    assert str(info.value).startswith(f"line {line}: "), str(info.value)
    assert words in str(info.value)


def test_memoised_answers_stay_correct() -> None:
    a = authz('key_prefix "a" { policy = "read" }')
    for _ in range(3):
        assert a.allowed("key", "abc", "read") and not a.allowed("key", "abc", "write")
        assert not a.allowed("key", "b", "read")
