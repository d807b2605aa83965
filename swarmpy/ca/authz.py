"""Who may call what on a manager's swarm port, decided from the caller's TLS certificate.

Theory of operation. The TLS handshake accepts client certificates from two roots: the swarm root CA
and the public join bootstrap CA (swarmpy.ca.join_bootstrap). Because anyone can mint a bootstrap
certificate with any subject, the handshake alone proves nothing; this layer re-checks, for every RPC,
that a swarm root CA signed the caller's leaf certificate (directly, or through the cross-signed root
of a CA rotation that the caller sent with it; the roots are those trusted now, so the end of a
rotation refuses the old root's certificates even on connections opened before), that it is current
and that its O is this cluster. Only then are its CN (node ID) and OU (role) believed.

The policy maps a full method ("/swarmpy.api.CA/IssueNodeCertificate") or a whole service
("swarmpy.api.Control") to an Access level. Anything not in the policy is refused, so a new service
mounted on the port is closed until someone decides who may call it.

It is a grpc.aio server interceptor, not a helper each servicer must remember to call: one place holds
the whole policy, and a forgotten check cannot open a method. The interceptor only sees the method
name, so it wraps the method's handler; the wrapper, running in the RPC's own task, reads
context.auth_context(), aborts refused calls, and publishes the caller through a context variable that
servicers read with `current_caller()` / `caller_identity()`. grpc.aio runs each RPC in its own task,
whose context is a private copy, so the value is never seen by another RPC.
"""

from __future__ import annotations

import datetime
import enum
import functools
import inspect
import logging
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass

import grpc
from cryptography import x509

from swarmpy.ca.certs import NodeIdentity, check_path, check_validity, identity_of, load_certificate, load_certificates
from swarmpy.ca.errors import CAError, CertificateError
from swarmpy.ca.join_bootstrap import BOOTSTRAP_OU

logger = logging.getLogger(__name__)


class Access(enum.Enum):
    ANYONE = "anyone who passed the TLS handshake"
    NODE = "nodes of this swarm"
    MANAGER = "managers of this swarm"


DEFAULT_POLICY: Mapping[str, Access] = {
    # The join token, checked by the CA servicer, is what authorizes issuance.
    "/swarmpy.api.CA/GetRootCACertificate": Access.ANYONE,
    "/swarmpy.api.CA/IssueNodeCertificate": Access.ANYONE,
    "/swarmpy.api.CA/RenewNodeCertificate": Access.NODE,
    "swarmpy.api.Dispatcher": Access.NODE,
    "swarmpy.api.Control": Access.MANAGER,
    "swarmpy.api.Raft": Access.MANAGER,
}


@dataclass(frozen=True)
class Caller:
    """The peer of the current RPC; `identity` is None for callers without a node certificate of this swarm."""

    peer: str
    identity: NodeIdentity | None


class AccessDenied(CAError):
    """The caller may not call the method; `code` is the gRPC status to answer with. The caller's fault."""

    def __init__(self, code: grpc.StatusCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


_current_caller: ContextVar[Caller | None] = ContextVar("swarmpy_ca_current_caller", default=None)


def current_caller() -> Caller:
    """The caller of the RPC being served; raises if the servicer runs without AuthorizationInterceptor."""
    caller = _current_caller.get()
    if caller is None:
        raise RuntimeError("no caller recorded: the server was built without swarmpy.ca.authz.AuthorizationInterceptor")
    return caller


def caller_identity() -> NodeIdentity:
    """The node calling the RPC being served; raises AccessDenied if it has no node certificate."""
    caller = current_caller()
    if caller.identity is None:
        raise AccessDenied(grpc.StatusCode.UNAUTHENTICATED, f"peer {caller.peer} has no node certificate")
    return caller.identity


def access_for(method: str, policy: Mapping[str, Access]) -> Access | None:
    """The access level for a full method name: an exact entry first, then its service's."""
    if method in policy:
        return policy[method]
    service = method.lstrip("/").split("/", 1)[0]
    return policy.get(service)


@functools.lru_cache(maxsize=4096)
def _signature_check(cert_pem: bytes, chain_pem: bytes, root_cert_pem: bytes) -> tuple[x509.Certificate | None, str]:
    """(certificate, "") if a root of the bundle signed it, else (certificate or None, why not).

    Directly, or through a CA certificate the peer sent after it that a root signed: during a CA
    rotation, the new root cross-signed by the old one. Cached because every RPC re-checks its caller
    and the ECDSA verifications are the costly part; dates are not part of the cached answer.
    """
    try:
        cert = load_certificate(cert_pem, "client certificate")
        intermediates = load_certificates(chain_pem, "client certificate chain") if chain_pem else []
    except CertificateError as exc:
        return None, str(exc)
    try:
        check_path(cert, intermediates, load_certificates(root_cert_pem, "root CA certificate"), dates=False)
    except CertificateError as exc:
        return cert, str(exc)
    return cert, ""


def _node_identity(
    cert_pem: bytes | None, root_cert_pem: bytes, cluster_id: str, now: datetime.datetime, chain_pem: bytes = b""
) -> tuple[NodeIdentity | None, str]:
    """The caller's identity if its certificate is a current node certificate of this swarm, else why not."""
    if cert_pem is None:
        return None, "it presented no client certificate"
    cert, problem = _signature_check(cert_pem, chain_pem, root_cert_pem)
    if cert is not None and problem:
        ous = cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)
        if any(ou.value == BOOTSTRAP_OU for ou in ous):
            return None, "it presented the join bootstrap certificate, which only reaches the join methods"
    if problem:
        return None, problem
    assert cert is not None
    try:
        check_validity(cert, now)
        identity = identity_of(cert)
    except CertificateError as exc:
        return None, str(exc)
    if identity.cluster_id != cluster_id:
        return None, f"its certificate is for cluster {identity.cluster_id!r}, not {cluster_id!r}"
    return identity, ""


