"""Placement preferences: the spread tree (swarmkit's design/topology.md) over simulated nodes."""

from collections import Counter

from swarmpy.api import objects_pb2
from swarmpy.manager.scheduler import NodeInfo, place_group
from swarmpy.manager.scheduler.nodeinfo import task_usage
from tests.manager.test_orchestrator_support import make_node, make_service, make_task

GIB = 2**30


def spread_service(*descriptors: str, name: str = "web") -> objects_pb2.Service:
    service = make_service(name)
    service.spec.task.placement.preferences.extend(objects_pb2.PlacementPreference(spread=d) for d in descriptors)
    return service


def pending(service, count, first_slot=1):
    return [make_task(service, slot, state=objects_pb2.PENDING) for slot in range(first_slot, first_slot + count)]


def zoned(sizes: dict[str, int], **labels_by_zone) -> list[NodeInfo]:
    nodes = []
    for zone, size in sizes.items():
        for index in range(size):
            labels = {"zone": zone} if zone else {}
            labels.update(labels_by_zone.get(zone, {}))
            nodes.append(NodeInfo(make_node(f"{zone or 'none'}-{index}", labels=labels)))
    return nodes


def per_label(result, key="zone"):
    return Counter(info.node.spec.annotations.labels.get(key, "") for _, info in result.assigned)


def test_nine_replicas_over_three_unequal_zones_are_three_per_zone():
    nodes = zoned({"a": 1, "b": 3, "c": 5})
    result = place_group(pending(spread_service("node.labels.zone"), 9), nodes)
    assert not result.unplaced
    assert per_label(result) == {"a": 3, "b": 3, "c": 3}
    # inside a zone the usual spread applies: zone c's 3 tasks on 3 different nodes
    in_c = Counter(info.id for _, info in result.assigned if info.id.startswith("c-"))
    assert sorted(in_c.values()) == [1, 1, 1]


def test_nodes_without_the_label_are_a_group_of_their_own():
    nodes = zoned({"a": 2, "": 4})
    result = place_group(pending(spread_service("node.labels.zone"), 6), nodes)
    assert per_label(result) == {"a": 3, "": 3}


def test_tasks_already_running_count_towards_their_zone():
    nodes = zoned({"a": 1, "b": 1, "c": 1})
    service = spread_service("node.labels.zone")
    for slot, info in enumerate(nodes[:1] * 3, start=1):  # zone a holds 3 already
        info.add(f"old{slot}", task_usage(make_task(service, slot)))
    result = place_group(pending(service, 3, first_slot=4), nodes)
    assert per_label(result) == {"b": 2, "c": 1} or per_label(result) == {"b": 1, "c": 2}
    result = place_group(pending(service, 1, first_slot=7), nodes)
    assert sum(info.service_counts.get(service.id, 0) for info in nodes) == 7


def test_a_full_zone_leaves_the_rest_to_the_others():
    service = spread_service("node.labels.zone")
    service.spec.task.resources.reservations.memory_bytes = 3 * GIB
    nodes = [NodeInfo(make_node("small", memory=4 * GIB, labels={"zone": "a"}))] + zoned({"b": 2})
    result = place_group(pending(service, 6), nodes)
    assert per_label(result) == {"a": 1, "b": 4}
    assert len(result.unplaced) == 1
    assert result.explanation == "no suitable node (insufficient resources on 3 nodes)"


def test_two_preferences_spread_over_zones_then_racks():
    nodes = []
    for zone, racks in (("a", ("r1", "r2")), ("b", ("r3",))):
        for rack in racks:
            for index in range(2):
                nodes.append(NodeInfo(make_node(f"{zone}{rack}{index}", labels={"zone": zone, "rack": rack})))
    result = place_group(pending(spread_service("node.labels.zone", "node.labels.rack"), 8), nodes)
    assert per_label(result) == {"a": 4, "b": 4}
    assert per_label(result, "rack") == {"r1": 2, "r2": 2, "r3": 4}


def test_engine_labels_and_other_descriptors():
    nodes = [NodeInfo(make_node(f"n{i}")) for i in range(3)]
    nodes[0].node.description.engine.labels["disk"] = "ssd"
    result = place_group(pending(spread_service("engine.labels.disk"), 4), nodes)
    assert Counter(info.id for _, info in result.assigned)["n0"] == 2  # its own group: half the tasks
