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


def test_a_bad_node_generic_resource_flag_stops_swarmpyd_naming_it(monkeypatch):
    from click.testing import CliRunner

    from swarmpy.daemon import main

    monkeypatch.setenv("SWARMPY_NODE_GENERIC_RESOURCES", "gpu=GPU-1")
    result = CliRunner().invoke(main, ["--node-generic-resource", "ssd=2", "--node-generic-resource", "fpga"])
    assert result.exit_code == 1
    assert result.output.strip() == ("swarmpyd: --node-generic-resource / SWARMPY_NODE_GENERIC_RESOURCES: "
                                     "invalid generic-resource format `fpga` expected `name=value`")
