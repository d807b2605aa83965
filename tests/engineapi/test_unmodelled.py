"""A spec field swarmpy does not model is not dropped in silence: create and update answer 201/200
with a Warning naming its path (the engine would have kept it); the docker CLI prints it."""

from __future__ import annotations

import json

import pytest

from swarmpy.engineapi.convert import from_json, to_json
from swarmpy.engineapi.errors import BadRequest
from tests.engineapi.conftest import EngineApiDaemon

pytestmark = pytest.mark.docker


def test_unread_keys_name_only_what_carries_a_value():
    raw = {"Name": "x", "Labels": {"a": "b"}, "TaskTemplate": {"ContainerSpec": {"Image": "busybox", "Nope": 1,
           "Privileges": {"CredentialSpec": {"File": "spec.json"}, "SELinuxContext": {"User": "u"}}}, "ForceUpdate": 0},
           "Mode": {"Replicated": {"Replicas": 1}}, "Empty": {}, "Zero": "", "Extra": [1]}
    spec, warnings = from_json.service_spec_and_unread(raw)
    assert spec.annotations.name == "x"
    assert spec.task.container.privileges.credential_spec.file == "spec.json"
    assert warnings == [
        "swarmpy does not model TaskTemplate.ContainerSpec.Nope: the value sent was not applied",
        "swarmpy does not model TaskTemplate.ContainerSpec.Privileges.SELinuxContext: the value sent was not applied",
        "swarmpy does not model Extra: the value sent was not applied",
    ]
    assert from_json.service_spec_and_unread({"Name": "y", "TaskTemplate": {"ContainerSpec": {"Image": "b"}}})[1] == []


CREDSPEC_WARNING = ("credential spec file://x is for Windows containers (managed service accounts): the engines of "
                    "Linux nodes refuse it, so the service's tasks are rejected there")


def test_credential_specs_are_read_with_moby_s_rules_and_shown_as_moby_shows_them():
    def read(credential):
        raw = {"Name": "c", "TaskTemplate": {"ContainerSpec": {"Image": "b", "Privileges": {"CredentialSpec": credential}}}}
        return from_json.service_spec_and_unread(raw)[0]

    spec = read({"Registry": "gmsa", "File": ""})
    assert spec.task.container.privileges.credential_spec.registry == "gmsa"
    assert to_json.container_spec(spec.task.container)["Privileges"] == {
        "CredentialSpec": {"Config": "", "File": "", "Registry": "gmsa"}, "SELinuxContext": None, "NoNewPrivileges": False}
    with pytest.raises(BadRequest, match='^invalid CredentialSpec: must either provide "file", "registry", or "config"'):
        read({})
    with pytest.raises(BadRequest, match='^invalid CredentialSpec: cannot specify both "config" and "file" credential specs$'):
        read({"Config": "c", "File": "f"})
    with pytest.raises(BadRequest, match='cannot specify both "config", "file", and "registry" credential specs$'):
        read({"Config": "c", "File": "f", "Registry": "r"})


def test_create_and_update_warn_about_unmodelled_fields(manager: EngineApiDaemon, busybox_image):
    body = {"Name": "unmodelled", "Mode": {"Replicated": {"Replicas": 0}},
            "TaskTemplate": {"ContainerSpec": {"Image": busybox_image, "Privileges": {"CredentialSpec": {"File": "x"}}}}}
    created = manager.request("POST", "/v1.41/services/create", json.dumps(body), {"Content-Type": "application/json"})
    assert created.status == 201, created.body
    assert created.json()["Warnings"] == [CREDSPEC_WARNING]  # modelled: the warning is the Linux engines' refusal
    try:
        shown = manager.request("GET", "/v1.41/services/unmodelled").json()
        assert shown["Spec"]["TaskTemplate"]["ContainerSpec"]["Privileges"]["CredentialSpec"]["File"] == "x"
        body["TaskTemplate"]["ContainerSpec"]["Privileges"] = None
        body["Surprise"] = {"Deep": True}
        updated = manager.request("POST", f"/v1.41/services/unmodelled/update?version={shown['Version']['Index']}",
                                  json.dumps(body), {"Content-Type": "application/json"})
        assert updated.status == 200, updated.body
        assert updated.json()["Warnings"] == ["swarmpy does not model Surprise: the value sent was not applied"]
        # the docker CLI prints the same warning the swarmpy CLI does (one control API answer for both doors)
        cli = manager.docker_cli("service", "create", "-d", "--name", "credspec", "--replicas", "0",
                                 "--credential-spec", "file://x", busybox_image, "true")
        assert cli.code == 0, cli
        assert CREDSPEC_WARNING in cli.stderr
    finally:
        manager.docker_cli("service", "rm", "unmodelled", "credspec")


def test_network_create_warns_about_unmodelled_fields_and_the_cli_s_own_body_draws_none(manager: EngineApiDaemon):
    body = {"Name": "unmodelled-net", "Driver": "overlay", "CheckDuplicate": True, "Surprise": {"Deep": 1}}
    created = manager.request("POST", "/v1.41/networks/create", json.dumps(body), {"Content-Type": "application/json"})
    assert created.status == 201, created.body
    try:
        assert created.json()["Warning"] == "swarmpy does not model Surprise: the value sent was not applied"
        cli = manager.docker_cli("network", "create", "-d", "overlay", "--label", "a=b", "unmodelled-cli")
        assert cli.code == 0 and "does not model" not in cli.stderr, cli
    finally:
        manager.docker_cli("network", "rm", "unmodelled-net", "unmodelled-cli")


def test_kinds_without_warnings_in_their_answer_log_what_was_dropped(caplog):
    from swarmpy.api import objects_pb2
    from swarmpy.engineapi.replies import log_unmodelled

    spec, unmodelled = from_json.converted_and_unread(
        lambda fields: from_json.secret_or_config_spec(fields, objects_pb2.SecretSpec),
        {"Name": "s", "Data": "aGk=", "Surprise": 1})
    assert spec.annotations.name == "s"
    with caplog.at_level("WARNING"):
        log_unmodelled("secret create", unmodelled)
    assert "secret create: swarmpy does not model Surprise: the value sent was not applied" in caplog.text
