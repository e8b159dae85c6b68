"""The scenario both proxy examples must pass, run the way a user runs them (`python3 run.py`).

Backends name themselves in every answer, so the tests see which backend served each
request that went through the real proxy.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import requests

PY = sys.executable
ROOT = Path(__file__).resolve().parents[2]
BACKEND = ROOT / "examples" / "haproxy" / "backend.py"


def free_port() -> int:
    from devserver import free_port as fp

    return fp()


class Example:
    """A running examples/<proxy>/run.py and what it printed."""

    def __init__(self, script: Path, tmp_path: Path, *args: str) -> None:
        self.workdir = tmp_path / "work"
        self.lines: list[str] = []
        self.extra: list[subprocess.Popen[bytes]] = []
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("CONSUL_HTTP_ADDR", None)
        self.proc = subprocess.Popen([PY, str(script), "--workdir", str(self.workdir), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 90
        while "ready" not in self.lines:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{script} did not get ready:\n" + "\n".join(self.lines) + self.logs())
            time.sleep(0.1)
        self.state = json.loads((self.workdir / "state.json").read_text())
        self.url = self.state["proxy"]

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def logs(self) -> str:
        out = []
        for path in sorted(self.workdir.glob("*.log")):
            out.append(f"\n--- {path.name}\n" + path.read_text(errors="replace")[-3000:])
        return "".join(out)

    def who(self, path: str = "/") -> str:
        """Which backend answered one request through the proxy."""
        r = requests.get(self.url.rstrip("/") + path, timeout=10)
        assert r.status_code == 200, (r.status_code, r.text)
        return r.text.strip().removeprefix("hello from ").removesuffix(" (slow)")

    def sample(self, n: int = 30) -> Counter[str]:
        return Counter(self.who() for _ in range(n))

    def wait_for(self, predicate, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; config:\n{Path(self.state['config']).read_text()}"
                             + self.logs())

    def backend(self, name: str) -> str:
        return f"http://127.0.0.1:{self.state['backends'][name]}"

    def add_backend(self, name: str) -> int:
        port = free_port()
        self.extra.append(subprocess.Popen([PY, str(BACKEND), name, str(port), "--consul", self.state["consul"]],
                                           env={**os.environ, "PYTHONPATH": str(ROOT)}))
        return port

    def stop(self) -> int:
        for p in self.extra:
            p.send_signal(signal.SIGTERM)
            p.wait(15)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


class Load:
    """Requests through the proxy from a few threads, each on a new connection, until stopped."""

    def __init__(self, url: str, threads: int = 2) -> None:
        self.url = url
        self.results: list[tuple[float, str]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for t in self._threads:
            t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                r = requests.get(self.url, timeout=10)
                if r.status_code == 200 and r.text.startswith("hello from "):
                    self.results.append((time.monotonic(), r.text.strip().removeprefix("hello from ")))
                else:
                    self.failures.append(f"{r.status_code} {r.text[:80]!r}")
            except requests.RequestException as e:
                self.failures.append(repr(e))

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)


def draining_workers() -> list[int]:
    """Pids of nginx workers still shutting down after a reload (their title says so)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"worker process is shutting down" in title:
                pids.append(int(entry.name))
    return pids


def run_scenario(example: Example) -> None:
    """Every healthy backend is reached; a failing one is dropped; a new one is added; nothing is dropped."""
    backends = sorted(example.state["backends"])
    assert backends == ["web-1", "web-2", "web-3"]
    assert set(example.sample(30)) == set(backends)

    load = Load(example.url)
    try:
        # A backend whose check fails stops receiving traffic after the re-render + reload.
        port2 = str(example.state["backends"]["web-2"])
        requests.post(example.backend("web-2") + "/fail", timeout=5).raise_for_status()
        config = Path(example.state["config"])
        example.wait_for(lambda: port2 not in config.read_text(), "web-2 to leave the proxy config")
        example.wait_for(lambda: "web-2" not in example.sample(12), "web-2 to stop receiving requests")
        # the reload is over once the old workers have drained (nginx keeps them a moment)
        example.wait_for(lambda: not draining_workers(), "old proxy workers to exit")
        seen = example.sample(30)
        assert set(seen) == {"web-1", "web-3"}, f"{seen}; config:\n{config.read_text()}{example.logs()}"

        # A request in flight while the proxy reloads completes.
        slow: dict[str, object] = {}
        slow_thread = threading.Thread(target=lambda: slow.update(who=example.who("/slow?s=6")), daemon=True)
        slow_thread.start()
        time.sleep(0.5)

        # A new backend starts receiving traffic.
        port4 = example.add_backend("web-4")
        example.wait_for(lambda: str(port4) in config.read_text(), "web-4 to enter the proxy config")
        example.wait_for(lambda: "web-4" in example.sample(12), "web-4 to receive requests")
        seen = example.sample(40)
        assert set(seen) == {"web-1", "web-3", "web-4"}, f"{seen}; config:\n{config.read_text()}{example.logs()}"
        slow_thread.join(20)
        assert slow.get("who") in {"web-1", "web-3"}, slow

        # Recovery: web-2 passes again and is back.
        requests.post(example.backend("web-2") + "/recover", timeout=5).raise_for_status()
        example.wait_for(lambda: "web-2" in example.sample(12), "web-2 to come back")
    finally:
        load.stop()
    assert len(load.results) > 20
    assert load.failures == [], f"{len(load.failures)} failed of {len(load.results)}: {load.failures[:5]}"


def assert_all_stopped(example: Example, code: int) -> None:
    """Ctrl-C ends run.py with 0 and takes the proxy and the backends down with it."""
    assert code == 0, "\n".join(example.lines) + example.logs()
    deadline = time.monotonic() + 15
    leftovers = []
    while time.monotonic() < deadline:
        ps = subprocess.run(["pgrep", "-f", str(example.workdir)], capture_output=True, text=True)
        leftovers = ps.stdout.split()
        if not leftovers:
            break
        time.sleep(0.2)
    assert leftovers == [], f"processes still running: {leftovers}"
    for name in example.state["backends"]:
        try:
            requests.get(example.backend(name), timeout=2)
        except requests.ConnectionError:
            continue
        raise AssertionError(f"backend {name} still serving")
