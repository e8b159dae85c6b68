"""regexMatch / regexReplaceAll: Go RE2 semantics on Python's re."""

import pytest

from meshctl.template.funcs import HELPERS as H
from meshctl.template.funcs_regex import GoRegexError


def test_regex_match_doc_example():
    assert H["regexMatch"]("foo([.a-z]+)", "foo.bar") is True


def test_regex_match_is_unanchored_search():
    assert H["regexMatch"]("bar", "foo.bar") is True


def test_regex_match_false():
    assert H["regexMatch"]("^bar", "foo.bar") is False


def test_regex_dollar_is_end_of_text_not_before_final_newline():
    assert H["regexMatch"]("abc$", "abc\n") is False


def test_regex_multiline_flag_dollar_matches_line_ends():
    assert H["regexMatch"]("(?m)^b$", "a\nb\nc") is True


def test_regex_digit_class_is_ascii_only():
    assert H["regexMatch"](r"^\d+$", "١٢") is False


def test_regex_posix_class():
    assert H["regexMatch"]("^[[:alpha:]]+$", "abcXYZ") is True


def test_regex_named_group_go_syntax():
    assert H["regexReplaceAll"]("(?<word>[a-z]+)", "<${word}>", "hi there") == "<hi> <there>"


def test_regex_inline_flag_in_the_middle_applies_to_the_rest():
    assert H["regexReplaceAll"]("a(?i)b", "X", "ab aB Ab") == "X X Ab"


def test_regex_quoted_literal():
    assert H["regexReplaceAll"](r"\Q1+1\E", "two", "1+1=2") == "two=2"


def test_regex_invalid_pattern_is_an_error():
    with pytest.raises(GoRegexError):
        H["regexMatch"]("a(b", "ab")


def test_regex_replace_all_doc_example():
    assert H["regexReplaceAll"]("foo([.a-z]+)", "$1", "foo.bar") == ".bar"


def test_regex_replace_all_braced_group():
    assert H["regexReplaceAll"]("(\\w+)@(\\w+)", "${2}_${1}x", "me@host") == "host_mex"


def test_regex_replace_all_unbraced_name_is_greedy_like_go():
    # "$1x" names group "1x", which does not exist: it expands to "".
    assert H["regexReplaceAll"]("(a)", "$1x", "a") == ""


def test_regex_replace_all_double_dollar_is_literal():
    assert H["regexReplaceAll"]("a", "$$", "a") == "$"


def test_regex_replace_all_unmatched_group_is_empty():
    assert H["regexReplaceAll"]("(a)|(b)", "[$2]", "ab") == "[][b]"


def test_regex_replace_all_skips_empty_match_after_a_match_like_go():
    assert H["regexReplaceAll"]("x*", "-", "abxd") == "-a-b-d-"


def test_regex_replace_all_backslashes_in_replacement_are_literal():
    assert H["regexReplaceAll"]("a", r"\n", "a") == r"\n"


def test_regex_brace_that_is_not_a_repeat_is_literal_like_go():
    assert H["regexMatch"]("^a{,2}$", "a{,2}") is True


def test_regex_counted_repeat():
    assert H["regexMatch"]("^a{2,3}$", "aaa") is True
    assert H["regexMatch"]("^a{2,3}$", "aaaa") is False


def test_regex_repeat_count_over_1000_is_an_error():
    with pytest.raises(GoRegexError, match="invalid repeat count"):
        H["regexMatch"]("a{1001}", "a")


def test_regex_lookahead_is_rejected_like_go():
    with pytest.raises(GoRegexError):
        H["regexMatch"]("a(?=b)", "ab")
