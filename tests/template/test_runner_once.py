"""`meshctl template -once` and one-shot behaviours as a real process: bytes on disk, exit codes."""

from __future__ import annotations

import os
import stat
import threading

import pytest
from ctrun import dev_agent, read, run

from meshctl.client import Client


@pytest.fixture(scope="module")
def consul(tmp_path_factory):
    for server in dev_agent(tmp_path_factory):
        yield from _with_client(server)


def _with_client(server):
    c = Client(server.addr)
    c.kv.put("once/app/port", "8080")
    c.kv.put("once/app/name", "shop")
    c.catalog.register({"Node": "once-n1", "Address": "10.7.0.1",
                        "Service": {"ID": "once-web-1", "Service": "onceweb", "Port": 81},
                        "Check": {"CheckID": "c1", "Name": "c", "Status": "passing", "ServiceID": "once-web-1"}})
    c.catalog.register({"Node": "once-n2", "Address": "10.7.0.2",
                        "Service": {"ID": "once-web-2", "Service": "onceweb", "Port": 82},
                        "Check": {"CheckID": "c2", "Name": "c", "Status": "critical", "ServiceID": "once-web-2"}})
    yield server.addr, c
    c.close()


TEMPLATE = ('name={{ key "once/app/name" }} port={{ key "once/app/port" }}\n'
            '{{ range service "onceweb" }}server {{ .Node }} {{ .Address }}:{{ .Port }}\n{{ end }}')
EXPECTED = "name=shop port=8080\nserver once-n1 10.7.0.1:81\n"


