"""Spec validation: every spec is checked here before anything is proposed to the store.

Each check raises InvalidArgument naming the field (its path in the spec, as the proto spells it) and
the offending value, in one line, so the user can find the flag that produced it. Validation is pure:
it reads only the spec (checks against other objects, such as published-port conflicts, live in the
servicer, which has the store). The rules follow swarmkit's controlapi and docker's daemon, with the
numeric limits of docker's CLI where the daemon has none.
"""

from __future__ import annotations

import math
import re

from google.protobuf.descriptor import EnumDescriptor

from swarmpy.api import objects_pb2
from swarmpy.manager.constraint import ConstraintError, parse_constraint
from swarmpy.units import MILLISECOND, format_duration

from .defaults import MIN_NODE_CERT_EXPIRY
from .raft_timing import raft_timing_refusal
from .errors import InvalidArgument, Shown

# docker's service name rule (daemon/cluster/convert), plus the DNS label length limit: tasks are
# reachable as <name>.<slot>.<task id>, so a name must fit in one DNS label.
SERVICE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
MAX_SERVICE_NAME_LENGTH = 63

# No cluster comes near this; a larger count is a typo (an extra zero) that would flood the scheduler.
MAX_REPLICAS = 100_000

# swarmkit's lower bounds: smaller limits cannot run a container at all.
MIN_NANO_CPUS = 1_000_000  # 0.001 CPU
MIN_MEMORY_BYTES = 4 * 1024 * 1024  # 4 MiB

MAX_PORT = 65535

# -- image references: docker/distribution's reference grammar --------------------------------------

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
IMAGE_REFERENCE = re.compile(rf"^(?P<name>{_NAME})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$")
MAX_IMAGE_NAME_LENGTH = 255


def image_reference_problem(image: str) -> str | None:
    """Why `image` is not a valid docker image reference (docker's wording), or None if it is."""
    if not image:
        return "an image is required"
    match = IMAGE_REFERENCE.match(image)
    if match is None:
        if IMAGE_REFERENCE.match(image.lower()) is not None:
            return "invalid reference format: repository name must be lowercase"
        return "invalid reference format"
    if len(match.group("name")) > MAX_IMAGE_NAME_LENGTH:
        return f"repository name must not be more than {MAX_IMAGE_NAME_LENGTH} characters"
    return None


# -- helpers ---------------------------------------------------------------------------------------


def _duration(nanos: int) -> Shown:
    return Shown(format_duration(nanos))


def _check_enum(field: str, value: int, enum: EnumDescriptor) -> None:
    # proto3 enums are open: a client built from a newer proto can send numbers we do not know.
    if value not in enum.values_by_number:
        allowed = ", ".join(v.name.lower() for v in enum.values)
        raise InvalidArgument(field, value, f"must be one of {allowed}")


def _check_not_negative_duration(field: str, nanos: int) -> None:
    if nanos < 0:
        raise InvalidArgument(field, _duration(nanos), "must not be negative")


def _check_label_keys(field: str, labels: dict[str, str] | object) -> None:
    for key in labels:  # type: ignore[attr-defined]
        if not key.strip():
            raise InvalidArgument(f"{field} key", key, "a label key must not be empty")


# -- services --------------------------------------------------------------------------------------


def validate_service_name(name: str) -> None:
    """An empty name is allowed here: the servicer picks one."""
    if not name:
        return
    if len(name) > MAX_SERVICE_NAME_LENGTH:
        raise InvalidArgument(
            "annotations.name", name, f"a service name must be at most {MAX_SERVICE_NAME_LENGTH} characters long"
        )
    if not SERVICE_NAME.match(name):
        raise InvalidArgument(
            "annotations.name",
            name,
            "a service name must start with a letter or digit and contain only letters, digits, '_', '.' and '-'",
        )


CAPABILITY = re.compile(r"^CAP_[A-Z_]+$")


def validate_service_spec(spec: objects_pb2.ServiceSpec) -> None:
    """Raise InvalidArgument for the first problem found in a service spec."""
    validate_service_name(spec.annotations.name)
    _check_label_keys("annotations.labels", spec.annotations.labels)
    _validate_mode(spec)
    _validate_task(spec.task)
    for field in ("update", "rollback"):
        if spec.HasField(field):
            _validate_update_config(field, getattr(spec, field))
    if spec.HasField("endpoint"):
        _validate_endpoint(spec.endpoint)


