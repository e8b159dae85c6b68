"""`/v1/agent/self`'s `Stats`: Consul's sections, every value a string (py-consul and dashboards read them).

`agent` (checks, services, check_monitors, check_ttls), `consul` (server, leader, leader_addr,
bootstrap, known_datacenters, and known_servers on client agents), `raft` (state,
last_log_index, commit_index, applied_index, num_peers, term, last_contact ...) and `runtime`
(goroutines: the process's threads, os, arch, version, cpu_count, max_procs), `build` (version)
and `serf_lan` (members, failed, left, encrypted: the members are the catalog nodes an agent
registered, with their serfHealth check; left ones are the servers that left). Raft figures come
from the store's public attributes (metrics.raft_figures).
"""

from __future__ import annotations

import os
import platform
import threading
from typing import Any

from meshctl import __version__
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
    stats["build"] = {"prerelease": "", "revision": "", "version": __version__}
    stats["serf_lan"] = _serf_lan(store)
    runtime = platform_summary()
    stats["runtime"] = {"goroutines": str(threading.active_count()), "os": runtime["os"], "arch": runtime["arch"],
                        "version": f"python{platform.python_version()}", "cpu_count": str(os.cpu_count() or 1),
                        "max_procs": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)}
    return stats


def _serf_lan(store: Any) -> dict[str, str]:
    """Consul's serf_lan figures, from what gossip would know here (see the module docstring)."""
    from meshctl.server.state import SERF_CHECK_ID

    state = getattr(store, "state", None)
    checks = [c.get(SERF_CHECK_ID) for c in (getattr(state, "checks", None) or {}).values()]
    statuses = [c["Status"] for c in checks if c is not None]
    left = sum(1 for info in (getattr(store, "members", None) or {}).values() if info.get("Status") == "left")
    password = getattr(getattr(store, "cfg", None), "password", None)
    out = {"members": str(len(statuses) + left), "failed": str(statuses.count("critical")), "left": str(left),
           "encrypted": _b(password), "health_score": "0", "coordinate_resets": "0"}
    for name in ("event", "intent", "query"):
        out[f"{name}_queue"] = "0"
    for name in ("event", "member", "query"):
        out[f"{name}_time"] = "1"
    return out


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
