"""Tasks run as real containers on the local engine, driven by a Worker."""

from __future__ import annotations

import asyncio
import contextlib
import time

from swarmpy.api import objects_pb2
from swarmpy.worker.executor.logs import STDERR, STDOUT
from swarmpy.worker.worker import Worker
from tests.worker.conftest import assignments, make_task

SLEEP = ("sleep", "1000")


async def test_sleep_task_runs_with_labels_then_shuts_down(executor, reports, node_id, docker, busybox_image, tmp_path):
    task = make_task(node_id, busybox_image, *SLEEP)
    async with Worker(node_id, executor, reports, tmp_path) as worker:
        await worker.apply(assignments(task, complete=True))
        running = await reports.wait_for(task.id, objects_pb2.RUNNING)
        assert reports.states(task.id) == [
            objects_pb2.ACCEPTED, objects_pb2.PREPARING, objects_pb2.READY, objects_pb2.STARTING, objects_pb2.RUNNING,
        ]
        assert [s.message for s in reports.statuses[task.id]] == ["accepted", "preparing", "prepared", "starting", "started"]
        container = docker.containers.get(running.container_status.container_id)
        assert container.status == "running"
        assert container.name == f"svc.1.{task.id}"
        assert running.container_status.pid == container.attrs["State"]["Pid"] > 0
        assert container.labels == {
            "com.docker.swarm.node.id": node_id,
            "com.docker.swarm.service.id": task.service_id,
            "com.docker.swarm.service.name": "svc",
            "com.docker.swarm.task.id": task.id,
            "com.docker.swarm.task.name": "svc.1",
            "com.docker.swarm.task.slot": "1",
            "swarmpy.node.id": node_id,
        }

        task.desired_state = objects_pb2.SHUTDOWN
        began = time.monotonic()
        await worker.apply(assignments(task))
        shutdown = await reports.wait_for(task.id, objects_pb2.SHUTDOWN)
        # sleep ignores SIGTERM as PID 1, so the 1 s grace period ran out and it was killed.
        assert 0.9 < time.monotonic() - began < 5
        assert shutdown.message == "shutdown"
        container.reload()
        assert container.status == "exited"
        assert reports.states(task.id)[-1] == objects_pb2.SHUTDOWN


async def test_non_zero_exit_fails_and_zero_completes(executor, reports, node_id, busybox_image, tmp_path):
    failing = make_task(node_id, busybox_image, "sh", "-c", "exit 3", slot=1)
    succeeding = make_task(node_id, busybox_image, "true", slot=2)
    async with Worker(node_id, executor, reports, tmp_path) as worker:
        await worker.apply(assignments(failing, succeeding, complete=True))
        failed = await reports.wait_for(failing.id, objects_pb2.FAILED)
        completed = await reports.wait_for(succeeding.id, objects_pb2.COMPLETE)
    assert failed.err == "task: non-zero exit (3)"
    assert failed.container_status.exit_code == 3
    assert reports.states(failing.id)[-2:] == [objects_pb2.RUNNING, objects_pb2.FAILED]
    assert completed.message == "finished" and completed.err == ""
    assert completed.container_status.exit_code == 0


async def test_missing_image_is_rejected_naming_the_image(executor, reports, node_id, tmp_path):
    task = make_task(node_id, "swarmpy-test/not-here:1.0")
    async with Worker(node_id, executor, reports, tmp_path) as worker:
        await worker.apply(assignments(task, complete=True))
        rejected = await reports.wait_for(task.id, objects_pb2.REJECTED)
    assert "No such image: swarmpy-test/not-here:1.0" in rejected.err
    assert f"not found on node {node_id}" in rejected.err
    assert objects_pb2.STARTING not in reports.states(task.id)


async def test_container_killed_outside_fails_at_once(executor, reports, node_id, docker, busybox_image, tmp_path):
    task = make_task(node_id, busybox_image, *SLEEP)
    async with Worker(node_id, executor, reports, tmp_path) as worker:
        await worker.apply(assignments(task, complete=True))
        running = await reports.wait_for(task.id, objects_pb2.RUNNING)
        killed_at = time.monotonic()
        await asyncio.to_thread(docker.api.kill, running.container_status.container_id)
        failed = await reports.wait_for(task.id, objects_pb2.FAILED, timeout=1.0)
        assert time.monotonic() - killed_at < 1.0
    assert failed.err == "task: non-zero exit (137)"


async def test_restarted_worker_adopts_the_running_container(docker, node_id, reports, busybox_image, tmp_path):
    from swarmpy.worker.executor.docker import DockerExecutor

    task = make_task(node_id, busybox_image, *SLEEP)
    async with DockerExecutor(node_id, docker) as executor, Worker(node_id, executor, reports, tmp_path) as worker:
        await worker.apply(assignments(task, complete=True))
        running = await reports.wait_for(task.id, objects_pb2.RUNNING)
    container_id = running.container_status.container_id
    started_at = docker.api.inspect_container(container_id)["State"]["StartedAt"]

    again = type(reports)()
    async with DockerExecutor(node_id, docker) as executor, Worker(node_id, executor, again, tmp_path) as worker:
        assert worker.status(task.id).state == objects_pb2.RUNNING
        await asyncio.sleep(0.3)
        assert again.states(task.id) == []  # nothing to report: it was running and still is
        inspected = docker.api.inspect_container(container_id)
        assert inspected["State"]["Running"] and inspected["State"]["StartedAt"] == started_at
        assert len(docker.containers.list(all=True, filters={"label": f"swarmpy.node.id={node_id}"})) == 1

        task.desired_state = objects_pb2.SHUTDOWN  # the adopted task is really driven: it stops on request
        await worker.apply(assignments(task))
        await again.wait_for(task.id, objects_pb2.SHUTDOWN)


