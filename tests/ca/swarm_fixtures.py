"""Building blocks for CA tests: a swarm (root CA, cluster object, tokens) and certificates signed by it."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from swarmpy.api import objects_pb2
from swarmpy.ca import certs, join_bootstrap, tokens
from swarmpy.identity import new_id


@dataclass
class Swarm:
    cluster: objects_pb2.Cluster

    @property
    def root_key(self) -> bytes:
        return self.cluster.root_ca.ca_key

    @property
    def root_cert(self) -> bytes:
        return self.cluster.root_ca.ca_cert

    @property
    def cluster_id(self) -> str:
        return self.cluster.id

    @property
    def worker_token(self) -> str:
        return self.cluster.root_ca.join_tokens.worker

    @property
    def manager_token(self) -> str:
        return self.cluster.root_ca.join_tokens.manager

    def node_credentials(
        self,
        role: int,
        node_id: str | None = None,
        *,
        cluster_id: str | None = None,
        expiry_seconds: float = certs.DEFAULT_NODE_CERT_EXPIRY.total_seconds(),
        now: datetime.datetime | None = None,
    ) -> tuple[bytes, bytes]:
        """(key_pem, cert_pem) for a node of this swarm (or claiming `cluster_id`), signed by its root."""
        key_pem, csr_pem = certs.make_node_key_and_csr()
        cert_pem = certs.sign_node_csr(
            self.root_key, self.root_cert, csr_pem, node_id or new_id(), role,
            cluster_id or self.cluster_id, expiry_seconds, now=now,
        )
        return key_pem, cert_pem

    def expired_credentials(self, role: int) -> tuple[bytes, bytes]:
        long_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=30)
        return self.node_credentials(role, expiry_seconds=3600, now=long_ago)


def new_swarm() -> Swarm:
    key_pem, cert_pem = certs.create_root_ca()
    cluster = objects_pb2.Cluster(id=new_id())
    cluster.root_ca.ca_key = key_pem
    cluster.root_ca.ca_cert = cert_pem
    cluster.root_ca.ca_cert_hash = certs.ca_digest(cert_pem)
    cluster.root_ca.join_tokens.CopyFrom(tokens.new_join_tokens(cert_pem))
    return Swarm(cluster)


def forged_with_bootstrap_ca(node_id: str, ou: str, cluster_id: str) -> tuple[bytes, bytes]:
    """What anyone can make: (key_pem, cert_pem) signed by the public bootstrap CA, claiming any identity."""
    ca_key = join_bootstrap.derive_key_from_label(join_bootstrap.BOOTSTRAP_CA_KEY_LABEL)
    ca = x509.load_pem_x509_certificate(join_bootstrap.BOOTSTRAP_CA_CERT_PEM)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, node_id),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, cluster_id),
    ])
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(ca.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)
