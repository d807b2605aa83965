"""The Control gRPC service (protos/swarmpy/api/control.proto) on top of the replicated store.

Theory of operation
-------------------
The control API is the only place where users change the cluster's desired state, and it changes it
only by writing the store; it never calls the orchestrators, scheduler or dispatcher, which notice the
writes through their store watches. Every RPC follows the same steps:

1. `leader_gate(rpc_name)` is awaited first. The manager wiring supplies it: it raises NotLeader when
   this manager cannot serve (and is where forwarding to the leader will go). Without one, every call
   is served from the local store.
2. The request is validated (validation.py) before anything is read for writing, so bad input never
   reaches Raft: an INVALID_ARGUMENT leaves the store exactly as it was.
3. Reads resolve `ref` by full ID, then name, then unique ID prefix (`ReadView.resolve`); writes run
   inside `store.update(fn)`, where `fn` re-resolves and checks the state it will change (version the
   caller read, last manager, unique name) so that the check and the write see the same state. The
   store checks versions again at apply time, on every manager alike.
4. Any error becomes a gRPC status in one place (`errors.status_for`, applied by the `_unary` and
   `_server_streaming` wrappers). Errors that are nobody's fault but ours are logged and sent as
   INTERNAL.

Versions: an Update* request carries the version the caller read; if the object has changed since,
the call fails with ABORTED ("update out of sequence") and the caller must read again. A service's
`spec_version` counts its specs: 1 at creation, and each update takes one more than the largest of the
current and previous spec versions, so a number is never reused after a rollback and tasks made from
an older spec can never look up to date.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar

import grpc

from swarmpy.api import control_pb2, control_pb2_grpc, dispatcher_pb2, objects_pb2
from swarmpy import credential_spec
from swarmpy.autolock import new_unlock_key
from swarmpy.ca.errors import MalformedJoinToken
from swarmpy.ca.tokens import generate_join_token, rotate_join_token
from swarmpy.identity import new_id
from swarmpy.manager.store import Conflict, MemoryStore, NameConflict, NotFound, ReadView, Transaction, retry_conflicts
from swarmpy.manager.store.memory import clone, now_ns

from . import queries
from .defaults import fill_cluster_spec_defaults, service_with_defaults
from .errors import (
    NOT_APPLIED,
    FailedPrecondition,
    InvalidArgument,
    ObjectNotFound,
    Unavailable,
    refused_before_proposing,
    status_for,
)
from .names import random_service_name
from .networks import NetworkRPCs, resolve_attachments, validate_attachments
from .secrets import CONFIG, SECRET, SecretConfigRPCs, resolve_references, validate_references
from .ca_config import apply_ca_config, check_requested_root
from .validation import format_port, validate_cluster_spec, validate_node_spec, validate_service_spec

log = logging.getLogger(__name__)

LeaderGate = Callable[[str], Awaitable[None]]
"""Awaited with the RPC's name before it is served; raises (e.g. NotLeader) to refuse it."""


class LogBroker(Protocol):
    """What ServiceLogs needs from swarmpy.manager.logbroker."""

    def subscribe(
        self, selector: dispatcher_pb2.LogSelector, options: dispatcher_pb2.LogOptions
    ) -> AsyncIterator[dispatcher_pb2.LogMessage]: ...


Handler = TypeVar("Handler", bound=Callable[..., Any])

MANAGER = objects_pb2.MANAGER
WORKER = objects_pb2.WORKER


async def _abort(context: grpc.aio.ServicerContext, rpc: str, error: Exception) -> None:
    status = status_for(error)
    if status is None:
        log.exception("control API %s failed unexpectedly", rpc)
        status = (grpc.StatusCode.INTERNAL, f"internal error in {rpc} (a swarmpy bug): {error}")
    # A proposal refused at once left nothing in the log: a forwarding manager may send the call again.
    await context.abort(*status, trailing_metadata=NOT_APPLIED if refused_before_proposing(error) else ())


