"""Placement constraints: parsing (with errors naming the constraint) and matching against nodes."""

import pytest

from swarmpy.api import objects_pb2
from swarmpy.manager.constraint import ConstraintError, matches, parse_constraints
from tests.manager.test_orchestrator_support import make_node


def node(**kwargs):
    n = make_node("abc123", hostname="web-1", labels={"zone": "east", "Disk": "SSD"}, **kwargs)
    n.description.engine.labels["storage"] = "zfs"
    n.status.addr = "10.0.1.7"
    return n


def test_parse_accepts_both_operators_and_strips_spaces():
    [eq, ne] = parse_constraints(["node.role == manager", "node.labels.zone!=west"])
    assert (eq.key, eq.equal, eq.value) == ("node.role", True, "manager")
    assert (ne.key, ne.equal, ne.value) == ("node.labels.zone", False, "west")


def test_fixed_keys_and_label_prefixes_ignore_case_but_label_names_do_not():
    [c] = parse_constraints(["Node.Labels.Disk==ssd"])
    assert c.key == "node.labels.Disk"


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("node.role", "expected one of the operators == or !="),
        ("node.role>manager", "expected one of the operators"),
        ("==manager", "the key before the operator is empty"),
        ("node.role==", "the value after the operator is empty"),
        ("node.lables.zone==east", "unknown key 'node.lables.zone'"),
        ("node.labels.==x", "names no label"),
        ("node.role==man<ager", "has characters that are not allowed"),
        ("no de==x", "has characters other than"),
    ],
)
def test_parse_errors_name_the_constraint_and_the_problem(expression, problem):
    with pytest.raises(ConstraintError) as caught:
        parse_constraints(["node.id==ok", expression])
    assert str(caught.value).startswith(f'invalid constraint "{expression}": ')
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("node.id==abc123", True),
        ("node.id!=abc123", False),
        ("node.hostname==WEB-1", True),  # values compare without case
        ("node.hostname!=web-2", True),
        ("node.role==worker", True),
        ("node.role==manager", False),
        ("node.labels.zone==EAST", True),
        ("node.labels.zone!=east", False),
        ("node.labels.Disk==ssd", True),
        ("node.labels.disk==ssd", False),  # label names are exact: "disk" is missing, compares as ""
        ("node.labels.rack!=r1", True),  # a missing label is "", which differs from r1
        ("engine.labels.storage==zfs", True),
        ("node.platform.os==Linux", True),
        ("node.platform.arch==x86_64", True),
        ("node.ip==10.0.1.7", True),
        ("node.ip==10.0.0.0/16", True),
        ("node.ip!=10.0.0.0/16", False),
        ("node.ip==not-an-address", False),
    ],
)
def test_matching(expression, expected):
    assert matches(parse_constraints([expression]), node()) is expected


def test_all_constraints_must_hold():
    constraints = parse_constraints(["node.labels.zone==east", "node.role==manager"])
    assert not matches(constraints, node())
    assert matches(constraints, node(role=objects_pb2.MANAGER))
    assert matches([], node())