def _validate_mode(spec: objects_pb2.ServiceSpec) -> None:
    mode = spec.WhichOneof("mode")
    if mode is None:
        raise InvalidArgument("mode", "", "a service must be either replicated or global")
    if mode == "replicated" and spec.replicated.replicas > MAX_REPLICAS:
        raise InvalidArgument(
            "replicated.replicas", spec.replicated.replicas, f"a service may have at most {MAX_REPLICAS} replicas"
        )
    if mode == "replicated_job":
        job = spec.replicated_job
        if job.total_completions > MAX_REPLICAS:
            raise InvalidArgument("replicated_job.total_completions", job.total_completions,
                                  f"a job may have at most {MAX_REPLICAS} completions")
        if job.max_concurrent > job.total_completions:
            raise InvalidArgument("replicated_job.max_concurrent", job.max_concurrent,
                                  f"the maximum number of concurrent tasks cannot exceed the total number of completions ({job.total_completions})")
    if mode in ("replicated_job", "global_job") and (spec.HasField("update") or spec.HasField("rollback")):
        raise InvalidArgument("update", "", "update and rollback configuration is not supported for jobs")
    if mode in ("global", "global_job") and spec.task.placement.max_replicas:
        raise InvalidArgument(
            "task.placement.max_replicas",
            spec.task.placement.max_replicas,
            "a maximum of replicas per node can only be set on a replicated service",
        )


def _validate_task(task: objects_pb2.TaskSpec) -> None:
    _validate_container(task.container)
    if task.HasField("resources"):
        _validate_resources(task.resources)
    if task.HasField("restart"):
        _validate_restart(task.restart)
    if task.HasField("placement"):
        _validate_placement(task.placement)


def _validate_container(container: objects_pb2.ContainerSpec) -> None:
    problem = image_reference_problem(container.image)
    if problem is not None:
        raise InvalidArgument("task.container.image", container.image, problem)
    _check_label_keys("task.container.labels", container.labels)
    for entry in container.env:
        key = entry.split("=", 1)[0]
        if not key:
            raise InvalidArgument("task.container.env", entry, "an environment entry must be KEY=VALUE or KEY")
        if any(c.isspace() for c in key):
            raise InvalidArgument("task.container.env", entry, "an environment variable name must not contain whitespace")
    if container.HasField("stop_grace_period"):
        _check_not_negative_duration("task.container.stop_grace_period", container.stop_grace_period)
    if container.HasField("healthcheck"):
        _validate_healthcheck(container.healthcheck)
    _validate_mounts(container.mounts)
    _validate_container_flags(container)


def _validate_container_flags(container: objects_pb2.ContainerSpec) -> None:
    """What the CLI checks for --cap-add/-drop, --ulimit, --sysctl, --isolation, for other API clients too."""
    for field in ("capability_add", "capability_drop"):
        for capability in getattr(container, field):
            if capability != "ALL" and not CAPABILITY.match(capability):
                raise InvalidArgument(f"task.container.{field}", capability, "a capability is ALL or CAP_<NAME>")
    for ulimit in container.ulimits:
        if not ulimit.name:
            raise InvalidArgument("task.container.ulimits.name", ulimit.name, "a ulimit needs a name")
        if ulimit.soft > ulimit.hard:
            raise InvalidArgument("task.container.ulimits", ulimit.name,
                                  f"ulimit soft limit must be less than or equal to hard limit: {ulimit.soft} > {ulimit.hard}")
    for key in container.sysctls:
        if not key or any(c.isspace() for c in key):
            raise InvalidArgument("task.container.sysctls", key, "a sysctl needs a name without whitespace")
    if container.isolation not in ("", "default"):
        raise InvalidArgument("task.container.isolation", container.isolation, "linux only supports 'default'")


def _validate_healthcheck(health: objects_pb2.HealthConfig) -> None:
    for name in ("interval", "timeout", "start_period"):
        value = getattr(health, name)
        field = f"task.container.healthcheck.{name}"
        _check_not_negative_duration(field, value)
        # docker's daemon: a positive health check duration below 1 ms cannot be scheduled.
        if 0 < value < MILLISECOND:
            raise InvalidArgument(field, _duration(value), "must be at least 1ms")
    if health.retries < 0:
        raise InvalidArgument("task.container.healthcheck.retries", health.retries, "must not be negative")


