"""Root CA rotation over real mutual TLS: old-root and new-root nodes talk during the change (through
the cross-signed root), an old-root certificate is refused once it is over; a brought root is checked."""

from __future__ import annotations

import datetime

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from swarmpy.api import ca_pb2_grpc, control_pb2_grpc, dispatcher_pb2_grpc, objects_pb2
from swarmpy.ca import certs, rotation, tokens
from swarmpy.ca.authz import AuthorizationInterceptor
from swarmpy.ca.bootstrap import fetch_root_ca, request_node_certificate
from swarmpy.ca.server import CAServicer, sign_for_cluster
from swarmpy.ca.tls import ReloadableServerCredentials, channel_credentials, server_options
from swarmpy.identity import new_id
from tests.ca.swarm_fixtures import new_swarm
from tests.ca.test_end_to_end import EchoCaller, heartbeat, list_nodes, refused_code

pytestmark = pytest.mark.timeout(30)


def node_with(cluster: objects_pb2.Cluster, role: int, node_id: str | None = None) -> tuple[bytes, bytes]:
    """(key, certificate chain) as the cluster's CA signs them now (the new key during a rotation)."""
    key_pem, csr_pem = certs.make_node_key_and_csr()
    key, cert, chain = rotation.signer(cluster.root_ca)
    leaf = certs.sign_node_csr(key, cert, csr_pem, node_id or new_id(), role, cluster.id)
    return key_pem, leaf + chain


class RotatingManager:
    """A manager's swarm port whose trust bundle follows the cluster object, as swarmpy's Manager does."""

    def __init__(self, cluster: objects_pb2.Cluster) -> None:
        self.cluster = cluster
        self.echo = EchoCaller()
        self.key, self.cert = node_with(cluster, objects_pb2.MANAGER, "manager-1")
        self.credentials = ReloadableServerCredentials(self.key, self.cert, rotation.trust_bundle(cluster.root_ca))
        self.server = grpc.aio.server(
            interceptors=[AuthorizationInterceptor(cluster.id, lambda: rotation.trust_bundle(self.cluster.root_ca))],
            options=server_options(),
        )

        async def issue(role, csr_pem, availability, advertise_addr):
            node_id = new_id()
            return node_id, await sign_for_cluster(self.cluster, csr_pem, node_id, role), self.cluster.id

        ca_pb2_grpc.add_CAServicer_to_server(CAServicer(issue, lambda: self.cluster), self.server)
        control_pb2_grpc.add_ControlServicer_to_server(self.echo, self.server)
        dispatcher_pb2_grpc.add_DispatcherServicer_to_server(self.echo, self.server)
        self.addr = f"127.0.0.1:{self.server.add_secure_port('127.0.0.1:0', self.credentials.credentials)}"

    def follow(self, cluster: objects_pb2.Cluster, renew: bool = False) -> None:
        self.cluster = cluster
        if renew:
            self.key, self.cert = node_with(cluster, objects_pb2.MANAGER, "manager-1")
        self.credentials.update(self.key, self.cert, rotation.trust_bundle(cluster.root_ca))


@pytest.fixture
async def rotating():
    swarm = new_swarm()
    manager = RotatingManager(swarm.cluster)
    await manager.server.start()
    try:
        yield manager
    finally:
        await manager.server.stop(grace=None)


def with_root_ca(cluster: objects_pb2.Cluster, root_ca: objects_pb2.RootCA) -> objects_pb2.Cluster:
    changed = objects_pb2.Cluster()
    changed.CopyFrom(cluster)
    changed.root_ca.CopyFrom(root_ca)
    return changed


async def test_nodes_of_both_roots_talk_during_the_rotation_and_the_old_root_is_refused_after(rotating):
    before = rotating.cluster
    old_root = before.root_ca.ca_cert
    old_node = node_with(before, objects_pb2.WORKER)
    old_manager_client = node_with(before, objects_pb2.MANAGER)

    during = with_root_ca(before, rotation.start_rotation(before.root_ca))
    new_root = during.root_ca.root_rotation.ca_cert
    rotating.follow(during, renew=True)  # the manager has rotated: its certificate comes from the new key
    assert rotation.issued_by(rotating.cert, new_root) and not rotation.issued_by(rotating.cert, old_root)
    rotated_node = node_with(during, objects_pb2.WORKER)

    # A node that has not rotated yet (trusting only the old root) reaches the rotated manager through
    # the cross-signed root; a rotated node still trusting only the old root is accepted by the manager.
    assert (await heartbeat(rotating.addr, channel_credentials(*old_node, old_root))).period
    assert (await heartbeat(rotating.addr, channel_credentials(*rotated_node, old_root))).period
    # A node that already trusts the bundle of both roots.
    bundle = rotation.trust_bundle(during.root_ca)
    assert (await heartbeat(rotating.addr, channel_credentials(*rotated_node, bundle))).period
    assert (await list_nodes(rotating.addr, channel_credentials(*old_manager_client, old_root))).nodes

    # A node joining during the rotation pins the old root with the old token and gets a new-key certificate.
    token = during.root_ca.join_tokens.worker
    pinned = await fetch_root_ca(rotating.addr, tokens.parse_join_token(token).ca_digest)
    assert pinned == old_root
    issued = await request_node_certificate(rotating.addr, pinned, token)
    assert rotation.issued_by(issued.cert_pem, new_root)

    after = with_root_ca(during, rotation.finish_rotation(during.root_ca))
    assert after.root_ca.ca_cert == new_root and not after.root_ca.HasField("root_rotation")
    assert certs.ca_digest(new_root) in after.root_ca.join_tokens.worker
    rotating.follow(after)
    assert rotation.trust_bundle(after.root_ca) == new_root
    assert (await heartbeat(rotating.addr, channel_credentials(*rotated_node, new_root))).period
    # The old root's certificates no longer open anything: refused at the handshake or by authorization.
    code = await refused_code(heartbeat(rotating.addr, channel_credentials(*old_node, old_root)))
    assert code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED)
    code = await refused_code(heartbeat(rotating.addr, channel_credentials(*old_node, bundle)))
    assert code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED)
    # And the new join token pins the new root.
    assert await fetch_root_ca(rotating.addr, tokens.parse_join_token(after.root_ca.join_tokens.worker).ca_digest) == new_root


