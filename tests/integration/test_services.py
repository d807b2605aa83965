"""Services on one real node: create, scale, restart on failure, global mode, rm, logs, inspect, node ps.

All tests share one daemon (the module's); each keeps to its own service names, and each service that
is stopped has a short grace period, because `sleep` as PID 1 ignores SIGTERM and would hold every stop
for the default 10 s.
"""

from __future__ import annotations

import json
import re

import pytest

from .conftest import wait_until

pytestmark = pytest.mark.docker

SERVICE_ID = re.compile(r"^[0-9a-z]{25}$")


def create(daemon, name: str, image: str, *args: str, options: tuple[str, ...] = ()) -> str:
    """`service create -d`, returning the new service's ID."""
    result = daemon.ok("service", "create", "-d", "--name", name, "--stop-grace-period", "1s", *options, image, *args)
    service_id = result.stdout.strip()
    assert SERVICE_ID.match(service_id), result
    return service_id


def task_rows(daemon, service: str) -> list[str]:
    """`service ps --no-trunc` rows, header dropped."""
    return daemon.ok("service", "ps", "--no-trunc", service).stdout.splitlines()[1:]


def test_create_runs_the_replicas_with_swarm_labels(shared_daemon, image):
    service_id = create(shared_daemon, "sl", image, "sleep", "1000", options=("--replicas", "3"))

    containers = shared_daemon.wait_running("sl", 3, timeout=15)

    slots = set()
    for container in containers:
        labels = container.labels
        assert labels["com.docker.swarm.service.id"] == service_id
        assert labels["com.docker.swarm.service.name"] == "sl"
        assert labels["com.docker.swarm.node.id"] == shared_daemon.node_id
        assert labels["swarmpy.node.id"] == shared_daemon.node_id
        task_name = labels["com.docker.swarm.task.name"]
        assert task_name == f"sl.{labels['com.docker.swarm.task.slot']}"
        assert container.name == f"{task_name}.{labels['com.docker.swarm.task.id']}"
        assert container.attrs["Config"]["Cmd"] == ["sleep", "1000"]
        slots.add(labels["com.docker.swarm.task.slot"])
    assert slots == {"1", "2", "3"}

    shared_daemon.wait_listed(rf"^{service_id[:12]}\s+sl\s+replicated\s+3/3\s+{re.escape(image)}")


def test_scale_up_and_down(shared_daemon, image):
    create(shared_daemon, "scaler", image, "sleep", "1000", options=("--replicas", "3"))
    shared_daemon.wait_running("scaler", 3)

    assert shared_daemon.ok("service", "scale", "-d", "scaler=7").stdout.strip() == "scaler scaled to 7"
    shared_daemon.wait_running("scaler", 7)

    assert shared_daemon.ok("service", "scale", "-d", "scaler=1").stdout.strip() == "scaler scaled to 1"
    survivors = shared_daemon.wait_running("scaler", 1)
    shared_daemon.wait_listed(r"\sscaler\s+replicated\s+1/1\s")
    # Columns are two or more spaces apart: ID, NAME, IMAGE, NODE, DESIRED STATE, CURRENT STATE.
    columns = [re.split(r"\s{2,}", row.strip()) for row in task_rows(shared_daemon, "scaler")]
    wanted = [row for row in columns if row[4] == "Running"]
    assert len(wanted) == 1, columns
    assert wanted[0][5].startswith("Running"), wanted
    assert survivors[0].labels["com.docker.swarm.task.id"] == wanted[0][0]


