"""The control API's typed refusals, and the one table that turns any error into a gRPC status.

Each class says whose fault it was: InvalidArgument and FailedPrecondition are the caller's (bad input,
or a request the cluster's current state forbids); store and Raft errors are translated here so that
every RPC reports the same failure with the same code and the same words. The details string is what
the CLI prints after "Error response from daemon: ", so it is written for users.
"""

from __future__ import annotations

import grpc

from swarmpy.manager.store import Ambiguous, Conflict, Exists, NameConflict, NotFound, StoreError
from swarmpy.raft.errors import LeadershipLost, NotLeader, ProposalDropped, ProposalTooLarge, RaftError

NO_LEADER = "the swarm does not have a leader"
# Trailing metadata of a refusal issued before anything was proposed: whoever forwarded it may send it again.
NOT_APPLIED_KEY = "swarmpy-not-applied"
NOT_APPLIED = ((NOT_APPLIED_KEY, "1"),)


class ControlError(Exception):
    """A request the control API refuses on purpose; `code` is the gRPC status it maps to."""

    code = grpc.StatusCode.UNKNOWN


class InvalidArgument(ControlError):
    """The request is malformed: the caller's fault. The message names the field and the value."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__(f"invalid {field} {show(value)}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason


class FailedPrecondition(ControlError):
    """The request is well formed but the cluster's state forbids it now (e.g. demoting the last manager)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class AlreadyExists(ControlError):
    """The request would create a second of something there may be only one of (the ingress network)."""

    code = grpc.StatusCode.ALREADY_EXISTS


class ObjectNotFound(ControlError):
    """A reference matched nothing, where the store's own NotFound wording does not fit (e.g. logs)."""

    code = grpc.StatusCode.NOT_FOUND


class Unavailable(ControlError):
    """This manager cannot answer now (no leader, no log broker); the caller may retry later."""

    code = grpc.StatusCode.UNAVAILABLE


class Shown(str):
    """A value already formatted for a message (a duration like "-5s"): shown without quotes."""


def show(value: object) -> str:
    """How a value appears in an error: strings quoted (so empty and blank values are visible)."""
    if isinstance(value, Shown):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


def refused_before_proposing(error: Exception) -> bool:
    """Whether the write's proposal was refused at once (nothing reached the log). A call that proposed
    several times re-checks its earlier steps when sent again (RemoveNode's member removal does)."""
    return isinstance(error, (NotLeader, ProposalDropped))


def status_for(error: Exception) -> tuple[grpc.StatusCode, str] | None:
    """The gRPC status for an error raised while serving a request, or None if it is a bug (INTERNAL)."""
    if isinstance(error, ControlError):
        return error.code, str(error)
    if isinstance(error, NotFound):
        return grpc.StatusCode.NOT_FOUND, str(error)
    if isinstance(error, Ambiguous):
        return grpc.StatusCode.INVALID_ARGUMENT, str(error)
    if isinstance(error, (NameConflict, Exists)):
        return grpc.StatusCode.ALREADY_EXISTS, str(error)
    if isinstance(error, Conflict):
        return grpc.StatusCode.ABORTED, str(error)
    if isinstance(error, NotLeader):
        return grpc.StatusCode.UNAVAILABLE, NO_LEADER
    if isinstance(error, LeadershipLost):
        # The write may still commit under the next leader: the caller must re-read before retrying.
        return grpc.StatusCode.UNAVAILABLE, f"{NO_LEADER} (leadership was lost; the change may or may not have been applied)"
    if isinstance(error, ProposalDropped):
        return grpc.StatusCode.UNAVAILABLE, f"the leader could not take the change now, try again: {error}"
    if isinstance(error, ProposalTooLarge):
        return grpc.StatusCode.INVALID_ARGUMENT, f"the request is too large: {error}"
    if isinstance(error, (StoreError, RaftError)):
        return grpc.StatusCode.INTERNAL, str(error)
    return None
