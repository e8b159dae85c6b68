"""consul-template's `template { }` stanza and top-level options, checked on disk: bytes, modes, owners.

Every test writes the configuration the way a consul-template user would (HCL, JSON) and runs
`meshctl template -config ... -once` as a real process against a dev agent. Ownership tests
chown to other users, which needs root; they skip when not run as root.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat
import time
from pathlib import Path

import pytest
from ctrun import Proc, dev_agent, file_is, read, run, wait_until

from meshctl.client import Client


@pytest.fixture(scope="module")
def consul(tmp_path_factory):
    for server in dev_agent(tmp_path_factory):
        c = Client(server.addr)
        c.kv.put("opt/name", "shop")
        c.kv.put("opt/port", "8080")
        try:
            yield server.addr, c
        finally:
            c.close()


IN_CI = os.environ.get("CI") == "true"  # CI runs as root: there a missing piece fails, never skips
needs_root = pytest.mark.skipif(os.geteuid() != 0 and not IN_CI, reason="chown to other users needs root")


def _missing(what: str) -> None:
    (pytest.fail if IN_CI else pytest.skip)(what)


def _nobody() -> tuple[str, int, str, int]:
    """("nobody", uid, its group's name, gid) — the group is `nogroup` on Debian, `nobody` elsewhere."""
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        _missing("no user named nobody")
    for name in ("nogroup", "nobody"):
        try:
            return pw.pw_name, pw.pw_uid, name, grp.getgrnam(name).gr_gid
        except KeyError:
            continue
    _missing("no group named nogroup or nobody")


def ct(addr: str, tmp_path: Path, config: str, *args: str, name: str = "ct.hcl"):
    """Write `config` as a config file and run `meshctl template -config FILE -once ARGS`."""
    (tmp_path / name).write_text(config)
    return run(addr, "-config", name, "-once", *args, cwd=tmp_path)


def owner(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_uid, st.st_gid


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def no_temp_files(directory: Path) -> bool:
    return not [p for p in directory.iterdir() if p.name.endswith(".tmp")]


# -- user / group / uid / gid ------------------------------------------------------------------


@needs_root
def test_user_and_group_by_name(consul, tmp_path):
    addr, _ = consul
    user, uid, group, gid = _nobody()
    r = ct(addr, tmp_path, f'''
template {{
  contents    = "name={{{{ key \\"opt/name\\" }}}}\\n"
  destination = "out/app.conf"
  user        = "{user}"
  group       = "{group}"
}}
''')
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out/app.conf"
    assert out.read_bytes() == b"name=shop\n"
    assert owner(out) == (uid, gid)
    assert mode(out) == 0o644
    assert no_temp_files(tmp_path / "out")


@needs_root
def test_numeric_ids_as_hcl_numbers_strings_and_json(consul, tmp_path):
    addr, _ = consul
    r = ct(addr, tmp_path, '''
template {
  contents    = "a"
  destination = "a.txt"
  user        = 4321
  group       = "4322"
}
''')
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "a.txt").read_bytes() == b"a" and owner(tmp_path / "a.txt") == (4321, 4322)
    conf = {"template": [{"contents": "b", "destination": "b.txt", "user": "4323", "group": 4324}]}
    r = ct(addr, tmp_path, json.dumps(conf), name="ct.json")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "b.txt").read_bytes() == b"b" and owner(tmp_path / "b.txt") == (4323, 4324)


@needs_root
def test_legacy_uid_gid_and_user_group_win_over_them(consul, tmp_path):
    addr, _ = consul
    user, uid, group, gid = _nobody()
    r = ct(addr, tmp_path, f'''
template {{
  contents    = "legacy"
  destination = "legacy.txt"
  uid         = 1234
  gid         = 1235
}}
template {{
  contents    = "both"
  destination = "both.txt"
  uid         = 1234
  gid         = 1235
  user        = "{user}"
  group       = "{group}"
}}
''')
    assert r.returncode == 0, r.stderr
    assert owner(tmp_path / "legacy.txt") == (1234, 1235)
    assert owner(tmp_path / "both.txt") == (uid, gid)


