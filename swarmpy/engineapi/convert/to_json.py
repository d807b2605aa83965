"""swarmpy's protobuf objects -> Docker Engine API JSON shapes (dicts ready for json.dumps).

Used by the Engine API (swarmpy.engineapi) and by the CLI's `inspect` and `--format json`, so the
keys, nesting and enum spellings are Docker's: durations are integer nanoseconds, times are
RFC3339Nano strings, enums are lowercase words. Fields the user never set are left out, as Docker
leaves out nil pointers and `omitempty` values.
"""

from __future__ import annotations

import base64
import datetime
from typing import Any

from swarmpy.api import objects_pb2

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def utc_time_text(unix_nanos: int, seconds_format: str, zone: str, *, fixed_fraction: bool = False) -> str:
    """A time in UTC as Go prints it: the whole seconds (strftime `seconds_format`), the fraction, `zone`.

    Go's "Nano" layouts drop the fraction's trailing zeros (and a zero fraction entirely); a fixed
    fraction keeps all nine digits so that columns line up.
    """
    seconds, nanos = divmod(unix_nanos, 1_000_000_000)
    moment = _EPOCH + datetime.timedelta(seconds=seconds)
    if fixed_fraction:
        fraction = f".{nanos:09d}"
    else:
        fraction = f".{nanos:09d}".rstrip("0") if nanos else ""
    return moment.strftime(seconds_format) + fraction + zone


def rfc3339_nano(unix_nanos: int) -> str:
    """Go's time.RFC3339Nano in UTC: fractional seconds with trailing zeros dropped."""
    return utc_time_text(unix_nanos, "%Y-%m-%dT%H:%M:%S", "Z")


def fixed_rfc3339_nano(unix_nanos: int) -> str:
    """docker's log timestamps always carry nine fractional digits, so columns line up."""
    return utc_time_text(unix_nanos, "%Y-%m-%dT%H:%M:%S", "Z", fixed_fraction=True)


def enum_word(enum_type, value: int) -> str:
    """ON_FAILURE -> "on-failure", STOP_FIRST -> "stop-first", RUNNING -> "running"."""
    return enum_type.Name(value).lower().replace("_", "-")


def task_state_word(state: int) -> str:
    return objects_pb2.TaskState.Name(state).lower()


def _meta(meta: objects_pb2.Meta) -> dict[str, Any]:
    return {
        "Version": {"Index": meta.version.index},
        "CreatedAt": rfc3339_nano(meta.created_at),
        "UpdatedAt": rfc3339_nano(meta.updated_at),
    }


def _resources(resources: objects_pb2.Resources) -> dict[str, Any]:
    converted: dict[str, Any] = {}
    if resources.nano_cpus:
        converted["NanoCPUs"] = resources.nano_cpus
    if resources.memory_bytes:
        converted["MemoryBytes"] = resources.memory_bytes
    if resources.pids:
        converted["Pids"] = resources.pids
    if resources.generic:
        converted["GenericResources"] = [generic_resource(r) for r in resources.generic]
    return converted


def generic_resource(resource: objects_pb2.GenericResource) -> dict[str, Any]:
    if resource.WhichOneof("value") == "named":
        return {"NamedResourceSpec": {"Kind": resource.kind, "Value": resource.named}}
    return {"DiscreteResourceSpec": {"Kind": resource.kind, "Value": resource.discrete}}


def driver(config: objects_pb2.Driver) -> dict[str, Any]:
    converted: dict[str, Any] = {"Name": config.name}
    if config.options:
        converted["Options"] = dict(config.options)
    return converted