def _validate_mounts(mounts: list[objects_pb2.Mount] | object) -> None:
    targets: set[str] = set()
    for mount in mounts:  # type: ignore[attr-defined]
        _check_enum("task.container.mounts.type", mount.type, objects_pb2.Mount.Type.DESCRIPTOR)
        if not mount.target:
            raise InvalidArgument("task.container.mounts.target", mount.target, "a mount needs a target path")
        if not mount.target.startswith("/"):
            raise InvalidArgument("task.container.mounts.target", mount.target, "a mount target must be an absolute path")
        if mount.target in targets:
            raise InvalidArgument("task.container.mounts.target", mount.target, "duplicate mount point")
        targets.add(mount.target)
        if mount.type == objects_pb2.Mount.BIND:
            if not mount.source.startswith("/"):
                raise InvalidArgument(
                    "task.container.mounts.source", mount.source, "a bind mount source must be an absolute host path"
                )
        elif mount.type == objects_pb2.Mount.TMPFS and mount.source:
            raise InvalidArgument("task.container.mounts.source", mount.source, "a tmpfs mount takes no source")


def _validate_resources(resources: objects_pb2.ResourceRequirements) -> None:
    for part in ("limits", "reservations"):
        values = getattr(resources, part)
        field = f"task.resources.{part}"
        if values.nano_cpus < 0:
            raise InvalidArgument(f"{field}.nano_cpus", values.nano_cpus, "must not be negative")
        if 0 < values.nano_cpus < MIN_NANO_CPUS:
            raise InvalidArgument(f"{field}.nano_cpus", values.nano_cpus, "must be at least 0.001 CPU (1000000)")
        if values.memory_bytes < 0:
            raise InvalidArgument(f"{field}.memory_bytes", values.memory_bytes, "must not be negative")
        if 0 < values.memory_bytes < MIN_MEMORY_BYTES:
            raise InvalidArgument(f"{field}.memory_bytes", values.memory_bytes, "must be at least 4MiB (4194304)")
    limits, reservations = resources.limits, resources.reservations
    if limits.nano_cpus and reservations.nano_cpus > limits.nano_cpus:
        raise InvalidArgument(
            "task.resources.reservations.nano_cpus",
            reservations.nano_cpus,
            f"the CPU reservation is more than the limit of {limits.nano_cpus}",
        )
    if limits.memory_bytes and reservations.memory_bytes > limits.memory_bytes:
        raise InvalidArgument(
            "task.resources.reservations.memory_bytes",
            reservations.memory_bytes,
            f"the memory reservation is more than the limit of {limits.memory_bytes}",
        )


def _validate_restart(restart: objects_pb2.RestartPolicy) -> None:
    _check_enum("task.restart.condition", restart.condition, objects_pb2.RestartPolicy.Condition.DESCRIPTOR)
    if restart.HasField("delay"):
        _check_not_negative_duration("task.restart.delay", restart.delay)
    _check_not_negative_duration("task.restart.window", restart.window)


def _validate_placement(placement: objects_pb2.Placement) -> None:
    for expression in placement.constraints:
        try:
            parse_constraint(expression)
        except ConstraintError as exc:
            raise InvalidArgument("task.placement.constraints", expression, exc.problem) from None
    for preference in placement.preferences:
        if not preference.spread.strip():
            raise InvalidArgument(
                "task.placement.preferences.spread", preference.spread, "a spread preference needs a label, e.g. node.labels.zone"
            )


def _validate_update_config(field: str, config: objects_pb2.UpdateConfig) -> None:
    _check_not_negative_duration(f"{field}.delay", config.delay)
    if config.HasField("monitor"):
        _check_not_negative_duration(f"{field}.monitor", config.monitor)
    ratio = config.max_failure_ratio
    if math.isnan(ratio) or not 0.0 <= ratio <= 1.0:
        raise InvalidArgument(f"{field}.max_failure_ratio", ratio, "must be between 0 and 1")
    _check_enum(f"{field}.failure_action", config.failure_action, objects_pb2.UpdateConfig.FailureAction.DESCRIPTOR)
    _check_enum(f"{field}.order", config.order, objects_pb2.UpdateConfig.Order.DESCRIPTOR)
    if field == "rollback" and config.failure_action == objects_pb2.UpdateConfig.ROLLBACK:
        raise InvalidArgument(f"{field}.failure_action", "rollback", "a rollback cannot itself roll back on failure")


