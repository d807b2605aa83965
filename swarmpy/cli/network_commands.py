"""`swarmpy network ...`: create, ls, inspect, rm, prune, with docker's flags, columns and output.

Every network here is swarm-scoped and uses the overlay driver (docker's `-d overlay`); the other
drivers of a local engine do not exist in a swarm of swarmpy daemons, so asking for one is refused.
"""

from __future__ import annotations

import json

import click

from swarmpy.cli.errors import CliError, FlagError, remove_each

COLUMNS = ("NETWORK ID", "NAME", "DRIVER", "SCOPE")
FORMAT_HELP = "Format output: \"json\" (one JSON object per line), or the table (default)."


@click.group()
def network() -> None:
    """Manage networks."""


def build_network_spec(name, driver, subnets, gateways, ip_ranges, attachable, internal, labels, opts, ingress, ipv6,
                       ipam_driver):
    """Flags -> NetworkSpec, with the checks docker's CLI makes before calling the daemon."""
    from swarmpy.api import objects_pb2
    from swarmpy.cli.service_spec import _labels

    if driver != "overlay":
        raise FlagError(f'invalid argument "{driver}" for "-d, --driver" flag: swarmpy networks use the "overlay" driver')
    if len(subnets) > 1 or len(gateways) > 1 or len(ip_ranges) > 1:
        raise FlagError("a swarmpy network takes one --subnet (with at most one --gateway and --ip-range)")
    if (gateways or ip_ranges) and not subnets:
        which = "gateway" if gateways else "ip-range"
        raise FlagError(f"every ip-range or gateway must have a corresponding subnet (--{which} without --subnet)")
    spec = objects_pb2.NetworkSpec(attachable=attachable, internal=internal, ingress=ingress, ipv6_enabled=ipv6)
    spec.annotations.name = name
    spec.annotations.labels.update(_labels(labels, "--label"))
    spec.driver_config.name = driver
    spec.driver_config.options.update(_labels(opts, "--opt", "-o"))
    if ipam_driver:
        spec.ipam.driver.name = ipam_driver
    if subnets:
        spec.ipam.configs.add(subnet=subnets[0], gateway=gateways[0] if gateways else "",
                              range=ip_ranges[0] if ip_ranges else "")
    return spec


@network.command("create")
@click.option("-d", "--driver", default="overlay", show_default=True, help="Driver to manage the Network.")
@click.option("--subnet", "subnets", multiple=True, help="Subnet in CIDR format that represents a network segment.")
@click.option("--gateway", "gateways", multiple=True, help="IPv4 Gateway for the master subnet.")
@click.option("--ip-range", "ip_ranges", multiple=True, help="Allocate container ip from a sub-range.")
@click.option("--ipam-driver", default="", help="IP Address Management Driver (\"default\").")
@click.option("--attachable", is_flag=True, help="Enable manual container attachment.")
@click.option("--internal", is_flag=True, help="Restrict external access to the network.")
@click.option("--ingress", is_flag=True, help="Create swarm routing-mesh network.")
@click.option("--ipv6", is_flag=True, help="Enable or disable IPv6 networking.")
@click.option("--label", "labels", multiple=True, help="Set metadata on a network.")
@click.option("-o", "--opt", "opts", multiple=True, help="Set driver specific options.")
@click.argument("name", metavar="NETWORK")
@click.pass_obj
def create(state, driver, subnets, gateways, ip_ranges, ipam_driver, attachable, internal, ingress, ipv6, labels, opts,
           name) -> None:
    """Create a network."""
    from swarmpy.api import control_pb2

    spec = build_network_spec(name, driver, subnets, gateways, ip_ranges, attachable, internal, labels, opts, ingress,
                              ipv6, ipam_driver)
    daemon = state.daemon
    created = daemon.call(daemon.control.CreateNetwork, control_pb2.CreateNetworkRequest(spec=spec)).network
    state.out(created.id)


def network_row(net, no_trunc: bool = False) -> dict[str, str]:
    from swarmpy.cli.table import truncate_id

    return {
        "ID": net.id if no_trunc else truncate_id(net.id),
        "Name": net.spec.annotations.name,
        "Driver": net.spec.driver_config.name or "overlay",
        "Scope": "swarm",
    }


