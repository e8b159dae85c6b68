"""`meshctl git2consul` as a user runs it: real git repositories, a real dev server, the KV store.

Each test makes its own origin repository in tmp_path (committed to directly; git2consul
clones it by path), its own mountpoint and config key on one shared dev server, and runs the
real command: `-n` for one sync, or a daemon stopped with SIGTERM.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from devserver import free_port, wait_for

from meshctl.client import Client

pytestmark = pytest.mark.integration
PY = sys.executable
GIT_ID = ["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=master"]


# -- helpers ------------------------------------------------------------------------------------


class Origin:
    """A git repository the tests commit to; git2consul clones it by path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        self.git("init", "-q")

    @property
    def url(self) -> str:
        return str(self.path)

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *GIT_ID, *args], cwd=self.path, check=True, capture_output=True,
                              text=True).stdout.strip()

    def commit(self, files: dict[str, str | bytes | None], message: str = "change") -> str:
        """Write (or, for None, delete) files and commit them; the new commit's SHA."""
        for name, content in files.items():
            target = self.path / name
            if content is None:
                self.git("rm", "-q", name)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
            self.git("add", name)
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def head(self, rev: str = "HEAD") -> str:
        return self.git("rev-parse", rev)


def kv_tree(client: Client, prefix: str) -> dict[str, str]:
    return {p.key: (p.value or b"").decode("utf-8", "replace") for p in client.kv.list_prefix(prefix).value}


def kv_value(client: Client, key: str) -> str | None:
    pair = client.kv.get(key).value
    return None if pair is None else (pair.value or b"").decode()


def repo_cfg(origin: Origin, name: str, **options: Any) -> dict[str, Any]:
    return {"name": name, "url": origin.url, "branches": ["master"], **options}


def g2c_cmd(server, *args: str) -> list[str]:
    return [PY, "-m", "meshctl", "git2consul", "-e", "127.0.0.1", "-p", str(server.http_port), *args]


