#!/usr/bin/env python3
"""nginx in front of backends found in the catalog, reloaded by `meshctl template` on every change.

    python3 examples/nginx/run.py [--backends 3] [--port 8080] [--syntax go|jinja] [--workdir DIR]

Starts a dev store (`meshctl agent -dev`), N backends that register themselves as `web`
(tag `http`) with an HTTP check, and `meshctl template` rendering
templates/nginx/upstreams.conf into the work directory and supervising nginx (master
process in the foreground): each re-render sends SIGHUP, and nginx's master starts new
workers with the new upstreams while the old ones finish their requests. Ctrl-C stops
everything. See README.md next to this file. (Shares demo.py and backend.py with
examples/haproxy.)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "haproxy"))

from demo import Demo, free_port  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Run the example until Ctrl-C."""
    p = argparse.ArgumentParser(description="nginx + meshctl template example")
    p.add_argument("--backends", type=int, default=3, help="how many backends to start (default 3)")
    p.add_argument("--port", type=int, default=0, help="nginx's port on 127.0.0.1 (default: a free one)")
    p.add_argument("--syntax", choices=("go", "jinja"), default="go", help="template flavour (default go)")
    p.add_argument("--workdir", default="", help="where configs and logs go (default: a new temp dir)")
    p.add_argument("--consul", default="", help="use this agent instead of starting a dev store")
    args = p.parse_args(argv)

    nginx = shutil.which("nginx") or next((c for c in ("/usr/sbin/nginx",) if Path(c).exists()), None)
    if not nginx:
        print("nginx is not installed (Debian: apt-get install nginx)", file=sys.stderr)
        return 1
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="meshctl-nginx-"))
    demo = Demo(workdir, args.consul or None)
    try:
        consul, names = demo.start_store_and_backends(args.backends)

        port = args.port or free_port()
        (workdir / "tmp").mkdir(exist_ok=True)
        conf = workdir / "nginx.conf"
        conf.write_text((HERE / "nginx.conf").read_text().replace("@WORKDIR@", str(workdir))
                        .replace("@PORT@", str(port)))
        upstreams = workdir / "upstreams.conf"
        template = "nginx/upstreams.conf." + ("j2" if args.syntax == "jinja" else "ctmpl")
        demo.start_template(template, upstreams, f"exec {nginx} -p {workdir} -c {conf} -e stderr",
                            reload_signal="SIGHUP", kill_signal="SIGQUIT",
                            env={"TAG": "http", "CONSUL_HTTP_ADDR": consul})
        url = f"http://127.0.0.1:{port}/"
        demo.wait_serving(url, names)
        demo.serve_until_signal("nginx", url, names, upstreams)
    finally:
        demo.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
