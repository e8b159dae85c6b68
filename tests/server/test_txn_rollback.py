"""A failed transaction leaves nothing behind; a good one behaves the same on a big store."""

from __future__ import annotations

import copy

from meshctl.server.state import State


def txn(state: State, *ops: dict[str, object], now: float = 10.0) -> dict[str, object]:
    return state.apply({"Op": "txn", "Ops": [{"KV": op} for op in ops], "Now": now})  # type: ignore[no-any-return]


def test_a_failed_kv_transaction_changes_nothing() -> None:
    s = State()
    s.sessions["s1"] = {"ID": "s1", "Node": "n", "LockDelay": 0}
    txn(s, {"Verb": "set", "Key": "a", "Value": b"1"}, {"Verb": "set", "Key": "gone", "Value": b"x"})
    txn(s, {"Verb": "delete", "Key": "gone"})
    s.lock_delays["l"] = 5.0  # expired at now=10: a lock attempt would clear it
    s.drain_changes()
    before = copy.deepcopy(s.snapshot())
    out = txn(s, {"Verb": "set", "Key": "a", "Value": b"2"}, {"Verb": "set", "Key": "gone", "Value": b"back"},
              {"Verb": "delete", "Key": "a"}, {"Verb": "lock", "Key": "l", "Value": b"", "Session": "s1"},
              {"Verb": "delete-tree", "Key": ""}, {"Verb": "cas", "Key": "new", "Value": b"v", "Index": 99})
    assert out["Results"] is None and [e["OpIndex"] for e in out["Errors"]] == [5]  # type: ignore[index]
    after = s.snapshot()
    assert sorted(after.pop("KV")) == sorted(before.pop("KV"))
    assert after == before
    assert s.kv_keys == ["a"] and s.tomb_keys == ["gone"]
    assert s.drain_changes() == set()
    assert s.kv_get("a")[1].value == b"1"  # type: ignore[union-attr]


def test_transactions_on_a_big_store_see_and_write_the_right_entries() -> None:
    s = State()
    for i in range(20_000):
        s.apply({"Op": "kv", "Verb": "set", "Key": f"k/{i:05d}", "Value": b"v", "Now": 1.0})
    index = s.kv_get("k/00007")[0]
    ok = txn(s, {"Verb": "check-index", "Key": "k/00007", "Index": index},
             {"Verb": "set", "Key": "k/00007", "Value": b"w"}, {"Verb": "get", "Key": "k/00007"})
    assert ok["Errors"] is None
    assert ok["Results"][-1]["KV"]["ModifyIndex"] == s.index  # type: ignore[index]
    stale = txn(s, {"Verb": "cas", "Key": "k/00008", "Value": b"x", "Index": index},
                {"Verb": "set", "Key": "k/00009", "Value": b"x"})
    assert stale["Errors"] is not None and s.kv_get("k/00009")[1].value == b"v"  # type: ignore[union-attr]
    assert len(s.kv) == 20_000
