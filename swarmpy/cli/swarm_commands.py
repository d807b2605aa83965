"""`swarmpy swarm ...`: init, join, join-token, update, leave (ca: swarm_ca.py).

The Raft timing flags are swarmpy's (docker's CLI has none; swarmkit keeps the counts in the cluster's
Raft config and fixes the tick at 1 s): `--raft-tick` (default 100ms), `--raft-heartbeat-tick` (1) and
`--raft-election-tick` (10) give an election 1-2 s after the leader is lost. The daemon checks their
rules (swarmpy/manager/controlapi/raft_timing.py); a zero or negative value is refused here.
"""

from __future__ import annotations

import click

from swarmpy.cli import flag_types
from swarmpy.cli.errors import CliError, FlagError

AVAILABILITY = flag_types.choice("active", "pause", "drain")
_ROLES = ("worker", "manager")


@click.group()
def swarm() -> None:
    """Manage the swarm."""


def _availability_value(word: str):
    from swarmpy.api import objects_pb2

    return objects_pb2.NodeSpec.Availability.Value(word.upper())


def _join_command_text(role: str, token: str, manager_addr: str) -> str:
    return (
        f"To add a {role} to this swarm, run the following command:\n\n"
        f"    swarmpy swarm join --token {token} {manager_addr}\n"
    )


def _manager_addr(state) -> str:
    from swarmpy.api import control_pb2

    daemon = state.daemon
    info = daemon.call(daemon.local_node.Info, control_pb2.InfoRequest())
    node = daemon.call(daemon.control.GetNode, control_pb2.GetNodeRequest(ref=info.node_id)).node
    return node.manager_status.addr or info.node_addr


def _cluster(state):
    from swarmpy.api import control_pb2

    daemon = state.daemon
    return daemon.call(daemon.control.GetCluster, control_pb2.GetClusterRequest()).cluster


def _raft_timing_options(with_defaults: bool):
    """The Raft timing flags; `swarm update` has no defaults: only the flags given change the cluster."""

    def defaulted(value: str) -> dict:
        return {"default": value, "show_default": True} if with_defaults else {"default": None}

    def decorate(command):
        for option in reversed((
            click.option("--raft-tick", type=flag_types.POSITIVE_DURATION, **defaulted("100ms"),
                         help="Raft tick period (the heartbeat and election timeouts count in ticks)."),
            click.option("--raft-heartbeat-tick", type=flag_types.POSITIVE_UINT, **defaulted("1"),
                         help="Ticks between the Raft leader's heartbeats."),
            click.option("--raft-election-tick", type=flag_types.POSITIVE_UINT, **defaulted("10"),
                         help="Ticks without a leader before a manager calls an election (randomised up to twice that)."),
        )):
            command = option(command)
        return command

    return decorate


@swarm.command()
@click.option("--advertise-addr", default="", help="Advertised address (format: <ip|interface>[:port]).")
@click.option("--listen-addr", default="0.0.0.0:2377", show_default=True, help="Listen address (format: <ip|interface>[:port]).")
@click.option("--task-history-limit", type=flag_types.UINT, default="5", show_default=True, help="Task history retention limit.")
@click.option("--dispatcher-heartbeat", type=flag_types.DURATION, default="5s", show_default=True, help="Dispatcher heartbeat period.")
@click.option("--cert-expiry", type=flag_types.DURATION, default="2160h0m0s", show_default=True, help="Validity period for node certificates.")
@click.option("--force-new-cluster", is_flag=True, help="Force create a new cluster from current state.")
@click.option("--availability", type=AVAILABILITY, default="active", show_default=True, help="Availability of the node (active|pause|drain).")
@click.option("--default-addr-pool", "default_addr_pools", multiple=True, help="default address pool in CIDR format (default [10.0.0.0/8]).")
@click.option("--default-addr-pool-mask-length", type=flag_types.UINT, default="24", show_default=True, help="default address pool subnet mask length.")
@click.option("--data-path-addr", default="", help="Address or interface to use for data path traffic (format: <ip|interface>).")
@click.option("--data-path-port", type=flag_types.UINT, default="0", help="Port number to use for data path traffic (1024 - 49151). If no value is set or is set to 0, the default port (4789) is used.")
@click.option("--autolock", is_flag=True, help="Enable manager autolocking (requiring an unlock key to start a stopped manager).")
@_raft_timing_options(with_defaults=True)
@click.pass_obj
def init(state, advertise_addr, listen_addr, task_history_limit, dispatcher_heartbeat, cert_expiry,
         force_new_cluster, availability, default_addr_pools, default_addr_pool_mask_length, data_path_addr,
         data_path_port, autolock, raft_tick, raft_heartbeat_tick, raft_election_tick) -> None:
    """Initialize a swarm."""
    from swarmpy.api import control_pb2, objects_pb2

    spec = objects_pb2.ClusterSpec(
        orchestration=objects_pb2.OrchestrationConfig(task_history_retention_limit=task_history_limit),
        dispatcher=objects_pb2.DispatcherConfig(heartbeat_period=dispatcher_heartbeat),
        ca_config=objects_pb2.CAConfig(node_cert_expiry=cert_expiry),
        encryption_config=objects_pb2.EncryptionConfig(auto_lock_managers=autolock),
        raft=objects_pb2.RaftConfig(
            tick_period=raft_tick, heartbeat_tick=raft_heartbeat_tick, election_tick=raft_election_tick
        ),
    )
    daemon = state.daemon
    response = daemon.call(daemon.local_node.Init, control_pb2.InitRequest(
        listen_addr=listen_addr, advertise_addr=advertise_addr, force_new_cluster=force_new_cluster,
        spec=spec, availability=_availability_value(availability), default_addr_pool=list(default_addr_pools),
        subnet_size=default_addr_pool_mask_length, data_path_addr=data_path_addr, data_path_port=data_path_port))
    state.out(f"Swarm initialized: current node ({response.node_id}) is now a manager.\n")
    cluster = _cluster(state)
    state.out(_join_command_text("worker", cluster.root_ca.join_tokens.worker, _manager_addr(state)))
    state.out("To add a manager to this swarm, run 'swarmpy swarm join-token manager' and follow the instructions.")
    if autolock:
        key = daemon.call(daemon.control.GetUnlockKey, control_pb2.GetUnlockKeyRequest()).unlock_key
        state.out("\n" + _unlock_key_text(key))


