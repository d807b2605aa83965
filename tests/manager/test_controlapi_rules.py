"""The control API's pure parts: validation rules, defaults, names and list filters (no server, no loop)."""

from __future__ import annotations

import re

import pytest

from swarmpy.api import control_pb2, objects_pb2
from swarmpy.manager.controlapi import InvalidArgument
from swarmpy.manager.controlapi import defaults
from swarmpy.manager.controlapi.names import random_service_name
from swarmpy.manager.controlapi.queries import filter_tasks, is_up_to_date
from swarmpy.manager.controlapi.validation import (
    image_reference_problem,
    validate_cluster_spec,
    validate_node_spec,
    validate_service_spec,
)
from swarmpy.units import HOUR, SECOND


@pytest.mark.parametrize(
    "image",
    [
        "nginx",
        "nginx:1.25",
        "library/nginx:latest",
        "localhost:5000/team/app:v1.2-rc3",
        "registry.example.com/a/b/c",
        "swarmpy-test/busybox:latest",
        "busybox@sha256:" + "a" * 64,
        "my_app__x:tag",
        "[::1]:5000/app",
    ],
)
def test_valid_image_references(image):
    assert image_reference_problem(image) is None


@pytest.mark.parametrize(
    "image,problem",
    [
        ("", "an image is required"),
        ("Nginx", "must be lowercase"),
        ("nginx:", "invalid reference format"),
        ("ng inx", "invalid reference format"),
        ("nginx:-tag", "invalid reference format"),
        ("-nginx", "invalid reference format"),
        ("a" * 256, "must not be more than 255 characters"),
    ],
)
def test_invalid_image_references(image, problem):
    assert problem in image_reference_problem(image)


def _spec(name: str = "web") -> objects_pb2.ServiceSpec:
    spec = objects_pb2.ServiceSpec()
    spec.annotations.name = name
    spec.task.container.image = "nginx"
    spec.replicated.replicas = 1
    return spec


def test_a_full_good_spec_passes():
    spec = _spec()
    spec.annotations.labels["tier"] = "front"
    spec.task.container.env.extend(["A=1", "B", "C="])
    spec.task.container.stop_grace_period = 0
    spec.task.container.mounts.add(type=objects_pb2.Mount.BIND, source="/srv", target="/data")
    spec.task.resources.limits.nano_cpus = 500_000_000
    spec.task.resources.reservations.nano_cpus = 250_000_000
    spec.task.restart.condition = objects_pb2.RestartPolicy.ON_FAILURE
    spec.task.restart.delay = 0
    spec.task.placement.constraints.append("node.role==manager")
    spec.update.max_failure_ratio = 1.0
    spec.update.failure_action = objects_pb2.UpdateConfig.ROLLBACK
    spec.endpoint.ports.add(target_port=80, published_port=8080)
    spec.endpoint.ports.add(target_port=80, published_port=8080, protocol=objects_pb2.PortConfig.UDP)
    spec.endpoint.ports.add(target_port=81)
    spec.endpoint.ports.add(target_port=82)  # two auto-assigned ports are not duplicates
    validate_service_spec(spec)
    validate_service_spec(_spec(name=""))


def test_an_error_names_field_value_and_reason_in_one_line():
    spec = _spec()
    spec.task.restart.delay = -3 * SECOND
    with pytest.raises(InvalidArgument) as caught:
        validate_service_spec(spec)
    assert str(caught.value) == "invalid task.restart.delay -3s: must not be negative"
    assert caught.value.field == "task.restart.delay"


def test_an_empty_name_is_allowed_but_a_63_plus_one_is_not():
    spec = _spec()
    spec.annotations.name = ""
    validate_service_spec(spec)
    spec.annotations.name = "a" * 63
    validate_service_spec(spec)
    spec.annotations.name += "a"
    with pytest.raises(InvalidArgument, match="at most 63"):
        validate_service_spec(spec)


