"""The dispatcher's refusals. Each names the node or session concerned and maps to one gRPC status."""

from __future__ import annotations

import grpc


class DispatcherError(Exception):
    code = grpc.StatusCode.INTERNAL


class DispatcherStopped(DispatcherError):
    """This manager's dispatcher is not running (starting, or leadership moved): not the caller's fault; retry."""

    code = grpc.StatusCode.UNAVAILABLE

    def __init__(self, detail: str = "the dispatcher is not running on this manager") -> None:
        super().__init__(detail)


class SessionInvalid(DispatcherError):
    """The caller named a session the dispatcher does not hold for it (expired, replaced, or from another
    leader); the agent must open a new session."""

    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, node_id: str, session_id: str, reason: str = "") -> None:
        why = f": {reason}" if reason else ""
        super().__init__(f"session {session_id or '(none)'} of node {node_id} is not valid{why}")
        self.node_id = node_id
        self.session_id = session_id


class UnknownNode(DispatcherError):
    """The caller's certificate names a node the store does not have (removed from the swarm)."""

    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, node_id: str) -> None:
        super().__init__(f"node {node_id} is not a member of this swarm (was it removed?)")
        self.node_id = node_id


class RegistrationsThrottled(DispatcherError):
    """Too many nodes are opening sessions with this manager at once (a new leader, after a failover): the
    node is alive and should retry shortly. Not the caller's fault."""

    code = grpc.StatusCode.UNAVAILABLE

    def __init__(self, node_id: str) -> None:
        super().__init__(f"node {node_id}: too many nodes are registering with this manager right now; retry shortly")
