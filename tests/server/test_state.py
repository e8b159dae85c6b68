"""The state machine alone: no server, no clock — commands in, state and results out."""

from __future__ import annotations

import json

import pytest

from meshctl.server import watchkeys as wk
from meshctl.server.state import State, StateError


def kv(state: State, verb: str, key: str, value: bytes | None = b"v", now: float = 100.0, **extra):
    return state.apply({"Op": "kv", "Verb": verb, "Key": key, "Value": value, "Now": now, **extra})


def node(state: State, name: str = "n1", address: str = "127.0.0.1", **extra) -> None:
    state.apply({"Op": "register", "Node": name, "Address": address,
                 "Checks": [{"CheckID": "serfHealth", "Name": "Serf Health Status", "Status": "passing"}], **extra})


def session(state: State, sid: str, node_name: str = "n1", behavior: str = "release",
            lock_delay_ns: int = 15 * 10**9, now: float = 100.0, checks=("serfHealth",)) -> str:
    return state.apply({"Op": "session_create", "Now": now, "Session": {
        "ID": sid, "Name": "", "Node": node_name, "LockDelay": lock_delay_ns, "Behavior": behavior,
        "TTL": "", "NodeChecks": list(checks), "ServiceChecks": None}})


def test_index_starts_above_zero_and_only_rises():
    state = State()
    assert state.index >= 1
    seen = [state.index]
    kv(state, "set", "a")
    seen.append(state.index)
    kv(state, "delete", "a")
    seen.append(state.index)
    assert seen == sorted(seen) and len(set(seen)) == 3


def test_identical_set_does_not_move_the_index():
    state = State()
    kv(state, "set", "a", b"1")
    before = state.index
    kv(state, "set", "a", b"1")
    assert state.index == before
    kv(state, "set", "a", b"2")
    assert state.index == before + 1


def test_cas_zero_creates_only_when_absent_and_cas_n_needs_the_modify_index():
    state = State()
    assert kv(state, "cas", "k", b"1", Index=0) is True
    assert kv(state, "cas", "k", b"2", Index=0) is False
    index = state.kv["k"].modify_index
    assert kv(state, "cas", "k", b"3", Index=index + 7) is False
    assert kv(state, "cas", "k", b"3", Index=index) is True
    assert state.kv["k"].value == b"3"
    assert kv(state, "cas", "absent", b"x", Index=5) is False


def test_prefix_index_counts_deletes_through_tombstones():
    state = State()
    kv(state, "set", "app/a")
    kv(state, "set", "other/x")
    index_before, _ = state.kv_list("app/")
    kv(state, "delete", "app/a")
    index_after, entries = state.kv_list("app/")
    assert entries == []
    assert index_after > index_before
    # a write elsewhere does not move this prefix's index
    kv(state, "set", "other/y")
    assert state.kv_list("app/")[0] == index_after


def test_keys_with_separator_truncate_after_the_prefix():
    state = State()
    for key in ("web/bar", "web/foo", "web/subdir/a", "web/subdir/b", "webx"):
        kv(state, "set", key)
    assert state.kv_keys_list("web/", "/")[1] == ["web/bar", "web/foo", "web/subdir/"]


def test_lock_acquire_release_and_lock_index():
    state = State()
    node(state)
    session(state, "s1")
    session(state, "s2")
    assert kv(state, "lock", "L", b"me", Session="s1") is True
    assert state.kv["L"].lock_index == 1 and state.kv["L"].session == "s1"
    assert kv(state, "lock", "L", b"other", Session="s2") is False
    assert kv(state, "lock", "L", b"again", Session="s1") is True
    assert state.kv["L"].lock_index == 1  # re-acquire by the holder is not a new acquisition
    assert kv(state, "unlock", "L", b"bye", Session="s2") is False
    assert kv(state, "unlock", "L", b"bye", Session="s1") is True
    assert state.kv["L"].session == "" and state.kv["L"].value == b"bye"
    assert kv(state, "lock", "L", b"x", Session="s2") is True
    assert state.kv["L"].lock_index == 2


