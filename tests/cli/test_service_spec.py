import pytest

from swarmpy.api import objects_pb2
from swarmpy.cli.errors import FlagError
from swarmpy.cli.service_spec import apply_service_update, build_service_spec
from swarmpy.cli.value_parsers import parse_port


def test_minimal_spec_is_one_replica_and_leaves_defaults_to_the_daemon():
    spec = build_service_spec({"image": "busybox"})
    assert spec.task.container.image == "busybox"
    assert spec.WhichOneof("mode") == "replicated" and spec.replicated.replicas == 1
    assert not spec.task.HasField("restart")
    assert not spec.HasField("update") and not spec.HasField("rollback")


def test_full_spec_from_flags(tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("FROM_FILE=1\n")
    spec = build_service_spec({
        "image": "nginx:1.25", "args": ("sleep", "100"), "name": "web", "replicas": 3,
        "env": ("A=1",), "env_file": (str(env_file),), "label": ("tier=front",), "container_label": ("c=1",),
        "constraint": ("node.role==worker",), "placement_pref": ("spread=node.labels.zone",),
        "replicas_max_per_node": 2, "publish": (parse_port("8080:80"),),
        "limit_cpu": 500_000_000, "limit_memory": 512 * 1024**2, "reserve_cpu": 250_000_000, "reserve_memory": 1024**2,
        "restart_condition": "on-failure", "restart_delay": 10**9, "restart_max_attempts": 3,
        "update_parallelism": 2, "update_failure_action": "rollback", "update_order": "start-first",
        "rollback_monitor": 2 * 10**9, "workdir": "/srv", "user": "nobody", "hostname": "h",
        "entrypoint": "/bin/sh -c", "stop_grace_period": 3 * 10**9,
    })
    container = spec.task.container
    assert spec.annotations.name == "web" and dict(spec.annotations.labels) == {"tier": "front"}
    assert list(container.args) == ["sleep", "100"] and list(container.command) == ["/bin/sh", "-c"]
    assert list(container.env) == ["FROM_FILE=1", "A=1"]
    assert dict(container.labels) == {"c": "1"}
    assert (container.dir, container.user, container.hostname, container.stop_grace_period) == ("/srv", "nobody", "h", 3 * 10**9)
    assert spec.replicated.replicas == 3
    assert list(spec.task.placement.constraints) == ["node.role==worker"]
    assert spec.task.placement.preferences[0].spread == "node.labels.zone"
    assert spec.task.placement.max_replicas == 2
    assert spec.task.resources.limits.nano_cpus == 500_000_000
    assert spec.task.resources.limits.memory_bytes == 512 * 1024**2
    assert spec.task.resources.reservations.nano_cpus == 250_000_000
    assert spec.task.restart.condition == objects_pb2.RestartPolicy.ON_FAILURE
    assert spec.task.restart.delay == 10**9 and spec.task.restart.max_attempts == 3
    assert spec.update.parallelism == 2 and spec.update.failure_action == objects_pb2.UpdateConfig.ROLLBACK
    assert spec.update.order == objects_pb2.UpdateConfig.START_FIRST
    assert spec.rollback.parallelism == 1 and spec.rollback.monitor == 2 * 10**9
    port = spec.endpoint.ports[0]
    assert (port.published_port, port.target_port, port.protocol) == (8080, 80, objects_pb2.PortConfig.TCP)


def test_restart_flags_default_condition_to_any():
    spec = build_service_spec({"image": "busybox", "restart_delay": 10**9})
    assert spec.task.restart.condition == objects_pb2.RestartPolicy.ANY


def test_global_mode_rejects_replica_flags():
    assert build_service_spec({"image": "x", "mode": "global"}).WhichOneof("mode") == "global"
    with pytest.raises(FlagError, match="replicas can only be used with replicated"):
        build_service_spec({"image": "x", "mode": "global", "replicas": 2})
    with pytest.raises(FlagError, match="replicas-max-per-node"):
        build_service_spec({"image": "x", "mode": "global", "replicas_max_per_node": 2})


def test_replicas_zero_is_kept():
    assert build_service_spec({"image": "x", "replicas": 0}).replicated.replicas == 0


def _existing_spec():
    spec = build_service_spec({"image": "busybox:1", "env": ("A=1", "B=2"), "label": ("keep=1", "drop=1"),
                               "constraint": ("node.role==worker", "node.labels.x==1"), "replicas": 2,
                               "publish": (parse_port("8080:80"),)})
    spec.task.force_update = 4
    return spec


def test_update_edits_only_what_was_given():
    original = _existing_spec()
    updated = apply_service_update(original, {
        "image": "busybox:2", "env_add": ("B=3", "C=4"), "env_rm": ("A",), "label_add": ("new=1",),
        "label_rm": ("drop",), "constraint_add": ("node.hostname!=n1",), "constraint_rm": ("node.labels.x==1",),
        "replicas": 5, "force": True, "args": "echo 'hi there'", "limit_memory": 1024,
        "publish_add": (parse_port("9090:90"),), "publish_rm": (parse_port("80"),),
    })
    assert updated.task.container.image == "busybox:2"
    assert list(updated.task.container.env) == ["B=3", "C=4"]
    assert dict(updated.annotations.labels) == {"keep": "1", "new": "1"}
    assert list(updated.task.placement.constraints) == ["node.hostname!=n1", "node.role==worker"]
    assert updated.replicated.replicas == 5
    assert updated.task.force_update == 5
    assert list(updated.task.container.args) == ["echo", "hi there"]
    assert updated.task.resources.limits.memory_bytes == 1024
    assert [(p.published_port, p.target_port) for p in updated.endpoint.ports] == [(9090, 90)]
    assert original.task.container.image == "busybox:1"  # the read spec is not modified


def test_update_without_flags_is_identity():
    original = _existing_spec()
    assert apply_service_update(original, {}) == original


def test_update_replicas_on_global_is_rejected():
    spec = build_service_spec({"image": "x", "mode": "global"})
    with pytest.raises(FlagError):
        apply_service_update(spec, {"replicas": 3})


def test_update_config_keeps_existing_values():
    spec = build_service_spec({"image": "x", "update_parallelism": 3})
    updated = apply_service_update(spec, {"update_delay": 10**9})
    assert updated.update.parallelism == 3 and updated.update.delay == 10**9


def test_health_flags_follow_docker():
    created = build_service_spec({"image": "img", "health_cmd": "curl -f localhost", "health_interval": 5_000_000_000,
                                  "health_retries": 2})
    assert created.task.container.healthcheck == objects_pb2.HealthConfig(
        test=["CMD-SHELL", "curl -f localhost"], interval=5_000_000_000, retries=2)
    # Only an interval: no test, so the image's HEALTHCHECK command stays in force.
    assert build_service_spec({"image": "img", "health_interval": 1_000_000}).task.container.healthcheck.test == []
    assert not build_service_spec({"image": "img"}).task.container.HasField("healthcheck")
    off = build_service_spec({"image": "img", "no_healthcheck": True})
    assert off.task.container.healthcheck == objects_pb2.HealthConfig(test=["NONE"])
    with pytest.raises(FlagError, match="--no-healthcheck conflicts with --health-\\* options"):
        build_service_spec({"image": "img", "no_healthcheck": True, "health_retries": 1})


def test_service_update_edits_the_health_check_in_place():
    spec = build_service_spec({"image": "img", "health_cmd": "true", "health_interval": 1_000_000_000})
    updated = apply_service_update(spec, {"health_timeout": 2_000_000_000})
    assert updated.task.container.healthcheck == objects_pb2.HealthConfig(
        test=["CMD-SHELL", "true"], interval=1_000_000_000, timeout=2_000_000_000)
    # An empty --health-cmd drops the command (back to the image's), keeping the rest.
    assert apply_service_update(updated, {"health_cmd": ""}).task.container.healthcheck.test == []
    disabled = apply_service_update(updated, {"no_healthcheck": True})
    assert disabled.task.container.healthcheck == objects_pb2.HealthConfig(test=["NONE"])
    # A setting given after --no-healthcheck turns checking back on with the image's command.
    reenabled = apply_service_update(disabled, {"health_retries": 3})
    assert reenabled.task.container.healthcheck == objects_pb2.HealthConfig(retries=3)
