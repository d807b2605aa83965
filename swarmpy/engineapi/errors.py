"""Errors as the Docker engine gives them: an HTTP status and a message, sent as {"message": ...}.

`EngineError` is raised by handlers; `from_status` turns a control API status (the gRPC code the
servicer chose, and its words) into the status the engine would answer with, using moby's own table
(api/server/httpstatus): bad input 400, not found 404, conflict 409, unavailable 503, and anything else
-- "update out of sequence" included -- 500.
"""

from __future__ import annotations

import grpc

NOT_A_MANAGER = (
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node'
    " to swarm and try again."
)
ALREADY_IN_SWARM = (
    'This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.'
)
NOT_IN_SWARM = "This node is not part of a swarm"

_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
}


class EngineError(Exception):
    """A request answered with an error: `status` is the HTTP status, the message is docker's words."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class BadRequest(EngineError):
    """The client's fault (malformed JSON, a wrong type, an unknown filter): 400, nothing changed."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


class NotFound(EngineError):
    def __init__(self, message: str) -> None:
        super().__init__(404, message)


def from_status(code: grpc.StatusCode, details: str) -> EngineError:
    return EngineError(_HTTP_STATUS.get(code, 500), details or code.name.lower())
