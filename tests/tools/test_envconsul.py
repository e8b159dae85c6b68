"""`meshctl envconsul` as a user runs it: a real process, a real child, a dev server.

The long-running child appends one JSON line per event (start with its environment, each
signal it gets, stop) to a log file, so the tests see exactly what the child saw.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from meshctl.client import Client

pytestmark = pytest.mark.integration
PY = sys.executable

CHILD = textwrap.dedent("""
    import json, os, signal, sys, time
    log = sys.argv[1]
    ignore = set(sys.argv[2:])
    def note(what, **extra):
        with open(log, "a") as f:
            f.write(json.dumps({"what": what, "pid": os.getpid(), **extra}) + "\\n")
    def on_signal(sig, _frame):
        note("signal", sig=signal.Signals(sig).name)
        if signal.Signals(sig).name not in ignore and sig in (signal.SIGINT, signal.SIGTERM):
            note("stop")
            sys.exit(0)
        if sig == signal.SIGUSR2:
            sys.exit(int(os.environ.get("EXIT_CODE", "0")))
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(s, on_signal)
    note("start", env=dict(os.environ))
    while True:
        time.sleep(0.05)
""")


def run(server, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONSUL_HTTP_ADDR": server.addr}
    return subprocess.run([PY, "-m", "meshctl", "envconsul", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def env_lines(stdout: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)


class EnvConsul:
    """A background `meshctl envconsul ... python child.py LOG` and its child's log."""

    def __init__(self, server, tmp_path: Path, *args: str, child_args: tuple[str, ...] = ()) -> None:
        self.log = tmp_path / "child.log"
        script = tmp_path / "child.py"
        script.write_text(CHILD)
        env = {**os.environ, "CONSUL_HTTP_ADDR": server.addr, "INHERITED": "yes"}
        self.proc = subprocess.Popen(
            [PY, "-m", "meshctl", "envconsul", *args, PY, str(script), str(self.log), *child_args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    def events(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def starts(self) -> list[dict]:
        return [e for e in self.events() if e["what"] == "start"]

    def wait_for(self, predicate, what: str, timeout: float = 15) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.events()
            if predicate(events):
                return events
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}: {self.events()!r}; stderr: {self.finish()[1]}")

    def wait_starts(self, n: int) -> list[dict]:
        self.wait_for(lambda ev: sum(e["what"] == "start" for e in ev) >= n, f"{n} child starts")
        return self.starts()

    def finish(self, sig: int = signal.SIGINT) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            _, stderr = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, stderr = self.proc.communicate()
        return self.proc.returncode, stderr


@pytest.fixture
def client(shared_dev_server):
    with Client(shared_dev_server.addr) as c:
        yield c


def test_once_gives_the_child_the_keys_as_variables(shared_dev_server, client):
    client.kv.put("ec1/config/db/host", b"db.internal")
    client.kv.put("ec1/config/max-conns", b"10")
    client.kv.put("ec1/config/empty", b"")
    result = run(shared_dev_server, "-prefix", "ec1/config", "-once", "env")
    assert result.returncode == 0, result.stderr
    env = env_lines(result.stdout)
    # Names are the keys relative to the prefix, "/" and "-" kept; the parent's environment is inherited.
    assert env["db/host"] == "db.internal" and env["max-conns"] == "10" and env["empty"] == ""
    assert env["PATH"] == os.environ["PATH"]


def test_sanitize_upcase_and_no_prefix_false_name_variables_as_envconsul(shared_dev_server, client):
    client.kv.put("ec2/app/db/host", b"h")
    client.kv.put("ec2/app/log.level", b"debug")
    result = run(shared_dev_server, "-prefix", "ec2/app", "-sanitize", "-upcase", "-once", "-pristine", "env")
    assert result.returncode == 0, result.stderr
    assert env_lines(result.stdout) == {"DB_HOST": "h", "LOG_LEVEL": "debug"}  # pristine: nothing inherited
    result = run(shared_dev_server, "-prefix", "ec2/app", "-no-prefix=false", "-once", "-pristine", "env")
    assert env_lines(result.stdout) == {"ec2_app_db/host": "h", "ec2_app_log.level": "debug"}


def test_later_prefixes_override_earlier_ones(shared_dev_server, client):
    client.kv.put("ec3/defaults/color", b"blue")
    client.kv.put("ec3/defaults/size", b"m")
    client.kv.put("ec3/prod/color", b"red")
    result = run(shared_dev_server, "-prefix", "ec3/defaults", "-prefix", "ec3/prod", "-once", "-pristine", "env")
    assert env_lines(result.stdout) == {"color": "red", "size": "m"}


def test_a_change_restarts_the_child_with_the_new_environment(shared_dev_server, client, tmp_path):
    client.kv.put("ec4/greeting", b"hello")
    ec = EnvConsul(shared_dev_server, tmp_path, "-prefix", "ec4", "-upcase")
    try:
        first = ec.wait_starts(1)[0]
        assert first["env"]["GREETING"] == "hello" and first["env"]["INHERITED"] == "yes"
        client.kv.put("ec4/greeting", b"bonjour")
        second = ec.wait_starts(2)[1]
        assert second["env"]["GREETING"] == "bonjour" and second["pid"] != first["pid"]
        old = [e for e in ec.events() if e["pid"] == first["pid"]]
        assert [e["what"] for e in old] == ["start", "signal", "stop"]
        assert old[1]["sig"] == "SIGINT"  # the exec kill signal (envconsul's default)
        client.kv.put("ec4/new_key", b"1")
        assert ec.wait_starts(3)[2]["env"]["NEW_KEY"] == "1"
        client.kv.put("ec4/greeting", b"bonjour")  # same value: same environment, no restart
        client.kv.put("other/ec4", b"x")  # outside the prefix
        time.sleep(1.0)
        assert len(ec.starts()) == 3
        client.kv.delete("ec4/new_key")
        assert "NEW_KEY" not in ec.wait_starts(4)[3]["env"]
    finally:
        code, stderr = ec.finish()
    assert code == 12, stderr  # the kill signal: the child is stopped, exit 12
    assert ec.events()[-1]["what"] == "stop"


def test_a_child_ignoring_the_kill_signal_is_killed_after_the_timeout(shared_dev_server, client, tmp_path):
    client.kv.put("ec5/v", b"1")
    ec = EnvConsul(shared_dev_server, tmp_path, "-prefix", "ec5", "-exec-kill-signal", "SIGTERM",
                   "-exec-kill-timeout", "1s", child_args=("SIGTERM",))
    try:
        first = ec.wait_starts(1)[0]
        client.kv.put("ec5/v", b"2")
        t0 = time.monotonic()
        second = ec.wait_starts(2)[1]
        assert second["env"]["v"] == "2"
        assert time.monotonic() - t0 >= 0.9
        old = [e for e in ec.events() if e["pid"] == first["pid"]]
        assert [(e["what"], e.get("sig")) for e in old] == [("start", None), ("signal", "SIGTERM")]  # then SIGKILL
    finally:
        ec.finish()


def test_the_childs_exit_status_is_envconsuls(shared_dev_server, client, tmp_path):
    client.kv.put("ec6/EXIT_CODE", b"7")
    ec = EnvConsul(shared_dev_server, tmp_path, "-prefix", "ec6")
    ec.wait_starts(1)
    os.kill(ec.starts()[0]["pid"], signal.SIGUSR2)  # the child exits with $EXIT_CODE
    assert ec.proc.wait(timeout=15) == 7
    result = run(shared_dev_server, "-prefix", "ec6", "-once", "sh -c 'exit $EXIT_CODE'")
    assert result.returncode == 7


def test_signals_are_relayed_and_sighup_restarts(shared_dev_server, client, tmp_path):
    client.kv.put("ec7/k", b"v")
    ec = EnvConsul(shared_dev_server, tmp_path, "-prefix", "ec7")
    try:
        first = ec.wait_starts(1)[0]
        ec.proc.send_signal(signal.SIGUSR1)
        ec.wait_for(lambda ev: any(e.get("sig") == "SIGUSR1" for e in ev), "SIGUSR1 relayed")
        ec.proc.send_signal(signal.SIGHUP)  # the reload signal: a new child
        second = ec.wait_starts(2)[1]
        assert second["pid"] != first["pid"] and second["env"]["k"] == "v"
        ec.proc.send_signal(signal.SIGTERM)  # not envconsul's kill signal: relayed; the child's exit ends it
        assert ec.proc.wait(timeout=15) == 0
        assert ec.events()[-1] == {"what": "stop", "pid": second["pid"]}
    finally:
        ec.finish()


def test_usage_errors_use_consul_templates_exit_codes(shared_dev_server):
    assert run(shared_dev_server, "-prefix", "x").returncode == 15  # no command
    assert run(shared_dev_server, "env").returncode == 15  # no prefix
    assert run(shared_dev_server, "-bogus-flag", "env").returncode == 13
    result = run(shared_dev_server, "-prefix", "x", "-once", "/nonexistent/command")
    assert result.returncode == 14 and "nonexistent" in result.stderr


def test_changes_within_the_wait_window_cause_one_restart(shared_dev_server, client, tmp_path):
    client.kv.put("ec8/n", b"0")
    ec = EnvConsul(shared_dev_server, tmp_path, "-prefix", "ec8", "-wait", "1s:5s")
    try:
        ec.wait_starts(1)
        for i in range(1, 6):
            client.kv.put("ec8/n", str(i).encode())
            time.sleep(0.1)
        assert ec.wait_starts(2)[1]["env"]["n"] == "5"
        time.sleep(1.5)
        assert len(ec.starts()) == 2
    finally:
        ec.finish()


# -- naming, without a server ------------------------------------------------------------------------

def test_env_names_follow_envconsul():
    from meshctl.client import KVPair
    from meshctl.sync.envconsul import PrefixConfig, build_env, env_name, relative_key

    p = PrefixConfig("app/config")
    assert relative_key("app/config/db/host", p.prefix) == "db/host"
    assert relative_key("app/config", p.prefix) == ""
    assert env_name("db/host", p) == "db/host"
    assert env_name("db/host", p, sanitize=True, upcase=True) == "DB_HOST"
    assert env_name("  ", p) is None
    assert env_name("db/host", PrefixConfig("app/config", no_prefix=False)) == "app_config_db/host"
    assert env_name("x", PrefixConfig("/app@dc2", no_prefix=False), upcase=True) == "_APP_DC2_X"
    assert PrefixConfig("/app/x@dc2").prefix == "app/x" and PrefixConfig("/app/x@dc2").datacenter == "dc2"
    data = {0: [KVPair("a/k", b"1"), KVPair("a/only", b"a")], 1: [KVPair("b/k", b"2"), KVPair("b", b"skipped")]}
    assert build_env([PrefixConfig("a"), PrefixConfig("b")], data) == {"k": "2", "only": "a"}
