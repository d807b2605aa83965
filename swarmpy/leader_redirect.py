"""The Dispatcher's "not the leader" redirect: the wire contract between a manager and a node's agent.

A manager that does not run the Dispatcher refuses every Dispatcher call UNAVAILABLE with details that
start with NOT_LEADER, and puts the leader's address (or "" when none is known) in the trailing metadata
key LEADER_ADDR_KEY. The agent reads it back with `leader_redirect` and dials the leader at once. Both
sides import this module, so the two halves cannot drift apart.
"""

from __future__ import annotations

import grpc

LEADER_ADDR_KEY = "swarmpy-leader-addr"
NOT_LEADER = "not the leader"


def refusal(leader: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """(details, trailing metadata) for a manager refusing a Dispatcher call; `leader` may be ""."""
    where = f"; the leader is at {leader}" if leader else "; no leader is known yet"
    return NOT_LEADER + where, ((LEADER_ADDR_KEY, leader),)


def leader_redirect(error: grpc.aio.AioRpcError) -> str | None:
    """The leader's address from a "not the leader" refusal, or None if the error is anything else."""
    if error.code() != grpc.StatusCode.UNAVAILABLE or not (error.details() or "").startswith(NOT_LEADER):
        return None
    for key, value in error.trailing_metadata() or ():
        if key == LEADER_ADDR_KEY and value:
            return value if isinstance(value, str) else value.decode()
    return None