def mount(m: objects_pb2.Mount) -> dict[str, Any]:
    converted: dict[str, Any] = {"Type": enum_word(objects_pb2.Mount.Type, m.type)}
    if m.source:  # docker leaves an empty source out (tmpfs, anonymous volumes)
        converted["Source"] = m.source
    converted["Target"] = m.target
    if m.read_only:
        converted["ReadOnly"] = True
    if m.HasField("bind_options"):
        converted["BindOptions"] = {"Propagation": m.bind_options.propagation} if m.bind_options.propagation else {}
    if m.HasField("volume_options"):
        volume: dict[str, Any] = {}
        if m.volume_options.no_copy:
            volume["NoCopy"] = True
        if m.volume_options.labels:
            volume["Labels"] = dict(m.volume_options.labels)
        if m.volume_options.HasField("driver_config"):
            volume["DriverConfig"] = driver(m.volume_options.driver_config)
        converted["VolumeOptions"] = volume
    if m.HasField("tmpfs_options"):
        tmpfs: dict[str, Any] = {}
        if m.tmpfs_options.size_bytes:
            tmpfs["SizeBytes"] = m.tmpfs_options.size_bytes
        if m.tmpfs_options.mode:
            tmpfs["Mode"] = m.tmpfs_options.mode
        converted["TmpfsOptions"] = tmpfs
    return converted


def resource_requirements(requirements: objects_pb2.ResourceRequirements) -> dict[str, Any]:
    converted = {}
    if requirements.HasField("limits"):
        converted["Limits"] = _resources(requirements.limits)
    if requirements.HasField("reservations"):
        converted["Reservations"] = _resources(requirements.reservations)
    return converted


def _healthcheck(health: objects_pb2.HealthConfig) -> dict[str, Any]:
    converted: dict[str, Any] = {"Test": list(health.test)}
    for key, value in (("Interval", health.interval), ("Timeout", health.timeout),
                       ("StartPeriod", health.start_period), ("Retries", health.retries)):
        if value:
            converted[key] = value
    return converted


def container_spec(container: objects_pb2.ContainerSpec) -> dict[str, Any]:
    converted: dict[str, Any] = {"Image": container.image}
    if container.labels:
        converted["Labels"] = dict(container.labels)
    if container.command:
        converted["Command"] = list(container.command)
    if container.args:
        converted["Args"] = list(container.args)
    if container.hostname:
        converted["Hostname"] = container.hostname
    if container.env:
        converted["Env"] = list(container.env)
    if container.dir:
        converted["Dir"] = container.dir
    if container.user:
        converted["User"] = container.user
    if container.groups:
        converted["Groups"] = list(container.groups)
    if container.privileges.HasField("credential_spec"):  # moby's Privileges: both pointers shown, null or not
        given = container.privileges.credential_spec
        converted["Privileges"] = {
            "CredentialSpec": {"Config": given.config, "File": given.file, "Registry": given.registry},
            "SELinuxContext": None, "NoNewPrivileges": False}
    if container.tty:
        converted["TTY"] = True
    if container.read_only:
        converted["ReadOnly"] = True
    if container.mounts:
        converted["Mounts"] = [mount(m) for m in container.mounts]
    if container.HasField("stop_grace_period"):
        converted["StopGracePeriod"] = container.stop_grace_period
    if container.stop_signal:
        converted["StopSignal"] = container.stop_signal
    if container.HasField("healthcheck"):
        converted["Healthcheck"] = _healthcheck(container.healthcheck)
    if container.secrets:
        converted["Secrets"] = [_file_reference(r.file, SecretID=r.secret_id, SecretName=r.secret_name) for r in container.secrets]
    if container.configs:
        converted["Configs"] = [_file_reference(r.file, ConfigID=r.config_id, ConfigName=r.config_name) for r in container.configs]
    if container.HasField("init"):
        converted["Init"] = container.init
    if container.isolation:
        converted["Isolation"] = container.isolation
    if container.sysctls:
        converted["Sysctls"] = dict(container.sysctls)
    if container.capability_add:
        converted["CapabilityAdd"] = list(container.capability_add)
    if container.capability_drop:
        converted["CapabilityDrop"] = list(container.capability_drop)
    if container.ulimits:
        converted["Ulimits"] = [{"Name": u.name, "Hard": u.hard, "Soft": u.soft} for u in container.ulimits]
    if container.HasField("dns_config"):
        dns = container.dns_config
        converted["DNSConfig"] = {
            key: list(values)
            for key, values in (("Nameservers", dns.nameservers), ("Search", dns.search), ("Options", dns.options))
            if values
        }
    if container.hosts:
        converted["Hosts"] = list(container.hosts)
    return converted


