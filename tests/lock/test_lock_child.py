"""meshctl.child: start, exit codes, environment, stdin, signals, stop/kill timeout, splay, restart."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from meshctl.child import (
    Child,
    ChildError,
    describe_exit,
    exit_status,
    forward_signals,
    parse_signal,
    process_group_alive,
    shell_command,
)

PY = sys.executable

# A child that logs the signals it gets and exits 0 on SIGTERM (or ignores it when asked to).
TRAPPER = textwrap.dedent("""
    import os, signal, sys, time
    log, ignore_term = sys.argv[1], sys.argv[2] == "ignore"
    def note(text):
        with open(log, "a") as f:
            f.write(text + "\\n")
    def handler(sig, frame):
        note(signal.Signals(sig).name)
        if sig == signal.SIGTERM and not ignore_term:
            sys.exit(0)
    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGINT):
        signal.signal(s, handler)
    note("ready")
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


@pytest.fixture
def trapper(tmp_path):
    script = tmp_path / "trapper.py"
    script.write_text(TRAPPER)
    log = tmp_path / "signals.log"

    def make(ignore_term: bool = False, **kwargs) -> Child:
        child = Child([PY, str(script), str(log), "ignore" if ignore_term else "exit"], **kwargs)
        child.start()
        wait_for(lambda: "ready" in lines(log), what="child ready")
        return child

    make.log = log  # type: ignore[attr-defined]
    return make


def test_exit_code_and_callbacks():
    seen = []
    child = Child([PY, "-c", "import sys; sys.exit(3)"])
    child.on_exit(seen.append)
    child.start()
    assert child.wait(10) == 3
    wait_for(lambda: seen == [3], what="exit callback")
    assert not child.running and child.pid is None


def test_shell_mode_joins_words_and_uses_sh():
    assert shell_command(["echo", "a", "b"], "/bin/sh") == ["/bin/sh", "-c", "echo a b"]
    child = Child(["exit", "4"], shell=True, shell_path="/bin/sh")
    child.start()
    assert child.wait(10) == 4


def test_string_command_is_split_without_shell(tmp_path):
    out = tmp_path / "out"
    child = Child(f"{PY} -c 'import sys; open(sys.argv[1], \"w\").write(\"ok\")' {out}")
    child.start()
    assert child.wait(10) == 0
    assert out.read_text() == "ok"


def test_env_overlay_adds_and_removes(monkeypatch):
    monkeypatch.setenv("MESHCTL_CHILD_GONE", "x")
    code = "import os, sys; sys.exit(0 if os.environ['A'] == '1' and 'MESHCTL_CHILD_GONE' not in os.environ else 1)"
    child = Child([PY, "-c", code], env={"A": "1", "MESHCTL_CHILD_GONE": None})
    child.start()
    assert child.wait(10) == 0


