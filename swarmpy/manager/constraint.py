"""Placement constraints: `key==value` / `key!=value` expressions matched against a node.

Rules (after swarmkit's manager/constraint):
- Keys: node.id, node.hostname, node.ip, node.role, node.platform.os, node.platform.arch,
  node.labels.<label>, engine.labels.<label>. The fixed keys and the label prefixes are matched without
  regard to case; the label name itself is exact (labels are case-sensitive maps).
- Values are compared without regard to case (`node.role==Manager` matches a manager). A label the node
  lacks compares as the empty string, so `node.labels.zone!=east` holds on a node with no zone label.
- node.ip takes an address or a CIDR network and compares it with the address the node's session came
  from.
- Unlike swarmkit, an unknown key is refused at parse time: swarmkit accepts it and then matches no node,
  which leaves the service pending forever for a typo such as `node.lables.zone==east`.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from swarmpy.api import objects_pb2

_KEY_PATTERN = re.compile(r"^[a-z_][a-z0-9\-_.]+$", re.IGNORECASE)
# No room for other operators (<, >, ~) so that adding them later cannot change the meaning of old specs.
_VALUE_PATTERN = re.compile(r"^[a-z0-9:\-_\s.*()?+\[\]\\^$|/]+$", re.IGNORECASE)
_OPERATORS = ("==", "!=")
_NODE_LABEL_PREFIX = "node.labels."
_ENGINE_LABEL_PREFIX = "engine.labels."
_FIXED_KEYS = frozenset(
    {"node.id", "node.hostname", "node.ip", "node.role", "node.platform.os", "node.platform.arch"}
)


class ConstraintError(ValueError):
    """A placement constraint written by the user is malformed (the caller's fault)."""

    def __init__(self, expression: str, problem: str) -> None:
        super().__init__(f'invalid constraint "{expression}": {problem}')
        self.expression = expression
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Constraint:
    key: str  # as written, except that fixed keys and label prefixes are lower-cased
    equal: bool  # True for ==, False for !=
    value: str

    def __str__(self) -> str:
        return f"{self.key}{'==' if self.equal else '!='}{self.value}"


def parse_constraint(expression: str) -> Constraint:
    for operator in _OPERATORS:
        if operator not in expression:
            continue
        raw_key, raw_value = expression.split(operator, 1)
        key, value = raw_key.strip(), raw_value.strip()
        if not key:
            raise ConstraintError(expression, "the key before the operator is empty")
        if not _KEY_PATTERN.match(key):
            raise ConstraintError(expression, f"key {key!r} has characters other than letters, digits, '.', '-', '_'")
        if not value:
            raise ConstraintError(expression, "the value after the operator is empty")
        if not _VALUE_PATTERN.match(value):
            raise ConstraintError(expression, f"value {value!r} has characters that are not allowed")
        return Constraint(_normalise_key(expression, key), operator == "==", value)
    raise ConstraintError(expression, "expected one of the operators == or !=")


def parse_constraints(expressions: list[str]) -> list[Constraint]:
    """Parse every expression; raises ConstraintError naming the first bad one."""
    return [parse_constraint(expression) for expression in expressions]


def _normalise_key(expression: str, key: str) -> str:
    lowered = key.lower()
    if lowered in _FIXED_KEYS:
        return lowered
    for prefix in (_NODE_LABEL_PREFIX, _ENGINE_LABEL_PREFIX):
        if lowered.startswith(prefix):
            if len(key) == len(prefix):
                raise ConstraintError(expression, f"key {key!r} names no label after {prefix!r}")
            return prefix + key[len(prefix) :]
    known = ", ".join(sorted(_FIXED_KEYS)) + ", node.labels.<name>, engine.labels.<name>"
    raise ConstraintError(expression, f"unknown key {key!r} (known keys: {known})")


def _node_value(key: str, node: objects_pb2.Node) -> str:
    if key == "node.id":
        return node.id
    if key == "node.hostname":
        return node.description.hostname
    if key == "node.role":
        return objects_pb2.NodeRole.Name(node.role)
    if key == "node.platform.os":
        return node.description.platform.os
    if key == "node.platform.arch":
        return node.description.platform.architecture
    if key.startswith(_NODE_LABEL_PREFIX):
        return node.spec.annotations.labels.get(key[len(_NODE_LABEL_PREFIX) :], "")
    if key.startswith(_ENGINE_LABEL_PREFIX):
        return node.description.engine.labels.get(key[len(_ENGINE_LABEL_PREFIX) :], "")
    raise AssertionError(f"constraint key {key!r} escaped parse-time validation")


node_value = _node_value  # the value a key names on a node (placement preferences spread over it)


def _ip_matches(constraint: Constraint, node: objects_pb2.Node) -> bool:
    host = node.status.addr.rsplit(":", 1)[0] if node.status.addr.count(":") == 1 else node.status.addr
    try:
        node_ip = ipaddress.ip_address(host.strip("[]"))
        network = ipaddress.ip_network(constraint.value, strict=False)
    except ValueError:
        # A malformed address matches nothing, whichever the operator (swarmkit does the same).
        return False
    return (node_ip in network) == constraint.equal


def matches(constraints: list[Constraint], node: objects_pb2.Node) -> bool:
    """True when the node satisfies every constraint."""
    for constraint in constraints:
        if constraint.key == "node.ip":
            if not _ip_matches(constraint, node):
                return False
            continue
        same = constraint.value.casefold() == _node_value(constraint.key, node).casefold()
        if same != constraint.equal:
            return False
    return True
