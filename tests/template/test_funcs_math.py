"""Math helpers: reversed argument order and Go's int/float rules (docs/templating-language.md)."""

import math

import pytest

from meshctl.template.funcs import HELPERS as H


def test_add_doc_example():
    assert H["add"](1, 2) == 3


def test_add_pipe_form_doc_example():
    assert H["add"](2, 1) == 3


def test_subtract_doc_example_second_minus_first():
    assert H["subtract"](2, 5) == 3


def test_multiply_doc_example():
    assert H["multiply"](2, 2) == 4


def test_divide_doc_example_second_by_first():
    assert H["divide"](2, 10) == 5


def test_modulo_doc_example():
    assert H["modulo"](2, 5) == 1


def test_minimum_doc_example():
    assert H["minimum"](2, 5) == 2


def test_maximum_returns_the_larger():
    assert H["maximum"](2, 5) == 5


def test_int_with_int_stays_int():
    result = H["add"](1, 2)
    assert result == 3 and isinstance(result, int)


def test_any_float_promotes_to_float():
    result = H["add"](1, 2.5)
    assert result == 3.5 and isinstance(result, float)
    result = H["multiply"](2.0, 3)
    assert result == 6.0 and isinstance(result, float)


def test_integer_division_truncates_toward_zero():
    assert H["divide"](2, 7) == 3
    assert H["divide"](2, -7) == -3
    assert H["divide"](-2, 7) == -3


def test_float_division_is_true_division():
    assert H["divide"](2, 5.0) == 2.5


def test_integer_division_by_zero_is_an_error():
    with pytest.raises(ZeroDivisionError, match="integer divide by zero"):
        H["divide"](0, 5)


def test_float_division_by_zero_is_infinity_like_go():
    assert H["divide"](0.0, 5.0) == math.inf


def test_modulo_sign_follows_dividend_like_go():
    assert H["modulo"](3, -7) == -1
    assert H["modulo"](-3, 7) == 1


def test_modulo_of_floats_is_an_error():
    with pytest.raises(TypeError, match="modulo: unknown type"):
        H["modulo"](2, 5.5)


def test_modulo_by_zero_is_an_error():
    with pytest.raises(ZeroDivisionError):
        H["modulo"](0, 5)


def test_minimum_keeps_the_winners_type():
    result = H["minimum"](2.5, 3)
    assert result == 2.5 and isinstance(result, float)
    result = H["minimum"](3.5, 3)
    assert result == 3 and isinstance(result, int)


def test_strings_are_rejected():
    with pytest.raises(TypeError, match='add: unknown type for "1" \\(string\\)'):
        H["add"](1, "1")


def test_booleans_are_rejected():
    with pytest.raises(TypeError):
        H["subtract"](True, 1)
