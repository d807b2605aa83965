"""Whose failure an UNAVAILABLE is: the CLI's own connection to the daemon, or something the daemon says."""

from __future__ import annotations

from concurrent import futures

import grpc
import pytest

from swarmpy.api import control_pb2, control_pb2_grpc
from swarmpy.cli.connection import Daemon, DaemonUnreachable, error_from_rpc
from swarmpy.cli.errors import CliError

# What a daemon passes on when its own channel to the leader cannot connect: grpc's words, another address.
LEADER_UNREACHABLE = ("failed to connect to all addresses; last error: UNKNOWN: ipv4:10.0.0.1:2377: "
                      "Failed to connect to remote host: Connection refused")


class _Unavailable(grpc.RpcError):
    def __init__(self, details: str) -> None:
        self._details = details

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return self._details


class _ControlThatCannotReachTheLeader(control_pb2_grpc.ControlServicer):
    def ListNodes(self, request, context):
        context.abort(grpc.StatusCode.UNAVAILABLE, LEADER_UNREACHABLE)


def _list_nodes(host: str) -> CliError:
    daemon = Daemon(host, timeout=5)
    try:
        with pytest.raises(CliError) as raised:
            daemon.call(daemon.control.ListNodes, control_pb2.ListNodesRequest())
    finally:
        daemon.close()
    return raised.value


def test_a_missing_socket_means_the_daemon_is_down(tmp_path):
    host = f"unix://{tmp_path}/swarmpy.sock"
    error = _list_nodes(host)
    assert isinstance(error, DaemonUnreachable)
    assert str(error) == f"Cannot connect to the swarmpy daemon at {host}. Is swarmpyd running?"


def test_a_daemon_passing_on_its_own_connect_failure_is_the_daemon_speaking(tmp_path):
    socket_path = tmp_path / "swarmpy.sock"
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    control_pb2_grpc.add_ControlServicer_to_server(_ControlThatCannotReachTheLeader(), server)
    server.add_insecure_port(f"unix:{socket_path}")
    server.start()
    try:
        error = _list_nodes(f"unix://{socket_path}")
    finally:
        server.stop(grace=None)
    assert not isinstance(error, DaemonUnreachable)
    assert str(error) == f"Error response from daemon: {LEADER_UNREACHABLE}"


@pytest.mark.parametrize("host, details", [
    ("tcp://127.0.0.1:2375", "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:2375: "
                             "Failed to connect to remote host: Connection refused"),
    ("localhost:2375", "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:2375: "
                       "Failed to connect to remote host: Connection refused"),
    ("[::1]:2375", "failed to connect to all addresses; last error: UNKNOWN: ipv6:%5B::1%5D:2375: "
                   "Failed to connect to remote host: Connection refused"),
    ("tcp://nowhere.invalid:2375", "errors resolving nowhere.invalid:2375: [field:hostname lookup error:"
                                   "address lookup failed for nowhere.invalid:2375: Domain name not found]"),
])
def test_a_tcp_daemon_that_cannot_be_reached_is_down(host, details):
    assert isinstance(error_from_rpc(_Unavailable(details), host), DaemonUnreachable)


@pytest.mark.parametrize("host", ["unix:///var/run/swarmpy/swarmpy.sock", "tcp://127.0.0.1:2375", "tcp://127.0.0.1:23"])
def test_connect_failures_naming_another_address_are_the_daemons_words(host):
    error = error_from_rpc(_Unavailable(LEADER_UNREACHABLE), host)
    assert not isinstance(error, DaemonUnreachable)
    assert str(error) == f"Error response from daemon: {LEADER_UNREACHABLE}"
