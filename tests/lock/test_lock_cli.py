"""`meshctl lock` as real processes against a dev server: mutual exclusion over many hand-overs,
SIGKILLed holders, semaphores, signals, lost locks and consul lock's exit codes.

Every child logs `start`/`stop` lines with wall-clock times to one file (O_APPEND); the tests
check that the intervals of the children never overlap (or never exceed the semaphore limit).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from meshctl.client import Client
from meshctl.client.lock import LOCK_FLAG_VALUE

pytestmark = pytest.mark.integration
PY = sys.executable
ROOT = str(Path(__file__).resolve().parents[2])

# The child: logs start, runs `seconds` (forever if < 0), logs stop on exit or SIGTERM/SIGINT.
WORKER = textwrap.dedent("""
    import os, signal, sys, time
    log, seconds = sys.argv[1], float(sys.argv[2])
    ignore_term = len(sys.argv) > 3 and sys.argv[3] == "ignore-term"
    def note(what):
        line = f"{what} {os.getpid()} {time.time():.6f} {os.environ.get('CONSUL_LOCK_HELD')}\\n"
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, line.encode())
        os.close(fd)
    def on_signal(sig, frame):
        note(signal.Signals(sig).name)
        if sig in (signal.SIGTERM, signal.SIGINT) and not ignore_term:
            note("stop")
            os._exit(0)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGHUP):
        signal.signal(s, on_signal)
    note("start")
    deadline = time.monotonic() + (seconds if seconds >= 0 else 1e9)
    while time.monotonic() < deadline:
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    note("stop")
""")


@dataclass
class Interval:
    pid: int
    start: float
    stop: float | None
    held: str


def wait_for(predicate, timeout: float = 20.0, what: str = "condition", interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def read_log(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def intervals(path: Path) -> list[Interval]:
    by_pid: dict[int, Interval] = {}
    for what, pid, ts, held in read_log(path):
        if what == "start":
            by_pid[int(pid)] = Interval(int(pid), float(ts), None, held)
        elif what == "stop" and int(pid) in by_pid and by_pid[int(pid)].stop is None:
            by_pid[int(pid)].stop = float(ts)
    return sorted(by_pid.values(), key=lambda i: i.start)


def starts(path: Path) -> int:
    return sum(1 for line in read_log(path) if line[0] == "start")


def alive(pid: int) -> bool:
    """Running, not a zombie (an orphan's zombie may linger here: PID 1 does not always reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def max_concurrency(items: list[Interval]) -> int:
    events = sorted([(i.start, 1) for i in items] + [(i.stop or float("inf"), -1) for i in items],
                    key=lambda e: (e[0], e[1]))
    current = peak = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return peak


class Harness:
    """Spawns `meshctl lock` processes against one server; every output goes to files in tmp."""

    def __init__(self, server, tmp_path: Path) -> None:
        self.server = server
        self.tmp = tmp_path
        self.worker = tmp_path / "worker.py"
        self.worker.write_text(WORKER)
        self.log = tmp_path / "intervals.log"
        self.procs: list[subprocess.Popen] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CONSUL_")}
        self.env["PYTHONPATH"] = ROOT + os.pathsep + self.env.get("PYTHONPATH", "")
        # -shell runs `$SHELL -c`: pin it, since bash execs a lone command while dash forks.
        self.env["SHELL"] = "/bin/sh"

    def work(self, seconds: float, *extra: str) -> list[str]:
        return [PY, str(self.worker), str(self.log), str(seconds), *extra]

    def spawn(self, *args: str, stdin=subprocess.DEVNULL) -> subprocess.Popen:
        n = len(self.procs)
        out = open(self.tmp / f"lock-{n}.out", "wb")
        err = open(self.tmp / f"lock-{n}.err", "wb")
        cmd = [PY, "-m", "meshctl", "lock", "-http-addr", self.server.addr, *args]
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=stdin, env=self.env, cwd=ROOT)
        proc.index = n  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def spawn_python(self, code: str) -> subprocess.Popen:
        """Run the LockRunner through its Python API (to set session_ttl / lock_delay)."""
        n = len(self.procs)
        out = open(self.tmp / f"lock-{n}.out", "wb")
        err = open(self.tmp / f"lock-{n}.err", "wb")
        proc = subprocess.Popen([PY, "-c", code], stdout=out, stderr=err, env=self.env, cwd=ROOT)
        self.procs.append(proc)
        return proc

    def stderr(self, proc: subprocess.Popen) -> str:
        return (self.tmp / f"lock-{proc.index}.err").read_text()  # type: ignore[attr-defined]

    def stdout(self, proc: subprocess.Popen) -> str:
        return (self.tmp / f"lock-{proc.index}.out").read_text()  # type: ignore[attr-defined]

    def run(self, *args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        cmd = [PY, "-m", "meshctl", "lock", "-http-addr", self.server.addr, *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self.env, cwd=ROOT, **kw)

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def runner_code(addr: str, prefix: str, command: list[str], **options) -> str:
    opts = ", ".join(f"{k}={v!r}" for k, v in options.items())
    return textwrap.dedent(f"""
        import sys
        from meshctl.client import Client
        from meshctl.lock import LockConfig, LockRunner
        cfg = LockConfig(prefix={prefix!r}, command={command!r}, shell=False, {opts})
        sys.exit(LockRunner(Client({addr!r}), cfg).run())
    """)


@pytest.fixture(scope="module")
def server(shared_dev_server):
    return shared_dev_server


@pytest.fixture
def h(server, tmp_path):
    harness = Harness(server, tmp_path)
    yield harness
    harness.close()


@pytest.fixture
def client(server):
    with Client(server.addr) as c:
        yield c


@pytest.fixture
def prefix(request):
    return f"clitest/{request.node.name}/{uuid.uuid4().hex[:6]}"


def holder_session(client: Client, key: str) -> str:
    return wait_for(lambda: (client.kv.get(key).value or None) and client.kv.get(key).value.session,
                    what=f"a holder on {key}")


# -- mutual exclusion ------------------------------------------------------------------------


def test_three_contenders_exactly_one_child_for_20_handovers(h, prefix):
    contenders = [h.spawn("-shell=false", prefix, *h.work(0.1)) for _ in range(3)]
    deadline = time.monotonic() + 240  # a hang guard, not a speed bound (bench/lock.py measures hand-overs)
    while starts(h.log) < 21:
        assert time.monotonic() < deadline, "stuck: fewer than 20 hand-overs in 240s"
        for i, p in enumerate(contenders):
            if p.poll() is not None:
                assert p.returncode == 0, h.stderr(p)
                contenders[i] = h.spawn("-shell=false", prefix, *h.work(0.1))
        time.sleep(0.02)
    h.close()
    runs = intervals(h.log)
    assert len(runs) >= 21
    assert all(r.stop is not None and r.held == "true" for r in runs)
    for before, after in zip(runs, runs[1:], strict=False):
        assert after.start >= before.stop, f"overlap: {before} / {after}"


def test_sigkilled_holder_is_replaced_after_ttl_and_lock_delay_never_before(h, client, prefix):
    key = f"{prefix}/.lock"
    # Holder: the runner with a 10s session TTL (the server's minimum) and Consul's default lock-delay.
    holder = h.spawn_python(runner_code(h.server.addr, prefix, h.work(-1), session_ttl="10s"))
    wait_for(lambda: starts(h.log) == 1, what="holder's child")
    sid = holder_session(client, key)
    standby = h.spawn("-shell=false", prefix, *h.work(-1))
    wait_for(lambda: len(client.session.list_all().value) >= 2, what="standby's session")

    holder.send_signal(signal.SIGKILL)
    killed_at = time.time()
    holder.wait(10)
    # Watch the holder's session until the server invalidates it (TTL x 2 without renewal).
    index = 0
    deadline = time.monotonic() + 40
    while True:
        assert time.monotonic() < deadline, "the killed holder's session never expired"
        reply = client.session.info(sid, index=index, wait="5s")
        if reply.value is None:
            invalidated_at = time.time()
            break
        index = reply.index
    wait_for(lambda: starts(h.log) == 2, timeout=30, what="standby takes over")
    first, second = intervals(h.log)
    assert first.stop is not None and first.stop < killed_at + 2  # the orphan got SIGTERM at once
    assert 10 <= invalidated_at - killed_at <= 22
    assert second.start - invalidated_at >= 15 - 0.5, "took over before the lock-delay ran out"
    assert second.start - invalidated_at <= 15 + 5 + 3  # lock-delay + one 5s retry + slack
    assert standby.poll() is None


# -- semaphore ----------------------------------------------------------------------------------


def test_semaphore_three_of_six_and_document_stays_consistent(h, client, prefix):
    # each holder works 5 s: long enough that none finishes while the test picks its victims
    procs = [h.spawn("-n", "3", "-shell=false", "-name", f"c{i}", prefix, *h.work(5)) for i in range(6)]
    lock_key = f"{prefix}/.lock"

    def doc() -> dict:
        pair = client.kv.get(lock_key).value
        return json.loads(pair.value) if pair and pair.value else {"Limit": 3, "Holders": {}}

    def check_consistent() -> None:
        d = doc()
        live = {p.session for p in client.kv.list_prefix(prefix).value if p.session}
        assert d["Limit"] == 3 and len(d["Holders"]) <= 3
        # Holders may include a dead session until the next CAS prunes it, but never more than 3.
        assert len(set(d["Holders"]) & live) <= 3

    wait_for(lambda: len(doc()["Holders"]) == 3, what="three holders")
    check_consistent()
    wait_for(lambda: len(client.session.list_all().value) == 6, what="six contenders with sessions")
    names = {s["Name"]: s["ID"] for s in client.session.list_all().value}
    holders = set(doc()["Holders"])
    sid_of = {p: names[f"c{i}"] for i, p in enumerate(procs)}
    victim = next(p for p in procs if sid_of[p] in holders)
    waiter = next(p for p in procs if sid_of[p] not in holders)
    waiter_sid, victim_sid = sid_of[waiter], sid_of[victim]

    waiter.send_signal(signal.SIGTERM)  # a waiting contender leaves: its contender key goes
    assert waiter.wait(15) == 1
    wait_for(lambda: client.kv.get(f"{prefix}/{waiter_sid}").value is None, what="waiter's key removed")

    victim.send_signal(signal.SIGKILL)  # a holder dies; its slot is freed when its session goes
    victim.wait(10)
    client.session.destroy(victim_sid)  # what the server does when the TTL runs out
    wait_for(lambda: victim_sid not in doc()["Holders"], what="dead holder pruned")
    check_consistent()

    for p in procs:
        if p not in (victim, waiter):
            assert p.wait(60) == 0, h.stderr(p)
    runs = intervals(h.log)
    assert len(runs) == 5  # six contenders, one left while waiting
    assert max_concurrency(runs) == 3
    assert all(r.stop is not None for r in runs)
    assert doc()["Holders"] == {}
    assert [k for k in client.kv.keys(prefix).value if not k.endswith("/.lock")] == []


# -- signals, lost locks, exit codes ----------------------------------------------------------


def test_signals_are_forwarded_and_sigint_releases(h, client, prefix):
    # -shell (default): one string run by sh -c; `exec` so that the worker is the child itself
    proc = h.spawn(prefix, "exec " + " ".join(h.work(-1)))
    wait_for(lambda: starts(h.log) == 1, what="child")
    proc.send_signal(signal.SIGUSR1)
    proc.send_signal(signal.SIGHUP)
    wait_for(lambda: {"SIGUSR1", "SIGHUP"} <= {line[0] for line in read_log(h.log)}, what="relayed signals")
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    assert proc.wait(15) == 0, h.stderr(proc)
    assert "SIGINT" in {line[0] for line in read_log(h.log)}
    assert client.kv.get(f"{prefix}/.lock").value is None  # released and cleaned up
    assert client.session.list_all().value == [] or all(
        not s["Name"].endswith(f"at '{prefix}'") for s in client.session.list_all().value)


def test_a_forking_shell_killed_by_a_relayed_signal_leaves_nothing_running_past_the_release(
        h, client, prefix):
    # `; true` makes every shell fork: the worker runs in the shell's process group, and a relayed
    # SIGHUP kills the shell (no handler) while the worker only notes it.
    proc = h.spawn(prefix, " ".join(h.work(-1)) + "; true")
    wait_for(lambda: starts(h.log) == 1, what="child")
    proc.send_signal(signal.SIGHUP)
    assert proc.wait(15) == 0, h.stderr(proc)  # the child "exited"; without -child-exit-code: 0
    assert "Error running handler: signal: hangup" in h.stderr(proc)
    seen = [line[0] for line in read_log(h.log)]
    assert seen[:2] == ["start", "SIGHUP"] and "SIGTERM" in seen  # stopped, not left running
    run = intervals(h.log)[0]
    assert run.stop is not None
    assert client.kv.get(f"{prefix}/.lock").value is None
    assert not alive(run.pid)


def test_lost_lock_terminates_child_then_kills_it_and_exits_nonzero(h, client, prefix):
    proc = h.spawn("-shell=false", "-kill-timeout", "500ms", prefix, *h.work(-1, "ignore-term"))
    wait_for(lambda: starts(h.log) == 1, what="child")
    sid = holder_session(client, f"{prefix}/.lock")
    client.session.destroy(sid)
    assert proc.wait(15) == 1
    assert "Lock lost" in h.stderr(proc)
    assert "SIGTERM" in {line[0] for line in read_log(h.log)}
    assert intervals(h.log)[0].stop is None  # it ignored SIGTERM and was SIGKILLed
    assert not alive(intervals(h.log)[0].pid)


def test_reacquire_after_loss(h, client, prefix):
    proc = h.spawn_python(runner_code(h.server.addr, prefix, h.work(-1), reacquire=True, lock_delay="1s"))
    wait_for(lambda: starts(h.log) == 1, what="first child")
    client.session.destroy(holder_session(client, f"{prefix}/.lock"))
    wait_for(lambda: starts(h.log) == 2, what="child started again after re-acquiring")
    first, second = intervals(h.log)
    assert first.stop is not None and second.start > first.stop
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0


def test_agent_unreachable_while_holding_loses_lock(tmp_path, dev_server):
    h = Harness(dev_server, tmp_path)
    try:
        proc = h.spawn("-shell=false", "-monitor-retry", "1", "prefix", *h.work(-1))
        wait_for(lambda: starts(h.log) == 1, what="child")
        dev_server.stop(signal.SIGKILL)
        assert proc.wait(20) == 1
        assert intervals(h.log)[0].stop is not None
    finally:
        h.close()


def test_exit_codes_like_consul_lock(h, prefix):
    assert h.run(prefix, "exit 3").returncode == 0
    assert h.run("-child-exit-code", prefix, "exit 3").returncode == 2
    assert h.run("-child-exit-code", prefix, "exit 0").returncode == 0
    bad = h.run(prefix)
    assert bad.returncode == 1 and "Key prefix and child command must be specified" in bad.stderr
    assert h.run("-n", "0", prefix, "true").returncode == 1
    assert h.run("-monitor-retry", "-1", prefix, "true").returncode == 1


def test_kill_timeout_that_would_outlive_the_lock_delay_is_warned_about(h, prefix):
    out = h.run("-kill-timeout", "12s", prefix, "echo ran")
    assert out.returncode == 0 and "ran" in out.stdout
    assert out.stderr.strip() == ("Warning: kill timeout 12s is too long for the session's 15s lock-delay "
                                  "(at most 10s): a child slow to stop may outlive the lock")
    assert h.run("-kill-timeout", "10s", prefix, "true").stderr == ""


def test_agent_unreachable_at_start(h, prefix):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [PY, "-m", "meshctl", "lock", "-http-addr", f"127.0.0.1:{port}", prefix, "true"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=h.env, cwd=ROOT)
    assert out.returncode == 1 and "Error querying Consul agent" in out.stderr


def test_timeout_while_held_elsewhere(h, prefix):
    holder = h.spawn("-shell=false", prefix, *h.work(-1))
    wait_for(lambda: starts(h.log) == 1, what="holder")
    started = time.monotonic()
    out = h.run("-timeout", "1s", prefix, "echo should-not-run")
    assert out.returncode == 1 and "should-not-run" not in out.stdout
    assert "Shutdown triggered or timeout during lock acquisition" in out.stderr
    assert time.monotonic() - started >= 1  # it waited for the holder the full -timeout
    holder.send_signal(signal.SIGTERM)
    assert holder.wait(15) == 0


def test_sigterm_while_waiting_exits_promptly_and_cleans_up(h, client, prefix):
    h.spawn("-shell=false", prefix, *h.work(-1))
    wait_for(lambda: starts(h.log) == 1, what="holder")
    waiter = h.spawn("-shell=false", prefix, *h.work(-1))
    wait_for(lambda: len([s for s in client.session.list_all().value if prefix in s["Name"]]) == 2,
             what="waiter's session")
    waiter.send_signal(signal.SIGTERM)
    # its blocking read (15 s) began just now: exiting within 10 s means the signal cut it short
    assert waiter.wait(10) == 1
    wait_for(lambda: len([s for s in client.session.list_all().value if prefix in s["Name"]]) == 1,
             what="waiter's session destroyed")
    assert starts(h.log) == 1


def test_pass_stdin_and_env(h, prefix):
    out = h.run("-pass-stdin", prefix, "cat; echo held=$CONSUL_LOCK_HELD", input="hello\n")
    assert out.returncode == 0 and out.stdout.endswith("hello\nheld=true\n")
    out = h.run(prefix, "cat; echo end", input="hello\n")
    assert out.stdout.endswith("end\n") and "hello" not in out.stdout


def test_lock_and_semaphore_on_one_prefix_conflict(h, client, prefix):
    holder = h.spawn("-shell=false", prefix, *h.work(-1))
    wait_for(lambda: starts(h.log) == 1, what="holder")
    pair = client.kv.get(f"{prefix}/.lock").value
    assert pair.flags == LOCK_FLAG_VALUE
    out = h.run("-n", "2", prefix, "true")
    assert out.returncode == 1 and "Existing key does not match semaphore use" in out.stderr
    holder.send_signal(signal.SIGTERM)
    assert holder.wait(15) == 0


def test_session_name_and_verbose_output(h, client, prefix):
    seen: list[str] = []

    def watch() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not seen:
            seen.extend(s["Name"] for s in client.session.list_all().value if prefix in s["Name"])
            time.sleep(0.02)

    t = threading.Thread(target=watch)
    t.start()
    out = h.run("-verbose", prefix, "sleep", "0.5")
    t.join()
    assert out.returncode == 0
    assert seen and seen[0] == f"Consul lock for 'sleep 0.5' at '{prefix}'"
    assert f"Setting up lock at path: {prefix}/.lock" in out.stdout and "Cleanup succeeded" in out.stdout
