"""Root CA rotation on 3 managers and 2 workers (real swarmpyd processes) with a service running: every
node ends with a certificate of the new root and trusts only it, no task restarts, no session is lost,
the join tokens pin the new root, and a certificate of the old root is refused once it is over. Then a
rotation to a root brought with --ca-cert/--ca-key, and bad roots refused in one line, nothing changed."""

from __future__ import annotations

import datetime
import re
import time

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from swarmpy.api import control_pb2, control_pb2_grpc, dispatcher_pb2, dispatcher_pb2_grpc
from swarmpy.ca import certs, rotation, tls

from .conftest import create_service, form_cluster, unique, wait_converged
from ..integration.conftest import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.timeout(420)]

SESSION_OPENED = re.compile(r"session \S+ open with manager")


def credentials_of(daemon) -> tuple[bytes, bytes, bytes]:
    """(key, certificate chain, root bundle) as the node keeps them on disk."""
    pem = (daemon.data_dir / "certificates" / "swarm-node.pem").read_bytes()
    whole = re.findall(rb"(-----BEGIN ([A-Z ]+)-----.+?-----END \2-----\n?)", pem, re.DOTALL)
    key = next(block for block, label in whole if label == b"PRIVATE KEY")
    chain = b"".join(block for block, label in whole if label == b"CERTIFICATE")
    return key, chain, (daemon.data_dir / "certificates" / "swarm-root-ca.crt").read_bytes()


def cluster_root_ca(manager):
    return manager.rpc("GetCluster", control_pb2.GetClusterRequest()).cluster.root_ca


def rotated_to(daemons, root: bytes) -> bool:
    for daemon in daemons:
        _, chain, bundle = credentials_of(daemon)
        if bundle != root or not rotation.issued_by(chain, root):
            return False
    return True


def sessions_opened(daemon) -> int:
    return len(SESSION_OPENED.findall(daemon.log_path.read_text()))


def heartbeat_with(manager, key: bytes, chain: bytes, root: bytes):
    with grpc.secure_channel(manager.addr, tls.channel_credentials(key, chain, root), options=tls.channel_options()) as channel:
        return dispatcher_pb2_grpc.DispatcherStub(channel).Heartbeat(dispatcher_pb2.HeartbeatRequest(), timeout=10)


def list_nodes_with(manager, key: bytes, chain: bytes, root: bytes):
    with grpc.secure_channel(manager.addr, tls.channel_credentials(key, chain, root), options=tls.channel_options()) as channel:
        return control_pb2_grpc.ControlStub(channel).ListNodes(control_pb2.ListNodesRequest(), timeout=10)


