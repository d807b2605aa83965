"""Asking the swarm's leader to add this manager to the Raft group (Raft.Join over mutual TLS)."""

from __future__ import annotations

import logging
import re

import grpc

from swarmpy.api import raft_pb2, raft_pb2_grpc
from swarmpy.ca import tls
from swarmpy.ca.keystore import NodeCredentials

log = logging.getLogger(__name__)

JOIN_TIMEOUT = 20.0  # the leader answers once the membership change is committed


class RaftJoinFailed(Exception):
    """No manager added this node to the Raft group; the message says what each one answered."""


async def join_raft(
    credentials: NodeCredentials, managers: list[str], advertise_addr: str
) -> tuple[int, list]:
    """Try the managers in turn until the leader adds this node; returns (raft id, members)."""
    answers = []
    tried: set[str] = set()
    pending = list(dict.fromkeys(managers))
    while pending:
        addr = pending.pop(0)
        if addr in tried:
            continue
        tried.add(addr)
        async with tls.secure_channel(addr, credentials) as channel:
            try:
                response = await raft_pb2_grpc.RaftStub(channel).Join(
                    raft_pb2.RaftJoinRequest(addr=advertise_addr), timeout=JOIN_TIMEOUT
                )
            except grpc.aio.AioRpcError as error:
                answers.append(f"{addr}: {error.details() or error.code().name}")
                leader = _leader_in(error)
                if leader and leader not in tried:
                    pending.insert(0, leader)
                continue
        log.info("joined the Raft group as member %x through %s", response.raft_id, addr)
        return response.raft_id, list(response.members)
    raise RaftJoinFailed("could not join the managers' Raft group: " + "; ".join(answers))


def _leader_in(error: grpc.aio.AioRpcError) -> str:
    """The leader's address from a follower's refusal ("... the leader is <id> at <host:port>")."""
    match = re.search(r"the leader is \S+ at (\S+:\d+)$", error.details() or "")
    return match.group(1) if match else ""
