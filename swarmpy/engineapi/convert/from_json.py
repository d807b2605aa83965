"""Engine API JSON -> swarmpy's protobuf specs, as the engine reads what clients send.

Keys are matched case-insensitively (Go's encoding/json does; docker-py sends "replicated"); a key
this module never reads is not silently lost: `unread_keys` names every one that carried a value
(the engine would have kept it; swarmpy does not model it), and the service endpoints return them as
create/update `Warnings`, the engine's way of telling a client; a known key with a value of the wrong type is refused
with a message naming its path ("Spec.Mode.Replicated.Replicas"), so nothing half-read reaches the
control API. Zero values mean what they mean in the engine: an empty enum word is the default, a
missing RestartPolicy.Condition is "any", a `Replicated` mode without `Replicas` runs one.

This module converts; it does not validate meaning (an image name, a port range): the control API's
validation does that for both doors.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from swarmpy.api import control_pb2, objects_pb2

from ..errors import BadRequest

_T = TypeVar("_T")

_LIMITS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1),
           "uint32": (0, 2**32 - 1), "uint64": (0, 2**64 - 1)}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


# While `reading()` is active: the lowercased paths read as leaves, and those opened as objects/arrays.
_reads: contextvars.ContextVar[tuple[set[str], set[str]] | None] = contextvars.ContextVar("_reads", default=None)


class Fields:
    """One JSON object, read by case-insensitive key, that knows its path for error messages."""

    def __init__(self, raw: Any, path: str) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise BadRequest(f"invalid JSON: {path or 'the body'} must be an object, not {_kind(raw)}")
        self._values = {str(key).lower(): value for key, value in raw.items()}
        self.path = path

    def _at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _note(self, key: str, opened: bool = False) -> None:
        reads = _reads.get()
        if reads is not None:
            reads[1 if opened else 0].add(self._at(key).lower())

    def raw(self, key: str) -> Any:
        self._note(key)
        return self._values.get(key.lower())

    def has(self, key: str) -> bool:
        self._note(key)
        return self._values.get(key.lower()) is not None

    def _typed(self, key: str, types: tuple[type, ...], what: str) -> Any:
        value = self.raw(key)
        if value is not None and (not isinstance(value, types) or (bool not in types and isinstance(value, bool))):
            raise BadRequest(f"invalid JSON: {self._at(key)} must be {what}, not {_kind(value)}")
        return value

    def obj(self, key: str) -> Fields:
        self._note(key, opened=True)
        return Fields(self._typed(key, (dict,), "an object"), self._at(key))

    def text(self, key: str, default: str = "") -> str:
        value = self._typed(key, (str,), "a string")
        return default if value is None else value

    def integer(self, key: str, kind: str = "int64", default: int = 0) -> int:
        value = self._typed(key, (int, float), "an integer")
        if value is None:
            return default
        if isinstance(value, float):
            if not value.is_integer():
                raise BadRequest(f"invalid JSON: {self._at(key)} must be an integer, not {value!r}")
            value = int(value)
        low, high = _LIMITS[kind]
        if not low <= value <= high:
            raise BadRequest(f"invalid JSON: {self._at(key)} {value} is out of range for {kind}")
        return value

    def number(self, key: str) -> float:
        value = self._typed(key, (int, float), "a number")
        return 0.0 if value is None else float(value)

    def flag(self, key: str) -> bool:
        return bool(self._typed(key, (bool,), "a boolean"))

    def texts(self, key: str) -> list[str]:
        values = self._typed(key, (list,), "an array of strings") or []
        for index, value in enumerate(values):
            if not isinstance(value, str):
                raise BadRequest(f"invalid JSON: {self._at(key)}[{index}] must be a string, not {_kind(value)}")
        return values

    def text_map(self, key: str) -> dict[str, str]:
        values = self._typed(key, (dict,), "an object of strings") or {}
        for name, value in values.items():
            if not isinstance(value, str):
                raise BadRequest(f"invalid JSON: {self._at(key)}.{name} must be a string, not {_kind(value)}")
        return values

    def objs(self, key: str) -> list[Fields]:
        self._note(key, opened=True)
        values = self._typed(key, (list,), "an array of objects") or []
        return [Fields(value, f"{self._at(key)}[{index}]") for index, value in enumerate(values)]

    def word(self, key: str, enum: Any, default: int = 0) -> int:
        """An enum spelled as docker spells it ("on-failure", "stop-first"); "" is the default."""
        value = self.text(key)
        if not value:
            return default
        name = value.upper().replace("-", "_")
        if name not in enum.keys():
            choices = ", ".join(n.lower().replace("_", "-") for n in enum.keys())
            raise BadRequest(f"invalid {self._at(key)} {value!r}: must be one of {choices}")
        return enum.Value(name)


def read_body(raw: Any) -> Fields:
    return Fields(raw, "")


@contextlib.contextmanager
def reading() -> Iterator[tuple[set[str], set[str]]]:
    """Record which keys the conversion inside reads (for `unread_keys`)."""
    reads: tuple[set[str], set[str]] = (set(), set())
    token = _reads.set(reads)
    try:
        yield reads
    finally:
        _reads.reset(token)


def unread_keys(raw: Any, reads: tuple[set[str], set[str]], path: str = "") -> list[str]:
    """The paths in `raw` that carry a value (not null, "", 0, false, {} or []) and were never read."""
    leaves, opened = reads
    found: list[str] = []
    if isinstance(raw, dict):
        for key, value in raw.items():
            at = f"{path}.{key}" if path else str(key)
            if at.lower() in opened:
                found.extend(unread_keys(value, reads, at))
            elif at.lower() not in leaves and value not in (None, "", 0, False, {}, []):
                found.append(at)
    elif isinstance(raw, list):
        for index, value in enumerate(raw):
            found.extend(unread_keys(value, reads, f"{path}[{index}]"))
    return found


def converted_and_unread(convert: Callable[[Fields], _T], raw: Any) -> tuple[_T, list[str]]:
    """convert(read_body(raw)), and the warnings for what the body carried that swarmpy drops."""
    with reading() as reads:
        converted = convert(read_body(raw))
    return converted, [f"swarmpy does not model {path}: the value sent was not applied" for path in unread_keys(raw, reads)]


def service_spec_and_unread(raw: Any) -> tuple[objects_pb2.ServiceSpec, list[str]]:
    """service_spec of a request body, and the warnings for what it carried that swarmpy drops."""
    return converted_and_unread(service_spec, raw)


# -- services ------------------------------------------------------------------------------------


def service_spec(fields: Fields) -> objects_pb2.ServiceSpec:
    spec = objects_pb2.ServiceSpec()
    spec.annotations.name = fields.text("Name")
    spec.annotations.labels.update(fields.text_map("Labels"))
    spec.task.CopyFrom(task_spec(fields.obj("TaskTemplate")))
    _mode(fields.obj("Mode"), spec)
    if fields.has("UpdateConfig"):
        spec.update.CopyFrom(update_config(fields.obj("UpdateConfig")))
    if fields.has("RollbackConfig"):
        spec.rollback.CopyFrom(update_config(fields.obj("RollbackConfig")))
    spec.endpoint.CopyFrom(endpoint_spec(fields.obj("EndpointSpec")))
    if fields.raw("Networks") and not spec.task.networks:
        spec.task.networks.extend(_networks(fields))  # the deprecated place for them, older clients use it
    return spec


def _networks(fields: Fields) -> list[objects_pb2.NetworkAttachmentConfig]:
    """Targets may be names: the control API resolves them to IDs, for both doors."""
    attachments = []
    for network in fields.objs("Networks"):
        attachment = objects_pb2.NetworkAttachmentConfig(target=network.text("Target"), aliases=network.texts("Aliases"))
        attachment.driver_attachment_opts.update(network.text_map("DriverOpts"))
        attachments.append(attachment)
    return attachments


def _mode(mode: Fields, spec: objects_pb2.ServiceSpec) -> None:
    given = [name for name in ("Replicated", "Global", "ReplicatedJob", "GlobalJob") if mode.has(name)]
    if len(given) > 1:
        raise BadRequest(f"invalid {mode.path}: a service has one mode, not {' and '.join(given)}")
    if mode.has("ReplicatedJob"):
        job = mode.obj("ReplicatedJob")
        spec.replicated_job.max_concurrent = job.integer("MaxConcurrent", "uint64", default=1)
        spec.replicated_job.total_completions = job.integer("TotalCompletions", "uint64",
                                                            default=spec.replicated_job.max_concurrent)
        return
    if mode.has("GlobalJob"):
        spec.global_job.SetInParent()
        return
    if mode.has("Global"):
        getattr(spec, "global").SetInParent()  # `global` is a Python keyword
        return
    replicated = mode.obj("Replicated")
    spec.replicated.replicas = replicated.integer("Replicas", "uint64", default=1)


def task_spec(fields: Fields) -> objects_pb2.TaskSpec:
    task = objects_pb2.TaskSpec()
    task.container.CopyFrom(container_spec(fields.obj("ContainerSpec")))
    resources = fields.obj("Resources")
    if resources.has("Limits"):
        task.resources.limits.CopyFrom(_resources(resources.obj("Limits")))
    if resources.has("Reservations"):
        task.resources.reservations.CopyFrom(_resources(resources.obj("Reservations")))
    if fields.has("RestartPolicy"):
        restart = fields.obj("RestartPolicy")
        task.restart.condition = restart.word("Condition", objects_pb2.RestartPolicy.Condition, objects_pb2.RestartPolicy.ANY)
        if restart.has("Delay"):
            task.restart.delay = restart.integer("Delay")
        task.restart.max_attempts = restart.integer("MaxAttempts", "uint64")
        task.restart.window = restart.integer("Window")
    placement = fields.obj("Placement")
    task.placement.constraints.extend(placement.texts("Constraints"))
    for preference in placement.objs("Preferences"):
        task.placement.preferences.add(spread=preference.obj("Spread").text("SpreadDescriptor"))
    task.placement.max_replicas = placement.integer("MaxReplicas", "uint64")
    for platform in placement.objs("Platforms"):
        task.placement.platforms.add(architecture=platform.text("Architecture"), os=platform.text("OS"))
    task.force_update = fields.integer("ForceUpdate", "uint64")
    if fields.has("LogDriver"):
        task.log_driver.CopyFrom(_driver(fields.obj("LogDriver")))
    task.networks.extend(_networks(fields))
    return task


def _resources(fields: Fields) -> objects_pb2.Resources:
    resources = objects_pb2.Resources(
        nano_cpus=fields.integer("NanoCPUs"), memory_bytes=fields.integer("MemoryBytes"), pids=fields.integer("Pids")
    )
    for generic in fields.objs("GenericResources"):
        if generic.has("NamedResourceSpec"):
            named = generic.obj("NamedResourceSpec")
            resources.generic.add(kind=named.text("Kind"), named=named.text("Value"))
        else:
            discrete = generic.obj("DiscreteResourceSpec")
            resources.generic.add(kind=discrete.text("Kind"), discrete=discrete.integer("Value"))
    return resources


def _credential_spec(fields: Fields) -> objects_pb2.Privileges.CredentialSpec:
    """moby's rule: exactly one of Config, File, Registry (its messages)."""
    given = [key for key in ("Config", "File", "Registry") if fields.text(key)]
    if not given:
        raise BadRequest('invalid CredentialSpec: must either provide "file", "registry", or "config" for credential spec')
    if len(given) > 1:
        words = [f'"{key.lower()}"' for key in given]
        listed = " and ".join(words) if len(words) == 2 else f"{', '.join(words[:-1])}, and {words[-1]}"
        raise BadRequest(f"invalid CredentialSpec: cannot specify both {listed} credential specs")
    spec = objects_pb2.Privileges.CredentialSpec()
    setattr(spec, given[0].lower(), fields.text(given[0]))
    return spec


