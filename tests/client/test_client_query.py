"""Query-string helpers: Go durations for ?wait, consistency, node-meta, tags, read timeouts."""

from __future__ import annotations

import pytest

from meshctl.client.query import (
    format_duration_ms,
    format_wait,
    go_duration,
    query_params,
    read_timeout,
    tag_params,
)


@pytest.mark.parametrize(
    ("given", "sent"),
    [(15, "15s"), (15.0, "15s"), (0.25, "250ms"), (15.5, "15500ms"), ("30s", "30s"), ("1m", "60s"),
     ("1m30s", "90s"), ("1500ms", "1500ms"), ("2", "2s"), (0, "0s")],
)
def test_wait_is_sent_as_go_duration(given, sent):
    assert format_wait(given) == sent


def test_bad_wait_string_is_rejected():
    with pytest.raises(ValueError):
        format_wait("soon")


def test_negative_wait_is_rejected():
    with pytest.raises(ValueError):
        format_wait(-1)


def test_body_durations_are_milliseconds_like_go_client():
    assert format_duration_ms(15) == "15000ms"
    assert format_duration_ms("1m") == "60000ms"
    assert format_duration_ms(None) is None


def test_go_duration_keeps_strings_and_formats_numbers():
    assert go_duration("15s") == "15s"
    assert go_duration(90) == "1m30s"
    with pytest.raises(ValueError):
        go_duration("later")


def test_query_params_leave_out_unset_options():
    assert query_params() == []


def test_query_params_full():
    params = query_params(index=42, wait=5, consistency="stale", dc="dc2", filter='Service == "x"',
                          near="_agent", node_meta={"rack": "r1"})
    assert params == [("index", "42"), ("wait", "5s"), ("stale", ""), ("dc", "dc2"),
                      ("filter", 'Service == "x"'), ("near", "_agent"), ("node-meta", "rack:r1")]


def test_index_zero_is_not_sent():
    assert query_params(index=0) == []


def test_consistent_and_default_modes():
    assert query_params(consistency="consistent") == [("consistent", "")]
    assert query_params(consistency="default") == []
    with pytest.raises(ValueError):
        query_params(consistency="eventual")  # type: ignore[arg-type]


def test_node_meta_as_list_of_pairs():
    assert query_params(node_meta=["a:1", "b:2"]) == [("node-meta", "a:1"), ("node-meta", "b:2")]


def test_tags_repeat():
    assert tag_params("a") == [("tag", "a")]
    assert tag_params(["a", "b"]) == [("tag", "a"), ("tag", "b")]
    assert tag_params(None) == []


def test_read_timeout_covers_blocking_wait_and_jitter():
    assert read_timeout(30, None, "60s") == 30
    assert read_timeout(30, 5, "60s") == pytest.approx(60 + 60 / 16 + 5)
    assert read_timeout(30, 5, None) == pytest.approx(300 + 300 / 16 + 5)  # server default wait
    assert read_timeout(30, 5, "1h") == pytest.approx(600 + 600 / 16 + 5)  # server clamps at 600s
    assert read_timeout(None, 5, "10s") is None
