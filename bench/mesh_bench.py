"""The routing mesh (issue 12): throughput and latency through the mesh against straight to the task, and
the time for a task change to reach the mesh on every node. Lab hosts (tests/worker/network/lab.py), the
node side as the worker runs it (NodeDataPlane.apply), no control plane.

    flock /tmp/heavy.lock env PYTHONPATH=$PWD python3 bench/mesh_bench.py [--seconds 5] [--changes 50]

1. wrk (Debian's) in the hub namespace ("outside"), against busybox httpd in one task container on h2:
   - mesh: h1's address:8080, a node without the task (DNAT, masquerade, VXLAN to h2, back the same way);
   - direct: the task's own ingress address:80, routed by the hub through h2 (no DNAT, no VXLAN).
   Same run, alternating, `--rounds` rounds each (the machine is shared); the medians are compared.
2. Convergence: the ingress view holds 100 tasks of the service on 3 hosts (2 real containers, the other
   98 listed as remote peers and backends, as a view of a 100-task service is); a change is one task
   leaving or joining the rotation; the time is from handing every node its new view to the last node's
   apply returning (its nft transaction committed), `--changes` times; p50/p99/max.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time
from ipaddress import IPv4Interface

sys.path.insert(0, ".")
from swarmpy.worker.network.model import PublishedPort  # noqa: E402
from tests.worker.network.lab import NetLab, run  # noqa: E402
from tests.worker.network.mesh_lab import MeshCluster, MeshTask, apply_mesh, http_bodies  # noqa: E402

HTTP = PublishedPort("tcp", 8080, 80)


def wrk(hub: str, url: str, seconds: int) -> dict[str, float]:
    out = run("ip", "netns", "exec", hub, "wrk", "-t1", "-c8", f"-d{seconds}s", "--latency", url, timeout=seconds + 30)

    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": ms("50%"), "p99": ms("99%"), "errors": 0.0 if errors is None else 1.0,
    }


async def throughput(seconds: int, rounds: int) -> None:
    lab = NetLab()
    try:
        for host in ("h1", "h2", "h3"):
            lab.add_host(host)
        cluster = MeshCluster({h: IPv4Interface(f"10.0.0.{2 + i}/24") for i, h in enumerate(lab.hosts)})
        cluster.tasks = [MeshTask("webtask2", "h2", lab.start_container("web2"), IPv4Interface("10.0.0.12/24"))]
        cluster.ports = (HTTP,)
        await apply_mesh(lab, cluster)
        # Straight to the task: the hub routes its ingress address through the task's node.
        run("ip", "-n", lab.hub, "route", "add", "10.0.0.12/32", "via", str(lab.hosts["h2"]))
        # wrk closes each connection itself (httpd answers "Connection: close"), so the TIME_WAITs are the
        # hub's: thousands a round, and without reuse its connect()s scan a port range full of them in the
        # kernel and every path slows together (see bench/overlay_bench.py). Reuse, as load generators run.
        run("ip", "netns", "exec", lab.hub, "sysctl", "-q", "-w", "net.ipv4.tcp_tw_reuse=1")
        hub_path = f"/run/netns/{lab.hub}"
        assert await http_bodies(hub_path, str(lab.hosts["h1"]), 8080, 3) == ["web2"] * 3
        assert await http_bodies(hub_path, "10.0.0.12", 80, 3) == ["web2"] * 3
        results: dict[str, list[dict[str, float]]] = {"mesh": [], "direct": []}
        for _ in range(rounds):
            results["mesh"].append(await asyncio.to_thread(wrk, lab.hub, f"http://{lab.hosts['h1']}:8080/", seconds))
            results["direct"].append(await asyncio.to_thread(wrk, lab.hub, "http://10.0.0.12:80/", seconds))
        for label, runs in results.items():
            for r in runs:
                print(f"  {label:6s} {r['rps']:9.0f} req/s  p50 {r['p50']:7.3f} ms  p99 {r['p99']:7.3f} ms"
                      f"{'  (errors)' if r['errors'] else ''}")
        median = {label: {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99")}
                  for label, runs in results.items()}
        rps_ratio = median["mesh"]["rps"] / median["direct"]["rps"]
        p99_ratio = median["mesh"]["p99"] / median["direct"]["p99"]
        print(f"medians: mesh {median['mesh']['rps']:.0f} req/s p50 {median['mesh']['p50']:.3f} ms p99 "
              f"{median['mesh']['p99']:.3f} ms; direct {median['direct']['rps']:.0f} req/s p50 "
              f"{median['direct']['p50']:.3f} ms p99 {median['direct']['p99']:.3f} ms")
        print(f"throughput ratio {rps_ratio:.2f} (target >= 0.8), p99 ratio {p99_ratio:.2f} (target <= 1.5)")
    finally:
        await lab.close()


async def convergence(changes: int) -> None:
    lab = NetLab()
    try:
        for host in ("h1", "h2", "h3"):
            lab.add_host(host)
        hosts = list(lab.hosts)
        cluster = MeshCluster({h: IPv4Interface(f"10.0.0.{2 + i}/24") for i, h in enumerate(hosts)})
        cluster.tasks = [
            MeshTask("webtask2", "h2", lab.start_container("web2"), IPv4Interface("10.0.0.10/24")),
            MeshTask("webtask3", "h3", lab.start_container("web3"), IPv4Interface("10.0.0.11/24")),
        ]
        # The other 98 tasks of the service: their containers are not this benchmark's (they would only
        # add engine load); each node's view lists them as remote peers and backends all the same.
        for n in range(98):
            cluster.tasks.append(MeshTask(f"webtask{100 + n}", hosts[n % 3], "", IPv4Interface(f"10.0.0.{20 + n}/24")))
        cluster.ports = (HTTP,)
        everyone = {t.id for t in cluster.tasks}
        cluster.running = set(everyone)
        await apply_mesh(lab, cluster)
        times = []
        for i in range(changes):
            moving = cluster.tasks[2 + i % 98].id
            cluster.running = everyone - {moving} if i % 2 == 0 else set(everyone)
            started = time.perf_counter()
            await apply_mesh(lab, cluster)
            times.append(time.perf_counter() - started)
        # The last view is in force on every node: its rules name each backend in rotation (all 100 after an
        # even number of changes, 99 after an odd one, whose last took a task out).
        for host in hosts:
            listing = run("ip", "netns", "exec", lab.namespace(host), "nft", "list", "table", "ip",
                          lab.planes[host].mesh.table)
            in_rotation = listing.count("dnat to 10.0.0.")
            assert in_rotation == len(cluster.running), f"{host}: {in_rotation} backends, {len(cluster.running)} running"
        times.sort()
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        print(f"change -> mesh updated on 3 nodes, 100 tasks, {changes} changes: p50 {statistics.median(times) * 1e3:.0f} ms,"
              f" p99 {p99 * 1e3:.0f} ms, max {times[-1] * 1e3:.0f} ms (target p99 <= 1000 ms)")
    finally:
        await lab.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    run("docker", "image", "inspect", "swarmpy-test/busybox:latest")
    asyncio.run(throughput(args.seconds, args.rounds))
    asyncio.run(convergence(args.changes))


if __name__ == "__main__":
    main()