@swarm.command()
@click.option("--token", required=True, help="Token for entry into the swarm.")
@click.option("--advertise-addr", default="", help="Advertised address (format: <ip|interface>[:port]).")
@click.option("--listen-addr", default="0.0.0.0:2377", show_default=True, help="Listen address (format: <ip|interface>[:port]).")
@click.option("--availability", type=AVAILABILITY, default="active", show_default=True, help="Availability of the node (active|pause|drain).")
@click.option("--data-path-addr", default="", help="Address or interface to use for data path traffic (format: <ip|interface>).")
@click.argument("remote_addr", metavar="HOST:PORT")
@click.pass_obj
def join(state, token, advertise_addr, listen_addr, availability, data_path_addr, remote_addr) -> None:
    """Join a swarm as a node and/or manager."""
    from swarmpy.api import control_pb2

    daemon = state.daemon
    daemon.call(daemon.local_node.Join, control_pb2.JoinRequest(
        listen_addr=listen_addr, advertise_addr=advertise_addr, remote_addrs=[remote_addr],
        join_token=token, availability=_availability_value(availability), data_path_addr=data_path_addr), timeout=120)
    info = daemon.call(daemon.local_node.Info, control_pb2.InfoRequest())
    role = "manager" if info.control_available else "worker"
    state.out(f"This node joined a swarm as a {role}.")


@swarm.command("join-token")
@click.option("-q", "--quiet", is_flag=True, help="Only display token.")
@click.option("--rotate", is_flag=True, help="Rotate join token.")
@click.argument("role", metavar="(worker|manager)")
@click.pass_obj
def join_token(state, quiet, rotate, role) -> None:
    """Manage join tokens."""
    from swarmpy.api import control_pb2

    if role not in _ROLES:
        raise CliError(f"unknown role {role}")
    daemon = state.daemon
    if rotate:
        cluster = _cluster(state)
        daemon.call(daemon.control.UpdateCluster, control_pb2.UpdateClusterRequest(
            version=cluster.meta.version, spec=cluster.spec,
            rotate_worker_token=role == "worker", rotate_manager_token=role == "manager"))
        if not quiet:
            state.out(f"Successfully rotated {role} join token.\n")
    tokens = _cluster(state).root_ca.join_tokens
    token = tokens.worker if role == "worker" else tokens.manager
    if quiet:
        state.out(token)
        return
    state.out(_join_command_text(role, token, _manager_addr(state)))


@swarm.command()
@click.option("-f", "--force", is_flag=True, help="Force this node to leave the swarm, ignoring warnings.")
@click.pass_obj
def leave(state, force) -> None:
    """Leave the swarm."""
    from swarmpy.api import control_pb2

    daemon = state.daemon
    daemon.call(daemon.local_node.Leave, control_pb2.LeaveRequest(force=force), timeout=120)
    state.out("Node left the swarm.")


