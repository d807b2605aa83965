"""The joining side: pin the swarm's root CA from a join token, then get a node certificate.

1. `fetch_root_ca` opens a plain TLS connection to the manager without verifying it (the joiner does
   not know the root yet, and grpc cannot skip verification, hence pyOpenSSL), presenting the public
   bootstrap client certificate so the manager's mutual-TLS handshake completes. Managers send their
   certificate chained with the root CA; the self-signed certificate in that chain is accepted only if
   its digest equals the one in the join token. A man in the middle cannot forge that.
2. `request_node_certificate` then talks gRPC to the manager, now verified against the pinned root,
   and sends a fresh CSR with the token.
`renew_node_certificate` is the same exchange for a node that already holds a certificate.
"""

from __future__ import annotations

import asyncio
import hmac
import select
import socket
import time
from typing import NamedTuple

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL

from swarmpy.api import ca_pb2, ca_pb2_grpc, objects_pb2
from swarmpy.ca.certs import (
    ca_digest,
    check_issued_by,
    check_path,
    load_private_key,
    make_node_key_and_csr,
    public_keys_match,
    verify_chain,
)
from swarmpy.ca.errors import CertificateError, JoinRefused, ManagerUnreachable, RootCAMismatch, WrongCA
from swarmpy.ca.join_bootstrap import BOOTSTRAP_CLIENT_CERT_PEM, bootstrap_client_key_pem
from swarmpy.ca.tls import CHANNEL_OPTIONS, bootstrap_channel_credentials, channel_credentials

DEFAULT_TIMEOUT = 10.0


class IssuedCertificate(NamedTuple):
    node_id: str
    key_pem: bytes
    cert_pem: bytes
    cluster_id: str


def split_host_port(addr: str) -> tuple[str, int]:
    """"host:port" or "[v6]:port" → (host, port); ValueError naming the address otherwise."""
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"manager address {addr!r} is not host:port")
    return host.strip("[]"), int(port)


def _wait_for(sock: socket.socket, want_write: bool, deadline: float, addr: str) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise ManagerUnreachable(f"TLS handshake with manager {addr} timed out")
    watch = [sock]
    ready = select.select([], watch, [], remaining) if want_write else select.select(watch, [], [], remaining)
    if not any(ready):
        raise ManagerUnreachable(f"TLS handshake with manager {addr} timed out")


def _peer_chain(addr: str, timeout: float) -> list[x509.Certificate]:
    """The certificate chain the manager at `addr` presents (blocking; unverified)."""
    host, port = split_host_port(addr)
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    # Deliberately unverified: the chain is judged by the token's digest, not by any trust store.
    context.set_verify(SSL.VERIFY_NONE)
    context.use_certificate(x509.load_pem_x509_certificate(BOOTSTRAP_CLIENT_CERT_PEM))
    context.use_privatekey(load_private_key(bootstrap_client_key_pem()))
    context.set_alpn_protos([b"h2"])
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise ManagerUnreachable(f"cannot connect to manager {addr}: {exc}") from exc
    with sock:
        sock.setblocking(False)
        connection = SSL.Connection(context, sock)
        connection.set_connect_state()
        while True:
            try:
                connection.do_handshake()
                break
            except SSL.WantReadError:
                _wait_for(sock, False, deadline, addr)
            except SSL.WantWriteError:
                _wait_for(sock, True, deadline, addr)
            except (SSL.Error, OSError) as exc:
                raise ManagerUnreachable(f"TLS handshake with manager {addr} failed: {exc}") from exc
        chain = connection.get_peer_cert_chain(as_cryptography=True) or []
        try:
            connection.shutdown()
        except (SSL.Error, OSError):
            pass  # the chain is all we came for; a rude close changes nothing
    return chain


def _is_self_signed(cert: x509.Certificate) -> bool:
    try:
        check_issued_by(cert, cert)
    except WrongCA:
        return False
    return True


