"""Helpers of the metrics tests: Prometheus text parsed, meshctl processes, free ports.

Import as `from metrics_support import ...` (this folder's conftest.py puts it on sys.path).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus text -> {(sample name, labels): value}."""
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample (labels given must match; others are ignored and summed over)."""
    found = [v for (n, ls), v in samples(text).items()
             if n == name and all((k, val) in ls for k, val in labels.items())]
    return sum(found) if found else None


def scrape(url: str, token: str | None = None) -> str:
    """An agent's /v1/agent/metrics?format=prometheus."""
    headers = {"X-Consul-Token": token} if token else {}
    r = requests.get(f"{url}/v1/agent/metrics", params={"format": "prometheus"}, headers=headers, timeout=10)
    r.raise_for_status()
    return r.text


def meshctl_env(addr: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSUL_")}
    env["CONSUL_HTTP_ADDR"] = addr
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def popen_meshctl(*args: str, env: dict[str, str], **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "meshctl", *args], env=env, text=True,  # type: ignore[call-overload]
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=str(ROOT), **kw)


def run_meshctl(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meshctl", *args], env=env, text=True, capture_output=True,
                          timeout=timeout, cwd=str(ROOT))
