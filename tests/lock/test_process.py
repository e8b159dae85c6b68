"""meshctl.process: process groups (start, signal, stop with SIGKILL escalation, reap), commands
with a timeout, and installing/restoring signal handlers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from meshctl import process
from meshctl.process import (
    forward_signals,
    group_alive,
    kill_group,
    run_command,
    signal_group,
    signal_handlers,
    spawn,
    terminate,
)

PY = sys.executable

# A leader that starts a grandchild in its own group and logs the signals both get.
# argv: log file, what the leader does on SIGTERM ("exit" / "ignore"), same for the grandchild.
FAMILY = textwrap.dedent("""
    import os, signal, subprocess, sys, time
    log, leader_term, grandchild_term = sys.argv[1], sys.argv[2], sys.argv[3]
    role = sys.argv[4] if len(sys.argv) > 4 else "leader"
    def note(text):
        with open(log, "a") as f:
            f.write(f"{role} {text}\\n")
    def handler(sig, frame):
        note(signal.Signals(sig).name)
        if sig == signal.SIGTERM and (leader_term if role == "leader" else grandchild_term) == "exit":
            sys.exit(0)
    for s in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(s, handler)
    if role == "leader":
        subprocess.Popen([sys.executable] + sys.argv[:4] + ["grandchild"])
    note(f"ready {os.getpid()}")
    while True:
        time.sleep(0.05)
""")


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def pid_alive(pid: int) -> bool:
    """A live (not zombie) process with this pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:].split()[0] not in (b"Z", b"X")


@pytest.fixture
def family(tmp_path):
    """Start a leader (own group) and its grandchild; returns (proc, grandchild pid)."""
    script = tmp_path / "family.py"
    script.write_text(FAMILY)
    log = tmp_path / "signals.log"
    started: list[subprocess.Popen[bytes]] = []

    def make(leader_term: str = "exit", grandchild_term: str = "exit") -> tuple[subprocess.Popen[bytes], int]:
        proc = spawn([PY, str(script), str(log), leader_term, grandchild_term])
        started.append(proc)
        ready = wait_for(lambda: [x for x in lines(log) if x.startswith("grandchild ready")], what="grandchild")
        wait_for(lambda: any(x.startswith("leader ready") for x in lines(log)), what="leader")
        return proc, int(ready[0].split()[-1])

    make.log = log  # type: ignore[attr-defined]
    yield make
    for proc in started:  # whatever a failed test left
        signal_group(proc.pid, signal.SIGKILL)
        proc.wait()


def test_spawn_starts_a_new_process_group(family):
    proc, grandchild = family()
    assert os.getpgid(proc.pid) == proc.pid != os.getpgrp()
    assert os.getpgid(grandchild) == proc.pid
    assert group_alive(proc.pid)


def test_spawn_in_our_group_when_asked():
    proc = spawn([PY, "-c", "import os; print(os.getpgrp())"], stdout=subprocess.PIPE, new_group=False)
    out, _ = proc.communicate()
    assert int(out) == os.getpgrp()


def test_terminate_stops_the_leader_and_its_grandchildren(family):
    proc, grandchild = family()
    assert terminate(proc, signal.SIGTERM, timeout=10) == 0
    assert proc.returncode == 0  # reaped
    assert "grandchild SIGTERM" in lines(family.log)  # the whole group had the kill signal
    assert not group_alive(proc.pid)
    assert not pid_alive(grandchild)


def test_terminate_escalates_to_sigkill_for_the_leader(family):
    proc, grandchild = family(leader_term="ignore")
    started = time.monotonic()
    assert terminate(proc, signal.SIGTERM, timeout=0.3) == -signal.SIGKILL
    assert time.monotonic() - started >= 0.3
    assert "leader SIGTERM" in lines(family.log)
    assert not group_alive(proc.pid)
    assert not pid_alive(grandchild)


def test_terminate_sigkills_a_grandchild_that_outlives_the_leader(family):
    proc, grandchild = family(grandchild_term="ignore")
    started = time.monotonic()
    # 2 s: room for the leader's Python to exit on SIGTERM even on a loaded machine
    assert terminate(proc, signal.SIGTERM, timeout=2) == 0  # the leader exited on SIGTERM
    assert time.monotonic() - started >= 2  # the grandchild had the rest of the timeout, then SIGKILL
    assert "grandchild SIGTERM" in lines(family.log)
    assert not group_alive(proc.pid)
    assert not pid_alive(grandchild)


def test_terminate_without_group_signals_only_the_process(tmp_path):
    proc = spawn([PY, "-c", "import time; print('ready', flush=True); time.sleep(30)"], stdout=subprocess.PIPE,
                 new_group=False)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    assert terminate(proc, signal.SIGTERM, timeout=10, group=False) == -signal.SIGTERM
    proc.stdout.close()


def test_kill_group_stops_what_a_shell_left_behind(tmp_path):
    # The shell starts a background sleeper that ignores SIGTERM and exits: the sleeper is left
    # alone in the group.
    pidfile = tmp_path / "pid"
    proc = spawn(["/bin/sh", "-c", f"{PY} -c \"import os,signal,time; signal.signal(15, signal.SIG_IGN); "
                  f"open('{pidfile}','w').write(str(os.getpid())); time.sleep(60)\" &"])
    assert proc.wait(10) == 0
    straggler = int(wait_for(lambda: pidfile.exists() and pidfile.read_text(), what="straggler started"))
    assert group_alive(proc.pid)
    started = time.monotonic()
    assert kill_group(proc.pid, signal.SIGTERM, timeout=0.2) is True
    assert time.monotonic() - started >= 0.2  # SIGTERM was ignored: SIGKILL after the timeout
    assert not group_alive(proc.pid)
    assert not pid_alive(straggler)
    assert kill_group(proc.pid) is True  # nothing left: nothing to do


