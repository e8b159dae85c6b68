"""Every template shipped in templates/ rendered by `meshctl template -once -dry` against known data.

Each template exists in Go (.ctmpl) and Jinja2 (.j2) syntax; both must render the same bytes.
The haproxy and nginx outputs are also checked by the real programs (`haproxy -c`, `nginx -t`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from meshctl.client import Client

pytestmark = pytest.mark.integration
PY = sys.executable
ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
SHIPPED = ["haproxy/haproxy.cfg", "nginx/upstreams.conf", "env/app.env", "json/config.json"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from devserver import start_dev_server

    srv = start_dev_server(tmp_path_factory.mktemp("shipped"))
    with Client(srv.addr) as c:
        for sid, name, port, tags, healthy in [
            ("web-1", "web", 8001, ["http"], True),
            ("web-2", "web", 8002, ["http", "v2"], True),
            ("web-3", "web", 8003, ["http"], False),  # critical: never rendered
            ("api-1", "api", 9001, ["internal"], True),  # not tagged http: no nginx upstream
            ("jobs-1", "jobs", 7001, ["http"], False),  # tagged http, nothing healthy
        ]:
            c.agent.service_register({"ID": sid, "Name": name, "Port": port, "Tags": tags,
                                      "Address": f"127.0.0.{port % 10}",
                                      "Check": {"CheckID": f"{sid}-ttl", "TTL": "10m"}})
            if healthy:
                c.agent.check_pass(f"{sid}-ttl")
            else:
                c.agent.check_fail(f"{sid}-ttl")
        for key, value in [("app/config/db/host", "db.internal"), ("app/config/db/port", "5432"),
                           ("app/config/log-level", "debug"), ("app/config/feature.x", 'on & "quoted" <b>'),
                           ("service/haproxy/balance", "leastconn")]:
            c.kv.put(key, value.encode())
    yield srv
    srv.stop()


def render(server, template: str, **env: str) -> str:
    """`meshctl template -template T:out -once -dry`; the rendered text (the "> out" line removed)."""
    full_env = {**os.environ, "CONSUL_HTTP_ADDR": server.addr, **env}
    for name in ("SERVICE", "HAPROXY_BIND", "TAG", "PREFIX"):
        if name not in env:
            full_env.pop(name, None)
    result = subprocess.run([PY, "-m", "meshctl", "template", "-template", f"{TEMPLATES / template}:/tmp/out",
                             "-once", "-dry"], capture_output=True, text=True, env=full_env, timeout=30)
    assert result.returncode == 0, result.stderr
    header, _, body = result.stdout.partition("\n")
    assert header == "> /tmp/out"
    return body


def both(server, name: str, **env: str) -> str:
    """Render the Go and the Jinja2 variant; they must agree byte for byte."""
    go, jinja = render(server, f"{name}.ctmpl", **env), render(server, f"{name}.j2", **env)
    assert go == jinja, f"{name}: .ctmpl and .j2 differ:\n{go}\n---\n{jinja}"
    return go


def test_every_shipped_template_has_both_syntaxes():
    found = sorted(str(p.relative_to(TEMPLATES)) for p in TEMPLATES.rglob("*") if p.is_file()
                   and p.suffix in (".ctmpl", ".j2"))
    assert found == sorted(f"{n}.{ext}" for n in SHIPPED for ext in ("ctmpl", "j2"))


def test_haproxy_cfg_lists_the_passing_instances_and_haproxy_accepts_it(server, tmp_path):
    text = both(server, "haproxy/haproxy.cfg", HAPROXY_BIND="127.0.0.1:18080")
    assert "    bind 127.0.0.1:18080\n    default_backend web\n" in text
    assert text.endswith(
        "backend web\n"
        "    balance leastconn\n"
        "    server devnode_web-1 127.0.0.1:8001\n"
        "    server devnode_web-2 127.0.0.2:8002\n"
    )
    assert "maxconn 256" in text and "web-3" not in text
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(text)
    check = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    api = both(server, "haproxy/haproxy.cfg", SERVICE="api")
    assert api.endswith("backend api\n    balance leastconn\n    server devnode_api-1 127.0.0.1:9001\n")


NGINX_EXPECTED = """\
# nginx upstreams rendered by `meshctl template` from Consul data: do not edit by hand.
# One `upstream <service>` block per service tagged TAG (default http), listing its
# passing instances; include this file inside nginx's http {} block.
upstream jobs {
    server 127.0.0.1:1 down; # no healthy instance
}
upstream web {
    server 127.0.0.1:8001 max_fails=0;
    server 127.0.0.2:8002 max_fails=0;
}
"""


def test_nginx_upstreams_and_nginx_accepts_them(server, tmp_path):
    text = both(server, "nginx/upstreams.conf")
    assert text == NGINX_EXPECTED
    (tmp_path / "upstreams.conf").write_text(text)
    conf = tmp_path / "nginx.conf"
    conf.write_text(textwrap.dedent(f"""
        pid {tmp_path}/nginx.pid;
        error_log stderr;
        events {{}}
        http {{
            access_log off;
            client_body_temp_path {tmp_path}/body;
            proxy_temp_path {tmp_path}/proxy;
            fastcgi_temp_path {tmp_path}/fastcgi;
            uwsgi_temp_path {tmp_path}/uwsgi;
            scgi_temp_path {tmp_path}/scgi;
            include {tmp_path}/upstreams.conf;
            server {{ listen 127.0.0.1:18081; location / {{ proxy_pass http://web; }} }}
        }}
    """))
    check = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(conf), "-e", "stderr"],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    internal = both(server, "nginx/upstreams.conf", TAG="internal")
    assert internal.endswith("upstream api {\n    server 127.0.0.1:9001 max_fails=0;\n}\n")


def test_env_file_has_one_sanitized_upper_case_line_per_key(server):
    text = both(server, "env/app.env")
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == ["DB_HOST=db.internal", "DB_PORT=5432", 'FEATURE_X=on & "quoted" <b>', "LOG_LEVEL=debug"]
    assert both(server, "env/app.env", PREFIX="service/haproxy").splitlines()[-1] == "BALANCE=leastconn"


def test_json_document_parses_and_holds_services_and_config(server):
    text = both(server, "json/config.json")
    doc = json.loads(text)
    assert doc == {
        "services": {
            "api": [{"node": "devnode", "address": "127.0.0.1", "port": 9001, "tags": ["internal"]}],
            "jobs": [],
            "web": [{"node": "devnode", "address": "127.0.0.1", "port": 8001, "tags": ["http"]},
                    {"node": "devnode", "address": "127.0.0.2", "port": 8002, "tags": ["http", "v2"]}],
        },
        "config": {"db": {"host": "db.internal", "port": "5432"}, "feature.x": 'on & "quoted" <b>',
                   "log-level": "debug"},
    }