def _driver(fields: Fields) -> objects_pb2.Driver:
    driver = objects_pb2.Driver(name=fields.text("Name"))
    driver.options.update(fields.text_map("Options"))
    return driver


def container_spec(fields: Fields) -> objects_pb2.ContainerSpec:
    container = objects_pb2.ContainerSpec(
        image=fields.text("Image"),
        command=fields.texts("Command"),
        args=fields.texts("Args"),
        env=fields.texts("Env"),
        dir=fields.text("Dir"),
        user=fields.text("User"),
        hostname=fields.text("Hostname"),
        groups=fields.texts("Groups"),
        tty=fields.flag("TTY"),
        read_only=fields.flag("ReadOnly"),
        stop_signal=fields.text("StopSignal"),
        capability_add=fields.texts("CapabilityAdd"),
        capability_drop=fields.texts("CapabilityDrop"),
    )
    container.labels.update(fields.text_map("Labels"))
    container.sysctls.update(fields.text_map("Sysctls"))
    isolation = fields.text("Isolation")
    if isolation:
        container.isolation = isolation
    if fields.has("StopGracePeriod"):
        container.stop_grace_period = fields.integer("StopGracePeriod")
    if fields.has("Init"):
        container.init = fields.flag("Init")
    if fields.has("Healthcheck"):
        health = fields.obj("Healthcheck")
        container.healthcheck.CopyFrom(objects_pb2.HealthConfig(
            test=health.texts("Test"), interval=health.integer("Interval"), timeout=health.integer("Timeout"),
            retries=health.integer("Retries", "int32"), start_period=health.integer("StartPeriod"),
        ))
    for mount in fields.objs("Mounts"):
        container.mounts.append(_mount(mount))
    if fields.has("DNSConfig"):
        dns = fields.obj("DNSConfig")
        container.dns_config.CopyFrom(objects_pb2.DNSConfig(
            nameservers=dns.texts("Nameservers"), search=dns.texts("Search"), options=dns.texts("Options")))
    container.hosts.extend(fields.texts("Hosts"))
    if fields.obj("Privileges").has("CredentialSpec"):
        container.privileges.credential_spec.CopyFrom(_credential_spec(fields.obj("Privileges").obj("CredentialSpec")))
    for ulimit in fields.objs("Ulimits"):
        container.ulimits.add(name=ulimit.text("Name"), soft=ulimit.integer("Soft"), hard=ulimit.integer("Hard"))
    for reference in fields.objs("Secrets"):
        container.secrets.add(secret_id=reference.text("SecretID"), secret_name=reference.text("SecretName"),
                              file=_file_target(reference.obj("File")))
    for reference in fields.objs("Configs"):
        container.configs.add(config_id=reference.text("ConfigID"), config_name=reference.text("ConfigName"),
                              file=_file_target(reference.obj("File")))
    return container


