"""What a node says about itself: engine labels from `docker info`, generic resources from the environment."""

import pytest

from swarmpy.daemon.worker_side import describe_node, engine_labels_of, node_generic_resources


def test_engine_labels_come_from_docker_info():
    assert engine_labels_of({"Labels": ["disk=ssd", "region=eu=west", "bare"]}) == {
        "disk": "ssd", "region": "eu=west", "bare": ""}
    assert engine_labels_of({"Labels": None}) == {}
    described = describe_node("h", "28.2", engine_labels={"disk": "ssd"})
    assert dict(described.engine.labels) == {"disk": "ssd"}


def test_generic_resources_from_the_environment(monkeypatch):
    monkeypatch.setenv("SWARMPY_NODE_GENERIC_RESOURCES", "gpu=2, ssd=SSD-1")
    assert [(r.kind, r.WhichOneof("value")) for r in node_generic_resources()] == [("gpu", "discrete"), ("ssd", "named")]
    monkeypatch.setenv("SWARMPY_NODE_GENERIC_RESOURCES", "gpu")
    with pytest.raises(ValueError, match="expected `name=value`"):
        node_generic_resources()