def _file_reference(file: objects_pb2.FileTarget, **names: str) -> dict[str, Any]:
    return {"File": {"Name": file.name, "UID": file.uid, "GID": file.gid, "Mode": file.mode}, **names}


def restart_policy(restart: objects_pb2.RestartPolicy) -> dict[str, Any]:
    converted: dict[str, Any] = {"Condition": enum_word(objects_pb2.RestartPolicy.Condition, restart.condition)}
    if restart.HasField("delay"):
        converted["Delay"] = restart.delay
    converted["MaxAttempts"] = restart.max_attempts
    if restart.window:
        converted["Window"] = restart.window
    return converted


def placement(place: objects_pb2.Placement) -> dict[str, Any]:
    converted: dict[str, Any] = {}
    if place.constraints:
        converted["Constraints"] = list(place.constraints)
    if place.preferences:
        converted["Preferences"] = [{"Spread": {"SpreadDescriptor": p.spread}} for p in place.preferences]
    if place.max_replicas:
        converted["MaxReplicas"] = place.max_replicas
    if place.platforms:
        converted["Platforms"] = [{"Architecture": p.architecture, "OS": p.os} for p in place.platforms]
    return converted


def task_spec(task: objects_pb2.TaskSpec) -> dict[str, Any]:
    converted: dict[str, Any] = {"ContainerSpec": container_spec(task.container)}
    converted["Resources"] = resource_requirements(task.resources)
    if task.HasField("restart"):
        converted["RestartPolicy"] = restart_policy(task.restart)
    converted["Placement"] = placement(task.placement)
    if task.HasField("log_driver"):
        converted["LogDriver"] = driver(task.log_driver)
    converted["ForceUpdate"] = task.force_update
    if task.networks:
        converted["Networks"] = [
            {"Target": n.target, **({"Aliases": list(n.aliases)} if n.aliases else {}),
             **({"DriverOpts": dict(n.driver_attachment_opts)} if n.driver_attachment_opts else {})}
            for n in task.networks
        ]
    return converted


def update_config(config: objects_pb2.UpdateConfig) -> dict[str, Any]:
    converted: dict[str, Any] = {"Parallelism": config.parallelism}
    if config.delay:
        converted["Delay"] = config.delay
    converted["FailureAction"] = enum_word(objects_pb2.UpdateConfig.FailureAction, config.failure_action)
    if config.HasField("monitor"):
        converted["Monitor"] = config.monitor
    converted["MaxFailureRatio"] = round(config.max_failure_ratio, 6)  # float32 on the wire
    converted["Order"] = enum_word(objects_pb2.UpdateConfig.Order, config.order)
    return converted


def port_config(port: objects_pb2.PortConfig) -> dict[str, Any]:
    converted: dict[str, Any] = {}
    if port.name:
        converted["Name"] = port.name
    converted["Protocol"] = enum_word(objects_pb2.PortConfig.Protocol, port.protocol)
    converted["TargetPort"] = port.target_port
    if port.published_port:
        converted["PublishedPort"] = port.published_port
    converted["PublishMode"] = enum_word(objects_pb2.PortConfig.PublishMode, port.publish_mode)
    return converted


def endpoint_spec(endpoint: objects_pb2.EndpointSpec) -> dict[str, Any]:
    converted: dict[str, Any] = {"Mode": enum_word(objects_pb2.EndpointSpec.ResolutionMode, endpoint.mode)}
    if endpoint.ports:
        converted["Ports"] = [port_config(p) for p in endpoint.ports]
    return converted