async def test_removed_tasks_lose_their_containers(executor, reports, node_id, docker, busybox_image, tmp_path):
    kept = make_task(node_id, busybox_image, *SLEEP, slot=1)
    dropped = make_task(node_id, busybox_image, *SLEEP, slot=2)
    removed = make_task(node_id, busybox_image, *SLEEP, slot=3)
    async with Worker(node_id, executor, reports, tmp_path) as worker:
        await worker.apply(assignments(kept, dropped, removed, complete=True))
        for task in (kept, dropped, removed):
            await reports.wait_for(task.id, objects_pb2.RUNNING)
        await worker.apply(assignments(remove=[removed]))
        await worker.apply(assignments(kept, complete=True))  # `dropped` is no longer assigned
        for task in (dropped, removed):
            await reports.wait_for(task.id, objects_pb2.SHUTDOWN)
        deadline = time.monotonic() + 5
        while set(worker.tasks()) != {kept.id} and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert set(worker.tasks()) == {kept.id}
    left = docker.containers.list(all=True, filters={"label": f"swarmpy.node.id={node_id}"})
    assert [c.labels["com.docker.swarm.task.id"] for c in left] == [kept.id]


async def test_worker_start_removes_containers_of_unknown_tasks(executor, reports, node_id, docker, busybox_image, tmp_path):
    stray = make_task(node_id, busybox_image, *SLEEP)
    controller = executor.controller(stray)
    await controller.prepare()
    async with Worker(node_id, executor, reports, tmp_path):
        pass
    assert docker.containers.list(all=True, filters={"label": f"swarmpy.node.id={node_id}"}) == []


async def test_spec_is_mapped_onto_the_container(executor, reports, node_id, docker, busybox_image, tmp_path):
    task = make_task(node_id, busybox_image, "sh", "-c", "sleep 1000")
    spec = task.spec.container
    spec.args.extend(["ignored-arg"])
    spec.env.extend(["GREETING=hello", "EMPTY="])
    spec.labels["team"] = "infra"
    spec.labels["swarmpy.node.id"] = "impostor"  # a user label cannot take over the ownership label
    spec.dir = "/tmp"
    spec.user = "nobody"
    spec.hostname = "taskhost"
    spec.stop_signal = "SIGINT"
    spec.mounts.add(type=objects_pb2.Mount.TMPFS, target="/scratch")
    spec.mounts.add(type=objects_pb2.Mount.BIND, source=str(tmp_path), target="/data", read_only=True)
    task.spec.resources.limits.nano_cpus = 500_000_000
    task.spec.resources.limits.memory_bytes = 64 * 1024 * 1024
    task.spec.resources.reservations.memory_bytes = 32 * 1024 * 1024
    task.spec.resources.reservations.nano_cpus = 250_000_000
    task.endpoint.spec.ports.add(target_port=80, published_port=0, publish_mode=objects_pb2.PortConfig.HOST)
    async with Worker(node_id, executor, reports, tmp_path / "data") as worker:
        await worker.apply(assignments(task, complete=True))
        running = await reports.wait_for(task.id, objects_pb2.RUNNING)
        attrs = docker.api.inspect_container(running.container_status.container_id)
    config, host = attrs["Config"], attrs["HostConfig"]
    assert config["Entrypoint"] == ["sh", "-c", "sleep 1000"] and config["Cmd"] == ["ignored-arg"]
    assert {"GREETING=hello", "EMPTY="} <= set(config["Env"])
    assert config["Labels"]["team"] == "infra" and config["Labels"]["swarmpy.node.id"] == node_id
    assert (config["WorkingDir"], config["User"], config["Hostname"], config["StopSignal"]) == (
        "/tmp", "nobody", "taskhost", "SIGINT",
    )
    assert host["NanoCpus"] == 500_000_000
    assert host["Memory"] == 64 * 1024 * 1024 and host["MemoryReservation"] == 32 * 1024 * 1024
    assert host["CpuShares"] == 0  # a CPU reservation is the scheduler's business only
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": ""}]}
    mounts = {m["Target"]: m for m in host["Mounts"]}
    assert mounts["/scratch"]["Type"] == "tmpfs"
    assert mounts["/data"]["Type"] == "bind" and mounts["/data"]["ReadOnly"] is True


async def test_container_logs_keep_stdout_and_stderr_apart(executor, node_id, busybox_image):
    task = make_task(node_id, busybox_image, "sh", "-c", "echo one; echo two >&2; echo three")
    controller = executor.controller(task)
    await controller.prepare()
    await controller.start()
    await controller.wait()
    async with contextlib.aclosing(executor.logs(controller.container_id)) as lines:
        got = [(line.stream, line.data) async for line in lines]
    assert sorted(got) == sorted([(STDOUT, b"one\n"), (STDERR, b"two\n"), (STDOUT, b"three\n")])
    async with contextlib.aclosing(executor.logs(controller.container_id, tail=1)) as lines:
        assert len([line async for line in lines]) == 1


async def test_following_logs_can_be_abandoned(executor, node_id, busybox_image):
    task = make_task(node_id, busybox_image, "sh", "-c", "while true; do echo tick; sleep 0.1; done")
    controller = executor.controller(task)
    await controller.prepare()
    await controller.start()
    async with contextlib.aclosing(executor.logs(controller.container_id, follow=True)) as lines:
        async for line in lines:
            assert line.data == b"tick\n" and line.timestamp_ns > 0
            break
    await controller.terminate()
