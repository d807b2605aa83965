"""Health checks and host ports of tasks run as real containers: RUNNING only once healthy, an unhealthy
container fails its task with swarm's error, the image's own HEALTHCHECK counts unless the spec turns it
off, and the engine's bound host ports are reported in TaskStatus.port_status."""

from __future__ import annotations

import io
import time
import uuid

import pytest

from swarmpy.api import objects_pb2
from swarmpy.worker.worker import Worker
from tests.worker.conftest import assignments, make_task

MS = 1_000_000
UNHEALTHY_EXIT = "task: non-zero exit (137): dockerexec: unhealthy container"


def with_health(task: objects_pb2.Task, *test: str, interval_ms: int = 200, retries: int = 1,
                start_period_ms: int = 0) -> objects_pb2.Task:
    task.spec.container.healthcheck.CopyFrom(objects_pb2.HealthConfig(
        test=list(test), interval=interval_ms * MS, timeout=2000 * MS, retries=retries, start_period=start_period_ms * MS))
    return task


@pytest.fixture
def image_with_failing_healthcheck(docker, busybox_image):
    """An image whose own HEALTHCHECK always fails; removed afterwards."""
    tag = f"swarmpy-test/unhealthy-{uuid.uuid4().hex[:8]}:latest"
    dockerfile = f"FROM {busybox_image}\nHEALTHCHECK --interval=200ms --timeout=2s --retries=1 CMD exit 1\n"
    docker.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True, pull=False)
    yield tag
    docker.images.remove(tag, force=True)


async def test_a_task_is_running_only_once_its_container_is_healthy(executor, reports, node_id, docker, busybox_image, tmp_path):
    task = with_health(make_task(node_id, busybox_image, "sh", "-c", "sleep 2; touch /tmp/ok; exec sleep 1000"),
                       "CMD-SHELL", "test -f /tmp/ok", start_period_ms=20_000)  # failures before then do not count
    async with Worker(node_id, executor, reports, tmp_path) as worker:
        await worker.apply(assignments(task, complete=True))
        starting = await reports.wait_for(task.id, objects_pb2.STARTING, timeout=30)
        began = time.monotonic()
        running = await reports.wait_for(task.id, objects_pb2.RUNNING, timeout=30)
        assert time.monotonic() - began > 1.5, "RUNNING before the health check could pass"
        assert starting.message == "starting" and running.message == "started"
        container = docker.containers.get(running.container_status.container_id)
        assert container.attrs["State"]["Health"]["Status"] == "healthy"
        assert container.attrs["Config"]["Healthcheck"]["Test"] == ["CMD-SHELL", "test -f /tmp/ok"]
        assert container.attrs["Config"]["Healthcheck"]["Interval"] == 200 * MS


async def test_an_unhealthy_container_fails_its_task_and_never_runs(executor, reports, node_id, busybox_image, tmp_path):
    task = with_health(make_task(node_id, busybox_image, "sleep", "1000"), "CMD-SHELL", "exit 1")
    async with Worker(node_id, executor, reports, tmp_path) as worker:
        await worker.apply(assignments(task, complete=True))
        failed = await reports.wait_for(task.id, objects_pb2.FAILED, timeout=30)
    # sleep ignores SIGTERM as PID 1: stopped by its health check, it was killed after its 1 s grace.
    assert failed.err == UNHEALTHY_EXIT
    assert objects_pb2.RUNNING not in reports.states(task.id)


async def test_a_running_task_fails_when_its_container_turns_unhealthy(executor, reports, node_id, busybox_image, tmp_path):
    task = with_health(make_task(node_id, busybox_image, "sh", "-c", "touch /tmp/ok; sleep 2; rm /tmp/ok; exec sleep 1000"),
                       "CMD-SHELL", "test -f /tmp/ok")
    async with Worker(node_id, executor, reports, tmp_path) as worker:
        await worker.apply(assignments(task, complete=True))
        await reports.wait_for(task.id, objects_pb2.RUNNING, timeout=30)
        failed = await reports.wait_for(task.id, objects_pb2.FAILED, timeout=30)
    assert failed.err == UNHEALTHY_EXIT
    assert failed.message == "finished"


async def test_the_images_healthcheck_counts_unless_the_spec_turns_it_off(
        executor, reports, node_id, image_with_failing_healthcheck, tmp_path):
    inherited = make_task(node_id, image_with_failing_healthcheck, "sleep", "1000", slot=1)
    disabled = with_health(make_task(node_id, image_with_failing_healthcheck, "sleep", "1000", slot=2), "NONE")
    async with Worker(node_id, executor, reports, tmp_path) as worker:
        await worker.apply(assignments(inherited, disabled, complete=True))
        failed = await reports.wait_for(inherited.id, objects_pb2.FAILED, timeout=30)
        assert failed.err == UNHEALTHY_EXIT
        await reports.wait_for(disabled.id, objects_pb2.RUNNING, timeout=30)
        assert reports.states(disabled.id)[-1] == objects_pb2.RUNNING  # still, after the other failed


async def test_host_ports_are_reported_with_the_engines_pick_for_published_0(executor, reports, node_id, docker, busybox_image, tmp_path):
    task = make_task(node_id, busybox_image, "sleep", "1000")
    host = objects_pb2.PortConfig.HOST
    task.endpoint.ports.add(target_port=80, published_port=0, publish_mode=host)
    task.endpoint.ports.add(target_port=53, published_port=0, protocol=objects_pb2.PortConfig.UDP, publish_mode=host)
    async with Worker(node_id, executor, reports, tmp_path) as worker:
        await worker.apply(assignments(task, complete=True))
        running = await reports.wait_for(task.id, objects_pb2.RUNNING, timeout=30)
    bound = docker.containers.get(running.container_status.container_id).attrs["NetworkSettings"]["Ports"]
    reported = {(p.target_port, p.protocol): p for p in running.port_status.ports}
    assert len(running.port_status.ports) == 2
    tcp, udp = reported[(80, objects_pb2.PortConfig.TCP)], reported[(53, objects_pb2.PortConfig.UDP)]
    assert tcp.published_port == int(bound["80/tcp"][0]["HostPort"]) > 0
    assert udp.published_port == int(bound["53/udp"][0]["HostPort"]) > 0
    assert tcp.publish_mode == udp.publish_mode == host