@needs_root
def test_user_alone_keeps_the_existing_group_or_takes_the_process_group(consul, tmp_path):
    addr, _ = consul
    existing = tmp_path / "existing.txt"
    existing.write_text("old")
    os.chown(existing, 1, 888)
    r = ct(addr, tmp_path, '''
template {
  contents    = "new"
  destination = "existing.txt"
  user        = 4321
}
template {
  contents    = "fresh"
  destination = "fresh.txt"
  group       = 4322
}
''')
    assert r.returncode == 0, r.stderr
    assert existing.read_bytes() == b"new" and owner(existing) == (4321, 888)
    assert (tmp_path / "fresh.txt").read_bytes() == b"fresh"
    assert owner(tmp_path / "fresh.txt") == (os.geteuid(), 4322)


@needs_root
def test_without_user_group_the_existing_owner_and_mode_are_kept(consul, tmp_path):
    addr, _ = consul
    dest = tmp_path / "keep.txt"
    dest.write_text("old")
    os.chown(dest, 4321, 4322)
    os.chmod(dest, 0o640)
    old_inode = os.stat(dest).st_ino
    r = ct(addr, tmp_path, 'template {\n  contents = "{{ key \\"opt/port\\" }}"\n  destination = "keep.txt"\n}\n')
    assert r.returncode == 0, r.stderr
    assert dest.read_bytes() == b"8080"
    assert os.stat(dest).st_ino != old_inode  # replaced (atomically), not edited in place
    assert owner(dest) == (4321, 4322) and mode(dest) == 0o640


@needs_root
def test_same_bytes_wrong_owner_is_fixed_and_runs_the_command(consul, tmp_path):
    addr, _ = consul
    user, uid, group, gid = _nobody()
    config = f'''
template {{
  contents    = "port={{{{ key \\"opt/port\\" }}}}"
  destination = "own.txt"
  user        = "{user}"
  group       = "{group}"
  command     = "touch ran"
}}
'''
    dest, ran = tmp_path / "own.txt", tmp_path / "ran"
    r = ct(addr, tmp_path, config)
    assert r.returncode == 0, r.stderr
    assert owner(dest) == (uid, gid) and ran.exists()
    ran.unlink()
    os.chown(dest, 0, 0)  # someone changed the owner; the bytes are still right
    r = ct(addr, tmp_path, config)
    assert r.returncode == 0, r.stderr
    assert dest.read_bytes() == b"port=8080" and owner(dest) == (uid, gid) and ran.exists()
    ran.unlink()
    inode = os.stat(dest).st_ino
    r = ct(addr, tmp_path, config)  # nothing to do now: no write, no command
    assert r.returncode == 0, r.stderr
    assert os.stat(dest).st_ino == inode and not ran.exists()


@needs_root
def test_setuid_perms_survive_the_chown(consul, tmp_path):
    addr, _ = consul
    r = ct(addr, tmp_path, 'template {\n  contents = "#!/bin/sh\\n"\n  destination = "tool"\n'
                           '  perms = 04750\n  user = 4321\n  group = 4322\n}\n')
    assert r.returncode == 0, r.stderr
    assert owner(tmp_path / "tool") == (4321, 4322) and mode(tmp_path / "tool") == 0o4750


@pytest.mark.parametrize("field, value, message", [
    ("user", "no-such-user-xyz", "unknown user 'no-such-user-xyz'"),
    ("group", "no-such-group-xyz", "unknown group 'no-such-group-xyz'"),
    ("user", "-5", "invalid user id -5"),
])
def test_unknown_user_or_group_is_a_config_error_at_start(consul, tmp_path, field, value, message):
    addr, _ = consul
    r = ct(addr, tmp_path, f'template {{\n  contents = "x"\n  destination = "out.txt"\n  {field} = "{value}"\n}}\n')
    assert r.returncode == 15, (r.returncode, r.stderr)
    assert message in r.stderr and f"{field}:" in r.stderr and "out.txt" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out.txt").exists()


def test_dry_run_with_user_writes_and_chowns_nothing(consul, tmp_path):
    addr, _ = consul
    user, *_ = _nobody()
    r = ct(addr, tmp_path, f'template {{\n  contents = "{{{{ key \\"opt/name\\" }}}}"\n  destination = "d.txt"\n'
                           f'  user = "{user}"\n}}\n', "-dry")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "> d.txt\nshop" and not (tmp_path / "d.txt").exists()


# -- perms, backup, create_dest_dirs -------------------------------------------------------------


