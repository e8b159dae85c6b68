"""`meshctl agent ...`: run the bundled Consul-compatible server (meshctl.server.run)."""

from __future__ import annotations

from meshctl.commands.common import err


def main(argv: list[str]) -> int:
    """Hand every argument after `agent` to the server's own entry point."""
    try:
        from meshctl.server.run import main as run_server
    except ImportError as e:
        err(f"Error: the bundled agent is not available ({e})")
        return 1
    return int(run_server(list(argv)) or 0)
