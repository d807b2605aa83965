"""The PROXY protocol v2 relay of one published port: the opt-in way for a task to learn the real client.

Theory of operation
-------------------
The kernel path (meshrules.py) keeps the client's address only when the chosen task runs on the node
that took the connection; a task on another node must see the node's ingress address, or its replies
would not come back through the node holding the connection. A TCP port published with
`proxy-protocol=v2` therefore does not go through the kernel's DNAT: the node's relay listens on the
port itself (in the node's namespace, every address, so 127.0.0.1 works too), picks a running task at
random, connects to its ingress address and target port from the node's ingress address, writes a
PROXY v2 header carrying the client's address and port and the address it connected to, then copies
bytes both ways until either side closes. Every connection of such a port carries the header, local
task or not, because a server that expects the header (nginx `proxy_protocol`, HAProxy `accept-proxy`)
refuses a connection without it. This is userspace on the hot path of that port only; the others stay
in the kernel.

Header (haproxy's proxy-protocol.txt, section 2.2): the 12-byte signature, 0x21 (version 2, PROXY),
0x11 (TCP over IPv4), the 12-byte address block length, then source address, destination address,
source port, destination port, all in network order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import struct
from ipaddress import IPv4Address

from swarmpy.worker.network import netns as nsutil

log = logging.getLogger(__name__)

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
CONNECT_TIMEOUT = 3.0
CHUNK = 65536


def proxy_v2_header(source: tuple[str, int], destination: tuple[str, int]) -> bytes:
    """The PROXY v2 header announcing a TCP/IPv4 connection from `source` to `destination`."""
    addresses = struct.pack(
        "!4s4sHH", IPv4Address(source[0]).packed, IPv4Address(destination[0]).packed, source[1], destination[1]
    )
    return SIGNATURE + bytes([0x21, 0x11]) + struct.pack("!H", len(addresses)) + addresses


def parse_proxy_v2(data: bytes) -> tuple[tuple[str, int], tuple[str, int], int]:
    """(source, destination, header length) of a TCP/IPv4 PROXY v2 header at the start of `data`."""
    if not data.startswith(SIGNATURE) or len(data) < 16:
        raise ValueError("not a PROXY v2 header")
    version_command, family = data[12], data[13]
    (length,) = struct.unpack("!H", data[14:16])
    if version_command != 0x21 or family != 0x11 or length < 12 or len(data) < 16 + length:
        raise ValueError(f"unsupported PROXY v2 header: command {version_command:#x}, family {family:#x}")
    src, dst, sport, dport = struct.unpack("!4s4sHH", data[16:28])
    return (str(IPv4Address(src)), sport), (str(IPv4Address(dst)), dport), 16 + length


class ProxyRelay:
    """Listens on one TCP port in the node's namespace; `backends` may be replaced at any time."""

    def __init__(self, netns_path: str, port: int, target: int, source: IPv4Address) -> None:
        self.netns_path = netns_path
        self.port = port
        self.target = target
        self.source = source
        self.backends: tuple[IPv4Address, ...] = ()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        sock = await asyncio.to_thread(nsutil.socket_in_netns, self.netns_path, socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("0.0.0.0", self.port))
            sock.listen(512)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._server = await asyncio.start_server(self._accepted, sock=sock)
        log.info("PROXY v2 relay listening on port %d", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._relay(reader, writer)
        except (OSError, asyncio.TimeoutError) as error:
            log.debug("PROXY relay on port %d: connection ended: %s", self.port, error)
        finally:
            self._connections.discard(task)
            writer.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.backends:
            return  # no running task: the client sees the connection closed
        backend = random.choice(self.backends)
        upstream = await asyncio.to_thread(nsutil.socket_in_netns, self.netns_path, socket.AF_INET, socket.SOCK_STREAM)
        try:
            upstream.setblocking(False)
            upstream.bind((str(self.source), 0))
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(upstream, (str(backend), self.target)), CONNECT_TIMEOUT)
        except BaseException:
            upstream.close()
            raise
        task_reader, task_writer = await asyncio.open_connection(sock=upstream)
        try:
            client = writer.get_extra_info("peername")[:2]
            local = writer.get_extra_info("sockname")[:2]
            task_writer.write(proxy_v2_header(client, local))
            await asyncio.gather(_copy(reader, task_writer), _copy(task_reader, writer))
        finally:
            task_writer.close()


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    finally:
        if writer.can_write_eof():
            with contextlib.suppress(OSError):
                writer.write_eof()
