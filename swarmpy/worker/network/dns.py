"""The embedded DNS resolver: one listener per task container at 127.0.0.11:53, inside its namespace.

Theory of operation
-------------------
`Records` (pure) indexes a NodeNetworks model per network: a service's name and aliases give its VIP
(or, in dnsrr mode, its running tasks' IPs), `tasks.<name>` the running tasks' IPs, a task's name its
IP. `Resolver` opens a UDP and a TCP socket bound to 127.0.0.11:53 in each task container's own network
namespace (the socket is created by a thread that entered it, then served by the daemon's event loop),
so a container needs nothing but `nameserver 127.0.0.11` in its resolv.conf; the listener knows which
container asks, and answers only from the networks that container is on.

Answers: A records, shuffled (client-side round robin), TTL 600 as docker's, as many as fit the asker's
buffer (512 bytes, or its EDNS size) with TC set when some did not; PTR for an address of the asker's
networks: a task's IP gives its name, a VIP its service, any other address of those subnets NXDOMAIN;
a known name asked for another type gets NOERROR with no answers. A name that is a swarm name by shape (one label, or
`tasks.*`) and is unknown on the container's networks gets NXDOMAIN at once; anything else is
forwarded, with a fresh query ID, over one socket in the node's namespace to the asking container's
--dns servers if it was given any (docker's "external servers"), else the node's resolvers, in
order (SERVFAIL/REFUSED or 2 s of silence moves to the next), and SERVFAIL if none answers.
Replacing the records is one assignment, so a task that starts or stops is in or out of the answers as
soon as the node has the view saying so (dataplane.py `publish_names`: on receipt, keeping back the names
whose path this node has not programmed yet, which the next pass publishes).
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct
from collections.abc import Iterable, Mapping
from ipaddress import IPv4Address, IPv4Network, ip_address

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset

from swarmpy.worker.network import netns as nsutil
from swarmpy.worker.network.model import DNS_ADDRESS, NodeNetworks

log = logging.getLogger(__name__)

TTL = 600
UPSTREAM_TIMEOUT = 2.0
MAX_UDP = 512
ANSWER_VARIANTS = 8  # shuffled orders kept per cached question, so cached answers still rotate
MAX_CACHED = 10_000


class Records:
    """Name → IPs per network, built once per model. With `reachable` (per network, the addresses this
    node can route to now, VIPs included), only names of those addresses are kept: a task's name and its
    place in `tasks.X` (or a dnsrr service's answer) wait for its path, a service's VIP record for the
    VIP's rules (dataplane.py `publish_names` says why)."""

    def __init__(self, model: NodeNetworks, reachable: Mapping[str, set[IPv4Address]] | None = None) -> None:
        self.by_network: dict[str, dict[str, tuple[IPv4Address, ...]]] = {}
        self.reverse_by_network: dict[str, dict[IPv4Address, str]] = {}  # task IP -> task name, VIP -> service
        self.subnets: dict[str, IPv4Network] = {}
        for net in model.networks:
            names: dict[str, set[IPv4Address]] = {}
            reverse: dict[IPv4Address, str] = {}
            self.subnets[net.id] = net.subnet

            routable = None if reachable is None else reachable.get(net.id, set())

            def add(name: str, ips: Iterable[IPv4Address]) -> None:
                names.setdefault(name, set()).update(ips)

            def ok(ip: IPv4Address) -> bool:
                return routable is None or ip in routable

            for svc in net.services:
                task_ips = [t.ip for t in svc.tasks if ok(t.ip)]
                vip_ok = svc.vip is not None and ok(svc.vip)
                for name in (svc.name, *svc.aliases):
                    if svc.vip is None:
                        add(name, task_ips)
                    elif vip_ok:
                        add(name, [svc.vip])
                    add(f"tasks.{name}", task_ips)
                for task in svc.tasks:
                    if ok(task.ip):
                        add(task.name, [task.ip])
                        reverse[task.ip] = task.name
                if vip_ok:
                    reverse[svc.vip] = svc.name
            for ep in net.endpoints:
                if not ok(ep.ip):
                    continue
                for name in (ep.task_name, *ep.aliases):
                    add(name, [ep.ip])
                reverse.setdefault(ep.ip, ep.task_name)
            self.by_network[net.id] = {name: tuple(sorted(ips)) for name, ips in names.items()}
            self.reverse_by_network[net.id] = reverse

    def reverse(self, ip: IPv4Address, networks: Iterable[str]) -> tuple[str | None, bool]:
        """(the name of `ip` on the first of `networks` that knows it, whether `ip` is in one of their
        subnets at all): an address of the swarm's with no name is NXDOMAIN, any other is forwarded."""
        ours = False
        for network_id in networks:
            name = self.reverse_by_network.get(network_id, {}).get(ip)
            if name is not None:
                return name, True
            subnet = self.subnets.get(network_id)
            ours = ours or (subnet is not None and ip in subnet)
        return None, ours

    def lookup(self, name: str, networks: Iterable[str]) -> tuple[IPv4Address, ...] | None:
        """The IPs of `name` on the first of `networks` that knows it; None when none does."""
        key = name.lower().rstrip(".")
        for network_id in networks:
            ips = self.by_network.get(network_id, {}).get(key)
            if ips is not None:
                return ips
        return None


def _fitted(reply: dns.message.Message, name: dns.name.Name, ips: list[IPv4Address], max_size: int) -> bytes:
    """The reply with as many of `ips` as fit in `max_size` bytes, TC set when some did not (as docker's
    resolver does: a client that can retries over TCP; one that cannot still gets a usable, shuffled part)."""
    count = len(ips)
    while True:
        reply.answer = []
        if count:
            reply.answer.append(dns.rrset.from_text_list(name, TTL, "IN", "A", [str(ip) for ip in ips[:count]]))
        try:
            return reply.to_wire(max_size=max_size)
        except dns.exception.TooBig:
            count -= max(1, count // 8)
            reply.flags |= dns.flags.TC


def is_swarm_name(name: str) -> bool:
    key = name.lower().rstrip(".")
    return "." not in key or key.startswith("tasks.")


class Resolver:
    def __init__(self, node_netns_path: str, upstreams: tuple[IPv4Address, ...] = ()) -> None:
        self.node_netns_path = node_netns_path
        self.upstreams = upstreams
        self.container_upstreams: dict[str, tuple[IPv4Address, ...]] = {}  # a container's --dns servers
        self.records = Records(NodeNetworks(underlay=IPv4Address("192.0.2.1")))
        self.scopes: dict[str, list[str]] = {}  # container → its networks, in order
        self._listeners: dict[str, tuple[asyncio.DatagramTransport, asyncio.Server]] = {}
        self._forwarder: _Forwarder | None = None
        # (container, query bytes after the ID) → answers without their ID: local answers depend only on
        # the records and the asker's networks, so they are cached until the next update.
        self._answers: dict[tuple[str, bytes, int], list[bytes]] = {}

    def update(self, model: NodeNetworks, scopes: dict[str, list[str]],
               reachable: Mapping[str, set[IPv4Address]] | None = None) -> None:
        self.records = Records(model, reachable)
        self.scopes = scopes
        self.upstreams = model.upstream_resolvers
        self.container_upstreams = dict(model.container_resolvers)
        self._answers = {}

    @property
    def listening(self) -> set[str]:
        return set(self._listeners)

    async def listen(self, container: str, pid: int) -> None:
        """Open 127.0.0.11:53 (UDP and TCP) inside the container's namespace and serve it."""
        if container in self._listeners:
            return
        path = nsutil.container_netns(pid)
        udp_sock, tcp_sock = await asyncio.to_thread(_bind_pair, path)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _UdpServer(self, container), sock=udp_sock)
        server = await asyncio.start_server(
            lambda r, w: self._serve_tcp(container, r, w), sock=tcp_sock
        )
        self._listeners[container] = (transport, server)

    async def forget(self, container: str) -> None:
        listener = self._listeners.pop(container, None)
        if listener is not None:
            transport, server = listener
            transport.close()
            server.close()
            await server.wait_closed()

    async def close(self) -> None:
        for container in list(self._listeners):
            await self.forget(container)
        if self._forwarder is not None:
            self._forwarder.close()
            self._forwarder = None

    # -- answering ---------------------------------------------------------------------------------------
    async def respond(self, container: str, wire: bytes, max_size: int) -> bytes | None:
        key = (container, wire[2:], max_size)
        cached = self._answers.get(key)
        if cached is not None and len(cached) >= ANSWER_VARIANTS:
            return wire[:2] + random.choice(cached)
        answer = await self._respond(container, wire, max_size)
        return answer

    async def _respond(self, container: str, wire: bytes, max_size: int) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except Exception as exc:  # dnspython raises many types for bad wire data; the client is at fault
            log.debug("unparseable DNS query from %s: %s", container[:12], exc)
            return None
        if not query.question:
            return None
        question = query.question[0]
        qname = question.name.to_text()
        if question.rdtype == dns.rdatatype.PTR and qname.lower().endswith(".in-addr.arpa."):
            answer = self._reverse(container, query)
            if answer is not None:
                return self._cache(container, wire, max_size, answer, 0)
        ips = self.records.lookup(qname, self.scopes.get(container, ()))
        if ips is not None:
            reply = dns.message.make_response(query)
            reply.flags |= dns.flags.AA | dns.flags.RA
            shuffled = list(ips)
            random.shuffle(shuffled)
            if not (question.rdtype == dns.rdatatype.A and question.rdclass == dns.rdataclass.IN):
                shuffled = []
            room = max(max_size, min(query.payload, 65535)) if query.edns >= 0 else max_size  # EDNS buffer
            return self._cache(container, wire, max_size, _fitted(reply, question.name, shuffled, room), len(ips))
        upstreams = self.container_upstreams.get(container) or self.upstreams
        if is_swarm_name(qname) or not upstreams:
            reply = dns.message.make_response(query)
            reply.flags |= dns.flags.RA
            reply.set_rcode(dns.rcode.NXDOMAIN if is_swarm_name(qname) else dns.rcode.SERVFAIL)
            return self._cache(container, wire, max_size, reply.to_wire(), 0)
        return await self._forward(query, wire, upstreams)

    def _reverse(self, container: str, query: dns.message.Message) -> bytes | None:
        """A PTR answer for an address of the asker's networks (None: not the swarm's, to be forwarded)."""
        question = query.question[0]
        try:
            ip = ip_address(dns.reversename.to_address(question.name))
        except (ValueError, dns.exception.SyntaxError):
            ip = None
        if not isinstance(ip, IPv4Address):
            return None
        name, ours = self.records.reverse(ip, self.scopes.get(container, ()))
        if not ours:
            return None
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.AA | dns.flags.RA
        if name is None:
            reply.set_rcode(dns.rcode.NXDOMAIN)
        else:
            reply.answer.append(dns.rrset.from_text(question.name, TTL, "IN", "PTR", f"{name}."))
        return reply.to_wire()

    def _cache(self, container: str, wire: bytes, max_size: int, answer: bytes, addresses: int) -> bytes:
        if len(self._answers) >= MAX_CACHED:
            self._answers = {}
        variants = self._answers.setdefault((container, wire[2:], max_size), [])
        variants.append(answer[2:])
        if addresses <= 1:  # one order only: no need to build more
            variants.extend([answer[2:]] * (ANSWER_VARIANTS - len(variants)))
        return answer

    async def _forward(self, query: dns.message.Message, wire: bytes, upstreams: tuple[IPv4Address, ...]) -> bytes:
        if self._forwarder is None:
            self._forwarder = await _Forwarder.open(self.node_netns_path)
        for upstream in upstreams:
            answer = await self._forwarder.ask(wire, (str(upstream), 53))
            if answer is not None and (answer[3] & 0x0F) not in (dns.rcode.SERVFAIL, dns.rcode.REFUSED):
                return answer
        reply = dns.message.make_response(query)
        reply.set_rcode(dns.rcode.SERVFAIL)
        return reply.to_wire()

    async def _serve_tcp(self, container: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                answer = await self.respond(container, await reader.readexactly(size), 65535)
                if answer is None:
                    break
                writer.write(struct.pack("!H", len(answer)) + answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _bind_pair(path: str) -> tuple[socket.socket, socket.socket]:
    def bind() -> tuple[socket.socket, socket.socket]:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        for sock in (udp, tcp):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((str(DNS_ADDRESS), 53))
            sock.setblocking(False)
        tcp.listen(64)
        return udp, tcp

    return nsutil.in_netns(path, bind)


class _UdpServer(asyncio.DatagramProtocol):
    def __init__(self, resolver: Resolver, container: str) -> None:
        self.resolver = resolver
        self.container = container
        self.transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.ensure_future(self._answer(data, addr))
        self._tasks.add(task)  # owned here until done: a forward outlives this callback
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, data: bytes, addr: tuple[str, int]) -> None:
        answer = await self.resolver.respond(self.container, data, MAX_UDP)
        if answer is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(answer, addr)

    def connection_lost(self, exc: Exception | None) -> None:
        for task in self._tasks:
            task.cancel()


class _Forwarder(asyncio.DatagramProtocol):
    """One UDP socket in the node's namespace; queries get a fresh ID so answers find their asker."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: dict[int, tuple[int, asyncio.Future[bytes]]] = {}

    @classmethod
    async def open(cls, node_netns_path: str) -> _Forwarder:
        sock = await asyncio.to_thread(nsutil.socket_in_netns, node_netns_path, socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind(("0.0.0.0", 0))
        _, protocol = await asyncio.get_running_loop().create_datagram_endpoint(cls, sock=sock)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    async def ask(self, wire: bytes, upstream: tuple[str, int]) -> bytes | None:
        assert self.transport is not None
        query_id = random.randrange(65536)
        while query_id in self.pending:
            query_id = random.randrange(65536)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        original_id = struct.unpack("!H", wire[:2])[0]
        self.pending[query_id] = (original_id, future)
        try:
            self.transport.sendto(struct.pack("!H", query_id) + wire[2:], upstream)
            return await asyncio.wait_for(future, UPSTREAM_TIMEOUT)
        except (TimeoutError, OSError) as exc:
            log.info("upstream %s did not answer: %s", upstream[0], exc or "timeout")
            return None
        finally:
            self.pending.pop(query_id, None)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 12:
            return
        entry = self.pending.get(struct.unpack("!H", data[:2])[0])
        if entry is not None and not entry[1].done():
            entry[1].set_result(struct.pack("!H", entry[0]) + data[2:])

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
