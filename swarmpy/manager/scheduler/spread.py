"""Placement preferences: spreading a service's tasks over groups of nodes (swarmkit's
design/topology.md), without I/O.

`--placement-pref spread=node.labels.zone` splits the nodes that pass the filters by the value of that
label; a node without the label is in the group of the empty value, a group like any other. Each
further preference splits every group again, so the preferences make a tree whose leaves are sets of
nodes. Tasks go down the tree level by level: at each level the new tasks are shared out so that the
branches' task counts (tasks of this service already there plus new ones) come out as even as they can,
the emptiest branches first, and a branch that runs out of room (its nodes fail the filters) is set
aside while the rest are evened out again. Inside a leaf the usual order applies (fewest tasks of the
service, then fewest tasks, then node ID). So 9 replicas over zones of 1, 3 and 5 nodes are 3 per zone,
not one per node.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from swarmpy.manager.constraint import node_value

from .nodeinfo import NodeInfo
from .placement import Filler

_LABEL_PREFIXES = ("node.labels.", "engine.labels.")


@dataclass(eq=False)
class _Branch:
    key: str
    tasks: int = 0                                   # tasks of the service on the branch's nodes
    nodes: list[NodeInfo] = field(default_factory=list)
    children: list[_Branch] | None = None            # None: a leaf


def _value(descriptor: str, info: NodeInfo) -> str:
    if descriptor.startswith(_LABEL_PREFIXES):
        return node_value(descriptor, info.node)
    return ""  # swarmkit spreads only over labels: any other descriptor is one group


def _build(key: str, nodes: list[NodeInfo], descriptors: list[str], service_id: str) -> _Branch:
    branch = _Branch(key, sum(info.service_counts.get(service_id, 0) for info in nodes), nodes)
    if descriptors:
        groups: dict[str, list[NodeInfo]] = {}
        for info in nodes:
            groups.setdefault(_value(descriptors[0], info), []).append(info)
        branch.children = [_build(value, members, descriptors[1:], service_id) for value, members in sorted(groups.items())]
    return branch


def _schedule(count: int, branch: _Branch, filler: Filler) -> int:
    if branch.children is None:
        placed = filler.fill(filler.heap_of(branch.nodes), count)
        branch.tasks += placed
        return placed
    scheduled = 0
    no_room: set[int] = set()
    children = branch.children
    while scheduled < count and len(no_room) < len(children):
        # even out the branches that still have room: what they hold now plus what is left to place
        usable_tasks = sum(child.tasks for child in children if id(child) not in no_room)
        desired, remainder = divmod(usable_tasks + count - scheduled, len(children) - len(no_room))
        progressed, closed = False, len(no_room)
        for child in sorted(children, key=lambda c: (c.tasks, c.key)):
            if id(child) in no_room or scheduled >= count:
                continue
            if child.tasks < desired or (child.tasks == desired and remainder > 0):
                wanted = desired - child.tasks + (1 if remainder > 0 else 0)
                got = _schedule(wanted, child, filler)
                scheduled += got
                progressed = progressed or got > 0
                if got < wanted:
                    no_room.add(id(child))
                elif remainder > 0:
                    remainder -= 1
        if not progressed and len(no_room) == closed:
            break  # every open branch is already above the even share: nothing more to even out
    branch.tasks += scheduled
    return scheduled


def place_spread(filler: Filler, nodes: list[NodeInfo], descriptors: list[str]) -> int:
    """Place the filler's tasks on `nodes` (those that passed the filters) by the spread tree."""
    tree = _build("", nodes, descriptors, filler.requirements.service_id)
    return _schedule(len(filler.tasks), tree, filler)