def test_acquire_with_unknown_session_is_an_error():
    state = State()
    with pytest.raises(StateError, match='invalid session "nope"'):
        kv(state, "lock", "L", Session="nope")


def test_destroyed_session_releases_its_locks_and_starts_lock_delay():
    state = State()
    node(state)
    session(state, "s1", lock_delay_ns=10 * 10**9)
    session(state, "s2")
    kv(state, "lock", "L", b"held", Session="s1", now=100.0)
    state.apply({"Op": "session_destroy", "ID": "s1", "Now": 200.0})
    assert state.kv["L"].session == "" and state.kv["L"].value == b"held"
    assert kv(state, "lock", "L", Session="s2", now=205.0) is False  # within lock-delay
    assert kv(state, "lock", "L", Session="s2", now=210.5) is True


def test_delete_behavior_removes_the_held_keys():
    state = State()
    node(state)
    session(state, "s1", behavior="delete")
    kv(state, "lock", "svc/leader", Session="s1")
    state.apply({"Op": "session_destroy", "ID": "s1", "Now": 101.0})
    assert "svc/leader" not in state.kv


def test_critical_node_check_invalidates_the_sessions_that_use_it():
    state = State()
    node(state)
    session(state, "s1")
    kv(state, "lock", "L", Session="s1")
    state.apply({"Op": "check_update", "Node": "n1", "CheckID": "serfHealth", "Status": "critical", "Now": 150.0})
    assert "s1" not in state.sessions
    assert state.kv["L"].session == ""


def test_session_cannot_be_created_on_a_critical_check_or_a_missing_node():
    state = State()
    with pytest.raises(StateError, match="Missing node registration"):
        session(state, "s1", node_name="ghost")
    node(state)
    state.apply({"Op": "check_update", "Node": "n1", "CheckID": "serfHealth", "Status": "critical"})
    with pytest.raises(StateError, match="Check 'serfHealth' is in critical state"):
        session(state, "s1")


def test_deregistering_a_node_drops_its_services_checks_and_sessions():
    state = State()
    node(state, Service={"Service": "web", "Port": 80})
    session(state, "s1")
    state.apply({"Op": "deregister", "Node": "n1"})
    assert state.nodes == {} and state.health_service("web")[1] == [] and state.sessions == {}


def test_health_passing_hides_instances_with_any_non_passing_check():
    state = State()
    node(state, "n1", Service={"ID": "web1", "Service": "web", "Port": 80})
    node(state, "n2", Service={"ID": "web2", "Service": "web", "Port": 80})
    state.apply({"Op": "register", "Node": "n2", "SkipNodeUpdate": True,
                 "Checks": [{"CheckID": "c", "Name": "c", "ServiceID": "web2", "Status": "warning"}]})
    assert [e["Service"]["ID"] for e in state.health_service("web")[1]] == ["web1", "web2"]
    assert [e["Service"]["ID"] for e in state.health_service("web", passing=True)[1]] == ["web1"]
    # a node-level check failing hides every service of that node
    state.apply({"Op": "check_update", "Node": "n1", "CheckID": "serfHealth", "Status": "critical"})
    assert state.health_service("web", passing=True)[1] == []


def test_service_index_moves_only_for_that_service():
    state = State()
    node(state, "n1", Service={"ID": "web1", "Service": "web", "Port": 80})
    node(state, "n2", Service={"ID": "db1", "Service": "db", "Port": 5432})
    web_index = state.service_index_of("web")
    state.apply({"Op": "register", "Node": "n2", "SkipNodeUpdate": True,
                 "Service": {"ID": "db1", "Service": "db", "Port": 5433}})
    assert state.service_index_of("web") == web_index
    assert state.service_index_of("db") > web_index


def test_check_for_unknown_service_changes_nothing():
    state = State()
    node(state)
    before = json.dumps(state.snapshot(), sort_keys=True)
    with pytest.raises(StateError, match="Missing service registration"):
        state.apply({"Op": "register", "Node": "n1", "Address": "127.0.0.2",
                     "Checks": [{"CheckID": "c", "Name": "c", "ServiceID": "nope"}]})
    assert json.dumps(state.snapshot(), sort_keys=True) == before


