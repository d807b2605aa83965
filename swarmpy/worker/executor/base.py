"""What a task runner needs from an executor: a Controller per task, and errors that say what went wrong.

A Controller is bound to one task and does container work only; it never decides state (that is
swarmpy.worker.task_states) and never reports (that is the task runner). Every method is idempotent, so a
runner restarted half-way through a step can simply do it again: preparing an already created container
adopts it, stopping a stopped one does nothing, removing a missing one does nothing.
"""

from __future__ import annotations

from typing import Protocol

from swarmpy.api import objects_pb2
from swarmpy.worker.task_states import ContainerFacts

DEFAULT_STOP_GRACE_NS = 10_000_000_000


def stop_grace_seconds(task: objects_pb2.Task) -> float:
    """The task's stop grace period (ContainerSpec.stop_grace_period; unset means swarm's 10 s)."""
    container = task.spec.container
    grace_ns = container.stop_grace_period if container.HasField("stop_grace_period") else DEFAULT_STOP_GRACE_NS
    return max(grace_ns, 0) / 1e9


class Controller(Protocol):
    """Runs one task's container. Errors are ExecutorError subclasses; cancellation propagates."""

    @property
    def task_id(self) -> str: ...

    async def inspect(self) -> ContainerFacts:
        """What the engine says about this task's container now (ABSENT if there is none)."""

    async def prepare(self) -> None:
        """Create the container (adopting one this node already created for the task)."""

    async def start(self) -> None:
        """Start the container if it was never started (never restarts an exited one); if it has a health
        check, return only once it is healthy: an unhealthy one is stopped and ContainerExited raised."""

    async def until_healthy(self) -> None:
        """Return once the running container is healthy, or at once if it has no health check or no
        longer runs; an unhealthy one is stopped and ContainerExited raised (cause UNHEALTHY)."""

    async def wait(self) -> ContainerFacts:
        """Wait until the container stops; returns its facts, raises ContainerExited on a non-zero exit
        (or after stopping a container its health check found unhealthy)."""

    async def shutdown(self, grace: float | None = None) -> None:
        """Stop the container: its stop signal, then SIGKILL after `grace` s (default: the task's period)."""

    async def terminate(self) -> None:
        """Kill the container at once."""

    async def remove(self) -> None:
        """Remove the container and its anonymous volumes."""


class Executor(Protocol):
    """A node's container engine: makes Controllers and knows which containers this node owns."""

    node_id: str

    def controller(self, task: objects_pb2.Task) -> Controller: ...

    async def owned_containers(self) -> dict[str, ContainerFacts]:
        """This node's containers by task ID."""

    async def remove_container(self, container_id: str, task_id: str = "") -> None:
        """Remove one of this node's containers, running or not."""


class ExecutorError(Exception):
    """Base of the errors a controller raises on purpose; `task_id` names the task concerned."""

    def __init__(self, task_id: str, message: str) -> None:
        super().__init__(message)
        self.task_id = task_id


class ImageNotFound(ExecutorError):
    """The task's image is not on this node; images are never pulled, so the task is rejected."""

    def __init__(self, task_id: str, image: str, node_id: str) -> None:
        super().__init__(task_id, f"No such image: {image} (not found on node {node_id}; images are never pulled)")
        self.image = image
        self.node_id = node_id


class InvalidSpec(ExecutorError):
    """The task's spec cannot be turned into a container (the manager's or the user's fault)."""


UNHEALTHY = "dockerexec: unhealthy container"  # swarm's words for a container stopped by its health check


class ContainerExited(ExecutorError):
    """The container exited with a non-zero code (or was stopped for a `cause`, e.g. UNHEALTHY)."""

    def __init__(self, task_id: str, container_id: str, exit_code: int, cause: str = "") -> None:
        super().__init__(task_id, f"task: non-zero exit ({exit_code})" + (f": {cause}" if cause else ""))
        self.container_id = container_id
        self.exit_code = exit_code
        self.cause = cause


class ContainerVanished(ExecutorError):
    """The task's container was removed by someone other than swarmpy."""

    def __init__(self, task_id: str, container_id: str) -> None:
        super().__init__(task_id, f"container {container_id[:12]} of task {task_id} was removed outside swarmpy")
        self.container_id = container_id


class EngineError(ExecutorError):
    """The container engine refused or failed a request (its message is kept verbatim)."""