def test_a_killed_container_is_replaced_and_kept_in_history(shared_daemon, image):
    create(shared_daemon, "victim", image, "sleep", "1000", options=("--restart-delay", "100ms"))
    [original] = shared_daemon.wait_running("victim", 1)

    original.kill()

    def replaced():
        current = shared_daemon.running("victim", 1)
        return current if current and current[0].id != original.id else None

    [replacement] = wait_until(replaced, what="a replacement container for the killed one",
                               details=lambda: str(shared_daemon.cli("service", "ps", "--no-trunc", "victim")))
    assert replacement.labels["com.docker.swarm.task.slot"] == "1"

    rows = task_rows(shared_daemon, "victim")
    assert len(rows) == 2, rows
    assert rows[0].split()[1] == "victim.1"
    assert rows[0].split()[0] == replacement.labels["com.docker.swarm.task.id"]
    history = rows[1]
    assert history.split()[1:3] == ["\\_", "victim.1"], history
    assert history.split()[0] == original.labels["com.docker.swarm.task.id"]
    assert " Shutdown " in history and " Failed " in history, history
    assert '"task: non-zero exit (137)"' in history, history


def test_global_service_runs_one_task_on_the_node(shared_daemon, image):
    create(shared_daemon, "everywhere", image, "sleep", "1000", options=("--mode", "global"))
    [container] = shared_daemon.wait_running("everywhere", 1)

    rows = task_rows(shared_daemon, "everywhere")
    assert len(rows) == 1, rows
    columns = rows[0].split()
    assert columns[1] == f"everywhere.{shared_daemon.node_id}"
    assert columns[3] == shared_daemon.hostname
    assert container.labels["com.docker.swarm.task.id"] == columns[0]
    shared_daemon.wait_listed(r"\severywhere\s+global\s+1/1\s")


def test_rm_leaves_no_container(shared_daemon, image):
    create(shared_daemon, "doomed", image, "sleep", "1000", options=("--replicas", "2"))
    shared_daemon.wait_running("doomed", 2)

    assert shared_daemon.ok("service", "rm", "doomed").stdout.strip() == "doomed"

    wait_until(lambda: not shared_daemon.containers("doomed", include_stopped=True), timeout=20,
               what="every container of the removed service to be gone")
    gone = shared_daemon.cli("service", "inspect", "doomed")
    assert gone.code != 0 and "no such service: doomed" in gone.stderr, gone


def test_logs_show_the_output_with_the_task_prefix(shared_daemon, image):
    create(shared_daemon, "talker", image, "sh", "-c", "echo hello; sleep 1000")
    [container] = shared_daemon.wait_running("talker", 1)
    task_id = container.labels["com.docker.swarm.task.id"]

    def logged():
        result = shared_daemon.cli("service", "logs", "talker", timeout=15)
        return result if result.code == 0 and "hello" in result.stdout else None

    result = wait_until(logged, timeout=15, what="the service's log line")
    assert result.stdout.splitlines() == [f"talker.1.{task_id[:12]}@{shared_daemon.hostname}    | hello"], result


def test_a_missing_image_rejects_the_task_with_the_image_named(shared_daemon):
    create(shared_daemon, "ghost", "swarmpy-test/no-such-image:1", options=("--restart-condition", "none"))

    def rejected():
        return [row for row in task_rows(shared_daemon, "ghost") if " Rejected " in row]

    [row] = wait_until(rejected, timeout=20, what="a rejected task of service ghost")
    assert "No such image: swarmpy-test/no-such-image:1" in row, row
    assert not shared_daemon.containers("ghost", include_stopped=True)


