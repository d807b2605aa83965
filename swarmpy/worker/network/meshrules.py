"""The routing mesh's nftables table in a node's namespace, rendered as text (pure; mesh.py applies it).

Theory of operation
-------------------
Every node joins the ingress network through one veth (mesh.py): its node end holds the node's own
ingress address (say 10.0.0.3/24), its other end is a port of the ingress bridge. So the node's
namespace is itself on the ingress segment, the part docker gives to a separate `ingress_sbox`. A
connection to a published port at any local address of the node (`fib daddr type local`, whether it
came in from outside: prerouting, or from the node itself: output) is DNATed to one running task's
ingress address and target port, chosen by `numgen random mod N` once per connection (kube-proxy's
nftables mode: this kernel has no IPVS), and conntrack keeps the connection there:

    published   map  l4proto . port : goto service chain  (O(1), one lookup whatever the number of ports)
    svc-<n>     numgen random mod N vmap { i : goto ep-<n>-<i> }
    ep-<n>-<i>  meta l4proto <protocol> dnat to <task ingress ip>:<target port>

Source addresses, in postrouting on the mesh veth, only for connections the mesh DNATed:
- to a task on this node: kept. The task sees the client's real address (moby#25526); its reply leaves
  by its default route (the egress bridge, into this namespace), where conntrack undoes the DNAT.
- to a task on another node: masqueraded to this node's ingress address, so the task's reply comes back
  over the overlay to the node that holds the connection's state: the reverse path.
- from 127.0.0.0/8 (a client on the node itself): masqueraded too; such a source may leave by a
  non-loopback device only with `route_localnet` on it, which mesh.py sets on the mesh veth (docker
  does the same on docker_gwbridge).
A port with the PROXY v2 option is not in the map: its connections go to the relay (proxy_relay.py).
A port with no running task has no entry: the node's own stack answers (TCP reset, ICMP unreachable).
The whole table is replaced in one transaction, so the rules are rebuilt from the view each time and
there is nothing to get out of step; deleting the table is the exact cleanup.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address

from swarmpy.worker.network.nftrules import delete_table, replace_table


@dataclass(frozen=True, order=True)
class MeshPort:
    """One published port as this node serves it: where connections go, in a stable order."""

    protocol: str
    published: int
    target: int
    backends: tuple[IPv4Address, ...]  # the running tasks' ingress addresses, sorted


def mesh_ruleset(table: str, veth: str, ports: Iterable[MeshPort], local: Iterable[IPv4Address]) -> str:
    """The node's mesh table; `local` are the ingress addresses of the tasks on this node."""
    served = sorted(port for port in ports if port.backends)
    local_set = sorted(set(local))
    elements = []
    chains = []
    for n, port in enumerate(served):
        elements.append(f"{port.protocol} . {port.published} : goto svc-{n}")
        choices = ", ".join(f"{i} : goto ep-{n}-{i}" for i in range(len(port.backends)))
        chains.append(f"  chain svc-{n} {{\n    numgen random mod {len(port.backends)} vmap {{ {choices} }}\n  }}\n")
        for i, ip in enumerate(port.backends):
            chains.append(f"  chain ep-{n}-{i} {{\n    meta l4proto {port.protocol} dnat to {ip}:{port.target}\n  }}\n")
    body = ""
    if elements:
        body += (
            "  map published {\n    type inet_proto . inet_service : verdict\n"
            f"    elements = {{ {', '.join(elements)} }}\n  }}\n"
        )
    if local_set:
        body += f"  set local_tasks {{\n    type ipv4_addr\n    elements = {{ {', '.join(map(str, local_set))} }}\n  }}\n"
    dispatch = "    fib daddr type local meta l4proto . th dport vmap @published\n" if elements else ""
    body += f"  chain prerouting {{\n    type nat hook prerouting priority -100; policy accept;\n{dispatch}  }}\n"
    body += f"  chain output {{\n    type nat hook output priority -100; policy accept;\n{dispatch}  }}\n"
    keep_local = f'    oifname "{veth}" ip daddr @local_tasks ip saddr != 127.0.0.0/8 accept\n' if local_set else ""
    body += (
        "  chain postrouting {\n    type nat hook postrouting priority 100; policy accept;\n"
        f"{keep_local}"
        f'    oifname "{veth}" ct status dnat masquerade\n  }}\n'
    )
    return replace_table(table, body + "".join(chains))


def no_mesh(table: str) -> str:
    return delete_table(table)
