"""meshctl as PID 1 in a real container: zombies reaped, signals forwarded, `docker stop` graceful.

Each render runs `sh -c 'echo >> runs; sleep 0.01 &'`: the shell exits at once and leaves its
`sleep` an orphan, which the kernel hands to the container's PID 1. Zombies are counted from the
host's /proc under the container's PID 1.
"""

from __future__ import annotations

import json

import pytest
import requests
from devserver import start_dev_server
from docker_engine import wait_until

from .helpers import descendants, shared_dir, zombies

pytestmark = pytest.mark.integration

ORPHANING = "echo x >> /mnt/job/runs; sleep 0.01 &"


@pytest.fixture
def store(tmp_path):
    server = start_dev_server(tmp_path)
    yield server
    server.stop()


def _render_n_times(dockerd, meshctl_image, store, shared, name: str, renders: int, *env: str) -> int:
    """Start a template container, drive `renders` renders through KV; the container's host pid."""
    (shared / "in.tmpl").write_text('{{ key "pid1/n" }}')
    kv = f"{store.url}/v1/kv/pid1/n"
    requests.put(kv, data=b"0", timeout=5).raise_for_status()
    dockerd.run(name, "-v", f"{shared}:/mnt/job", "-e", f"CONSUL_HTTP_ADDR={store.addr}", *env, image=meshctl_image,
                cmd=("template", "-template", f"/mnt/job/in.tmpl:/mnt/job/out:{ORPHANING}"))
    out, runs = shared / "out", shared / "runs"
    wait_until(lambda: out.exists() and out.read_text() == "0", 30, what="the first render")
    for i in range(1, renders):
        requests.put(kv, data=str(i).encode(), timeout=5).raise_for_status()
        wait_until(lambda i=i: out.read_text() == str(i), 30, 0.01, f"render {i}")
    wait_until(lambda: runs.exists() and len(runs.read_text().splitlines()) == renders, 30, what="every command run")
    return int(dockerd.docker("inspect", "--format", "{{.State.Pid}}", name))


def test_100_renders_leave_no_zombie_and_docker_stop_is_graceful(dockerd, meshctl_image, store):
    name = "pid1-reap"
    with shared_dir() as shared:
        try:
            pid = _render_n_times(dockerd, meshctl_image, store, shared, name, 100)
            # the orphaned sleeps end within moments; none may stay a zombie
            wait_until(lambda: not any(s == "S" and "sleep" in _comm(p) for p, s in descendants(pid).items()),
                       30, what="the orphaned sleeps to end")
            wait_until(lambda: zombies(pid) == 0, 30, what=f"no zombie left (now {zombies(pid)})")
            dockerd.docker("stop", "--time", "20", name, timeout=60)
            state = json.loads(dockerd.docker("inspect", "--format", "{{json .State}}", name))
            # SIGTERM is a graceful stop (exit 0); 137 would be Docker's SIGKILL after the timeout
            assert (state["Running"], state["ExitCode"], state["OOMKilled"]) == (False, 0, False)
        finally:
            dockerd.rm(name)


def test_without_the_init_the_same_renders_pile_up_zombies(dockerd, meshctl_image, store):
    """MESHCTL_REAP=0: the tool itself is PID 1, and the orphans of its commands stay zombies."""
    name = "pid1-noreap"
    with shared_dir() as shared:
        try:
            pid = _render_n_times(dockerd, meshctl_image, store, shared, name, 20, "-e", "MESHCTL_REAP=0")
            wait_until(lambda: zombies(pid) >= 20, 30, what="one zombie per render")
        finally:
            dockerd.rm(name)


def test_signals_reach_the_tool_and_its_child_and_stop_ends_the_child(dockerd, meshctl_image, store):
    """`meshctl lock` as PID 1: SIGHUP relayed by the init to lock, by lock to its child; stop ends both."""
    name = "pid1-lock"
    child = "trap 'echo hup >> /mnt/job/signals' HUP; trap 'echo term >> /mnt/job/signals; exit 0' TERM; " \
            "echo started >> /mnt/job/signals; while :; do sleep 0.05; done"
    with shared_dir() as shared:
        log = shared / "signals"
        try:
            dockerd.run(name, "-v", f"{shared}:/mnt/job", "-e", f"CONSUL_HTTP_ADDR={store.addr}", image=meshctl_image,
                        cmd=("lock", "pid1/lock", child))
            wait_until(lambda: log.exists() and "started" in log.read_text(), 30, what="the child under the lock")
            dockerd.docker("kill", "--signal", "HUP", name)
            wait_until(lambda: "hup" in log.read_text(), 30, what="SIGHUP at the child")
            assert json.loads(dockerd.docker("inspect", "--format", "{{json .State.Running}}", name)) is True
            dockerd.docker("stop", "--time", "20", name, timeout=60)
            code = int(dockerd.docker("inspect", "--format", "{{.State.ExitCode}}", name))
            assert "term" in log.read_text()
            assert code in (0, 143)  # never 137: the stop timeout was not needed
            held = requests.get(f"{store.url}/v1/kv/pid1/lock/.lock", timeout=5)
            assert held.status_code == 404 or not held.json()[0].get("Session")  # released on the way out
        finally:
            dockerd.rm(name)


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""
