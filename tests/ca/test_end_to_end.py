"""Joining and calling a manager over real mutual TLS: grpc.aio servers on 127.0.0.1 ephemeral ports."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import grpc
import pytest

from swarmpy.api import (
    ca_pb2,
    ca_pb2_grpc,
    control_pb2,
    control_pb2_grpc,
    dispatcher_pb2,
    dispatcher_pb2_grpc,
    objects_pb2,
)
from swarmpy.ca import certs, tokens
from swarmpy.ca.authz import AuthorizationInterceptor, caller_identity
from swarmpy.ca.bootstrap import (
    fetch_root_ca,
    peer_certificate_chain,
    renew_node_certificate,
    request_node_certificate,
)
from swarmpy.ca.errors import JoinRefused, MalformedCertificate, ManagerUnreachable, RootCAMismatch
from swarmpy.ca.keystore import NodeCredentials
from swarmpy.ca.server import CAServicer, sign_for_cluster
from swarmpy.ca.tls import (
    CHANNEL_OPTIONS,
    ReloadableServerCredentials,
    bootstrap_channel_credentials,
    channel_credentials,
    secure_channel,
    server_credentials,
    server_options,
)
from swarmpy.identity import new_id
from tests.ca.swarm_fixtures import Swarm, forged_with_bootstrap_ca, new_swarm

pytestmark = pytest.mark.timeout(30)

CALL_TIMEOUT = 5


class EchoCaller(control_pb2_grpc.ControlServicer, dispatcher_pb2_grpc.DispatcherServicer):
    """Stand-ins for Control and Dispatcher that answer with the caller's identity."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def ListNodes(self, request, context):
        identity = caller_identity()
        self.calls.append(identity.node_id)
        return control_pb2.ListNodesResponse(nodes=[objects_pb2.Node(id=identity.node_id, role=identity.role)])

    async def Heartbeat(self, request, context):
        self.calls.append(caller_identity().node_id)
        return dispatcher_pb2.HeartbeatResponse(period=5_000_000_000)

    async def PublishLogs(self, request_iterator, context):
        async for _ in request_iterator:
            self.calls.append(caller_identity().node_id)
        return dispatcher_pb2.PublishLogsResponse()

    async def Session(self, request, context):
        for _ in range(2):
            yield dispatcher_pb2.SessionMessage(session_id="s", node=objects_pb2.Node(id=caller_identity().node_id))


def _raft_echo_handler() -> grpc.GenericRpcHandler:
    """A bidirectional-streaming method under the managers-only Raft service, echoing the caller's node ID."""

    async def echo(request_iterator, context):
        async for request in request_iterator:
            yield request + b":" + caller_identity().node_id.encode()

    return grpc.method_handlers_generic_handler("swarmpy.api.Raft", {"Echo": grpc.stream_stream_rpc_method_handler(echo)})


@dataclass
class Manager:
    swarm: Swarm
    addr: str
    echo: EchoCaller
    issued: list[str] = field(default_factory=list)
    issue_requests: list[tuple] = field(default_factory=list)  # (node_id, role, availability, advertise_addr)


@pytest.fixture
async def manager():
    swarm = new_swarm()
    issued: list[str] = []
    requests: list[tuple] = []

    async def issue(role, csr_pem, availability, advertise_addr):
        node_id = new_id()
        issued.append(node_id)
        requests.append((node_id, role, availability, advertise_addr))
        return node_id, await sign_for_cluster(swarm.cluster, csr_pem, node_id, role), swarm.cluster_id

    echo = EchoCaller()
    server = grpc.aio.server(
        interceptors=[AuthorizationInterceptor(swarm.cluster_id, lambda: swarm.root_cert)], options=server_options()
    )
    ca_pb2_grpc.add_CAServicer_to_server(CAServicer(issue, lambda: swarm.cluster), server)
    control_pb2_grpc.add_ControlServicer_to_server(echo, server)
    dispatcher_pb2_grpc.add_DispatcherServicer_to_server(echo, server)
    server.add_generic_rpc_handlers([_raft_echo_handler()])
    manager_key, manager_cert = swarm.node_credentials(objects_pb2.MANAGER, "manager-1")
    port = server.add_secure_port("127.0.0.1:0", server_credentials(manager_key, manager_cert, swarm.root_cert))
    await server.start()
    try:
        yield Manager(swarm, f"127.0.0.1:{port}", echo, issued, requests)
    finally:
        await server.stop(grace=None)