def _validate_endpoint(endpoint: objects_pb2.EndpointSpec) -> None:
    _check_enum("endpoint.mode", endpoint.mode, objects_pb2.EndpointSpec.ResolutionMode.DESCRIPTOR)
    published: set[tuple[int, int, int]] = set()
    for port in endpoint.ports:
        _check_enum("endpoint.ports.protocol", port.protocol, objects_pb2.PortConfig.Protocol.DESCRIPTOR)
        _check_enum("endpoint.ports.publish_mode", port.publish_mode, objects_pb2.PortConfig.PublishMode.DESCRIPTOR)
        if not 1 <= port.target_port <= MAX_PORT:
            raise InvalidArgument("endpoint.ports.target_port", port.target_port, f"must be between 1 and {MAX_PORT}")
        if port.published_port > MAX_PORT:
            raise InvalidArgument(
                "endpoint.ports.published_port", port.published_port, f"must be between 0 and {MAX_PORT}"
            )
        if endpoint.mode == objects_pb2.EndpointSpec.DNSRR and port.publish_mode == objects_pb2.PortConfig.INGRESS:
            raise InvalidArgument(
                "endpoint.ports", Shown(format_port(port)), "ingress ports cannot be used with dnsrr resolution mode"
            )
        _validate_proxy_protocol(port)
        if port.published_port == 0:
            continue  # assigned by the allocator, so never a duplicate
        key = (port.published_port, port.protocol, port.publish_mode)
        if key in published:
            raise InvalidArgument("endpoint.ports.published_port", port.published_port, "duplicate published port")
        published.add(key)


def _validate_proxy_protocol(port: objects_pb2.PortConfig) -> None:
    """swarmpy's PROXY protocol option: v2 only, and only where the mesh's relay carries the connection
    (an ingress TCP port: a host-mode port is the engine's, a datagram has no stream to prefix)."""
    if not port.proxy_protocol:
        return
    if port.proxy_protocol != "v2":
        raise InvalidArgument("endpoint.ports.proxy_protocol", port.proxy_protocol, 'the supported version is "v2"')
    if port.publish_mode != objects_pb2.PortConfig.INGRESS:
        raise InvalidArgument(
            "endpoint.ports.proxy_protocol", port.proxy_protocol, f"port {format_port(port)}: only ingress-mode ports carry a PROXY header"
        )
    if port.protocol != objects_pb2.PortConfig.TCP:
        raise InvalidArgument(
            "endpoint.ports.proxy_protocol", port.proxy_protocol, f"port {format_port(port)}: only TCP ports carry a PROXY header"
        )


def format_port(port: objects_pb2.PortConfig) -> str:
    """docker's port notation: 8080:80/tcp."""
    protocol = objects_pb2.PortConfig.Protocol.Name(port.protocol).lower()
    return f"{port.published_port}:{port.target_port}/{protocol}"


# -- nodes and the cluster -------------------------------------------------------------------------


def validate_node_spec(spec: objects_pb2.NodeSpec) -> None:
    _check_enum("availability", spec.availability, objects_pb2.NodeSpec.Availability.DESCRIPTOR)
    _check_enum("desired_role", spec.desired_role, objects_pb2.NodeRole.DESCRIPTOR)
    _check_label_keys("annotations.labels", spec.annotations.labels)


def validate_cluster_spec(spec: objects_pb2.ClusterSpec) -> None:
    """Zero heartbeat, expiry and ticks mean "the default" (see defaults.fill_cluster_spec_defaults)."""
    _check_label_keys("annotations.labels", spec.annotations.labels)
    history = spec.orchestration.task_history_retention_limit
    # swarmkit's task reaper reads any negative limit as "never delete"; -1 is the one way to say so.
    if history < -1:
        raise InvalidArgument(
            "orchestration.task_history_retention_limit", history, "must be -1 (keep all) or at least 0"
        )
    heartbeat = spec.dispatcher.heartbeat_period
    if heartbeat < 0:
        raise InvalidArgument("dispatcher.heartbeat_period", _duration(heartbeat), "must be positive")
    expiry = spec.ca_config.node_cert_expiry
    if expiry < 0 or 0 < expiry < MIN_NODE_CERT_EXPIRY:
        raise InvalidArgument(
            "ca_config.node_cert_expiry", _duration(expiry), f"must be at least {format_duration(MIN_NODE_CERT_EXPIRY)}"
        )
    raft = spec.raft
    refusal = raft_timing_refusal(raft.tick_period, raft.heartbeat_tick, raft.election_tick)
    if refusal is not None:
        raise InvalidArgument(*refusal)
