"""From a Task to the arguments of a Docker container create call, the way swarm names and labels it.
Pure: no engine calls, so every mapping can be checked without Docker.
"""

from __future__ import annotations

from typing import Any

import docker.types

from swarmpy import credential_spec
from swarmpy.api import objects_pb2
from swarmpy.worker.executor import task_templates
from swarmpy.worker.executor.base import InvalidSpec
from swarmpy.worker.network.model import DNS_ADDRESS
from swarmpy.worker.task_states import HostPort

NODE_LABEL = "swarmpy.node.id"  # the worker owning the container: several daemons may share one engine
TASK_ID_LABEL = "com.docker.swarm.task.id"

_MOUNT_TYPES = {
    objects_pb2.Mount.BIND: "bind",
    objects_pb2.Mount.VOLUME: "volume",
    objects_pb2.Mount.TMPFS: "tmpfs",
}
_PROTOCOLS = {
    objects_pb2.PortConfig.TCP: "tcp",
    objects_pb2.PortConfig.UDP: "udp",
    objects_pb2.PortConfig.SCTP: "sctp",
}


def service_name(task: objects_pb2.Task) -> str:
    return task.service_annotations.name or task.service_id


def task_name(task: objects_pb2.Task) -> str:
    """`<service>.<slot>` for replicated tasks, `<service>.<node id>` for global ones (slot 0)."""
    if task.annotations.name:
        return task.annotations.name
    return f"{service_name(task)}.{task.slot if task.slot else task.node_id}"


def container_name(task: objects_pb2.Task) -> str:
    return f"{task_name(task)}.{task.id}"


def container_labels(task: objects_pb2.Task, node_id: str) -> dict[str, str]:
    labels = dict(task.spec.container.labels)
    # The system labels come last so a user label can never disguise whose container this is.
    labels.update(
        {
            "com.docker.swarm.node.id": node_id,
            "com.docker.swarm.service.id": task.service_id,
            "com.docker.swarm.service.name": service_name(task),
            TASK_ID_LABEL: task.id,
            "com.docker.swarm.task.name": task_name(task),
            "com.docker.swarm.task.slot": str(task.slot),
            NODE_LABEL: node_id,
        }
    )
    return labels


def published_ports(task: objects_pb2.Task) -> list[objects_pb2.PortConfig]:
    """The ports as the allocator settled them, or as the user asked when nothing was allocated yet."""
    ports = task.endpoint.ports or task.endpoint.spec.ports
    return [port for port in ports if port.target_port]


def host_mode_ports(task: objects_pb2.Task) -> list[HostPort]:
    """The task's host-mode ports as asked (published 0: any free port of the node)."""
    wanted = []
    for port in published_ports(task):
        if port.publish_mode != objects_pb2.PortConfig.HOST:
            continue
        protocol = _PROTOCOLS.get(port.protocol)
        if protocol is None:
            raise InvalidSpec(task.id, f"task {task.id}: unknown protocol {port.protocol} for port {port.target_port}")
        wanted.append(HostPort(port.target_port, protocol, port.published_port))
    return wanted


def port_bindings(task: objects_pb2.Task) -> dict[str, int | None]:
    """Docker port bindings for the task's host-mode ports (a published port of 0: the engine picks one).

    Ingress ports are not the container's: every node's routing mesh serves them (worker/network/mesh.py).
    A task on overlay networks runs with network mode "none", where the engine would ignore bindings: its
    host-mode ports are the node's data plane's instead (HOST_PORTS_LABEL, dataplane.py)."""
    if on_overlay(task):
        return {}
    return {f"{port.target_port}/{port.protocol}": port.published_port or None for port in host_mode_ports(task)}


# The host-mode ports of a task on overlay networks, as the node chose them when creating its container
# (`80/tcp=8080,53/udp=30012`): the data plane DNATs each from the node's addresses to the container, and
# the task's PortStatus reports them. On the container, so they hold for its life and a restarted daemon
# reads them back.
HOST_PORTS_LABEL = "swarmpy.host-ports"
DNS_SERVERS_LABEL = "swarmpy.dns-servers"  # a task on overlays: its --dns servers, its resolver's upstreams


def host_ports_label(ports: list[HostPort]) -> str:
    return ",".join(f"{p.target_port}/{p.protocol}={p.published_port}" for p in ports)


def parse_host_ports_label(text: str) -> tuple[HostPort, ...]:
    """The label's ports; an entry that does not parse is skipped (the label is ours, but a user could
    have set one on a container by hand)."""
    ports = []
    for item in text.split(","):
        port, _, published = item.partition("=")
        target, _, protocol = port.partition("/")
        try:
            ports.append(HostPort(int(target), protocol, int(published)))
        except ValueError:
            continue
    return tuple(ports)


