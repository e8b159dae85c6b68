"""Configuration: consul-template's HCL loads unchanged, one merge direction, -template parsing, waits."""

from __future__ import annotations

import pytest

from meshctl.template import config as cfg
from meshctl.template.config import ConfigError, parse_template_flag, parse_wait, split_command


def test_hcl1_style_file_with_one_line_blocks_and_octal_perms():
    data = cfg.parse_text('''
consul { address = "127.0.0.1:8500" token = "t" }
wait { min = "2s" max = "10s" }
max_stale = "10m"
exec { command = "sleep 10" kill_signal = "SIGUSR1" kill_timeout = "2s" }
template {
  source = "a.ctmpl"
  destination = "a.out"
  perms = 0600
  command = "echo hi"
  wait { min = "1s" }
}
''', "ct.hcl")
    c = cfg.build(data)
    assert (c.consul.address, c.consul.token) == ("127.0.0.1:8500", "t")
    assert (c.wait.min, c.wait.max, c.max_stale) == (2.0, 10.0, 600.0)
    assert (c.exec.command, c.exec.kill_signal, c.exec.kill_timeout) == ("sleep 10", "SIGUSR1", 2.0)
    t = c.templates[0]
    assert (t.source, t.destination, t.perms, t.command) == ("a.ctmpl", "a.out", 0o600, "echo hi")
    assert (t.wait.min, t.wait.max) == (1.0, 4.0)
    assert t.error_fatal and t.create_dest_dirs and not t.backup


def test_files_merge_in_order_and_templates_accumulate(tmp_path):
    (tmp_path / "a.hcl").write_text('max_stale = "1s"\nconsul {\n  address = "a:1"\n  token = "x"\n}\n'
                                    'template {\n  contents = "1"\n  destination = "one"\n}\n')
    (tmp_path / "b.json").write_text('{"max_stale": "3s", "consul": {"address": "b:2"}, '
                                     '"template": [{"contents": "2", "destination": "two"}]}')
    data = cfg.load_files([str(tmp_path)])
    cfg.merge(data, {"consul": {"address": "flag:3"}})
    c = cfg.build(data)
    assert c.max_stale == 3.0 and c.consul.address == "flag:3" and c.consul.token == "x"
    assert [t.destination for t in c.templates] == ["one", "two"]


@pytest.mark.parametrize("flag, expect", [
    ("in.ctmpl:out.txt", ("in.ctmpl", "out.txt", None)),
    ("in:out:service nginx reload", ("in", "out", "service nginx reload")),
    ("in:out:echo a:b", ("in", "out", "echo a:b")),
    ("C:\\in.tpl:D:\\out.txt:cmd", ("C:\\in.tpl", "D:\\out.txt", "cmd")),
    ("only.ctmpl", ("only.ctmpl", "", None)),
])
def test_template_flag(flag, expect):
    t = parse_template_flag(flag)
    assert (t.source, t.destination, t.command) == expect


def test_wait_forms():
    assert (parse_wait("5s").min, parse_wait("5s").max) == (5.0, 20.0)
    assert (parse_wait("1s:3s").min, parse_wait("1s:3s").max) == (1.0, 3.0)
    assert parse_wait({"min": "1s", "max": "2s"}).max == 2.0
    with pytest.raises(ConfigError):
        parse_wait("3s:1s")


def test_template_block_errors():
    with pytest.raises(ConfigError, match="exactly one"):
        cfg.build({"template": [{"destination": "x"}]})
    with pytest.raises(ConfigError, match="both"):
        cfg.build({"template": [{"source": "a", "contents": "b"}]})
    with pytest.raises(ConfigError, match="unknown"):
        cfg.build({"template": [{"source": "a", "colour": "red"}]})


def test_once_disables_wait_and_template_error_fatal_overrides():
    c = cfg.build({"once": True, "wait": "5s", "template_error_fatal": False,
                   "template": [{"contents": "x", "destination": "y"}]})
    assert not c.wait.enabled and c.templates[0].error_fatal is False


def test_commands_run_directly_unless_they_need_a_shell():
    assert split_command("touch ran") == (["touch", "ran"], False)
    assert split_command("a | b") == (["/bin/sh", "-c", "a | b"], True)
    assert split_command("exit 3") == (["/bin/sh", "-c", "exit 3"], True)
    assert split_command(["nginx", "-s", "reload"]) == (["nginx", "-s", "reload"], False)


def test_deduplicate_stanza_as_consul_template_and_its_defaults():
    c = cfg.build(cfg.parse_text('deduplicate {\n  prefix = "ct/dd/"\n  ttl = "20s"\n}\n', "ct.hcl"))
    assert (c.dedup.enabled, c.dedup.prefix, c.dedup.ttl) == (True, "ct/dd/", 20.0)  # any field enables it
    c = cfg.build(cfg.parse_text('deduplicate {\n  enabled = false\n  prefix = "x/"\n}\n', "ct.hcl"))
    assert not c.dedup.enabled
    c = cfg.build({})
    assert (c.dedup.enabled, c.dedup.prefix) == (False, "consul-template/dedup/")
    with pytest.raises(ConfigError, match="at least 10s"):
        cfg.build(cfg.parse_text('deduplicate {\n  ttl = "5s"\n}\n', "ct.hcl"))


def test_register_service_stanza():
    c = cfg.build(cfg.parse_text('register_service {\n  name = "edge-ct"\n  tags = ["a", "b"]\n  ttl = "10s"\n}\n',
                                 "ct.hcl"))
    h = c.self_health
    assert (h.enabled, h.name, h.tags, h.ttl) == (True, "edge-ct", ["a", "b"], 10.0)
    assert cfg.build(cfg.parse_text('register_service = "x"\n', "ct.hcl")).self_health.name == "x"
    assert not cfg.build({}).self_health.enabled
    with pytest.raises(ConfigError, match="register_service: a name is required"):
        cfg.build(cfg.parse_text('register_service {\n  ttl = "10s"\n}\n', "ct.hcl"))
