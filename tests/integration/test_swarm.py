"""A single-node swarm's life: init, the node as the CLI shows it, the CLI without a daemon, leaving."""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from .conftest import run_cli, wait_until

pytestmark = pytest.mark.docker


def test_init_prints_the_join_command_and_the_node_is_a_ready_leader(shared_daemon):
    init = shared_daemon.init_result
    assert f"Swarm initialized: current node ({shared_daemon.node_id}) is now a manager." in init.stdout
    assert re.search(
        rf"^    swarmpy swarm join --token SWMTKN-1-[0-9a-z]+-[0-9a-z]+ 127\.0\.0\.1:{shared_daemon.listen_port}$",
        init.stdout, re.MULTILINE,
    ), init.stdout
    assert "To add a manager to this swarm, run 'swarmpy swarm join-token manager'" in init.stdout

    nodes = shared_daemon.ok("node", "ls").stdout.splitlines()
    assert nodes[0].split() == ["ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER", "STATUS", "ENGINE", "VERSION"]
    assert len(nodes) == 2, nodes
    assert nodes[1].split()[:6] == [shared_daemon.node_id, "*", shared_daemon.hostname, "Ready", "Active", "Leader"]


def test_node_inspect_shows_a_ready_manager(shared_daemon):
    import json

    inspected = json.loads(shared_daemon.ok("node", "inspect", "self").stdout)
    assert len(inspected) == 1
    node = inspected[0]
    assert node["ID"] == shared_daemon.node_id
    assert node["Description"]["Hostname"] == shared_daemon.hostname
    assert node["Status"]["State"] == "ready"
    assert node["Spec"]["Role"] == "manager"
    assert node["ManagerStatus"]["Leader"] is True


def test_cli_without_a_daemon_says_so_plainly(tmp_path):
    socket_path = tmp_path / "nobody-home.sock"
    result = run_cli(f"unix://{socket_path}", "node", "ls")
    assert result.code != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(socket_path) in lines[0]
    assert "Is swarmpyd running?" in lines[0]


def test_leave_removes_the_nodes_containers_by_force(own_daemon, image):
    # `sleep` as PID 1 ignores SIGTERM: a stop would wait out the whole default grace (10 s) per task.
    # docker's leave force-removes the node's containers instead (a kill), and so does swarmpy's.
    own_daemon.ok("service", "create", "-d", "--name", "leaver", "--replicas", "2", image, "sleep", "1000")
    own_daemon.wait_running("leaver", 2)

    started = time.monotonic()
    assert own_daemon.ok("swarm", "leave", "--force").stdout.strip() == "Node left the swarm."
    took = time.monotonic() - started
    assert not own_daemon.containers(include_stopped=True)  # gone when leave returns
    assert took < 8, f"swarm leave --force took {took:.1f} s: it waited for the stop grace period"
    after = own_daemon.cli("node", "ls")
    assert after.code != 0
    assert len(after.stderr.strip().splitlines()) == 1, after
    assert "not a swarm manager" in after.stderr or "not part of a swarm" in after.stderr, after


def test_leave_with_tasks_that_restart_at_once(own_daemon, image):
    # One task stops at once on SIGTERM and is restarted at once; the other ignores SIGTERM for its grace
    # period. Were the leave a stop with the agent still in session, the first one's replacement would
    # arrive while the second held it open; the agent goes first and both are removed by force.
    own_daemon.ok("service", "create", "-d", "--name", "prompt", "--restart-delay", "0s",
                  image, "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done")
    own_daemon.ok("service", "create", "-d", "--name", "stubborn", "--stop-grace-period", "3s",
                  image, "sleep", "1000")
    own_daemon.wait_running("prompt", 1)
    own_daemon.wait_running("stubborn", 1)

    try:
        left = own_daemon.cli("swarm", "leave", "--force", timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("swarm leave --force took more than 10 s")
    assert left.code == 0, left
    assert not own_daemon.containers(include_stopped=True)


def test_init_on_a_port_another_swarm_holds_is_refused(shared_daemon, bare_daemon):
    taken = f"127.0.0.1:{shared_daemon.listen_port}"
    result = bare_daemon.cli("swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", taken)
    assert result.code != 0, f"{result}\nboth daemons bound {taken}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and taken in lines[0] and "already in use" in lines[0], result
    assert "Unexpected" not in result.stderr, result

    assert "not a swarm manager" in bare_daemon.cli("node", "ls").stderr
    # The first swarm's manager still answers its own node on that port.
    assert shared_daemon.ok("node", "ls").stdout.splitlines()[1].split()[3] == "Ready"


def test_init_takes_interface_names_for_its_addresses(bare_daemon):
    port = bare_daemon.listen_port
    result = bare_daemon.cli("swarm", "init", "--advertise-addr", "lo", "--listen-addr", f"lo:{port}")
    assert result.code == 0, result
    bare_daemon.node_id = re.search(r"current node \(([0-9a-z]+)\)", result.stdout).group(1)
    assert f"127.0.0.1:{port}" in result.stdout  # the join command names the resolved address
    shown = bare_daemon.ok("node", "inspect", "-f", "{{.Status.Addr}} {{.ManagerStatus.Addr}}", "self").stdout
    assert shown == f"127.0.0.1 127.0.0.1:{port}\n"