def port_status(task: objects_pb2.Task, bound: tuple[HostPort, ...]) -> list[objects_pb2.PortConfig]:
    """TaskStatus.port_status: the task's host-mode ports as the engine bound them (docker reports only
    those; ingress ports are the service endpoint's), so a published port of 0 shows the engine's pick."""
    bound_to: dict[tuple[int, str], list[int]] = {}
    for port in bound:
        bound_to.setdefault((port.target_port, port.protocol), []).append(port.published_port)
    reported = []
    for port in published_ports(task):
        if port.publish_mode != objects_pb2.PortConfig.HOST:
            continue
        choices = bound_to.get((port.target_port, _PROTOCOLS.get(port.protocol, "")), [])
        # The asked-for host port if it is bound, else the engine's pick (published 0).
        if port.published_port in choices:
            published = port.published_port
        elif choices and not port.published_port:
            published = choices[0]
        else:
            continue
        choices.remove(published)
        reported.append(objects_pb2.PortConfig(
            name=port.name, protocol=port.protocol, target_port=port.target_port,
            published_port=published, publish_mode=port.publish_mode,
        ))
    return reported


def generic_resource_env(task: objects_pb2.Task) -> list[str]:
    """The generic-resource units the scheduler gave the task, as docker's executor shows them to the
    process: DOCKER_RESOURCE_<KIND>=<values joined by commas>, a named unit by its name, a count by the
    number (`DOCKER_RESOURCE_GPU=GPU-1,GPU-2`, `DOCKER_RESOURCE_SSD=2`), the kind upper-cased."""
    values: dict[str, list[str]] = {}
    for resource in task.assigned_generic_resources:
        value = resource.named if resource.WhichOneof("value") == "named" else str(resource.discrete)
        values.setdefault(f"DOCKER_RESOURCE_{resource.kind}".upper(), []).append(value)
    return [f"{name}={','.join(units)}" for name, units in values.items()]


def _mount_options(mount: objects_pb2.Mount) -> dict[str, Any]:
    """The per-type options of a mount as docker-py's Mount takes them (a named volume with a driver
    or labels is created that way by the engine when first used)."""
    options: dict[str, Any] = {}
    if mount.bind_options.propagation:
        options["propagation"] = mount.bind_options.propagation
    volume = mount.volume_options
    if volume.no_copy:
        options["no_copy"] = True
    if volume.labels:
        options["labels"] = dict(volume.labels)
    if volume.HasField("driver_config"):
        options["driver_config"] = docker.types.DriverConfig(
            volume.driver_config.name, dict(volume.driver_config.options) or None)
    if mount.tmpfs_options.size_bytes:
        options["tmpfs_size"] = mount.tmpfs_options.size_bytes
    if mount.tmpfs_options.mode:
        options["tmpfs_mode"] = mount.tmpfs_options.mode
    return options


def mounts(task: objects_pb2.Task, container: objects_pb2.ContainerSpec | None = None) -> list[docker.types.Mount]:
    result = []
    for mount in (container or task.spec.container).mounts:
        if not mount.target:
            raise InvalidSpec(task.id, f"task {task.id}: a mount has no target")
        kind = _MOUNT_TYPES.get(mount.type)
        if kind is None:
            raise InvalidSpec(task.id, f"task {task.id}: unknown mount type {mount.type} for {mount.target}")
        if kind == "bind" and not mount.source:
            raise InvalidSpec(task.id, f"task {task.id}: bind mount {mount.target} has no source")
        # Docker wants no source at all for tmpfs and for anonymous volumes.
        source = mount.source or None
        result.append(docker.types.Mount(target=mount.target, source=source, type=kind, read_only=mount.read_only,
                                         **_mount_options(mount)))
    return result


def healthcheck(health: objects_pb2.HealthConfig) -> dict[str, Any]:
    """The engine's HealthConfig. An empty test keeps the image's HEALTHCHECK command, a zero duration or
    retry count the image's value (else the engine's default: 30 s, 30 s, 3, 0 s); ["NONE"] turns it off."""
    return {
        "test": list(health.test),
        "interval": health.interval,
        "timeout": health.timeout,
        "retries": health.retries,
        "start_period": health.start_period,
    }


def _expanded_container(task: objects_pb2.Task, node_id: str,
                        node: objects_pb2.NodeDescription | None) -> objects_pb2.ContainerSpec:
    context = task_templates.template_context(task, node, node_id, container_name(task))
    try:
        return task_templates.expand_container_spec(task.spec.container, context)
    except ValueError as error:
        raise InvalidSpec(task.id, f"task {task.id}: {error}") from None


def _security_and_limits(spec: objects_pb2.ContainerSpec) -> dict[str, Any]:
    """The container flags beyond the process itself: privileges, kernel knobs, the root filesystem."""
    kwargs: dict[str, Any] = {}
    if spec.HasField("init"):
        kwargs["init"] = spec.init
    if spec.read_only:
        kwargs["read_only"] = True
    if spec.sysctls:
        kwargs["sysctls"] = dict(spec.sysctls)
    if spec.capability_add:
        kwargs["cap_add"] = list(spec.capability_add)
    if spec.capability_drop:
        kwargs["cap_drop"] = list(spec.capability_drop)
    if spec.ulimits:
        kwargs["ulimits"] = [docker.types.Ulimit(name=u.name, soft=u.soft, hard=u.hard) for u in spec.ulimits]
    if spec.groups:
        kwargs["group_add"] = list(spec.groups)
    if spec.isolation:
        kwargs["isolation"] = spec.isolation
    security = credential_spec.security_options(spec)
    if security:  # a Linux engine refuses it: the task is rejected with the engine's reason, as in docker
        kwargs["security_opt"] = security
    return kwargs