def test_perms_default_explicit_preserved_and_fixed(consul, tmp_path):
    addr, _ = consul
    (tmp_path / "kept.txt").write_text("old")
    os.chmod(tmp_path / "kept.txt", 0o600)
    (tmp_path / "same.txt").write_text("same")
    os.chmod(tmp_path / "same.txt", 0o666)
    r = ct(addr, tmp_path, '''
template {
  contents    = "new"
  destination = "new.txt"
}
template {
  contents    = "kept"
  destination = "kept.txt"
}
template {
  contents    = "explicit"
  destination = "explicit.txt"
  perms       = 0640
}
template {
  contents    = "same"
  destination = "same.txt"
  perms       = 0604
}
''')
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "new.txt").read_bytes() == b"new" and mode(tmp_path / "new.txt") == 0o644
    assert (tmp_path / "kept.txt").read_bytes() == b"kept" and mode(tmp_path / "kept.txt") == 0o600
    assert (tmp_path / "explicit.txt").read_bytes() == b"explicit" and mode(tmp_path / "explicit.txt") == 0o640
    assert (tmp_path / "same.txt").read_bytes() == b"same" and mode(tmp_path / "same.txt") == 0o604
    conf = {"template": [{"contents": "j", "destination": "json.txt", "perms": "0600"}]}
    r = ct(addr, tmp_path, json.dumps(conf), name="ct.json")
    assert r.returncode == 0, r.stderr
    assert mode(tmp_path / "json.txt") == 0o600


def test_invalid_perms_is_a_config_error(consul, tmp_path):
    addr, _ = consul
    r = ct(addr, tmp_path, 'template {\n  contents = "x"\n  destination = "out.txt"\n  perms = "0999"\n}\n')
    assert r.returncode == 15 and "perms" in r.stderr and not (tmp_path / "out.txt").exists()


def test_backup_keeps_exactly_one_previous_file(consul, tmp_path):
    addr, c = consul
    c.kv.put("opt/bak", "v1")
    dest, bak = tmp_path / "b.conf", tmp_path / "b.conf.bak"
    dest.write_text("hand-written")
    os.chmod(dest, 0o600)
    config = 'template {\n  contents = "{{ key \\"opt/bak\\" }}"\n  destination = "b.conf"\n  backup = true\n}\n'
    r = ct(addr, tmp_path, config)
    assert r.returncode == 0, r.stderr
    assert dest.read_bytes() == b"v1" and bak.read_bytes() == b"hand-written" and mode(bak) == 0o600
    c.kv.put("opt/bak", "v2")
    r = ct(addr, tmp_path, config)
    assert r.returncode == 0, r.stderr
    assert dest.read_bytes() == b"v2" and bak.read_bytes() == b"v1"
    assert sorted(p.name for p in tmp_path.iterdir() if "b.conf" in p.name) == ["b.conf", "b.conf.bak"]
    r = ct(addr, tmp_path, config.replace("backup = true", "backup = false").replace("b.conf", "n.conf"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "n.conf").exists() and not (tmp_path / "n.conf.bak").exists()


def test_create_dest_dirs(consul, tmp_path):
    addr, _ = consul
    r = ct(addr, tmp_path, 'template {\n  contents = "deep"\n  destination = "x/y/z/out.txt"\n}\n')
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "x/y/z/out.txt").read_bytes() == b"deep"
    assert mode(tmp_path / "x/y/z") == 0o755
    r = ct(addr, tmp_path, 'template {\n  contents = "deep"\n  destination = "p/q/out.txt"\n'
                           '  create_dest_dirs = false\n}\n')
    assert r.returncode == 14 and "parent directory is missing" in r.stderr
    assert not (tmp_path / "p").exists()


# -- what the template sees: delimiters, missing keys, sandbox, denied functions ---------------------


def test_left_and_right_delimiters(consul, tmp_path):
    addr, _ = consul
    (tmp_path / "in.tpl").write_text('{{ literal }} [[ key "opt/name" ]] <% key "opt/port" %>\n')
    r = ct(addr, tmp_path, '''
default_delimiters {
  left  = "<%"
  right = "%>"
}
template {
  source          = "in.tpl"
  destination     = "custom.txt"
  left_delimiter  = "[["
  right_delimiter = "]]"
}
template {
  contents    = "{{ x }} <% key \\"opt/port\\" %>"
  destination = "default.txt"
}
''')
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "custom.txt").read_bytes() == b'{{ literal }} shop <% key "opt/port" %>\n'
    assert (tmp_path / "default.txt").read_bytes() == b"{{ x }} 8080"