def write_root(path, *, ca: bool = True, key=None) -> tuple[str, str]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "brought-root")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = path / "root.crt", path / "root.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_ca_rotation_on_three_managers_and_two_workers(docker, tmp_path, image):
    cluster = form_cluster(tmp_path / "swarm", docker, managers=3, workers=2)
    with cluster.torn_down():
        m1, m2, m3, w1 = cluster["m1"], cluster["m2"], cluster["m3"], cluster["w1"]
        daemons = list(cluster.daemons.values())
        service = unique("rot")
        create_service(m1, service, image, 5)
        tasks_before = {t.id for t in wait_converged(cluster, m1, service, 5)}
        containers_before = {c.id for c in cluster.our_running_containers(service)}
        sessions_before = {d.name: sessions_opened(d) for d in daemons}
        old_root = cluster_root_ca(m1).ca_cert
        old_w1, old_m2 = credentials_of(w1), credentials_of(m2)
        assert rotated_to(daemons, old_root)

        # 1. swarm ca --rotate (on a follower: it forwards), with docker's progress and then the new root.
        started = time.monotonic()
        result = m2.ok("swarm", "ca", "--rotate", "--cert-expiry", "30h", timeout=180)
        took = time.monotonic() - started
        new_root = cluster_root_ca(m1).ca_cert
        assert new_root != old_root
        assert not cluster_root_ca(m1).HasField("root_rotation")
        lines = result.stdout.splitlines()
        assert any(line.startswith("desired root digest: sha256:") for line in lines), result
        assert "  rotated TLS certificates:  [" in result.stdout and "] 5/5 nodes" in result.stdout, result
        assert "  rotated CA certificates:   [" in result.stdout, result
        assert result.stdout.rstrip().endswith(new_root.decode().strip()), result
        print(f"rotation of 5 nodes took {took:.1f} s")

        wait_until(lambda: rotated_to(daemons, new_root), timeout=30, what="every node on the new root alone",
                   details=cluster.status)
        for daemon in daemons:
            leaf = certs.load_certificate(credentials_of(daemon)[1])
            lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
            assert lifetime == datetime.timedelta(hours=31), (daemon.name, lifetime)  # 30 h + 1 h backdating

        statuses = m1.ok("node", "ls", "--format", "{{.Hostname}} {{.TLSStatus}}").stdout.splitlines()
        assert len(statuses) == 5 and all(line.endswith(" Ready") for line in statuses), statuses

        # No task restarted, no session reopened, every node still ready.
        assert {t.id for t in wait_converged(cluster, m1, service, 5)} == tasks_before
        assert {c.id for c in cluster.our_running_containers(service)} == containers_before
        assert {d.name: sessions_opened(d) for d in daemons} == sessions_before
        cluster.wait_ready()

        # New join tokens pin the new root.
        cluster.refresh_tokens(m1)
        for token in cluster.tokens.values():
            assert token.split("-")[2] == certs.ca_digest(new_root)

        # The old root's certificates (still within their dates) are refused; the nodes' current ones are not.
        assert len(list_nodes_with(m1, *credentials_of(m2)[:2], new_root).nodes) == 5
        with pytest.raises(grpc.RpcError) as no_session:
            heartbeat_with(m1, *credentials_of(w1)[:2], new_root)
        assert no_session.value.code() == grpc.StatusCode.NOT_FOUND, no_session.value  # past authorization
        for root in (old_root, new_root):
            for call, (key, chain, _) in ((heartbeat_with, old_w1), (list_nodes_with, old_m2)):
                with pytest.raises(grpc.RpcError) as refused:
                    call(m1, key, chain, root)
                assert refused.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED), refused.value

        # 2. Bad roots: one line, non-zero exit, nothing changed.
        before = m1.rpc("GetCluster", control_pb2.GetClusterRequest()).cluster
        good_cert, good_key = write_root(tmp_path)
        (tmp_path / "other").mkdir()
        _, other_key = write_root(tmp_path / "other")
        (tmp_path / "leaf").mkdir()
        leaf_cert, leaf_key = write_root(tmp_path / "leaf", ca=False)
        garbage = tmp_path / "garbage.pem"
        garbage.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
        plain = tmp_path / "plain.txt"
        plain.write_text("hello\n")
        for args, words in [
            (("--ca-cert", good_cert, "--ca-key", other_key), "does not match the public key"),
            (("--ca-cert", leaf_cert, "--ca-key", leaf_key), "is not a CA certificate"),
            (("--ca-cert", str(garbage), "--ca-key", good_key), "is not a PEM X.509 certificate"),
            (("--ca-cert", str(plain), "--ca-key", good_key), "file contents must be in PEM format"),
            (("--ca-cert", good_cert), "requires that a --ca-key flag"),
        ]:
            refused = m1.cli("swarm", "ca", "--rotate", *args)
            assert refused.code != 0 and words in refused.stderr, refused
            assert len(refused.stderr.strip().splitlines()) == 1, refused
        refused = m1.cli("swarm", "ca", "--ca-cert", good_cert)
        assert refused.code != 0 and "`--ca-cert` flag requires the `--rotate` flag" in refused.stderr, refused
        assert m1.rpc("GetCluster", control_pb2.GetClusterRequest()).cluster == before

        # 3. Rotation to the brought root, quietly: nothing printed, every node on it in the end.
        quiet = m1.ok("swarm", "ca", "--rotate", "--ca-cert", good_cert, "--ca-key", good_key, "-q", timeout=180)
        assert quiet.stdout == "", quiet
        brought = open(good_cert, "rb").read()
        assert cluster_root_ca(m1).ca_cert == brought
        wait_until(lambda: rotated_to(daemons, brought), timeout=30, what="every node on the brought root",
                   details=cluster.status)
        assert m1.ok("swarm", "ca").stdout.strip() == brought.decode().strip()
        assert {t.id for t in wait_converged(cluster, m1, service, 5)} == tasks_before
        assert {d.name: sessions_opened(d) for d in daemons} == sessions_before

        # 4. -d returns at once; a second rotation started before the first is over replaces it (the nodes
        # already on the first new root keep talking through its cross-signed certificate); it completes.
        assert m1.ok("swarm", "ca", "--rotate", "-d").stdout == ""
        replaced = cluster_root_ca(m1).root_rotation.ca_cert
        assert m3.ok("swarm", "ca", "--rotate", "-d").stdout == ""
        wait_until(lambda: not cluster_root_ca(m1).HasField("root_rotation"), timeout=60, what="the detached rotation")
        final = cluster_root_ca(m1).ca_cert
        assert final not in (brought, replaced)
        wait_until(lambda: rotated_to(daemons, final), timeout=30, what="every node on the third root")
        assert {t.id for t in wait_converged(cluster, m1, service, 5)} == tasks_before
        assert {d.name: sessions_opened(d) for d in daemons} == sessions_before
        cluster.wait_ready()
