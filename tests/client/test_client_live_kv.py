"""client.kv and client.txn against a real `meshctl agent -dev`."""

from __future__ import annotations

import threading
import time

import pytest

from meshctl.client import BadRequest, Client, KVPair, kv_op

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def c(shared_dev_server) -> Client:
    return Client(shared_dev_server.addr)


def test_put_then_get_round_trips_bytes_and_flags(c):
    assert c.kv.put("kv1/a", b"\x00\xffbin", flags=42) is True
    reply = c.kv.get("kv1/a")
    pair = reply.value
    assert isinstance(pair, KVPair)
    assert (pair.key, pair.value, pair.flags, pair.lock_index, pair.session) == ("kv1/a", b"\x00\xffbin", 42, 0, None)
    assert pair.create_index == pair.modify_index == reply.index
    assert reply.found and reply.known_leader


def test_str_values_are_utf8(c):
    c.kv.put("kv1/u", "grüße")
    assert c.kv.get("kv1/u").value.value == "grüße".encode()


def test_missing_key_is_none_with_positive_index(c):
    reply = c.kv.get("kv1/missing")
    assert reply.value is None and not reply.found
    assert reply.index >= 1


def test_empty_put_stores_null_value(c):
    c.kv.put("kv1/folder/")
    assert c.kv.get("kv1/folder/").value.value is None


def test_list_returns_sorted_entries_under_prefix(c):
    for k in ("kv2/b", "kv2/a", "kv2/c/d"):
        c.kv.put(k, k)
    reply = c.kv.list_prefix("kv2/")
    assert [p.key for p in reply.value] == ["kv2/a", "kv2/b", "kv2/c/d"]
    assert reply.index == max(p.modify_index for p in reply.value)


def test_list_of_missing_prefix_is_empty(c):
    assert c.kv.list_prefix("kv-nothing/").value == []


def test_keys_with_and_without_separator(c):
    for k in ("kv3/x", "kv3/sub/y", "kv3/sub/z"):
        c.kv.put(k, "1")
    assert c.kv.keys("kv3/").value == ["kv3/sub/y", "kv3/sub/z", "kv3/x"]
    assert c.kv.keys("kv3/", separator="/").value == ["kv3/sub/", "kv3/x"]
    assert c.kv.keys("kv3-none/").value == []


def test_cas_create_only_if_absent_and_update_at_index(c):
    assert c.kv.put("kv4/k", "1", cas=0) is True
    assert c.kv.put("kv4/k", "2", cas=0) is False
    index = c.kv.get("kv4/k").value.modify_index
    assert c.kv.put("kv4/k", "3", cas=index + 1000) is False
    assert c.kv.put("kv4/k", "3", cas=index) is True
    assert c.kv.get("kv4/k").value.value == b"3"


def test_delete_key_prefix_and_cas(c):
    c.kv.put("kv5/a", "1")
    c.kv.put("kv5/b/c", "1")
    index = c.kv.get("kv5/a").value.modify_index
    assert c.kv.delete("kv5/a", cas=index + 1000) is False
    assert c.kv.delete("kv5/a", cas=index) is True
    assert c.kv.get("kv5/a").value is None
    assert c.kv.delete("kv5/", recurse=True) is True
    assert c.kv.list_prefix("kv5/").value == []


def test_keys_with_spaces_and_unicode(c):
    key = "kv6/with space/ünï?&=#%"
    c.kv.put(key, "v")
    assert c.kv.get(key).value.key == key
    assert key in c.kv.keys("kv6/").value


def test_stale_and_consistent_reads(c):
    c.kv.put("kv7/k", "v")
    assert c.kv.get("kv7/k", consistency="stale").value.value == b"v"
    assert c.kv.get("kv7/k", consistency="consistent").value.value == b"v"


def test_unknown_datacenter_is_an_error(c):
    from meshctl.client import ConsulError

    with pytest.raises(ConsulError):
        c.kv.get("kv7/k", dc="nowhere-dc")


def test_blocking_get_returns_when_the_key_changes(c):
    c.kv.put("kv8/k", "1")
    first = c.kv.get("kv8/k")
    threading.Timer(0.3, lambda: Client(c.config.address).kv.put("kv8/k", "2")).start()
    started = time.monotonic()
    second = c.kv.get("kv8/k", index=first.index, wait="120s")
    assert time.monotonic() - started < 60  # woken by the write, not the wait
    assert second.index > first.index
    assert second.value.value == b"2"


def test_blocking_get_times_out_with_same_index(c):
    c.kv.put("kv9/k", "1")
    first = c.kv.get("kv9/k")
    started = time.monotonic()
    again = c.kv.get("kv9/k", index=first.index, wait=0.3)
    assert 0.25 <= time.monotonic() - started < 60  # the given wait, not the default 5 min
    assert again.index == first.index


def test_bad_wait_is_rejected_client_side(c):
    with pytest.raises(ValueError):
        c.kv.get("k", index=1, wait="forever")


def test_conflicting_flags_are_a_bad_request(c):
    with pytest.raises(BadRequest):
        c.kv.put("kv10/k", "v", cas=0, acquire="x")


def test_txn_commits_all_operations(c):
    result = c.txn.apply([kv_op("set", "tx1/a", b"1"), kv_op("set", "tx1/b", "2", flags=3),
                          kv_op("get", "tx1/b")])
    assert result.ok and result.errors == []
    assert [p.key for p in result.kv] == ["tx1/a", "tx1/b", "tx1/b"]
    assert result.kv[2].value == b"2" and result.kv[2].flags == 3
    assert c.kv.get("tx1/a").value.value == b"1"


def test_txn_rollback_reports_failed_op_and_writes_nothing(c):
    result = c.txn.apply([kv_op("set", "tx2/a", b"1"), kv_op("get", "tx2/missing")])
    assert result.ok is False
    assert [e.op_index for e in result.errors] == [1]
    assert "tx2/missing" in result.errors[0].what
    assert c.kv.get("tx2/a").value is None


def test_txn_cas_and_delete(c):
    c.kv.put("tx3/a", "1")
    index = c.kv.get("tx3/a").value.modify_index
    assert c.txn.apply([kv_op("cas", "tx3/a", b"2", index=index), kv_op("delete", "tx3/a")]).ok
    assert c.kv.get("tx3/a").value is None