def _file_target(fields: Fields) -> objects_pb2.FileTarget:
    return objects_pb2.FileTarget(name=fields.text("Name"), uid=fields.text("UID"), gid=fields.text("GID"),
                                  mode=fields.integer("Mode", "uint32"))


def _mount(fields: Fields) -> objects_pb2.Mount:
    mount = objects_pb2.Mount(
        type=fields.word("Type", objects_pb2.Mount.Type), source=fields.text("Source"),
        target=fields.text("Target"), read_only=fields.flag("ReadOnly"),
    )
    if fields.has("BindOptions"):
        mount.bind_options.propagation = fields.obj("BindOptions").text("Propagation")
    if fields.has("VolumeOptions"):
        volume = fields.obj("VolumeOptions")
        mount.volume_options.no_copy = volume.flag("NoCopy")
        mount.volume_options.labels.update(volume.text_map("Labels"))
        if volume.has("DriverConfig"):
            mount.volume_options.driver_config.CopyFrom(_driver(volume.obj("DriverConfig")))
    if fields.has("TmpfsOptions"):
        tmpfs = fields.obj("TmpfsOptions")
        mount.tmpfs_options.size_bytes = tmpfs.integer("SizeBytes")
        mount.tmpfs_options.mode = tmpfs.integer("Mode", "uint32")
    return mount


