"""The HELPERS table, make_helpers, scratch and function_denylist."""

import pytest

from meshctl.template.funcs import HELPERS, FunctionDisabled, Scratch, apply_denylist, make_helpers

CONSUL_TEMPLATE_HELPERS = """
base64Decode base64Encode base64URLDecode base64URLEncode byKey byPort byTag byMeta contains
containsAll containsAny containsNone containsNotAll env mustEnv envOrDefault explode explodeMap
mergeMap mergeMapWithOverride in indent loop join trim trimPrefix trimSuffix trimSpace parseBool
parseFloat parseInt parseJSON parseUint parseYAML plugin regexReplaceAll regexMatch replaceAll
sha256Hex md5sum hmacSHA256Hex timestamp toLower toJSON toJSONPretty toUnescapedJSON
toUnescapedJSONPretty toTitle toTOML toUpper toYAML split splitToMap sockaddr writeToFile
add subtract multiply divide modulo minimum maximum scratch
""".split()


def test_every_consul_template_helper_name_is_present():
    assert sorted(set(CONSUL_TEMPLATE_HELPERS) - set(HELPERS)) == []


def test_helpers_are_callables():
    assert all(callable(f) for f in HELPERS.values())


def test_make_helpers_gives_each_execution_its_own_scratch():
    a, b = make_helpers(), make_helpers()
    a["scratch"]().Set("k", "v")
    assert b["scratch"]().Key("k") is False


def test_make_helpers_uses_the_given_scratch():
    pad = Scratch()
    assert make_helpers(scratch=pad)["scratch"]() is pad


def test_scratch_key_true_even_for_nil():
    s = Scratch()
    assert s.Key("foo") is False
    s.Set("foo", None)
    assert s.Key("foo") is True


def test_scratch_get_missing_is_none():
    assert Scratch().Get("foo") is None


def test_scratch_set_overwrites_and_renders_empty():
    s = Scratch()
    assert s.Set("foo", "bar") == ""
    s.Set("foo", "baz")
    assert s.Get("foo") == "baz"


def test_scratch_setx_does_not_overwrite():
    s = Scratch()
    s.SetX("foo", "bar")
    s.SetX("foo", "baz")
    assert s.Get("foo") == "bar"


def test_scratch_mapset_overwrites():
    s = Scratch()
    s.MapSet("vars", "foo", "bar")
    s.MapSet("vars", "foo", "baz")
    assert s.Get("vars") == {"foo": "baz"}


def test_scratch_mapsetx_does_not_overwrite():
    s = Scratch()
    s.MapSetX("vars", "foo", "bar")
    s.MapSetX("vars", "foo", "baz")
    assert s.Get("vars") == {"foo": "bar"}


def test_scratch_mapset_on_a_non_map_is_an_error():
    s = Scratch()
    s.Set("vars", "string")
    with pytest.raises(TypeError, match='"vars" is not a map'):
        s.MapSet("vars", "foo", "bar")


def test_scratch_map_values_sorted_by_key():
    s = Scratch()
    s.MapSet("vars", "b", 2)
    s.MapSet("vars", "a", 1)
    s.MapSet("vars", "c", 3)
    assert s.MapValues("vars") == [1, 2, 3]


def test_scratch_map_values_of_missing_map_is_none():
    assert Scratch().MapValues("nope") is None


def test_denylist_exact_name_errors_function_is_disabled():
    funcs = apply_denylist(HELPERS, ["plugin"])
    with pytest.raises(FunctionDisabled, match="function is disabled"):
        funcs["plugin"]("/bin/true")


def test_denylist_glob_matches_several_names():
    funcs = apply_denylist(HELPERS, ["to*JSON*"])
    for name in ("toJSON", "toJSONPretty", "toUnescapedJSON", "toUnescapedJSONPretty"):
        with pytest.raises(FunctionDisabled):
            funcs[name]({})
    assert funcs["toYAML"]({"a": "b"}) == "a: b"


def test_denylist_does_not_modify_the_input_table():
    apply_denylist(HELPERS, ["*"])
    assert HELPERS["toUpper"]("a") == "A"


def test_denylist_unknown_names_are_ignored():
    assert set(apply_denylist(HELPERS, ["nope", ""])) == set(HELPERS)


def test_spew_sdump_describes_values():
    assert "'x'" in HELPERS["spew_sdump"]("x")


def test_spew_dump_prints_to_stdout_and_renders_empty(capsys):
    assert HELPERS["spew_dump"]({"a": 1}) == ""
    assert "{'a': 1}" in capsys.readouterr().out
