"""toJSON/toYAML/toTOML/parseJSON/parseYAML: docs examples and Go encoding rules."""

from dataclasses import dataclass

import pytest

from meshctl.template.funcs import HELPERS as H
from meshctl.template.funcs_format import go_format_float

CONFIG = {"minconns": "2", "admin": {"port": "1234"}, "maxconns": "5"}


@dataclass
class KeyPair:
    Key: str
    Value: str


def test_to_json_doc_example_compact_sorted():
    assert H["toJSON"](CONFIG) == '{"admin":{"port":"1234"},"maxconns":"5","minconns":"2"}'


def test_to_json_pretty_doc_example():
    assert H["toJSONPretty"](CONFIG) == (
        '{\n  "admin": {\n    "port": "1234"\n  },\n  "maxconns": "5",\n  "minconns": "2"\n}'
    )


def test_to_json_escapes_html_characters():
    assert H["toJSON"]({"q": "a?b=c&d=<e>"}) == '{"q":"a?b=c\\u0026d=\\u003ce\\u003e"}'


def test_to_unescaped_json_doc_example():
    value = {**CONFIG, "queryparams": "a?b=c&d=e"}
    assert H["toUnescapedJSON"](value) == (
        '{"admin":{"port":"1234"},"maxconns":"5","minconns":"2","queryparams":"a?b=c&d=e"}'
    )


def test_to_unescaped_json_pretty_doc_example():
    value = {**CONFIG, "queryparams": "a?b=c&d=e"}
    assert H["toUnescapedJSONPretty"](value) == (
        '{\n  "admin": {\n    "port": "1234"\n  },\n  "maxconns": "5",\n  "minconns": "2",\n'
        '  "queryparams": "a?b=c&d=e"\n}'
    )


def test_to_json_pretty_empty_containers_stay_inline():
    assert H["toJSONPretty"]({"a": [], "b": {}}) == '{\n  "a": [],\n  "b": {}\n}'


def test_to_json_numbers_like_go():
    assert H["toJSON"]([1, 1.0, 2.5, 1e21, 1e-7, 100000000.0]) == "[1,1,2.5,1e+21,1e-7,100000000]"


def test_to_json_control_characters_and_line_separators():
    assert H["toJSON"]("a\nb\x01\u2028") == '"a\\nb\\u0001\\u2028"'


def test_to_json_scalars_and_null():
    assert H["toJSON"](None) == "null"
    assert H["toJSON"](True) == "true"
    assert H["toJSON"]("x") == '"x"'


def test_to_json_struct_keeps_field_order():
    assert H["toJSON"]([KeyPair(Key="z", Value="1")]) == '[{"Key":"z","Value":"1"}]'


def test_to_json_nan_is_an_error():
    with pytest.raises(ValueError, match="json: unsupported value: NaN"):
        H["toJSON"](float("nan"))


def test_to_yaml_doc_example():
    assert H["toYAML"](CONFIG) == 'admin:\n  port: "1234"\nmaxconns: "5"\nminconns: "2"'


def test_to_yaml_explode_map_doc_example():
    assert H["toYAML"](H["explodeMap"]({"foo/bar": "a", "foo/baz": "b"})) == "foo:\n  bar: a\n  baz: b"


def test_to_yaml_lists_are_not_indented_under_keys():
    assert H["toYAML"]({"a": [1, 2]}) == "a:\n- 1\n- 2"


def test_to_yaml_quotes_strings_that_look_like_other_types_with_double_quotes():
    assert (
        H["toYAML"]({"a": "true", "b": "", "c": "1.5", "d": "null"})
        == 'a: "true"\nb: ""\nc: "1.5"\nd: "null"'
    )


def test_to_yaml_multiline_strings_use_literal_block():
    assert H["toYAML"]({"a": "x\ny"}) == "a: |-\n  x\n  y"


def test_to_yaml_floats_formatted_like_go():
    assert H["toYAML"]({"a": 8080.0, "b": 1e6}) == "a: 8080\nb: 1e+06"


def test_to_yaml_null_and_empty():
    assert H["toYAML"](None) == "null"
    assert H["toYAML"]({}) == "{}"


def test_to_yaml_map_keys_sorted_with_numbers_compared_numerically():
    assert H["toYAML"]({"a10": 1, "a2": 2}) == "a2: 2\na10: 1"


def test_to_yaml_struct_fields_are_lowercased():
    assert H["toYAML"](KeyPair(Key="k", Value="v")) == "key: k\nvalue: v"


def test_to_toml_doc_example():
    assert H["toTOML"](CONFIG) == 'maxconns = "5"\nminconns = "2"\n\n[admin]\n  port = "1234"'


def test_to_toml_nested_tables_indent_by_depth():
    assert H["toTOML"]({"a": {"b": {"c": 1}}}) == "[a]\n  [a.b]\n    c = 1"


def test_to_toml_arrays_bools_floats():
    assert H["toTOML"]({"l": [1, 2], "t": True, "f": 1.0}) == "f = 1.0\nl = [1, 2]\nt = true"


def test_to_toml_array_of_tables():
    assert H["toTOML"]({"s": [{"n": 1}, {"n": 2}]}) == "[[s]]\n  n = 1\n\n[[s]]\n  n = 2"


def test_to_toml_quotes_keys_and_escapes_strings():
    assert H["toTOML"]({"a b": 'say "hi"\n'}) == '"a b" = "say \\"hi\\"\\n"'


def test_to_toml_top_level_must_be_a_map():
    with pytest.raises(ValueError, match="top-level values must be Go maps or structs"):
        H["toTOML"]([1, 2])


def test_parse_json_object():
    assert H["parseJSON"]('{"name": "web", "tags": ["a"]}') == {"name": "web", "tags": ["a"]}


def test_parse_json_numbers_are_float64_like_go():
    value = H["parseJSON"]('{"port": 8080}')
    assert value == {"port": 8080.0}
    assert isinstance(value["port"], float)


def test_parse_json_empty_is_empty_map():
    assert H["parseJSON"]("") == {}


def test_parse_json_invalid_is_an_error():
    with pytest.raises(ValueError):
        H["parseJSON"]("{nope")


def test_parse_json_rejects_nan_literal():
    with pytest.raises(ValueError):
        H["parseJSON"]("NaN")


def test_parse_yaml_map():
    assert H["parseYAML"]("name: web\nport: 8080\ntags: [a, b]") == {
        "name": "web",
        "port": 8080,
        "tags": ["a", "b"],
    }


def test_parse_yaml_empty_is_empty_map():
    assert H["parseYAML"]("") == {}


def test_parse_yaml_keeps_timestamps_as_strings():
    assert H["parseYAML"]("d: 2001-12-14") == {"d": "2001-12-14"}


def test_parse_yaml_invalid_is_an_error():
    with pytest.raises(ValueError):
        H["parseYAML"]("a: [1, 2")


def test_go_format_float_matches_fmt_v():
    assert [go_format_float(f) for f in (1.0, 0.5, 123456.0, 1e6, 1234567.0, 1e-5, -2.5)] == [
        "1",
        "0.5",
        "123456",
        "1e+06",
        "1.234567e+06",
        "1e-05",
        "-2.5",
    ]