def pick_pinned_root(chain: list[x509.Certificate], expected_digest: str, addr: str) -> bytes:
    """The PEM of the self-signed certificate in `chain` whose digest is `expected_digest`, or RootCAMismatch."""
    if not chain:
        raise RootCAMismatch(f"manager {addr} presented no certificate")
    roots = [cert for cert in chain if _is_self_signed(cert)]
    for root in roots:
        pem = root.public_bytes(serialization.Encoding.PEM)
        if hmac.compare_digest(ca_digest(pem).encode(), expected_digest.encode()):
            try:
                # Directly, or (during a CA rotation) through the cross-signed root the manager sends.
                check_path(chain[0], chain[1:], [root], dates=False)
            except WrongCA as exc:
                raise RootCAMismatch(
                    f"manager {addr} presented the swarm's root CA but a certificate the root did not sign; "
                    "someone may be intercepting the connection"
                ) from exc
            return pem
    found = ", ".join(ca_digest(r.public_bytes(serialization.Encoding.PEM)) for r in roots) or "none"
    raise RootCAMismatch(
        f"the root CA presented by manager {addr} does not match the join token (token pins {expected_digest}, "
        f"manager presented {found}); the token may be for another swarm, or someone may be intercepting "
        "the connection"
    )


async def peer_certificate_chain(addr: str, timeout: float = DEFAULT_TIMEOUT) -> list[x509.Certificate]:
    """The certificate chain the manager at `addr` presents, leaf first. Unverified: judge it yourself."""
    return await asyncio.to_thread(_peer_chain, addr, timeout)


async def fetch_root_ca(addr: str, expected_digest: str, timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """The swarm root CA certificate (PEM) of the manager at `addr`, pinned by the token's CA digest."""
    return pick_pinned_root(await peer_certificate_chain(addr, timeout), expected_digest, addr)


def _refusal(exc: grpc.aio.AioRpcError, addr: str) -> Exception:
    if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return ManagerUnreachable(f"manager {addr} is unreachable: {exc.details()}")
    return JoinRefused(f"manager {addr} refused: {exc.details()} ({exc.code().name})")


async def request_node_certificate(
    addr: str,
    root_cert_pem: bytes,
    token: str,
    availability: int = objects_pb2.NodeSpec.ACTIVE,
    advertise_addr: str = "",
    timeout: float = DEFAULT_TIMEOUT,
) -> IssuedCertificate:
    """Join: a new key and a certificate for it from the manager at `addr`, authorized by `token`."""
    key_pem, csr_pem = await asyncio.to_thread(make_node_key_and_csr)
    request = ca_pb2.IssueNodeCertificateRequest(
        csr=csr_pem, token=token, availability=availability, advertise_addr=advertise_addr
    )
    async with grpc.aio.secure_channel(addr, bootstrap_channel_credentials(root_cert_pem), CHANNEL_OPTIONS) as channel:
        try:
            response = await ca_pb2_grpc.CAStub(channel).IssueNodeCertificate(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise _refusal(exc, addr) from exc
    _check_issued(response.certificate, key_pem, root_cert_pem, addr, response.node_id)
    return IssuedCertificate(response.node_id, key_pem, response.certificate, response.cluster_id)


async def renew_node_certificate(
    addr: str, node_key_pem: bytes, node_cert_pem: bytes, root_cert_pem: bytes, timeout: float = DEFAULT_TIMEOUT
) -> tuple[bytes, bytes]:
    """A new (key_pem, cert_pem) for the same node, from the manager at `addr`."""
    node_id = verify_chain(node_cert_pem, root_cert_pem).node_id
    key_pem, csr_pem = await asyncio.to_thread(make_node_key_and_csr)
    credentials = channel_credentials(node_key_pem, node_cert_pem, root_cert_pem)
    async with grpc.aio.secure_channel(addr, credentials, CHANNEL_OPTIONS) as channel:
        try:
            response = await ca_pb2_grpc.CAStub(channel).RenewNodeCertificate(
                ca_pb2.RenewNodeCertificateRequest(csr=csr_pem), timeout=timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise _refusal(exc, addr) from exc
    _check_issued(response.certificate, key_pem, root_cert_pem, addr, node_id)
    return key_pem, response.certificate


def _check_issued(cert_pem: bytes, key_pem: bytes, root_cert_pem: bytes, addr: str, node_id: str) -> None:
    """A manager's answer must be a current certificate from the pinned root, for our key and the stated node."""
    try:
        identity = verify_chain(cert_pem, root_cert_pem)
    except CertificateError as exc:
        raise JoinRefused(f"manager {addr} returned an unusable certificate: {exc}") from exc
    if not public_keys_match(key_pem, cert_pem):
        raise JoinRefused(f"manager {addr} returned a certificate for a key other than ours")
    if identity.node_id != node_id:
        raise JoinRefused(f"manager {addr} returned a certificate for node {identity.node_id}, expected {node_id}")
