"""One gRPC channel to the local daemon per invocation, and daemon errors turned into docker's lines.

grpc and the generated stubs are imported here, and this module is imported only from inside
command bodies, so `swarmpy --help` never pays for them.
"""

from __future__ import annotations

import grpc

from swarmpy.api import control_pb2_grpc
from swarmpy.cli.errors import CliError

DEFAULT_HOST = "unix:///var/run/swarmpy/swarmpy.sock"


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
    if code == grpc.StatusCode.UNAVAILABLE and _is_connect_failure(details):
        return DaemonUnreachable(host)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return CliError(f"Error response from daemon: {details or 'context deadline exceeded'}")
    return CliError(f"Error response from daemon: {details}")


def _is_connect_failure(details: str) -> bool:
    lowered = details.lower()
    return any(
        marker in lowered
        for marker in ("failed to connect", "connection refused", "no such file", "connect failed")
    )


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
