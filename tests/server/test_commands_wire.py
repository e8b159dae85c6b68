"""Typed commands against the replicated format they replaced.

fixtures/wire_commands_v0.json holds the commands exactly as the dict-building code put them
through Raft (captured from a live dev server with ACLs, and from a one-server Raft cluster for
the server directory), each with the result it had, and the snapshot that code wrote after
applying them all. Journals and snapshots written by that code must replay to the same state,
and the typed commands must put the same dicts on the wire.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from meshctl.server import commands as c
from meshctl.server.state import SNAPSHOT_FORMAT, State, StateError

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "wire_commands_v0.json").read_text())
# commands added since the capture (prepared queries, coordinates): their wire form as first written
LATER = json.loads((Path(__file__).parent / "fixtures" / "wire_commands_later.json").read_text())["commands"]


def _bytes(value: Any) -> Any:
    """The fixture's {"$bytes": base64} back to bytes (KV values travel as bytes)."""
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:
            return base64.b64decode(value["$bytes"])
        return {k: _bytes(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_bytes(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    def enc(o: Any) -> Any:
        if isinstance(o, bytes):
            return {"$bytes": base64.b64encode(o).decode()}
        raise TypeError(type(o))

    return json.loads(json.dumps(value, default=enc))


def _dumps(value: Any) -> bytes:
    return json.dumps(_plain(value)).encode()


WIRES = [_bytes(item["wire"]) for item in FIXTURE["commands"]]


def _replay(commands: list[Any]) -> tuple[State, list[dict[str, Any]]]:
    state = State("dc1")
    outcomes = []
    for cmd in commands:
        try:
            outcomes.append({"ok": True, "result": _plain(state.apply(cmd))})
        except StateError as exc:
            outcomes.append({"ok": False, "error": str(exc)})
    return state, outcomes


def _expected_outcomes() -> list[dict[str, Any]]:
    return [{k: item[k] for k in ("ok", "result", "error") if k in item} for item in FIXTURE["commands"]]


def _without_format(snapshot: Any) -> Any:
    return {k: v for k, v in _plain(snapshot).items() if k != "Format"}


# commands that came after the dict-building code (no old wire form to compare with)
NEWER_OPS = {c.AutopilotSet.OP}


def test_the_fixture_covers_every_command_kind() -> None:
    ops = {(w["Op"], w.get("Verb")) for w in WIRES}
    later = {w["Op"] for w in FIXTURE["member_commands"] + LATER}
    assert {op for op, _ in ops} | later == c.COMMAND_OPS - NEWER_OPS
    assert {verb for op, verb in ops if op == "kv"} == set(c.KV_VERBS)


def test_old_wire_dicts_apply_to_the_same_results_and_state() -> None:
    state, outcomes = _replay(copy.deepcopy(WIRES))
    assert outcomes == _expected_outcomes()
    snap = state.snapshot()
    assert snap["Format"] == SNAPSHOT_FORMAT
    assert _without_format(snap) == FIXTURE["snapshot_after"]


def test_decoded_typed_commands_apply_to_the_same_state() -> None:
    typed = [c.decode(w) for w in copy.deepcopy(WIRES)]
    assert all(isinstance(t, c.Command) for t in typed)
    state, outcomes = _replay(typed)
    assert outcomes == _expected_outcomes()
    assert _without_format(state.snapshot()) == FIXTURE["snapshot_after"]


@pytest.mark.parametrize("wire", WIRES + FIXTURE["member_commands"] + LATER,
                         ids=lambda w: f"{w['Op']}-{w.get('Verb', '')}")
def test_to_wire_gives_back_the_old_dict(wire: dict[str, Any]) -> None:
    again = c.decode(wire).to_wire()
    assert again == wire
    if next(iter(wire)) == "Op":
        # every producer but a user-written /v1/catalog/register body had a fixed key order: kept
        # too, so an entry serialises to the same bytes
        assert list(again) == list(wire)
        assert _dumps(again) == _dumps(wire)


def _first(op: str, verb: str | None = None, **match: Any) -> dict[str, Any]:
    return next(w for w in WIRES if w["Op"] == op and w.get("Verb") == verb
                and all(w.get(k) == v for k, v in match.items()))


def test_commands_built_as_the_handlers_build_them_are_the_old_dicts() -> None:
    """One per producer shape: what the handler builds now, against what it put on the wire before."""
    def same(command: c.Command, wire: dict[str, Any]) -> None:
        built = c.with_now(command, wire["Now"]).to_wire()
        assert built == wire and list(built) == list(wire)

    w = _first("kv", "set", Key="a/one")
    same(c.KVSet("a/one", b"hello", 0), w)
    same(c.KVSet("a/empty", None, 0), _first("kv", "set", Key="a/empty"))
    w = _first("kv", "cas", Key="a/new")
    same(c.KVCAS("a/new", b"n", 0, 0), w)
    w = _first("kv", "lock")
    same(c.KVLock("a/lock", b"L", 0, w["Session"]), w)
    w = _first("kv", "unlock")
    same(c.KVUnlock("a/lock", b"L2", 0, w["Session"]), w)
    same(c.KVDelete("a/empty"), _first("kv", "delete", Key="a/empty"))
    w = _first("kv", "delete-cas")
    same(c.KVDeleteCAS("a/flags", w["Index"]), w)
    same(c.KVDeleteTree("b"), _first("kv", "delete-tree"))
    w = _first("txn")
    same(c.Txn(tuple(w["Ops"])), w)
    w = _first("session_create")
    same(c.SessionCreate(w["Session"]), w)
    w = _first("session_destroy")
    same(c.SessionDestroy(w["ID"]), w)
    w = _first("event_fire")
    same(c.EventFire(w["Event"]), w)
    w = _first("deregister", Node="ext1", CheckID="c2")
    same(c.Deregister("ext1", "", "c2"), w)  # /v1/catalog/deregister sends both IDs
    same(c.Deregister("devnode", service_id="api1"), _first("deregister", Node="devnode", ServiceID="api1"))
    same(c.Deregister("devnode", check_id="nodettl"), _first("deregister", Node="devnode", CheckID="nodettl"))
    w = _first("check_update")
    same(c.CheckUpdate(w["Node"], w["CheckID"], "passing", "fine"), w)
    w = _first("register", ID=WIRES[1]["ID"])  # the agent's own node registration
    same(c.Register(id=w["ID"], node="devnode", address="127.0.0.1", node_meta={},
                    tagged_addresses={"lan": "127.0.0.1", "wan": "127.0.0.1"}, checks=tuple(w["Checks"]),
                    service={"ID": "consul", "Service": "consul", "Port": 8300}), w)
    w = next(x for x in WIRES if x["Op"] == "register" and "Service" in x and x.get("SkipNodeUpdate"))
    same(c.Register("devnode", skip_node_update=True, address="127.0.0.1", service=w["Service"]), w)
    w = _first("acl_init")
    same(c.ACLInit(w["InitialManagement"]), w)
    w = _first("acl_bootstrap")
    same(c.ACLBootstrap(w["Token"]), w)
    w = _first("acl_token_set", Create=True)
    same(c.ACLTokenSet(w["Token"], True), w)
    w = _first("acl_policy_set", Create=False)
    same(c.ACLPolicySet(w["Policy"], False), w)
    w = _first("acl_role_set", Create=True)
    same(c.ACLRoleSet(w["Role"], True), w)
    w = _first("acl_token_delete")
    same(c.ACLTokenDelete(w["AccessorID"]), w)
    w = _first("acl_policy_delete")
    same(c.ACLPolicyDelete(w["ID"]), w)
    w = _first("acl_role_delete")
    same(c.ACLRoleDelete(w["ID"]), w)
    w = _first("tombstone_reap")
    same(c.TombstoneReap(w["Index"]), w)
    w = _first("restore")
    same(c.Restore(w["Snapshot"]), w)
    member = FIXTURE["member_commands"][0]
    same(c.ServerMember(member["Address"], member["Info"]), member)


def test_a_user_written_registration_keeps_the_fields_the_state_ignores() -> None:
    wire = next(w for w in WIRES if w["Op"] == "register" and "Datacenter" in w)
    cmd = c.decode(wire)
    assert isinstance(cmd, c.Register) and cmd.node == "ext1" and cmd.extra == (("Datacenter", "dc1"),)
    assert cmd.to_wire() == wire


def test_a_snapshot_as_the_old_code_wrote_it_restores() -> None:
    old = FIXTURE["snapshot_after"]
    assert "Format" not in old
    state = State("dc1")
    assert state.apply({"Op": "restore", "Snapshot": copy.deepcopy(old)}) is True
    assert _without_format(state.snapshot()) == old
    # and the restore inside the captured commands (an archive uploaded to /v1/snapshot) was one too
    assert "Format" not in _first("restore")["Snapshot"]


def test_a_new_snapshot_round_trips_and_a_newer_format_is_refused() -> None:
    state, _ = _replay(copy.deepcopy(WIRES))
    snap = _plain(state.snapshot())
    other = State("dc1")
    other.apply(c.Restore(copy.deepcopy(snap)))
    assert _plain(other.snapshot()) == snap
    newer = dict(snap, Format=SNAPSHOT_FORMAT + 1)
    with pytest.raises(StateError, match="snapshot format"):
        other.apply(c.Restore(newer))
    assert _plain(other.snapshot()) == snap


def test_the_server_directory_is_not_the_state_machines() -> None:
    member = FIXTURE["member_commands"][0]
    assert isinstance(c.decode(member), c.ServerMember)
    state = State("dc1")
    before = state.snapshot()
    with pytest.raises(StateError, match="Raft store"):
        state.apply(member)
    assert state.snapshot() == before


def test_unknown_commands_and_verbs_are_refused() -> None:
    state = State("dc1")
    with pytest.raises(StateError, match="unknown command 'nope'"):
        state.apply({"Op": "nope"})
    with pytest.raises(StateError, match='unknown KV verb "frob"'):
        state.apply({"Op": "kv", "Verb": "frob", "Key": "k"})
    assert state.index == 1


def test_commands_are_immutable_values() -> None:
    a, b = c.KVSet("k", b"v", now=1.0), c.KVSet("k", b"v", now=1.0)
    assert a == b and hash(a) == hash(b)
    with pytest.raises(AttributeError):
        a.key = "other"  # type: ignore[misc]
    assert c.with_now(a, 2.0) is a and c.with_now(c.KVSet("k"), 2.0).now == 2.0