async def list_nodes(addr: str, credentials: grpc.ChannelCredentials) -> control_pb2.ListNodesResponse:
    async with grpc.aio.secure_channel(addr, credentials, CHANNEL_OPTIONS) as channel:
        return await control_pb2_grpc.ControlStub(channel).ListNodes(control_pb2.ListNodesRequest(), timeout=CALL_TIMEOUT)


async def heartbeat(addr: str, credentials: grpc.ChannelCredentials) -> dispatcher_pb2.HeartbeatResponse:
    async with grpc.aio.secure_channel(addr, credentials, CHANNEL_OPTIONS) as channel:
        return await dispatcher_pb2_grpc.DispatcherStub(channel).Heartbeat(
            dispatcher_pb2.HeartbeatRequest(), timeout=CALL_TIMEOUT
        )


async def refused_code(call) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value.code()


async def join(manager: Manager, token: str):
    root = await fetch_root_ca(manager.addr, tokens.parse_join_token(token).ca_digest)
    return root, await request_node_certificate(
        manager.addr, root, token, availability=objects_pb2.NodeSpec.DRAIN, advertise_addr="10.0.0.9:2377"
    )


async def test_worker_joins_with_a_pinned_root_and_uses_its_certificate(manager):
    root, issued = await join(manager, manager.swarm.worker_token)
    assert root == manager.swarm.root_cert
    assert manager.issue_requests == [(issued.node_id, objects_pb2.WORKER, objects_pb2.NodeSpec.DRAIN, "10.0.0.9:2377")]
    identity = certs.verify_chain(issued.cert_pem, root)
    assert (identity.node_id, identity.role, identity.cluster_id) == (
        issued.node_id, objects_pb2.WORKER, manager.swarm.cluster_id,
    )
    node_credentials = channel_credentials(issued.key_pem, issued.cert_pem, root)
    assert (await heartbeat(manager.addr, node_credentials)).period == 5_000_000_000
    assert manager.echo.calls == [issued.node_id]  # the servicer saw who called, from the certificate
    # The streaming wrapper also publishes the caller.
    async with grpc.aio.secure_channel(manager.addr, node_credentials, CHANNEL_OPTIONS) as channel:
        stream = dispatcher_pb2_grpc.DispatcherStub(channel).Session(dispatcher_pb2.SessionRequest(), timeout=CALL_TIMEOUT)
        assert [m.node.id async for m in stream] == [issued.node_id] * 2


async def test_secure_channel_presents_the_node_credentials(manager):
    root, issued = await join(manager, manager.swarm.worker_token)
    credentials = NodeCredentials(key_pem=issued.key_pem, cert_pem=issued.cert_pem, root_cert_pem=root)
    async with secure_channel(manager.addr, credentials) as channel:
        await dispatcher_pb2_grpc.DispatcherStub(channel).Heartbeat(dispatcher_pb2.HeartbeatRequest(), timeout=CALL_TIMEOUT)
    assert manager.echo.calls == [issued.node_id]


async def test_a_worker_certificate_cannot_call_manager_methods(manager, caplog):
    root, issued = await join(manager, manager.swarm.worker_token)
    with caplog.at_level(logging.WARNING, logger="swarmpy.ca.authz"):
        code = await refused_code(list_nodes(manager.addr, channel_credentials(issued.key_pem, issued.cert_pem, root)))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert manager.echo.calls == []
    (line,) = [r.getMessage() for r in caplog.records]
    assert "/swarmpy.api.Control/ListNodes" in line and "127.0.0.1" in line and f"node {issued.node_id} is a worker" in line


async def test_manager_token_gives_a_manager_certificate(manager):
    root, issued = await join(manager, manager.swarm.manager_token)
    assert certs.parse_node_certificate(issued.cert_pem).role == objects_pb2.MANAGER
    response = await list_nodes(manager.addr, channel_credentials(issued.key_pem, issued.cert_pem, root))
    assert [(n.id, n.role) for n in response.nodes] == [(issued.node_id, objects_pb2.MANAGER)]


async def test_rotated_token_is_refused_and_nothing_is_created(manager):
    old = manager.swarm.worker_token
    manager.swarm.cluster.root_ca.join_tokens.worker = tokens.rotate_join_token(old)
    with pytest.raises(JoinRefused, match="invalid join token"):
        await join(manager, old)
    assert manager.issued == []


async def test_malformed_token_is_invalid_argument(manager):
    with pytest.raises(JoinRefused, match=r"malformed join token: .*secret has 24 characters.*INVALID_ARGUMENT"):
        await request_node_certificate(manager.addr, manager.swarm.root_cert, manager.swarm.worker_token[:-1])
    assert manager.issued == []


