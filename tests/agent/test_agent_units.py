"""Check runner rules, output capping, edge-triggered writes, config files, docker mapping, reaper."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from meshctl.server.agent.checks import CriticalReaper, DockerCheck, StatusHandler, cap_tail, exit_status
from meshctl.server.agent.config import load_paths
from meshctl.server.agent.definitions import parse_check
from meshctl.server.agent.local import LocalAgent
from meshctl.server.state import State
from meshctl.server.store import LocalStore


class CountingStore(LocalStore):
    def __init__(self) -> None:
        super().__init__(State())
        self.writes = 0

    async def apply(self, command: dict[str, Any]) -> Any:
        self.writes += 1
        return await super().apply(command)


async def make_agent() -> tuple[LocalAgent, CountingStore]:
    store = CountingStore()
    agent = LocalAgent(store, "n1")
    await agent.start()
    await agent.add_service({"Name": "web", "Check": {"TTL": "60s"}})
    return agent, store


def test_exit_codes_follow_nagios():
    assert [exit_status(c) for c in (0, 1, 2, 127, None)] == ["passing", "warning", "critical", "critical", "critical"]


def test_output_keeps_the_last_4k_with_a_note():
    data = b"a" * 5000 + b"END"
    out = cap_tail(data, 4096)
    assert out.startswith("Captured 4096 of 5003 bytes\n...\n") and out.endswith("END")
    assert cap_tail(b"short", 4096) == "short"


def test_repeated_results_cause_no_writes_and_output_only_changes_are_deferred():
    async def run() -> None:
        agent, store = await make_agent()
        before = store.writes
        await agent.update_check("service:web", "passing", "ok")
        assert store.writes == before + 1
        for _ in range(100):
            await agent.update_check("service:web", "passing", "ok")
        assert store.writes == before + 1
        await agent.update_check("service:web", "passing", "ok, but different words")
        assert store.writes == before + 1  # deferred (check_update_interval)
        assert agent.checks["service:web"].output == "ok, but different words"
        agent.output_update_interval = 0.05
        agent._stop_check("service:web")  # drop the 5-minute timer; next change uses the short one
        await agent.update_check("service:web", "passing", "third words")
        await asyncio.sleep(0.2)
        assert store.writes == before + 2
        assert store.state.checks["n1"]["service:web"]["Output"] == "third words"
        await agent.update_check("service:web", "critical", "down")
        assert store.writes == before + 3
        await agent.stop()

    asyncio.run(run())


def test_success_and_failure_thresholds():
    async def run() -> None:
        agent, _ = await make_agent()
        check = parse_check({"TTL": "60s", "SuccessBeforePassing": 2, "FailuresBeforeCritical": 3,
                             "FailuresBeforeWarning": 2}, "web", "web")
        handler = StatusHandler(agent, check)
        status = lambda: agent.checks["service:web"].status  # noqa: E731
        await handler.update("passing", "")
        assert status() == "critical"
        await handler.update("passing", "")
        assert status() == "passing"
        await handler.update("critical", "")
        assert status() == "passing"
        await handler.update("critical", "")
        assert status() == "warning"
        await handler.update("critical", "")
        assert status() == "critical"
        await agent.stop()

    asyncio.run(run())


def test_reaper_deregisters_services_critical_too_long():
    async def run() -> None:
        agent, _ = await make_agent()
        await agent.add_service({"Name": "flaky", "Check": {"TTL": "60s", "DeregisterCriticalServiceAfter": "1m"}})
        reaper = CriticalReaper(agent)
        assert await reaper.reap(1000.0) == []
        assert await reaper.reap(1030.0) == []
        assert await reaper.reap(1061.0) == ["flaky"]
        assert "flaky" not in agent.services and "web" in agent.services
        await agent.stop()

    asyncio.run(run())


class FakeDocker:
    def __init__(self, code: int, output: bytes) -> None:
        self.code, self.output = code, output
        self.calls: list[Any] = []

    def exec_create(self, container: str, cmd: list[str], stdout: bool, stderr: bool) -> dict[str, str]:
        self.calls.append((container, cmd))
        return {"Id": "exec1"}

    def exec_start(self, exec_id: str, stream: bool, demux: bool) -> bytes:
        return self.output

    def exec_inspect(self, exec_id: str) -> dict[str, Any]:
        return {"ExitCode": self.code}


@pytest.mark.parametrize("code,status", [(0, "passing"), (1, "warning"), (3, "critical")])
def test_docker_check_maps_exec_exit_codes(code, status):
    check = parse_check({"Name": "d", "DockerContainerID": "c1", "Shell": "/bin/bash", "Args": ["check.sh"], "Interval": "10s"})
    runner = DockerCheck(None, check)  # type: ignore[arg-type]
    fake = FakeDocker(code, b"out")
    runner.client_factory = lambda: fake
    assert runner.run_exec() == (status, "out")
    assert fake.calls == [("c1", ["check.sh"])]


def test_config_files_in_json_hcl_and_yaml(tmp_path):
    (tmp_path / "1.json").write_text('{"service": {"name": "a", "port": 1}, "enable_local_script_checks": true}')
    (tmp_path / "2.hcl").write_text('''
service {
  name = "b"
  tags = ["x"]
  check {
    http     = "http://127.0.0.1:1/"
    interval = "5s"
  }
  check {
    tcp      = "127.0.0.1:1"
    interval = "5s"
  }
}
service {
  name = "c"
}
dns_config {
  only_passing = true
  service_ttl = { "*" = "5s" }
}
recursors = ["127.0.0.1:5353"]
''')
    (tmp_path / "3.yaml").write_text("checks:\n  - name: mem\n    ttl: 30s\n")
    (tmp_path / "ignored.txt").write_text("not config")
    cfg = load_paths([str(tmp_path)], [])
    assert [s.get("name") for s in cfg.services] == ["a", "b", "c"]
    assert len(cfg.services[1]["checks"]) == 2
    assert cfg.checks == [{"name": "mem", "ttl": "30s"}]
    assert cfg.settings.dns_config.only_passing is True and cfg.settings.dns_config.service_ttl == {"*": 5.0}
    assert cfg.settings.recursors == ["127.0.0.1:5353"] and cfg.settings.enable_local_script_checks is True
