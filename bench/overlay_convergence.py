"""Convergence through the whole stack: a task RUNNING -> resolvable and routed, with N tasks on 3 hosts.

    PYTHONPATH=$PWD flock /tmp/heavy.lock python3 bench/overlay_convergence.py [--tasks 100]

Three swarmpyd hosts (tests/cluster/overlay_lab.py: each daemon in its own network namespace, plumbing
its own tasks), one overlay network, a client task on m1. A probe runs in the client's network namespace
(the host's python, nsenter) and, every 10 ms, asks the embedded resolver (TCP, so 100 records fit) for
`tasks.conv` and opens a TCP connection to port 80 of every IP it has seen and not yet reached. Then
`service create --replicas N` starts N busybox httpd tasks spread over the 3 hosts. Per task: from the
RUNNING timestamp its worker reported (TaskStatus.timestamp, the same machine's clock) to the probe's
first answer naming its IP (resolvable) and its first accepted connection (routed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, ".")
from swarmpy.api import objects_pb2  # noqa: E402
from swarmpy.manager.allocator.ipam import parse_cidr_address  # noqa: E402
from tests.cluster.conftest import wait_converged  # noqa: E402
from tests.cluster.overlay_lab import overlay_cluster  # noqa: E402
from tests.conftest import docker_client  # noqa: E402

PROBE = r'''
import json, select, socket, struct, sys, time
import dns.message, dns.query
name, want, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
resolved, routed, pending = {}, {}, {}
deadline = time.time() + limit
print("ready", flush=True)
while len(routed) < want and time.time() < deadline:
    try:
        answer = dns.query.tcp(dns.message.make_query(name, "A"), "127.0.0.11", timeout=1)
        now = time.time()
        for rrset in answer.answer:
            for record in rrset:
                resolved.setdefault(str(record), now)
    except (OSError, dns.exception.DNSException):
        pass
    for ip in resolved:
        if ip not in routed and ip not in pending:
            s = socket.socket(); s.setblocking(False); s.connect_ex((ip, 80)); pending[ip] = s
    if pending:
        _, writable, _ = select.select([], list(pending.values()), [], 0.01)
        now = time.time()
        for ip, s in list(pending.items()):
            if s in writable:
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    routed[ip] = now
                s.close(); del pending[ip]
    else:
        time.sleep(0.01)
print(json.dumps({"resolved": resolved, "routed": routed}))
'''


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def main(tasks: int) -> None:
    docker = docker_client()
    try:
        with overlay_cluster(Path(tempfile.mkdtemp(prefix="nwconv")), docker) as cluster:
            m1 = cluster.daemons["m1"]
            m1.ok("network", "create", "conv")
            m1.ok("service", "create", "-d", "--name", "probe", "--network", "conv", "--constraint",
                  f"node.hostname=={m1.hostname}", "swarmpy-test/busybox", "sleep", "100000")
            probe_task = wait_converged(cluster, m1, "probe", 1)[0]
            container = docker.containers.get(
                docker.containers.list(filters={"label": f"com.docker.swarm.task.id={probe_task.id}"})[0].id)
            pid = container.attrs["State"]["Pid"]
            probe = subprocess.Popen(
                ["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, "-c", PROBE, "tasks.conv", str(tasks), "600"],
                stdout=subprocess.PIPE, text=True)
            assert probe.stdout.readline().strip() == "ready"
            started = time.monotonic()
            m1.ok("service", "create", "-d", "--name", "conv", "--network", "conv", "--replicas", str(tasks),
                  "--stop-grace-period", "1s", "swarmpy-test/busybox", "sh", "-c",
                  "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www")
            seen = json.loads(probe.communicate(timeout=660)[0])
            print(f"{tasks} tasks created and routed in {time.monotonic() - started:.1f} s")
            running = [t for t in m1.service_tasks("conv") if t.status.state == objects_pb2.RUNNING]
            by_ip = {str(parse_cidr_address(t.networks[0].addresses[0])[0]): t for t in running}
            hosts = {cluster.by_node_id(t.node_id).name for t in running}
            resolvable, routed = [], []
            for ip, task in by_ip.items():
                at = task.status.timestamp / 1e9
                if ip in seen["resolved"]:
                    resolvable.append(seen["resolved"][ip] - at)
                if ip in seen["routed"]:
                    routed.append(seen["routed"][ip] - at)
            print(f"{len(running)} RUNNING on {len(hosts)} hosts; resolvable {len(resolvable)}, routed {len(routed)}")
            for label, values in (("resolvable", resolvable), ("resolvable and routed", routed)):
                if values:
                    print(f"RUNNING -> {label}: p50 {percentile(values, 0.5):.3f} s, p99 {percentile(values, 0.99):.3f} s, "
                          f"max {max(values):.3f} s (target p99 <= 1 s)")
    finally:
        docker.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100)
    main(parser.parse_args().tasks)
