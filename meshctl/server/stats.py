"""`/v1/agent/self`'s `Stats`: Consul's sections, every value a string (py-consul and dashboards read them).

`agent` (checks, services, check_monitors, check_ttls), `consul` (server, leader, leader_addr,
bootstrap, known_datacenters, and known_servers on client agents), `raft` (state,
last_log_index, commit_index, applied_index, num_peers, term, last_contact ...) and `runtime`
(goroutines: the process's threads, os, arch, version, cpu_count, max_procs). Raft figures come
from the store's public attributes (metrics.raft_figures).
"""

from __future__ import annotations

import os
import platform
import threading
from typing import Any

from meshctl.server.metrics import platform_summary, raft_figures


def agent_stats(agent: Any) -> dict[str, dict[str, str]]:
    """The Stats of a LocalAgent (its store, checks, services)."""
    store = agent.store
    raft = raft_figures(store)
    checks = list(getattr(agent, "checks", {}).values())
    kinds = [str(getattr(c, "kind", "") or getattr(c, "type", "") or "") for c in checks]
    consul = {"server": _b(agent.server), "leader": _b(raft["leader"]),
              "leader_addr": raft["leader_addr"] if raft["known_leader"] else "",
              "bootstrap": "false", "known_datacenters": str(_known_datacenters(agent))}
    known_servers = getattr(store, "known_servers", None)  # client agents: how many servers they know
    if known_servers is not None:
        consul["known_servers"] = str(known_servers)
    stats: dict[str, dict[str, str]] = {
        "agent": {"checks": str(len(checks)), "services": str(len(getattr(agent, "services", {}))),
                  "check_monitors": str(sum(1 for k in kinds if k in ("script", "monitor"))),
                  "check_ttls": str(sum(1 for k in kinds if k == "ttl"))},
        "consul": consul,
    }
    if agent.server:
        stats["raft"] = {
            "state": raft["state"], "last_log_index": str(raft["last_log_index"]),
            "commit_index": str(raft["commit_index"]), "applied_index": str(raft["applied_index"]),
            "fsm_pending": "0", "num_peers": str(raft["num_peers"]), "term": str(raft["term"]),
            "last_contact": _last_contact(raft), "latest_configuration_index": "0",
            "protocol_version": "3", "protocol_version_min": "0", "protocol_version_max": "3",
        }
    else:
        stats["raft"] = {"last_log_index": str(raft["last_log_index"])}
    runtime = platform_summary()
    stats["runtime"] = {"goroutines": str(threading.active_count()), "os": runtime["os"], "arch": runtime["arch"],
                        "version": f"python{platform.python_version()}", "cpu_count": str(os.cpu_count() or 1),
                        "max_procs": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)}
    return stats


def _b(value: Any) -> str:
    return "true" if value else "false"


def _last_contact(raft: dict[str, Any]) -> str:
    """Consul's last_contact: "0" on the leader, "never" without one, else a Go duration."""
    if raft["leader"]:
        return "0"
    if not raft["known_leader"]:
        return "never"
    ms = raft["last_contact_ms"]
    return f"{ms / 1000:g}s" if ms >= 1000 else f"{ms}ms"


def _known_datacenters(agent: Any) -> int:
    return 1