def test_stdin_is_closed_unless_passed():
    reader = [PY, "-c", "import sys; sys.stdout.write(sys.stdin.read())"]
    child = Child(reader, stdout=subprocess.PIPE)
    child.start()
    assert child.stdout_pipe is not None and child.stdout_pipe.read() == b""
    assert child.wait(10) == 0
    # Pass-through: the child reads this process's stdin (here a pipe we feed from a wrapper).
    wrapper = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from meshctl.child import Child
        c = Child({reader!r}, stdin=True)
        c.start()
        sys.exit(c.wait())
    """)
    out = subprocess.run([PY, "-c", wrapper], input=b"hello", capture_output=True, timeout=30)
    assert out.returncode == 0 and out.stdout == b"hello"


def test_start_failure_raises_child_error():
    with pytest.raises(ChildError):
        Child(["/nonexistent/command"]).start()


def test_start_twice_is_refused(trapper):
    child = trapper()
    with pytest.raises(RuntimeError):
        child.start()
    child.stop()


def test_stop_sends_kill_signal_and_reports_code(trapper):
    child = trapper()
    assert child.stop() == 0
    assert "SIGTERM" in lines(trapper.log)


def test_stop_escalates_to_sigkill_after_kill_timeout(trapper):
    child = trapper(ignore_term=True, kill_timeout=0.3)
    started = time.monotonic()
    assert child.stop() == -signal.SIGKILL
    assert time.monotonic() - started >= 0.3
    assert "SIGTERM" in lines(trapper.log)
    assert exit_status(-signal.SIGKILL) == 137


def test_stop_with_another_signal(trapper):
    child = trapper(ignore_term=True, kill_timeout=5)
    child.stop(sig=signal.SIGINT, kill_timeout=0.3)
    assert "SIGINT" in lines(trapper.log)


def test_signal_and_reload(trapper):
    child = trapper()
    assert child.signal(signal.SIGUSR1)
    child.reload()
    wait_for(lambda: {"SIGUSR1", "SIGHUP"} <= set(lines(trapper.log)), what="signals logged")
    child.stop()
    assert not child.signal(signal.SIGUSR1)  # nothing running


def test_signals_reach_the_whole_process_group(tmp_path):
    marker = tmp_path / "grandchild"
    # The shell forks a grandchild that traps TERM; signalling the group reaches it.
    script = f"{PY} -c \"import signal,sys,time; signal.signal(15, lambda *a: (open('{marker}','w').write('t'), " \
             f"sys.exit(0))); open('{marker}.ready','w'); time.sleep(30)\"; true"
    child = Child(script, shell=True, shell_path="/bin/sh")
    child.start()
    wait_for(lambda: Path(f"{marker}.ready").exists(), what="grandchild ready")
    child.stop()
    wait_for(marker.exists, what="grandchild got SIGTERM")


def test_splay_delays_reload_and_immediate_stop_cuts_it(trapper):
    child = trapper(splay=0.5, rand=lambda: 1.0)
    started = time.monotonic()
    child.reload()
    assert time.monotonic() - started >= 0.5
    stopper = threading.Thread(target=child.stop)  # would splay 0.5s...
    stopper.start()
    time.sleep(0.05)
    child.stop(immediately=True)  # ...but this cuts it short
    stopper.join(30)
    assert not stopper.is_alive() and not child.running


def test_reload_without_signal_restarts(trapper):
    child = trapper(reload_signal=None)
    first = child.pid
    child.reload()
    assert child.running and child.pid != first and child.restarts == 1
    child.stop()


def test_restart_counts(trapper):
    child = trapper()
    first = child.pid
    child.restart()
    assert child.pid != first and child.restarts == 1
    child.stop()


def test_wait_async_from_asyncio():
    child = Child([PY, "-c", "import time, sys; time.sleep(0.1); sys.exit(5)"])

    async def main() -> int:
        child.start()
        return await asyncio.wait_for(child.wait_async(), 10)

    assert asyncio.run(main()) == 5


def test_forward_signals_relays_to_child(trapper):
    child = trapper()
    got = []
    with forward_signals(child, (signal.SIGUSR1,), also=got.append):
        os.kill(os.getpid(), signal.SIGUSR1)
        wait_for(lambda: got == [signal.SIGUSR1], what="handler ran")
    wait_for(lambda: "SIGUSR1" in lines(trapper.log), what="child got SIGUSR1")
    child.stop()


def test_parent_death_signal_stops_orphans(tmp_path):
    marker = tmp_path / "orphan"
    parent = textwrap.dedent(f"""
        import sys, signal, time
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from meshctl.child import Child
        code = "import signal,sys,time; signal.signal(15, lambda *a: (open({str(marker)!r},'w'), sys.exit(0))); " \\
               "print('ready', flush=True); time.sleep(30)"
        c = Child([sys.executable, "-c", code], parent_death_signal=signal.SIGTERM)
        c.start()
        time.sleep(30)
    """)
    proc = subprocess.Popen([PY, "-c", parent], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    proc.kill()
    proc.wait()
    wait_for(marker.exists, what="orphaned child got SIGTERM")


def test_parse_signal():
    assert parse_signal("SIGHUP") == signal.SIGHUP
    assert parse_signal("term") == signal.SIGTERM
    assert parse_signal("10") == signal.SIGUSR1
    with pytest.raises(ValueError):
        parse_signal("SIGNOPE")


def test_stragglers_of_a_dead_shell_are_stopped_then_killed(tmp_path):
    # The shell forks a grandchild that ignores SIGTERM, then the shell is killed by SIGHUP (it
    # has no handler) — the grandchild lives on in the group until stop_stragglers ends it.
    ready = tmp_path / "ready"
    script = f"{PY} -c \"import signal,time; signal.signal(15, signal.SIG_IGN); " \
             f"signal.signal(1, signal.SIG_IGN); open('{ready}','w').write(str(__import__('os').getpid())); " \
             f"time.sleep(60)\"; true"
    child = Child(script, shell=True, shell_path="/bin/sh", kill_timeout=0.3)
    child.start()
    wait_for(lambda: ready.exists() and ready.read_text(), what="grandchild ready")
    grandchild = int(ready.read_text())
    assert child.stop_stragglers() is False  # the shell still runs: nothing to do yet
    child.signal(signal.SIGHUP)
    assert child.wait(30) == -signal.SIGHUP
    assert process_group_alive(child._proc.pid)  # the grandchild outlived its shell
    started = time.monotonic()
    assert child.stop_stragglers() is True
    assert time.monotonic() - started >= 0.3  # SIGTERM was ignored: SIGKILL after kill_timeout
    assert not process_group_alive(child._proc.pid)
    stat = Path(f"/proc/{grandchild}/stat")
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    assert child.stop_stragglers() is False


def test_describe_exit_in_gos_words():
    assert describe_exit(0) == "exit status 0"
    assert describe_exit(3) == "exit status 3"
    assert describe_exit(-signal.SIGHUP) == "signal: hangup"
    assert describe_exit(-signal.SIGKILL) == "signal: killed"
    assert describe_exit(-signal.SIGUSR1) == "signal: user defined signal 1"
