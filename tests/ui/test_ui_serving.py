"""The UI's HTTP side: `/` as Consul answers it, the static files, the -ui flag and ui_config."""

from __future__ import annotations

import json
import re

import pytest
import requests
from agent.agent_procs import start_client_agent
from devserver import start_dev_server, wait_for

from meshctl.server.http import ui
from meshctl.server.run import config_from_args

DISABLED = ("Consul Agent: UI disabled. To enable, set ui_config.enabled=true in the agent configuration and "
            "restart.")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_dev_server(tmp_path_factory.mktemp("ui-on"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def server_off(tmp_path_factory):
    srv = start_dev_server(tmp_path_factory.mktemp("ui-off"), "-ui=false")
    yield srv
    srv.stop()


# ---------------------------------------------------------------------- / and /ui/


def test_root_redirects_to_the_ui_on_a_dev_agent(server) -> None:
    r = requests.get(server.url + "/", allow_redirects=False, timeout=10)
    assert r.status_code == 301 and r.headers["Location"] == "/ui/"
    r = requests.get(server.url + "/ui", allow_redirects=False, timeout=10)
    assert r.status_code == 301 and r.headers["Location"] == "/ui/"
    r = requests.get(server.url + "/", timeout=10)  # followed, as a browser or an HTTP check does
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert "<title>meshctl</title>" in r.text


def test_root_says_the_ui_is_off_in_consuls_words(server_off) -> None:
    r = requests.get(server_off.url + "/", allow_redirects=False, timeout=10)
    assert r.status_code == 200
    assert r.text == DISABLED
    assert r.headers["Content-Type"].startswith("text/plain")
    for path in ("/ui/", "/ui/services", "/ui/assets/app.js"):
        assert requests.get(server_off.url + path, timeout=10).status_code == 404, path
    # the API itself is unchanged
    assert requests.get(server_off.url + "/v1/status/leader", timeout=10).json()


def test_an_http_check_on_the_agents_own_port_passes(server, server_off) -> None:
    for srv in (server, server_off):
        r = requests.put(srv.url + "/v1/agent/check/register", json={
            "CheckID": "self-http", "Name": "self", "HTTP": srv.url + "/", "Interval": "1s"}, timeout=10)
        assert r.status_code == 200, r.text

        def status(srv=srv) -> bool:
            checks = requests.get(srv.url + "/v1/agent/checks", timeout=10).json()
            return checks.get("self-http", {}).get("Status") == "passing"

        wait_for(status, what=f"HTTP check of {srv.url}/ passing")
        requests.put(srv.url + "/v1/agent/check/deregister/self-http", timeout=10)


def test_unknown_ui_paths_answer_the_app(server) -> None:
    index = requests.get(server.url + "/ui/", timeout=10)
    for path in ("/ui/services", "/ui/services/web", "/ui/kv/app/config.js", "/ui/nodes/n%2Fx", "/ui/whatever/deep"):
        r = requests.get(server.url + path, timeout=10)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html"), path
        assert r.content == index.content


def test_assets_have_their_types_and_missing_ones_are_404(server) -> None:
    expect = {"/ui/assets/app.js": "text/javascript", "/ui/assets/style.css": "text/css",
              "/ui/assets/favicon.svg": "image/svg+xml", "/ui/": "text/html"}
    for path, kind in expect.items():
        r = requests.get(server.url + path, timeout=10)
        assert r.status_code == 200, path
        assert r.headers["Content-Type"].split(";")[0] == kind, path
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    for path in ("/ui/assets/nope.js", "/ui/assets/pages/nope.js", "/ui/assets/../../run.py"):
        r = requests.get(server.url + path, timeout=10)
        assert r.status_code == 404, path


def test_cache_headers_revalidate_and_etags_answer_304(server) -> None:
    r = requests.get(server.url + "/ui/assets/app.js", timeout=10)
    assert r.headers["Cache-Control"] == "no-cache"  # upgrades are seen at once; unchanged files cost a 304
    etag = r.headers["ETag"]
    again = requests.get(server.url + "/ui/assets/app.js", headers={"If-None-Match": etag}, timeout=10)
    assert again.status_code == 304 and not again.content
    html = requests.get(server.url + "/ui/", timeout=10)
    assert "default-src 'self'" in html.headers["Content-Security-Policy"]


def test_every_module_the_app_imports_is_served(server) -> None:
    """Follow the app's ES module imports from app.js: each is a served JavaScript file."""
    seen: set[str] = set()
    todo = ["/ui/assets/app.js"]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        r = requests.get(server.url + path, timeout=10)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/javascript"), path
        base = path.rsplit("/", 1)[0]
        for rel in re.findall(r'from\s+"(\.[^"]+)"', r.text):
            parts = (base + "/" + rel).split("/")
            out: list[str] = []
            for part in parts:
                if part == "..":
                    out.pop()
                elif part != ".":
                    out.append(part)
            todo.append("/".join(out))
    assert len(seen) >= 8


def test_the_static_files_ship_inside_the_package() -> None:
    files = ui.static_files()
    assert {"index.html", "assets/app.js", "assets/api.js", "assets/style.css"} <= set(files)
    assert all(not name.startswith("/") and ".." not in name for name in files)


# ---------------------------------------------------------------------- -ui and ui_config


@pytest.mark.parametrize(("argv", "expected"), [
    (["-dev"], True),
    (["-dev", "-ui=false"], False),
    (["-server"], False),
    (["-server", "-ui"], True),
    (["-join", "127.0.0.1:1"], False),
    (["-join", "127.0.0.1:1", "-ui"], True),
])
def test_ui_flag_defaults_as_consul(argv: list[str], expected: bool) -> None:
    assert config_from_args(argv).ui is expected


@pytest.mark.parametrize(("name", "text", "argv", "expected"), [
    ("ui.hcl", "ui_config {\n  enabled = true\n}\n", ["-server"], True),
    ("ui.json", json.dumps({"ui_config": {"enabled": True}}), ["-server"], True),
    ("ui.yaml", "ui_config:\n  enabled: true\n", ["-join", "127.0.0.1:1"], True),
    ("ui.json", json.dumps({"ui": True}), ["-server"], True),  # the older top-level key
    ("ui.hcl", "ui_config {\n  enabled = false\n}\n", ["-dev"], False),
    ("ui.hcl", "ui_config {\n  enabled = true\n}\n", ["-server", "-ui=false"], False),  # the flag wins
])
def test_ui_config_in_config_files(tmp_path, name: str, text: str, argv: list[str], expected: bool) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert config_from_args([*argv, "-config-file", str(path)]).ui is expected


def test_a_client_agent_serves_the_ui_when_asked(tmp_path, server) -> None:
    plain = start_client_agent(tmp_path, server.addr, node="ui-client-off", dns_port=0)
    with_ui = start_client_agent(tmp_path, server.addr, "-ui", node="ui-client-on", dns_port=0)
    try:
        r = requests.get(plain.url + "/", allow_redirects=False, timeout=10)
        assert r.status_code == 200 and r.text == DISABLED
        r = requests.get(with_ui.url + "/", allow_redirects=False, timeout=10)
        assert r.status_code == 301 and r.headers["Location"] == "/ui/"
        r = requests.get(with_ui.url + "/ui/kv/x", timeout=10)
        assert r.status_code == 200 and "<title>meshctl</title>" in r.text
        # the app's API calls on a client agent still reach the servers
        requests.put(server.url + "/v1/kv/ui-client/k", data=b"v", timeout=10)
        assert requests.get(with_ui.url + "/v1/kv/ui-client/k?raw", timeout=10).content == b"v"
    finally:
        plain.stop()
        with_ui.stop()


def test_the_wheel_would_carry_every_static_file() -> None:
    """pyproject's package-data globs match every file of the app (so a built wheel has them all)."""
    import glob
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    data = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    package = root / "meshctl" / "server" / "ui"
    matched = {Path(p) for pattern in data["meshctl.server.ui"]
               for p in glob.glob(pattern, root_dir=package, recursive=True) if (package / p).is_file()}
    files = {p.relative_to(package) for p in (package / "static").rglob("*") if p.is_file()}
    assert files and files <= matched, sorted(map(str, files - matched))
