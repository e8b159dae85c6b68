"""env/mustEnv/envOrDefault, plugin, writeToFile and sockaddr."""

import ipaddress
import os
import stat

import pytest

from meshctl.template import funcs_system
from meshctl.template.funcs import make_helpers


@pytest.fixture
def h():
    return make_helpers({"CONSUL_HTTP_ADDR": "127.0.0.1:8500", "EMPTY_IN_OVERLAY": ""})


def script(tmp_path, body: str, name: str = "plug") -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


# --- env ------------------------------------------------------------------------------------


def test_env_reads_process_environment(h, monkeypatch):
    monkeypatch.setenv("CLUSTER_ID", "abc")
    assert h["env"]("CLUSTER_ID") == "abc"


def test_env_unset_is_empty_string(h, monkeypatch):
    monkeypatch.delenv("CLUSTER_ID", raising=False)
    assert h["env"]("CLUSTER_ID") == ""


def test_env_overlay_wins_over_process_environment(h, monkeypatch):
    monkeypatch.setenv("CONSUL_HTTP_ADDR", "10.0.0.1:8500")
    assert h["env"]("CONSUL_HTTP_ADDR") == "127.0.0.1:8500"


def test_must_env_returns_value(h, monkeypatch):
    monkeypatch.setenv("CLUSTER_ID", "abc")
    assert h["mustEnv"]("CLUSTER_ID") == "abc"


def test_must_env_unset_is_an_error(h, monkeypatch):
    monkeypatch.delenv("CLUSTER_ID", raising=False)
    with pytest.raises(ValueError, match="required environment variable CLUSTER_ID is empty"):
        h["mustEnv"]("CLUSTER_ID")


def test_must_env_empty_is_an_error(h, monkeypatch):
    monkeypatch.setenv("CLUSTER_ID", "")
    with pytest.raises(ValueError, match="is empty"):
        h["mustEnv"]("CLUSTER_ID")


def test_must_env_empty_overlay_falls_back_to_process_env(h, monkeypatch):
    monkeypatch.setenv("EMPTY_IN_OVERLAY", "from-process")
    assert h["mustEnv"]("EMPTY_IN_OVERLAY") == "from-process"


def test_env_or_default_unset_uses_default(h, monkeypatch):
    monkeypatch.delenv("CLUSTER_NAME", raising=False)
    assert h["envOrDefault"]("CLUSTER_NAME", "Default_Cluster") == "Default_Cluster"


def test_env_or_default_empty_value_is_returned(h, monkeypatch):
    monkeypatch.setenv("CLUSTER_NAME", "")
    assert h["envOrDefault"]("CLUSTER_NAME", "Default_Cluster") == ""


def test_env_or_default_overlay_counts_as_set(h):
    assert h["envOrDefault"]("EMPTY_IN_OVERLAY", "d") == ""


# --- plugin ---------------------------------------------------------------------------------


def test_plugin_returns_trimmed_stdout(h, tmp_path):
    exe = script(tmp_path, 'echo "  got: $1 $2  "')
    assert h["plugin"](exe, "a", "b") == "got: a b"


def test_plugin_piped_value_is_the_last_argument_trimmed(h, tmp_path):
    exe = script(tmp_path, 'printf "%s|" "$@"')
    assert h["plugin"](exe, "first", '\n{"k":"v"}\n') == 'first|{"k":"v"}|'


def test_plugin_drops_empty_arguments(h, tmp_path):
    exe = script(tmp_path, 'echo "$#"')
    assert h["plugin"](exe, "", "  ", "x") == "1"


def test_plugin_empty_name_is_empty_result(h):
    assert h["plugin"]("") == ""


def test_plugin_non_zero_exit_is_an_error_with_stderr(h, tmp_path):
    exe = script(tmp_path, "echo out; echo broken >&2; exit 3")
    with pytest.raises(RuntimeError, match="exit status 3") as err:
        h["plugin"](exe)
    assert "broken" in str(err.value) and "out" in str(err.value)


def test_plugin_missing_executable_is_an_error(h, tmp_path):
    with pytest.raises(RuntimeError, match="exec"):
        h["plugin"](str(tmp_path / "nope"))


