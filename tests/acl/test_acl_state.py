"""ACL commands in the state machine: deterministic, replicated, snapshotted."""

from __future__ import annotations

import json

from meshctl.server import watchkeys as wk
from meshctl.server.acl import state as acl_state
from meshctl.server.state import State

NOW = 1_700_000_000.0


def init(state: State, secret: str | None = "root") -> None:
    cmd = {"Op": "acl_init", "Now": NOW}
    if secret:
        cmd["InitialManagement"] = {"AccessorID": "11111111-1111-1111-1111-111111111111", "SecretID": secret}
    assert state.apply(cmd) == {"OK": True}


def commands() -> list[dict]:
    return [
        {"Op": "acl_init", "Now": NOW},
        {"Op": "acl_policy_set", "Create": True, "Now": NOW,
         "Policy": {"ID": "p1", "Name": "app", "Rules": 'key_prefix "app/" { policy = "read" }'}},
        {"Op": "acl_role_set", "Create": True, "Now": NOW,
         "Role": {"ID": "r1", "Name": "ops", "Policies": [{"Name": "app"}]}},
        {"Op": "acl_token_set", "Create": True, "Now": NOW,
         "Token": {"AccessorID": "a1", "SecretID": "s1", "Policies": [{"ID": "p1"}], "Roles": [{"Name": "ops"}]}},
    ]


def test_builtins_have_consuls_fixed_ids() -> None:
    state = State()
    init(state, None)
    assert state.acl["Policies"][acl_state.GLOBAL_MANAGEMENT_ID]["Name"] == "global-management"
    anon = acl_state.token_by_secret(state, "anonymous")
    assert anon is not None and anon["AccessorID"] == "00000000-0000-0000-0000-000000000002"


def test_bootstrap_works_once() -> None:
    state = State()
    first = state.apply({"Op": "acl_bootstrap", "Now": NOW, "Token": {"AccessorID": "a", "SecretID": "s"}})
    assert first["Policies"] == [{"ID": acl_state.GLOBAL_MANAGEMENT_ID, "Name": "global-management"}]
    again = state.apply({"Op": "acl_bootstrap", "Now": NOW, "Token": {"AccessorID": "b", "SecretID": "t"}})
    assert again["Status"] == 403 and "ACL bootstrap no longer allowed" in again["Error"]


def test_initial_management_token_consumes_the_bootstrap() -> None:
    state = State()
    init(state)
    result = state.apply({"Op": "acl_bootstrap", "Now": NOW, "Token": {"AccessorID": "a", "SecretID": "s"}})
    assert result["Status"] == 403
    init(state)  # idempotent: a second server applying it changes nothing
    assert len(state.acl["Tokens"]) == 2


def test_every_acl_write_advances_the_acl_index() -> None:
    state = State()
    before = state.table_index[wk.ACL]
    for cmd in commands():
        state.apply(cmd)
        assert state.table_index[wk.ACL] > before
        before = state.table_index[wk.ACL]
        assert wk.ACL in state.drain_changes()


def test_replicas_applying_the_same_commands_are_identical_and_snapshots_round_trip() -> None:
    a, b = State(), State()
    for cmd in commands():
        a.apply(json.loads(json.dumps(cmd)))
        b.apply(json.loads(json.dumps(cmd)))
    assert a.snapshot() == b.snapshot()
    snap = json.loads(json.dumps(a.snapshot()))
    c = State()
    c.apply({"Op": "restore", "Snapshot": snap})
    assert acl_state.token_by_secret(c, "s1")["AccessorID"] == "a1"
    assert c.snapshot()["ACL"] == a.snapshot()["ACL"]
    c.apply({"Op": "acl_token_delete", "AccessorID": "a1"})  # the restored state still applies ACL commands
    assert acl_state.token_by_secret(c, "s1") is None


def test_links_resolve_names_and_refuse_unknown_policies() -> None:
    state = State()
    for cmd in commands():
        state.apply(cmd)
    tok = acl_state.token_json(state, state.acl["Tokens"]["a1"])
    assert tok["Policies"] == [{"ID": "p1", "Name": "app"}] and tok["Roles"] == [{"ID": "r1", "Name": "ops"}]
    bad = state.apply({"Op": "acl_token_set", "Create": True, "Now": NOW,
                       "Token": {"AccessorID": "a2", "SecretID": "s2", "Policies": [{"Name": "nope"}]}})
    assert bad["Status"] == 400 and "nope" in bad["Error"]
    texts, _, _ = acl_state.token_sources(state, state.acl["Tokens"]["a1"])
    assert texts == ['key_prefix "app/" { policy = "read" }']  # via the policy and via the role, once


def test_deleted_policy_disappears_from_token_links() -> None:
    state = State()
    for cmd in commands():
        state.apply(cmd)
    state.apply({"Op": "acl_policy_delete", "ID": "p1"})
    tok = acl_state.token_json(state, state.acl["Tokens"]["a1"])
    assert "Policies" not in tok
    assert acl_state.token_sources(state, state.acl["Tokens"]["a1"])[0] == []


def test_names_are_unique_and_builtins_protected() -> None:
    state = State()
    for cmd in commands():
        state.apply(cmd)
    dup = state.apply({"Op": "acl_policy_set", "Create": True, "Policy": {"ID": "p2", "Name": "app"}})
    assert dup["Status"] == 400 and "already exists" in dup["Error"]
    assert state.apply({"Op": "acl_policy_delete", "ID": acl_state.GLOBAL_MANAGEMENT_ID})["Status"] == 400
    assert state.apply({"Op": "acl_token_delete", "AccessorID": acl_state.ANONYMOUS_ACCESSOR})["Status"] == 400
    taken = state.apply({"Op": "acl_token_set", "Create": True, "Token": {"AccessorID": "a9", "SecretID": "s1"}})
    assert "SecretID is already in use" in taken["Error"]
    change = state.apply({"Op": "acl_token_set", "Create": False, "Token": {"AccessorID": "a1", "SecretID": "new"}})
    assert "SecretID is not permitted" in change["Error"]
