"""User mistakes and an unreachable agent: one clear stderr line, exit 1, never a traceback."""

from __future__ import annotations

import pytest
from cli_support import run_meshctl

pytestmark = pytest.mark.integration

CLIENT_COMMANDS = [
    ("kv", "get", "k"),
    ("kv", "get", "-recurse", "p/"),
    ("kv", "put", "k", "v"),
    ("kv", "delete", "k"),
    ("kv", "export"),
    ("kv", "import", "[]"),
    ("catalog", "datacenters"),
    ("catalog", "nodes"),
    ("catalog", "services"),
    ("members",),
    ("services", "register", "-name=x"),
    ("services", "deregister", "-id=x"),
    ("event", "fire", "e"),
    ("event", "list"),
    ("info",),
    ("reload",),
    ("maint",),
    ("maint", "-enable"),
    ("leave",),
]


@pytest.mark.parametrize("args", CLIENT_COMMANDS, ids=lambda a: " ".join(a))
def test_unreachable_agent_is_one_line_and_exit_1(args, closed_addr):
    r = run_meshctl(*args, env={"CONSUL_HTTP_ADDR": closed_addr})
    if args == ("kv", "import", "[]"):  # nothing to write: never contacts the agent
        assert r.code == 0
        return
    assert r.code == 1, r
    assert r.out == ""
    assert r.err.count("\n") == 1, r.err
    assert "Traceback" not in r.err
    assert f"{closed_addr}" in r.err and "connection refused" in r.err


def test_unreachable_get_reads_like_consul(closed_addr):
    r = run_meshctl("kv", "get", f"-http-addr={closed_addr}", "k")
    assert r.err == f'Error querying Consul agent: Get "http://{closed_addr}/v1/kv/k": connection refused\n'


def test_address_flag_aliases(closed_addr):
    for flag in ("-http-addr", "--http-addr", "-consul-addr", "-addr", "--addr"):
        r = run_meshctl("kv", "get", flag, closed_addr, "k")
        assert closed_addr in r.err, flag


def test_https_scheme_from_env_is_used(closed_addr):
    r = run_meshctl("catalog", "datacenters", env={"CONSUL_HTTP_ADDR": f"https://{closed_addr}"})
    assert f"https://{closed_addr}/v1/catalog/datacenters" in r.err


def test_missing_token_file_is_one_line(tmp_path):
    r = run_meshctl("kv", "get", f"-token-file={tmp_path}/nope", "k")
    assert r.code == 1 and r.err.startswith("Error initializing client: Error loading token file")
    assert r.err.count("\n") == 1


def test_bad_ssl_env_is_one_line():
    r = run_meshctl("members", env={"CONSUL_HTTP_SSL": "sure"})
    assert r.code == 1 and r.err.count("\n") == 1 and "CONSUL_HTTP_SSL" in r.err


def test_no_arguments_prints_usage_and_fails():
    r = run_meshctl()
    assert r.code == 1 and r.err.startswith("Usage: meshctl")


def test_help_lists_commands():
    r = run_meshctl("--help")
    assert r.code == 0
    for name in ("kv", "catalog", "members", "services", "event", "info", "reload", "maint", "agent"):
        assert f"    {name} " in r.out


def test_version():
    r = run_meshctl("--version")
    assert r.code == 0 and r.out.startswith("meshctl v")


def test_unknown_command():
    r = run_meshctl("frobnicate")
    assert r.code == 1 and r.err.startswith("meshctl: unknown command 'frobnicate'")


def test_unknown_subcommand():
    r = run_meshctl("kv", "frob")
    assert r.code == 1 and r.err.count("\n") == 1 and "unknown subcommand 'frob'" in r.err


def test_group_without_subcommand_prints_its_usage():
    r = run_meshctl("kv")
    assert r.code == 1 and r.err.startswith("Usage: meshctl kv <subcommand>")
    assert "get" in r.err and "export" in r.err


def test_unknown_flag_is_one_line():
    r = run_meshctl("kv", "get", "-nope", "k")
    assert r.code == 1 and r.err.count("\n") == 1 and "-nope" in r.err and "Traceback" not in r.err


def test_unknown_flag_starting_like_a_one_letter_flag_is_reported_as_unknown():
    # Go's flag package never reads `-vault-addr` as template's `-v` with `ault-addr` glued on
    r = run_meshctl("template", "-vault-addr", "http://127.0.0.1:8200", "-once")
    assert r.code != 0 and "unrecognized arguments: -vault-addr" in r.err and "ault-addr'" not in r.err


def test_bad_flag_value_is_one_line():
    r = run_meshctl("kv", "put", "-flags=abc", "k", "v")
    assert r.code == 1 and r.err.count("\n") == 1 and "Traceback" not in r.err


def test_bad_bool_value_is_one_line():
    r = run_meshctl("kv", "get", "-recurse=maybe", "k")
    assert r.code == 1 and r.err.count("\n") == 1


def test_subcommand_help_exits_0():
    r = run_meshctl("kv", "put", "-h")
    assert r.code == 0 and "-http-addr" in r.out and "-modify-index" in r.out