def test_error_on_missing_key(consul, tmp_path):
    addr, _ = consul
    (tmp_path / "in.ctmpl").write_text('v={{ (parseJSON "{\\"a\\":1}").b }}')
    r = ct(addr, tmp_path, 'template {\n  source = "in.ctmpl"\n  destination = "lax.txt"\n}\n')
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "lax.txt").read_bytes() == b"v=<no value>"
    r = ct(addr, tmp_path, 'template {\n  source = "in.ctmpl"\n  destination = "strict.txt"\n'
                           '  error_on_missing_key = true\n}\n')
    assert r.returncode == 14 and 'map has no entry for key "b"' in r.stderr
    assert not (tmp_path / "strict.txt").exists()


def test_sandbox_path(consul, tmp_path):
    addr, _ = consul
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    (sandbox / "ok.txt").write_text("inside")
    (tmp_path / "secret.txt").write_text("outside")
    (sandbox / "link.txt").symlink_to(tmp_path / "secret.txt")

    def config(path: object) -> str:
        return (f'template {{\n  contents = "{{{{ file \\"{path}\\" }}}}"\n  destination = "out.txt"\n'
                f'  sandbox_path = "{sandbox}"\n}}\n')

    r = ct(addr, tmp_path, config(sandbox / "ok.txt"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.txt").read_bytes() == b"inside"
    for path in (tmp_path / "secret.txt", f"{sandbox}/../secret.txt", sandbox / "link.txt"):
        r = ct(addr, tmp_path, config(path))
        assert r.returncode == 14 and "outside of allowed sandbox" in r.stderr, (path, r.stderr)
        assert (tmp_path / "out.txt").read_bytes() == b"inside"


@pytest.mark.parametrize("contents", ['{{ env \\"HOME\\" }}', '{{ file \\"/etc/hostname\\" }}',
                                      '{{ keyOrDefault \\"opt/none\\" \\"d\\" }}'])
def test_function_denylist_and_blacklist_are_combined_globs(consul, tmp_path, contents):
    addr, _ = consul
    r = ct(addr, tmp_path, f'''
template {{
  contents           = "{{{{ key \\"opt/name\\" }}}} {contents}"
  destination        = "out.txt"
  function_denylist  = ["env", "keyOr*"]
  function_blacklist = ["file"]
}}
''')
    assert r.returncode == 14 and "function is disabled" in r.stderr, r.stderr
    assert not (tmp_path / "out.txt").exists()
    r = ct(addr, tmp_path, f'template {{\n  contents = "{{{{ key \\"opt/name\\" }}}} {contents}"\n'
                           '  destination = "out.txt"\n  function_denylist = ["plugin"]\n}\n')
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.txt").read_bytes().startswith(b"shop ")


def test_contents_or_source_exactly_one(consul, tmp_path):
    addr, _ = consul
    (tmp_path / "in.ctmpl").write_text('{{ key "opt/name" }}\n')
    r = ct(addr, tmp_path, 'template {\n  source = "in.ctmpl"\n  contents = "x"\n  destination = "o.txt"\n}\n')
    assert r.returncode == 15 and "both source and contents" in r.stderr
    r = ct(addr, tmp_path, 'template {\n  destination = "o.txt"\n}\n')
    assert r.returncode == 15 and "exactly one of source or contents" in r.stderr
    assert not (tmp_path / "o.txt").exists()
    r = ct(addr, tmp_path, 'template {\n  source = "in.ctmpl"\n  destination = "s.txt"\n}\n'
                           'template {\n  contents = <<EOT\n{{ key "opt/name" }}\nEOT\n  destination = "c.txt"\n}\n')
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "s.txt").read_bytes() == (tmp_path / "c.txt").read_bytes() == b"shop\n"


def test_template_error_fatal_wins_over_the_global_default(consul, tmp_path):
    addr, _ = consul
    r = ct(addr, tmp_path, 'template_error_fatal = false\ntemplate {\n  contents = "{{ parseJSON \\"nope\\" }}"\n'
                           '  destination = "o.txt"\n  error_fatal = true\n}\n')
    assert r.returncode == 14 and "error calling parseJSON" in r.stderr, r.stderr
    assert not (tmp_path / "o.txt").exists()


# -- commands: command / command_timeout / exec { } ------------------------------------------------


def test_command_timeout_and_exec_timeout(consul, tmp_path):
    addr, _ = consul
    t0 = time.monotonic()
    r = ct(addr, tmp_path, 'template {\n  contents = "x"\n  destination = "o.txt"\n  command = "sleep 300"\n'
                           '  command_timeout = "300ms"\n}\n')
    assert r.returncode == 14 and "did not finish within 0.3s" in r.stderr, r.stderr
    assert time.monotonic() - t0 < 60  # not the command's 300 s
    assert (tmp_path / "o.txt").read_bytes() == b"x"
    t0 = time.monotonic()
    r = ct(addr, tmp_path, 'template {\n  contents = "y"\n  destination = "o.txt"\n  command_timeout = "60s"\n'
                           '  exec {\n    command = ["sleep", "300"]\n    timeout = "200ms"\n  }\n}\n')
    assert r.returncode == 14 and "did not finish within 0.2s" in r.stderr, r.stderr
    assert time.monotonic() - t0 < 60  # neither the command's 300 s nor command_timeout's 60 s


def test_exec_command_wins_over_legacy_command(consul, tmp_path):
    addr, _ = consul
    r = ct(addr, tmp_path, 'template {\n  contents = "x"\n  destination = "o.txt"\n  command = "touch legacy"\n'
                           '  exec {\n    command = "touch new"\n  }\n}\n')
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "new").exists() and not (tmp_path / "legacy").exists()


