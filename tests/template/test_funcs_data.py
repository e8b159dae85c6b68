"""Grouping, membership, maps and loop: examples from docs/templating-language.md and Go semantics."""

from dataclasses import dataclass, field

import pytest

from meshctl.template.funcs import HELPERS as H
from meshctl.template.funcs import field as read_field


@dataclass
class KeyPair:
    Path: str
    Key: str
    Value: str
    Flags: int = 0


@dataclass
class HealthService:
    Name: str
    ID: str
    Port: int = 0
    Tags: list = field(default_factory=list)
    ServiceMeta: dict = field(default_factory=dict)


def pair(key: str, value: str = "1", prefix: str = "groups") -> KeyPair:
    return KeyPair(Path=f"{prefix}/{key}", Key=key, Value=value)


def test_field_reads_dicts_and_attributes():
    assert read_field({"Name": "web"}, "Name") == "web"
    assert read_field(HealthService("web", "web-1"), "Name") == "web"
    assert read_field({}, "Name") is None


def test_by_key_doc_example_groups_by_top_directory_and_strips_it():
    pairs = [pair("elasticsearch/es1"), pair("elasticsearch/es2"), pair("elasticsearch/es3")]
    grouped = H["byKey"](pairs)
    assert list(grouped) == ["elasticsearch"]
    assert [(k, p.Key, p.Value) for k, p in grouped["elasticsearch"].items()] == [
        ("es1", "es1", "1"),
        ("es2", "es2", "1"),
        ("es3", "es3", "1"),
    ]


def test_by_key_drops_keys_with_nothing_after_the_top_segment():
    grouped = H["byKey"]([pair("top"), pair("top/"), pair("other/a/b")])
    assert list(grouped) == ["other"]
    assert list(grouped["other"]) == ["a/b"]


def test_by_key_does_not_modify_the_input_pairs():
    p = pair("a/b")
    H["byKey"]([p])
    assert p.Key == "a/b"


def test_by_key_accepts_dict_records():
    grouped = H["byKey"]([{"Key": "redis/a/b", "Value": "3"}])
    assert grouped == {"redis": {"a/b": {"Key": "a/b", "Value": "3"}}}


def test_by_key_keys_are_sorted():
    grouped = H["byKey"]([pair("z/1"), pair("a/2"), pair("m/3")])
    assert list(grouped) == ["a", "m", "z"]


def test_by_tag_groups_services_by_each_tag_sorted():
    web1 = HealthService("web", "web-1", Tags=["prod", "blue"])
    web2 = HealthService("web", "web-2", Tags=["prod"])
    grouped = H["byTag"]([web1, web2])
    assert list(grouped) == ["blue", "prod"]
    assert grouped["prod"] == [web1, web2]
    assert grouped["blue"] == [web1]


def test_by_tag_accepts_catalog_snippets_as_dicts():
    grouped = H["byTag"]([{"Name": "consul", "Tags": []}, {"Name": "web", "Tags": ["a"]}])
    assert grouped == {"a": [{"Name": "web", "Tags": ["a"]}]}


def test_by_tag_of_nothing_is_empty():
    assert H["byTag"](None) == {}
    assert H["byTag"]([]) == {}


def test_by_tag_rejects_a_non_list():
    with pytest.raises(TypeError, match="byTag: wrong argument type"):
        H["byTag"]("web")


def test_by_port_groups_by_port_with_int_keys_sorted():
    a = HealthService("web", "a", Port=8080)
    b = HealthService("web", "b", Port=80)
    c = HealthService("web", "c", Port=8080)
    grouped = H["byPort"]([a, b, c])
    assert list(grouped) == [80, 8080]
    assert grouped[8080] == [a, c]


def test_by_meta_doc_example():
    dev1 = HealthService("redis", "redis-dev-1", ServiceMeta={"environment": "dev", "shard_number": "1"})
    prod1 = HealthService("redis", "redis-prod-1", ServiceMeta={"environment": "prod", "shard_number": "1"})
    prod2 = HealthService("redis", "redis-prod-2", ServiceMeta={"environment": "prod", "shard_number": "2"})
    grouped = H["byMeta"]("environment,shard_number|int", [dev1, prod1, prod2])
    assert grouped == {"dev_00001": [dev1], "prod_00001": [prod1], "prod_00002": [prod2]}
    assert list(grouped) == ["dev_00001", "prod_00001", "prod_00002"]


def test_by_meta_missing_value_uses_placeholder_or_zero():
    svc = HealthService("redis", "r", ServiceMeta={})
    assert list(H["byMeta"]("environment,shard|int", [svc])) == ["_no_environment__00000"]


def test_by_meta_replaces_characters_outside_key_alphabet():
    svc = HealthService("redis", "r", ServiceMeta={"zone": "eu west.1"})
    assert list(H["byMeta"]("zone", [svc])) == ["eu_west_1"]


def test_by_meta_int_of_non_number_is_an_error():
    svc = HealthService("redis", "r", ServiceMeta={"shard": "one"})
    with pytest.raises(ValueError, match="cannot parse one as number"):
        H["byMeta"]("shard|int", [svc])


