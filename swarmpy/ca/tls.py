"""Mutual-TLS credentials and channel options for every swarm gRPC connection.

- Managers serve with `server_credentials`: their node certificate chained with the root CA (so a
  joining node can read the root from the handshake), and client certificates required, verified
  against the swarm root CA *and* the public join bootstrap CA (see swarmpy.ca.join_bootstrap). The
  handshake therefore proves little on its own; swarmpy.ca.authz decides what each caller may do.
- Nodes dial with `channel_credentials` (their own certificate) and joiners with
  `bootstrap_channel_credentials`. Both verify the manager against the swarm root CA and expect the
  name "swarm-manager" whatever address they dial, which `channel_options` arranges.
  `secure_channel` puts the two together for a node holding its NodeCredentials.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import grpc

from swarmpy.ca.certs import MANAGER_SERVER_NAME, load_certificate, load_private_key, parse_node_certificate
from swarmpy.ca.errors import MalformedCertificate
from swarmpy.ca.join_bootstrap import BOOTSTRAP_CA_CERT_PEM, BOOTSTRAP_CLIENT_CERT_PEM, bootstrap_client_key_pem

if TYPE_CHECKING:
    from swarmpy.ca.keystore import NodeCredentials

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def channel_options(max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> list[tuple[str, object]]:
    """Options for a channel to a manager: the fixed TLS target name and the message size limits."""
    return [
        ("grpc.ssl_target_name_override", MANAGER_SERVER_NAME),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
    ]


def server_options(max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> list[tuple[str, object]]:
    """Options for a manager's grpc.aio server: the same message size limits as the channels.

    grpc sets SO_REUSEPORT by default: a second swarmpyd given the same swarm port would bind it too,
    and the kernel would share the connections between two clusters (handshakes failing at random).
    Off, the second bind fails and its `swarm init` says the address is in use.
    """
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]


CHANNEL_OPTIONS: tuple[tuple[str, object], ...] = tuple(channel_options())


def _pem(data: bytes) -> bytes:
    return data if data.endswith(b"\n") else data + b"\n"


def _server_key_and_chain(node_key_pem: bytes, node_cert_pem: bytes, root_cert_pem: bytes) -> tuple[bytes, bytes, bytes]:
    """(key, leaf+root chain, client trust roots) for a manager; checks the files first."""
    # Parse first so a wrong file fails here, naming it, rather than as an opaque handshake error later.
    load_private_key(node_key_pem, "manager node key")
    load_certificate(root_cert_pem, "root CA certificate")
    identity = parse_node_certificate(node_cert_pem)
    if not identity.is_manager:
        raise MalformedCertificate(
            f"node {identity.node_id} has a worker certificate; only managers serve the swarm port"
        )
    return node_key_pem, _pem(node_cert_pem) + _pem(root_cert_pem), _pem(root_cert_pem) + BOOTSTRAP_CA_CERT_PEM


def server_credentials(node_key_pem: bytes, node_cert_pem: bytes, root_cert_pem: bytes) -> grpc.ServerCredentials:
    """Credentials for a manager's swarm port. The node certificate must be a manager's."""
    key, chain, client_roots = _server_key_and_chain(node_key_pem, node_cert_pem, root_cert_pem)
    return grpc.ssl_server_credentials([(key, chain)], root_certificates=client_roots, require_client_auth=True)


class ReloadableServerCredentials:
    """Server credentials whose certificate and root can be replaced while the server runs.

    A manager renews its certificate every few weeks and the root CA may rotate; with these, `update`
    takes effect for every connection accepted afterwards, and established ones keep their session.
    grpc core asks `_fetch` for the current configuration at each handshake, from its own thread.
    """

    def __init__(self, node_key_pem: bytes, node_cert_pem: bytes, root_cert_pem: bytes) -> None:
        self._lock = threading.Lock()
        self._pending: grpc.ServerCertificateConfiguration | None = None
        initial = self._configuration(node_key_pem, node_cert_pem, root_cert_pem)
        self.credentials: grpc.ServerCredentials = grpc.dynamic_ssl_server_credentials(
            initial, self._fetch, require_client_authentication=True
        )

    @staticmethod
    def _configuration(node_key_pem: bytes, node_cert_pem: bytes, root_cert_pem: bytes):
        key, chain, client_roots = _server_key_and_chain(node_key_pem, node_cert_pem, root_cert_pem)
        return grpc.ssl_server_certificate_configuration([(key, chain)], root_certificates=client_roots)

    def update(self, node_key_pem: bytes, node_cert_pem: bytes, root_cert_pem: bytes) -> None:
        configuration = self._configuration(node_key_pem, node_cert_pem, root_cert_pem)
        with self._lock:
            self._pending = configuration

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        # None tells grpc to keep the configuration it has.
        with self._lock:
            configuration, self._pending = self._pending, None
        return configuration


def channel_credentials(node_key_pem: bytes, node_cert_pem: bytes, root_cert_pem: bytes) -> grpc.ChannelCredentials:
    """Credentials for a node with a certificate dialing a manager."""
    load_private_key(node_key_pem, "node key")
    load_certificate(node_cert_pem, "node certificate")
    load_certificate(root_cert_pem, "root CA certificate")
    return grpc.ssl_channel_credentials(
        root_certificates=root_cert_pem, private_key=node_key_pem, certificate_chain=node_cert_pem
    )


def bootstrap_channel_credentials(root_cert_pem: bytes) -> grpc.ChannelCredentials:
    """Credentials for a joining node: the public bootstrap identity, the manager checked against the pinned root."""
    load_certificate(root_cert_pem, "root CA certificate")
    return grpc.ssl_channel_credentials(
        root_certificates=root_cert_pem,
        private_key=bootstrap_client_key_pem(),
        certificate_chain=BOOTSTRAP_CLIENT_CERT_PEM,
    )


def secure_channel(
    addr: str, credentials: NodeCredentials, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
) -> grpc.aio.Channel:
    """A mutual-TLS channel from a node, presenting its certificate, to the manager at `addr`."""
    creds = channel_credentials(credentials.key_pem, credentials.cert_pem, credentials.root_cert_pem)
    return grpc.aio.secure_channel(addr, creds, options=channel_options(max_message_bytes))
