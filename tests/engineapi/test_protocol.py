"""The Engine API's protocol as the clients depend on it: ping headers, version negotiation, docker's
error shape and words, and bad input refused with nothing changed. Real swarmpyd, raw HTTP."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.docker


def _assert_error(answer, status: int, words: str) -> None:
    assert answer.status == status, (answer.status, answer.body)
    assert answer.headers["Content-Type"] == "application/json"  # exactly: a charset suffix breaks the CLI
    message = answer.json()["message"]
    assert words in message, message


def test_ping_and_versions_outside_a_swarm(bare):
    head = bare.request("HEAD", "/_ping")
    assert head.status == 200 and head.body == b""
    assert head.headers["Swarm"] == "inactive"
    assert head.headers["Ostype"] == "linux"
    api_version = head.headers["Api-Version"]
    major, minor = map(int, api_version.split("."))
    assert (1, 24) <= (major, minor) <= (1, 50)

    get = bare.request("GET", "/v1.50/_ping")
    assert (get.status, get.body, get.headers["Api-Version"]) == (200, b"OK", api_version)

    _assert_error(bare.request("GET", "/v1.51/info"), 400,
                  "client version 1.51 is too new. Maximum supported API version is 1.50")
    _assert_error(bare.request("GET", "/v1.23/info"), 400, "client version 1.23 is too old")

    version = bare.request("GET", "/version").json()
    assert version["ApiVersion"] == api_version and version["MinAPIVersion"] == "1.24"
    assert any(component["Name"] == "swarmpyd" for component in version["Components"])

    info = bare.request("GET", f"/v{api_version}/info").json()
    assert info["Swarm"]["LocalNodeState"] == "inactive" and info["Swarm"]["ControlAvailable"] is False

    # Not in a swarm: docker's 503 and words, for every swarm object kind.
    for path in ("/swarm", "/services", "/nodes", "/tasks", "/secrets"):
        _assert_error(bare.request("GET", path), 503, 'This node is not a swarm manager. Use "docker swarm init"')
    _assert_error(bare.request("POST", "/swarm/leave"), 503, "This node is not part of a swarm")
    _assert_error(bare.request("GET", "/services/x/nonsense"), 404, "page not found")


def test_bad_input_is_refused_and_changes_nothing(manager):
    before = manager.state()
    cases = [
        ("POST", "/services/create", b"{not json", 400, "invalid JSON"),
        ("POST", "/services/create", b"[1, 2]", 400, "must be an object"),
        ("POST", "/services/create",
         json.dumps({"Name": "bad", "TaskTemplate": {"ContainerSpec": {"Image": "x"}}, "Mode": {"Replicated": {"Replicas": "3"}}}),
         400, "Mode.Replicated.Replicas must be an integer"),
        ("POST", "/services/create",
         json.dumps({"Name": "bad", "TaskTemplate": {"ContainerSpec": {"Image": "x"}, "RestartPolicy": {"Condition": "sometimes"}}}),
         400, "TaskTemplate.RestartPolicy.Condition"),
        ("POST", "/services/create", json.dumps({"Name": "bad", "TaskTemplate": {"ContainerSpec": {}}}), 400, "image"),
        ("GET", "/services?filters=" + "%7B%22colour%22%3A%5B%22red%22%5D%7D", None, 400, "invalid filter 'colour'"),
        ("GET", "/services?filters=nope", None, 400, "invalid filter"),
        ("POST", "/nodes/self/update?version=banana", b"{}", 400, "invalid node version 'banana'"),
        ("POST", "/services/nosuch/update?version=1", json.dumps({"TaskTemplate": {"ContainerSpec": {"Image": "x"}}}),
         404, "no such service: nosuch"),
        ("GET", "/tasks?filters=%7B%22desired-state%22%3A%5B%22dancing%22%5D%7D", None, 400, "desired-state"),
        ("POST", "/services/create", b"{" + b" " * (5 * 1024 * 1024) + b"}", 413, "too large"),
    ]
    for method, path, body, status, words in cases:
        _assert_error(manager.request(method, path, body, {"Content-Type": "application/json"}), status, words)
    assert manager.state() == before


def test_versions_and_name_conflicts_have_dockers_statuses(manager, image):
    spec = {"Name": "eapi-conflict", "TaskTemplate": {"ContainerSpec": {"Image": image, "Args": ["sleep", "300"]}}}
    created = manager.request("POST", "/v1.41/services/create", json.dumps(spec))
    assert created.status == 201, created.body
    service_id = created.json()["ID"]
    try:
        _assert_error(manager.request("POST", "/services/create", json.dumps(spec)), 409, "already exists")
        current = manager.request("GET", f"/services/{service_id}").json()
        stale = current["Version"]["Index"] - 1
        _assert_error(manager.request("POST", f"/services/{service_id}/update?version={stale}", json.dumps(spec)),
                      500, "update out of sequence")
        # docker-py spells keys in lower case; the engine matches them case-insensitively.
        lowered = {"name": "eapi-conflict", "taskTemplate": {"containerspec": {"image": image}},
                   "mode": {"replicated": {"replicas": 0}}}
        updated = manager.request("POST", f"/services/{service_id}/update?version={current['Version']['Index']}",
                                  json.dumps(lowered))
        assert updated.status == 200, updated.body
        shown = manager.request("GET", f"/services/{service_id}?insertDefaults=true").json()
        assert shown["Spec"]["Mode"] == {"Replicated": {"Replicas": 0}}
        assert shown["Spec"]["UpdateConfig"]["FailureAction"] == "pause"
        assert shown["Spec"]["TaskTemplate"]["RestartPolicy"]["Condition"] == "any"
    finally:
        manager.request("DELETE", f"/services/{service_id}")
