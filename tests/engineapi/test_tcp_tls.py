"""The Engine API on TCP: only with TLS and a client certificate signed by the given CA, never plain
unless --api-insecure is spelled out."""

from __future__ import annotations

import datetime
import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.integration.conftest import free_port

from .conftest import docker_cli_path

pytestmark = pytest.mark.docker


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _certificate(subject: str, key, issuer_name: str, issuer_key, *, ca: bool = False, server: bool = False) -> bytes:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        import ipaddress

        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                        critical=False)
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _make_certs(directory: Path) -> None:
    ca_key, server_key, client_key, rogue_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(4))
    (directory / "ca.pem").write_bytes(_certificate("eapi-ca", ca_key, "eapi-ca", ca_key, ca=True))
    (directory / "server-cert.pem").write_bytes(_certificate("swarmpyd", server_key, "eapi-ca", ca_key, server=True))
    (directory / "server-key.pem").write_bytes(_pem_key(server_key))
    (directory / "cert.pem").write_bytes(_certificate("client", client_key, "eapi-ca", ca_key))
    (directory / "key.pem").write_bytes(_pem_key(client_key))
    (directory / "rogue-cert.pem").write_bytes(_certificate("rogue", rogue_key, "rogue", rogue_key))
    (directory / "rogue-key.pem").write_bytes(_pem_key(rogue_key))


def _daemon(tmp_path: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", "from swarmpy.daemon import main; main()", "--data-dir", str(tmp_path / "data"),
         "--socket", str(tmp_path / "swarmpy.sock"), "--hostname", "eapi-tls", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def test_tcp_needs_client_certificates_or_an_explicit_insecure(tmp_path, busybox_image):
    refused = _daemon(tmp_path, "--api-listen", "127.0.0.1:1")
    output, _ = refused.communicate(timeout=30)
    assert refused.returncode == 1
    assert "--api-listen needs --api-tls-cert, --api-tls-key, --api-tls-ca (client certificates), or --api-insecure" in output

    certs = tmp_path / "certs"
    certs.mkdir()
    _make_certs(certs)
    port = free_port()
    daemon = _daemon(tmp_path, "--api-socket", "", "--api-listen", f"127.0.0.1:{port}",
                     "--api-tls-cert", str(certs / "server-cert.pem"), "--api-tls-key", str(certs / "server-key.pem"),
                     "--api-tls-ca", str(certs / "ca.pem"))
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert daemon.poll() is None and time.monotonic() < deadline, "swarmpyd did not listen on TCP"
                time.sleep(0.2)
        env = dict(os.environ, DOCKER_HOST=f"tcp://127.0.0.1:{port}", DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(certs))
        version = subprocess.run([docker_cli_path(), "version"], env=env, capture_output=True, text=True, timeout=60)
        assert version.returncode == 0 and "swarmpyd" in version.stdout, version

        def handshake(cert: str | None, key: str | None) -> bool:
            context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
            if cert:
                context.load_cert_chain(str(certs / cert), str(certs / key))
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                try:
                    with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                        tls.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
                        return tls.recv(100).startswith(b"HTTP/1.")
                except (ssl.SSLError, ConnectionError):
                    return False

        assert handshake("cert.pem", "key.pem")
        assert not handshake(None, None)  # no client certificate
        assert not handshake("rogue-cert.pem", "rogue-key.pem")  # signed by another CA
        with socket.create_connection(("127.0.0.1", port), timeout=5) as plain:
            plain.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            assert not plain.recv(100).startswith(b"HTTP/1.0 200")
    finally:
        daemon.terminate()
        daemon.wait(15)
