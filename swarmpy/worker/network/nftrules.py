"""nftables rulesets of the data plane, rendered as text (pure), applied with libnftables (nftlib.py).

VIP load balancing, without IPVS (this kernel has none), the way kube-proxy's nftables mode does it: a
connection to a VIP is DNATed by `numgen random mod N` through a map of the N running tasks, so the
choice is even and made once per connection (conntrack keeps the rest of the connection on it). The rules
sit in the output hook of each task container's own namespace, the design docker used before its LB
sandboxes: the DNAT happens where the connection starts, so no hop, no SNAT and the backend sees the
client's real address. A VIP with no running task is rejected at once (host-unreachable) instead of
hanging, as kube-proxy does.

The container's table, and how it is kept up to date in place:

    map vips        ipv4_addr : verdict   VIP -> goto svc-<vip hex>        (one O(1) lookup per connection)
    set empty       ipv4_addr             the VIPs with no running task    (rejected)
    chain vip-dnat  nat output -100       ip daddr vmap @vips
    chain vip-empty filter output 0       ip daddr @empty reject
    chain svc-<vip> its one rule: dnat to numgen random mod N map { 0 : task, ... }

The tasks of a service come and go all the time (100 tasks starting change every container's backends
100 times), its VIPs hardly ever. So a change is not a table rewrite: `lb_delta` reads the table back
(nft's JSON) and writes one transaction with only what differs: a service chain's rule replaced (flush +
add), map and set elements added or deleted, chains added or deleted. Reading back rather than trusting
what was last written keeps the data plane's rule (the kernel follows the model whatever it holds): an
element or chain deleted by hand is restored by the next pass, and a skeleton that is not exactly ours
(a base chain, the map or the set missing or changed, a foreign object) is replaced whole, atomically
(`add table; delete table; table {...}`), so readers never see half a table.

The text is nft's own language; nftlib.py runs it in-process (no `nft` process per container).

The node's egress (docker_gwbridge's job) is one table in the node's namespace: masquerade of the egress
subnet leaving by any interface but the egress bridge.

Host-mode published ports of tasks on overlay networks (the engine binds them only on its own networks)
are one more table in the node's namespace: a connection to the published port at any of the node's
addresses (`fib daddr type local`: from outside in prerouting, from the node itself in output, except
loopback) is DNATed to the task container's egress address and target port, as docker publishes such
ports through docker_gwbridge. No masquerade: the task sees the client's address, and its reply leaves
by its default route (the egress bridge) into the node's namespace, where conntrack undoes the DNAT.
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


Vip = tuple[IPv4Address, tuple[IPv4Address, ...]]  # a VIP and its backends (none: reject)

_DADDR = {"payload": {"protocol": "ip", "field": "daddr"}}
# The two base chains' only rules, as nft's JSON lists them: dispatch by VIP, reject the empty ones.
_DISPATCH_EXPR = [{"vmap": {"key": _DADDR, "data": "@vips"}}]
_REJECT_EXPR = [{"match": {"op": "==", "left": _DADDR, "right": "@empty"}},
                {"reject": {"type": "icmp", "expr": "host-unreachable"}}]
_BASE_CHAINS = {  # name -> (type, hook, priority, its one rule)
    "vip-dnat": ("nat", "output", -100, _DISPATCH_EXPR),
    "vip-empty": ("filter", "output", 0, _REJECT_EXPR),
}


def service_chain(vip: IPv4Address) -> str:
    return f"svc-{int(vip):08x}"


def _dnat_rule(backends: tuple[IPv4Address, ...]) -> str:
    if len(backends) == 1:
        return f"dnat to {backends[0]}"
    choices = ", ".join(f"{i} : {ip}" for i, ip in enumerate(backends))
    return f"dnat to numgen random mod {len(backends)} map {{ {choices} }}"


def _dnat_expr(backends: tuple[IPv4Address, ...]) -> list[dict]:
    if len(backends) == 1:
        return [{"dnat": {"addr": str(backends[0])}}]
    pairs = [[i, str(ip)] for i, ip in enumerate(backends)]
    numgen = {"numgen": {"mode": "random", "mod": len(backends), "offset": 0}}
    return [{"dnat": {"addr": {"map": {"key": numgen, "data": {"set": pairs}}}}}]


def lb_ruleset(vips: Iterable[Vip]) -> str:
    """The container's whole LB table, replacing whatever is there (first write, or a table whose
    skeleton someone changed): per VIP with tasks a map element `VIP : goto svc-<vip>` whose chain does
    an even random DNAT over them; the VIPs without any in a set that is rejected at once."""
    wanted = sorted(vips)
    served = [(vip, backends) for vip, backends in wanted if backends]
    empty = [str(vip) for vip, backends in wanted if not backends]
    elements = ", ".join(f"{vip} : goto {service_chain(vip)}" for vip, _ in served)
    body = "  map vips {\n    type ipv4_addr : verdict\n" + (f"    elements = {{ {elements} }}\n" if elements else "") + "  }\n"
    body += "  set empty {\n    type ipv4_addr\n" + (f"    elements = {{ {', '.join(empty)} }}\n" if empty else "") + "  }\n"
    body += "  chain vip-dnat {\n    type nat hook output priority -100; policy accept;\n    ip daddr vmap @vips\n  }\n"
    body += ("  chain vip-empty {\n    type filter hook output priority 0; policy accept;\n"
             "    ip daddr @empty reject with icmp type host-unreachable\n  }\n")
    for vip, backends in served:
        body += f"  chain {service_chain(vip)} {{\n    {_dnat_rule(backends)}\n  }}\n"
    return replace_table(LB_TABLE, body)


def lb_delta(listing: dict | None, vips: Iterable[Vip]) -> str | None:
    """What turns the kernel's LB table (`listing`: `nft -j list ruleset` of the container) into the
    wanted one, as one transaction touching only what differs: elements of `vips` and `empty` added or
    deleted, a service chain's one rule replaced when its backends changed, chains added or deleted.
    None when the kernel already matches. Anything the delta does not model (the table, a base chain,
    the map or the set missing or changed, a foreign object, an element of an unknown shape) gives the
    whole table instead (`lb_ruleset`): the result is the wanted table whatever the kernel held."""
    wanted = dict(sorted(vips))
    kernel = _parse_lb_table(listing)
    if kernel is None:
        return lb_ruleset(wanted.items())
    have_map, have_empty, have_chains = kernel
    t = f"ip {LB_TABLE}"
    want_map = {str(vip): service_chain(vip) for vip, backends in wanted.items() if backends}
    want_empty = {str(vip) for vip, backends in wanted.items() if not backends}
    want_chains = {service_chain(vip): backends for vip, backends in wanted.items() if backends}
    commands: list[str] = []
    for chain, backends in want_chains.items():
        if chain not in have_chains:
            commands.append(f"add chain {t} {chain}")
        if have_chains.get(chain) != [_dnat_expr(backends)]:
            commands += [f"flush chain {t} {chain}", f"add rule {t} {chain} {_dnat_rule(backends)}"]
    stale = sorted(vip for vip, target in have_map.items() if want_map.get(vip) != target)
    if stale:
        commands.append(f"delete element {t} vips {{ {', '.join(stale)} }}")
    missing = sorted(vip for vip, target in want_map.items() if have_map.get(vip) != target)
    if missing:
        commands.append(f"add element {t} vips {{ {', '.join(f'{vip} : goto {want_map[vip]}' for vip in missing)} }}")
    if have_empty - want_empty:
        commands.append(f"delete element {t} empty {{ {', '.join(sorted(have_empty - want_empty))} }}")
    if want_empty - have_empty:
        commands.append(f"add element {t} empty {{ {', '.join(sorted(want_empty - have_empty))} }}")
    for chain in sorted(set(have_chains) - set(want_chains)):  # after the elements that pointed at them
        commands += [f"flush chain {t} {chain}", f"delete chain {t} {chain}"]
    return "\n".join(commands) + "\n" if commands else None


def _parse_lb_table(listing: dict | None) -> tuple[dict[str, str], set[str], dict[str, list]] | None:
    """(map element VIP -> goto target, the empty set's VIPs, service chain -> its rules' expressions)
    of the LB table in `listing`, or None when its skeleton is not exactly the one lb_ruleset writes."""
    objects = []
    for item in [] if listing is None else listing.get("nftables", []):
        kind, body = next(iter(item.items()))
        if kind != "metainfo" and body.get("family") == "ip" and body.get("table" if kind != "table" else "name") == LB_TABLE:
            objects.append((kind, body))
    if not any(kind == "table" for kind, _ in objects):
        return None
    chains: dict[str, dict] = {}
    rules: dict[str, list] = {}
    maps: dict[str, dict] = {}
    sets: dict[str, dict] = {}
    for kind, body in objects:
        if kind == "chain":
            chains[body["name"]] = body
            rules.setdefault(body["name"], [])
        elif kind == "rule":
            rules.setdefault(body["chain"], []).append(body.get("expr"))
        elif kind == "map":
            maps[body["name"]] = body
        elif kind == "set":
            sets[body["name"]] = body
        elif kind != "table":
            return None  # a flowtable, a counter object ...: not ours
    vips, empty = maps.get("vips"), sets.get("empty")
    if set(maps) != {"vips"} or set(sets) != {"empty"} or vips is None or empty is None:
        return None
    if (vips.get("type"), vips.get("map"), vips.get("flags")) != ("ipv4_addr", "verdict", None):
        return None
    if (empty.get("type"), empty.get("flags")) != ("ipv4_addr", None):
        return None
    for name, (kind, hook, priority, expr) in _BASE_CHAINS.items():
        chain = chains.get(name, {})
        shape = (chain.get("type"), chain.get("hook"), chain.get("prio"), chain.get("policy"))
        if shape != (kind, hook, priority, "accept") or rules.get(name) != [expr]:
            return None
    have_map: dict[str, str] = {}
    for element in vips.get("elem", []):
        if not (isinstance(element, list) and len(element) == 2 and isinstance(element[0], str)):
            return None
        target = element[1].get("goto", {}).get("target") if isinstance(element[1], dict) else None
        if target is None:
            return None
        have_map[element[0]] = target
    if not all(isinstance(element, str) for element in empty.get("elem", [])):
        return None
    have_empty = set(empty.get("elem", []))
    service_chains = {name: _sorted_maps(rules[name]) for name in chains if name not in _BASE_CHAINS}
    if any(name in _BASE_CHAINS or "hook" in chains[name] for name in service_chains):
        return None
    return have_map, have_empty, service_chains


def _sorted_maps(rules: list) -> list:
    """A service chain's rules with their anonymous map's pairs in key order (the kernel's own order
    is its hash's)."""
    for expr in rules:
        for statement in expr or []:
            pairs = statement.get("dnat", {}).get("addr", {}) if isinstance(statement, dict) else None
            data = pairs.get("map", {}).get("data", {}) if isinstance(pairs, dict) else None
            if isinstance(data, dict) and isinstance(data.get("set"), list):
                data["set"] = sorted(data["set"], key=lambda pair: pair[0] if isinstance(pair, list) else -1)
    return rules


def egress_ruleset(table: str, subnet: IPv4Network, bridge: str) -> str:
    body = (
        "  chain postrouting {\n    type nat hook postrouting priority 100; policy accept;\n"
        f'    ip saddr {subnet} oifname != "{bridge}" masquerade\n  }}\n'
    )
    return replace_table(table, body)


def host_ports_ruleset(table: str, forwards: Iterable[tuple[str, int, IPv4Address, int]]) -> str:
    """(protocol, published, container egress address, target) each; no forward: the table is deleted."""
    rules = sorted(set(forwards))
    if not rules:
        return delete_table(table)
    dnat = "".join(f"    fib daddr type local {proto} dport {published} dnat to {ip}:{target}\n"
                   for proto, published, ip, target in rules)
    body = (
        f"  chain prerouting {{\n    type nat hook prerouting priority -100; policy accept;\n{dnat}  }}\n"
        "  chain output {\n    type nat hook output priority -100; policy accept;\n"
        "    ip daddr 127.0.0.0/8 return\n"
        f"{dnat}  }}\n"
    )
    return replace_table(table, body)
