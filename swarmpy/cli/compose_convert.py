"""A loaded compose model (compose_load) -> the stack's objects: service specs, secrets, configs.

Pure: no daemon calls. Names take the stack's prefix (`NAME_web`) and every object carries the label
`com.docker.stack.namespace=NAME`, as docker's stack deploy does; secret and config references point at
the prefixed names (or at an `external` one's own name). Keys swarm ignores are collected for docker's
warning ("Ignoring unsupported options: build"); values that do not parse raise ComposeError naming the
service and key.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swarmpy import units
from swarmpy.api import objects_pb2
from swarmpy.cli.compose_load import ComposeError
from swarmpy.cli.service_spec import FAILURE_ACTIONS, UPDATE_ORDERS, port_config
from swarmpy.cli.value_parsers import PortSpec, parse_port
from swarmpy.filetargets import DEFAULT_MODE, parse_mode, target_problem

NAMESPACE_LABEL = "com.docker.stack.namespace"
IMAGE_LABEL = "com.docker.stack.image"

# Keys compose knows that swarm has no use for: warned about, not refused (docker's lists and words).
UNSUPPORTED_SERVICE_KEYS = (
    "build", "cgroupns_mode", "cgroup_parent", "devices", "domainname", "external_links", "ipc", "links",
    "mac_address", "network_mode", "pid", "privileged", "restart", "security_opt", "shm_size", "userns_mode",
    "oom_score_adj", "stdin_open",  # in docker's stack deploy, but swarmpy's container spec has no place for them
)
DEPRECATED_SERVICE_KEYS = {
    "container_name": "Setting the container name is not supported.",
    "expose": "Exposing ports is unnecessary - services on the same network can access each other's containers on any port.",
}
SUPPORTED_SERVICE_KEYS = (
    "image", "command", "entrypoint", "environment", "env_file", "labels", "hostname", "user", "working_dir",
    "stop_grace_period", "stop_signal", "healthcheck", "ports", "networks", "secrets", "configs", "volumes",
    "deploy", "tty", "init", "read_only", "cap_add", "cap_drop", "sysctls",
    "depends_on", "tmpfs",  # docker's schema allows them and its stack deploy ignores them without a word
    "dns", "dns_search", "extra_hosts", "logging", "ulimits", "isolation", "credential_spec",
)
RESTART_CONDITIONS = {
    "none": objects_pb2.RestartPolicy.NONE,
    "on-failure": objects_pb2.RestartPolicy.ON_FAILURE,
    "any": objects_pb2.RestartPolicy.ANY,
}


@dataclass
class StackObject:
    """A secret or config the stack creates (data set) or uses as it is (external)."""

    key: str  # the name inside the compose file
    name: str  # the swarm object's name
    external: bool
    data: bytes = b""
    labels: dict[str, str] = field(default_factory=dict)
    template_driver: str = ""


@dataclass
class StackNetwork:
    """A network the stack creates (spec set) or joins as it is (external)."""

    key: str
    name: str
    external: bool
    spec: objects_pb2.NetworkSpec | None = None


@dataclass
class Stack:
    name: str
    services: dict[str, objects_pb2.ServiceSpec]  # by full service name; network targets are names
    secrets: list[StackObject]
    configs: list[StackObject]
    warnings: list[str]
    networks: list[StackNetwork] = field(default_factory=list)  # only those some service uses


def scoped(stack: str, name: str) -> str:
    return f"{stack}_{name}"


def _labels(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    if isinstance(value, list):
        labels = {}
        for item in value:
            key, _, text = str(item).partition("=")
            labels[key] = text
        return labels
    raise ComposeError(f"{where} must be a mapping or a list")


def _environment(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, dict):
        return [f"{k}={'' if v is None else v}" if v is not None else str(k) for k, v in value.items()]
    if isinstance(value, list):
        return [str(item) for item in value]
    raise ComposeError(f"{where} must be a mapping or a list")


def _command(value: Any) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(item) for item in value]


def _duration(value: Any, where: str) -> int:
    try:
        return units.parse_duration(str(value))
    except ValueError as exc:
        raise ComposeError(f"{where}: {exc}") from None


def _objects(model: dict, section: str, stack: str) -> list[StackObject]:
    found = []
    base = Path(model["_base_dir"])
    for key, definition in (model.get(section) or {}).items():
        definition = definition or {}
        where = f"{section}.{key}"
        external = definition.get("external")
        if isinstance(external, dict):  # the old form: external: {name: x}
            name = external.get("name", key)
            external = True
        else:
            name = definition.get("name") or (key if external else scoped(stack, key))
        if external:
            found.append(StackObject(key, name, True))
            continue
        if "file" not in definition:
            raise ComposeError(f"{where}: a file or external: true is required")
        path = base / definition["file"]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ComposeError(f"{where}: open {path}: {(exc.strerror or str(exc)).lower()}") from None
        labels = _labels(definition.get("labels"), f"{where}.labels")
        labels[NAMESPACE_LABEL] = stack
        found.append(StackObject(key, name, False, data, labels, definition.get("template_driver", "")))
    return found


def _file_references(service: dict, kind: str, objects: list[StackObject], where: str) -> list:
    by_key = {obj.key: obj for obj in objects}
    refs = []
    for item in service.get(f"{kind}s") or []:
        long = item if isinstance(item, dict) else {"source": item}
        source = long.get("source")
        if source not in by_key:
            raise ComposeError(f"{where}: undefined {kind}: {source} (declare it under the top-level {kind}s)")
        target = str(long.get("target") or source)
        problem = target_problem(target)
        if problem is not None:
            raise ComposeError(f'{where}.{kind}s: invalid target "{target}": {problem}')
        mode = long.get("mode", DEFAULT_MODE)
        if isinstance(mode, str):
            try:
                mode = parse_mode(mode)
            except ValueError as exc:
                raise ComposeError(f"{where}.{kind}s: {exc}") from None
        file = objects_pb2.FileTarget(name=target, uid=str(long.get("uid", "0")), gid=str(long.get("gid", "0")), mode=int(mode))
        if kind == "secret":
            refs.append(objects_pb2.SecretReference(secret_name=by_key[source].name, file=file))
        else:
            refs.append(objects_pb2.ConfigReference(config_name=by_key[source].name, file=file))
    return refs


def _service_networks(service: dict, where: str) -> dict[str, list[str]]:
    """The networks a service joins (compose keys) with their aliases; none given means "default"."""
    value = service.get("networks")
    if value is None:
        return {"default": []}
    if isinstance(value, list):
        return {str(key): [] for key in value}
    if isinstance(value, dict):
        joined = {}
        for key, options in value.items():
            aliases = (options or {}).get("aliases") or []
            if not isinstance(aliases, list):
                raise ComposeError(f"{where}.networks.{key}.aliases must be a list")
            joined[str(key)] = [str(alias) for alias in aliases]
        return joined
    raise ComposeError(f"{where}.networks must be a list or a mapping")


def _network(stack: str, key: str, definition: dict | None) -> StackNetwork:
    definition = definition or {}
    external = definition.get("external")
    if isinstance(external, dict):
        return StackNetwork(key, external.get("name", key), True)
    if external:
        return StackNetwork(key, definition.get("name", key), True)
    spec = objects_pb2.NetworkSpec()
    spec.annotations.name = definition.get("name") or scoped(stack, key)
    spec.annotations.labels.update(_labels(definition.get("labels"), f"networks.{key}.labels"))
    spec.annotations.labels[NAMESPACE_LABEL] = stack
    spec.driver_config.name = str(definition.get("driver") or "overlay")
    spec.driver_config.options.update({str(k): str(v) for k, v in (definition.get("driver_opts") or {}).items()})
    spec.attachable = bool(definition.get("attachable"))
    spec.internal = bool(definition.get("internal"))
    return StackNetwork(key, spec.annotations.name, False, spec)


def _ports(value: Any, where: str) -> list[objects_pb2.PortConfig]:
    ports = []
    for item in value or []:
        try:
            if isinstance(item, dict):
                target = int(item["target"])
                spec = PortSpec(target=target, published=int(item.get("published") or 0),
                                protocol=str(item.get("protocol", "tcp")).lower(), mode=str(item.get("mode", "ingress")))
                if spec.protocol not in ("tcp", "udp", "sctp") or spec.mode not in ("ingress", "host"):
                    raise ValueError(f"invalid protocol or mode in {item}")
                specs = [spec]
            else:
                specs = parse_port(str(item))
        except (ValueError, KeyError, TypeError) as exc:
            raise ComposeError(f"{where}.ports: invalid port {item!r}: {exc}") from None
        ports.extend(port_config(spec) for spec in specs)
    return ports


def _mounts(value: Any, stack: str, where: str) -> list[objects_pb2.Mount]:
    mounts = []
    for item in value or []:
        if isinstance(item, dict):
            kind, source, target, read_only = item.get("type", "volume"), item.get("source", ""), item.get("target"), bool(item.get("read_only"))
        else:
            parts = str(item).split(":")
            if len(parts) == 1:
                kind, source, target, read_only = "volume", "", parts[0], False
            else:
                source, target = parts[0], parts[1]
                read_only = len(parts) > 2 and "ro" in parts[2].split(",")
                kind = "bind" if source.startswith(("/", ".", "~")) else "volume"
        if not target:
            raise ComposeError(f"{where}.volumes: {item!r} has no target")
        types = {"bind": objects_pb2.Mount.BIND, "volume": objects_pb2.Mount.VOLUME, "tmpfs": objects_pb2.Mount.TMPFS}
        if kind not in types:
            raise ComposeError(f"{where}.volumes: unknown volume type {kind}")
        if kind == "volume" and source:
            source = scoped(stack, source)
        mounts.append(objects_pb2.Mount(type=types[kind], source=source, target=target, read_only=read_only))
    return mounts


def _update_config(value: dict, config: objects_pb2.UpdateConfig, where: str) -> None:
    config.parallelism = int(value.get("parallelism", 1))
    if "delay" in value:
        config.delay = _duration(value["delay"], f"{where}.delay")
    if "monitor" in value:
        config.monitor = _duration(value["monitor"], f"{where}.monitor")
    if "failure_action" in value:
        if value["failure_action"] not in FAILURE_ACTIONS:
            raise ComposeError(f"{where}.failure_action: unknown action {value['failure_action']}")
        config.failure_action = FAILURE_ACTIONS[value["failure_action"]]
    if "max_failure_ratio" in value:
        config.max_failure_ratio = float(value["max_failure_ratio"])
    if "order" in value:
        if value["order"] not in UPDATE_ORDERS:
            raise ComposeError(f"{where}.order: unknown order {value['order']}")
        config.order = UPDATE_ORDERS[value["order"]]


def _deploy(deploy: dict, spec: objects_pb2.ServiceSpec, where: str) -> None:
    mode = deploy.get("mode", "replicated")
    if mode == "global":
        getattr(spec, "global").SetInParent()
    elif mode == "replicated":
        spec.replicated.replicas = int(deploy.get("replicas", 1))
    else:
        raise ComposeError(f"{where}.mode: unknown mode {mode} (replicated or global)")
    spec.annotations.labels.update(_labels(deploy.get("labels"), f"{where}.labels"))
    task = spec.task
    placement = deploy.get("placement") or {}
    task.placement.constraints.extend(str(c) for c in placement.get("constraints") or [])
    for preference in placement.get("preferences") or []:
        task.placement.preferences.add(spread=str(preference.get("spread", "")))
    if placement.get("max_replicas_per_node"):
        task.placement.max_replicas = int(placement["max_replicas_per_node"])
    resources = deploy.get("resources") or {}
    for section, target in (("limits", task.resources.limits), ("reservations", task.resources.reservations)):
        values = resources.get(section) or {}
        try:
            if "cpus" in values:
                target.nano_cpus = units.parse_nano_cpus(str(values["cpus"]))
            if "memory" in values:
                target.memory_bytes = units.parse_memory_bytes(str(values["memory"]))
        except ValueError as exc:
            raise ComposeError(f"{where}.resources.{section}: {exc}") from None
    restart = deploy.get("restart_policy")
    if restart:
        condition = restart.get("condition", "any")
        if condition not in RESTART_CONDITIONS:
            raise ComposeError(f"{where}.restart_policy.condition: unknown condition {condition}")
        task.restart.condition = RESTART_CONDITIONS[condition]
        if "delay" in restart:
            task.restart.delay = _duration(restart["delay"], f"{where}.restart_policy.delay")
        if "max_attempts" in restart:
            task.restart.max_attempts = int(restart["max_attempts"])
        if "window" in restart:
            task.restart.window = _duration(restart["window"], f"{where}.restart_policy.window")
    for section in ("update_config", "rollback_config"):
        if deploy.get(section):
            _update_config(deploy[section], spec.update if section == "update_config" else spec.rollback, f"{where}.{section}")
    endpoint_mode = deploy.get("endpoint_mode")
    if endpoint_mode == "dnsrr":
        spec.endpoint.mode = objects_pb2.EndpointSpec.DNSRR
    elif endpoint_mode not in (None, "vip"):
        raise ComposeError(f"{where}.endpoint_mode: unknown mode {endpoint_mode} (vip or dnsrr)")


def _string_or_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise ComposeError(f"{where} must be a string or a list of strings")


def _container_extras(stack: str, service: dict, spec: objects_pb2.ServiceSpec, where: str) -> None:
    """dns, dns_search, extra_hosts, logging, ulimits, isolation, credential_spec: as docker's convert."""
    from swarmpy.cli.container_values import parse_ulimit

    container = spec.task.container
    nameservers, search = _string_or_list(service.get("dns"), f"{where}.dns"), _string_or_list(service.get("dns_search"), f"{where}.dns_search")
    if "dns" in service or "dns_search" in service:
        container.dns_config.nameservers.extend(nameservers)
        container.dns_config.search.extend(search)
    hosts = service.get("extra_hosts") or []
    if isinstance(hosts, dict):
        hosts = [f"{name}:{address}" for name, address in hosts.items()]
    for entry in hosts:  # host:ip -> swarmkit's "IP HOST", in order; docker drops an entry with no ':'
        name, sep, address = str(entry).partition(":")
        if sep:
            container.hosts.append(f"{address} {name}")
    logging = service.get("logging")
    if logging is not None:
        if not isinstance(logging, dict):
            raise ComposeError(f"{where}.logging must be a mapping")
        spec.task.log_driver.name = str(logging.get("driver") or "")
        spec.task.log_driver.options.update(_labels(logging.get("options"), f"{where}.logging.options"))
    limits = service.get("ulimits") or {}
    if not isinstance(limits, dict):
        raise ComposeError(f"{where}.ulimits must be a mapping")
    for name in sorted(limits):
        value = limits[name]
        text = f"{name}={value['soft']}:{value['hard']}" if isinstance(value, dict) and {"soft", "hard"} <= set(value) else f"{name}={value}"
        try:
            container.ulimits.append(parse_ulimit(text))
        except ValueError as exc:
            raise ComposeError(f"{where}.ulimits.{name}: {exc}") from None
    if service.get("isolation") is not None:
        container.isolation = str(service["isolation"])
    credential = service.get("credential_spec")
    if credential:
        if not isinstance(credential, dict):
            raise ComposeError(f"{where}.credential_spec must be a mapping")
        given = [source for source in ("config", "file", "registry") if credential.get(source)]
        if len(given) > 1:  # docker's words, its field names quoted
            quoted = [f'"{source.title()}"' for source in given]
            both = f"{quoted[0]} and {quoted[1]}" if len(quoted) == 2 else f"{', '.join(quoted[:-1])}, and {quoted[-1]}"
            raise ComposeError(f"invalid credential spec: cannot specify both {both}")
        for source in given:
            value = str(credential[source])
            if source == "config":  # a config of this service's, by its own name or the stack's prefixed one
                names = {ref.config_name for ref in container.configs}
                value = next((n for n in (value, scoped(stack, value)) if n in names), "")
                if not value:
                    raise ComposeError(f"invalid credential spec: spec specifies config {credential[source]},"
                                       " but no such config can be found")
            setattr(container.privileges.credential_spec, source, value)