def test_template_exec_env(consul, tmp_path):
    addr, _ = consul
    show = 'echo \\"A=$A FOO_KEEP=$FOO_KEEP FOO_DROP=$FOO_DROP BAR=$BAR HOME=$HOME ADDR=$CONSUL_HTTP_ADDR\\" > {out}'
    (tmp_path / "ct.hcl").write_text(f'''
template {{
  contents    = "1"
  destination = "one.txt"
  exec {{
    command = "{show.format(out='pristine.txt')}"
    env {{
      pristine = true
      custom   = ["A=1"]
    }}
  }}
}}
template {{
  contents    = "2"
  destination = "two.txt"
  exec {{
    command = "{show.format(out='filtered.txt')}"
    env {{
      allowlist = ["FOO_*"]
      whitelist = ["HOME"]
      blacklist = ["*_DROP"]
    }}
  }}
}}
template {{
  contents    = "3"
  destination = "three.txt"
  command     = "{show.format(out='plain.txt')}"
}}
''')
    r = run(addr, "-config", "ct.hcl", "-once", cwd=tmp_path, FOO_KEEP="k", FOO_DROP="d", BAR="b")
    assert r.returncode == 0, r.stderr
    home = os.environ.get("HOME", "")
    assert read(tmp_path / "pristine.txt") == f"A=1 FOO_KEEP= FOO_DROP= BAR= HOME= ADDR={addr}\n"
    assert read(tmp_path / "filtered.txt") == f"A= FOO_KEEP=k FOO_DROP= BAR= HOME={home} ADDR={addr}\n"
    assert read(tmp_path / "plain.txt") == f"A= FOO_KEEP=k FOO_DROP=d BAR=b HOME={home} ADDR={addr}\n"


def test_top_level_exec_enabled_false_runs_no_child(consul, tmp_path):
    addr, _ = consul
    r = ct(addr, tmp_path, 'exec {\n  enabled = false\n  command = "touch child-ran"\n}\n'
                           'template {\n  contents = "x"\n  destination = "o.txt"\n}\n')
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o.txt").read_bytes() == b"x" and not (tmp_path / "child-ran").exists()


# -- per-template wait ---------------------------------------------------------------------------


