"""Configuration: arguments first, then Consul's environment variables, then defaults."""

from __future__ import annotations

import pytest

from meshctl.client import Client, ConfigError, resolve_config


def test_default_address_is_local_agent():
    cfg = resolve_config(environ={})
    assert (cfg.address, cfg.scheme, cfg.token, cfg.verify) == ("127.0.0.1:8500", "http", None, True)
    assert cfg.base_url == "http://127.0.0.1:8500"


def test_env_addr_with_https_scheme_sets_scheme():
    cfg = resolve_config(environ={"CONSUL_HTTP_ADDR": "https://consul.example:8501"})
    assert (cfg.address, cfg.scheme) == ("consul.example:8501", "https")


def test_env_addr_with_http_scheme_is_trimmed():
    cfg = resolve_config(environ={"CONSUL_HTTP_ADDR": "http://10.0.0.1:8500/"})
    assert cfg.base_url == "http://10.0.0.1:8500"


def test_unix_addr_keeps_socket_path():
    cfg = resolve_config(environ={"CONSUL_HTTP_ADDR": "unix:///var/run/consul.sock"})
    assert (cfg.scheme, cfg.address) == ("unix", "/var/run/consul.sock")


def test_consul_http_ssl_switches_bare_address_to_https():
    cfg = resolve_config(environ={"CONSUL_HTTP_ADDR": "h:8501", "CONSUL_HTTP_SSL": "true"})
    assert cfg.base_url == "https://h:8501"


def test_scheme_in_address_beats_consul_http_ssl():
    cfg = resolve_config(environ={"CONSUL_HTTP_ADDR": "http://h:1", "CONSUL_HTTP_SSL": "1"})
    assert cfg.scheme == "http"


def test_bad_boolean_in_env_is_a_config_error():
    with pytest.raises(ConfigError, match="CONSUL_HTTP_SSL"):
        resolve_config(environ={"CONSUL_HTTP_SSL": "maybe"})


def test_argument_address_beats_env():
    cfg = resolve_config("127.0.0.1:9", environ={"CONSUL_HTTP_ADDR": "127.0.0.1:8"})
    assert cfg.address == "127.0.0.1:9"


def test_token_from_env():
    assert resolve_config(environ={"CONSUL_HTTP_TOKEN": "t1"}).token == "t1"


def test_token_file_from_env_beats_token_from_env(tmp_path):
    f = tmp_path / "tok"
    f.write_text("  from-file\n")
    env = {"CONSUL_HTTP_TOKEN": "t1", "CONSUL_HTTP_TOKEN_FILE": str(f)}
    assert resolve_config(environ=env).token == "from-file"


def test_token_argument_beats_env_token_file(tmp_path):
    f = tmp_path / "tok"
    f.write_text("from-file")
    assert resolve_config(token="arg", environ={"CONSUL_HTTP_TOKEN_FILE": str(f)}).token == "arg"


def test_token_file_argument_beats_env_token(tmp_path):
    f = tmp_path / "tok"
    f.write_text("from-file")
    assert resolve_config(token_file=str(f), environ={"CONSUL_HTTP_TOKEN": "env"}).token == "from-file"


def test_missing_token_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="token file"):
        resolve_config(token_file=str(tmp_path / "nope"), environ={})


def test_ssl_verify_false_disables_verification():
    env = {"CONSUL_HTTP_SSL_VERIFY": "false", "CONSUL_CACERT": "/ca.pem"}
    assert resolve_config(environ=env).verify is False


def test_cacert_and_capath_become_verify_path():
    assert resolve_config(environ={"CONSUL_CACERT": "/ca.pem"}).verify == "/ca.pem"
    assert resolve_config(environ={"CONSUL_CAPATH": "/cadir"}).verify == "/cadir"
    assert resolve_config(ca_file="/arg.pem", environ={"CONSUL_CACERT": "/ca.pem"}).verify == "/arg.pem"


def test_client_cert_and_key_from_env():
    env = {"CONSUL_CLIENT_CERT": "/c.pem", "CONSUL_CLIENT_KEY": "/k.pem"}
    assert resolve_config(environ=env).cert == ("/c.pem", "/k.pem")


def test_client_key_without_cert_is_an_error():
    with pytest.raises(ConfigError):
        resolve_config(environ={"CONSUL_CLIENT_KEY": "/k.pem"})


def test_tls_server_name_and_basic_auth_from_env():
    cfg = resolve_config(environ={"CONSUL_TLS_SERVER_NAME": "server.dc1.consul", "CONSUL_HTTP_AUTH": "u:p:w"})
    assert cfg.tls_server_name == "server.dc1.consul"
    assert cfg.auth == ("u", "p:w")


def test_auth_user_only():
    assert resolve_config(environ={"CONSUL_HTTP_AUTH": "admin"}).auth == ("admin", "")


def test_empty_env_values_are_ignored():
    cfg = resolve_config(environ={"CONSUL_HTTP_ADDR": "", "CONSUL_HTTP_TOKEN": ""})
    assert (cfg.address, cfg.token) == ("127.0.0.1:8500", None)


def test_unknown_scheme_is_rejected():
    with pytest.raises(ConfigError):
        resolve_config("127.0.0.1:1", scheme="ftp", environ={})


def test_repr_never_shows_the_token():
    cfg = resolve_config(token="super-secret", environ={})
    assert "super-secret" not in repr(cfg)


def test_client_reads_process_environment(monkeypatch):
    monkeypatch.setenv("CONSUL_HTTP_ADDR", "https://127.0.0.1:8501")
    monkeypatch.setenv("CONSUL_HTTP_TOKEN", "envtok")
    c = Client()
    assert c.config.base_url == "https://127.0.0.1:8501"
    assert c.http.headers["X-Consul-Token"] == "envtok"


def test_client_datacenter_argument():
    assert Client("127.0.0.1:1", dc="dc2").config.datacenter == "dc2"
