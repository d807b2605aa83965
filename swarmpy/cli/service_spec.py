"""Flags -> ServiceSpec: what `service create` sends, and how `service update` edits what it read.

Options arrive as click's keyword dict; a flag the user did not give is None (or an empty tuple for
repeatable flags), and only given flags touch the spec, as docker's `flags.Changed` does. Sections
docker leaves out when none of their flags is given (restart policy, update and rollback configs)
are left unset here too, so the daemon's defaults apply.
"""

from __future__ import annotations

import os
import shlex
from typing import Any, Mapping

from swarmpy.api import objects_pb2
from swarmpy.cli.container_flags import apply_container_flags, given as _given, update_container_flags
from swarmpy.cli.errors import FlagError, invalid_flag_value
from swarmpy.cli.job_flags import JOB_MODES, apply_job_mode, check_job_flags, update_job
from swarmpy.cli.value_parsers import PortSpec, normalize_env, parse_env_file, parse_key_value, parse_placement_pref

RESTART_CONDITIONS = {
    "none": objects_pb2.RestartPolicy.NONE,
    "on-failure": objects_pb2.RestartPolicy.ON_FAILURE,
    "any": objects_pb2.RestartPolicy.ANY,
}
FAILURE_ACTIONS = {
    "pause": objects_pb2.UpdateConfig.PAUSE,
    "continue": objects_pb2.UpdateConfig.CONTINUE,
    "rollback": objects_pb2.UpdateConfig.ROLLBACK,
}
UPDATE_ORDERS = {"stop-first": objects_pb2.UpdateConfig.STOP_FIRST, "start-first": objects_pb2.UpdateConfig.START_FIRST}
PROTOCOLS = {"tcp": objects_pb2.PortConfig.TCP, "udp": objects_pb2.PortConfig.UDP, "sctp": objects_pb2.PortConfig.SCTP}
PUBLISH_MODES = {"ingress": objects_pb2.PortConfig.INGRESS, "host": objects_pb2.PortConfig.HOST}

UPDATE_CONFIG_FIELDS = ("parallelism", "delay", "monitor", "failure_action", "max_failure_ratio", "order")
RESTART_FIELDS = ("restart_condition", "restart_delay", "restart_max_attempts", "restart_window")


def _flatten_ports(groups) -> list[PortSpec]:
    return [port for group in groups or () for port in group]


def port_config(port: PortSpec) -> objects_pb2.PortConfig:
    return objects_pb2.PortConfig(
        protocol=PROTOCOLS[port.protocol],
        target_port=port.target,
        published_port=port.published,
        publish_mode=PUBLISH_MODES[port.mode],
        proxy_protocol=port.proxy_protocol,
    )


def _read_env_files(paths) -> list[str]:
    variables = []
    for path in paths or ():
        try:
            with open(path, encoding="utf-8") as env_file:
                content = env_file.read()
        except OSError as exc:
            raise FlagError(f"open {path}: {exc.strerror.lower() if exc.strerror else exc}") from None
        try:
            variables.extend(parse_env_file(content, dict(os.environ)))
        except ValueError as exc:
            raise FlagError(f"{path}: {exc}") from None
    return variables


def _env_list(items) -> list[str]:
    variables = []
    for item in items or ():
        try:
            normalized = normalize_env(item, dict(os.environ))
        except ValueError as exc:
            raise FlagError(f'invalid argument "{item}" for "-e, --env" flag: {exc}') from None
        if normalized is not None:
            variables.append(normalized)
    return variables


def _labels(items, flag: str, short: str | None = None) -> dict[str, str]:
    labels = {}
    for item in items or ():
        try:
            key, value = parse_key_value(item)
        except ValueError as exc:
            raise invalid_flag_value(item, flag, str(exc), short) from None
        labels[key] = value
    return labels


def _placement_prefs(items) -> list[objects_pb2.PlacementPreference]:
    prefs = []
    for item in items or ():
        try:
            prefs.append(objects_pb2.PlacementPreference(spread=parse_placement_pref(item)))
        except ValueError as exc:
            raise FlagError(f'invalid argument "{item}" for "--placement-pref" flag: {exc}') from None
    return prefs


def _apply_resources(resources: objects_pb2.ResourceRequirements, options: Mapping[str, Any]) -> None:
    for flag, section, field in (
        ("limit_cpu", "limits", "nano_cpus"),
        ("limit_memory", "limits", "memory_bytes"),
        ("reserve_cpu", "reservations", "nano_cpus"),
        ("reserve_memory", "reservations", "memory_bytes"),
    ):
        if _given(options, flag):
            setattr(getattr(resources, section), field, options[flag])