def test_template_wait_overrides_the_global_wait(consul, tmp_path):
    addr, c = consul
    c.kv.put("opt/wait", "1")
    (tmp_path / "ct.hcl").write_text('''
wait {
  min = "2s"
  max = "4s"
}
template {
  contents    = "{{ key \\"opt/wait\\" }}"
  destination = "fast.txt"
  wait        = "100ms:200ms"
}
template {
  contents    = "{{ key \\"opt/wait\\" }}"
  destination = "slow.txt"
}
template {
  contents    = "{{ key \\"opt/wait\\" }}"
  destination = "off.txt"
  wait {
    enabled = false
  }
}
''')
    p = Proc(addr, "-config", "ct.hcl", cwd=tmp_path)
    try:
        wait_until(lambda: {read(tmp_path / f"{n}.txt") for n in ("fast", "slow", "off")} == {"1"},
                   what="first render (never delayed)", proc=p)
        t0 = time.monotonic()
        c.kv.put("opt/wait", "2")
        wait_until(file_is(tmp_path / "fast.txt", "2"), what="the template's own short wait", proc=p)
        # the global 2s wait still holds back the others (a disabled template wait falls back to it)
        assert read(tmp_path / "slow.txt") == read(tmp_path / "off.txt") == "1"
        wait_until(lambda: read(tmp_path / "slow.txt") == read(tmp_path / "off.txt") == "2",
                   what="the global wait", proc=p)
        assert time.monotonic() - t0 >= 1.8
    finally:
        p.stop()


# -- options meshctl does not honour: said out loud ------------------------------------------------


def test_unsupported_options_warn_by_name_and_rendering_goes_on(consul, tmp_path):
    addr, _ = consul
    r = ct(addr, tmp_path, '''
vault {
  address = "https://vault:8200"
}
nomad {
  address = "http://nomad:4646"
}
syslog {
  enabled = true
}
log_file {
  path = "/tmp/ct.log"
}
consul {
  namespace = "team-a"
  transport {
    dial_timeout = "5s"
  }
}
template {
  contents    = "{{ key \\"opt/name\\" }}"
  destination = "o.txt"
}
''')
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o.txt").read_bytes() == b"shop"
    for option in ("vault:", "nomad:", "syslog:", "log_file:", "consul.namespace:",
                   "consul.transport:"):
        assert option in r.stderr, (option, r.stderr)
    r = ct(addr, tmp_path, 'deduplicate {\n  enabled = false\n}\nsyslog {\n  enabled = false\n}\n'
                           'template {\n  contents = "x"\n  destination = "o2.txt"\n}\n')
    assert r.returncode == 0 and "deduplicate" not in r.stderr and "syslog" not in r.stderr, r.stderr


def test_deprecated_consul_string_is_the_address(consul, tmp_path):
    addr, _ = consul
    (tmp_path / "ct.hcl").write_text(f'consul = "{addr}"\n'
                                     'template {\n  contents = "{{ key \\"opt/port\\" }}"\n  destination = "o.txt"\n}\n')
    r = run("127.0.0.1:1", "-config", "ct.hcl", "-once", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "o.txt").read_bytes() == b"8080"


def test_dedup_stanza_rejects_unknown_fields_by_name(consul, tmp_path):
    addr, _ = consul
    r = ct(addr, tmp_path, 'deduplicate {\n  prefx = "x/"\n}\ntemplate {\n  contents = "x"\n  destination = "o.txt"\n}\n')
    assert r.returncode == 15 and "deduplicate: unknown field(s) prefx" in r.stderr, r.stderr


@pytest.mark.parametrize("config, name", [
    ('colour = "red"\n', "colour"),
    ('exec {\n  comand = "x"\n}\n', "comand"),
    ('wait {\n  minimum = "1s"\n}\n', "minimum"),
    ('exec {\n  command = "x"\n  env {\n    allow = ["A"]\n  }\n}\n', "allow"),
])
def test_unknown_options_are_config_errors_naming_them(consul, tmp_path, config, name):
    addr, _ = consul
    r = ct(addr, tmp_path, config + 'template {\n  contents = "x"\n  destination = "o.txt"\n}\n')
    assert r.returncode == 15 and "unknown field" in r.stderr and name in r.stderr, r.stderr
    assert not (tmp_path / "o.txt").exists()


def test_unknown_template_exec_field_is_a_config_error(consul, tmp_path):
    addr, _ = consul
    r = ct(addr, tmp_path, 'template {\n  contents = "x"\n  destination = "o.txt"\n'
                           '  exec {\n    command = "true"\n    timout = "1s"\n  }\n}\n')
    assert r.returncode == 15 and "timout" in r.stderr and "o.txt" in r.stderr