def on_overlay(task: objects_pb2.Task) -> bool:
    """Whether the task joins overlay networks (then the node's data plane gives it its interfaces)."""
    return bool(task.networks or task.spec.networks)


def _dns_and_hosts(task: objects_pb2.Task, spec: objects_pb2.ContainerSpec) -> dict[str, Any]:
    """--dns, --dns-search, --dns-option and --host: the engine writes them into resolv.conf and hosts.

    A task on overlay networks has only the embedded resolver (127.0.0.11, served by the node's data
    plane inside the container) in its resolv.conf, as docker's does; the user's --dns servers become
    that resolver's upstreams for this container (recorded in DNS_SERVERS_LABEL, read back by the data
    plane), in place of the node's own: a name the swarm does not know is asked there, and an NXDOMAIN
    from them is the answer, as the user meant."""
    kwargs: dict[str, Any] = {}
    dns = spec.dns_config
    nameservers = [str(DNS_ADDRESS)] if on_overlay(task) else list(dict.fromkeys(dns.nameservers))
    if nameservers:
        kwargs["dns"] = nameservers
    if dns.search:
        kwargs["dns_search"] = list(dns.search)
    options = list(dns.options)
    if on_overlay(task) and not any(option.startswith("ndots:") for option in options):
        # docker's for the embedded resolver: a bare name (a service, `tasks.x`) is asked as it is
        # first, not through the search domains (which the user's servers might answer for anything).
        options.append("ndots:0")
    if options:
        kwargs["dns_opt"] = options
    extra_hosts = []
    for line in spec.hosts:  # the swarm's "IP NAME [ALIAS...]"; the engine's "NAME:IP"
        address, *names = line.split()
        extra_hosts.extend(f"{name}:{address}" for name in names)
    if extra_hosts:
        kwargs["extra_hosts"] = extra_hosts
    return kwargs


def create_kwargs(task: objects_pb2.Task, node_id: str,
                  node: objects_pb2.NodeDescription | None = None,
                  overlay_host_ports: list[HostPort] | None = None) -> dict[str, Any]:
    """Keyword arguments for docker.DockerClient.containers.create; `node` is this node's description,
    for the templates in hostname, env and mounts; `overlay_host_ports` the host-mode ports the node
    chose for a task on overlay networks (recorded in HOST_PORTS_LABEL)."""
    if not task.spec.container.image:
        raise InvalidSpec(task.id, f"task {task.id}: the container spec has no image")
    spec = _expanded_container(task, node_id, node)
    kwargs: dict[str, Any] = {
        "image": spec.image,
        "name": container_name(task),
        "labels": container_labels(task, node_id),
        "environment": list(spec.env) + generic_resource_env(task),
        "tty": spec.tty,
        "detach": True,
        "mounts": mounts(task, spec),
        **_security_and_limits(spec),
        **_dns_and_hosts(task, spec),
    }
    if on_overlay(task):
        # The engine gives the container a namespace with only a loopback; the node's data plane adds
        # one veth per overlay network (and the egress one) once the container runs (dataplane.py).
        kwargs["network_mode"] = "none"
        if overlay_host_ports:
            kwargs["labels"][HOST_PORTS_LABEL] = host_ports_label(overlay_host_ports)
        if spec.dns_config.nameservers:
            kwargs["labels"][DNS_SERVERS_LABEL] = ",".join(dict.fromkeys(spec.dns_config.nameservers))
    if spec.command:
        kwargs["entrypoint"] = list(spec.command)
    if spec.args:
        kwargs["command"] = list(spec.args)
    if spec.dir:
        kwargs["working_dir"] = spec.dir
    if spec.user:
        kwargs["user"] = spec.user
    if spec.hostname:
        kwargs["hostname"] = spec.hostname
    if spec.stop_signal:
        kwargs["stop_signal"] = spec.stop_signal
    if spec.HasField("healthcheck"):
        kwargs["healthcheck"] = healthcheck(spec.healthcheck)
    limits = task.spec.resources.limits
    if limits.nano_cpus:
        kwargs["nano_cpus"] = limits.nano_cpus
    if limits.memory_bytes:
        kwargs["mem_limit"] = limits.memory_bytes
    if limits.pids:
        kwargs["pids_limit"] = limits.pids
    if task.spec.HasField("log_driver") and task.spec.log_driver.name:
        kwargs["log_config"] = docker.types.LogConfig(type=task.spec.log_driver.name,
                                                      config=dict(task.spec.log_driver.options))
    # A CPU reservation only guides the scheduler; the engine has no such knob.
    if task.spec.resources.reservations.memory_bytes:
        kwargs["mem_reservation"] = task.spec.resources.reservations.memory_bytes
    bindings = port_bindings(task)
    if bindings:
        kwargs["ports"] = bindings
    return kwargs