def _apply_restart(task: objects_pb2.TaskSpec, options: Mapping[str, Any]) -> None:
    if not any(_given(options, name) for name in RESTART_FIELDS):
        return
    restart = task.restart
    if not task.HasField("restart"):
        restart.condition = objects_pb2.RestartPolicy.ANY  # swarmkit's default; the enum's zero is NONE
    if _given(options, "restart_condition"):
        restart.condition = RESTART_CONDITIONS[options["restart_condition"]]
    if _given(options, "restart_delay"):
        restart.delay = options["restart_delay"]
    if _given(options, "restart_max_attempts"):
        restart.max_attempts = options["restart_max_attempts"]
    if _given(options, "restart_window"):
        restart.window = options["restart_window"]


def _apply_update_config(spec: objects_pb2.ServiceSpec, section: str, options: Mapping[str, Any]) -> None:
    """section is "update" or "rollback"; flags are --update-* / --rollback-*."""
    given = {field: options.get(f"{section}_{field}") for field in UPDATE_CONFIG_FIELDS}
    given = {field: value for field, value in given.items() if value is not None}
    if not given:
        return
    config = getattr(spec, section)
    if not spec.HasField(section):
        config.parallelism = 1  # docker's default; the field's zero means "all at once"
    if "parallelism" in given:
        config.parallelism = given["parallelism"]
    if "delay" in given:
        config.delay = given["delay"]
    if "monitor" in given:
        config.monitor = given["monitor"]
    if "failure_action" in given:
        if section == "rollback" and given["failure_action"] == "rollback":
            raise FlagError('invalid argument "rollback" for "--rollback-failure-action" flag: must be one of pause, continue')
        config.failure_action = FAILURE_ACTIONS[given["failure_action"]]
    if "max_failure_ratio" in given:
        config.max_failure_ratio = given["max_failure_ratio"]
    if "order" in given:
        config.order = UPDATE_ORDERS[given["order"]]


HEALTH_FLAGS = ("health_cmd", "health_interval", "health_timeout", "health_retries", "health_start_period")
_HEALTH_FIELDS = {"health_interval": "interval", "health_timeout": "timeout", "health_start_period": "start_period",
                  "health_retries": "retries"}


def _apply_healthcheck(container: objects_pb2.ContainerSpec, options: Mapping[str, Any]) -> None:
    """docker's health flags: a given --health-cmd is run by the shell (CMD-SHELL); --no-healthcheck
    turns off the image's HEALTHCHECK (["NONE"]); flags not given keep what the spec (or, with no test,
    the image) has. On create the spec starts without a health check, so this is docker's create too."""
    settings = [name for name in HEALTH_FLAGS if _given(options, name)]
    if options.get("no_healthcheck"):
        if settings:
            raise FlagError("--no-healthcheck conflicts with --health-* options")
        container.healthcheck.CopyFrom(objects_pb2.HealthConfig(test=["NONE"]))
        return
    if not settings:
        return
    health = container.healthcheck
    if list(health.test[:1]) == ["NONE"]:
        health.ClearField("test")
    for flag, field in _HEALTH_FIELDS.items():
        if _given(options, flag):
            setattr(health, field, options[flag])
    if _given(options, "health_cmd"):
        health.ClearField("test")
        if options["health_cmd"]:
            health.test.extend(["CMD-SHELL", options["health_cmd"]])


def _apply_container_basics(container: objects_pb2.ContainerSpec, options: Mapping[str, Any]) -> None:
    if _given(options, "workdir"):
        container.dir = options["workdir"]
    if _given(options, "user"):
        container.user = options["user"]
    if _given(options, "hostname"):
        container.hostname = options["hostname"]
    if _given(options, "stop_grace_period"):
        container.stop_grace_period = options["stop_grace_period"]
    if _given(options, "entrypoint"):
        container.ClearField("command")
        container.command.extend(shlex.split(options["entrypoint"]))
    _apply_healthcheck(container, options)