async def test_unusable_csr_is_invalid_argument_and_creates_nothing(manager):
    async with grpc.aio.secure_channel(
        manager.addr, bootstrap_channel_credentials(manager.swarm.root_cert), CHANNEL_OPTIONS
    ) as channel:
        request = ca_pb2.IssueNodeCertificateRequest(csr=b"not a csr", token=manager.swarm.worker_token)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await ca_pb2_grpc.CAStub(channel).IssueNodeCertificate(request, timeout=CALL_TIMEOUT)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "CSR is not a PEM" in info.value.details()
    assert manager.issued == []


async def test_token_of_another_swarm_is_refused(manager):
    other = new_swarm()
    # The joiner checks first: the manager's root is not the one the token pins.
    with pytest.raises(RootCAMismatch):
        await fetch_root_ca(manager.addr, tokens.parse_join_token(other.worker_token).ca_digest)
    # A joiner that skipped the check is refused by the manager anyway.
    with pytest.raises(JoinRefused, match="join token is for a different swarm"):
        await request_node_certificate(manager.addr, manager.swarm.root_cert, other.worker_token)
    assert manager.issued == []


async def test_tampered_digest_is_refused_at_fetch(manager):
    digest = tokens.parse_join_token(manager.swarm.worker_token).ca_digest
    tampered = ("1" if digest[0] != "1" else "2") + digest[1:]
    with pytest.raises(RootCAMismatch, match="does not match the join token.*intercepting"):
        await fetch_root_ca(manager.addr, tampered)


async def test_joiner_gets_the_root_over_grpc_once_pinned(manager):
    root = await fetch_root_ca(manager.addr, manager.swarm.cluster.root_ca.ca_cert_hash)
    async with grpc.aio.secure_channel(manager.addr, bootstrap_channel_credentials(root), CHANNEL_OPTIONS) as channel:
        response = await ca_pb2_grpc.CAStub(channel).GetRootCACertificate(
            ca_pb2.GetRootCACertificateRequest(), timeout=CALL_TIMEOUT
        )
    assert response.certificate == manager.swarm.root_cert


async def test_client_without_a_certificate_cannot_connect(manager):
    anonymous = grpc.ssl_channel_credentials(root_certificates=manager.swarm.root_cert)
    assert await refused_code(heartbeat(manager.addr, anonymous)) == grpc.StatusCode.UNAVAILABLE
    assert manager.echo.calls == []


async def test_expired_certificate_is_refused(manager):
    key, cert = manager.swarm.expired_credentials(objects_pb2.MANAGER)
    # The handshake already rejects it; authz would too (test_authz).
    assert await refused_code(list_nodes(manager.addr, channel_credentials(key, cert, manager.swarm.root_cert))) == (
        grpc.StatusCode.UNAVAILABLE
    )
    assert manager.echo.calls == []


async def test_certificate_of_another_swarm_is_refused(manager):
    other = new_swarm()
    key, cert = other.node_credentials(objects_pb2.MANAGER)
    # Dialing with our trust root (the manager is verified) but presenting the other swarm's identity.
    credentials = channel_credentials(key, cert, manager.swarm.root_cert)
    assert await refused_code(list_nodes(manager.addr, credentials)) == grpc.StatusCode.UNAVAILABLE
    assert manager.echo.calls == []


async def test_bootstrap_certificate_cannot_call_node_or_manager_methods(manager):
    credentials = bootstrap_channel_credentials(manager.swarm.root_cert)
    assert await refused_code(list_nodes(manager.addr, credentials)) == grpc.StatusCode.UNAUTHENTICATED
    assert await refused_code(heartbeat(manager.addr, credentials)) == grpc.StatusCode.UNAUTHENTICATED
    assert manager.echo.calls == []


async def test_manager_certificate_forged_with_the_public_bootstrap_ca_passes_tls_but_nothing_else(manager):
    forged_key_pem, forged_cert_pem = forged_with_bootstrap_ca("evil", "swarm-manager", manager.swarm.cluster_id)
    credentials = channel_credentials(forged_key_pem, forged_cert_pem, manager.swarm.root_cert)
    assert await refused_code(list_nodes(manager.addr, credentials)) == grpc.StatusCode.UNAUTHENTICATED
    assert manager.echo.calls == []


