"""The CA gRPC service a manager serves: root CA certificate, issuance against a join token, renewal.

The servicer decides who gets a certificate and with which role; it does not create nodes. Issuance
calls the injected `issue(role, csr_pem, availability, advertise_addr) -> (node_id, cert_pem,
cluster_id)`, which the manager wires to the store (create the node through Raft, then sign, e.g. with
`sign_for_cluster`). The token and CSR are checked before `issue` runs, so nothing is created for a
refused request. Renewal re-signs for the identity in the caller's current certificate, which the
authorization layer (swarmpy.ca.authz) has already verified.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import grpc

from swarmpy.api import ca_pb2, ca_pb2_grpc, objects_pb2
from swarmpy.ca.authz import caller_identity, current_caller
from swarmpy.ca.certs import DEFAULT_NODE_CERT_EXPIRY, check_certificate_request, sign_node_csr
from swarmpy.ca.errors import (
    InvalidCertificateRequest,
    InvalidJoinTokenSecret,
    JoinTokenForOtherSwarm,
    MalformedJoinToken,
)
from swarmpy.ca.rotation import signer
from swarmpy.ca.tokens import role_for_join_token
from swarmpy.raft.errors import RaftError

logger = logging.getLogger(__name__)

IssueCertificate = Callable[[int, bytes, int, str], Awaitable[tuple[str, bytes, str]]]
# Records a certificate issued by renewal on the node object (node_id, role, cert_pem).
RecordCertificate = Callable[[str, int, bytes], Awaitable[None]]


def node_cert_expiry_seconds(cluster: objects_pb2.Cluster) -> float:
    """The cluster's node certificate lifetime; 0 (unset) means the swarmkit default of 90 days."""
    configured = cluster.spec.ca_config.node_cert_expiry  # nanoseconds, like every duration in the API
    return configured / 1e9 if configured > 0 else DEFAULT_NODE_CERT_EXPIRY.total_seconds()


async def sign_for_cluster(cluster: objects_pb2.Cluster, csr_pem: bytes, node_id: str, role: int) -> bytes:
    """Sign a node certificate with the cluster's CA and configured lifetime (CPU work off the loop).

    During a root rotation that is the new root's key, and the certificate comes with the cross-signed
    new root after it, so nodes still trusting only the old root accept it (swarmpy.ca.rotation).
    """
    key_pem, cert_pem, chain_pem = signer(cluster.root_ca)
    leaf = await asyncio.to_thread(
        sign_node_csr, key_pem, cert_pem, csr_pem, node_id, role, cluster.id, node_cert_expiry_seconds(cluster)
    )
    return leaf + chain_pem


class CAServicer(ca_pb2_grpc.CAServicer):
    """`current_cluster` returns the cluster object (id, spec, root CA and join tokens) as of now."""

    def __init__(
        self,
        issue: IssueCertificate,
        current_cluster: Callable[[], objects_pb2.Cluster | None],
        current_node: Callable[[str], objects_pb2.Node | None] | None = None,
        record: RecordCertificate | None = None,
    ) -> None:
        self._issue = issue
        # Where a renewal is written down (the leader's store), so a CA rotation sees who has rotated.
        self._record = record
        self._current_cluster = current_cluster
        # The node as the store has it: renewal signs its current `role` (promotion and demotion reach
        # the certificate this way) and refuses nodes removed from the swarm. Without it, the old role.
        self._current_node = current_node

    async def _cluster(self, context: grpc.aio.ServicerContext) -> objects_pb2.Cluster:
        cluster = self._current_cluster()
        if cluster is None or not cluster.root_ca.ca_cert:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "this manager has no swarm root CA yet")
        return cluster

    async def GetRootCACertificate(self, request, context):
        cluster = await self._cluster(context)
        return ca_pb2.GetRootCACertificateResponse(certificate=cluster.root_ca.ca_cert)

    async def IssueNodeCertificate(self, request, context):
        cluster = await self._cluster(context)
        peer = current_caller().peer
        try:
            role = role_for_join_token(request.token, cluster.root_ca.join_tokens, cluster.root_ca.ca_cert)
        except MalformedJoinToken as exc:
            logger.info("refused certificate for %s: %s", peer, exc)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed join token: {exc}")
        except JoinTokenForOtherSwarm:
            logger.info("refused certificate for %s: join token of another swarm", peer)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "join token is for a different swarm")
        except InvalidJoinTokenSecret:
            logger.info("refused certificate for %s: invalid join token", peer)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "invalid join token")
        try:
            check_certificate_request(request.csr)
        except InvalidCertificateRequest as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            node_id, cert_pem, cluster_id = await self._issue(
                role, request.csr, request.availability, request.advertise_addr
            )
        except RaftError as exc:  # no leader, or it changed meanwhile: nothing was created; the joiner retries
            logger.info("could not issue a certificate to %s now: %s", peer, exc)
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"the swarm cannot admit nodes right now: {exc}")
        logger.info("issued %s certificate for node %s to %s", objects_pb2.NodeRole.Name(role), node_id, peer)
        return ca_pb2.IssueNodeCertificateResponse(
            node_id=node_id, certificate=cert_pem, role=role, cluster_id=cluster_id
        )

    async def RenewNodeCertificate(self, request, context):
        cluster = await self._cluster(context)
        identity = caller_identity()
        node_id, role = identity.node_id, identity.role
        if request.forwarded_node_id:
            # A follower passing on a node's renewal: only a manager (which holds the CA key anyway) may.
            if not identity.is_manager:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, "only managers forward certificate renewals")
            node_id = request.forwarded_node_id
        if self._current_node is not None:
            node = self._current_node(node_id)
            if node is None:
                logger.warning("refused renewal for node %s: it was removed from the swarm", node_id)
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"node {node_id} was removed from the swarm")
            role = node.role
        elif request.forwarded_node_id:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "this CA cannot look up forwarded nodes")
        try:
            cert_pem = await sign_for_cluster(cluster, request.csr, node_id, role)
        except InvalidCertificateRequest as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if self._record is not None:
            try:
                await self._record(node_id, role, cert_pem)
            except RaftError as exc:  # nothing handed out yet: the node keeps its certificate and retries
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"cannot record the renewed certificate now: {exc}")
        logger.info("renewed certificate of node %s", node_id)
        return ca_pb2.RenewNodeCertificateResponse(certificate=cert_pem)
