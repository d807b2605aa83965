"""The redirect a non-leader manager sends and the agent reads: built and parsed by the same module."""

from __future__ import annotations

import grpc
import grpc.aio

from swarmpy.leader_redirect import LEADER_ADDR_KEY, leader_redirect, refusal


def _error(code: grpc.StatusCode, details: str, trailing: tuple = ()) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), details=details)


def test_a_refusal_naming_the_leader_is_read_back_as_its_address():
    details, trailing = refusal("10.0.0.1:2377")
    assert details == "not the leader; the leader is at 10.0.0.1:2377"
    assert leader_redirect(_error(grpc.StatusCode.UNAVAILABLE, details, trailing)) == "10.0.0.1:2377"


def test_a_refusal_without_a_known_leader_redirects_nowhere():
    details, trailing = refusal("")
    assert details == "not the leader; no leader is known yet"
    assert leader_redirect(_error(grpc.StatusCode.UNAVAILABLE, details, trailing)) is None


def test_other_errors_are_not_redirects_even_with_the_metadata_key():
    trailing = ((LEADER_ADDR_KEY, "10.0.0.1:2377"),)
    assert leader_redirect(_error(grpc.StatusCode.UNAVAILABLE, "connection refused", trailing)) is None
    assert leader_redirect(_error(grpc.StatusCode.INTERNAL, "not the leader", trailing)) is None