async def test_node_renews_for_its_own_identity_and_joiners_cannot_renew(manager):
    root, issued = await join(manager, manager.swarm.worker_token)
    key_pem, cert_pem = await renew_node_certificate(manager.addr, issued.key_pem, issued.cert_pem, root)
    assert key_pem != issued.key_pem and cert_pem != issued.cert_pem
    renewed = certs.verify_chain(cert_pem, root)
    assert (renewed.node_id, renewed.role) == (issued.node_id, objects_pb2.WORKER)
    async with grpc.aio.secure_channel(manager.addr, bootstrap_channel_credentials(root), CHANNEL_OPTIONS) as channel:
        _, csr = certs.make_node_key_and_csr()
        code = await refused_code(
            ca_pb2_grpc.CAStub(channel).RenewNodeCertificate(ca_pb2.RenewNodeCertificateRequest(csr=csr), timeout=CALL_TIMEOUT)
        )
    assert code == grpc.StatusCode.UNAUTHENTICATED


async def test_unreachable_manager_is_reported_as_such():
    with pytest.raises(ManagerUnreachable, match="cannot connect to manager 127.0.0.1:1"):
        await fetch_root_ca("127.0.0.1:1", "0" * 50, timeout=2)


def test_only_a_manager_certificate_can_serve_the_swarm_port():
    swarm = new_swarm()
    key, cert = swarm.node_credentials(objects_pb2.WORKER, "w9")
    with pytest.raises(MalformedCertificate, match="node w9 has a worker certificate"):
        server_credentials(key, cert, swarm.root_cert)


async def test_streaming_requests_are_guarded_and_see_the_caller(manager):
    manager_key, manager_cert = manager.swarm.node_credentials(objects_pb2.MANAGER, "manager-2")
    worker_key, worker_cert = manager.swarm.node_credentials(objects_pb2.WORKER, "worker-2")

    async def requests():
        for i in range(3):
            yield str(i).encode()

    as_manager = channel_credentials(manager_key, manager_cert, manager.swarm.root_cert)
    as_worker = channel_credentials(worker_key, worker_cert, manager.swarm.root_cert)
    async with grpc.aio.secure_channel(manager.addr, as_manager, CHANNEL_OPTIONS) as channel:
        echo = channel.stream_stream("/swarmpy.api.Raft/Echo")
        assert [r async for r in echo(requests(), timeout=CALL_TIMEOUT)] == [b"0:manager-2", b"1:manager-2", b"2:manager-2"]
    async with grpc.aio.secure_channel(manager.addr, as_worker, CHANNEL_OPTIONS) as channel:
        # No requests are written: the server refuses before reading, and a client still writing at
        # that moment would see its own failed write (INTERNAL) instead of the server's status.
        refused = channel.stream_stream("/swarmpy.api.Raft/Echo")(timeout=CALL_TIMEOUT)
        assert await refused.code() == grpc.StatusCode.PERMISSION_DENIED
        publish = dispatcher_pb2_grpc.DispatcherStub(channel).PublishLogs
        messages = (dispatcher_pb2.PublishLogsMessage(subscription_id="s") for _ in range(2))
        await publish(messages, timeout=CALL_TIMEOUT)
    assert manager.echo.calls == ["worker-2", "worker-2"]


async def test_reloadable_server_credentials_serve_the_renewed_certificate_to_new_connections():
    swarm = new_swarm()
    first_key, first_cert = swarm.node_credentials(objects_pb2.MANAGER, "manager-old")
    reloadable = ReloadableServerCredentials(first_key, first_cert, swarm.root_cert)
    server = grpc.aio.server(interceptors=[AuthorizationInterceptor(swarm.cluster_id, lambda: swarm.root_cert)])
    ca_pb2_grpc.add_CAServicer_to_server(CAServicer(None, lambda: swarm.cluster), server)
    port = server.add_secure_port("127.0.0.1:0", reloadable.credentials)
    await server.start()
    try:
        addr = f"127.0.0.1:{port}"

        async def served_node_id() -> str:
            chain = await peer_certificate_chain(addr, CALL_TIMEOUT)
            return certs.identity_of(chain[0]).node_id

        assert await served_node_id() == "manager-old"
        reloadable.update(*swarm.node_credentials(objects_pb2.MANAGER, "manager-new"), swarm.root_cert)
        assert await served_node_id() == "manager-new"
        assert await served_node_id() == "manager-new"
        # And grpc clients still verify it against the root.
        root = await fetch_root_ca(addr, swarm.cluster.root_ca.ca_cert_hash)
        assert root == swarm.root_cert
    finally:
        await server.stop(grace=None)
