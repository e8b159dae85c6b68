"""/v1/operator/autopilot on a -dev agent: Consul's JSON shapes, CAS updates, bad input."""

from __future__ import annotations

import pytest
import requests
from devserver import DevServer

pytestmark = pytest.mark.integration

CONFIG_KEYS = {"CleanupDeadServers", "LastContactThreshold", "MaxTrailingLogs", "MinQuorum",
               "ServerStabilizationTime", "RedundancyZoneTag", "DisableUpgradeMigration", "UpgradeVersionTag",
               "CreateIndex", "ModifyIndex"}


def test_configuration_defaults_cas_and_bad_input(dev_server: DevServer) -> None:
    url = f"{dev_server.url}/v1/operator/autopilot/configuration"
    config = requests.get(url, timeout=10).json()
    assert set(config) == CONFIG_KEYS
    assert (config["CleanupDeadServers"], config["LastContactThreshold"], config["MaxTrailingLogs"],
            config["ServerStabilizationTime"]) == (False, "200ms", 250, "10s")

    config.update(CleanupDeadServers=True, ServerStabilizationTime="30s", MaxTrailingLogs=100)
    r = requests.put(url, json=config, timeout=10)
    assert r.status_code == 200 and r.json() is True
    now = requests.get(url, timeout=10).json()
    assert (now["CleanupDeadServers"], now["ServerStabilizationTime"], now["MaxTrailingLogs"]) == (True, "30s", 100)
    assert now["ModifyIndex"] > 0

    # a check-and-set with a stale index is refused and changes nothing; the current one applies
    stale = requests.put(url, params={"cas": str(now["ModifyIndex"] - 1)}, json={**now, "MinQuorum": 3}, timeout=10)
    assert stale.status_code == 200 and stale.json() is False
    assert requests.get(url, timeout=10).json()["MinQuorum"] == 0
    fresh = requests.put(url, params={"cas": str(now["ModifyIndex"])}, json={**now, "MinQuorum": 3}, timeout=10)
    assert fresh.json() is True
    assert requests.get(url, timeout=10).json()["MinQuorum"] == 3
    # a number is nanoseconds, as Go's ReadableDuration reads it
    assert requests.put(url, json={"LastContactThreshold": 500_000_000}, timeout=10).json() is True
    assert requests.get(url, timeout=10).json()["LastContactThreshold"] == "500ms"

    for bad in ({"LastContactThreshold": "soon"}, {"MaxTrailingLogs": -1}, {"CleanupDeadServers": "yes"}):
        r = requests.put(url, json=bad, timeout=10)
        assert r.status_code == 400, (bad, r.text)
        assert next(iter(bad)) in r.text
    assert requests.put(url, data=b"{not json", timeout=10).status_code == 400
    assert requests.get(url, timeout=10).json()["LastContactThreshold"] == "500ms"  # nothing changed


def test_health_and_state_of_the_only_server(dev_server: DevServer) -> None:
    health = requests.get(f"{dev_server.url}/v1/operator/autopilot/health", timeout=10)
    assert health.status_code == 200
    body = health.json()
    assert body["Healthy"] is True and body["FailureTolerance"] == 0
    (server,) = body["Servers"]
    assert server["Leader"] is True and server["Voter"] is True and server["SerfStatus"] == "alive"
    assert server["Name"] == dev_server.node and server["StableSince"].endswith("Z")
    state = requests.get(f"{dev_server.url}/v1/operator/autopilot/state", timeout=10).json()
    assert state["Voters"] == [server["ID"]] and state["Leader"] == server["ID"]
    assert state["Servers"][server["ID"]]["Status"] == "leader"
    assert state["Servers"][server["ID"]]["NodeType"] == "voter"


def test_the_configuration_is_in_snapshots() -> None:
    from meshctl.server.commands import AutopilotSet, Restore
    from meshctl.server.state import State

    state = State("dc1")
    assert "Autopilot" not in state.snapshot()  # as older snapshots: the agent's defaults apply
    assert state.apply(AutopilotSet({"CleanupDeadServers": False})) is True
    restored = State("dc1")
    restored.apply(Restore(state.snapshot()))
    assert restored.autopilot == state.autopilot and restored.autopilot["CleanupDeadServers"] is False
