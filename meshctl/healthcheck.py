"""The container image's HEALTHCHECK: `python -m meshctl.healthcheck`; exit 0 healthy, 1 not.

Healthy when the store this container works with has a Raft leader (GET /v1/status/leader):
the agent itself in `agent` mode (127.0.0.1:8500, Consul's default), the store a tool talks to
when CONSUL_HTTP_ADDR is set (template, lock, envconsul read it too). MESHCTL_HEALTH_ADDR
overrides the address for the check alone (say an agent started with `-http-port 8501`, or
registrator, whose store comes from its argument). TLS and token settings are Consul's
variables (CONSUL_HTTP_SSL, CONSUL_CACERT, ...), read by the client.
"""

from __future__ import annotations

import os
import sys

from meshctl.client import Client
from meshctl.client.config import ConfigError
from meshctl.client.errors import ConsulError

TIMEOUT = 4.0  # under the image's `HEALTHCHECK --timeout=5s`


def check(addr: str | None = None) -> str:
    """"" when healthy, else the reason (one line)."""
    try:
        leader = Client(addr or os.environ.get("MESHCTL_HEALTH_ADDR") or None, timeout=TIMEOUT).status.leader()
    except (ConsulError, ConfigError, OSError) as e:
        return str(e).splitlines()[0] if str(e) else type(e).__name__
    return "" if leader else "no cluster leader"


def main() -> int:
    reason = check()
    print(f"unhealthy: {reason}" if reason else "healthy")
    return 1 if reason else 0


if __name__ == "__main__":
    sys.exit(main())
