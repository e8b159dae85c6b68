"""CLI building blocks in-process: Go-style parsing, tables, service files, export JSON, command table."""

from __future__ import annotations

import importlib
import json

import pytest

from meshctl import cli
from meshctl.client import KVPair
from meshctl.commands.common import columnize, new_parser, parse, read_data_arg, tabwrite
from meshctl.commands.kv import detailed, go_json
from meshctl.commands.services import camel, load_definitions, normalize


def parser():
    p = new_parser("t", "test")
    p.bool_flag("recurse")
    p.flag("separator", default="/")
    p.flag("reason", default="")
    return p


def test_bool_flag_does_not_swallow_the_next_word():
    args, rest = parse(parser(), ["-recurse", "foo"])
    assert args.recurse is True and rest == ["foo"]


def test_bool_flag_explicit_values():
    assert parse(parser(), ["-recurse=false", "k"])[0].recurse is False
    assert parse(parser(), ["--recurse=true", "k"])[0].recurse is True


def test_flags_stop_at_first_positional_like_go():
    args, rest = parse(parser(), ["k", "-recurse"])
    assert args.recurse is False and rest == ["k", "-recurse"]


def test_double_dash_ends_flags():
    args, rest = parse(parser(), ["-recurse", "--", "-k"])
    assert args.recurse is True and rest == ["-k"]


def test_value_flag_takes_next_word_even_with_dash():
    args, rest = parse(parser(), ["-reason", "-odd-", "x"])
    assert args.reason == "-odd-" and rest == ["x"]


def test_value_flag_forms():
    assert parse(parser(), ["-separator=:"])[0].separator == ":"
    assert parse(parser(), ["--separator", ":"])[0].separator == ":"
    assert parse(parser(), ["-separator="])[0].separator == ""


def test_single_dash_is_positional():
    assert parse(parser(), ["k", "-"])[1] == ["k", "-"]


def test_http_flags_and_aliases():
    args, _ = parse(parser(), ["-consul-addr=h:1", "-token", "t", "-dc", "dc9", "-stale", "-tls-server-name=s"])
    assert (args.http_addr, args.token, args.datacenter, args.stale, args.tls_server_name) == (
        "h:1", "t", "dc9", True, "s")


def test_unknown_flag_exits_1(capsys):
    with pytest.raises(SystemExit) as info:
        parse(parser(), ["-bogus"])
    assert info.value.code == 1


def test_columnize_pads_all_but_last_column():
    assert columnize([("Node", "Address", "DC"), ("n1", "127.0.0.1:8301", "dc1")]) == [
        "Node  Address         DC",
        "n1    127.0.0.1:8301  dc1",
    ]


def test_tabwrite_matches_go_tabwriter_padding_6():
    assert tabwrite([("Key", "a"), ("ModifyIndex", "5")]) == ["Key              a", "ModifyIndex      5"]


def test_detailed_table():
    text = detailed(KVPair("k", b"v", 1, 2, 3, 4, "sess"))
    assert text.splitlines() == ["CreateIndex      2", "Flags            1", "Key              k",
                                 "LockIndex        4", "ModifyIndex      3", "Session          sess",
                                 "Value            v"]


def test_go_json_escapes_html_and_indents_with_tabs():
    assert go_json([{"key": "<a&b>", "flags": 0}]) == '[\n\t{\n\t\t"key": "\\u003ca\\u0026b\\u003e",\n\t\t"flags": 0\n\t}\n]'
    assert go_json([]) == "[]"
    assert json.loads(go_json([{"key": "ü"}])) == [{"key": "ü"}]


def test_read_data_arg_literal_file_and_empty(tmp_path):
    f = tmp_path / "v"
    f.write_bytes(b"data")
    assert read_data_arg("text") == b"text"
    assert read_data_arg(f"@{f}") == b"data"
    assert read_data_arg("") == b""
    assert read_data_arg("-x") == b"-x"


@pytest.mark.parametrize(
    ("snake", "camel_case"),
    [("name", "Name"), ("id", "ID"), ("check_id", "CheckID"), ("ttl", "TTL"), ("http", "HTTP"),
     ("tls_skip_verify", "TLSSkipVerify"), ("deregister_critical_service_after", "DeregisterCriticalServiceAfter"),
     ("enable_tag_override", "EnableTagOverride"), ("grpc_use_tls", "GRPCUseTLS"), ("service_id", "ServiceID"),
     ("docker_container_id", "DockerContainerID"), ("Name", "Name"), ("TaggedAddresses", "TaggedAddresses")],
)
def test_camel_case_field_names(snake, camel_case):
    assert camel(snake) == camel_case


