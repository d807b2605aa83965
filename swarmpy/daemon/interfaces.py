"""Interface names where docker takes an address: `--advertise-addr eth0`, `--listen-addr eth0:2377`.

A host part that is not an IP address but names a network interface stands for that interface's
address, as docker resolves it: its one IPv4 address, else its one global IPv6 address; none, or more
than one, is an error naming the interface. Anything else is left for the caller to judge.
"""

from __future__ import annotations

import ipaddress
import socket


class InterfaceError(ValueError):
    pass


def _interface_addresses(name: str) -> tuple[list[str], list[str]] | None:
    """(IPv4, global IPv6) addresses of the interface, or None if there is no such interface."""
    if name not in {ifname for _, ifname in socket.if_nameindex()}:
        return None
    from pyroute2 import IPRoute  # netlink; only needed when a name is given

    with IPRoute() as route:
        index = route.link_lookup(ifname=name)[0]
        v4 = [a.get_attr("IFA_ADDRESS") for a in route.get_addr(family=socket.AF_INET, index=index)]
        v6 = [a.get_attr("IFA_ADDRESS") for a in route.get_addr(family=socket.AF_INET6, index=index)
              if ipaddress.ip_address(a.get_attr("IFA_ADDRESS")).is_global]
    return v4, v6


def resolve_interface(host: str) -> str:
    """`host` itself if it is an IP address or no interface's name, else the interface's address."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return host
    except ValueError:
        pass
    found = _interface_addresses(host)
    if found is None:
        return host
    v4, v6 = found
    if len(v4) > 1:
        raise InterfaceError(f"interface {host} has more than one IPv4 address ({v4[0]} and {v4[1]})")
    if v4:
        return v4[0]
    if len(v6) > 1:
        raise InterfaceError(f"interface {host} has more than one IPv6 address ({v6[0]} and {v6[1]})")
    if v6:
        return f"[{v6[0]}]"
    raise InterfaceError(f"interface {host} has no usable IPv4 or IPv6 address")


def resolve_addr(addr: str) -> str:
    """`eth0:2377` -> `192.0.2.2:2377`; `eth0` -> `192.0.2.2`; addresses pass through."""
    if not addr:
        return addr
    host, colon, port = addr.rpartition(":") if ":" in addr.rsplit("]", 1)[-1] else (addr, "", "")
    if not host and colon:
        return addr  # ":2377"
    resolved = resolve_interface(host)
    return f"{resolved}{colon}{port}"
