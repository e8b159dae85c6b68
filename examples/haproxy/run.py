#!/usr/bin/env python3
"""haproxy in front of backends found in the catalog, reloaded by `meshctl template` on every change.

    python3 examples/haproxy/run.py [--backends 3] [--port 8080] [--syntax go|jinja] [--workdir DIR]

Starts a dev store (`meshctl agent -dev`), N backends that register themselves as `web`
with an HTTP check, and `meshctl template` rendering templates/haproxy/haproxy.cfg into the
work directory and supervising `haproxy -W` (master-worker): each re-render sends SIGUSR2,
and haproxy's master starts new workers with the new config while the old ones finish
their connections. Ctrl-C stops everything. See README.md next to this file.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from demo import Demo, free_port  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Run the example until Ctrl-C."""
    p = argparse.ArgumentParser(description="haproxy + meshctl template example")
    p.add_argument("--backends", type=int, default=3, help="how many backends to start (default 3)")
    p.add_argument("--port", type=int, default=0, help="haproxy's port on 127.0.0.1 (default: a free one)")
    p.add_argument("--syntax", choices=("go", "jinja"), default="go", help="template flavour (default go)")
    p.add_argument("--workdir", default="", help="where configs and logs go (default: a new temp dir)")
    p.add_argument("--consul", default="", help="use this agent instead of starting a dev store")
    args = p.parse_args(argv)

    haproxy = shutil.which("haproxy")
    if not haproxy:
        print("haproxy is not installed (Debian: apt-get install haproxy)", file=sys.stderr)
        return 1
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="meshctl-haproxy-"))
    demo = Demo(workdir, args.consul or None)
    try:
        consul, names = demo.start_store_and_backends(args.backends)

        port = args.port or free_port()
        cfg = workdir / "haproxy.cfg"
        template = "haproxy/haproxy.cfg." + ("j2" if args.syntax == "jinja" else "ctmpl")
        demo.start_template(template, cfg, f"exec {haproxy} -W -db -f {cfg}", reload_signal="SIGUSR2",
                            kill_signal="SIGTERM",
                            env={"SERVICE": "web", "HAPROXY_BIND": f"127.0.0.1:{port}", "CONSUL_HTTP_ADDR": consul})
        url = f"http://127.0.0.1:{port}/"
        demo.wait_serving(url, names)
        demo.serve_until_signal("haproxy", url, names, cfg)
    finally:
        demo.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