def service_spec(spec: objects_pb2.ServiceSpec) -> dict[str, Any]:
    converted: dict[str, Any] = {"Name": spec.annotations.name, "Labels": dict(spec.annotations.labels)}
    converted["TaskTemplate"] = task_spec(spec.task)
    mode = spec.WhichOneof("mode")
    if mode == "global":
        converted["Mode"] = {"Global": {}}
    elif mode == "replicated_job":
        converted["Mode"] = {"ReplicatedJob": {"MaxConcurrent": spec.replicated_job.max_concurrent,
                                               "TotalCompletions": spec.replicated_job.total_completions}}
    elif mode == "global_job":
        converted["Mode"] = {"GlobalJob": {}}
    else:
        converted["Mode"] = {"Replicated": {"Replicas": spec.replicated.replicas}}
    if spec.HasField("update"):
        converted["UpdateConfig"] = update_config(spec.update)
    if spec.HasField("rollback"):
        converted["RollbackConfig"] = update_config(spec.rollback)
    converted["EndpointSpec"] = endpoint_spec(spec.endpoint)
    return converted


def update_state_word(state: int) -> str:
    """UPDATING -> "updating", ROLLBACK_STARTED -> "rollback_started" (docker keeps the underscore here);
    "" for UNKNOWN, as docker leaves an unset state empty."""
    if state == objects_pb2.UpdateStatus.UNKNOWN:
        return ""
    return objects_pb2.UpdateStatus.UpdateState.Name(state).lower()


def update_status(status: objects_pb2.UpdateStatus) -> dict[str, Any]:
    converted: dict[str, Any] = {"State": update_state_word(status.state)}
    if status.started_at:
        converted["StartedAt"] = rfc3339_nano(status.started_at)
    if status.completed_at:
        converted["CompletedAt"] = rfc3339_nano(status.completed_at)
    converted["Message"] = status.message
    return converted


def service(svc: objects_pb2.Service) -> dict[str, Any]:
    converted: dict[str, Any] = {"ID": svc.id, **_meta(svc.meta), "Spec": service_spec(svc.spec)}
    if svc.HasField("previous_spec"):
        converted["PreviousSpec"] = service_spec(svc.previous_spec)
    endpoint: dict[str, Any] = {"Spec": endpoint_spec(svc.endpoint.spec if svc.HasField("endpoint") else svc.spec.endpoint)}
    if svc.endpoint.ports:
        endpoint["Ports"] = [port_config(p) for p in svc.endpoint.ports]
    if svc.endpoint.virtual_ips:
        endpoint["VirtualIPs"] = [{"NetworkID": v.network_id, "Addr": v.addr} for v in svc.endpoint.virtual_ips]
    converted["Endpoint"] = endpoint
    if svc.HasField("update_status") and svc.update_status.state:
        converted["UpdateStatus"] = update_status(svc.update_status)
    if svc.spec.WhichOneof("mode") in ("replicated_job", "global_job"):
        converted["JobStatus"] = {"JobIteration": {"Index": svc.spec_version.index}}  # a run per spec version
    return converted


def task(tsk: objects_pb2.Task) -> dict[str, Any]:
    status: dict[str, Any] = {
        "Timestamp": rfc3339_nano(tsk.status.timestamp),
        "State": task_state_word(tsk.status.state),
        "Message": tsk.status.message,
    }
    if tsk.status.err:
        status["Err"] = tsk.status.err
    if tsk.status.HasField("container_status"):
        cs = tsk.status.container_status
        status["ContainerStatus"] = {"ContainerID": cs.container_id, "PID": cs.pid, "ExitCode": cs.exit_code}
    status["PortStatus"] = {"Ports": [port_config(p) for p in tsk.status.port_status.ports]} if tsk.status.port_status.ports else {}
    converted: dict[str, Any] = {"ID": tsk.id, **_meta(tsk.meta), "Labels": dict(tsk.annotations.labels)}
    converted["Spec"] = task_spec(tsk.spec)
    converted["ServiceID"] = tsk.service_id
    if tsk.slot:
        converted["Slot"] = tsk.slot
    if tsk.node_id:
        converted["NodeID"] = tsk.node_id
    converted["Status"] = status
    converted["DesiredState"] = task_state_word(tsk.desired_state)
    if tsk.networks:
        converted["NetworksAttachments"] = [
            {"Network": {"ID": a.network.id, "Spec": {"Name": a.network.spec.annotations.name}},
             "Addresses": list(a.addresses)}
            for a in tsk.networks
        ]
    if tsk.assigned_generic_resources:  # the Engine API's Task.GenericResources (swarmkit's AssignedGenericResources)
        converted["GenericResources"] = [generic_resource(r) for r in tsk.assigned_generic_resources]
    return converted