def authorize(
    method: str,
    peer_cert_pem: bytes | None,
    root_cert_pem: bytes,
    cluster_id: str,
    policy: Mapping[str, Access] = DEFAULT_POLICY,
    now: datetime.datetime | None = None,
    peer_chain_pem: bytes = b"",
) -> NodeIdentity | None:
    """Decide one call: the caller's node identity (None for an anonymous join call), or AccessDenied.
    `peer_chain_pem` is what the peer sent after its certificate (a CA rotation's cross-signed root)."""
    access = access_for(method, policy)
    if access is None:
        raise AccessDenied(grpc.StatusCode.PERMISSION_DENIED, f"{method} is not served on the swarm port")
    identity, problem = _node_identity(
        peer_cert_pem, root_cert_pem, cluster_id, now or datetime.datetime.now(datetime.timezone.utc), peer_chain_pem
    )
    if access is Access.ANYONE:
        return identity
    if identity is None:
        raise AccessDenied(
            grpc.StatusCode.UNAUTHENTICATED, f"{method} needs a node certificate of this swarm, but {problem}"
        )
    if access is Access.MANAGER and not identity.is_manager:
        raise AccessDenied(
            grpc.StatusCode.PERMISSION_DENIED, f"{method} is for managers; node {identity.node_id} is a worker"
        )
    return identity


def _peer_certificate(context: grpc.aio.ServicerContext) -> tuple[bytes | None, bytes]:
    """The peer's certificate, and the certificates it sent after it (on a server, grpc's
    x509_pem_cert_chain is OpenSSL's peer chain, which leaves the leaf out)."""
    auth = context.auth_context()
    certs, chain = auth.get("x509_pem_cert"), auth.get("x509_pem_cert_chain")
    return (certs[0] if certs else None), (chain[0] if chain else b"")


class AuthorizationInterceptor(grpc.aio.ServerInterceptor):
    """Enforces `policy` on every RPC and records the caller for `current_caller()`.

    `current_root_cert` returns the swarm's root CA certificate PEM at call time, so a rotated root is
    picked up without rebuilding the server.
    """

    def __init__(
        self,
        cluster_id: str,
        current_root_cert: Callable[[], bytes],
        policy: Mapping[str, Access] = DEFAULT_POLICY,
    ) -> None:
        self._cluster_id = cluster_id
        self._current_root_cert = current_root_cert
        self._policy = dict(policy)

    async def _admit(self, method: str, context: grpc.aio.ServicerContext) -> None:
        peer = context.peer()
        try:
            cert_pem, chain_pem = _peer_certificate(context)
            identity = authorize(
                method, cert_pem, self._current_root_cert(), self._cluster_id, self._policy, peer_chain_pem=chain_pem
            )
        except AccessDenied as denied:
            logger.warning("refused %s from %s: %s", method, peer, denied.reason)
            await context.abort(denied.code, denied.reason)
            raise AssertionError("context.abort returned") from denied  # abort always raises
        _current_caller.set(Caller(peer=peer, identity=identity))

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return _guarded(handler, functools.partial(self._admit, handler_call_details.method))


async def _maybe_await(result):
    return await result if inspect.isawaitable(result) else result


def _guarded(handler: grpc.RpcMethodHandler, admit) -> grpc.RpcMethodHandler:
    """The same handler, with `admit(context)` run before the servicer method."""
    serializers = dict(
        request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
    )
    if not handler.request_streaming and not handler.response_streaming:
        inner = handler.unary_unary

        async def unary_unary(request, context):
            await admit(context)
            return await _maybe_await(inner(request, context))

        return grpc.unary_unary_rpc_method_handler(unary_unary, **serializers)

    if not handler.request_streaming:
        inner = handler.unary_stream

        async def unary_stream(request, context):
            await admit(context)
            result = inner(request, context)
            if inspect.isasyncgen(result):
                async for response in result:
                    yield response
            else:  # a coroutine that writes with context.write
                await result

        return grpc.unary_stream_rpc_method_handler(unary_stream, **serializers)

    if not handler.response_streaming:
        inner = handler.stream_unary

        async def stream_unary(request_iterator, context):
            await admit(context)
            return await _maybe_await(inner(request_iterator, context))

        return grpc.stream_unary_rpc_method_handler(stream_unary, **serializers)

    inner = handler.stream_stream

    async def stream_stream(request_iterator, context):
        await admit(context)
        result = inner(request_iterator, context)
        if inspect.isasyncgen(result):
            async for response in result:
                yield response
        else:
            await result

    return grpc.stream_stream_rpc_method_handler(stream_stream, **serializers)
