"""One gRPC channel to the local daemon per invocation, and daemon errors turned into docker's lines.

grpc and the generated stubs are imported here, and this module is imported only from inside
command bodies, so `swarmpy --help` never pays for them.
"""

from __future__ import annotations

import re
import urllib.parse

import grpc

from swarmpy.api import control_pb2_grpc
from swarmpy.cli.errors import CliError

def grpc_target(host: str) -> str:
    """`unix:///path`, a bare path, or `host:port` -> a target grpc understands."""
    if host.startswith("unix://"):
        return "unix:" + host[len("unix://"):] if host.startswith("unix:///") else host
    if host.startswith("/") or host.startswith("."):
        return "unix:" + host
    if host.startswith("tcp://"):
        return host[len("tcp://"):]
    return host


class DaemonUnreachable(CliError):
    def __init__(self, host: str) -> None:
        super().__init__(f"Cannot connect to the swarmpy daemon at {host}. Is swarmpyd running?")


def error_from_rpc(error: grpc.RpcError, host: str) -> CliError:
    """The daemon's details are already written for users; say whose words they are, as docker does."""
    code = error.code() if hasattr(error, "code") else None
    details = (error.details() if hasattr(error, "details") else None) or str(code)
    if code == grpc.StatusCode.UNAVAILABLE and _is_local_connect_failure(details, host):
        return DaemonUnreachable(host)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return CliError(f"Error response from daemon: {details or 'context deadline exceeded'}")
    return CliError(f"Error response from daemon: {details}")


# grpc's own words when a channel could not reach an address.
_CONNECT_FAILURE_MARKERS = ("failed to connect", "connection refused", "no such file", "connect failed",
                            "errors resolving")


def _is_local_connect_failure(details: str, host: str) -> bool:
    """Whether this CLI's channel failed to reach the daemon at `host`.

    The words alone do not say: a daemon passes on the UNAVAILABLE of its own channels (to the leader,
    say) in the same words. grpc names the address it failed to reach, so that decides whose failure it
    was: the daemon's socket (or host:port) means the daemon is down; any other address, the daemon spoke.
    """
    if not any(marker in details.lower() for marker in _CONNECT_FAILURE_MARKERS):
        return False
    named = urllib.parse.unquote(details)  # grpc writes ipv6:%5B::1%5D:2375
    target = grpc_target(host)
    if re.search(re.escape(target) + r"(?![\w./-])", named):
        return True
    # A host name is reported by the addresses it resolved to: then the port has to match.
    _, _, port = target.rpartition(":")
    if target.startswith("unix:") or not port.isdigit():
        return False
    return re.search(rf"\bipv[46]:\S+:{port}(?!\d)", named) is not None


def is_not_found(error: grpc.RpcError) -> bool:
    return error.code() == grpc.StatusCode.NOT_FOUND


def is_aborted(error: grpc.RpcError) -> bool:
    return error.code() == grpc.StatusCode.ABORTED


class Daemon:
    """The local daemon's Control and LocalNode services over one channel."""

    def __init__(self, host: str, timeout: float = 30.0) -> None:
        self.host = host
        self.timeout = timeout
        self._channel = grpc.insecure_channel(grpc_target(host))
        self.control = control_pb2_grpc.ControlStub(self._channel)
        self.local_node = control_pb2_grpc.LocalNodeStub(self._channel)

    def call(self, method, request, timeout: float | None = None):
        """Unary call; a failure becomes the CliError the user should see."""
        try:
            return method(request, timeout=timeout or self.timeout)
        except grpc.RpcError as error:
            raise error_from_rpc(error, self.host) from error  # the cause shows only with --debug

    def close(self) -> None:
        self._channel.close()