def update_config(fields: Fields) -> objects_pb2.UpdateConfig:
    config = objects_pb2.UpdateConfig(
        parallelism=fields.integer("Parallelism", "uint64"),
        delay=fields.integer("Delay"),
        failure_action=fields.word("FailureAction", objects_pb2.UpdateConfig.FailureAction),
        max_failure_ratio=fields.number("MaxFailureRatio"),
        order=fields.word("Order", objects_pb2.UpdateConfig.Order),
    )
    if fields.has("Monitor"):
        config.monitor = fields.integer("Monitor")
    return config


def endpoint_spec(fields: Fields) -> objects_pb2.EndpointSpec:
    endpoint = objects_pb2.EndpointSpec(mode=fields.word("Mode", objects_pb2.EndpointSpec.ResolutionMode))
    for port in fields.objs("Ports"):
        endpoint.ports.add(
            name=port.text("Name"),
            protocol=port.word("Protocol", objects_pb2.PortConfig.Protocol),
            target_port=port.integer("TargetPort", "uint32"),
            published_port=port.integer("PublishedPort", "uint32"),
            publish_mode=port.word("PublishMode", objects_pb2.PortConfig.PublishMode),
        )
    return endpoint


# -- nodes, the swarm, secrets and configs ----------------------------------------------------------


def node_spec(fields: Fields) -> objects_pb2.NodeSpec:
    spec = objects_pb2.NodeSpec(
        desired_role=fields.word("Role", objects_pb2.NodeRole),
        availability=fields.word("Availability", objects_pb2.NodeSpec.Availability),
    )
    spec.annotations.name = fields.text("Name")
    spec.annotations.labels.update(fields.text_map("Labels"))
    return spec


