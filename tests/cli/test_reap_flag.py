"""`meshctl -reap` / MESHCTL_REAP: when meshctl becomes an init (meshctl/process/init.py)."""

from __future__ import annotations

import os
import subprocess
import sys

from meshctl.process import init


def test_leading_reap_flag_is_taken_off_and_env_decides_otherwise(monkeypatch):
    monkeypatch.delenv("MESHCTL_REAP", raising=False)
    assert init.wanted(["-reap", "template", "-once"]) == (True, ["template", "-once"])
    assert init.wanted(["template", "-reap"]) == (os.getpid() == 1, ["template", "-reap"])
    monkeypatch.setenv("MESHCTL_REAP", "1")
    assert init.wanted(["kv", "get", "a"]) == (True, ["kv", "get", "a"])
    monkeypatch.setenv("MESHCTL_REAP", "false")
    assert init.wanted(["kv", "get", "a"])[0] is False


def test_the_init_exits_with_the_tools_status():
    """Outside a container, `-reap` forks the init; the tool's exit status comes back through it."""
    bad = subprocess.run([sys.executable, "-m", "meshctl", "-reap", "nosuchcommand"], capture_output=True, text=True)
    assert bad.returncode == 1 and "unknown command" in bad.stderr
    ok = subprocess.run([sys.executable, "-m", "meshctl", "-reap", "--version"], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("meshctl v")