def run_once(server, tmp_path: Path, config: dict[str, Any] | None, *args: str, key: str | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`meshctl git2consul -n` with `config` seeded from a file (-f) into its own config key."""
    cmd = g2c_cmd(server, "-n", "-d", str(tmp_path / "store"), *args)
    if key:
        cmd += ["-c", key]
    if config is not None:
        path = tmp_path / f"config-{abs(hash(json.dumps(config, sort_keys=True)))}.json"
        path.write_text(json.dumps(config))
        cmd += ["-f", str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})


class Daemon:
    """A background `meshctl git2consul` (no -n); its log goes to a file."""

    def __init__(self, server, tmp_path: Path, config: dict[str, Any], key: str, *args: str,
                 port: int | None = None) -> None:
        self.log_path = tmp_path / f"g2c-{key.replace('/', '_')}.log"
        cfg = tmp_path / f"{key.replace('/', '_')}.json"
        cfg.write_text(json.dumps(config))
        cmd = g2c_cmd(server, "-c", key, "-f", str(cfg), "-d", str(tmp_path / "store"), *args)
        if port is not None:
            cmd[cmd.index("-p") + 1] = str(port)
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(20)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def server(shared_dev_server):
    return shared_dev_server


@pytest.fixture
def client(server):
    with Client(server.addr) as c:
        yield c


# -- one sync: layout, trimming, expansion ---------------------------------------------------------------


def test_initial_sync_writes_every_file_trimmed_and_records_the_commit(server, client, tmp_path):
    origin = Origin(tmp_path / "origin")
    head = origin.commit({"a.txt": "  hello world \n\n", "dir/sub/b.conf": "\tb=1\n", "empty.txt": "  \n",
                          "bin.dat": b"\x00\xff\xfe data \n"})
    r = run_once(server, tmp_path, {"version": "1.0", "repos": [repo_cfg(origin, "app", mountpoint="t1")]})
    assert r.returncode == 0, r.stderr
    assert kv_tree(client, "t1/") == {
        "t1/app/master/a.txt": "hello world",
        "t1/app/master/dir/sub/b.conf": "b=1",
        "t1/app/master/empty.txt": "",
        "t1/app/master/bin.dat": "\x00\ufffd\ufffd data",
        "t1/app/master.ref": head,
    }
    assert client.kv.get("t1/app/master/bin.dat").value.value == b"\x00\xff\xfe data"  # bytes kept
    assert (tmp_path / "store" / "app" / "master" / ".git").is_dir()  # -d: clones under <store>/<repo>/<branch>

    # Nothing changed: a second run writes nothing.
    before = client.kv.get("t1/app/master/a.txt").value.modify_index
    r = run_once(server, tmp_path, None, key="git2consul/config")
    assert r.returncode == 0, r.stderr
    assert client.kv.get("t1/app/master/a.txt").value.modify_index == before


def test_key_layout_options(server, client, tmp_path):
    origin = Origin(tmp_path / "origin")
    head = origin.commit({"top.txt": "top", "conf/x.txt": "x", "conf/deep/y.txt": "y", "confx/z.txt": "z"})
    config = {"repos": [
        repo_cfg(origin, "plain", mountpoint="t2"),
        repo_cfg(origin, "nobranch", mountpoint="t2", include_branch_name=False, source_root="conf/"),
        repo_cfg(origin, "norepo", mountpoint="t2/deep", ignore_repo_name=True),
    ]}
    r = run_once(server, tmp_path, config, key="cfg/t2")
    assert r.returncode == 0, r.stderr
    tree = kv_tree(client, "t2/")
    assert {k: v for k, v in tree.items() if k.startswith("t2/plain")} == {
        "t2/plain/master/top.txt": "top", "t2/plain/master/conf/x.txt": "x", "t2/plain/master/conf/deep/y.txt": "y",
        "t2/plain/master/confx/z.txt": "z", "t2/plain/master.ref": head}
    # source_root is a whole directory: confx/ is outside it, as is top.txt.
    assert {k: v for k, v in tree.items() if k.startswith("t2/nobranch")} == {
        "t2/nobranch/x.txt": "x", "t2/nobranch/deep/y.txt": "y", "t2/nobranch/master.ref": head}
    assert {k: v for k, v in tree.items() if k.startswith("t2/deep/")} == {
        "t2/deep/master/top.txt": "top", "t2/deep/master/conf/x.txt": "x", "t2/deep/master/conf/deep/y.txt": "y",
        "t2/deep/master/confx/z.txt": "z", "t2/deep/master.ref": head}


APP_JSON = {"db": {"host": "db1", "port": 5432, "tls": True, "ratio": 1.0, "pool": {"max": 10}},
            "servers": ["a", "b"], "a b": "c/d", "nothing": None}


def test_expand_keys_for_json_yaml_and_properties(server, client, tmp_path):
    origin = Origin(tmp_path / "origin")
    origin.commit({
        "config/app.json": json.dumps(APP_JSON),
        "config/bad.json": "  { not json \n",
        "config/list.json": "[1, 2]",
        "config/app.yaml": "service:\n  name: web\n  enabled: yes\n  replicas: 3\nports:\n  - 80\n",
        "config/app.properties": "base=/srv\npath=${base}/app\nenv = ${env_name}\nmulti=one \\\n    two\n# c=1\n",
        "config/broken.properties": "a=${undefined}\n",
        "common.properties": "env_name=prod\n",
        "notes.txt": " plain \n",
    })
    config = {"repos": [
        repo_cfg(origin, "exp", mountpoint="t3", expand_keys=True, common_properties="common.properties"),
        repo_cfg(origin, "noext", mountpoint="t3", expand_keys=True, ignore_file_extension=True,
                 include_branch_name=False, common_properties="common.properties"),
    ]}
    r = run_once(server, tmp_path, config, key="cfg/t3")
    assert r.returncode == 0, r.stderr
    tree = kv_tree(client, "t3/exp/master/")
    assert {k: v for k, v in tree.items() if "/app.json" in k} == {
        "t3/exp/master/config/app.json/db/host": "db1",
        "t3/exp/master/config/app.json/db/port": "5432",
        "t3/exp/master/config/app.json/db/tls": "true",
        "t3/exp/master/config/app.json/db/ratio": "1",
        "t3/exp/master/config/app.json/db/pool/max": "10",
        "t3/exp/master/config/app.json/a%20b": "c/d",
        "t3/exp/master/config/app.json/nothing": "",
    }  # arrays are skipped, segment names URI-encoded, scalars as JavaScript writes them
    assert tree["t3/exp/master/config/bad.json"] == "{ not json"  # invalid JSON: stored flat, trimmed
    assert tree["t3/exp/master/config/list.json"] == "[1, 2]"
    assert {k: v for k, v in tree.items() if "/app.yaml" in k} == {
        "t3/exp/master/config/app.yaml/service/name": "web",
        "t3/exp/master/config/app.yaml/service/enabled": "yes",  # YAML 1.2, as js-yaml: not "true"
        "t3/exp/master/config/app.yaml/service/replicas": "3",
    }
    assert {k: v for k, v in tree.items() if "/app.properties" in k} == {
        "t3/exp/master/config/app.properties/base": "/srv",
        "t3/exp/master/config/app.properties/path": "/srv/app",
        "t3/exp/master/config/app.properties/env": "prod",  # from common_properties
        "t3/exp/master/config/app.properties/multi": "one two",
    }
    assert tree["t3/exp/master/config/broken.properties"] == "a=${undefined}"  # unresolved: flat
    assert tree["t3/exp/master/notes.txt"] == "plain"
    noext = kv_tree(client, "t3/noext/")
    assert noext["t3/noext/config/app/db/host"] == "db1"
    assert noext["t3/noext/config/app/service/enabled"] == "yes"  # app.json and app.yaml share "app"
    assert noext["t3/noext/config/app/path"] == "/srv/app"
    assert noext["t3/noext/notes.txt"] == "plain"
    assert noext["t3/noext/config/bad"] == "{ not json"

    # The common file changes: every .properties file expands again with the new value.
    origin.commit({"common.properties": "env_name=staging\n"})
    r = run_once(server, tmp_path, None, key="cfg/t3")
    assert r.returncode == 0, r.stderr
    assert kv_value(client, "t3/exp/master/config/app.properties/env") == "staging"


# -- changes ------------------------------------------------------------------------------------------


def test_a_commit_moves_the_keys_with_it_and_advances_the_ref(server, client, tmp_path):
    origin = Origin(tmp_path / "origin")
    first = origin.commit({"a.txt": "a1", "gone.txt": "bye", "old/name.txt": "moving", "keep.txt": "same"})
    config = {"repos": [repo_cfg(origin, "app", mountpoint="t4")]}
    assert run_once(server, tmp_path, config, key="cfg/t4").returncode == 0
    assert kv_value(client, "t4/app/master.ref") == first
    kept = client.kv.get("t4/app/master/keep.txt").value.modify_index

    # Modify, add, delete and rename (git sees the rename; --no-renames makes it a delete plus an add).
    second = origin.commit({"a.txt": "a2", "new.txt": "fresh", "gone.txt": None,
                            "old/name.txt": None, "new/name.txt": "moving"})
    assert "rename {old => new}/name.txt" in origin.git("show", "-M", "--summary", "--format=", second)
    r = run_once(server, tmp_path, None, key="cfg/t4")
    assert r.returncode == 0, r.stderr
    assert kv_tree(client, "t4/") == {
        "t4/app/master/a.txt": "a2", "t4/app/master/new.txt": "fresh", "t4/app/master/new/name.txt": "moving",
        "t4/app/master/keep.txt": "same", "t4/app/master.ref": second}
    assert client.kv.get("t4/app/master/keep.txt").value.modify_index == kept  # only the diff is written


def test_a_force_push_is_followed_with_its_deletions(server, client, tmp_path):
    origin = Origin(tmp_path / "origin")
    origin.commit({"base.txt": "b"})
    origin.commit({"x.txt": "x", "y.txt": "y"})
    config = {"repos": [repo_cfg(origin, "app", mountpoint="t16")]}
    assert run_once(server, tmp_path, config, key="cfg/t16").returncode == 0
    # Rewrite the last commit: y.txt never existed in the new history (git pull would need a merge here).
    origin.git("rm", "-q", "y.txt")
    (origin.path / "z.txt").write_text("z")
    origin.git("add", "z.txt")
    origin.git("commit", "-q", "--amend", "-m", "rewritten")
    r = run_once(server, tmp_path, None, key="cfg/t16")
    assert r.returncode == 0, r.stderr
    assert kv_tree(client, "t16/") == {
        "t16/app/master/base.txt": "b", "t16/app/master/x.txt": "x", "t16/app/master/z.txt": "z",
        "t16/app/master.ref": origin.head()}


def test_an_expanded_file_update_deletes_exactly_its_own_keys(server, client, tmp_path):
    """git2consul #118/#128/#184: a recursive delete without "/" also hit application-dev and foobar/."""
    origin = Origin(tmp_path / "origin")
    origin.commit({
        "application.yml": "server:\n  port: 80\n  host: a\nold: 1\n",
        "application-dev.yml": "server:\n  port: 8080\n",
        "foo": "flat foo",
        "foobar/x.txt": "x",
    })
    config = {"repos": [repo_cfg(origin, "svc", mountpoint="t5", expand_keys=True, ignore_file_extension=True,
                                 include_branch_name=False)]}
    assert run_once(server, tmp_path, config, key="cfg/t5").returncode == 0
    assert kv_value(client, "t5/svc/application/old") == "1"

    head = origin.commit({"application.yml": "server:\n  port: 81\n", "foo": None})
    r = run_once(server, tmp_path, None, key="cfg/t5")
    assert r.returncode == 0, r.stderr
    assert kv_tree(client, "t5/") == {
        "t5/svc/application/server/port": "81",
        "t5/svc/application-dev/server/port": "8080",
        "t5/svc/foobar/x.txt": "x",
        "t5/svc/master.ref": head,
    }

    # A document that stops parsing is stored flat: its expanded keys go, siblings stay.
    head = origin.commit({"application.yml": "server: [unclosed\n"})
    assert run_once(server, tmp_path, None, key="cfg/t5").returncode == 0
    assert kv_tree(client, "t5/svc/application") == {
        "t5/svc/application": "server: [unclosed", "t5/svc/application-dev/server/port": "8080"}


def test_expand_keys_diff_writes_only_the_leaves_that_changed(server, client, tmp_path):
    origin = Origin(tmp_path / "origin")
    origin.commit({"c.json": '{"a": 1, "b": {"c": 2}, "gone": 3}'})
    config = {"repos": [repo_cfg(origin, "d", mountpoint="t15", expand_keys=True, expand_keys_diff=True)]}
    assert run_once(server, tmp_path, config, key="cfg/t15").returncode == 0
    unchanged = client.kv.get("t15/d/master/c.json/a").value.modify_index

    head = origin.commit({"c.json": '{"a": 1, "b": {"c": 20}}'})
    assert run_once(server, tmp_path, None, key="cfg/t15").returncode == 0
    assert kv_tree(client, "t15/") == {
        "t15/d/master/c.json/a": "1", "t15/d/master/c.json/b/c": "20", "t15/d/master.ref": head}
    assert client.kv.get("t15/d/master/c.json/a").value.modify_index == unchanged


def test_two_branches_sync_side_by_side(server, client, tmp_path):
    origin = Origin(tmp_path / "origin")
    master = origin.commit({"app.txt": "prod"})
    origin.git("checkout", "-q", "-b", "dev")
    dev = origin.commit({"app.txt": "dev", "extra.txt": "only on dev"})
    origin.git("checkout", "-q", "master")
    config = {"repos": [{**repo_cfg(origin, "app", mountpoint="t6"), "branches": ["master", "dev"]}]}
    r = run_once(server, tmp_path, config, key="cfg/t6")
    assert r.returncode == 0, r.stderr
    assert kv_tree(client, "t6/") == {
        "t6/app/master/app.txt": "prod", "t6/app/master.ref": master,
        "t6/app/dev/app.txt": "dev", "t6/app/dev/extra.txt": "only on dev", "t6/app/dev.ref": dev}


def test_annotated_tags_are_synced_as_branches_with_support_tags(server, client, tmp_path):
    origin = Origin(tmp_path / "origin")
    origin.commit({"v.txt": "one"})
    origin.git("tag", "-a", "v1", "-m", "release 1")
    origin.git("tag", "light")  # lightweight tags are not listed, as in git2consul
    head = origin.commit({"v.txt": "two"})
    config = {"repos": [repo_cfg(origin, "app", mountpoint="t7", support_tags=True)]}
    r = run_once(server, tmp_path, config, key="cfg/t7")
    assert r.returncode == 0, r.stderr
    assert kv_tree(client, "t7/") == {
        "t7/app/master/v.txt": "two", "t7/app/master.ref": head,
        "t7/app/v1/v.txt": "one", "t7/app/v1.ref": origin.head("v1^{commit}")}


# -- configuration --------------------------------------------------------------------------------


def test_config_is_read_from_its_key_or_seeded_from_a_file(server, client, tmp_path):
    origin = Origin(tmp_path / "origin")
    origin.commit({"f.txt": "from kv"})
    config = {"repos": [repo_cfg(origin, "fromkv", mountpoint="t8")]}
    client.kv.put("t8/settings", json.dumps(config))
    # No -f: the config already in the store is used; CONSUL_ENDPOINT/CONSUL_PORT instead of -e/-p.
    env = {"CONSUL_ENDPOINT": "127.0.0.1", "CONSUL_PORT": str(server.http_port)}
    r = subprocess.run([PY, "-m", "meshctl", "git2consul", "-n", "-c", "t8/settings", "-d", str(tmp_path / "s")],
                       capture_output=True, text=True, timeout=60, env={**os.environ, **env})
    assert r.returncode == 0, r.stderr
    assert kv_value(client, "t8/fromkv/master/f.txt") == "from kv"

    seeded = {"repos": [repo_cfg(origin, "seeded", mountpoint="t8")]}
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(seeded, indent=2))
    r = subprocess.run(g2c_cmd(server, "--no_daemon", "--config-key", "t8/seeded", "--config-file", str(path),
                               "--local_store", str(tmp_path / "s")), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert kv_value(client, "t8/seeded") == path.read_text()  # the file, byte for byte
    assert kv_value(client, "t8/seeded/master/f.txt") == "from kv"


BAD_CONFIGS = [
    ({"repos": []}, 1, "No repos found in configuration"),
    ({"local_store": "/tmp"}, 1, "No repos found in configuration"),
    ({"repos": [{"name": "a", "url": "u", "branches": ["master"]}, {"name": "a", "url": "v", "branches": ["x"]}]},
     2, "A repo with that name is already tracked"),
    ({"repos": [{"name": "a", "url": "u", "branches": ["master"], "mountpoint": "/abs"}]},
     2, "mountpoint must not start or end with /"),
    ({"repos": [{"name": "a", "url": "u", "branches": ["m", "m"]}]}, 2, "Duplicate name found in branches"),
    ({"repos": [{"name": "a", "url": "u", "branches": []}]}, 2, "No branches specified"),
    ({"repos": [{"name": "a", "branches": ["m"]}]}, 2, "A repo must have a local_store, a url, a name"),
    ({"repos": [{"name": "a", "url": "u", "branches": ["m"], "hooks": [{"type": "polling", "interval": -1}]}]},
     2, "Polling intervals must be positive"),
    ({"repos": [{"name": "a", "url": "u", "branches": ["m"], "hooks": [{"type": "svn"}]}]},
     2, "Invalid hook type svn"),
]


@pytest.mark.parametrize(("config", "code", "message"), BAD_CONFIGS, ids=[m for _, _, m in BAD_CONFIGS])
def test_a_bad_config_exits_with_git2consuls_code_and_says_why(server, client, tmp_path, config, code, message):
    key = f"t9/{abs(hash(message))}"
    r = run_once(server, tmp_path, config, key=key)
    assert r.returncode == code, r.stderr
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_a_missing_or_invalid_config_exits_2(server, tmp_path):
    r = run_once(server, tmp_path, None, key="t9/absent")
    assert r.returncode == 2 and "No git2consul config at key t9/absent" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    r = run_once(server, tmp_path, None, "-f", str(bad), key="t9/bad")
    assert r.returncode == 2 and "is not valid JSON" in r.stderr


@pytest.mark.parametrize(("flag", "code"), [("-e", 3), ("-c", 4), ("-p", 5), ("-t", 6), ("-f", 7), ("-d", 3)])
def test_a_flag_without_its_value_exits_with_git2consuls_code(flag, code):
    r = subprocess.run([PY, "-m", "meshctl", "git2consul", "-n", flag], capture_output=True, text=True, timeout=30)
    assert r.returncode == code
    assert "provided with" in r.stderr


# -- failures -------------------------------------------------------------------------------------


def test_a_failed_write_keeps_the_ref_and_is_retried_from_it(server, client, tmp_path):
    origin = Origin(tmp_path / "origin")
    first = origin.commit({"x.txt": "x1"})
    config = {"repos": [repo_cfg(origin, "app", mountpoint="t10")]}
    assert run_once(server, tmp_path, config, key="cfg/t10").returncode == 0

    origin.commit({"big.bin": "z" * (600 * 1024), "x.txt": "x2"})  # over the store's 512 KiB value limit
    r = run_once(server, tmp_path, None, key="cfg/t10")
    assert r.returncode == 2
    assert "big.bin" in r.stderr and "413" in r.stderr
    assert kv_value(client, "t10/app/master/x.txt") == "x2"  # the other writes went through
    assert kv_value(client, "t10/app/master.ref") == first  # ... but the commit is not marked done

    fixed = origin.commit({"big.bin": "small now"})
    r = run_once(server, tmp_path, None, key="cfg/t10")
    assert r.returncode == 0, r.stderr
    assert kv_value(client, "t10/app/master/big.bin") == "small now"
    assert kv_value(client, "t10/app/master.ref") == fixed


class FlakyStore:
    """An HTTP proxy in front of the dev server that can answer 500 "No cluster leader" (git2consul #126)."""

    def __init__(self, upstream: str) -> None:
        self.down = False
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy.down:
                    status, headers, data = 500, {}, b"No cluster leader"
                else:
                    resp = requests.request(self.command, upstream + self.path, data=body, timeout=30,
                                            headers={k: v for k, v in self.headers.items()
                                                     if k.startswith("X-") or k == "Content-Type"})
                    status, data = resp.status_code, resp.content
                    headers = {k: v for k, v in resp.headers.items() if k.startswith("X-")}
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_DELETE = do_POST = _forward

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_store_outage_deletes_nothing_and_keeps_the_ref(server, client, tmp_path):
    origin = Origin(tmp_path / "origin")
    first = origin.commit({"stay.txt": "s", "doomed.txt": "d", "conf.json": '{"a": 1, "b": 2}'})
    config = {"repos": [repo_cfg(origin, "app", mountpoint="t11", expand_keys=True,
                                 hooks=[{"type": "polling", "interval": 0.01}])]}
    store = FlakyStore(server.url)
    daemon = Daemon(server, tmp_path, config, "cfg/t11", port=store.port)
    try:
        wait_for(lambda: kv_value(client, "t11/app/master.ref") == first, 20, "initial sync", daemon.log)
        store.down = True
        second = origin.commit({"doomed.txt": None, "conf.json": '{"a": 1}', "stay.txt": "s2"})
        wait_for(lambda: daemon.log().count("No cluster leader") >= 2, 20, "failed polls", daemon.log)
        assert kv_tree(client, "t11/") == {
            "t11/app/master/stay.txt": "s", "t11/app/master/doomed.txt": "d",
            "t11/app/master/conf.json/a": "1", "t11/app/master/conf.json/b": "2", "t11/app/master.ref": first}
        assert "Purging" not in daemon.log()
        store.down = False
        wait_for(lambda: kv_value(client, "t11/app/master.ref") == second, 20, "sync after the outage", daemon.log)
        assert kv_tree(client, "t11/") == {
            "t11/app/master/stay.txt": "s2", "t11/app/master/conf.json/a": "1", "t11/app/master.ref": second}
        assert daemon.stop() == 0
    finally:
        daemon.kill()
        store.close()


# -- the daemon: hooks, halt_on_change ----------------------------------------------------------------


def test_the_polling_daemon_picks_up_a_new_commit(server, client, tmp_path):
    origin = Origin(tmp_path / "origin")
    origin.commit({"p.txt": "v1"})
    # interval is in minutes; fractions are a meshctl extension (0.01 min = 0.6 s).
    config = {"repos": [repo_cfg(origin, "app", mountpoint="t12", hooks=[{"type": "polling", "interval": 0.01}])]}
    daemon = Daemon(server, tmp_path, config, "cfg/t12")
    try:
        wait_for(lambda: kv_value(client, "t12/app/master/p.txt") == "v1", 20, "initial sync", daemon.log)
        head = origin.commit({"p.txt": "v2"})
        wait_for(lambda: kv_value(client, "t12/app/master.ref") == head, 20, "polled sync", daemon.log)
        assert kv_value(client, "t12/app/master/p.txt") == "v2"
        assert daemon.stop() == 0
    finally:
        daemon.kill()


def test_github_gitlab_stash_and_bitbucket_webhooks_trigger_a_sync(server, client, tmp_path):
    origin = Origin(tmp_path / "origin")
    origin.commit({"w.txt": "v1"})
    port = free_port()
    hooks = [{"type": "github", "port": port, "url": "/github", "secret": "s3cret"},
             {"type": "gitlab", "port": port, "url": "/gitlab"},
             {"type": "stash", "port": port, "url": "/stash"},
             {"type": "bitbucket", "port": port, "url": "/bitbucket"}]
    config = {"repos": [repo_cfg(origin, "app", mountpoint="t13", hooks=hooks)]}
    daemon = Daemon(server, tmp_path, config, "cfg/t13")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(f"{base}/gitlab", timeout=2).text == "ok", 20, "webhook listener", daemon.log)

        head = origin.commit({"w.txt": "v2"})
        body = json.dumps({"ref": "refs/heads/master", "head_commit": {"id": head}}).encode()
        unsigned = requests.post(f"{base}/github", data=body, headers={"Content-Type": "application/json"})
        assert unsigned.status_code == 403  # a configured secret is required (meshctl extension)
        signature = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        r = requests.post(f"{base}/github", data=body, timeout=5,
                          headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature})
        assert (r.status_code, r.text) == (200, "ok")
        wait_for(lambda: kv_value(client, "t13/app/master.ref") == head, 20, "github-triggered sync", daemon.log)
        assert kv_value(client, "t13/app/master/w.txt") == "v2"

        head = origin.commit({"w.txt": "v3"})
        other = requests.post(f"{base}/gitlab", json={"ref": "refs/heads/elsewhere", "after": head}, timeout=5)
        assert other.text == "ok"
        r = requests.post(f"{base}/gitlab", json={"ref": "refs/heads/master", "after": head}, timeout=5)
        assert r.text == "ok"
        wait_for(lambda: kv_value(client, "t13/app/master/w.txt") == "v3", 20, "gitlab-triggered sync", daemon.log)

        head = origin.commit({"w.txt": "v4"})
        r = requests.post(f"{base}/stash", json={"refChanges": [{"refId": "refs/heads/master", "toHash": head}]},
                          headers={"Content-Encoding": "UTF-8"}, timeout=5)  # Stash's bogus encoding header
        assert r.text == "ok"
        wait_for(lambda: kv_value(client, "t13/app/master/w.txt") == "v4", 20, "stash-triggered sync", daemon.log)

        head = origin.commit({"w.txt": "v5"})
        payload = {"commits": [{"branch": "master", "node": head[:12], "parents": ["p"]}]}
        r = requests.post(f"{base}/bitbucket", data={"payload": json.dumps(payload)}, timeout=5)  # a form
        assert r.text == "ok"
        wait_for(lambda: kv_value(client, "t13/app/master/w.txt") == "v5", 20, "bitbucket-triggered sync",
                 daemon.log)
        assert daemon.stop() == 0
    finally:
        daemon.kill()


def test_halt_on_change_exits_0_when_the_config_key_changes(server, client, tmp_path):
    origin = Origin(tmp_path / "origin")
    origin.commit({"h.txt": "h"})
    config = {"repos": [repo_cfg(origin, "app", mountpoint="t14", hooks=[{"type": "polling", "interval": 10}])]}
    daemon = Daemon(server, tmp_path, config, "cfg/t14", "-h")
    try:
        wait_for(lambda: "git2consul is running" in daemon.log(), 20, "daemon running", daemon.log)
        client.kv.put("cfg/t14", json.dumps({**config, "version": "2"}))
        assert daemon.proc.wait(15) == 0
        assert "changed; halting" in daemon.log()
    finally:
        daemon.kill()