def cluster_spec(fields: Fields) -> objects_pb2.ClusterSpec:
    spec = objects_pb2.ClusterSpec()
    # The CLI sends back the whole Spec it read: an update of anything else keeps autolock as it was.
    spec.encryption_config.auto_lock_managers = fields.obj("EncryptionConfig").flag("AutoLockManagers")
    spec.annotations.name = fields.text("Name")
    spec.annotations.labels.update(fields.text_map("Labels"))
    spec.orchestration.task_history_retention_limit = fields.obj("Orchestration").integer("TaskHistoryRetentionLimit")
    raft = fields.obj("Raft")
    spec.raft.CopyFrom(objects_pb2.RaftConfig(
        snapshot_interval=raft.integer("SnapshotInterval", "uint64"),
        keep_old_snapshots=raft.integer("KeepOldSnapshots", "uint64"),
        log_entries_for_slow_followers=raft.integer("LogEntriesForSlowFollowers", "uint64"),
        heartbeat_tick=raft.integer("HeartbeatTick", "uint32"),
        election_tick=raft.integer("ElectionTick", "uint32"),
    ))
    spec.dispatcher.heartbeat_period = fields.obj("Dispatcher").integer("HeartbeatPeriod")
    ca_config = fields.obj("CAConfig")
    spec.ca_config.node_cert_expiry = ca_config.integer("NodeCertExpiry")
    # `docker swarm ca --rotate`: a root to rotate to, or ForceRotate raised for a new one (ca_config.py).
    spec.ca_config.signing_ca_cert = ca_config.text("SigningCACert").encode()
    spec.ca_config.signing_ca_key = ca_config.text("SigningCAKey").encode()
    spec.ca_config.force_rotate = ca_config.integer("ForceRotate", "uint64")
    if ca_config.raw("ExternalCAs"):
        raise BadRequest("external CAs (CAConfig.ExternalCAs) are not supported by swarmpy: it signs node "
                         "certificates with the swarm's own root CA")
    return spec


def init_request(fields: Fields) -> control_pb2.InitRequest:
    request = _init_request(fields)
    if fields.flag("AutoLockManagers"):  # `docker swarm init --autolock`
        request.spec.encryption_config.auto_lock_managers = True
    return request


def _init_request(fields: Fields) -> control_pb2.InitRequest:
    return control_pb2.InitRequest(
        listen_addr=fields.text("ListenAddr"),
        advertise_addr=fields.text("AdvertiseAddr"),
        force_new_cluster=fields.flag("ForceNewCluster"),
        spec=cluster_spec(fields.obj("Spec")),
        availability=fields.word("Availability", objects_pb2.NodeSpec.Availability),
    )


def join_request(fields: Fields) -> control_pb2.JoinRequest:
    return control_pb2.JoinRequest(
        listen_addr=fields.text("ListenAddr"),
        advertise_addr=fields.text("AdvertiseAddr"),
        remote_addrs=fields.texts("RemoteAddrs"),
        join_token=fields.text("JoinToken"),
        availability=fields.word("Availability", objects_pb2.NodeSpec.Availability),
    )


def secret_or_config_spec(fields: Fields, spec_type: type) -> Any:
    """A SecretSpec or ConfigSpec: Data is base64, as in the engine's JSON."""
    if fields.obj("Driver").text("Name"):
        raise BadRequest("secret drivers (Driver) are not supported by swarmpy")
    try:
        data = base64.b64decode(fields.text("Data"), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("invalid JSON: Data must be base64") from None
    spec = spec_type(data=data, template_driver=fields.obj("Templating").text("Name"))
    spec.annotations.name = fields.text("Name")
    spec.annotations.labels.update(fields.text_map("Labels"))
    return spec


def network_spec(fields: Fields) -> objects_pb2.NetworkSpec:
    spec = objects_pb2.NetworkSpec(ipv6_enabled=fields.flag("EnableIPv6"), internal=fields.flag("Internal"),
                                   attachable=fields.flag("Attachable"), ingress=fields.flag("Ingress"))
    spec.annotations.name = fields.text("Name")
    spec.annotations.labels.update(fields.text_map("Labels"))
    fields.flag("CheckDuplicate")  # the docker CLI sends true; a swarm refuses a duplicate name anyway
    fields.text("Scope")  # "swarm" or empty: it chose this path (networks.py)
    spec.driver_config.name = fields.text("Driver", "overlay")
    spec.driver_config.options.update(fields.text_map("Options"))
    ipam = fields.obj("IPAM")
    if ipam.text("Driver"):
        spec.ipam.driver.name = ipam.text("Driver")
    spec.ipam.driver.options.update(ipam.text_map("Options"))
    for config in ipam.objs("Config"):
        spec.ipam.configs.add(subnet=config.text("Subnet"), range=config.text("IPRange"), gateway=config.text("Gateway"))
    return spec