def build_service_spec(options: Mapping[str, Any]) -> objects_pb2.ServiceSpec:
    """`service create` flags -> the ServiceSpec to send. Raises FlagError for flag combinations
    docker rejects before calling the daemon."""
    mode = options.get("mode") or "replicated"
    check_job_flags(mode, options)
    if mode in ("global", "global-job"):
        if _given(options, "replicas"):
            raise FlagError("replicas can only be used with replicated or replicated-job mode")
        if _given(options, "replicas_max_per_node"):
            raise FlagError("replicas-max-per-node can only be used with replicated or replicated-job mode")

    spec = objects_pb2.ServiceSpec()
    if _given(options, "name"):
        spec.annotations.name = options["name"]
    spec.annotations.labels.update(_labels(options.get("label"), "--label", "-l"))

    container = spec.task.container
    container.image = options["image"]
    container.args.extend(options.get("args") or ())
    container.env.extend(_read_env_files(options.get("env_file")) + _env_list(options.get("env")))
    container.labels.update(_labels(options.get("container_label"), "--container-label"))
    _apply_container_basics(container, options)

    _apply_resources(spec.task.resources, options)
    _apply_restart(spec.task, options)

    placement = spec.task.placement
    placement.constraints.extend(options.get("constraint") or ())
    placement.preferences.extend(_placement_prefs(options.get("placement_pref")))
    if _given(options, "replicas_max_per_node"):
        placement.max_replicas = options["replicas_max_per_node"]

    if mode == "global":
        getattr(spec, "global").SetInParent()  # "global" is a Python keyword
    elif mode in JOB_MODES:
        apply_job_mode(spec, mode, options)
    else:
        replicas = options.get("replicas")
        spec.replicated.replicas = 1 if replicas is None else replicas

    _apply_update_config(spec, "update", options)
    _apply_update_config(spec, "rollback", options)

    ports = _flatten_ports(options.get("publish"))
    if ports:
        spec.endpoint.ports.extend(port_config(port) for port in ports)
    apply_container_flags(spec, options)
    return spec


# ---------------------------------------------------------------- service update


def _env_key(variable: str) -> str:
    return variable.partition("=")[0]


def _update_env(container: objects_pb2.ContainerSpec, options: Mapping[str, Any]) -> None:
    removed = {_env_key(item) for item in options.get("env_rm") or ()}
    variables = [v for v in container.env if _env_key(v) not in removed]
    for added in _env_list(options.get("env_add")):
        keys = [_env_key(v) for v in variables]
        if _env_key(added) in keys:
            variables[keys.index(_env_key(added))] = added
        else:
            variables.append(added)
    container.ClearField("env")
    container.env.extend(variables)


def _update_labels(labels, added, removed, flag: str) -> None:
    for key in removed or ():
        labels.pop(key, None)
    labels.update(_labels(added, flag))


def _update_constraints(placement: objects_pb2.Placement, options: Mapping[str, Any]) -> None:
    if not (_given(options, "constraint_add") or _given(options, "constraint_rm")):
        return
    removed = set(options.get("constraint_rm") or ())
    constraints = [c for c in placement.constraints if c not in removed]
    for added in options.get("constraint_add") or ():
        if added not in constraints:
            constraints.append(added)
    placement.ClearField("constraints")
    placement.constraints.extend(sorted(constraints))


def _update_ports(endpoint: objects_pb2.EndpointSpec, options: Mapping[str, Any]) -> None:
    removed = _flatten_ports(options.get("publish_rm"))
    added = [port_config(port) for port in _flatten_ports(options.get("publish_add"))]
    if not removed and not added:
        return
    removed_targets = {(p.target, PROTOCOLS[p.protocol]) for p in removed}
    ports = [p for p in endpoint.ports if (p.target_port, p.protocol) not in removed_targets]
    for port in added:
        ports = [p for p in ports if not (p.published_port and p.published_port == port.published_port and p.protocol == port.protocol)]
        ports.append(port)
    endpoint.ClearField("ports")
    endpoint.ports.extend(ports)


def apply_service_update(spec: objects_pb2.ServiceSpec, options: Mapping[str, Any]) -> objects_pb2.ServiceSpec:
    """`service update` flags applied to a copy of the spec read from the daemon."""
    updated = objects_pb2.ServiceSpec()
    updated.CopyFrom(spec)
    container = updated.task.container

    if not update_job(updated, options) and _given(options, "replicas"):
        if updated.WhichOneof("mode") != "replicated":
            raise FlagError("replicas can only be used with replicated or replicated-job mode")
        updated.replicated.replicas = options["replicas"]
    if _given(options, "image"):
        container.image = options["image"]
    if _given(options, "args"):
        container.ClearField("args")
        container.args.extend(shlex.split(options["args"]))
    _update_env(container, options)
    _update_labels(updated.annotations.labels, options.get("label_add"), options.get("label_rm"), "--label-add")
    _update_labels(container.labels, options.get("container_label_add"), options.get("container_label_rm"), "--container-label-add")
    _apply_container_basics(container, options)
    _apply_resources(updated.task.resources, options)
    _apply_restart(updated.task, options)
    _update_constraints(updated.task.placement, options)
    if _given(options, "replicas_max_per_node"):
        updated.task.placement.max_replicas = options["replicas_max_per_node"]
    _apply_update_config(updated, "update", options)
    _apply_update_config(updated, "rollback", options)
    _update_ports(updated.endpoint, options)
    update_container_flags(updated, options)
    if options.get("force"):
        updated.task.force_update += 1
    return updated
