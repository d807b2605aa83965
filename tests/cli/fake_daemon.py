"""A TEST FAKE of swarmpyd's local socket: in-memory Control and LocalNode services.

It is not a manager: no Raft, no scheduler, no validation beyond what the CLI tests need. It
records every request (`fake.requests`) so tests can assert exactly what the CLI sent, and moves
tasks one state forward on every ListTasks call (when `advance_tasks` is on) so converging output
can be watched without an orchestrator.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import threading
import time
from concurrent import futures

import grpc

from swarmpy.api import control_pb2, control_pb2_grpc, dispatcher_pb2, objects_pb2

TaskState = objects_pb2.TaskState
TASK_LIFECYCLE = [TaskState.NEW, TaskState.PENDING, TaskState.ASSIGNED, TaskState.ACCEPTED, TaskState.PREPARING,
                  TaskState.READY, TaskState.STARTING, TaskState.RUNNING]
SELF_NODE_ID = "selfnode0000000000000000a"
_counter = itertools.count(1)


def fake_id(prefix: str) -> str:
    """25 characters, like swarmkit's IDs, and predictable in tests."""
    return f"{prefix}{next(_counter):0{25 - len(prefix)}d}"


def make_node(node_id: str, hostname: str, *, leader=False, manager=False, state=objects_pb2.NodeStatus.READY,
              availability=objects_pb2.NodeSpec.ACTIVE, engine="0.1.0") -> objects_pb2.Node:
    node = objects_pb2.Node(
        id=node_id,
        meta=objects_pb2.Meta(version=objects_pb2.Version(index=1), created_at=1_700_000_000_000_000_000),
        spec=objects_pb2.NodeSpec(availability=availability,
                                  desired_role=objects_pb2.MANAGER if manager or leader else objects_pb2.WORKER),
        description=objects_pb2.NodeDescription(
            hostname=hostname, platform=objects_pb2.Platform(architecture="x86_64", os="linux"),
            resources=objects_pb2.Resources(nano_cpus=2_000_000_000, memory_bytes=2 * 1024**3),
            engine=objects_pb2.EngineDescription(engine_version=engine)),
        status=objects_pb2.NodeStatus(state=state, addr="10.0.0.1"),
    )
    if manager or leader:
        node.manager_status.CopyFrom(objects_pb2.ManagerStatus(
            addr="10.0.0.1:2377", leader=leader, reachability=objects_pb2.ManagerStatus.REACHABLE))
        node.role = objects_pb2.MANAGER
    return node


def _abort_not_found(context, kind: str, ref: str):
    context.abort(grpc.StatusCode.NOT_FOUND, f"no such {kind}: {ref}")


def _resolve(objects: dict, ref: str, name_of):
    if ref in objects:
        return objects[ref]
    by_name = [o for o in objects.values() if name_of(o) == ref]
    if by_name:
        return by_name[0]
    by_prefix = [o for o in objects.values() if o.id.startswith(ref)]
    return by_prefix[0] if len(by_prefix) == 1 and ref else None


