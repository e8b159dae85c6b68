"""The agent's one config model: files (HCL, JSON, YAML) and flags merged in Consul's order, checked, typed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from meshctl.configfile import ConfigError
from meshctl.durations import format_duration, parse_duration, parse_go_ns
from meshctl.server.agentconfig import config_from_args

REPO = Path(__file__).resolve().parents[2]


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


# ---------------------------------------------------------------------- what files set is applied


def test_server_settings_of_an_hcl_file_are_applied(tmp_path: Path) -> None:
    """The settings an HCL file gave used to be dropped: data_dir, bootstrap_expect, retry_join."""
    conf = tmp_path / "conf"
    conf.mkdir()
    write(conf / "server.hcl", f'''
server           = true
bootstrap_expect = 3
data_dir         = "{tmp_path / 'data'}"
datacenter       = "east"
node_name        = "s1"
bind_addr        = "127.0.0.2"
retry_join       = ["127.0.0.3:8301", "127.0.0.4:8301"]
ports {{
  http = 18500
  serf_lan = 18301
}}
node_meta {{
  rack = "r1"
}}
performance {{
  raft_multiplier = 1
}}
''')
    cfg = config_from_args(["-config-dir", str(conf)])
    assert (cfg.server, cfg.bootstrap_expect, cfg.data_dir) == (True, 3, str(tmp_path / "data"))
    assert (cfg.datacenter, cfg.node, cfg.bind, cfg.http_port, cfg.serf_port) == ("east", "s1", "127.0.0.2", 18500, 18301)
    assert cfg.retry_join == ["127.0.0.3:8301", "127.0.0.4:8301"]
    assert cfg.options.node_meta == {"rack": "r1"} and cfg.raft_multiplier == 1


def test_files_merge_in_lexical_order_and_flags_win(tmp_path: Path) -> None:
    write(tmp_path / "10-base.hcl", 'datacenter = "a"\nlog_level = "debug"\nretry_join = ["10.0.0.1"]\n'
                                   'acl {\n  enabled = true\n  default_policy = "deny"\n}\n')
    write(tmp_path / "20-more.json", json.dumps({"datacenter": "b", "retry_join": ["10.0.0.2"],
                                                 "acl": {"default_policy": "allow"}}))
    write(tmp_path / "05-first.yaml", "datacenter: first\nnode_meta:\n  zone: z1\n")
    cfg = config_from_args(["-config-dir", str(tmp_path), "-retry-join", "10.0.0.3", "-node-meta", "os:linux"])
    assert cfg.datacenter == "b"  # 20-more.json is read last
    assert cfg.log_level == "debug"  # a later file that does not set a key leaves it alone
    assert cfg.retry_join == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]  # lists append: files in order, then flags
    assert cfg.security.acl.enabled is True and cfg.security.acl.default_policy == "allow"  # objects merge by key
    assert cfg.options.node_meta == {"zone": "z1", "os": "linux"}
    flagged = config_from_args(["-config-dir", str(tmp_path), "-datacenter", "flag", "-log-level", "warn"])
    assert (flagged.datacenter, flagged.log_level) == ("flag", "warn")


def test_config_file_and_dir_are_read_in_command_line_order(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    write(d / "x.json", '{"node_name": "from-dir"}')
    f = write(tmp_path / "f.hcl", 'node_name = "from-file"')
    assert config_from_args(["-config-dir", str(d), "-config-file", f]).node == "from-file"
    assert config_from_args(["-config-file", f, "-config-dir", str(d)]).node == "from-dir"


def test_config_format_reads_any_extension(tmp_path: Path) -> None:
    f = write(tmp_path / "agent.conf", '{"datacenter": "fmt"}')
    assert config_from_args(["-config-file", f, "-config-format", "json"]).datacenter == "fmt"
    d = tmp_path / "dir"
    d.mkdir()
    write(d / "agent.conf", 'datacenter = "hcl-fmt"')
    write(d / "notes.txt", "ignored without -config-format")
    assert config_from_args(["-config-dir", str(d)]).datacenter == "dc1"  # unknown extensions are skipped


def test_weak_types_as_consul_decodes_them(tmp_path: Path) -> None:
    f = write(tmp_path / "w.json", json.dumps({"server": "true", "bootstrap_expect": "3", "data_dir": "/x",
                                               "node_meta": {"n": 1}, "retry_join": "10.0.0.9",
                                               "Datacenter": "case-insensitive"}))
    cfg = config_from_args(["-config-file", f])
    assert (cfg.server, cfg.bootstrap_expect, cfg.options.node_meta) == (True, 3, {"n": "1"})
    assert cfg.retry_join == ["10.0.0.9"] and cfg.datacenter == "case-insensitive"


def test_ports_minus_one_disables_a_listener(tmp_path: Path) -> None:
    f = write(tmp_path / "p.hcl", "ports {\n  https = -1\n  dns = -1\n}\n")
    cfg = config_from_args(["-dev", "-config-file", f])
    assert cfg.security.https_port == 0 and cfg.dns_port == -1
    from meshctl.server.listeners import planned

    assert {item.name for item in planned(cfg)} == {"http"}


def test_durations_in_files(tmp_path: Path) -> None:
    f = write(tmp_path / "d.hcl", 'ae_interval = "1m30s"\nacl {\n  token_ttl = "250ms"\n}\n'
                                  'dns_config {\n  node_ttl = "1h"\n}\nautopilot {\n  server_stabilization_time = "2s"\n}\n')
    cfg = config_from_args(["-dev", "-config-file", f])
    assert cfg.options.ae_interval == 90 and cfg.security.acl.token_ttl == 0.25
    assert cfg.settings.dns_config.node_ttl == 3600 and cfg.settings.autopilot.server_stabilization_time == 2
    assert cfg.settings.autopilot.last_contact_threshold == 0.2  # Consul's default


# ---------------------------------------------------------------------- mistakes, named


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("bad.hcl", 'server = true\n\nbootstrap_expekt = 3\n', "line 3: invalid config key bootstrap_expekt"),
    ("bad.hcl", 'ports {\n  http = 8500\n  htps = 1\n}\n', "line 3: invalid config key ports.htps"),
    ("bad.json", '{\n  "datacenter": "x",\n  "ports": {\n    "dsn": 1\n  }\n}\n', "line 4: invalid config key ports.dsn"),
    ("bad.hcl", 'bootstrap_expect = "three"\n', "line 1: bootstrap_expect: Input should be a valid integer"),
    ("bad.json", '{"datacenter": "x",\n "ports": {"http": "eighty"}}', "line 2: ports.http"),
    ("bad.hcl", 'acl {\n  token_ttl = "5 minutes"\n}\n', 'line 2: acl.token_ttl: time: unknown unit " minutes"'),
    ("bad.hcl", 'performance {\n  raft_multiplier = 11\n}\n', "line 2: performance.raft_multiplier"),
    ("bad.hcl", 'log_level = "loud"\n', "line 1: log_level: unknown log level 'loud'"),
    ("bad.hcl", 'server = \n', "Error parsing"),
    ("bad.json", '{"server": true,}', "line 1"),
])
def test_a_mistake_names_the_file_the_key_and_the_line(tmp_path: Path, name: str, text: str, expected: str) -> None:
    path = write(tmp_path / name, text)
    with pytest.raises(ConfigError) as info:
        config_from_args(["-config-file", path])
    message = str(info.value)
    assert path in message and expected in message and "\n" not in message


@pytest.mark.parametrize(("argv", "expected"), [
    (["-server", "-bootstrap", "-bootstrap-expect", "3"], "mutually exclusive"),
    (["-bootstrap-expect", "3", "-join", "127.0.0.1:1"], "requires 'server = true'"),
    (["-dev", "-bootstrap-expect", "3"], "not allowed in dev mode"),
    (["-dev", "-encrypt", "not base64!"], "Failed to decode encryption key"),
    (["-dev", "-encrypt", "c2hvcnQ="], "Invalid encryption key length"),
    (["-dev", "-node-meta", "novalue"], "-node-meta must be key:value"),
])
def test_conflicting_or_invalid_flags(argv: list[str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        config_from_args(argv)


def test_consul_keys_meshctl_does_not_use_are_accepted(tmp_path: Path) -> None:
    f = write(tmp_path / "consul.hcl", 'telemetry {\n  prometheus_retention_time = "24h"\n}\nleave_on_terminate = true\n')
    assert set(config_from_args(["-dev", "-config-file", f]).settings.unused) == {"telemetry", "leave_on_terminate"}


# ---------------------------------------------------------------------- durations: Go's grammar


@pytest.mark.parametrize(("text", "ns"), [
    ("0", 0), ("1s", 10**9), ("1.5h", 5400 * 10**9), ("1h30m", 5400 * 10**9), (".5ms", 500_000), ("-2m", -120 * 10**9),
    ("+3us", 3000), ("3µs", 3000), ("3μs", 3000), ("10ns", 10), ("1m0.5s", 60_500_000_000), ("2h45m3.5s", 9903_500_000_000),
])
def test_go_durations(text: str, ns: int) -> None:
    assert parse_go_ns(text) == ns


@pytest.mark.parametrize(("text", "message"), [
    ("", 'time: invalid duration ""'), ("5", 'time: missing unit in duration "5"'), ("1d", 'unknown unit "d"'),
    ("s", "invalid duration"), (".s", "invalid duration"), ("1h-5m", 'unknown unit "h-"'),
    ("3000000h", "invalid duration"),
])
def test_go_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_go_ns(text)


def test_bare_numbers_are_seconds_and_format_is_gos() -> None:
    assert parse_duration("5") == 5 and parse_duration(2.5) == 2.5 and parse_duration("1m30s") == 90
    assert [format_duration(s) for s in (0, 0.25, 15, 90, 3600)] == ["0s", "250ms", "15s", "1m30s", "1h0m0s"]


# ---------------------------------------------------------------------- meshctl validate


def validate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meshctl", "validate", *args], capture_output=True, text=True,
                          timeout=60, cwd=REPO)


def test_validate_as_consul_validate(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.mkdir()
    write(good / "a.hcl", f'server = true\nbootstrap_expect = 3\ndata_dir = "{tmp_path}"\n')
    write(good / "b.json", '{"service": {"name": "web", "port": 80}}')
    ok = validate(str(good))
    assert (ok.returncode, ok.stdout.strip(), ok.stderr) == (0, "Configuration is valid!", "")
    assert validate("-quiet", str(good / "a.hcl")).stdout == ""
    bad = write(tmp_path / "bad.hcl", "server = true\nbogus_key = 1\n")
    fail = validate(str(good), bad)
    assert fail.returncode == 1 and fail.stdout == ""
    assert fail.stderr.strip() == f"Config validation failed: Error parsing {bad}: line 2: invalid config key bogus_key"
    no_dir = write(tmp_path / "nodir.hcl", "server = true\n")
    assert "data_dir cannot be empty" in validate(no_dir).stderr
    bad_check = write(tmp_path / "check.json", '{"check": {"name": "c", "args": ["/bin/true"], "interval": "5s"}}')
    assert "Scripts are disabled" in validate(bad_check).stderr
    assert validate().returncode == 1