_NODE_STATES = {
    objects_pb2.NodeStatus.UNKNOWN: "unknown",
    objects_pb2.NodeStatus.DOWN: "down",
    objects_pb2.NodeStatus.READY: "ready",
    objects_pb2.NodeStatus.DISCONNECTED: "disconnected",
}


def node(nd: objects_pb2.Node) -> dict[str, Any]:
    description = nd.description
    converted: dict[str, Any] = {"ID": nd.id, **_meta(nd.meta)}
    converted["Spec"] = {
        "Labels": dict(nd.spec.annotations.labels),
        "Role": enum_word(objects_pb2.NodeRole, nd.spec.desired_role),
        "Availability": enum_word(objects_pb2.NodeSpec.Availability, nd.spec.availability),
    }
    converted["Description"] = {
        "Hostname": description.hostname,
        "Platform": {"Architecture": description.platform.architecture, "OS": description.platform.os},
        "Resources": {"NanoCPUs": description.resources.nano_cpus, "MemoryBytes": description.resources.memory_bytes,
                      **({"GenericResources": [generic_resource(r) for r in description.resources.generic]}
                         if description.resources.generic else {})},
        "Engine": {"EngineVersion": description.engine.engine_version,
                   **({"Labels": dict(description.engine.labels)} if description.engine.labels else {})},
        "TLSInfo": tls_info(description.tls_info),
    }
    converted["Status"] = {"State": _NODE_STATES.get(nd.status.state, "unknown"), "Addr": nd.status.addr}
    if nd.status.message:
        converted["Status"]["Message"] = nd.status.message
    if nd.HasField("manager_status"):
        converted["ManagerStatus"] = {
            "Leader": nd.manager_status.leader,
            "Reachability": enum_word(objects_pb2.ManagerStatus.Reachability, nd.manager_status.reachability),
            "Addr": nd.manager_status.addr,
        }
    return converted


def tls_info(info: objects_pb2.NodeTLSInfo) -> dict[str, Any]:
    """Engine API TLSInfo: the trust root as text, the issuer's subject and key as base64 DER (Go []byte)."""
    return {
        "TrustRoot": info.trust_root.decode("utf-8", "replace"),
        "CertIssuerSubject": base64.b64encode(info.cert_issuer_subject).decode("ascii"),
        "CertIssuerPublicKey": base64.b64encode(info.cert_issuer_public_key).decode("ascii"),
    }


def cluster_tls_info(root_ca: objects_pb2.RootCA) -> dict[str, Any]:
    """The swarm's: its root, and the issuer node certificates should come from (the new root while rotating)."""
    from swarmpy.ca.rotation import desired_issuer

    subject, public_key = desired_issuer(root_ca) if root_ca.ca_cert else (b"", b"")
    return tls_info(objects_pb2.NodeTLSInfo(trust_root=root_ca.ca_cert, cert_issuer_subject=subject,
                                            cert_issuer_public_key=public_key))


