"""Helpers for routing-mesh tests and benchmarks on lab hosts (lab.py): each host's model with the ingress
network, clients in the hub namespace ("outside"), and test servers inside task containers' namespaces.

The test servers are Python sockets opened in a task container's network namespace (so they answer at
the task's ingress address, as a process of the task would): busybox has no UDP server and cannot parse
a PROXY header, and the tests must see exactly what a task receives.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from swarmpy.worker.network import netns as nsutil
from swarmpy.worker.network.model import (
    LocalEndpoint,
    NetworkView,
    NodeNetworks,
    PublishedPort,
    RemotePeer,
    ServiceRecord,
    TaskRecord,
    mac_for_ip,
)
from tests.worker.network.lab import NetLab, run

INGRESS_ID = "ingressnet01"
INGRESS_VNI = 4096
INGRESS_SUBNET = IPv4Network("10.0.0.0/24")


@dataclass
class MeshTask:
    id: str
    host: str
    container: str
    address: IPv4Interface

    @property
    def name(self) -> str:
        return f"web.{self.id[-1]}.{self.id}"


@dataclass
class MeshCluster:
    """The ingress network as the managers would cut it: node addresses, one service, its tasks and ports."""

    node_addresses: dict[str, IPv4Interface]
    tasks: list[MeshTask] = field(default_factory=list)
    ports: tuple[PublishedPort, ...] = ()
    running: set[str] | None = None  # task ids in rotation (None: all)

    def models(self, underlays: dict[str, IPv4Address]) -> dict[str, NodeNetworks]:
        serving = [t for t in self.tasks if self.running is None or t.id in self.running]
        record = ServiceRecord(
            "websvc000001", "web", IPv4Address("10.0.0.250"),
            tasks=tuple(TaskRecord(t.name, t.address.ip) for t in serving), ports=self.ports,
        )
        models = {}
        for host, underlay in underlays.items():
            peers = [RemotePeer(t.address.ip, mac_for_ip(t.address.ip), underlays[t.host]) for t in self.tasks if t.host != host]
            peers += [
                RemotePeer(a.ip, mac_for_ip(a.ip), underlays[h]) for h, a in self.node_addresses.items() if h != host
            ]
            view = NetworkView(
                id=INGRESS_ID, name="ingress", vni=INGRESS_VNI, subnet=INGRESS_SUBNET, gateway=IPv4Address("10.0.0.1"),
                # A task without a container yet is no local endpoint (as from_dispatcher leaves it out).
                endpoints=tuple(
                    LocalEndpoint(t.id, t.name, t.container, t.address) for t in self.tasks if t.host == host and t.container
                ),
                peers=tuple(peers), services=(record,), ingress=True, node_address=self.node_addresses[host],
            )
            models[host] = NodeNetworks(underlay=underlay, networks=(view,))
        return models


async def apply_mesh(lab: NetLab, cluster: MeshCluster) -> None:
    models = cluster.models(lab.hosts)
    await asyncio.gather(*(lab.planes[host].apply(model) for host, model in models.items()))


def container_pid(container: str) -> int:
    return int(run("docker", "inspect", "-f", "{{.State.Pid}}", container).strip())


# -- clients in the hub ("outside") or in a host ---------------------------------------------------------


def _tcp_exchange(netns_path: str, address: str, port: int, payload: bytes, timeout: float = 3.0) -> bytes:
    sock = nsutil.socket_in_netns(netns_path, socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((address, port))
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
        return b"".join(chunks)
    finally:
        sock.close()


async def tcp_exchange(netns_path: str, address: str, port: int, payload: bytes = b"", timeout: float = 3.0) -> bytes | None:
    """The bytes the server sent back before closing, or None if the connection failed."""
    try:
        return await asyncio.to_thread(_tcp_exchange, netns_path, address, port, payload, timeout)
    except OSError:
        return None


async def http_bodies(netns_path: str, address: str, port: int, count: int) -> list[str]:
    """`count` HTTP/1.0 GETs of /, each on its own connection; the bodies ("FAILED" when none came)."""
    bodies = []
    for _ in range(count):
        reply = await tcp_exchange(netns_path, address, port, b"GET / HTTP/1.0\r\n\r\n")
        bodies.append(reply.split(b"\r\n\r\n", 1)[-1].decode().strip() if reply else "FAILED")
    return bodies


async def udp_answers(netns_path: str, address: str, port: int, count: int, timeout: float = 2.0) -> list[str]:
    """`count` datagrams, each from its own socket (its own conntrack entry); the answers."""
    def ask() -> str:
        sock = nsutil.socket_in_netns(netns_path, socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.settimeout(timeout)
            sock.sendto(b"who", (address, port))
            return sock.recv(1024).decode()
        except OSError:
            return "FAILED"
        finally:
            sock.close()

    return [await asyncio.to_thread(ask) for _ in range(count)]


# -- test servers inside a task container's namespace ----------------------------------------------------


class TaskServers:
    """Per task: a UDP server answering its name, a TCP server answering the peer address it saw, and a
    TCP server recording the first bytes of each connection (for the PROXY header)."""

    def __init__(self) -> None:
        self.transports: list[asyncio.BaseTransport] = []
        self.servers: list[asyncio.Server] = []
        self.received: dict[str, list[bytes]] = {}

    async def start(self, name: str, container: str, udp_port: int, peer_port: int, raw_port: int) -> None:
        path = nsutil.container_netns(container_pid(container))
        loop = asyncio.get_running_loop()

        class Answer(asyncio.DatagramProtocol):
            def connection_made(self, transport):
                self.transport = transport

            def datagram_received(self, data, addr):
                self.transport.sendto(name.encode(), addr)

        udp = await asyncio.to_thread(nsutil.socket_in_netns, path, socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("0.0.0.0", udp_port))
        udp.setblocking(False)
        transport, _ = await loop.create_datagram_endpoint(Answer, sock=udp)
        self.transports.append(transport)

        async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(f"{writer.get_extra_info('peername')[0]} {name}".encode())
            await writer.drain()
            writer.close()

        async def raw(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            data = await asyncio.wait_for(reader.read(), 5)  # to the client's end of sending (the relay passes it on)
            self.received.setdefault(name, []).append(data)
            writer.write(name.encode())
            await writer.drain()
            writer.close()

        for port, handler in ((peer_port, peer), (raw_port, raw)):
            sock = await asyncio.to_thread(nsutil.socket_in_netns, path, socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("0.0.0.0", port))
            sock.listen(64)
            sock.setblocking(False)
            self.servers.append(await asyncio.start_server(handler, sock=sock))

    async def close(self) -> None:
        for transport in self.transports:
            transport.close()
        for server in self.servers:
            server.close()
            await server.wait_closed()


def parse_proxy_header(data: bytes) -> tuple[str, int, str, int, bytes]:
    """A test server's own reading of a PROXY v2 header (haproxy's spec, section 2.2): source address,
    source port, destination address, destination port, and the bytes after the header."""
    assert data[:12] == b"\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49\x54\x0a", data[:16]
    assert data[12] >> 4 == 2 and data[12] & 0xF == 1, "version 2, command PROXY"
    assert data[13] == 0x11, "TCP over IPv4"
    length = struct.unpack("!H", data[14:16])[0]
    src, dst, sport, dport = struct.unpack("!4s4sHH", data[16:28])
    return socket.inet_ntoa(src), sport, socket.inet_ntoa(dst), dport, data[16 + length:]
