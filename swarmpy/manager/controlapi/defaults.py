"""swarmkit's and docker's defaults for the parts of a spec a user may leave unset.

A stored spec keeps exactly what the user sent; the defaults are applied by whoever reads it (the
orchestrators, the updater, the executor) through the `effective_*` functions here, and shown to users
by GetService(insert_defaults=true). Keeping them out of the stored spec means a later change of a
default reaches every service that never chose a value, as in swarmkit.

Which fields count as "unset": a message field that is absent, or an `optional` scalar without
presence. A RestartPolicy or UpdateConfig the user did send keeps its enum values as sent (proto3
cannot tell "condition NONE" from "condition not given"), so clients must fill every enum when they
send such a message; only its `optional` durations fall back to the defaults.

The cluster defaults are applied differently: the cluster spec is written once at `swarm init` with
every default filled in (fill_cluster_spec_defaults), because the Raft and dispatcher settings must be
the same on every manager and must not change under a running cluster when this code is upgraded.
"""

from __future__ import annotations

from swarmpy.api import objects_pb2
from swarmpy.units import HOUR, MILLISECOND, SECOND

# -- services -------------------------------------------------------------------------------------

RESTART_CONDITION = objects_pb2.RestartPolicy.ANY
RESTART_DELAY = 5 * SECOND
RESTART_MAX_ATTEMPTS = 0  # unlimited
RESTART_WINDOW = 0  # unbounded

UPDATE_PARALLELISM = 1
UPDATE_DELAY = 0
UPDATE_FAILURE_ACTION = objects_pb2.UpdateConfig.PAUSE
UPDATE_MONITOR = 5 * SECOND
UPDATE_MAX_FAILURE_RATIO = 0.0
UPDATE_ORDER = objects_pb2.UpdateConfig.STOP_FIRST

STOP_GRACE_PERIOD = 10 * SECOND

# -- cluster --------------------------------------------------------------------------------------

CLUSTER_NAME = "default"
TASK_HISTORY_RETENTION_LIMIT = 5
DISPATCHER_HEARTBEAT_PERIOD = 5 * SECOND
NODE_CERT_EXPIRY = 2160 * HOUR
MIN_NODE_CERT_EXPIRY = 1 * HOUR
RAFT_SNAPSHOT_INTERVAL = 10_000
RAFT_KEEP_OLD_SNAPSHOTS = 0
RAFT_LOG_ENTRIES_FOR_SLOW_FOLLOWERS = 500
RAFT_HEARTBEAT_TICK = 1
RAFT_ELECTION_TICK = 10
# swarmkit's tick is 1 s (an election 10-20 s after the leader died); etcd's defaults are a 100 ms heartbeat
# and a 1 s election. A manager's loop is never blocked near that long (bench/RESULTS.md, "stability").
RAFT_TICK_PERIOD = 100 * MILLISECOND


def default_restart_policy() -> objects_pb2.RestartPolicy:
    return objects_pb2.RestartPolicy(
        condition=RESTART_CONDITION, delay=RESTART_DELAY, max_attempts=RESTART_MAX_ATTEMPTS, window=RESTART_WINDOW
    )


def default_update_config() -> objects_pb2.UpdateConfig:
    """The default for both `update` and `rollback` (swarmkit uses the same values for each)."""
    return objects_pb2.UpdateConfig(
        parallelism=UPDATE_PARALLELISM,
        delay=UPDATE_DELAY,
        failure_action=UPDATE_FAILURE_ACTION,
        monitor=UPDATE_MONITOR,
        max_failure_ratio=UPDATE_MAX_FAILURE_RATIO,
        order=UPDATE_ORDER,
    )


def effective_restart_policy(task: objects_pb2.TaskSpec) -> objects_pb2.RestartPolicy:
    """The restart policy the restart supervisor must follow for this task spec (a new message)."""
    if not task.HasField("restart"):
        return default_restart_policy()
    policy = objects_pb2.RestartPolicy()
    policy.CopyFrom(task.restart)
    if not policy.HasField("delay"):
        policy.delay = RESTART_DELAY
    return policy


def _effective_update_config(spec: objects_pb2.ServiceSpec, field: str) -> objects_pb2.UpdateConfig:
    if not spec.HasField(field):
        return default_update_config()
    config = objects_pb2.UpdateConfig()
    config.CopyFrom(getattr(spec, field))
    if not config.HasField("monitor"):
        config.monitor = UPDATE_MONITOR
    return config


def effective_update_config(spec: objects_pb2.ServiceSpec) -> objects_pb2.UpdateConfig:
    return _effective_update_config(spec, "update")


def effective_rollback_config(spec: objects_pb2.ServiceSpec) -> objects_pb2.UpdateConfig:
    return _effective_update_config(spec, "rollback")