def _healthcheck(value: dict, container: objects_pb2.ContainerSpec, where: str) -> None:
    health = container.healthcheck
    if value.get("disable"):
        health.test.append("NONE")
        return
    test = value.get("test")
    if isinstance(test, str):
        health.test.extend(["CMD-SHELL", test])
    elif test:
        health.test.extend(str(t) for t in test)
    for key, attribute in (("interval", "interval"), ("timeout", "timeout"), ("start_period", "start_period")):
        if key in value:
            setattr(health, attribute, _duration(value[key], f"{where}.healthcheck.{key}"))
    if "retries" in value:
        health.retries = int(value["retries"])


def _env_files(value: Any, base: Path, where: str) -> list[str]:
    from swarmpy.cli.value_parsers import parse_env_file

    variables = []
    for path in [value] if isinstance(value, str) else value or []:
        full = base / path
        try:
            variables.extend(parse_env_file(full.read_text(encoding="utf-8"), {}))
        except OSError as exc:
            raise ComposeError(f"{where}.env_file: open {full}: {(exc.strerror or str(exc)).lower()}") from None
        except ValueError as exc:
            raise ComposeError(f"{where}.env_file: {full}: {exc}") from None
    return variables


def service_spec(stack: str, key: str, service: dict, model: dict, secrets, configs) -> objects_pb2.ServiceSpec:
    where = f"services.{key}"
    spec = objects_pb2.ServiceSpec()
    spec.annotations.name = scoped(stack, key)
    container = spec.task.container
    container.image = str(service["image"])
    container.labels.update(_labels(service.get("labels"), f"{where}.labels"))
    container.labels[NAMESPACE_LABEL] = stack
    container.command.extend(_command(service.get("entrypoint")))
    container.args.extend(_command(service.get("command")))
    container.env.extend(_env_files(service.get("env_file"), Path(model["_base_dir"]), where))
    container.env.extend(_environment(service.get("environment"), f"{where}.environment"))
    for attribute, compose_key in (("hostname", "hostname"), ("user", "user"), ("dir", "working_dir"), ("stop_signal", "stop_signal")):
        if service.get(compose_key) is not None:
            setattr(container, attribute, str(service[compose_key]))
    if service.get("stop_grace_period") is not None:
        container.stop_grace_period = _duration(service["stop_grace_period"], f"{where}.stop_grace_period")
    if service.get("tty"):
        container.tty = True
    if service.get("init") is not None:
        container.init = bool(service["init"])
    if service.get("read_only"):
        container.read_only = True
    container.capability_add.extend(str(c) for c in service.get("cap_add") or [])
    container.capability_drop.extend(str(c) for c in service.get("cap_drop") or [])
    container.sysctls.update(_labels(service.get("sysctls"), f"{where}.sysctls"))
    if service.get("healthcheck"):
        _healthcheck(service["healthcheck"], container, where)
    container.mounts.extend(_mounts(service.get("volumes"), stack, where))
    container.secrets.extend(_file_references(service, "secret", secrets, where))
    container.configs.extend(_file_references(service, "config", configs, where))
    spec.annotations.labels[NAMESPACE_LABEL] = stack
    _container_extras(stack, service, spec, where)
    _deploy(service.get("deploy") or {}, spec, f"{where}.deploy")
    spec.annotations.labels[IMAGE_LABEL] = container.image
    ports = _ports(service.get("ports"), where)
    if ports:
        spec.endpoint.ports.extend(ports)
    declared = model.get("networks") or {}
    for network_key, aliases in _service_networks(service, where).items():
        if network_key != "default" and network_key not in declared:
            raise ComposeError(f"service {key}: undefined network {network_key!r}")
        name = _network(stack, network_key, declared.get(network_key)).name
        # docker's stack deploy makes the service reachable by its short name on each of its networks
        spec.task.networks.add(target=name, aliases=[key, *aliases])
    return spec