@swarm.command(cls=flag_types.GoFlagsCommand)
@click.option("--autolock", is_flag=True, default=None, help="Change manager autolocking setting (true|false).")
@click.option("--cert-expiry", type=flag_types.DURATION, help="Validity period for node certificates (ns|us|ms|s|m|h).")
@click.option("--dispatcher-heartbeat", type=flag_types.DURATION, help="Dispatcher heartbeat period (ns|us|ms|s|m|h).")
@click.option("--external-ca", multiple=True, help="Specifications of one or more certificate signing endpoints.")
@click.option("--max-snapshots", type=flag_types.UINT, help="Number of additional Raft snapshots to retain.")
@click.option("--snapshot-interval", type=flag_types.UINT, help="Number of log entries between Raft snapshots.")
@click.option("--task-history-limit", type=flag_types.INT64, help="Task history retention limit.")
@_raft_timing_options(with_defaults=False)
@click.pass_obj
def update(state, autolock, cert_expiry, dispatcher_heartbeat, external_ca, max_snapshots, snapshot_interval,
           task_history_limit, raft_tick, raft_heartbeat_tick, raft_election_tick) -> None:
    """Update the swarm: only the settings given change."""
    from swarmpy.api import control_pb2

    if external_ca:
        raise FlagError(
            f'invalid argument "{external_ca[0]}" for "--external-ca" flag: external CAs are not supported'
            " (swarmpy signs node certificates with the swarm's own root CA)"
        )
    if snapshot_interval == 0:
        raise FlagError('invalid argument "0" for "--snapshot-interval" flag: must be at least 1')
    cluster = _cluster(state)
    spec = cluster.spec
    was_locked = spec.encryption_config.auto_lock_managers
    if cert_expiry is not None:
        spec.ca_config.node_cert_expiry = cert_expiry
    if dispatcher_heartbeat is not None:
        spec.dispatcher.heartbeat_period = dispatcher_heartbeat
    if max_snapshots is not None:
        spec.raft.keep_old_snapshots = max_snapshots
    if snapshot_interval is not None:
        spec.raft.snapshot_interval = snapshot_interval
    if task_history_limit is not None:
        spec.orchestration.task_history_retention_limit = task_history_limit
    if autolock is not None:
        spec.encryption_config.auto_lock_managers = autolock
    for field, value in (("tick_period", raft_tick), ("heartbeat_tick", raft_heartbeat_tick),
                         ("election_tick", raft_election_tick)):
        if value is not None:
            setattr(spec.raft, field, value)
    daemon = state.daemon
    daemon.call(daemon.control.UpdateCluster, control_pb2.UpdateClusterRequest(version=cluster.meta.version, spec=spec))
    state.out("Swarm updated.")
    if autolock and not was_locked:
        key = daemon.call(daemon.control.GetUnlockKey, control_pb2.GetUnlockKeyRequest()).unlock_key
        state.out(_unlock_key_text(key))


def _unlock_key_text(key: str) -> str:
    return (
        "To unlock a swarm manager after it restarts, run the `swarmpy swarm unlock`\n"
        "command and provide the following key:\n\n"
        f"    {key}\n\n"
        "Remember to store this key in a password manager, since without it you\n"
        "will not be able to restart the manager."
    )


@swarm.command()
@click.pass_obj
def unlock(state) -> None:
    """Unlock swarm: read the unlock key from the terminal (or one line of standard input)."""
    import sys

    from swarmpy.api import control_pb2

    daemon = state.daemon
    info = daemon.call(daemon.local_node.Info, control_pb2.InfoRequest())
    if info.state == control_pb2.InfoResponse.INACTIVE:
        raise CliError("Error: This node is not part of a swarm")
    if info.state != control_pb2.InfoResponse.LOCKED:
        raise CliError("Error: swarm is not locked")
    if sys.stdin.isatty():
        key = click.prompt("Enter unlock key", hide_input=True, prompt_suffix=": ")
    else:
        key = sys.stdin.readline()
    key = key.strip()
    if not key:
        raise CliError("Error: the unlock key is empty")
    daemon.call(daemon.local_node.Unlock, control_pb2.UnlockRequest(unlock_key=key), timeout=120)


@swarm.command("unlock-key")
@click.option("-q", "--quiet", is_flag=True, help="Only display token.")
@click.option("--rotate", is_flag=True, help="Rotate unlock key.")
@click.pass_obj
def unlock_key(state, quiet, rotate) -> None:
    """Manage the unlock key."""
    from swarmpy.api import control_pb2

    daemon = state.daemon
    if rotate:
        cluster = _cluster(state)
        if not cluster.spec.encryption_config.auto_lock_managers:
            raise CliError("cannot rotate because autolock is not turned on")
        daemon.call(daemon.control.UpdateCluster, control_pb2.UpdateClusterRequest(
            version=cluster.meta.version, spec=cluster.spec, rotate_manager_unlock_key=True))
        if not quiet:
            state.out("Successfully rotated manager unlock key.")
    key = daemon.call(daemon.control.GetUnlockKey, control_pb2.GetUnlockKeyRequest()).unlock_key
    if not key:
        raise CliError("no unlock key is set")
    state.out(key if quiet else _unlock_key_text(key))

