"""`meshctl debug`: Consul's bundle layout, a progress line per capture, and no secret in the archive."""

from __future__ import annotations

import json
import signal
import tarfile
import threading
import uuid
from pathlib import Path

import pytest
import requests
from devserver import start_dev_server
from metrics_support import meshctl_env, popen_meshctl, run_meshctl

pytestmark = pytest.mark.integration

ROOT = "root-" + uuid.uuid4().hex
KEY = "pTiP5rW0v3wXJ7Yp4gE2bM1qL8nZ6cV9kD0sH3fA5uQ="


@pytest.fixture(scope="module")
def acl_agent(tmp_path_factory):
    server = start_dev_server(tmp_path_factory.mktemp("debug"), "-acl-enabled", "-acl-default-policy", "deny",
                              "-acl-initial-management", ROOT, "-encrypt", KEY)
    yield server
    server.stop()


def _files(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def test_bundle_layout_progress_and_no_secrets(acl_agent, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    env = meshctl_env(acl_agent.addr, CONSUL_HTTP_TOKEN=ROOT)
    proc = popen_meshctl("debug", "-duration", "10s", "-interval", "5s", "-output", str(out), env=env)
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if "Capture successful" in line and len([x for x in lines if "Capture successful" in x]) == 1:
            # something to log while the logs are captured (a reload logs a line; the token is in its request)
            threading.Thread(target=lambda: requests.put(f"{acl_agent.url}/v1/agent/reload?token={ROOT}",
                                                         timeout=10), daemon=True).start()
    assert proc.wait(60) == 0, "".join(lines)
    text = "".join(lines)
    assert "Starting debugger and capturing static information..." in text
    assert text.count("Capture successful") >= 2
    assert f"Saved debug archive: {out}.tar.gz" in text
    assert not out.exists()
    files = _files(Path(f"{out}.tar.gz"))
    names = {name.split("/", 1)[1] for name in files}
    assert {"agent.json", "members.json", "host.json", "metrics.json", "consul.log", "index.json"} <= names
    assert all(name.startswith("bundle/") for name in files)
    index = json.loads(files["bundle/index.json"])
    assert index["Version"] == 1 and index["Interval"] == "5s" and index["Duration"] == "12s"
    assert set(index["Targets"]) == {"metrics", "logs", "host", "agent", "members"} and index["AgentVersion"]
    assert json.loads(files["bundle/agent.json"])["Config"]["NodeName"] == "devnode"
    assert json.loads(files["bundle/members.json"])[0]["Name"] == "devnode"
    assert json.loads(files["bundle/host.json"])["Host"]["hostname"]
    samples = [json.loads(line) for line in files["bundle/metrics.json"].splitlines()]
    assert len(samples) >= 2 and all({"Gauges", "Counters", "Samples"} <= set(s) for s in samples)
    assert b"configuration reloaded" in files["bundle/consul.log"]
    for name, data in files.items():
        assert ROOT.encode() not in data, name
        assert KEY.encode() not in data, name


def test_interrupted_it_still_writes_the_bundle(acl_agent, tmp_path: Path) -> None:
    out = tmp_path / "cut-short"
    env = meshctl_env(acl_agent.addr, CONSUL_HTTP_TOKEN=ROOT)
    proc = popen_meshctl("debug", "-duration", "5m", "-interval", "30s", "-output", str(out), env=env)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "Capture successful" in line:
            proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 0, "".join(lines)
    assert "stopping collection due to shutdown signal" in "".join(lines)
    files = _files(Path(f"{out}.tar.gz"))
    assert "cut-short/index.json" in files and "cut-short/agent.json" in files


def test_capture_subset_and_archive_false(acl_agent, tmp_path: Path) -> None:
    out = tmp_path / "static"
    env = meshctl_env(acl_agent.addr, CONSUL_HTTP_TOKEN=ROOT)
    r = run_meshctl("debug", "-capture", "agent", "-capture", "host", "-archive=false", "-output", str(out), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["agent.json", "host.json", "index.json", "listpeers.json"]
    agent = (out / "agent.json").read_text()
    assert ROOT not in agent and KEY not in agent


@pytest.mark.parametrize("args, message", [
    (["-duration", "5s"], "duration must be longer than 10s"),
    (["-interval", "1s"], "interval must be longer than 5s"),
    (["-duration", "20s", "-interval", "30s"], "duration (20s) must be longer than interval (30s)"),
    (["-capture", "nothing"], "target not found: nothing"),
])
def test_bad_flags_are_refused_in_consuls_words(acl_agent, tmp_path: Path, args: list[str], message: str) -> None:
    env = meshctl_env(acl_agent.addr, CONSUL_HTTP_TOKEN=ROOT)
    r = run_meshctl("debug", *args, "-output", str(tmp_path / "x"), env=env)
    assert r.returncode == 1 and message in r.stderr, r.stdout + r.stderr


def test_an_existing_output_is_not_overwritten(acl_agent, tmp_path: Path) -> None:
    env = meshctl_env(acl_agent.addr, CONSUL_HTTP_TOKEN=ROOT)
    r = run_meshctl("debug", "-capture", "agent", "-output", str(tmp_path), env=env)
    assert r.returncode == 1 and "output directory already exists" in r.stderr