def ignored_options(model: dict) -> list[str]:
    """docker's warnings (for stderr) about the services' keys swarm ignores: unsupported, then deprecated."""
    keys = {option for service in model["services"].values() for option in service}
    warnings = []
    unsupported = sorted(keys.intersection(UNSUPPORTED_SERVICE_KEYS))
    if unsupported:
        warnings.append(f"Ignoring unsupported options: {', '.join(unsupported)}\n")
    deprecated = sorted(f"{key}: {DEPRECATED_SERVICE_KEYS[key]}" for key in keys.intersection(DEPRECATED_SERVICE_KEYS))
    if deprecated:
        warnings.append("Ignoring deprecated options:\n\n" + "\n\n".join(deprecated) + "\n")
    return warnings


def convert(stack: str, model: dict) -> Stack:
    warnings = ignored_options(model)
    secrets = _objects(model, "secrets", stack)
    configs = _objects(model, "configs", stack)
    services = {}
    for key, service in model["services"].items():
        for option in service:
            if option in SUPPORTED_SERVICE_KEYS or option in UNSUPPORTED_SERVICE_KEYS or option in DEPRECATED_SERVICE_KEYS:
                continue
            if not str(option).startswith("x-"):
                raise ComposeError(f"services.{key} Additional property {option} is not allowed")
        spec = service_spec(stack, key, service, model, secrets, configs)
        services[spec.annotations.name] = spec
    used = {attachment.target for spec in services.values() for attachment in spec.task.networks}
    declared = model.get("networks") or {}
    networks = [_network(stack, key, declared.get(key)) for key in ["default", *declared]]
    networks = [n for n in {n.name: n for n in networks}.values() if n.name in used]
    return Stack(stack, services, secrets, configs, warnings, networks)
