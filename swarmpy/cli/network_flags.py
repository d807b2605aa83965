"""The networking flags of `service create` and `service update`, with docker's syntax.

create: `--network NAME` or `--network name=N,alias=A,driver-opt=k=v` (repeatable), `--endpoint-mode
vip|dnsrr`, `--dns IP`, `--dns-search DOMAIN`, `--dns-option OPT`, `--host HOST:IP`.
update: `--network-add`/`--network-rm`, `--endpoint-mode`, and the `-add`/`-rm` pairs of the DNS and
host flags. Values are parsed in the flag types, before any connection; the daemon resolves network
names to IDs (and refuses unknown ones), so the CLI only looks one up for `--network-rm`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any, Mapping

import click

from swarmpy.cli import flag_types
from swarmpy.cli.service_options import _apply, add_rm_options

ENDPOINT_MODE = flag_types.choice("vip", "dnsrr")


@dataclass(frozen=True)
class NetworkFlag:
    target: str
    aliases: tuple[str, ...] = ()
    driver_opts: tuple[tuple[str, str], ...] = field(default=())


def parse_network(value: str) -> NetworkFlag:
    """docker's --network value: a name, or name=/target=, alias= (repeatable), driver-opt=k=v."""
    if "=" not in value:
        if not value:
            raise ValueError("network name is required")
        return NetworkFlag(value)
    target, aliases, opts = "", [], []
    for item in next(csv.reader([value])):
        key, has_value, text = item.partition("=")
        if not has_value:
            raise ValueError(f"invalid field '{item}' must be a key=value pair")
        key = key.strip().lower()
        if key in ("name", "target"):
            target = text
        elif key == "alias":
            aliases.append(text)
        elif key == "driver-opt":
            opt_key, has_opt, opt_value = text.partition("=")
            if not has_opt or not opt_key:
                raise ValueError(f"invalid driver-opt '{text}': must be key=value")
            opts.append((opt_key, opt_value))
        else:
            raise ValueError(f"invalid field key {key}")
    if not target:
        raise ValueError("network name/id is not specified")
    return NetworkFlag(target, tuple(aliases), tuple(opts))


def parse_host(value: str) -> str:
    """docker's --host HOST:IP -> the swarm's "IP HOST" hosts entry."""
    host, sep, address = value.partition(":")
    if not sep or not host or not address:
        raise ValueError(f'bad format for add-host: "{value}"')
    try:
        ip_address(address.strip("[]"))
    except ValueError:
        raise ValueError(f'invalid IP address in add-host: "{address}"') from None
    return f"{address.strip('[]')} {host}"


def _ip(value: str) -> str:
    try:
        return str(ip_address(value))
    except ValueError:
        raise ValueError(f"{value} is not an ip address") from None


NETWORK = flag_types.ParsedBy("network", parse_network)
HOST = flag_types.ParsedBy("host", parse_host)
IP = flag_types.ParsedBy("ip", _ip)


def create_options(command):
    return _apply([
        click.option("--network", "networks", type=NETWORK, multiple=True, help="Network attachments."),
        click.option("--endpoint-mode", type=ENDPOINT_MODE, help="Endpoint mode (vip or dnsrr) (default \"vip\")."),
        click.option("--dns", type=IP, multiple=True, help="Set custom DNS servers."),
        click.option("--dns-search", multiple=True, help="Set custom DNS search domains."),
        click.option("--dns-option", multiple=True, help="Set DNS options."),
        click.option("--host", "hosts", type=HOST, multiple=True, help="Set one or more custom host-to-IP mappings (host:ip)."),
    ], command)


def update_options(command):
    return _apply([
        *add_rm_options("network", "Add a network.", "Remove a network.", add_type=NETWORK),
        click.option("--endpoint-mode", type=ENDPOINT_MODE, help="Endpoint mode (vip or dnsrr)."),
        *add_rm_options("dns", "Add or update a custom DNS server.", "Remove a custom DNS server.",
                        add_type=IP, rm_type=IP),
        *add_rm_options("dns-search", "Add or update a custom DNS search domain.", "Remove a DNS search domain."),
        *add_rm_options("dns-option", "Add or update a DNS option.", "Remove a DNS option."),
        *add_rm_options("host", "Add a custom host-to-IP mapping (host:ip).",
                        "Remove a custom host-to-IP mapping (host:ip).", add_type=HOST),
    ], command)


def _attachment(flag: NetworkFlag) -> Any:
    from swarmpy.api import objects_pb2

    return objects_pb2.NetworkAttachmentConfig(
        target=flag.target, aliases=list(flag.aliases), driver_attachment_opts=dict(flag.driver_opts)
    )


def _set_mode(spec: Any, mode: str | None) -> None:
    from swarmpy.api import objects_pb2

    if mode:
        spec.endpoint.mode = objects_pb2.EndpointSpec.DNSRR if mode == "dnsrr" else objects_pb2.EndpointSpec.VIP


def add_to_new_spec(spec: Any, options: Mapping[str, Any]) -> None:
    spec.task.networks.extend(_attachment(flag) for flag in options.get("networks") or ())
    _set_mode(spec, options.get("endpoint_mode"))
    if options.get("dns") or options.get("dns_search") or options.get("dns_option"):
        dns = spec.task.container.dns_config
        dns.nameservers.extend(options.get("dns") or ())
        dns.search.extend(options.get("dns_search") or ())
        dns.options.extend(options.get("dns_option") or ())
    spec.task.container.hosts.extend(options.get("hosts") or ())


def _edit_list(values: Any, added, removed) -> None:
    removed = set(removed or ())
    kept = [value for value in values if value not in removed]
    for value in added or ():
        if value not in kept:
            kept.append(value)
    del values[:]
    values.extend(kept)


def update_spec(daemon, spec: Any, options: Mapping[str, Any]) -> None:
    """Apply the update flags to a spec read from the daemon (its network targets are IDs)."""
    from swarmpy.api import control_pb2

    removed = options.get("network_rm") or ()
    if removed:
        gone = set()
        for ref in removed:
            network = daemon.call(daemon.control.GetNetwork, control_pb2.GetNetworkRequest(ref=ref)).network
            gone.add(network.id)
        kept = [attachment for attachment in spec.task.networks if attachment.target not in gone]
        del spec.task.networks[:]
        spec.task.networks.extend(kept)
    for flag in options.get("network_add") or ():
        spec.task.networks.append(_attachment(flag))
    _set_mode(spec, options.get("endpoint_mode"))
    dns = spec.task.container.dns_config
    _edit_list(dns.nameservers, options.get("dns_add"), options.get("dns_rm"))
    _edit_list(dns.search, options.get("dns_search_add"), options.get("dns_search_rm"))
    _edit_list(dns.options, options.get("dns_option_add"), options.get("dns_option_rm"))
    removed_hosts = set()
    for text in options.get("host_rm") or ():
        # docker removes by "host:ip" or by host name alone
        try:
            removed_hosts.add(parse_host(text))
        except ValueError:
            removed_hosts.update(line for line in spec.task.container.hosts if text in line.split()[1:])
    _edit_list(spec.task.container.hosts, options.get("host_add"), removed_hosts)
    if not (dns.nameservers or dns.search or dns.options):
        spec.task.container.ClearField("dns_config")
