"""Host-mode published ports of tasks on overlay networks (issue 12): such a task runs with network mode
"none" and is plumbed by its node's data plane, so the node publishes its ports itself (a DNAT from the
node's addresses to the task's egress address). Two hosts of overlay_lab.py (m1 manager, h2 worker), a
client in the hub namespace standing for the outside; checked from there: the port answers on the node
running the task and only there, a published port of 0 gets a free port that `service ps` shows and
that answers, the scheduler keeps a second task with the same host port off the node, and `service rm`
closes the port and removes the node's table.
"""

from __future__ import annotations

import asyncio
import re
import subprocess

import pytest

from swarmpy.worker.network import netns as nsutil
from swarmpy.worker.network.kernel import Names
from tests.integration.conftest import wait_until
from tests.worker.network.mesh_lab import http_bodies, tcp_exchange

from .overlay_lab import overlay_cluster
from .test_partition import _require_network_tools

pytestmark = [pytest.mark.docker, pytest.mark.timeout(240)]

SERVE = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"
PORT = 18091


def _answers(cluster, host: str, port: int, count: int = 3) -> list[str]:
    return asyncio.run(http_bodies(nsutil.netns_path(cluster.lab.hub), cluster.lab.addresses[host], port, count))


def _refused(cluster, host: str, port: int) -> bool:
    reply = asyncio.run(tcp_exchange(nsutil.netns_path(cluster.lab.hub), cluster.lab.addresses[host], port,
                                     b"GET / HTTP/1.0\r\n\r\n", timeout=2))
    return reply is None


def _host_port_tables(cluster, host: str) -> list[str]:
    daemon = cluster.daemons[host]
    listed = subprocess.run(["nsenter", f"--net={nsutil.netns_path(daemon.node_netns)}", "nft", "list", "tables"],
                            capture_output=True, text=True, timeout=30, check=True).stdout
    table = Names(daemon.node_id.lower()[:6]).host_ports_table
    return [line for line in listed.splitlines() if line.split()[-1:] == [table]]


def test_host_mode_ports_of_overlay_tasks_answer_on_their_node(docker, tmp_path, image):
    _require_network_tools()
    with overlay_cluster(tmp_path, docker, workers=1) as cluster:
        m1, h2 = cluster["m1"], cluster["h2"]
        m1.ok("network", "create", "-d", "overlay", "flhp")
        h2_name = m1.ok("node", "inspect", h2.node_id, "--format", "{{.Description.Hostname}}").stdout.strip()
        pin = ("--constraint", f"node.hostname=={h2_name}", "--network", "flhp", "--stop-grace-period", "1s")
        m1.ok("service", "create", "-d", "--name", "hp", "--replicas", "2", *pin,
              "-p", f"published={PORT},target=80,mode=host", image, "sh", "-c", SERVE)

        def settled():
            listing = m1.ok("service", "ps", "--no-trunc", "hp").stdout
            running = [line for line in listing.splitlines() if re.search(r"Running\s+Running", line)]
            return running if len(running) == 1 and "host-mode port already in use on 1 node" in listing else None

        [running] = wait_until(settled, timeout=90, what="one task running, the second pending for the port",
                               details=lambda: m1.cli("service", "ps", "--no-trunc", "hp").stdout + h2.log_tail())
        assert re.search(rf"\*:{PORT}->80/tcp", running), running
        [container] = cluster.our_running_containers("hp")
        # From outside, at h2's address: the task answers (its hostname is its container's short ID).
        answered = wait_until(lambda: (lambda got: got if got == [container.id[:12]] * 3 else None)(_answers(cluster, "h2", PORT)),
                              what="the task answering at h2's host port",
                              details=lambda: str(_answers(cluster, "h2", PORT)) + h2.log_tail())
        assert answered
        assert _refused(cluster, "m1", PORT), "a host-mode port is open only where its task runs"
        assert len(_host_port_tables(cluster, "h2")) == 1 and not _host_port_tables(cluster, "m1")

        # published=0: the node picks a free port; service ps shows it, and it answers.
        m1.ok("service", "create", "-d", "--name", "hp0", *pin, "-p", "target=80,mode=host", image, "sh", "-c", SERVE)

        def picked():
            listing = m1.ok("service", "ps", "--no-trunc", "hp0").stdout
            found = re.search(r"Running\s+Running.*\*:(\d+)->80/tcp", listing)
            return int(found.group(1)) if found else None

        port = wait_until(picked, timeout=60, what="hp0 running with its picked port",
                          details=lambda: m1.cli("service", "ps", "--no-trunc", "hp0").stdout)
        assert port not in (0, PORT)
        [picked_container] = cluster.our_running_containers("hp0")
        assert wait_until(lambda: _answers(cluster, "h2", port, 1) == [picked_container.id[:12]],
                          what="hp0 answering at its picked port")

        # service rm closes both ports on h2 and the node's table goes with the last one.
        m1.ok("service", "rm", "hp", "hp0")
        wait_until(lambda: _refused(cluster, "h2", PORT) and _refused(cluster, "h2", port), timeout=60,
                   what="the host ports closed after service rm")
        wait_until(lambda: not _host_port_tables(cluster, "h2"), what="h2's host-port table removed")
