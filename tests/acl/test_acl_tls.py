"""The HTTPS port with a CA made here (cryptography): client library, tools, client certificates,
a wrong CA refused; with ACLs on, the tools pass their token through."""

from __future__ import annotations

import datetime
import ipaddress
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from devserver import free_port, start_dev_server

from meshctl.client import Client, PermissionDenied, Unreachable

pytestmark = pytest.mark.integration

ROOT = "root-" + uuid.uuid4().hex
REPO = Path(__file__).resolve().parents[2]


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


def make_ca(directory: Path, name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    path = directory / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key, path


def issue(directory: Path, name: str, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
          server: bool) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                     else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost"),
            x509.DNSName("server.dc1.consul")]), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    crt, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key_path, key)
    return crt, key_path


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")
    ca, ca_key, ca_path = make_ca(d, "test-ca")
    _, _, other_ca = make_ca(d, "other-ca")
    server_crt, server_key = issue(d, "server", ca, ca_key, server=True)
    client_crt, client_key = issue(d, "client", ca, ca_key, server=False)
    return {"ca": ca_path, "other_ca": other_ca, "server_crt": server_crt, "server_key": server_key,
            "client_crt": client_crt, "client_key": client_key}


@pytest.fixture(scope="module")
def server(tmp_path_factory, pki):
    https = free_port()
    srv = start_dev_server(tmp_path_factory.mktemp("tls"), "-https-port", str(https),
                           "-tls-cert-file", str(pki["server_crt"]), "-tls-key-file", str(pki["server_key"]),
                           "-tls-ca-file", str(pki["ca"]), "-tls-verify-incoming",
                           "-acl-enabled", "-acl-default-policy", "deny", "-acl-initial-management", ROOT)
    srv.https_port = https
    yield srv
    srv.stop()


def tls_client(server, pki, **kw) -> Client:
    args = {"token": ROOT, "verify": str(pki["ca"]), "cert": (str(pki["client_crt"]), str(pki["client_key"])),
            "timeout": 10}
    args.update(kw)
    return Client(f"https://127.0.0.1:{server.https_port}", **args)


def test_client_library_speaks_tls_with_a_client_certificate(server, pki) -> None:
    with tls_client(server, pki) as c:
        assert c.kv.put("tls/k", b"secure") is True
        assert c.kv.get("tls/k").value.value == b"secure"


def test_a_wrong_ca_is_refused(server, pki) -> None:
    with tls_client(server, pki, verify=str(pki["other_ca"])) as c, pytest.raises(Unreachable) as info:
        c.kv.get("tls/k")
    assert "certificate" in str(info.value).lower() or "ssl" in str(info.value).lower()


def test_verify_incoming_refuses_clients_without_a_certificate(server, pki) -> None:
    with tls_client(server, pki, cert=None) as c, pytest.raises(Unreachable):
        c.kv.get("tls/k")


def test_tls_and_acls_together(server, pki) -> None:
    with tls_client(server, pki, token="") as c, pytest.raises(PermissionDenied):
        c.kv.get("tls/k")


def _env(server, pki, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSUL_")}
    env.update({"CONSUL_HTTP_ADDR": f"127.0.0.1:{server.https_port}", "CONSUL_HTTP_SSL": "true",
                "CONSUL_CACERT": str(pki["ca"]), "CONSUL_CLIENT_CERT": str(pki["client_crt"]),
                "CONSUL_CLIENT_KEY": str(pki["client_key"]), "PYTHONPATH": str(REPO)}, **extra)
    return env


def meshctl(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "meshctl", *args], capture_output=True, text=True, env=env,
                          timeout=60, cwd=str(REPO))


def test_cli_uses_consul_tls_environment_and_token(server, pki) -> None:
    ok = meshctl(["acl", "token", "read", "-self"], _env(server, pki, CONSUL_HTTP_TOKEN=ROOT))
    assert ok.returncode == 0, ok.stderr
    assert "global-management" in ok.stdout
    anonymous = meshctl(["acl", "token", "read", "-self"], _env(server, pki))
    assert anonymous.returncode == 0 and "Anonymous Token" in anonymous.stdout
    denied = meshctl(["acl", "token", "list"], _env(server, pki))
    assert denied.returncode == 1 and "403" in denied.stderr
    wrong_ca = meshctl(["acl", "token", "read", "-self", "-token", ROOT],
                       _env(server, pki, CONSUL_CACERT=str(pki["other_ca"])))
    assert wrong_ca.returncode == 1


def test_cli_token_file(server, pki, tmp_path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(ROOT + "\n")
    r = meshctl(["acl", "token", "read", "-self", "-token-file", str(token_file)], _env(server, pki))
    assert r.returncode == 0, r.stderr
    r = meshctl(["acl", "token", "read", "-self"], _env(server, pki, CONSUL_HTTP_TOKEN_FILE=str(token_file)))
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("ca_flag", ["-consul-ssl-ca-cert", "-consul-ssl-ca-path"])
def test_template_tool_passes_token_and_speaks_tls(server, pki, tmp_path, ca_flag) -> None:
    with tls_client(server, pki) as c:
        c.kv.put("tls/tmpl", b"from-consul")
    ca = str(pki["ca"])
    if ca_flag == "-consul-ssl-ca-path":  # a directory as OpenSSL reads one: <subject hash>.0
        ca_dir = tmp_path / "cas"
        ca_dir.mkdir()
        subject_hash = subprocess.run(["openssl", "x509", "-hash", "-noout", "-in", ca], capture_output=True,
                                      text=True, check=True).stdout.strip()
        (ca_dir / f"{subject_hash}.0").write_bytes(pki["ca"].read_bytes())
        ca = str(ca_dir)
    src, dst = tmp_path / "in.ctmpl", tmp_path / "out.txt"
    src.write_text('value={{ key "tls/tmpl" }}\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSUL_")}
    env["PYTHONPATH"] = str(REPO)
    r = subprocess.run([sys.executable, "-m", "meshctl", "template", "-once",
                        "-consul-addr", f"127.0.0.1:{server.https_port}", "-consul-ssl",
                        ca_flag, ca, "-consul-ssl-cert", str(pki["client_crt"]),
                        "-consul-ssl-key", str(pki["client_key"]), "-consul-token", ROOT,
                        "-template", f"{src}:{dst}"], capture_output=True, text=True, env=env, timeout=60,
                       cwd=str(REPO))
    assert r.returncode == 0, r.stderr
    assert dst.read_text() == "value=from-consul\n"
    assert ROOT not in r.stdout + r.stderr