def test_contains_doc_example_pipe_form():
    assert H["contains"]("production", ["web", "production"]) is True


def test_in_doc_example():
    assert H["in"](["web", "production"], "production") is True


def test_in_string_is_substring_test():
    assert H["in"]("foo.bar", "o.b") is True


def test_in_compares_only_same_kind():
    assert H["in"]([1, 2], 2) is True
    assert H["in"]([1.5], 1.5) is True
    assert H["in"]([1, 2], 2.0) is False
    assert H["in"](["1"], 1) is False


def test_in_never_matches_booleans_like_go():
    assert H["in"]([True], True) is False


def test_in_map_is_false():
    assert H["in"]({"a": 1}, "a") is False


def test_contains_all():
    assert H["containsAll"](["a", "b"], ["a", "b", "c"]) is True
    assert H["containsAll"](["a", "z"], ["a", "b", "c"]) is False


def test_contains_all_with_no_needles_is_true():
    assert H["containsAll"]([], ["a"]) is True


def test_contains_any():
    assert H["containsAny"](["z", "b"], ["a", "b"]) is True
    assert H["containsAny"](["z"], ["a", "b"]) is False


def test_contains_any_with_no_needles_is_false():
    assert H["containsAny"]([], ["a"]) is False


def test_contains_none():
    assert H["containsNone"](["x", "y"], ["a", "b"]) is True
    assert H["containsNone"](["x", "a"], ["a", "b"]) is False


def test_contains_none_with_no_needles_is_true():
    assert H["containsNone"]([], ["a"]) is True


def test_contains_not_all():
    assert H["containsNotAll"](["a", "x"], ["a", "b"]) is True
    assert H["containsNotAll"](["a", "b"], ["a", "b"]) is False


def test_contains_not_all_with_no_needles_is_false():
    assert H["containsNotAll"]([], ["a"]) is False


def test_explode_builds_nested_map():
    pairs = [
        KeyPair("config/admin/port", "admin/port", "1234"),
        KeyPair("config/maxconns", "maxconns", "5"),
        KeyPair("config/minconns", "minconns", "2"),
    ]
    assert H["explode"](pairs) == {"admin": {"port": "1234"}, "maxconns": "5", "minconns": "2"}


def test_explode_key_both_leaf_and_folder_is_an_error():
    pairs = [KeyPair("c/a", "a", "x"), KeyPair("c/a/b", "a/b", "y")]
    with pytest.raises(ValueError, match='explode: not a map: "a/b": "a" already has value "x"'):
        H["explode"](pairs)


def test_explode_ignores_folder_entries():
    assert H["explode"]([KeyPair("c/a/", "a/", "")]) == {"a": {}}


def test_explode_map_doc_example():
    assert H["explodeMap"]({"foo/bar": "a", "foo/baz": "b"}) == {"foo": {"bar": "a", "baz": "b"}}


def test_explode_map_processes_keys_in_sorted_order():
    with pytest.raises(ValueError, match="explodeMap: not a map"):
        H["explodeMap"]({"a/b": "2", "a": "1"})


def test_merge_map_argument_wins_and_piped_fills_gaps():
    base = {"a": {"b": "base"}, "keep": "1"}
    overrides = {"a": {"b": "override", "c": "new"}, "extra": "2"}
    merged = H["mergeMap"](base, overrides)
    assert merged == {"a": {"b": "base", "c": "new"}, "extra": "2", "keep": "1"}


def test_merge_map_fills_empty_values_of_the_argument():
    assert H["mergeMap"]({"a": ""}, {"a": "x"}) == {"a": "x"}


def test_merge_map_updates_the_argument_in_place_like_go():
    base = {"a": "1"}
    H["mergeMap"](base, {"b": "2"})
    assert base == {"a": "1", "b": "2"}


def test_merge_map_with_override_piped_wins():
    base = {"a": {"b": "base", "d": "kept"}, "keep": "1"}
    overrides = {"a": {"b": "override"}, "keep": "2"}
    merged = H["mergeMapWithOverride"](base, overrides)
    assert merged == {"a": {"b": "override", "d": "kept"}, "keep": "2"}


def test_merge_map_result_keys_are_sorted():
    assert list(H["mergeMap"]({"z": "1"}, {"a": "2"})) == ["a", "z"]


def test_loop_one_argument_counts_from_zero():
    assert list(H["loop"](5)) == [0, 1, 2, 3, 4]


def test_loop_doc_example_two_arguments():
    assert list(H["loop"](5, 8)) == [5, 6, 7]


def test_loop_accepts_numeric_strings():
    assert list(H["loop"]("3")) == [0, 1, 2]


def test_loop_is_an_iterator_not_a_list():
    it = H["loop"](2)
    assert next(it) == 0
    assert not isinstance(it, list)


def test_loop_rejects_floats():
    with pytest.raises(TypeError, match="loop: bad argument type"):
        H["loop"](2.5)


def test_loop_wrong_argument_count():
    with pytest.raises(TypeError, match="expected 1 or 2, but got 3"):
        H["loop"](1, 2, 3)
