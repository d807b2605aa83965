"""Host-mode ports of tasks on overlay networks: the node picks and checks them when it creates the
container (blocking: socket calls; the executor runs it on a thread).

The engine binds a host-mode port only for a container on its own networks; a task on overlay networks
runs with network mode "none" and is plumbed by the node's data plane, which DNATs the node's port to
the container instead (dataplane.py). So the worker does here what the engine would: a published port
must be free on the node (a socket of this namespace can bind it, and no other task of this node holds
it), else the task is rejected with the engine's message; a published port of 0 gets a free port, as
the engine's pick would (the kernel's choice for a bind to port 0, never one another task holds). The
result is recorded on the container (container_config.HOST_PORTS_LABEL).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable

from swarmpy.worker.task_states import HostPort

_SOCKET_TYPES = {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM}
_PICK_ATTEMPTS = 20


class PortInUse(Exception):
    """The engine's words for a host port that is taken."""

    def __init__(self, port: int) -> None:
        super().__init__(f"Bind for 0.0.0.0:{port} failed: port is already allocated")


def _bindable(protocol: str, port: int) -> int | None:
    """Bind the port (0: any) in this namespace and let it go; the port bound, or None if taken."""
    kind = _SOCKET_TYPES.get(protocol)
    if kind is None:  # sctp: nothing to probe with here; trust the scheduler's host-port filter
        return port or None
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind(("0.0.0.0", port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return None
            raise
        return probe.getsockname()[1]


def choose(wanted: Iterable[HostPort], taken: Iterable[HostPort]) -> list[HostPort]:
    """The ports to publish: each as asked if free, published 0 replaced by a free port."""
    held = {(port.protocol, port.published_port) for port in taken}
    chosen: list[HostPort] = []
    for port in wanted:
        if port.published_port:
            if (port.protocol, port.published_port) in held or _bindable(port.protocol, port.published_port) is None:
                raise PortInUse(port.published_port)
            picked = port.published_port
        else:
            for _ in range(_PICK_ATTEMPTS):
                candidate = _bindable(port.protocol, 0)
                if candidate is not None and (port.protocol, candidate) not in held:
                    picked = candidate
                    break
            else:
                raise PortInUse(0)
        held.add((port.protocol, picked))
        chosen.append(HostPort(port.target_port, port.protocol, picked))
    return chosen
