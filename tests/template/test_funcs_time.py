"""timestamp and the Go time-layout formatter."""

import datetime as dt

import pytest

from meshctl.template import funcs_time
from meshctl.template.funcs import HELPERS as H
from meshctl.template.funcs_time import format_go_time

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
T = dt.datetime(2009, 11, 10, 23, 4, 5, 120000, tzinfo=dt.UTC)


@pytest.fixture
def frozen(monkeypatch):
    def freeze(t: dt.datetime) -> None:
        monkeypatch.setattr(funcs_time, "now", lambda: t)

    return freeze


def test_timestamp_default_is_rfc3339_doc_example(frozen):
    frozen(EPOCH)
    assert H["timestamp"]() == "1970-01-01T00:00:00Z"


def test_timestamp_layout_doc_example(frozen):
    frozen(EPOCH)
    assert H["timestamp"]("2006-01-02") == "1970-01-01"


def test_timestamp_unix_doc_example(frozen):
    frozen(EPOCH)
    assert H["timestamp"]("unix") == "0"


def test_timestamp_is_utc_even_for_local_times(frozen):
    frozen(dt.datetime(2020, 1, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))))
    assert H["timestamp"]() == "2020-01-01T10:00:00Z"


def test_timestamp_too_many_arguments():
    with pytest.raises(TypeError, match="expected 0 or 1"):
        H["timestamp"]("a", "b")


def test_timestamp_now_is_close_to_the_clock():
    assert abs(int(H["timestamp"]("unix")) - int(dt.datetime.now(dt.UTC).timestamp())) <= 2


def test_layout_unix_date():
    assert format_go_time(T, "Mon Jan _2 15:04:05 MST 2006") == "Tue Nov 10 23:04:05 UTC 2009"


def test_layout_rfc850_with_12_hour_clock_and_numeric_zone():
    assert format_go_time(T, "Monday, 02-Jan-06 03:04:05 PM -0700") == "Tuesday, 10-Nov-09 11:04:05 PM +0000"


def test_layout_unpadded_fields():
    assert format_go_time(T, "1/2 3:4:5 pm") == "11/10 11:4:5 pm"


def test_layout_fixed_fractional_seconds():
    assert format_go_time(T, "15:04:05.000") == "23:04:05.120"


def test_layout_trimmed_fractional_seconds():
    assert format_go_time(T, "05.999999") == "05.12"
    assert format_go_time(EPOCH, "05.999") == "00"


def test_layout_year_day():
    assert format_go_time(T, "002 __2") == "314 314"


def test_layout_zone_forms_for_utc():
    assert format_go_time(T, "Z07:00 Z0700 -07:00 -07") == "Z Z +00:00 +00"


def test_layout_long_month_and_literal_text():
    assert format_go_time(T, "January is month 01") == "November is month 11"


def test_layout_word_starting_like_a_month_stays_literal():
    assert format_go_time(T, "Janet Monty") == "Janet Monty"


def test_layout_underscore_before_year_is_literal():
    assert format_go_time(T, "_2006") == "_2009"
