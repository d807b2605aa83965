"""The CA as a manager serves it: writes go to the leader.

Issuance creates a node and renewal records the certificate it signed on the node object (the CA
rotation counts who has rotated from there): both are writes only the leader can make, so a follower
forwards the request to the leader. Issuance is forwarded whole (the leader checks the token again);
a renewal is forwarded with the caller's node ID in `forwarded_node_id`, which the leader believes only
because the forwarding peer holds a manager certificate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc

from swarmpy.api import ca_pb2, ca_pb2_grpc, objects_pb2
from swarmpy.ca.authz import caller_identity
from swarmpy.ca.server import CAServicer

from .control_router import FORWARD_TIMEOUT, NO_LEADER
from .store import retry_conflicts
from .store.memory import clone

if TYPE_CHECKING:
    from .manager import Manager


def issued_certificate(node_id: str, role: int, cert_pem: bytes) -> objects_pb2.Certificate:
    """The node object's record of the certificate the CA just gave it."""
    return objects_pb2.Certificate(
        role=role, certificate=cert_pem, cn=node_id,
        status=objects_pb2.IssuanceStatus(state=objects_pb2.IssuanceStatus.ISSUED),
    )


class LeaderCAServicer(CAServicer):
    def __init__(self, manager: Manager, current_cluster: Any, current_node: Any) -> None:
        super().__init__(manager._issue_certificate, current_cluster, current_node, record=self._record)
        self._manager = manager

    async def _record(self, node_id: str, role: int, cert_pem: bytes) -> None:
        store = self._manager.store

        def write(tx: Any) -> None:
            node = tx.get_node(node_id)
            if node is None:
                return  # removed meanwhile: its certificate no longer opens anything
            updated = clone(node)
            updated.certificate.CopyFrom(issued_certificate(node_id, role, cert_pem))
            tx.update("node", updated)

        await retry_conflicts(lambda: store.update(write), what=f"certificate of node {node_id}")

    def _leads(self) -> bool:
        driver = self._manager.driver
        return driver is not None and driver.is_leader

    async def _forward(self, method: str, request: Any, context: grpc.aio.ServicerContext) -> Any:
        channel = self._manager._leader_channel()
        if channel is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, NO_LEADER)
        try:
            return await getattr(ca_pb2_grpc.CAStub(channel), method)(request, timeout=FORWARD_TIMEOUT)
        except grpc.aio.AioRpcError as error:
            await context.abort(error.code(), error.details() or "")

    async def IssueNodeCertificate(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if self._leads():
            return await super().IssueNodeCertificate(request, context)
        return await self._forward("IssueNodeCertificate", request, context)

    async def RenewNodeCertificate(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        if self._leads():
            return await super().RenewNodeCertificate(request, context)
        forwarded = ca_pb2.RenewNodeCertificateRequest()
        forwarded.CopyFrom(request)
        caller = caller_identity()
        if not (caller.is_manager and forwarded.forwarded_node_id):
            # Whatever a node wrote there itself is replaced: the leader will believe this field.
            forwarded.forwarded_node_id = caller.node_id
        return await self._forward("RenewNodeCertificate", forwarded, context)