class FakeDaemon(control_pb2_grpc.ControlServicer, control_pb2_grpc.LocalNodeServicer):
    def __init__(self) -> None:
        self.requests: list[tuple[str, object]] = []
        self.lock = threading.Lock()
        self.nodes: dict[str, objects_pb2.Node] = {SELF_NODE_ID: make_node(SELF_NODE_ID, "node-1", leader=True)}
        self.services: dict[str, objects_pb2.Service] = {}
        self.tasks: dict[str, objects_pb2.Task] = {}
        self.logs: list[dispatcher_pb2.LogMessage] = []
        self.advance_tasks = False
        self.fail_image: str | None = None  # tasks of this image fail with "No such image"
        self.abort_updates = False
        self.cluster = objects_pb2.Cluster(
            id="cluster0000000000000000001", meta=objects_pb2.Meta(version=objects_pb2.Version(index=3)),
            root_ca=objects_pb2.RootCA(ca_cert=b"-----BEGIN CERTIFICATE-----\nFAKE\n-----END CERTIFICATE-----\n",
                                       join_tokens=objects_pb2.JoinTokens(worker="SWMTKN-1-aaa-worker", manager="SWMTKN-1-aaa-manager")))
        self.version = itertools.count(10)

    def _record(self, method: str, request) -> None:
        with self.lock:
            self.requests.append((method, request))

    def sent(self, method: str) -> list:
        return [request for name, request in self.requests if name == method]

    # ------------------------------------------------------------ LocalNode

    def Info(self, request, context):
        self._record("Info", request)
        return control_pb2.InfoResponse(state=control_pb2.InfoResponse.ACTIVE, node_id=SELF_NODE_ID,
                                        node_addr="10.0.0.1", control_available=True)

    def Init(self, request, context):
        self._record("Init", request)
        return control_pb2.InitResponse(node_id=SELF_NODE_ID)

    def Join(self, request, context):
        self._record("Join", request)
        return control_pb2.JoinResponse()

    def Leave(self, request, context):
        self._record("Leave", request)
        return control_pb2.LeaveResponse()

    # ------------------------------------------------------------ cluster and nodes

    def GetCluster(self, request, context):
        self._record("GetCluster", request)
        return control_pb2.GetClusterResponse(cluster=self.cluster)

    def UpdateCluster(self, request, context):
        self._record("UpdateCluster", request)
        if request.rotate_worker_token:
            self.cluster.root_ca.join_tokens.worker = "SWMTKN-1-aaa-rotatedworker"
        if request.rotate_manager_token:
            self.cluster.root_ca.join_tokens.manager = "SWMTKN-1-aaa-rotatedmanager"
        return control_pb2.UpdateClusterResponse(cluster=self.cluster)

    def GetNode(self, request, context):
        self._record("GetNode", request)
        node = _resolve(self.nodes, request.ref, lambda n: n.description.hostname)
        if node is None:
            _abort_not_found(context, "node", request.ref)
        return control_pb2.GetNodeResponse(node=node)

    def ListNodes(self, request, context):
        self._record("ListNodes", request)
        return control_pb2.ListNodesResponse(nodes=list(self.nodes.values()))

    def UpdateNode(self, request, context):
        self._record("UpdateNode", request)
        node = _resolve(self.nodes, request.ref, lambda n: n.description.hostname)
        if node is None:
            _abort_not_found(context, "node", request.ref)
        if request.version.index != node.meta.version.index:
            context.abort(grpc.StatusCode.ABORTED, "update out of sequence")
        node.spec.CopyFrom(request.spec)
        node.meta.version.index = next(self.version)
        return control_pb2.UpdateNodeResponse(node=node)

    def RemoveNode(self, request, context):
        self._record("RemoveNode", request)
        node = _resolve(self.nodes, request.ref, lambda n: n.description.hostname)
        if node is None:
            _abort_not_found(context, "node", request.ref)
        del self.nodes[node.id]
        return control_pb2.RemoveNodeResponse()

    # ------------------------------------------------------------ services and tasks

    def _find_service(self, ref, context) -> objects_pb2.Service:
        service = _resolve(self.services, ref, lambda s: s.spec.annotations.name)
        if service is None:
            _abort_not_found(context, "service", ref)
        return service

    def _make_tasks(self, service: objects_pb2.Service) -> None:
        replicas = service.spec.replicated.replicas if service.spec.WhichOneof("mode") == "replicated" else 0
        for slot in range(1, replicas + 1):
            task = objects_pb2.Task(
                id=fake_id("task"), service_id=service.id, slot=slot, node_id=SELF_NODE_ID,
                meta=objects_pb2.Meta(created_at=time.time_ns()), spec=service.spec.task,
                spec_version=service.spec_version, desired_state=TaskState.RUNNING,
                status=objects_pb2.TaskStatus(state=TaskState.NEW, timestamp=time.time_ns()))
            self.tasks[task.id] = task

    def CreateService(self, request, context):
        self._record("CreateService", request)
        name = request.spec.annotations.name or f"svc{len(self.services) + 1}"
        if any(s.spec.annotations.name == name for s in self.services.values()):
            context.abort(grpc.StatusCode.ALREADY_EXISTS, f"service {name} already exists")
        service = objects_pb2.Service(id=fake_id("svc"), spec=request.spec,
                                      meta=objects_pb2.Meta(version=objects_pb2.Version(index=next(self.version))),
                                      spec_version=objects_pb2.Version(index=1))
        service.spec.annotations.name = name
        self.services[service.id] = service
        self._make_tasks(service)
        return control_pb2.CreateServiceResponse(service=service)

    def GetService(self, request, context):
        self._record("GetService", request)
        return control_pb2.GetServiceResponse(service=self._find_service(request.ref, context))

    def ListServices(self, request, context):
        self._record("ListServices", request)
        services = [s for s in self.services.values()
                    if not request.filters.names or any(s.spec.annotations.name.startswith(n) for n in request.filters.names)]
        statuses = []
        for service in services:
            tasks = [t for t in self.tasks.values() if t.service_id == service.id and t.desired_state == TaskState.RUNNING]
            running = sum(1 for t in tasks if t.status.state == TaskState.RUNNING)
            desired = service.spec.replicated.replicas if service.spec.WhichOneof("mode") == "replicated" else len(tasks)
            statuses.append(control_pb2.ServiceStatus(service_id=service.id, running_tasks=running, desired_tasks=desired))
        return control_pb2.ListServicesResponse(services=services, statuses=statuses)

    def UpdateService(self, request, context):
        self._record("UpdateService", request)
        service = self._find_service(request.ref, context)
        if self.abort_updates or request.version.index != service.meta.version.index:
            context.abort(grpc.StatusCode.ABORTED, "update out of sequence")
        if request.rollback == control_pb2.UpdateServiceRequest.PREVIOUS:
            if not service.HasField("previous_spec"):
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"service {service.spec.annotations.name} does not have a previous spec")
            new_spec, previous = service.previous_spec, service.spec
        else:
            new_spec, previous = request.spec, service.spec
        saved_previous = objects_pb2.ServiceSpec()
        saved_previous.CopyFrom(previous)
        service.spec.CopyFrom(new_spec)
        service.previous_spec.CopyFrom(saved_previous)
        service.meta.version.index = next(self.version)
        service.spec_version.index += 1
        for task in list(self.tasks.values()):
            if task.service_id == service.id:
                task.desired_state = TaskState.SHUTDOWN
        self._make_tasks(service)
        return control_pb2.UpdateServiceResponse(service=service)

    def RemoveService(self, request, context):
        self._record("RemoveService", request)
        service = self._find_service(request.ref, context)
        del self.services[service.id]
        return control_pb2.RemoveServiceResponse()

    def GetTask(self, request, context):
        self._record("GetTask", request)
        task = _resolve(self.tasks, request.ref, lambda t: "")
        if task is None:
            _abort_not_found(context, "task", request.ref)
        return control_pb2.GetTaskResponse(task=task)

    def _advance(self, task: objects_pb2.Task) -> None:
        if task.desired_state != TaskState.RUNNING or task.status.state not in TASK_LIFECYCLE:
            return
        if self.fail_image and task.spec.container.image == self.fail_image and task.status.state == TaskState.PREPARING:
            task.status.state = TaskState.REJECTED
            task.status.err = f"No such image: {self.fail_image}"
            return
        position = TASK_LIFECYCLE.index(task.status.state)
        if position + 1 < len(TASK_LIFECYCLE):
            task.status.state = TASK_LIFECYCLE[position + 1]
            task.status.timestamp = time.time_ns()

    def ListTasks(self, request, context):
        self._record("ListTasks", request)
        filters = request.filters
        with self.lock:
            selected = []
            for task in self.tasks.values():
                if filters.service_ids and task.service_id not in filters.service_ids:
                    continue
                if filters.node_ids and task.node_id not in filters.node_ids:
                    continue
                if filters.desired_states and task.desired_state not in filters.desired_states:
                    continue
                if filters.up_to_date:
                    service = self.services.get(task.service_id)
                    if service is None or task.spec_version.index != service.spec_version.index:
                        continue
                if self.advance_tasks:
                    self._advance(task)
                selected.append(task)
        return control_pb2.ListTasksResponse(tasks=selected)

    def ServiceLogs(self, request, context):
        self._record("ServiceLogs", request)
        yield control_pb2.ServiceLogsMessage(messages=self.logs)


class RunningFakeDaemon:
    """The fake served on a fresh unix socket; `host` is what to pass to `swarmpy -H`."""

    def __init__(self) -> None:
        self.fake = FakeDaemon()
        self._directory = tempfile.mkdtemp(prefix="swarmpy-cli-test-")
        self.socket_path = os.path.join(self._directory, "swarmpy.sock")
        self.host = f"unix://{self.socket_path}"
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        control_pb2_grpc.add_ControlServicer_to_server(self.fake, self._server)
        control_pb2_grpc.add_LocalNodeServicer_to_server(self.fake, self._server)
        self._server.add_insecure_port(f"unix:{self.socket_path}")
        self._server.start()

    def stop(self) -> None:
        self._server.stop(grace=None)
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass
        os.rmdir(self._directory)