def test_global_services_cannot_cap_replicas_per_node_and_rollbacks_cannot_roll_back():
    spec = _spec()
    getattr(spec, "global").SetInParent()
    spec.task.placement.max_replicas = 2
    with pytest.raises(InvalidArgument, match="task.placement.max_replicas 2"):
        validate_service_spec(spec)
    spec = _spec()
    spec.rollback.failure_action = objects_pb2.UpdateConfig.ROLLBACK
    with pytest.raises(InvalidArgument, match="rollback.failure_action"):
        validate_service_spec(spec)


def test_dnsrr_refuses_ingress_ports_but_takes_host_ports():
    spec = _spec()
    spec.endpoint.mode = objects_pb2.EndpointSpec.DNSRR
    spec.endpoint.ports.add(target_port=80, published_port=8080, publish_mode=objects_pb2.PortConfig.HOST)
    validate_service_spec(spec)
    spec.endpoint.ports.add(target_port=81, published_port=8081)
    with pytest.raises(InvalidArgument, match="8081:81/tcp"):
        validate_service_spec(spec)


def test_node_spec_rules():
    validate_node_spec(objects_pb2.NodeSpec(availability=objects_pb2.NodeSpec.PAUSE, desired_role=objects_pb2.MANAGER))
    with pytest.raises(InvalidArgument, match="desired_role 5"):
        validate_node_spec(objects_pb2.NodeSpec(desired_role=5))
    spec = objects_pb2.NodeSpec()
    spec.annotations.labels[" "] = "x"
    with pytest.raises(InvalidArgument, match="annotations.labels key"):
        validate_node_spec(spec)


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda s: setattr(s.orchestration, "task_history_retention_limit", -2), "task_history_retention_limit -2"),
        (lambda s: setattr(s.dispatcher, "heartbeat_period", -SECOND), "heartbeat_period -1s"),
        (lambda s: setattr(s.ca_config, "node_cert_expiry", HOUR - 1), "node_cert_expiry 59m59.999999999s"),
        (lambda s: setattr(s.raft, "election_tick", 1), "election_tick 1"),
    ],
)
def test_bad_cluster_specs(change, message):
    spec = defaults.default_cluster_spec()
    change(spec)
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        validate_cluster_spec(spec)


def test_cluster_spec_edges_that_are_allowed():
    spec = defaults.default_cluster_spec()
    spec.orchestration.task_history_retention_limit = -1  # keep everything, as swarmkit reads it
    spec.ca_config.node_cert_expiry = HOUR
    validate_cluster_spec(spec)
    validate_cluster_spec(objects_pb2.ClusterSpec())  # zeros mean "the default"


def test_cluster_defaults_and_filling():
    spec = defaults.default_cluster_spec()
    assert spec.annotations.name == "default"
    assert spec.orchestration.task_history_retention_limit == 5
    assert spec.dispatcher.heartbeat_period == 5 * SECOND
    assert spec.ca_config.node_cert_expiry == 2160 * HOUR
    assert (spec.raft.snapshot_interval, spec.raft.keep_old_snapshots, spec.raft.log_entries_for_slow_followers) == (
        10_000,
        0,
        500,
    )
    assert (spec.raft.heartbeat_tick, spec.raft.election_tick) == (1, 10)

    filled = defaults.fill_cluster_spec_defaults(objects_pb2.ClusterSpec())
    assert filled.dispatcher.heartbeat_period == 5 * SECOND and filled.raft.election_tick == 10
    assert filled.orchestration.task_history_retention_limit == 0  # zero history is a real choice later on

    requested = objects_pb2.ClusterSpec()
    requested.orchestration.task_history_retention_limit = 2
    for_init = defaults.cluster_spec_for_init(requested)
    assert for_init.orchestration.task_history_retention_limit == 2
    assert for_init.dispatcher.heartbeat_period == 5 * SECOND