def test_txn_is_all_or_nothing_and_reports_every_error():
    state = State()
    kv(state, "set", "exists")
    ops = [{"KV": {"Verb": "set", "Key": "new", "Value": b"1"}},
           {"KV": {"Verb": "get", "Key": "missing"}},
           {"KV": {"Verb": "check-not-exists", "Key": "exists"}}]
    result = state.apply({"Op": "txn", "Ops": ops})
    assert result["Results"] is None
    assert [e["OpIndex"] for e in result["Errors"]] == [1, 2]
    assert 'key "missing" doesn\'t exist' in result["Errors"][0]["What"]
    assert "new" not in state.kv


def test_txn_success_returns_results_without_values_for_writes():
    state = State()
    result = state.apply({"Op": "txn", "Ops": [{"KV": {"Verb": "set", "Key": "a", "Value": b"1"}},
                                               {"KV": {"Verb": "get", "Key": "a"}}]})
    assert result["Errors"] is None
    assert result["Results"][0]["KV"]["Value"] is None
    assert result["Results"][1]["KV"]["Value"] == "MQ=="


def test_changes_name_exactly_what_moved():
    state = State()
    state.drain_changes()
    kv(state, "set", "a/b")
    assert state.drain_changes() == {wk.KVS, wk.kv("a/b")}
    node(state, Service={"Service": "Web", "Port": 1})
    changed = state.drain_changes()
    assert wk.service("web") in changed and wk.NODES in changed


def test_events_keep_the_last_256_and_index_is_the_xor_of_the_id_halves():
    state = State()
    for i in range(300):
        state.apply({"Op": "event_fire", "Event": {"ID": f"00000000-0000-0000-0000-{i:012x}", "Name": "deploy",
                                                    "Payload": None}})
    index, events = state.event_list()
    assert len(events) == 256 and events[-1]["LTime"] == 300
    assert index == 299


def test_snapshot_restore_reproduces_the_state():
    state = State()
    node(state, Service={"Service": "web", "Port": 80})
    kv(state, "set", "k", b"\x00binary")
    kv(state, "delete", "k")
    kv(state, "set", "k2", None)
    copy = State()
    copy.apply({"Op": "restore", "Snapshot": json.loads(json.dumps(state.snapshot()))})
    assert json.dumps(copy.snapshot(), sort_keys=True) == json.dumps(state.snapshot(), sort_keys=True)
    kv(copy, "set", "after", b"1")  # still a working state machine
    assert copy.kv["after"].modify_index > state.index


def test_replicas_applying_the_same_commands_agree():
    commands = [
        {"Op": "register", "Node": "n1", "Address": "127.0.0.1",
         "Checks": [{"CheckID": "serfHealth", "Name": "s", "Status": "passing"}]},
        {"Op": "session_create", "Now": 5.0, "Session": {"ID": "s", "Node": "n1", "LockDelay": 10**9,
                                                          "Behavior": "release", "TTL": "", "NodeChecks": ["serfHealth"]}},
        {"Op": "kv", "Verb": "lock", "Key": "L", "Value": b"x", "Session": "s", "Now": 6.0},
        {"Op": "session_destroy", "ID": "s", "Now": 7.0},
        {"Op": "kv", "Verb": "set", "Key": "a", "Value": b"1", "Now": 8.0},
    ]
    a, b = State(), State()
    for cmd in commands:
        a.apply(dict(cmd))
        b.apply(dict(cmd))
    assert json.dumps(a.snapshot(), sort_keys=True) == json.dumps(b.snapshot(), sort_keys=True)


def test_reaping_tombstones_forgets_only_those_at_or_below_the_limit():
    state = State()
    kv(state, "set", "a/1")
    kv(state, "set", "a/2")
    kv(state, "delete", "a/1")
    limit = state.index
    kv(state, "delete", "a/2")
    state.apply({"Op": "tombstone_reap", "Index": limit})
    assert list(state.tombstones) == ["a/2"]