def test_once_renders_and_exits_zero(consul, tmp_path):
    addr, _ = consul
    (tmp_path / "in.ctmpl").write_text(TEMPLATE)
    r = run(addr, "-template", "in.ctmpl:out.txt", "-once", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.txt").read_bytes() == EXPECTED.encode()
    assert stat.S_IMODE(os.stat(tmp_path / "out.txt").st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_once_runs_command_after_render(consul, tmp_path):
    addr, _ = consul
    (tmp_path / "in.ctmpl").write_text(TEMPLATE)
    r = run(addr, "-template", "in.ctmpl:out.txt:cp out.txt copy.txt", "-once", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "copy.txt").read_text() == EXPECTED


def test_identical_commands_run_once_after_all_templates(consul, tmp_path):
    addr, _ = consul
    (tmp_path / "a.ctmpl").write_text('{{ key "once/app/name" }}')
    (tmp_path / "b.ctmpl").write_text('{{ key "once/app/port" }}')
    cmd = "cat a.txt b.txt >> log.txt; echo >> log.txt"
    r = run(addr, "-template", f"a.ctmpl:a.txt:{cmd}", "-template", f"b.ctmpl:b.txt:{cmd}", "-once", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "log.txt").read_text() == "shop8080\n"


def test_unchanged_output_is_not_rewritten_and_command_does_not_run(consul, tmp_path):
    addr, _ = consul
    (tmp_path / "in.ctmpl").write_text(TEMPLATE)
    (tmp_path / "out.txt").write_text(EXPECTED)
    before = os.stat(tmp_path / "out.txt")
    r = run(addr, "-template", "in.ctmpl:out.txt:touch ran", "-once", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    after = os.stat(tmp_path / "out.txt")
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
    assert not (tmp_path / "ran").exists()


def test_once_waits_for_a_key_that_appears_later(consul, tmp_path):
    addr, c = consul
    (tmp_path / "in.ctmpl").write_text('v={{ key "once/late" }}')
    timer = threading.Timer(1.0, lambda: c.kv.put("once/late", "here"))
    timer.start()
    r = run(addr, "-template", "in.ctmpl:out.txt", "-once", cwd=tmp_path)
    timer.join()
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.txt").read_text() == "v=here"


def test_err_on_failed_lookup_fails_fast(consul, tmp_path):
    addr, _ = consul
    (tmp_path / "in.ctmpl").write_text('v={{ key "once/never" }}')
    r = run(addr, "-template", "in.ctmpl:out.txt", "-once", "-err-on-failed-lookup", cwd=tmp_path)
    assert r.returncode == 14
    assert "once/never" in r.stderr and not (tmp_path / "out.txt").exists()


def test_dry_prints_and_writes_nothing(consul, tmp_path):
    addr, _ = consul
    (tmp_path / "in.ctmpl").write_text(TEMPLATE)
    r = run(addr, "-template", "in.ctmpl:out.txt:touch ran", "-once", "-dry", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "> out.txt\n" + EXPECTED
    assert not (tmp_path / "out.txt").exists() and not (tmp_path / "ran").exists()


def test_template_error_exits_14_and_keeps_the_old_file(consul, tmp_path):
    addr, _ = consul
    (tmp_path / "in.ctmpl").write_text('{{ key "once/app/name" }}{{ index (service "nothing-here") 0 }}')
    (tmp_path / "out.txt").write_text("previous\n")
    r = run(addr, "-template", "in.ctmpl:out.txt", "-once", cwd=tmp_path)
    assert r.returncode == 14
    assert "index" in r.stderr
    assert (tmp_path / "out.txt").read_text() == "previous\n"


def test_parse_error_exits_14(consul, tmp_path):
    addr, _ = consul
    (tmp_path / "in.ctmpl").write_text("{{ if }}")
    r = run(addr, "-template", "in.ctmpl:out.txt", "-once", cwd=tmp_path)
    assert r.returncode == 14 and "in.ctmpl" in r.stderr


def test_failing_command_exits_14(consul, tmp_path):
    addr, _ = consul
    (tmp_path / "in.ctmpl").write_text("static")
    r = run(addr, "-template", "in.ctmpl:out.txt:exit 3", "-once", cwd=tmp_path)
    assert r.returncode == 14 and "exit status 3" in r.stderr
    assert (tmp_path / "out.txt").read_text() == "static"


@pytest.mark.parametrize("args, code", [
    (["-no-such-flag"], 13),
    (["-wait", "x"], 15),
    (["-wait", "5s:1s", "-template", "a:b"], 15),
    (["-config", "/nonexistent/ct.hcl"], 15),
    ([], 15),
])
def test_flag_and_config_exit_codes(consul, tmp_path, args, code):
    addr, _ = consul
    r = run(addr, *args, "-once", cwd=tmp_path)
    assert r.returncode == code, r.stderr


def test_exec_once_returns_the_childs_exit_code(consul, tmp_path):
    addr, _ = consul
    (tmp_path / "in.ctmpl").write_text('{{ key "once/app/port" }}')
    r = run(addr, "-template", "in.ctmpl:out.txt", "-once", "-exec", "sh -c 'cat out.txt > seen.txt; exit 7'",
            cwd=tmp_path)
    assert r.returncode == 7, r.stderr
    assert (tmp_path / "seen.txt").read_text() == "8080"


def test_hcl_config_with_blocks_perms_and_contents(consul, tmp_path):
    addr, _ = consul
    (tmp_path / "in.ctmpl").write_text('{{ key "once/app/name" }}')
    (tmp_path / "ct.hcl").write_text(f'''
consul {{
  address = "{addr}"
}}
max_stale = "10m"
wait {{
  min = "5s"
  max = "10s"
}}
template {{
  source      = "in.ctmpl"
  destination = "sub/dir/out.txt"
  perms       = 0600
  command     = "touch ran"
}}
template {{
  contents    = "{{{{ key \\"once/app/port\\" }}}}"
  destination = "inline.txt"
}}
''')
    r = run("127.0.0.1:1", "-config", "ct.hcl", "-once", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "sub/dir/out.txt").read_text() == "shop"
    assert stat.S_IMODE(os.stat(tmp_path / "sub/dir/out.txt").st_mode) == 0o600
    assert (tmp_path / "inline.txt").read_text() == "8080"
    assert (tmp_path / "ran").exists()


def test_create_dest_dirs_false_is_an_error(consul, tmp_path):
    addr, _ = consul
    (tmp_path / "ct.json").write_text('{"template": [{"contents": "x", "destination": "no/dir/out.txt", '
                                      '"create_dest_dirs": false}]}')
    r = run(addr, "-config", "ct.json", "-once", cwd=tmp_path)
    assert r.returncode == 14 and "parent directory is missing" in r.stderr


def test_yaml_config_and_backup(consul, tmp_path):
    addr, _ = consul
    (tmp_path / "ct.yaml").write_text("template:\n  - contents: '{{ key \"once/app/name\" }}'\n"
                                      "    destination: out.txt\n    backup: true\n")
    (tmp_path / "out.txt").write_text("old")
    r = run(addr, "-config", "ct.yaml", "-once", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert read(tmp_path / "out.txt") == "shop" and read(tmp_path / "out.txt.bak") == "old"


def test_jinja_template_by_extension(consul, tmp_path):
    addr, _ = consul
    (tmp_path / "in.j2").write_text('{% for s in service("onceweb") %}{{ s.Node }}={{ s.Port }}\n{% endfor %}'
                                    '{{ "once/app/name" | key | toUpper }}\n')
    r = run(addr, "-template", "in.j2:out.txt", "-once", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.txt").read_text() == "once-n1=81\nSHOP\n"


def test_pid_file_is_removed_at_exit(consul, tmp_path):
    addr, _ = consul
    (tmp_path / "in.ctmpl").write_text("x")
    r = run(addr, "-template", "in.ctmpl:out.txt:cp ct.pid pid-copy", "-pid-file", "ct.pid", "-once", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "pid-copy").read_text().strip().isdigit()
    assert not (tmp_path / "ct.pid").exists()


def test_consul_unreachable_exits_14_after_retries(tmp_path):
    (tmp_path / "in.ctmpl").write_text('{{ key "a" }}')
    r = run("127.0.0.1:1", "-template", "in.ctmpl:out.txt", "-once", "-consul-retry-attempts", "2",
            "-consul-retry-backoff", "20ms", cwd=tmp_path)
    assert r.returncode == 14 and "kv.get(a)" in r.stderr