def test_inspect_pretty_and_json(shared_daemon, image):
    service_id = create(shared_daemon, "shown", image, "sleep", "1000",
                        options=("--replicas", "2", "--label", "team=core", "--limit-memory", "64MiB"))

    pretty = shared_daemon.ok("service", "inspect", "--pretty", "shown").stdout
    assert re.search(rf"^ID:\s+{service_id}$", pretty, re.MULTILINE), pretty
    assert re.search(r"^Name:\s+shown$", pretty, re.MULTILINE), pretty
    assert re.search(r"^ team\s*=\s*core$", pretty, re.MULTILINE), pretty
    assert re.search(r"^Service Mode:\s+Replicated$", pretty, re.MULTILINE), pretty
    assert re.search(r"^ Replicas:\s+2$", pretty, re.MULTILINE), pretty
    assert re.search(rf"^ Image:\s+{re.escape(image)}$", pretty, re.MULTILINE), pretty
    assert re.search(r"^ Args:\s+sleep 1000\s*$", pretty, re.MULTILINE), pretty
    assert re.search(r"^ StopGracePeriod:\s+1s$", pretty, re.MULTILINE), pretty
    assert re.search(r"^  Memory:\s+64MiB$", pretty, re.MULTILINE), pretty

    for command in (("service", "inspect", "shown"), ("service", "inspect", "--format", "json", "shown")):
        [service] = json.loads(shared_daemon.ok(*command).stdout)
        assert service["ID"] == service_id
        spec = service["Spec"]
        assert spec["Name"] == "shown"
        assert spec["Labels"] == {"team": "core"}
        assert spec["Mode"] == {"Replicated": {"Replicas": 2}}
        container_spec = spec["TaskTemplate"]["ContainerSpec"]
        assert container_spec["Image"] == image
        assert container_spec["Args"] == ["sleep", "1000"]
        assert spec["TaskTemplate"]["Resources"]["Limits"]["MemoryBytes"] == 64 * 1024 * 1024


def test_node_ps_lists_the_tasks_on_the_node(shared_daemon, image):
    create(shared_daemon, "onnode", image, "sleep", "1000", options=("--replicas", "2"))
    containers = shared_daemon.wait_running("onnode", 2)

    rows = shared_daemon.ok("node", "ps", "--no-trunc").stdout.splitlines()
    assert rows[0].split()[:3] == ["ID", "NAME", "IMAGE"], rows
    mine = {row.split()[0]: row for row in rows[1:] if row.split()[1].startswith("onnode.")}
    assert set(mine) == {container.labels["com.docker.swarm.task.id"] for container in containers}
    for row in mine.values():
        assert shared_daemon.hostname in row.split() and " Running " in row, row

    by_id = shared_daemon.ok("node", "ps", "--no-trunc", shared_daemon.node_id).stdout.splitlines()
    assert set(mine) <= {row.split()[0] for row in by_id[1:]}


def test_create_without_detach_waits_until_converged(shared_daemon, image):
    result = shared_daemon.ok("service", "create", "--name", "patient", "--replicas", "2",
                              "--stop-grace-period", "1s", image, "sleep", "1000", timeout=60)
    lines = result.stdout.strip().splitlines()
    service_id = lines[0]
    assert SERVICE_ID.match(service_id), result
    assert "overall progress: 2 out of 2 tasks" in lines
    assert lines[-1] == f"verify: Service {service_id} converged", result
    assert len(shared_daemon.containers("patient")) == 2
    # No registry to pin the image's digest: docker's client warns, on stderr, and goes on.
    assert result.stderr == (f"image {image} could not be accessed on a registry to record\nits digest. Each node"
                             f" will access {image} independently,\npossibly leading to different nodes running"
                             " different\nversions of the image.\n\n"), result
    updated = shared_daemon.ok("service", "update", "-d", "--image", image, "patient")
    assert updated.stderr.startswith(f"image {image} could not be accessed on a registry"), updated
    quiet = shared_daemon.ok("service", "update", "-d", "--no-resolve-image", "--image", image, "patient")
    assert "registry" not in quiet.stderr, quiet


def test_update_without_detach_waits_until_converged(shared_daemon, image):
    create(shared_daemon, "rolling", image, "sleep", "1000", options=("--replicas", "2"))
    shared_daemon.wait_running("rolling", 2)

    result = shared_daemon.ok("service", "update", "--args", "sleep 999", "rolling", timeout=60)

    lines = result.stdout.strip().splitlines()
    assert lines[0] == "rolling"
    assert lines[-1] == "verify: Service rolling converged", result  # docker names it as typed
    containers = shared_daemon.containers("rolling")
    assert [c.attrs["Config"]["Cmd"] for c in containers] == [["sleep", "999"]] * 2