def test_effective_service_defaults_keep_what_the_user_set():
    spec = _spec()
    assert defaults.effective_restart_policy(spec.task) == defaults.default_restart_policy()
    spec.task.restart.condition = objects_pb2.RestartPolicy.NONE
    spec.task.restart.max_attempts = 3
    policy = defaults.effective_restart_policy(spec.task)
    assert (policy.condition, policy.max_attempts, policy.delay) == (objects_pb2.RestartPolicy.NONE, 3, 5 * SECOND)
    spec.update.monitor = 0
    assert defaults.effective_update_config(spec).monitor == 0  # an explicit zero is kept
    assert defaults.effective_rollback_config(spec).monitor == 5 * SECOND
    assert defaults.effective_stop_grace_period(spec.task.container) == 10 * SECOND
    spec.task.container.stop_grace_period = 0
    assert defaults.effective_stop_grace_period(spec.task.container) == 0


def test_random_names_avoid_taken_ones():
    taken: set[str] = set()
    for _ in range(200):
        name = random_service_name(taken.__contains__)
        assert name not in taken and re.fullmatch(r"[a-z]+_[a-z]+\d*", name)
        taken.add(name)


def test_up_to_date_is_not_dirty_rather_than_same_spec_version():
    # A scale writes a new spec version but leaves the task spec alone: the tasks it kept are current
    # (the docker CLI's converge filter, `_up-to-date`, would otherwise never see the service converge).
    service = objects_pb2.Service(id="s1")
    service.spec_version.index = 3
    service.spec.task.container.image = "busybox:2"
    current = objects_pb2.Task(id="a", service_id="s1", spec_version=objects_pb2.Version(index=3))
    current.spec.container.image = "busybox:2"
    kept_by_scale = objects_pb2.Task(id="b", service_id="s1", spec_version=objects_pb2.Version(index=2))
    kept_by_scale.spec.container.image = "busybox:2"
    outdated = objects_pb2.Task(id="d", service_id="s1", spec_version=objects_pb2.Version(index=2))
    outdated.spec.container.image = "busybox:1"
    orphan = objects_pb2.Task(id="c", service_id="gone", spec_version=objects_pb2.Version(index=3))
    services = {"s1": service}
    assert [is_up_to_date(t, services) for t in (current, kept_by_scale, outdated, orphan)] == [True, True, False, False]

def _job_spec(total: int, concurrent: int) -> objects_pb2.ServiceSpec:
    spec = _spec()
    spec.replicated_job.total_completions = total
    spec.replicated_job.max_concurrent = concurrent
    return spec


@pytest.mark.parametrize("change, field", [
    (lambda s: s.task.container.capability_add.append("NET_ADMIN"), "task.container.capability_add"),
    (lambda s: s.task.container.ulimits.add(name="nofile", soft=3, hard=2), "task.container.ulimits"),
    (lambda s: s.task.container.sysctls.__setitem__("", "1"), "task.container.sysctls"),
    (lambda s: setattr(s.task.container, "isolation", "hyperv"), "task.container.isolation"),
])
def test_container_flags_are_checked_for_every_api_client(change, field):
    spec = _spec()
    spec.task.container.capability_add.append("CAP_NET_ADMIN")
    spec.task.container.ulimits.add(name="nofile", soft=1, hard=2)
    validate_service_spec(spec)
    change(spec)
    with pytest.raises(InvalidArgument) as caught:
        validate_service_spec(spec)
    assert caught.value.field == field


def test_jobs_refuse_more_concurrency_than_completions_and_update_configs():
    validate_service_spec(_job_spec(3, 2))
    with pytest.raises(InvalidArgument, match="cannot exceed the total number of completions"):
        validate_service_spec(_job_spec(2, 3))
    spec = _job_spec(3, 3)
    spec.update.parallelism = 1
    with pytest.raises(InvalidArgument, match="not supported for jobs"):
        validate_service_spec(spec)
