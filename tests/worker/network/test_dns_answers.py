"""The resolver's answers without sockets: scoping, rotation through the answer cache, no stale answers."""

from ipaddress import IPv4Address, IPv4Interface

import dns.message
import dns.rcode
import dns.rrset

from swarmpy.worker.network.dns import Resolver
from tests.worker.network.cluster_view import Net, Service, Task, host_models
from tests.worker.network.test_dataplane import BACK, FRONT

UNDERLAY = {"h1": IPv4Address("10.231.9.1")}


def models(api_tasks: int):
    api = Service("svcapi000001", "api", {FRONT.id: IPv4Address("10.0.1.2")})
    tasks = [Task(f"t{i}", api, i, "h1", f"c{i}", {FRONT.id: IPv4Interface(f"10.0.1.{10 + i}/24")})
             for i in range(1, api_tasks + 1)]
    tasks.append(Task("lone1", Service("svclone00001", "lone"), 1, "h1", "clone", {BACK.id: IPv4Interface("10.0.2.5/24")}))
    return host_models(UNDERLAY, [FRONT, BACK], tasks)["h1"]


async def ask(resolver: Resolver, container: str, name: str):
    reply = dns.message.from_wire(await resolver.respond(container, dns.message.make_query(name, "A").to_wire(), 512))
    return reply.rcode(), [str(r) for rrset in reply.answer for r in rrset]


async def test_answers_rotate_are_scoped_and_follow_updates_at_once():
    resolver = Resolver("/proc/self/ns/net")
    resolver.update(models(3), {"c1": [FRONT.id], "clone": [BACK.id]})
    orders = set()
    for _ in range(60):
        rcode, ips = await ask(resolver, "c1", "tasks.api")
        assert rcode == dns.rcode.NOERROR and sorted(ips) == ["10.0.1.11", "10.0.1.12", "10.0.1.13"]
        orders.add(tuple(ips))
    assert len(orders) > 1  # cached answers still rotate
    assert await ask(resolver, "clone", "tasks.api") == (dns.rcode.NXDOMAIN, [])
    assert await ask(resolver, "c1", "api") == (dns.rcode.NOERROR, ["10.0.1.2"])
    resolver.update(models(1), {"c1": [FRONT.id], "clone": [BACK.id]})
    assert await ask(resolver, "c1", "tasks.api") == (dns.rcode.NOERROR, ["10.0.1.11"])


async def test_an_answer_too_big_for_udp_is_truncated_with_tc_and_whole_with_edns_or_tcp():
    import dns.flags

    resolver = Resolver("/proc/self/ns/net")
    resolver.update(models(100), {"c1": [FRONT.id]})
    plain = await resolver.respond("c1", dns.message.make_query("tasks.api", "A").to_wire(), 512)
    reply = dns.message.from_wire(plain)
    assert len(plain) <= 512 and reply.flags & dns.flags.TC
    assert 10 <= len(reply.answer[0]) < 100
    edns = dns.message.make_query("tasks.api", "A", use_edns=0, payload=4096)
    whole = dns.message.from_wire(await resolver.respond("c1", edns.to_wire(), 512))
    assert len(whole.answer[0]) == 100 and not whole.flags & dns.flags.TC
    over_tcp = dns.message.from_wire(await resolver.respond("c1", dns.message.make_query("tasks.api", "A").to_wire(), 65535))
    assert len(over_tcp.answer[0]) == 100 and not over_tcp.flags & dns.flags.TC


async def test_reverse_lookups_name_tasks_and_vips_of_the_askers_networks_only():
    import dns.reversename

    resolver = Resolver("/proc/self/ns/net")
    resolver.update(models(2), {"c1": [FRONT.id], "clone": [BACK.id]})

    async def ptr(container: str, ip: str):
        query = dns.message.make_query(dns.reversename.from_address(ip), "PTR")
        reply = dns.message.from_wire(await resolver.respond(container, query.to_wire(), 512))
        return reply.rcode(), [str(r) for rrset in reply.answer for r in rrset]

    assert await ptr("c1", "10.0.1.11") == (dns.rcode.NOERROR, ["api.1.t1."])
    assert await ptr("c1", "10.0.1.2") == (dns.rcode.NOERROR, ["api."])
    assert await ptr("c1", "10.0.1.99") == (dns.rcode.NXDOMAIN, [])  # the swarm's subnet, nobody's address
    # Not the asker's network: forwarded, and with no upstream to ask, SERVFAIL.
    assert await ptr("clone", "10.0.1.11") == (dns.rcode.SERVFAIL, [])


class _FixedAnswer:
    """A DNS server on a loopback address that answers every A question with one address."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.asked = 0

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.asked += 1
        query = dns.message.from_wire(data)
        reply = dns.message.make_response(query)
        reply.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A", self.address))
        self.transport.sendto(reply.to_wire(), addr)

    def error_received(self, exc) -> None:
        pass

    def connection_lost(self, exc) -> None:
        pass


async def test_a_containers_dns_servers_answer_its_other_names_in_place_of_the_nodes():
    import asyncio
    import dataclasses

    loop = asyncio.get_running_loop()
    node_server, own_server = _FixedAnswer("192.0.2.1"), _FixedAnswer("192.0.2.2")
    transports = [
        (await loop.create_datagram_endpoint(lambda s=s: s, local_addr=(address, 53)))[0]
        for s, address in ((node_server, "127.0.9.1"), (own_server, "127.0.9.2"))
    ]
    try:
        model = dataclasses.replace(models(1), upstream_resolvers=(IPv4Address("127.0.9.1"),),
                                    container_resolvers=(("c1", (IPv4Address("127.0.9.2"),)),))
        resolver = Resolver("/proc/self/ns/net")
        resolver.update(model, {"c1": [FRONT.id], "clone": [BACK.id]})
        assert await ask(resolver, "c1", "example.test") == (dns.rcode.NOERROR, ["192.0.2.2"])  # its --dns
        assert await ask(resolver, "clone", "example.test") == (dns.rcode.NOERROR, ["192.0.2.1"])  # the node's
        assert (node_server.asked, own_server.asked) == (1, 1)
        assert await ask(resolver, "c1", "api") == (dns.rcode.NOERROR, ["10.0.1.2"])  # swarm names stay local
        assert own_server.asked == 1
        await resolver.close()
    finally:
        for transport in transports:
            transport.close()
