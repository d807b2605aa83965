"""`swarmpy node ...`: ls, inspect, update, promote, demote, rm, ps."""

from __future__ import annotations

import click

from swarmpy.cli import flag_types
from swarmpy.cli.errors import CliError, invalid_flag_value, remove_each


@click.group()
def node() -> None:
    """Manage swarm nodes."""


def _self_node_id(daemon) -> str:
    from swarmpy.api import control_pb2

    return daemon.call(daemon.local_node.Info, control_pb2.InfoRequest()).node_id


def _resolve_ref(daemon, ref: str) -> str:
    """`self` is the node this daemon runs as, as in docker."""
    return _self_node_id(daemon) if ref == "self" else ref


def get_node(daemon, ref: str):
    from swarmpy.api import control_pb2

    return daemon.call(daemon.control.GetNode, control_pb2.GetNodeRequest(ref=_resolve_ref(daemon, ref))).node


def _update_node(daemon, current, spec) -> None:
    import grpc

    from swarmpy.api import control_pb2
    from swarmpy.cli.connection import error_from_rpc

    request = control_pb2.UpdateNodeRequest(ref=current.id, version=current.meta.version, spec=spec)
    try:
        daemon.control.UpdateNode(request, timeout=daemon.timeout)
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.ABORTED:
            raise CliError(f"Error response from daemon: node {current.id} was changed by someone else while this "
                           f"command was running ({error.details()}); run the command again") from None
        raise error_from_rpc(error, daemon.host) from None


def _copy_spec(current):
    spec = type(current.spec)()
    spec.CopyFrom(current.spec)
    return spec


@node.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs.")
@click.option("--format", "output_format", help="Format output: \"table\" (default), \"json\", \"table TEMPLATE\" or a Go TEMPLATE.")
@click.option("-f", "--filter", "filters", multiple=True,
              help="Filter output (id, label (engine), node.label, membership, name, role).")
@click.pass_obj
def list_nodes(state, quiet, output_format, filters) -> None:
    """List nodes in the swarm."""
    from swarmpy.api import control_pb2, objects_pb2
    from swarmpy.cli.listings import NODE_COLUMNS, node_rows
    from swarmpy.cli.service_commands import _print_rows
    from swarmpy.cli.value_parsers import parse_filters

    try:
        parsed = parse_filters(filters, ("id", "name", "role", "label", "node.label", "membership"))
    except ValueError as exc:
        raise CliError(str(exc)) from None
    roles = []
    for role in parsed.get("role", []):
        if role not in ("worker", "manager"):
            raise CliError(f"Invalid role filter value: {role!r}")
        roles.append(objects_pb2.NodeRole.Value(role.upper()))
    daemon = state.daemon
    self_id = _self_node_id(daemon)
    request = control_pb2.ListNodesRequest(filters=control_pb2.ListNodesRequest.Filters(
        ids=parsed.get("id", []), names=parsed.get("name", []), roles=roles))
    nodes = [n for n in daemon.call(daemon.control.ListNodes, request).nodes if _node_matches(n, parsed)]
    cluster_tls = None
    if output_format and "TLSStatus" in output_format or output_format == "json":
        from swarmpy.ca.rotation import desired_issuer

        root_ca = daemon.call(daemon.control.GetCluster, control_pb2.GetClusterRequest()).cluster.root_ca
        subject, public_key = desired_issuer(root_ca)
        cluster_tls = objects_pb2.NodeTLSInfo(trust_root=root_ca.ca_cert, cert_issuer_subject=subject,
                                              cert_issuer_public_key=public_key)
    rows = node_rows(nodes, self_id, cluster_tls)
    if quiet:
        for row in rows:
            state.out(row["ID"].removesuffix(" *"))
        return
    _print_rows(state, NODE_COLUMNS, rows, output_format, "ID", quiet, type_name="*node.nodeContext")


def _labels_match(labels, wanted: list[str]) -> bool:
    """docker's label filters: every `key` present, every `key=value` equal."""
    for item in wanted:
        key, eq, value = item.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


def _node_matches(node, filters) -> bool:
    """The filters the control API does not take: engine labels, node labels, membership."""
    for membership in filters.get("membership", []):
        if membership.lower() not in ("accepted", "pending"):
            raise CliError(f"Invalid membership filter value: {membership!r}")
    if filters.get("membership") and "accepted" not in [m.lower() for m in filters["membership"]]:
        return False  # every node that joined with a token is accepted; none waits for approval
    return (_labels_match(node.description.engine.labels, filters.get("label", []))
            and _labels_match(node.spec.annotations.labels, filters.get("node.label", [])))


@node.command("inspect")
@click.option("--pretty", is_flag=True, help="Print the information in a human friendly format.")
@click.option("-f", "--format", "output_format", help="Format output: \"json\" (the default) or a Go TEMPLATE (e.g. '{{.Description.Hostname}}').")
@click.argument("nodes", nargs=-1, required=True, metavar="self|NODE...")
@click.pass_obj
def inspect_nodes(state, pretty, output_format, nodes) -> None:
    """Display detailed information on one or more nodes."""
    from swarmpy.engineapi.convert import to_json as convert
    from swarmpy.cli.inspect_output import print_inspected
    from swarmpy.cli.pretty import pretty_node

    print_inspected(
        state, nodes, lambda ref: get_node(state.daemon, ref), convert.node, pretty_node,
        pretty=pretty, output_format=output_format, type_name="swarm.Node",
    )


