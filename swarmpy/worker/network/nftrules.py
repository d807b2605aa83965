"""nftables rulesets of the data plane, rendered as text (pure), applied whole with `nft -f -`.

VIP load balancing, without IPVS (this kernel has none), the way kube-proxy's nftables mode does it: a
connection to a VIP is DNATed by `numgen random mod N` through a map of the N running tasks, so the
choice is even and made once per connection (conntrack keeps the rest of the connection on it). The rules
sit in the output hook of each task container's own namespace, the design docker used before its LB
sandboxes: the DNAT happens where the connection starts, so no hop, no SNAT and the backend sees the
client's real address; the cost is one small table per container, rewritten only when its VIPs change.
A VIP with no running task is rejected at once (host-unreachable) instead of hanging, as kube-proxy does.

Why the `nft` CLI and not bindings: PyPI has no nftables binding; Debian's python3-nftables wraps the
same libnftables for the system Python only. The text format is nft's own, and a whole table is
replaced in one transaction (`add table; delete table; table {...}`), so readers never see half a
ruleset and reapplying is idempotent.

The node's egress (docker_gwbridge's job) is one table in the node's namespace: masquerade of the egress
subnet leaving by any interface but the egress bridge.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network

LB_TABLE = "swarmpy_lb"


def replace_table(name: str, body: str) -> str:
    """A script that atomically swaps table `ip NAME` for `body` (works whether or not it exists)."""
    return f"add table ip {name}\ndelete table ip {name}\ntable ip {name} {{\n{body}}}\n"


def delete_table(name: str) -> str:
    return f"add table ip {name}\ndelete table ip {name}\n"


def lb_ruleset(vips: Iterable[tuple[IPv4Address, tuple[IPv4Address, ...]]]) -> str:
    """The container's LB table: per VIP an even random DNAT over its backends, or reject if none."""
    dnat: list[str] = []
    reject: list[str] = []
    for vip, backends in sorted(vips):
        if not backends:
            reject.append(f"    ip daddr {vip} reject with icmp type host-unreachable\n")
        elif len(backends) == 1:
            dnat.append(f"    ip daddr {vip} dnat to {backends[0]}\n")
        else:
            choices = ", ".join(f"{i} : {ip}" for i, ip in enumerate(backends))
            dnat.append(f"    ip daddr {vip} dnat to numgen random mod {len(backends)} map {{ {choices} }}\n")
    body = "  chain vip-dnat {\n    type nat hook output priority -100; policy accept;\n" + "".join(dnat) + "  }\n"
    if reject:
        body += "  chain vip-empty {\n    type filter hook output priority 0; policy accept;\n"
        body += "".join(reject) + "  }\n"
    return replace_table(LB_TABLE, body)


def egress_ruleset(table: str, subnet: IPv4Network, bridge: str) -> str:
    body = (
        "  chain postrouting {\n    type nat hook postrouting priority 100; policy accept;\n"
        f'    ip saddr {subnet} oifname != "{bridge}" masquerade\n  }}\n'
    )
    return replace_table(table, body)
