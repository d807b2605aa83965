"""A spec field swarmpy does not model is not dropped in silence: create and update answer 201/200
with a Warning naming its path (the engine would have kept it); the docker CLI prints it."""

from __future__ import annotations

import json

import pytest

from swarmpy.engineapi.convert import from_json
from tests.engineapi.conftest import EngineApiDaemon

pytestmark = pytest.mark.docker


def test_unread_keys_name_only_what_carries_a_value():
    raw = {"Name": "x", "Labels": {"a": "b"}, "TaskTemplate": {"ContainerSpec": {"Image": "busybox", "Nope": 1,
           "Privileges": {"CredentialSpec": {"File": "spec.json"}}}, "ForceUpdate": 0},
           "Mode": {"Replicated": {"Replicas": 1}}, "Empty": {}, "Zero": "", "Extra": [1]}
    spec, warnings = from_json.service_spec_and_unread(raw)
    assert spec.annotations.name == "x"
    assert warnings == [
        "swarmpy does not model TaskTemplate.ContainerSpec.Nope: the value sent was not applied",
        "swarmpy does not model TaskTemplate.ContainerSpec.Privileges: the value sent was not applied",
        "swarmpy does not model Extra: the value sent was not applied",
    ]
    assert from_json.service_spec_and_unread({"Name": "y", "TaskTemplate": {"ContainerSpec": {"Image": "b"}}})[1] == []


def test_create_and_update_warn_about_unmodelled_fields(manager: EngineApiDaemon, busybox_image):
    body = {"Name": "unmodelled", "Mode": {"Replicated": {"Replicas": 0}},
            "TaskTemplate": {"ContainerSpec": {"Image": busybox_image, "Privileges": {"CredentialSpec": {"File": "x"}}}}}
    created = manager.request("POST", "/v1.41/services/create", json.dumps(body), {"Content-Type": "application/json"})
    assert created.status == 201, created.body
    assert created.json()["Warnings"] == [
        "swarmpy does not model TaskTemplate.ContainerSpec.Privileges: the value sent was not applied"]
    try:
        shown = manager.request("GET", "/v1.41/services/unmodelled").json()
        body["TaskTemplate"]["ContainerSpec"]["Privileges"] = None
        body["Surprise"] = {"Deep": True}
        updated = manager.request("POST", f"/v1.41/services/unmodelled/update?version={shown['Version']['Index']}",
                                  json.dumps(body), {"Content-Type": "application/json"})
        assert updated.status == 200, updated.body
        assert updated.json()["Warnings"] == ["swarmpy does not model Surprise: the value sent was not applied"]
        # the docker CLI shows the warning of what it cannot have applied
        cli = manager.docker_cli("service", "create", "-d", "--name", "credspec", "--replicas", "0",
                                 "--credential-spec", "file://spec.json", busybox_image, "true")
        assert cli.code == 0, cli
        assert "swarmpy does not model TaskTemplate.ContainerSpec.Privileges" in cli.stderr
    finally:
        manager.docker_cli("service", "rm", "unmodelled", "credspec")
