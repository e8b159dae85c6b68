"""consul-template string helpers: expected values from docs/templating-language.md and Go's strings/strconv."""

import pytest

from meshctl.template.funcs import HELPERS as H


def test_base64_encode_doc_example():
    assert H["base64Encode"]("hello") == "aGVsbG8="


def test_base64_decode_doc_example():
    assert H["base64Decode"]("aGVsbG8=") == "hello"


def test_base64_decode_ignores_newlines_like_go():
    assert H["base64Decode"]("aGVs\nbG8=\r\n") == "hello"


def test_base64_decode_rejects_bad_input():
    with pytest.raises(ValueError, match="base64Decode: illegal base64 data"):
        H["base64Decode"]("not base64!")


def test_base64_decode_requires_padding():
    with pytest.raises(ValueError, match="illegal base64 data"):
        H["base64Decode"]("aGVsbG8")


def test_base64_url_decode_doc_example():
    assert H["base64URLDecode"]("aGVsbG8=") == "hello"


def test_base64_url_encode_uses_url_alphabet():
    assert H["base64URLEncode"]("\xfb\xff") == "w7vDvw=="
    assert H["base64URLEncode"]("??>") == "Pz8-"
    assert H["base64Encode"]("??>") == "Pz8+"


def test_base64_url_decode_rejects_standard_alphabet():
    with pytest.raises(ValueError, match="base64URLDecode"):
        H["base64URLDecode"]("Pz8+")


def test_base64_decode_keeps_raw_bytes_round_trip():
    decoded = H["base64Decode"]("/w==")
    assert decoded.encode("utf-8", "surrogateescape") == b"\xff"
    assert H["base64Encode"](decoded) == "/w=="


def test_sha256hex_doc_example():
    assert H["sha256Hex"]("bladibla") == "54cf4c66bcabb5c20e25331c01dd600b73369e97a947861bd8d3a0e0b8b3d70b"


def test_md5sum_doc_example():
    assert H["md5sum"]("myString") == "91c65b6feeb5a6ad66b30e2ebd9405e1"


def test_hmac_sha256_hex_takes_message_then_key():
    expected = "6116e95f2827172aa6ef8b22b883f6a77e966aefc129c6b8228ebd0aac74e98d"
    assert H["hmacSHA256Hex"]("somemessage", "somekey") == expected


def test_trim_doc_example():
    assert H["trim"]("!!", "hello world!!") == "hello world"


def test_trim_cutset_is_a_set_of_characters():
    assert H["trim"]("xy", "yxhixy") == "hi"


def test_trim_prefix_doc_example():
    assert H["trimPrefix"]("hello", "hello world!!") == " world!!"


def test_trim_suffix_doc_example():
    assert H["trimSuffix"]("world!!", "hello world!!") == "hello "


def test_trim_space_strips_whitespace_tabs_newlines():
    assert H["trimSpace"]("\t  v1.2 \n\r\n") == "v1.2"


def test_trim_space_keeps_characters_go_does_not_consider_space():
    assert H["trimSpace"]("\x1fa\x1f") == "\x1fa\x1f"


def test_split_doc_example_trims_first():
    assert H["split"]("\n", "foo\nbar\n") == ["foo", "bar"]


def test_split_empty_string_is_empty_list():
    assert H["split"](",", "  ") == []


def test_split_keeps_empty_fields():
    assert H["split"](",", "a,,b") == ["a", "", "b"]


def test_split_on_empty_separator_splits_characters():
    assert H["split"]("", "abc") == ["a", "b", "c"]


def test_split_to_map_doc_example():
    assert H["splitToMap"]("\n", ":", "foo:bar\nbaz:bat\n") == {"baz": "bat", "foo": "bar"}


def test_split_to_map_skips_items_without_separator_and_splits_once():
    assert H["splitToMap"](",", "=", "a=1,junk,b=x=y") == {"a": "1", "b": "x=y"}


def test_split_to_map_empty_is_empty_map():
    assert H["splitToMap"](",", "=", "") == {}


def test_join_pipe_form():
    assert H["join"](",", ["a", "b", "c"]) == "a,b,c"


def test_join_rejects_a_string():
    with pytest.raises(TypeError):
        H["join"](",", "abc")


def test_indent_prefixes_each_non_empty_line():
    assert H["indent"](4, "a: 1\nb:\n  c: 2") == "    a: 1\n    b:\n      c: 2"


def test_indent_leaves_empty_lines_alone():
    assert H["indent"](2, "a\n\nb\n") == "  a\n\n  b\n"


def test_indent_negative_is_an_error():
    with pytest.raises(ValueError, match="indent value must be a positive integer"):
        H["indent"](-1, "a")


def test_replace_all_doc_example():
    assert H["replaceAll"](".", "_", "foo.bar") == "foo_bar"


def test_replace_all_with_empty_old_inserts_between_runes_like_go():
    assert H["replaceAll"]("", "-", "ab") == "-a-b-"


def test_to_lower():
    assert H["toLower"]("HeLLo World") == "hello world"


def test_to_upper():
    assert H["toUpper"]("hello") == "HELLO"


def test_to_upper_uses_simple_case_mapping_like_go():
    assert H["toUpper"]("straße") == "STRAßE"


def test_to_title_capitalises_words_without_lowering_the_rest():
    assert H["toTitle"]("hello wORLD-foo") == "Hello WORLD-Foo"


def test_parse_bool_doc_example():
    assert H["parseBool"]("true") is True


def test_parse_bool_accepts_go_spellings():
    assert [H["parseBool"](s) for s in ("1", "t", "T", "TRUE", "True", "0", "f", "FALSE")] == [
        True,
        True,
        True,
        True,
        True,
        False,
        False,
        False,
    ]


def test_parse_bool_empty_is_false():
    assert H["parseBool"]("") is False


def test_parse_bool_rejects_yes():
    with pytest.raises(ValueError, match='parseBool: strconv.ParseBool: parsing "yes": invalid syntax'):
        H["parseBool"]("yes")


def test_parse_float_doc_example():
    assert H["parseFloat"]("1.2") == 1.2


def test_parse_float_empty_is_zero():
    assert H["parseFloat"]("") == 0.0


def test_parse_float_rejects_python_only_syntax():
    for bad in ("1_000", " 1", "1.2.3", "abc"):
        with pytest.raises(ValueError, match="invalid syntax"):
            H["parseFloat"](bad)


def test_parse_float_out_of_range_is_an_error():
    with pytest.raises(ValueError, match="value out of range"):
        H["parseFloat"]("1e400")


def test_parse_int_doc_example():
    assert H["parseInt"]("1") == 1


def test_parse_int_accepts_sign():
    assert H["parseInt"]("-42") == -42


def test_parse_int_empty_is_zero():
    assert H["parseInt"]("") == 0


def test_parse_int_rejects_float_text():
    with pytest.raises(ValueError, match='parseInt: strconv.ParseInt: parsing "1.5": invalid syntax'):
        H["parseInt"]("1.5")


def test_parse_int_out_of_int64_range():
    with pytest.raises(ValueError, match="value out of range"):
        H["parseInt"]("9223372036854775808")


def test_parse_uint_doc_example():
    assert H["parseUint"]("1") == 1


def test_parse_uint_rejects_negative():
    with pytest.raises(ValueError, match="invalid syntax"):
        H["parseUint"]("-1")