def cluster(cl: objects_pb2.Cluster) -> dict[str, Any]:
    spec = cl.spec
    return {
        "ID": cl.id,
        **_meta(cl.meta),
        "Spec": {
            "Name": spec.annotations.name or "default",
            "Labels": dict(spec.annotations.labels),
            "Orchestration": {"TaskHistoryRetentionLimit": spec.orchestration.task_history_retention_limit},
            "Raft": {
                "SnapshotInterval": spec.raft.snapshot_interval,
                "KeepOldSnapshots": spec.raft.keep_old_snapshots,
                "LogEntriesForSlowFollowers": spec.raft.log_entries_for_slow_followers,
                "ElectionTick": spec.raft.election_tick,
                "HeartbeatTick": spec.raft.heartbeat_tick,
            },
            "Dispatcher": {"HeartbeatPeriod": spec.dispatcher.heartbeat_period},
            # As moby: never the signing CA cert or key (a get + update would send the cert without its key).
            "CAConfig": {"NodeCertExpiry": spec.ca_config.node_cert_expiry,
                         **({"ForceRotate": spec.ca_config.force_rotate} if spec.ca_config.force_rotate else {})},
            "EncryptionConfig": {"AutoLockManagers": spec.encryption_config.auto_lock_managers},
        },
        "TLSInfo": cluster_tls_info(cl.root_ca),
        "RootRotationInProgress": cl.root_ca.HasField("root_rotation"),
        "JoinTokens": {"Worker": cl.root_ca.join_tokens.worker, "Manager": cl.root_ca.join_tokens.manager},
        "DefaultAddrPool": list(cl.default_address_pool) or ["10.0.0.0/8"],
        "SubnetSize": cl.subnet_size or 24,
        "DataPathPort": cl.vxlan_udp_port or 4789,
    }


def _secret_or_config_spec(spec: objects_pb2.SecretSpec | objects_pb2.ConfigSpec, *, data: bool) -> dict[str, Any]:
    converted: dict[str, Any] = {"Name": spec.annotations.name, "Labels": dict(spec.annotations.labels)}
    if data:
        converted["Data"] = base64.b64encode(spec.data).decode("ascii")
    if spec.template_driver:
        converted["Templating"] = {"Name": spec.template_driver}
    return converted


def secret(obj: objects_pb2.Secret) -> dict[str, Any]:
    """A secret as docker shows it: never its data."""
    return {"ID": obj.id, **_meta(obj.meta), "Spec": _secret_or_config_spec(obj.spec, data=False)}


def config(obj: objects_pb2.Config) -> dict[str, Any]:
    return {"ID": obj.id, **_meta(obj.meta), "Spec": _secret_or_config_spec(obj.spec, data=True)}


def network(net: objects_pb2.Network) -> dict[str, Any]:
    """docker's `network inspect` object for a swarm-scoped network."""
    configs = net.ipam.configs or net.spec.ipam.configs
    ipam_config = []
    for config in configs:
        entry = {"Subnet": config.subnet}
        if config.range:
            entry["IPRange"] = config.range
        if config.gateway:
            entry["Gateway"] = config.gateway
        ipam_config.append(entry)
    options = dict(net.driver_state.options) or dict(net.spec.driver_config.options)
    return {
        "Name": net.spec.annotations.name,
        "Id": net.id,
        "Created": rfc3339_nano(net.meta.created_at),
        "Scope": "swarm",
        "Driver": net.spec.driver_config.name or "overlay",
        "EnableIPv6": net.spec.ipv6_enabled,
        "IPAM": {"Driver": net.ipam.driver.name or "default", "Options": None, "Config": ipam_config},
        "Internal": net.spec.internal,
        "Attachable": net.spec.attachable,
        "Ingress": net.spec.ingress,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": None,
        "Options": options or None,
        "Labels": dict(net.spec.annotations.labels),
    }


def listed_service(svc: objects_pb2.Service, status: Any = None) -> dict[str, Any]:
    """A service as GET /services?status=true lists it: `status` a control_pb2.ServiceStatus or None."""
    converted = service(svc)
    if status is not None:
        converted["ServiceStatus"] = service_status(status)
    return converted


def service_status(status: Any) -> dict[str, Any]:
    return {"RunningTasks": status.running_tasks, "DesiredTasks": status.desired_tasks,
            "CompletedTasks": status.completed_tasks}