def test_normalize_keeps_user_map_keys():
    out = normalize({"name": "w", "meta": {"owner_team": "x"}, "tagged_addresses": {"lan": {"address": "a"}},
                     "check": {"http": "u", "header": {"x_token": ["1"]}}})
    assert out == {"Name": "w", "Meta": {"owner_team": "x"}, "TaggedAddresses": {"lan": {"Address": "a"}},
                   "Check": {"HTTP": "u", "Header": {"x_token": ["1"]}}}


def test_load_definitions_json_hcl_yaml(tmp_path):
    j = tmp_path / "a.json"
    j.write_text('{"services": [{"name": "a"}, {"Name": "b", "Port": 2}]}')
    h = tmp_path / "b.hcl"
    h.write_text('service {\n  name = "c"\n  port = 3\n  meta = { k = "v" }\n  check {\n    tcp = "x:1"\n'
                 '    interval = "10s"\n  }\n}\n')
    y = tmp_path / "c.yml"
    y.write_text("service:\n  name: d\n  tags: [t]\n")
    assert load_definitions(str(j)) == [{"Name": "a"}, {"Name": "b", "Port": 2}]
    assert load_definitions(str(h)) == [{"Name": "c", "Port": 3, "Meta": {"k": "v"},
                                         "Check": {"TCP": "x:1", "Interval": "10s"}}]
    assert load_definitions(str(y)) == [{"Name": "d", "Tags": ["t"]}]


def test_load_definitions_errors(tmp_path):
    from meshctl.commands.common import CommandError

    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    empty = tmp_path / "empty.json"
    empty.write_text('{"other": 1}')
    for path in (bad, empty, tmp_path / "missing.json"):
        with pytest.raises(CommandError):
            load_definitions(str(path))


def test_every_registered_command_resolves_to_a_main():
    for name in cli.COMMANDS:
        assert callable(cli.load(name)), name


def test_command_modules_exist_for_the_table():
    for target, _ in cli.COMMANDS.values():
        importlib.import_module(target.partition(":")[0])


def test_main_in_process_help_and_unknown(capsys):
    assert cli.main(["--help"]) == 0
    assert "Available commands are:" in capsys.readouterr().out
    assert cli.main(["nope"]) == 1
    assert cli.main([]) == 1


@pytest.fixture
def recorder():
    from cli_support import Recorder

    r = Recorder(404, b"", {"X-Consul-Index": "1"})
    yield r
    r.close()


def test_token_flag_is_sent_as_header_only(recorder, capsys):
    assert cli.main(["kv", "get", f"-http-addr={recorder.addr}", "-token=s3cret", "k"]) == 1
    method, path, headers, _ = recorder.requests[-1]
    assert (method, path) == ("GET", "/v1/kv/k")
    assert headers["X-Consul-Token"] == "s3cret"
    assert "s3cret" not in capsys.readouterr().err


def test_token_file_and_datacenter_flags(recorder, tmp_path, monkeypatch):
    monkeypatch.delenv("CONSUL_HTTP_TOKEN", raising=False)
    f = tmp_path / "token"
    f.write_text("from-file\n")
    cli.main(["kv", "get", f"--http-addr={recorder.addr}", f"--token-file={f}", "--datacenter=dc7", "-stale", "k"])
    _, path, headers, _ = recorder.requests[-1]
    assert headers["X-Consul-Token"] == "from-file"
    assert path == "/v1/kv/k?stale=&dc=dc7"


def test_env_token_is_used_when_no_flag(recorder, monkeypatch):
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", "env-token")
    cli.main(["kv", "get", f"-addr={recorder.addr}", "k"])
    assert recorder.requests[-1][2]["X-Consul-Token"] == "env-token"


def test_server_error_is_one_line(recorder, capsys):
    recorder.status, recorder.body = 500, b"No cluster leader"
    assert cli.main(["catalog", "services", f"-addr={recorder.addr}"]) == 1
    assert capsys.readouterr().err == "Error listing services: Unexpected response code: 500 (No cluster leader)\n"


def test_agent_command_hands_all_arguments_to_the_server(monkeypatch):
    import meshctl.server.run as run

    seen = []
    monkeypatch.setattr(run, "main", lambda argv: seen.append(argv) or 3)
    assert cli.main(["agent", "-dev", "--node", "n1", "-http-port=1"]) == 3
    assert seen == [["-dev", "--node", "n1", "-http-port=1"]]
