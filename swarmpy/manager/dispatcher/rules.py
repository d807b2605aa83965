"""The dispatcher's decisions, without I/O: which tasks a node is told about, which status reports are
accepted, how long until the next heartbeat, who the managers are.

Everything here is a pure function of store objects, so the rules can be tested without a server.
"""

from __future__ import annotations

import random
import urllib.parse
from collections.abc import Iterable, Mapping

from swarmpy.api import dispatcher_pb2, objects_pb2

HEARTBEAT_JITTER = 0.1  # the period handed to a node is the configured one ± 10%
GRACE_MULTIPLIER = 3  # a node is DOWN after missing this many periods


def should_know(task: objects_pb2.Task) -> bool:
    """Whether a node is told about a task assigned to it (swarmkit's rule).

    Below ASSIGNED the scheduler has not finished with the task (it may not even fit the node), so its
    configuration is not shared yet. ORPHANED desired states never reach a node.
    """
    return bool(task.node_id) and task.status.state >= objects_pb2.ASSIGNED and task.desired_state <= objects_pb2.REMOVE


def stable_fingerprint(task: objects_pb2.Task) -> bytes:
    """The task as the node needs it: everything but meta and status.

    A node's own status reports change the stored task; echoing them back as assignment changes would only
    make the node re-read what it just said, so changes are detected on this fingerprint.
    """
    stable = objects_pb2.Task()
    stable.CopyFrom(task)
    stable.ClearField("meta")
    stable.ClearField("status")
    return stable.SerializeToString(deterministic=True)


def assignment_changes(
    node_id: str,
    known: Mapping[str, bytes],
    changed: Mapping[str, objects_pb2.Task | None],
) -> list[dispatcher_pb2.AssignmentChange]:
    """The INCREMENTAL changes for `node_id` given the latest version of each changed task (None: deleted).

    `known` maps the tasks the node was already told about to the fingerprint it was told. A task the node
    knows that is deleted, moved to another node or no longer to be known is REMOVEd; a task it should know
    is sent as UPDATE when it is new to the node or its fingerprint changed.
    """
    changes = []
    for task_id, task in changed.items():
        if task is not None and task.node_id == node_id and should_know(task):
            if known.get(task_id) != stable_fingerprint(task):
                changes.append(dispatcher_pb2.AssignmentChange(task=task, action=dispatcher_pb2.AssignmentChange.UPDATE))
        elif task_id in known:
            gone = task if task is not None else objects_pb2.Task(id=task_id)
            changes.append(dispatcher_pb2.AssignmentChange(task=gone, action=dispatcher_pb2.AssignmentChange.REMOVE))
    return changes


def apply_changes(known: dict[str, bytes], changes: Iterable[dispatcher_pb2.AssignmentChange]) -> None:
    """Record what the node has been told."""
    for change in changes:
        if change.action == dispatcher_pb2.AssignmentChange.REMOVE:
            known.pop(change.task.id, None)
        else:
            known[change.task.id] = stable_fingerprint(change.task)


def accepts_status(current: objects_pb2.TaskStatus, reported: objects_pb2.TaskStatus) -> bool:
    """Observed state only moves forward: a report behind the stored state is ignored, and an identical
    one is not worth a write. The same state with new details (a message, a container ID) is taken."""
    if reported.state < current.state:
        return False
    return reported != current


def jittered_period(period_ns: int, rng: random.Random | None = None) -> int:
    """The heartbeat period to hand a node: ± 10%, so that nodes that joined together drift apart."""
    draw = (rng or random).uniform(-HEARTBEAT_JITTER, HEARTBEAT_JITTER)
    return max(1, int(period_ns * (1 + draw)))


def manager_peers(nodes: Iterable[objects_pb2.Node]) -> list[dispatcher_pb2.WeightedPeer]:
    """The managers a node may connect to, leader first then by address, so the list compares stably."""
    managers = [node for node in nodes if node.HasField("manager_status") and node.manager_status.addr]
    managers.sort(key=lambda node: (not node.manager_status.leader, node.manager_status.addr))
    return [dispatcher_pb2.WeightedPeer(addr=node.manager_status.addr, node_id=node.id, weight=1) for node in managers]


def peer_host(peer: str) -> str:
    """The host part of a grpc peer string ("ipv4:10.0.0.2:4242", "ipv6:[::1]:4242"); "" for unix sockets."""
    scheme, _, rest = peer.partition(":")
    if scheme == "ipv4":
        return rest.rsplit(":", 1)[0]
    if scheme == "ipv6":
        host = urllib.parse.unquote(rest).rsplit(":", 1)[0]
        return host.strip("[]")
    return ""
