"""TLS options end to end against a local HTTPS server: CA file, verify off, server-name override, client cert."""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from meshctl.client import Client, Unreachable


def _openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for `server.dc1.consul` (not 127.0.0.1), and a client certificate."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=test-ca", cwd=d)
    for name, cn in (("server", "server.dc1.consul"), ("client", "client.dc1.consul")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={cn}", cwd=d)
        (d / f"{name}.ext").write_text(f"subjectAltName=DNS:{cn}\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    return d


@pytest.fixture
def https_server(pki):
    seen: dict[str, object] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            cert = self.connection.getpeercert()
            seen["client_cert"] = dict(x[0] for x in cert["subject"]) if cert else None
            body = json.dumps("10.0.0.1:8300").encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki / "server.pem", pki / "server.key")
    ctx.load_verify_locations(pki / "ca.pem")
    ctx.verify_mode = ssl.CERT_OPTIONAL
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True).start()
    httpd.seen = seen
    httpd.addr = f"127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_ca_file_with_server_name_override_verifies(https_server, pki, monkeypatch):
    monkeypatch.setenv("CONSUL_TLS_SERVER_NAME", "server.dc1.consul")
    c = Client(f"https://{https_server.addr}", verify=str(pki / "ca.pem"))
    assert c.status.leader() == "10.0.0.1:8300"


def test_hostname_mismatch_without_server_name_is_unreachable(https_server, pki):
    c = Client(f"https://{https_server.addr}", verify=str(pki / "ca.pem"))
    with pytest.raises(Unreachable) as info:
        c.status.leader()
    assert "certificate" in str(info.value).lower() and "Traceback" not in str(info.value)


def test_unknown_ca_is_unreachable(https_server, monkeypatch):
    monkeypatch.setenv("CONSUL_TLS_SERVER_NAME", "server.dc1.consul")
    with pytest.raises(Unreachable):
        Client(f"https://{https_server.addr}").status.leader()


def test_ssl_verify_false_skips_verification(https_server, monkeypatch):
    monkeypatch.setenv("CONSUL_HTTP_SSL_VERIFY", "false")
    monkeypatch.setenv("CONSUL_HTTP_SSL", "true")
    assert Client(https_server.addr).status.leader() == "10.0.0.1:8300"


def test_client_certificate_from_env_is_presented(https_server, pki, monkeypatch):
    monkeypatch.setenv("CONSUL_HTTP_ADDR", f"https://{https_server.addr}")
    monkeypatch.setenv("CONSUL_CACERT", str(pki / "ca.pem"))
    monkeypatch.setenv("CONSUL_TLS_SERVER_NAME", "server.dc1.consul")
    monkeypatch.setenv("CONSUL_CLIENT_CERT", str(pki / "client.pem"))
    monkeypatch.setenv("CONSUL_CLIENT_KEY", str(pki / "client.key"))
    Client().status.leader()
    assert https_server.seen["client_cert"] == {"commonName": "client.dc1.consul"}