@node.command()
@click.option("--availability", type=flag_types.choice("active", "pause", "drain"), help="Availability of the node (\"active\", \"pause\", \"drain\").")
@click.option("--label-add", multiple=True, help="Add or update a node label (key=value).")
@click.option("--label-rm", multiple=True, help="Remove a node label if exists.")
@click.option("--role", type=flag_types.choice("worker", "manager"), help="Role of the node (\"worker\", \"manager\").")
@click.argument("node_ref", metavar="NODE")
@click.pass_obj
def update(state, availability, label_add, label_rm, role, node_ref) -> None:
    """Update a node."""
    from swarmpy.api import objects_pb2
    from swarmpy.cli.value_parsers import parse_key_value

    added = {}
    for item in label_add:
        try:
            key, value = parse_key_value(item)
        except ValueError as exc:
            raise invalid_flag_value(item, "--label-add", str(exc)) from None
        added[key] = value
    daemon = state.daemon
    current = get_node(daemon, node_ref)
    spec = _copy_spec(current)
    if availability:
        spec.availability = objects_pb2.NodeSpec.Availability.Value(availability.upper())
    if role:
        spec.desired_role = objects_pb2.NodeRole.Value(role.upper())
    for key in label_rm:
        if key not in spec.annotations.labels:
            raise CliError(f"key {key} doesn't exist in node's labels")
        del spec.annotations.labels[key]
    spec.annotations.labels.update(added)
    _update_node(daemon, current, spec)
    state.out(node_ref)


def _change_role(state, refs, role_name: str) -> None:
    from swarmpy.api import objects_pb2

    daemon = state.daemon
    wanted = objects_pb2.NodeRole.Value(role_name.upper())
    errors = []
    for ref in refs:
        try:
            current = get_node(daemon, ref)
            if current.spec.desired_role == wanted:
                state.out(f"Node {ref} is already a {role_name}.")
                continue
            spec = _copy_spec(current)
            spec.desired_role = wanted
            _update_node(daemon, current, spec)
        except CliError as error:
            errors.append(error.message)
            continue
        if role_name == "manager":
            state.out(f"Node {ref} promoted to a manager in the swarm.")
        else:
            state.out(f"Manager {ref} demoted in the swarm.")
    if errors:
        raise CliError("\n".join(errors))


@node.command()
@click.argument("nodes", nargs=-1, required=True)
@click.pass_obj
def promote(state, nodes) -> None:
    """Promote one or more nodes to manager in the swarm."""
    _change_role(state, nodes, "manager")


@node.command()
@click.argument("nodes", nargs=-1, required=True)
@click.pass_obj
def demote(state, nodes) -> None:
    """Demote one or more nodes from manager in the swarm."""
    _change_role(state, nodes, "worker")


@node.command("rm")
@click.option("-f", "--force", is_flag=True, help="Force remove a node from the swarm.")
@click.argument("nodes", nargs=-1, required=True)
@click.pass_obj
def remove_nodes(state, force, nodes) -> None:
    """Remove one or more nodes from the swarm."""
    from swarmpy.api import control_pb2

    daemon = state.daemon
    remove_each(state, nodes, lambda ref: daemon.call(
        daemon.control.RemoveNode, control_pb2.RemoveNodeRequest(ref=_resolve_ref(daemon, ref), force=force)),
        reraise=lambda error: "Cannot connect" in error.message)


@node.command("ps")
@click.option("-q", "--quiet", is_flag=True, help="Only display task IDs.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output.")
@click.option("--format", "output_format", help="Format output: \"table\" (default), \"json\", \"table TEMPLATE\" or a Go TEMPLATE.")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output (desired-state, id, label, name).")
@click.option("--no-resolve", is_flag=True, help="Do not map IDs to Names.")
@click.argument("nodes", nargs=-1)
@click.pass_obj
def list_node_tasks(state, quiet, no_trunc, output_format, filters, no_resolve, nodes) -> None:
    """List tasks running on one or more nodes, defaults to current node."""
    from swarmpy.api import control_pb2
    from swarmpy.cli.service_commands import NODE_TASK_FILTERS, desired_states, parse_task_filters, print_tasks

    parsed = parse_task_filters(filters, NODE_TASK_FILTERS)
    daemon = state.daemon
    node_ids = [get_node(daemon, ref).id for ref in (nodes or ("self",))]
    tasks = daemon.call(daemon.control.ListTasks, control_pb2.ListTasksRequest(filters=control_pb2.ListTasksRequest.Filters(
        node_ids=node_ids, desired_states=desired_states(parsed)))).tasks
    services = daemon.call(daemon.control.ListServices, control_pb2.ListServicesRequest()).services
    names = {s.id: s.spec.annotations.name for s in services}
    print_tasks(state, tasks, names, parsed, quiet, no_trunc, output_format, no_resolve)