def test_run_command_returns_the_exit_code():
    assert run_command(["/bin/sh", "-c", "exit 3"]) == 3
    assert run_command([PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGUSR1)"]) == -signal.SIGUSR1
    with pytest.raises(OSError):
        run_command(["/nonexistent/command"])


def test_run_command_timeout_kills_the_group(tmp_path, monkeypatch):
    spawned: list[subprocess.Popen[bytes]] = []
    real_spawn = process.command.spawn

    def recording_spawn(*args, **kwargs):
        proc = real_spawn(*args, **kwargs)
        spawned.append(proc)
        return proc

    monkeypatch.setattr(process.command, "spawn", recording_spawn)
    pidfile = tmp_path / "pid"
    with pytest.raises(subprocess.TimeoutExpired):
        run_command(["/bin/sh", "-c", f"trap '' TERM; sleep 60 & echo $! > {pidfile}; wait"], timeout=0.5)
    (proc,) = spawned
    assert proc.returncode == -signal.SIGKILL  # reaped
    wait_for(lambda: not group_alive(proc.pid), what="the command's group gone")
    if pidfile.exists() and pidfile.read_text().strip():  # the shell got as far as starting the sleep
        assert not pid_alive(int(pidfile.read_text()))


def test_signal_handlers_route_signals_and_restore_the_previous_ones():
    got: list[int] = []
    before = {s: signal.getsignal(s) for s in (signal.SIGUSR1, signal.SIGUSR2)}
    with signal_handlers({signal.SIGUSR1: got.append, signal.SIGUSR2: got.append}) as installed:
        assert installed == {signal.SIGUSR1, signal.SIGUSR2}
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGUSR2)
        wait_for(lambda: sorted(got) == sorted([signal.SIGUSR1, signal.SIGUSR2]), what="both handlers ran")
    assert {s: signal.getsignal(s) for s in before} == before


def test_signal_handlers_restore_after_an_error_and_when_nested():
    outer: list[int] = []
    inner: list[int] = []
    before = signal.getsignal(signal.SIGUSR1)
    with signal_handlers({signal.SIGUSR1: outer.append}):
        with pytest.raises(RuntimeError), signal_handlers({signal.SIGUSR1: inner.append}):
            raise RuntimeError("boom")
        os.kill(os.getpid(), signal.SIGUSR1)
        wait_for(lambda: outer == [signal.SIGUSR1], what="the outer handler back")
    assert inner == []
    assert signal.getsignal(signal.SIGUSR1) == before


def test_signal_handlers_skip_what_cannot_be_caught_and_other_threads():
    before = signal.getsignal(signal.SIGUSR1)
    with signal_handlers({signal.SIGKILL: print, signal.SIGUSR1: print}) as installed:
        assert installed == {signal.SIGUSR1}
    seen: list[frozenset[int]] = []

    def off_main() -> None:
        with signal_handlers({signal.SIGUSR1: print}) as installed:
            seen.append(installed)
            seen.append(frozenset({1}) if signal.getsignal(signal.SIGUSR1) != before else frozenset())

    t = threading.Thread(target=off_main)
    t.start()
    t.join()
    assert seen == [frozenset(), frozenset()]
    assert signal.getsignal(signal.SIGUSR1) == before


def test_forward_signals_relays_to_a_child_group(family):
    proc, _grandchild = family()

    class Group:
        def signal(self, sig: int) -> bool:
            return signal_group(proc.pid, sig)

    relayed: list[int] = []
    with forward_signals(Group(), (signal.SIGUSR1, signal.SIGUSR2), also=relayed.append):
        os.kill(os.getpid(), signal.SIGUSR2)
        wait_for(lambda: relayed == [signal.SIGUSR2], what="relayed")
    wait_for(lambda: {"leader SIGUSR2", "grandchild SIGUSR2"} <= set(lines(family.log)), what="child got SIGUSR2")
    assert terminate(proc, signal.SIGTERM, timeout=10) == 0


def _lock_runner():
    from meshctl.lock import LockConfig, LockRunner

    return LockRunner(None, LockConfig(prefix="svc", command=["true"]))  # type: ignore[arg-type]


def _envconsul_runner():
    from meshctl.sync.envconsul import EnvConsulConfig, EnvConsulRunner

    return EnvConsulRunner(None, EnvConsulConfig(prefixes=[], command=["true"]))  # type: ignore[arg-type]


@pytest.mark.parametrize(("make", "expected"), [
    # consul lock: INT/TERM shut down, HUP/QUIT/USR1/USR2/WINCH are relayed
    (_lock_runner, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
                    signal.SIGWINCH}),
    # envconsul: the forwarded set, its kill (INT) and reload (HUP) signals among them
    (_envconsul_runner, {signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1,
                         signal.SIGUSR2, signal.SIGWINCH}),
], ids=["lock", "envconsul"])
def test_tools_route_their_signals_and_restore_the_previous_handlers(make, expected):
    runner = make()
    before = {s: signal.getsignal(s) for s in expected}
    got: list[int] = []
    runner.handle_signal = got.append
    with runner.signal_handlers() as installed:
        assert installed == expected
        os.kill(os.getpid(), signal.SIGUSR2)
        wait_for(lambda: got == [signal.SIGUSR2], what="the runner got SIGUSR2")
    assert {s: signal.getsignal(s) for s in expected} == before
