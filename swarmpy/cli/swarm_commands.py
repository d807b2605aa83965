"""`swarmpy swarm ...`: init, join, join-token, leave, ca."""

from __future__ import annotations

import click

from swarmpy.cli import flag_types
from swarmpy.cli.errors import CliError

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


@swarm.command()
@click.option("--advertise-addr", default="", help="Advertised address (format: <ip|interface>[:port]).")
@click.option("--listen-addr", default="0.0.0.0:2377", show_default=True, help="Listen address (format: <ip|interface>[:port]).")
@click.option("--task-history-limit", type=flag_types.UINT, default="5", show_default=True, help="Task history retention limit.")
@click.option("--dispatcher-heartbeat", type=flag_types.DURATION, default="5s", show_default=True, help="Dispatcher heartbeat period.")
@click.option("--cert-expiry", type=flag_types.DURATION, default="2160h0m0s", show_default=True, help="Validity period for node certificates.")
@click.option("--force-new-cluster", is_flag=True, help="Force create a new cluster from current state.")
@click.option("--availability", type=AVAILABILITY, default="active", show_default=True, help="Availability of the node (active|pause|drain).")
@click.pass_obj
def init(state, advertise_addr, listen_addr, task_history_limit, dispatcher_heartbeat, cert_expiry,
         force_new_cluster, availability) -> None:
    """Initialize a swarm."""
    from swarmpy.api import control_pb2, objects_pb2

    spec = objects_pb2.ClusterSpec(
        orchestration=objects_pb2.OrchestrationConfig(task_history_retention_limit=task_history_limit),
        dispatcher=objects_pb2.DispatcherConfig(heartbeat_period=dispatcher_heartbeat),
        ca_config=objects_pb2.CAConfig(node_cert_expiry=cert_expiry),
    )
    daemon = state.daemon
    response = daemon.call(daemon.local_node.Init, control_pb2.InitRequest(
        listen_addr=listen_addr, advertise_addr=advertise_addr, force_new_cluster=force_new_cluster,
        spec=spec, availability=_availability_value(availability)))
    state.out(f"Swarm initialized: current node ({response.node_id}) is now a manager.\n")
    cluster = _cluster(state)
    state.out(_join_command_text("worker", cluster.root_ca.join_tokens.worker, _manager_addr(state)))
    state.out("To add a manager to this swarm, run 'swarmpy swarm join-token manager' and follow the instructions.")


@swarm.command()
@click.option("--token", required=True, help="Token for entry into the swarm.")
@click.option("--advertise-addr", default="", help="Advertised address (format: <ip|interface>[:port]).")
@click.option("--listen-addr", default="0.0.0.0:2377", show_default=True, help="Listen address (format: <ip|interface>[:port]).")
@click.option("--availability", type=AVAILABILITY, default="active", show_default=True, help="Availability of the node (active|pause|drain).")
@click.argument("remote_addr", metavar="HOST:PORT")
@click.pass_obj
def join(state, token, advertise_addr, listen_addr, availability, remote_addr) -> None:
    """Join a swarm as a node and/or manager."""
    from swarmpy.api import control_pb2

    daemon = state.daemon
    daemon.call(daemon.local_node.Join, control_pb2.JoinRequest(
        listen_addr=listen_addr, advertise_addr=advertise_addr, remote_addrs=[remote_addr],
        join_token=token, availability=_availability_value(availability)), timeout=120)
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


@swarm.command()
@click.pass_obj
def ca(state) -> None:
    """Display the root CA certificate."""
    certificate = _cluster(state).root_ca.ca_cert.decode("utf-8", "replace")
    click.echo(certificate, nl=not certificate.endswith("\n"))
