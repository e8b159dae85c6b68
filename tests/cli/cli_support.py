"""Helpers for the CLI tests: run `python -m meshctl ...` as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    code: int
    out: str
    err: str
    raw: bytes

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def run_meshctl(*args: str, input: bytes | str | None = None, env: dict[str, str] | None = None,
                cwd: str | os.PathLike | None = None, timeout: float = 60) -> Result:
    """`python -m meshctl *args` with a clean Consul environment (plus `env`)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CONSUL_")}
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    data = input.encode() if isinstance(input, str) else input
    proc = subprocess.run([sys.executable, "-m", "meshctl", *args], input=data, capture_output=True,
                          env=full_env, cwd=cwd or REPO, timeout=timeout)
    return Result(proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"),
                  proc.stdout)