@network.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display network IDs.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate the output.")
@click.option("--format", "output_format", help=FORMAT_HELP)
@click.option("-f", "--filter", "filters", multiple=True, help="Provide filter values (e.g. \"driver=overlay\").")
@click.pass_obj
def list_networks(state, quiet, no_trunc, output_format, filters) -> None:
    """List networks."""
    from swarmpy.api import control_pb2
    from swarmpy.cli.service_commands import _print_rows
    from swarmpy.cli.table import natural_key
    from swarmpy.cli.value_parsers import parse_filters, parse_labels

    try:
        parsed = parse_filters(filters, ("driver", "id", "label", "name", "scope", "type"))
    except ValueError as exc:
        raise CliError(str(exc)) from None
    for kind in parsed.get("type", []):
        if kind not in ("custom", "builtin"):
            raise CliError(f"invalid filter: 'type'='{kind}'")
    request = control_pb2.ListNetworksRequest(filters=control_pb2.ListNetworksRequest.Filters(
        ids=parsed.get("id", []), names=parsed.get("name", []), drivers=parsed.get("driver", []),
        labels=parse_labels(parsed.get("label", []))))
    daemon = state.daemon
    networks = daemon.call(daemon.control.ListNetworks, request).networks
    if parsed.get("scope") and "swarm" not in parsed["scope"]:
        networks = []
    if parsed.get("type") and "custom" not in parsed["type"]:
        networks = []  # every swarmpy network is user-defined
    rows = [network_row(n, no_trunc) for n in sorted(networks, key=lambda n: natural_key(n.spec.annotations.name))]
    _print_rows(state, COLUMNS, rows, output_format, "ID", quiet)


def network_json(net) -> dict:
    from swarmpy.engineapi.convert.to_json import network

    return network(net)


@network.command("inspect")
@click.option("-f", "--format", "output_format", help="Format output: \"json\" (the default).")
@click.option("-v", "--verbose", is_flag=True, help="Verbose output for diagnostics.")
@click.argument("refs", nargs=-1, required=True, metavar="NETWORK...")
@click.pass_obj
def inspect(state, output_format, verbose, refs) -> None:
    """Display detailed information on one or more networks."""
    from swarmpy.api import control_pb2
    from swarmpy.cli.inspect_output import print_inspected

    del verbose  # docker's adds per-node peer lists for diagnostics; the JSON is the same otherwise

    def fetch(ref: str):
        daemon = state.daemon
        return daemon.call(daemon.control.GetNetwork, control_pb2.GetNetworkRequest(ref=ref)).network

    print_inspected(state, refs, fetch, network_json, lambda net: json.dumps(network_json(net), indent=4),
                    pretty=False, output_format=output_format)


@network.command("rm")
@click.option("-f", "--force", is_flag=True, help="Do not error if the network does not exist.")
@click.argument("refs", nargs=-1, required=True, metavar="NETWORK...")
@click.pass_obj
def remove(state, force, refs) -> None:
    """Remove one or more networks."""
    from swarmpy.api import control_pb2

    daemon = state.daemon
    remove_each(state, refs, lambda ref: daemon.call(daemon.control.RemoveNetwork, control_pb2.RemoveNetworkRequest(ref=ref)),
                ignore=lambda error: force and "not found" in error.message)


@network.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not prompt for confirmation.")
@click.option("--filter", "filters", multiple=True, help="Provide filter values (e.g. \"label=<key>=<value>\").")
@click.pass_obj
def prune(state, force, filters) -> None:
    """Remove all unused networks."""
    from swarmpy.api import control_pb2
    from swarmpy.cli.value_parsers import parse_filters, parse_labels

    try:
        parsed = parse_filters(filters, ("label", "until"))
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if parsed.get("until"):
        raise CliError("the until filter is not supported by swarmpy's network prune")
    if not force:
        prompt = ("WARNING! This will remove all custom networks not used by at least one container.\n"
                  "Are you sure you want to continue?")
        if not click.confirm(prompt, default=False):
            return
    daemon = state.daemon
    request = control_pb2.ListNetworksRequest(filters=control_pb2.ListNetworksRequest.Filters(
        labels=parse_labels(parsed.get("label", []))))
    deleted = []
    for net in daemon.call(daemon.control.ListNetworks, request).networks:
        if net.spec.ingress:
            continue  # the routing mesh's network goes only when removed by name, as docker's prune skips it
        try:
            daemon.call(daemon.control.RemoveNetwork, control_pb2.RemoveNetworkRequest(ref=net.id))
        except CliError as error:
            if "in use" in error.message or "not found" in error.message:
                continue  # in use: not pruned, as docker skips them
            raise
        deleted.append(net.spec.annotations.name)
    if deleted:
        state.out("Deleted Networks:")
        for name in deleted:
            state.out(name)