def test_plugin_found_on_path(h, tmp_path, monkeypatch):
    script(tmp_path, "echo from-path", name="my-plugin")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    assert h["plugin"]("my-plugin") == "from-path"


def test_plugin_timeout_kills_and_errors(h, tmp_path, monkeypatch):
    monkeypatch.setattr(funcs_system, "PLUGIN_TIMEOUT", 0.3)
    exe = script(tmp_path, "exec sleep 10")
    with pytest.raises(TimeoutError, match="did not finish"):
        h["plugin"](exe)


# --- writeToFile ----------------------------------------------------------------------------


def test_write_to_file_writes_content_and_returns_empty(h, tmp_path):
    target = tmp_path / "out.txt"
    assert h["writeToFile"](str(target), "", "", "0644", "hello") == ""
    assert target.read_text() == "hello"


def test_write_to_file_sets_permissions(h, tmp_path):
    target = tmp_path / "key.pem"
    h["writeToFile"](str(target), "", "", "0600", "secret")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_write_to_file_overwrites_by_default(h, tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old content")
    h["writeToFile"](str(target), "", "", "0644", "new")
    assert target.read_text() == "new"


def test_write_to_file_append_and_newline_flags(h, tmp_path):
    target = tmp_path / "log.txt"
    h["writeToFile"](str(target), "", "", "0644", "append,newline", "one")
    h["writeToFile"](str(target), "", "", "0644", "append,newline", "two")
    h["writeToFile"](str(target), "", "", "0644", "append", "three")
    assert target.read_text() == "one\ntwo\nthree"


def test_write_to_file_creates_parent_directories(h, tmp_path):
    target = tmp_path / "a" / "b" / "out.txt"
    h["writeToFile"](str(target), "", "", "0644", "x")
    assert target.read_text() == "x"


def test_write_to_file_accepts_numeric_user_and_group(h, tmp_path):
    target = tmp_path / "out.txt"
    h["writeToFile"](str(target), str(os.getuid()), str(os.getgid()), "0644", "x")
    assert target.stat().st_uid == os.getuid()


def test_write_to_file_unknown_user_is_an_error(h, tmp_path):
    with pytest.raises(LookupError):
        h["writeToFile"](str(tmp_path / "o"), "no-such-user-xyz", "", "0644", "x")


def test_write_to_file_refuses_symlink_target(h, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep")
    link = tmp_path / "link"
    link.symlink_to(victim)
    with pytest.raises(PermissionError, match="symlink"):
        h["writeToFile"](str(link), "", "", "0644", "evil")
    assert victim.read_text() == "keep"


def test_write_to_file_refuses_symlinked_parent_directory(h, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "linkdir").symlink_to(real)
    with pytest.raises(PermissionError, match="parent directory"):
        h["writeToFile"](str(tmp_path / "linkdir" / "f"), "", "", "0644", "evil")
    assert not (real / "f").exists()


def test_write_to_file_bad_perms_is_an_error(h, tmp_path):
    with pytest.raises(ValueError, match="invalid syntax"):
        h["writeToFile"](str(tmp_path / "o"), "", "", "rw-r--r--", "x")


def test_write_to_file_missing_content_is_an_error(h, tmp_path):
    with pytest.raises(TypeError, match="wrong number of arguments"):
        h["writeToFile"](str(tmp_path / "o"), "", "", "0644")


# --- sockaddr -------------------------------------------------------------------------------


def test_sockaddr_interface_ips_of_loopback(h):
    assert "127.0.0.1" in h["sockaddr"]('GetInterfaceIPs "lo"').split()


def test_sockaddr_interface_ip_skips_non_forwardable_loopback(h):
    assert h["sockaddr"]('GetInterfaceIP "lo"') == ""


def test_sockaddr_private_ip_is_empty_or_private(h):
    ip = h["sockaddr"]("GetPrivateIP")
    assert ip == "" or ipaddress.ip_address(ip).is_private


def test_sockaddr_private_ips_never_include_loopback(h):
    assert "127.0.0.1" not in h["sockaddr"]("GetPrivateIPs").split()


def test_sockaddr_unsupported_template_is_an_error(h):
    with pytest.raises(ValueError, match="unsupported"):
        h["sockaddr"]("GetAllInterfaces | include")