def effective_stop_grace_period(container: objects_pb2.ContainerSpec) -> int:
    """Nanoseconds between the stop signal and SIGKILL."""
    return container.stop_grace_period if container.HasField("stop_grace_period") else STOP_GRACE_PERIOD


def service_spec_with_defaults(spec: objects_pb2.ServiceSpec) -> objects_pb2.ServiceSpec:
    """A copy of `spec` with every unset field that has a default filled in (for insert_defaults)."""
    filled = objects_pb2.ServiceSpec()
    filled.CopyFrom(spec)
    filled.task.restart.CopyFrom(effective_restart_policy(spec.task))
    filled.update.CopyFrom(effective_update_config(spec))
    filled.rollback.CopyFrom(effective_rollback_config(spec))
    filled.task.container.stop_grace_period = effective_stop_grace_period(spec.task.container)
    if not filled.HasField("endpoint"):
        filled.endpoint.mode = objects_pb2.EndpointSpec.VIP
    return filled


def service_with_defaults(service: objects_pb2.Service) -> objects_pb2.Service:
    """A copy of a stored service whose spec shows the defaults; the stored object is not touched."""
    shown = objects_pb2.Service()
    shown.CopyFrom(service)
    shown.spec.CopyFrom(service_spec_with_defaults(service.spec))
    return shown


def default_cluster_spec() -> objects_pb2.ClusterSpec:
    return objects_pb2.ClusterSpec(
        annotations=objects_pb2.Annotations(name=CLUSTER_NAME),
        orchestration=objects_pb2.OrchestrationConfig(task_history_retention_limit=TASK_HISTORY_RETENTION_LIMIT),
        raft=objects_pb2.RaftConfig(
            snapshot_interval=RAFT_SNAPSHOT_INTERVAL,
            keep_old_snapshots=RAFT_KEEP_OLD_SNAPSHOTS,
            log_entries_for_slow_followers=RAFT_LOG_ENTRIES_FOR_SLOW_FOLLOWERS,
            heartbeat_tick=RAFT_HEARTBEAT_TICK,
            election_tick=RAFT_ELECTION_TICK,
            tick_period=RAFT_TICK_PERIOD,
        ),
        dispatcher=objects_pb2.DispatcherConfig(heartbeat_period=DISPATCHER_HEARTBEAT_PERIOD),
        ca_config=objects_pb2.CAConfig(node_cert_expiry=NODE_CERT_EXPIRY),
    )


def fill_cluster_spec_defaults(spec: objects_pb2.ClusterSpec) -> objects_pb2.ClusterSpec:
    """A copy of `spec` whose zero settings take the defaults, where zero cannot be meant.

    Zero is a meaningful task history limit (keep no history) and a meaningful count of old snapshots or
    slow-follower entries, so those stay as given; a zero heartbeat, expiry, interval or tick can only
    mean "not given". UpdateCluster uses this; `swarm init` uses cluster_spec_for_init instead.
    """
    filled = objects_pb2.ClusterSpec()
    filled.CopyFrom(spec)
    if not filled.annotations.name:
        filled.annotations.name = CLUSTER_NAME
    if filled.dispatcher.heartbeat_period == 0:
        filled.dispatcher.heartbeat_period = DISPATCHER_HEARTBEAT_PERIOD
    if filled.ca_config.node_cert_expiry == 0:
        filled.ca_config.node_cert_expiry = NODE_CERT_EXPIRY
    if filled.raft.snapshot_interval == 0:
        filled.raft.snapshot_interval = RAFT_SNAPSHOT_INTERVAL
    if filled.raft.heartbeat_tick == 0:
        filled.raft.heartbeat_tick = RAFT_HEARTBEAT_TICK
    if filled.raft.election_tick == 0:
        filled.raft.election_tick = RAFT_ELECTION_TICK
    if filled.raft.tick_period == 0:
        filled.raft.tick_period = RAFT_TICK_PERIOD
    return filled


def cluster_spec_for_init(requested: objects_pb2.ClusterSpec) -> objects_pb2.ClusterSpec:
    """The spec `swarm init` stores: the defaults, overlaid with every non-zero field the user gave.

    At init nothing is stored yet, so a zero task history limit or slow-follower count means "not given"
    (docker's `swarm init` flags behave the same way).
    """
    spec = default_cluster_spec()
    for section in ("orchestration", "raft", "dispatcher", "ca_config", "encryption_config"):
        given = getattr(requested, section)
        target = getattr(spec, section)
        for field, value in given.ListFields():
            setattr(target, field.name, value)
    if requested.annotations.name:
        spec.annotations.name = requested.annotations.name
    for key, value in requested.annotations.labels.items():
        spec.annotations.labels[key] = value
    return spec