def test_authorization_follows_the_bundle():
    swarm = new_swarm()
    during = with_root_ca(swarm.cluster, rotation.start_rotation(swarm.cluster.root_ca))
    old = node_with(swarm.cluster, objects_pb2.WORKER, "old")[1]
    new = node_with(during, objects_pb2.WORKER, "new")[1]
    from swarmpy.ca.authz import AccessDenied, authorize

    bundle = rotation.trust_bundle(during.root_ca)
    for cert in (old, new):
        assert authorize("swarmpy.api.Dispatcher/Heartbeat", cert.split(b"-----END CERTIFICATE-----")[0]
                         + b"-----END CERTIFICATE-----\n", bundle, swarm.cluster_id) is not None
    finished = rotation.trust_bundle(rotation.finish_rotation(during.root_ca))
    with pytest.raises(AccessDenied, match="not issued by this swarm's root CA"):
        authorize("/swarmpy.api.Dispatcher/Heartbeat", old, finished, swarm.cluster_id)


def test_a_leaf_passed_off_as_an_intermediate_vouches_for_nothing():
    swarm = new_swarm()
    node_key, node_cert = swarm.node_credentials(objects_pb2.WORKER, "n1")
    # A certificate "signed" by a node key: the node cannot make itself a CA.
    forged_key, forged_csr = certs.make_node_key_and_csr()
    node_name = x509.load_pem_x509_certificate(node_cert).subject
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "evil"),
                         x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, certs.MANAGER_OU),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, swarm.cluster_id)])
    now = datetime.datetime.now(datetime.timezone.utc)
    forged = (x509.CertificateBuilder().subject_name(subject).issuer_name(node_name)
              .public_key(x509.load_pem_x509_csr(forged_csr).public_key()).serial_number(1)
              .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
              .sign(serialization.load_pem_private_key(node_key, None), hashes.SHA256()))
    with pytest.raises(certs.WrongCA):
        certs.verify_chain(forged.public_bytes(serialization.Encoding.PEM) + node_cert, swarm.root_cert)


def _ca(key=None, *, ca=True, issuer_key=None, days=365) -> tuple[bytes, bytes]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "my-root")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=10))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer_key or key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def test_a_brought_root_is_accepted_and_signs():
    cert_pem, key_pem = _ca()
    checked_cert, checked_key = rotation.check_signing_root(cert_pem, key_pem)
    assert checked_cert == cert_pem
    swarm = new_swarm()
    during = with_root_ca(swarm.cluster, rotation.start_rotation(swarm.cluster.root_ca, checked_cert, checked_key))
    _, chain = node_with(during, objects_pb2.WORKER)
    assert rotation.issued_by(chain, cert_pem)
    certs.verify_chain(chain, swarm.root_cert)  # through the cross-signed certificate
    certs.verify_chain(chain, cert_pem)


@pytest.mark.parametrize("make, message", [
    (lambda: (_ca()[0], _ca()[1]), "signing CA key (--ca-key) does not match the public key of the signing CA certificate"),
    (lambda: _ca(ca=False), "is not a CA certificate"),
    (lambda: (b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", _ca()[1]),
     "signing CA certificate (--ca-cert) is not a PEM X.509 certificate"),
    (lambda: (_ca()[0], b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
     "signing CA key (--ca-key) is not an unencrypted PEM private key"),
    (lambda: _ca(issuer_key=ec.generate_private_key(ec.SECP256R1())), "is not self-signed"),
    (lambda: _ca(days=-2), "expired at"),
])
def test_a_bad_brought_root_is_refused_in_one_line(make, message):
    cert_pem, key_pem = make()
    with pytest.raises(rotation.InvalidSigningRoot) as refused:
        rotation.check_signing_root(cert_pem, key_pem)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


async def test_a_rotation_replaced_midway_keeps_the_half_rotated_nodes_talking(rotating):
    first = rotating.cluster
    root1 = first.root_ca.ca_cert
    second = with_root_ca(first, rotation.start_rotation(first.root_ca))
    rotating.follow(second, renew=True)
    on_root2 = node_with(second, objects_pb2.WORKER)
    third = with_root_ca(second, rotation.start_rotation(second.root_ca))  # replaces the rotation to root 2
    assert rotation.trust_bundle(third.root_ca).count(b"BEGIN CERTIFICATE") == 2  # root 1 and root 3
    rotating.follow(third)
    # Root 2 is no longer trusted, but its certificates came with root 2 cross-signed by root 1: still in.
    assert (await heartbeat(rotating.addr, channel_credentials(*on_root2, root1))).period
    rotating.follow(third, renew=True)
    on_root3 = node_with(third, objects_pb2.WORKER)
    assert (await heartbeat(rotating.addr, channel_credentials(*on_root2, root1))).period
    finished = with_root_ca(third, rotation.finish_rotation(third.root_ca))
    rotating.follow(finished)
    root3 = finished.root_ca.ca_cert
    assert (await heartbeat(rotating.addr, channel_credentials(*on_root3, root3))).period
    code = await refused_code(heartbeat(rotating.addr, channel_credentials(*on_root2, root3)))
    assert code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED)