def _unary(method: Handler) -> Handler:
    """Admit the call through the leader gate and turn any failure into its gRPC status."""
    rpc = method.__name__

    @functools.wraps(method)
    async def serve(self: ControlServicer, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            await self._admit(rpc)
            return await method(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as error:  # every failure must reach the client as a status, never a hang
            await _abort(context, rpc, error)

    return serve  # type: ignore[return-value]


def _server_streaming(method: Handler) -> Handler:
    rpc = method.__name__

    @functools.wraps(method)
    async def serve(self: ControlServicer, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            await self._admit(rpc)
            async for message in method(self, request, context):
                yield message
        except grpc.aio.AbortError:
            raise
        except Exception as error:
            await _abort(context, rpc, error)

    return serve  # type: ignore[return-value]


def _require_version(version: objects_pb2.Version) -> int:
    # Raft indexes start at 1, so a zero version can only mean the caller did not send one.
    if version.index == 0:
        raise InvalidArgument("version", 0, "the version the object was read at is required")
    return version.index


def _check_version(kind: str, current: Any, read_version: int) -> None:
    if current.meta.version.index != read_version:
        raise Conflict(kind, current.id, read_version, current.meta.version.index)


def _without_ca_key(cluster: objects_pb2.Cluster) -> objects_pb2.Cluster:
    shown = clone(cluster)
    shown.root_ca.ClearField("ca_key")
    if shown.root_ca.HasField("root_rotation"):
        shown.root_ca.root_rotation.ClearField("ca_key")
    shown.ClearField("unlock_key")  # only GetUnlockKey shows it
    return shown


def _mode_name(spec: objects_pb2.ServiceSpec) -> str:
    return spec.WhichOneof("mode") or "unset"


def check_port_conflicts(view: ReadView, spec: objects_pb2.ServiceSpec, service_id: str = "") -> None:
    """Refuse published ports another service holds. Ingress ports occupy the port on every node, so
    they clash with any published port; two host-mode ports may share a number (on different nodes)."""
    ingress = objects_pb2.PortConfig.INGRESS
    wanted = {
        (port.published_port, port.protocol): port for port in spec.endpoint.ports if port.published_port
    }
    if not wanted:
        return
    for other in view.services():
        if other.id == service_id:
            continue
        for port in [*other.spec.endpoint.ports, *other.endpoint.ports]:
            mine = wanted.get((port.published_port, port.protocol))
            if mine is None or (mine.publish_mode != ingress and port.publish_mode != ingress):
                continue
            raise InvalidArgument(
                "endpoint.ports.published_port",
                mine.published_port,
                f"port {format_port(mine)} is already in use by service {other.spec.annotations.name} ({other.id})",
            )


class ControlServicer(SecretConfigRPCs, NetworkRPCs, control_pb2_grpc.ControlServicer):
    """The Control service of one manager. See the module docstring."""

    def __init__(
        self,
        store: MemoryStore,
        *,
        leader_gate: LeaderGate | None = None,
        log_broker: LogBroker | None = None,
        check_demotion: Callable[[objects_pb2.Node], str | None] | None = None,
        remove_manager: Callable[[objects_pb2.Node], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self._leader_gate = leader_gate
        self._log_broker = log_broker
        # Says why demoting a manager now would lose quorum (None: safe); wired to Raft by the manager.
        self._check_demotion = check_demotion
        # Takes a manager out of the Raft group for `node rm --force` (raises FailedPrecondition saying
        # why it cannot); wired to Raft by the manager. Without it, managers are never removed.
        self._remove_manager = remove_manager

    async def _admit(self, rpc: str) -> None:
        if self._leader_gate is not None:
            await self._leader_gate(rpc)

    # -- nodes -------------------------------------------------------------------------------------

    @_unary
    async def GetNode(self, request: control_pb2.GetNodeRequest, context: Any) -> control_pb2.GetNodeResponse:
        return control_pb2.GetNodeResponse(node=self._store.view().resolve("node", request.ref))

    @_unary
    async def ListNodes(self, request: control_pb2.ListNodesRequest, context: Any) -> control_pb2.ListNodesResponse:
        nodes = queries.filter_nodes(self._store.view().nodes(), request.filters)
        return control_pb2.ListNodesResponse(nodes=nodes)

    @_unary
    async def UpdateNode(
        self, request: control_pb2.UpdateNodeRequest, context: Any
    ) -> control_pb2.UpdateNodeResponse:
        read_version = _require_version(request.version)
        validate_node_spec(request.spec)

        def update(tx: Transaction) -> str:
            current = tx.resolve("node", request.ref)
            _check_version("node", current, read_version)
            if current.spec.desired_role == MANAGER and request.spec.desired_role == WORKER:
                managers = [node for node in tx.nodes() if node.spec.desired_role == MANAGER]
                if len(managers) <= 1:
                    raise FailedPrecondition(f"attempting to demote the last manager of the swarm ({request.ref})")
                refusal = self._check_demotion(current) if self._check_demotion is not None else None
                if refusal:
                    raise FailedPrecondition(refusal)
            node = clone(current)
            node.spec.CopyFrom(request.spec)
            tx.update("node", node)
            return node.id

        node_id = await self._store.update(update)
        return control_pb2.UpdateNodeResponse(node=self._read("node", node_id))

    @_unary
    async def RemoveNode(
        self, request: control_pb2.RemoveNodeRequest, context: Any
    ) -> control_pb2.RemoveNodeResponse:
        def is_manager(node: objects_pb2.Node) -> bool:
            return node.spec.desired_role == MANAGER or node.role == MANAGER

        def refuse_manager() -> None:
            raise FailedPrecondition(
                f"node {request.ref} is a cluster manager and is a member of the raft cluster. It must be"
                " demoted to worker before removal"
            )

        target = self._store.view().resolve("node", request.ref)
        if is_manager(target):
            # docker's rule, unless forced: then (as `swarm leave --force` would) the manager's Raft
            # membership goes first, refused if the rest could not keep a quorum.
            if not request.force or self._remove_manager is None:
                refuse_manager()
            await self._remove_manager(target)

        def remove(tx: Transaction) -> None:
            node = tx.resolve("node", request.ref)
            if is_manager(node) and not request.force:
                refuse_manager()
            if not request.force and node.status.state != objects_pb2.NodeStatus.DOWN:
                raise FailedPrecondition(f"node {request.ref} is not down and can't be removed")
            tx.delete("node", node.id)

        await retry_conflicts(lambda: self._store.update(remove), what=f"removing node {request.ref}")
        return control_pb2.RemoveNodeResponse()

    # -- services ----------------------------------------------------------------------------------

    @_unary
    async def CreateService(
        self, request: control_pb2.CreateServiceRequest, context: Any
    ) -> control_pb2.CreateServiceResponse:
        validate_service_spec(request.spec)
        validate_references(request.spec.task.container)
        validate_attachments(request.spec)

        def create(tx: Transaction) -> str:
            service = objects_pb2.Service(id=new_id())
            service.spec.CopyFrom(request.spec)
            resolve_references(tx, service.spec.task.container)
            resolve_attachments(tx, service.spec)
            name = service.spec.annotations.name
            if not name:
                service.spec.annotations.name = random_service_name(lambda n: tx.service_by_name(n) is not None)
            elif tx.service_by_name(name) is not None:
                raise NameConflict("service", name)
            check_port_conflicts(tx, service.spec)
            service.spec_version.index = 1
            tx.create("service", service)
            return service.id

        service_id = await self._store.update(create)
        log.info("service %s created", service_id)
        return control_pb2.CreateServiceResponse(service=self._read("service", service_id),
                                                 warnings=credential_spec.warnings(request.spec))

    @_unary
    async def GetService(
        self, request: control_pb2.GetServiceRequest, context: Any
    ) -> control_pb2.GetServiceResponse:
        service = self._store.view().resolve("service", request.ref)
        if request.insert_defaults:
            service = service_with_defaults(service)
        return control_pb2.GetServiceResponse(service=service)

    @_unary
    async def ListServices(
        self, request: control_pb2.ListServicesRequest, context: Any
    ) -> control_pb2.ListServicesResponse:
        view = self._store.view()
        services = queries.filter_services(view.services(), request.filters)
        nodes = view.nodes()
        statuses = [queries.service_status(s, view.tasks_by_service(s.id), nodes) for s in services]
        return control_pb2.ListServicesResponse(services=services, statuses=statuses)

    @_unary
    async def UpdateService(
        self, request: control_pb2.UpdateServiceRequest, context: Any
    ) -> control_pb2.UpdateServiceResponse:
        read_version = _require_version(request.version)
        rollback = request.rollback == control_pb2.UpdateServiceRequest.PREVIOUS
        if not rollback:
            validate_service_spec(request.spec)
            validate_references(request.spec.task.container)
            validate_attachments(request.spec)

        def update(tx: Transaction) -> str:
            current = tx.resolve("service", request.ref)
            _check_version("service", current, read_version)
            service = clone(current)
            if rollback:
                _roll_back(service, request.ref)
            else:
                _apply_new_spec(tx, service, request.spec)
            tx.update("service", service)
            return service.id

        service_id = await self._store.update(update)
        log.info("service %s %s", service_id, "rolled back" if rollback else "updated")
        service = self._read("service", service_id)
        return control_pb2.UpdateServiceResponse(service=service, warnings=credential_spec.warnings(service.spec))

    @_unary
    async def RemoveService(
        self, request: control_pb2.RemoveServiceRequest, context: Any
    ) -> control_pb2.RemoveServiceResponse:
        def remove(tx: Transaction) -> str:
            service = tx.resolve("service", request.ref)
            tx.delete("service", service.id)
            return service.id

        service_id = await retry_conflicts(lambda: self._store.update(remove), what=f"removing service {request.ref}")
        log.info("service %s removed", service_id)
        return control_pb2.RemoveServiceResponse()

    @_server_streaming
    async def ServiceLogs(
        self, request: control_pb2.ServiceLogsRequest, context: Any
    ) -> AsyncIterator[control_pb2.ServiceLogsMessage]:
        if self._log_broker is None:
            raise Unavailable("logs are not available: this manager runs no log broker")
        selector = self._log_selector(request.ref)
        messages = self._log_broker.subscribe(selector, request.options)
        try:
            async for message in messages:
                yield control_pb2.ServiceLogsMessage(messages=[message])
        finally:
            # The client may hang up mid-stream: release the subscription at once, not at GC.
            close = getattr(messages, "aclose", None)
            if close is not None:
                await close()

    def _log_selector(self, ref: str) -> dispatcher_pb2.LogSelector:
        view = self._store.view()
        try:
            return dispatcher_pb2.LogSelector(service_ids=[view.resolve("service", ref).id])
        except NotFound:
            pass
        try:
            return dispatcher_pb2.LogSelector(task_ids=[view.resolve("task", ref).id])
        except NotFound:
            raise ObjectNotFound(f"no such service or task: {ref}") from None

    # -- tasks -------------------------------------------------------------------------------------

    @_unary
    async def GetTask(self, request: control_pb2.GetTaskRequest, context: Any) -> control_pb2.GetTaskResponse:
        return control_pb2.GetTaskResponse(task=self._store.view().resolve("task", request.ref))

    @_unary
    async def ListTasks(self, request: control_pb2.ListTasksRequest, context: Any) -> control_pb2.ListTasksResponse:
        view = self._store.view()
        filters = request.filters
        if filters.service_ids:
            candidates = [task for sid in set(filters.service_ids) for task in view.tasks_by_service(sid)]
        elif filters.node_ids:
            candidates = [task for nid in set(filters.node_ids) for task in view.tasks_by_node(nid)]
        else:
            candidates = view.tasks()
        services_by_id = {service.id: service for service in view.services()}
        return control_pb2.ListTasksResponse(tasks=queries.filter_tasks(candidates, filters, services_by_id))

    # -- cluster -----------------------------------------------------------------------------------

    @_unary
    async def GetCluster(
        self, request: control_pb2.GetClusterRequest, context: Any
    ) -> control_pb2.GetClusterResponse:
        view = self._store.view()
        cluster = view.resolve("cluster", request.ref) if request.ref else self._the_cluster(view)
        return control_pb2.GetClusterResponse(cluster=_without_ca_key(cluster))

    @_unary
    async def UpdateCluster(
        self, request: control_pb2.UpdateClusterRequest, context: Any
    ) -> control_pb2.UpdateClusterResponse:
        read_version = _require_version(request.version)
        validate_cluster_spec(fill_cluster_spec_defaults(request.spec))  # zero ticks are checked as the defaults
        requested_root = await asyncio.to_thread(check_requested_root, request.spec.ca_config)
        rotation = ""

        def update(tx: Transaction) -> str:
            current = self._the_cluster(tx)
            _check_version("cluster", current, read_version)
            cluster = clone(current)
            cluster.spec.CopyFrom(fill_cluster_spec_defaults(request.spec))
            if not request.spec.annotations.name:
                cluster.spec.annotations.name = current.spec.annotations.name or cluster.spec.annotations.name
            tokens = cluster.root_ca.join_tokens
            if request.rotate_worker_token:
                tokens.worker = _rotated(tokens.worker, cluster.root_ca.ca_cert)
            if request.rotate_manager_token:
                tokens.manager = _rotated(tokens.manager, cluster.root_ca.ca_cert)
            autolock = cluster.spec.encryption_config.auto_lock_managers
            if request.rotate_manager_unlock_key:
                if not autolock:
                    raise FailedPrecondition("cannot rotate because autolock is not turned on")
                cluster.unlock_key = new_unlock_key()
            elif autolock and not cluster.unlock_key:
                cluster.unlock_key = new_unlock_key()
            nonlocal rotation
            rotation = apply_ca_config(current, cluster, requested_root)
            tx.update("cluster", cluster)
            return cluster.id

        cluster_id = await self._store.update(update)
        if rotation:
            log.info("CA: %s", rotation)
        if request.rotate_worker_token or request.rotate_manager_token:
            log.info("join tokens rotated (worker: %s, manager: %s)", request.rotate_worker_token, request.rotate_manager_token)
        return control_pb2.UpdateClusterResponse(cluster=_without_ca_key(self._read("cluster", cluster_id)))

    # -- secrets and configs (secrets.py) -----------------------------------------------------------

    @_unary
    async def CreateSecret(self, request: control_pb2.CreateSecretRequest, context: Any) -> control_pb2.CreateSecretResponse:
        secret = await self._create(SECRET, request.spec)
        log.info("secret %s created", secret.id)
        return control_pb2.CreateSecretResponse(secret=secret)

    @_unary
    async def GetSecret(self, request: control_pb2.GetSecretRequest, context: Any) -> control_pb2.GetSecretResponse:
        return control_pb2.GetSecretResponse(secret=self._get(SECRET, request.ref))

    @_unary
    async def ListSecrets(self, request: control_pb2.ListSecretsRequest, context: Any) -> control_pb2.ListSecretsResponse:
        return control_pb2.ListSecretsResponse(secrets=self._list(SECRET, request.filters))

    @_unary
    async def RemoveSecret(self, request: control_pb2.RemoveSecretRequest, context: Any) -> control_pb2.RemoveSecretResponse:
        await self._remove(SECRET, request.ref)
        return control_pb2.RemoveSecretResponse()

    @_unary
    async def CreateConfig(self, request: control_pb2.CreateConfigRequest, context: Any) -> control_pb2.CreateConfigResponse:
        config = await self._create(CONFIG, request.spec)
        log.info("config %s created", config.id)
        return control_pb2.CreateConfigResponse(config=config)

    @_unary
    async def GetConfig(self, request: control_pb2.GetConfigRequest, context: Any) -> control_pb2.GetConfigResponse:
        return control_pb2.GetConfigResponse(config=self._get(CONFIG, request.ref))

    @_unary
    async def ListConfigs(self, request: control_pb2.ListConfigsRequest, context: Any) -> control_pb2.ListConfigsResponse:
        return control_pb2.ListConfigsResponse(configs=self._list(CONFIG, request.filters))

    @_unary
    async def RemoveConfig(self, request: control_pb2.RemoveConfigRequest, context: Any) -> control_pb2.RemoveConfigResponse:
        await self._remove(CONFIG, request.ref)
        return control_pb2.RemoveConfigResponse()

    @_unary
    async def GetUnlockKey(self, request: control_pb2.GetUnlockKeyRequest, context: Any) -> control_pb2.GetUnlockKeyResponse:
        cluster = self._the_cluster(self._store.view())
        key = cluster.unlock_key if cluster.spec.encryption_config.auto_lock_managers else ""
        return control_pb2.GetUnlockKeyResponse(unlock_key=key, version=cluster.meta.version)
    # -- networks (networks.py) ---------------------------------------------------------------------

    @_unary
    async def CreateNetwork(self, request: control_pb2.CreateNetworkRequest, context: Any) -> control_pb2.CreateNetworkResponse:
        network = await self._create_network(request.spec)
        log.info("network %s (%s) created", network.spec.annotations.name, network.id)
        return control_pb2.CreateNetworkResponse(network=network)

    @_unary
    async def GetNetwork(self, request: control_pb2.GetNetworkRequest, context: Any) -> control_pb2.GetNetworkResponse:
        return control_pb2.GetNetworkResponse(network=self._get_network(request.ref))

    @_unary
    async def ListNetworks(self, request: control_pb2.ListNetworksRequest, context: Any) -> control_pb2.ListNetworksResponse:
        return control_pb2.ListNetworksResponse(networks=self._list_networks(request.filters))

    @_unary
    async def RemoveNetwork(self, request: control_pb2.RemoveNetworkRequest, context: Any) -> control_pb2.RemoveNetworkResponse:
        network_id = await self._remove_network(request.ref)
        log.info("network %s removed", network_id)
        return control_pb2.RemoveNetworkResponse()

    @staticmethod
    def _the_cluster(view: ReadView) -> objects_pb2.Cluster:
        cluster = view.get_cluster()
        if cluster is None:
            raise ObjectNotFound("no such cluster: the swarm has not finished initialising")
        return cluster

    # -- helpers -----------------------------------------------------------------------------------

    def _read(self, kind: str, object_id: str) -> Any:
        """An object just written, as stored (with its new version), for the response."""
        obj = self._store.view().get(kind, object_id)
        if obj is None:  # removed by someone else between our write and this read
            raise NotFound(kind, object_id)
        return obj


def _roll_back(service: objects_pb2.Service, ref: str) -> None:
    """Swap spec and previous spec (a second rollback undoes the first, as in swarmkit)."""
    if not service.HasField("previous_spec"):
        raise FailedPrecondition(f"service {ref} does not have a previous spec")
    spec, spec_version = clone(service.spec), clone(service.spec_version)
    service.spec.CopyFrom(service.previous_spec)
    service.spec_version.CopyFrom(service.previous_spec_version)
    service.previous_spec.CopyFrom(spec)
    service.previous_spec_version.CopyFrom(spec_version)
    service.update_status.CopyFrom(
        objects_pb2.UpdateStatus(
            state=objects_pb2.UpdateStatus.ROLLBACK_STARTED, started_at=now_ns(), message="manually requested rollback"
        )
    )


def _apply_new_spec(tx: Transaction, service: objects_pb2.Service, requested: objects_pb2.ServiceSpec) -> None:
    spec = clone(requested)
    current_name = service.spec.annotations.name
    if not spec.annotations.name:
        spec.annotations.name = current_name
    elif spec.annotations.name != current_name:
        raise InvalidArgument(
            "annotations.name", spec.annotations.name, f"renaming services is not supported (the service is {current_name})"
        )
    if _mode_name(spec) != _mode_name(service.spec):
        raise InvalidArgument(
            "mode",
            _mode_name(spec),
            f"service mode change is not allowed (the service is {_mode_name(service.spec)}); remove the service"
            " and create it again",
        )
    check_port_conflicts(tx, spec, service.id)
    resolve_references(tx, spec.task.container)
    resolve_attachments(tx, spec)
    next_version = max(service.spec_version.index, service.previous_spec_version.index) + 1
    service.previous_spec.CopyFrom(service.spec)
    service.previous_spec_version.CopyFrom(service.spec_version)
    service.spec.CopyFrom(spec)
    service.spec_version.index = next_version
    # A new spec starts a new rollout; the updater writes its progress from scratch.
    service.ClearField("update_status")


def _rotated(token: str, ca_cert: bytes) -> str:
    if not token:
        return generate_join_token(ca_cert)
    try:
        return rotate_join_token(token)
    except MalformedJoinToken:
        # A damaged stored token must not block rotation, which is how an operator would repair it.
        return generate_join_token(ca_cert)
