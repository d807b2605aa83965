"""Engine API: the docker CLI against swarmpy's docker.sock vs against the engine's own Swarm mode,
and HTTP requests per second, same run.

1. One swarmpyd manager (active, so its one replica runs a real container); the same services are
   created on it and, holding /tmp/docker-swarm.lock, on the local engine put into its own Swarm mode
   (then left as found: `docker swarm leave --force`, `docker network rm docker_gwbridge`): 100
   services of 0 replicas plus `bench-ps` with 1 replica.
2. Wall time of `docker service ls` and `docker service ps bench-ps`, median of --repeat runs each,
   alternating targets; ratio = swarmpy / engine (target <= 1.5).
3. GET /services requests per second (100+1 services, one keep-alive connection, sequential) against
   both; GET /containers/json through swarmpy's proxy vs the engine's socket directly (target >= 0.8),
   in --proxy-rounds rounds, median of the rounds' ratios. Within a round the two sides take turns in
   blocks of --proxy-block requests (which side goes first alternates), each on its own keep-alive
   connection, and a side's rate is its requests over the sum of its blocks' times: this machine's speed
   swings within a second (the engine's own rate by 2-4x between rounds of 300 requests), and sides
   measured a whole round apart took those swings as the proxy's doing. Also swarmpyd's CPU time per
   proxied request (utime+stime over the rounds, less its idle rate over the engine's blocks; whatever
   else the daemon did meanwhile included), which load moves less than it moves rates.

    python -m bench.engineapi_bench --repeat 15 --requests 300
"""

from __future__ import annotations

import argparse
import fcntl
import http.client
import json
import os
import socket
import statistics
import subprocess
import time
from pathlib import Path

from bench.cluster_harness import start_managers

ENGINE_SOCKET = "/var/run/docker.sock"
IMAGE = "swarmpy-test/busybox:latest"
SWARM_LOCK = "/tmp/docker-swarm.lock"


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=60)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self._path)


def docker(socket_path: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DOCKER_HOST=f"unix://{socket_path}")
    result = subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} against {socket_path}: {result.stderr.strip()}")
    return result


def create_services(socket_path: str, count: int) -> None:
    connection = UnixHTTP(socket_path)
    for index in range(count):
        spec = {"Name": f"bench-{index:03d}", "TaskTemplate": {"ContainerSpec": {"Image": IMAGE, "Args": ["sleep", "1d"]}},
                "Mode": {"Replicated": {"Replicas": 0}}}
        connection.request("POST", "/v1.41/services/create", json.dumps(spec), {"Content-Type": "application/json"})
        answer = connection.getresponse()
        body = answer.read()
        if answer.status != 201:
            raise RuntimeError(f"create bench-{index:03d} on {socket_path}: {answer.status} {body!r}")
    connection.close()
    docker(socket_path, "service", "create", "-d", "--name", "bench-ps", "--no-resolve-image", IMAGE, "sleep", "1d")


def wait_running(socket_path: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if "1/1" in docker(socket_path, "service", "ls", "--filter", "name=bench-ps").stdout:
            return
        time.sleep(0.5)
    raise RuntimeError(f"bench-ps did not run on {socket_path}")


def wall(socket_path: str, *args: str) -> float:
    started = time.perf_counter()
    docker(socket_path, *args)
    return time.perf_counter() - started


def requests_per_second(socket_path: str, path: str, count: int) -> float:
    connection = UnixHTTP(socket_path)
    connection.request("GET", path)
    connection.getresponse().read()  # warm the connection
    started = time.perf_counter()
    for _ in range(count):
        connection.request("GET", path)
        answer = connection.getresponse()
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"GET {path} on {socket_path}: {answer.status}")
    elapsed = time.perf_counter() - started
    connection.close()
    return count / elapsed


def interleaved_rates(sockets: dict[str, str], path: str, count: int, block: int) -> dict[str, tuple[float, float]]:
    """Requests per second of GET `path` on each socket, the sockets taking turns in blocks of `block`
    requests (the first to go alternating): name -> (rate, seconds spent on its blocks)."""
    connections = {name: UnixHTTP(socket_path) for name, socket_path in sockets.items()}
    elapsed = dict.fromkeys(sockets, 0.0)

    def ask(name: str) -> None:
        connection = connections[name]
        connection.request("GET", path)
        answer = connection.getresponse()
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"GET {path} on {sockets[name]}: {answer.status}")

    try:
        for name in sockets:
            ask(name)  # warm each connection
        names = list(sockets)
        for turn in range(max(1, count // block)):
            for name in names if turn % 2 == 0 else reversed(names):
                started = time.perf_counter()
                for _ in range(block):
                    ask(name)
                elapsed[name] += time.perf_counter() - started
    finally:
        for connection in connections.values():
            connection.close()
    done = max(1, count // block) * block
    return {name: (done / seconds, seconds) for name, seconds in elapsed.items()}


def engine_in_swarm_mode() -> bool:
    return docker(ENGINE_SOCKET, "info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip() != "inactive"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--proxy-rounds", type=int, default=5)
    parser.add_argument("--proxy-block", type=int, default=20, help="requests in a side's turn within a proxy round")
    options = parser.parse_args()

    cluster = start_managers(1, availability="active", engine_api=True)
    swarmpy_socket = str(cluster.leader.socket_path.parent / "docker.sock")
    lock = open(SWARM_LOCK, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if engine_in_swarm_mode():
            raise RuntimeError("the engine is already in Swarm mode (someone else's): not touching it")
        docker(ENGINE_SOCKET, "swarm", "init", "--advertise-addr", "127.0.0.1")
        try:
            for target in (swarmpy_socket, ENGINE_SOCKET):
                create_services(target, options.services)
                wait_running(target)
            targets = {"swarmpy": swarmpy_socket, "engine": ENGINE_SOCKET}
            times: dict[tuple[str, str], list[float]] = {}
            for _ in range(options.repeat):
                for name, target in targets.items():
                    for command in (("service", "ls"), ("service", "ps", "bench-ps")):
                        times.setdefault((name, " ".join(command)), []).append(wall(target, *command))
            rps = {name: requests_per_second(target, "/v1.41/services", options.requests) for name, target in targets.items()}
            rps_status = {name: requests_per_second(target, "/v1.41/services?status=true", options.requests)
                          for name, target in targets.items()}
            # The proxy path in alternating rounds, each side a few seconds apart, so a change in the
            # shared machine's load moves both sides of a round's ratio alike.
            proxy_rounds = []
            proxy_cpu = 0.0  # swarmpyd's CPU seconds over the proxied requests (less noisy than rates)
            idle_before = cluster.leader.usage().cpu_seconds
            time.sleep(2)
            idle_rate = (cluster.leader.usage().cpu_seconds - idle_before) / 2  # what it burns asked nothing
            proxy_time = 0.0
            for _ in range(options.proxy_rounds):
                before = cluster.leader.usage().cpu_seconds
                rates = interleaved_rates({"swarmpy": swarmpy_socket, "engine": ENGINE_SOCKET}, "/v1.41/containers/json",
                                          options.requests, options.proxy_block)
                # The daemon idles through the engine's blocks: its idle rate over them is not the proxy's.
                proxy_cpu += cluster.leader.usage().cpu_seconds - before - idle_rate * rates["engine"][1]
                proxy_time += rates["swarmpy"][1]
                proxy_rounds.append({name: rate for name, (rate, _) in rates.items()})
        finally:
            docker(ENGINE_SOCKET, "swarm", "leave", "--force", check=False)
            docker(ENGINE_SOCKET, "network", "rm", "docker_gwbridge", check=False)
            fcntl.flock(lock, fcntl.LOCK_UN)
            lock.close()
    finally:
        docker(swarmpy_socket, "swarm", "leave", "--force", check=False)
        cluster.stop()

    print(f"docker CLI wall time, median of {options.repeat} (s)")
    print(f"{'command':<22} {'swarmpy':>9} {'engine':>9} {'ratio':>7}")
    for command in ("service ls", "service ps bench-ps"):
        mine, theirs = statistics.median(times[("swarmpy", command)]), statistics.median(times[("engine", command)])
        print(f"docker {command:<15} {mine:>9.3f} {theirs:>9.3f} {mine / theirs:>7.2f}")
    print(f"GET /services ({options.services + 1} services), {options.requests} sequential requests: "
          f"swarmpy {rps['swarmpy']:.0f} req/s, engine {rps['engine']:.0f} req/s, ratio {rps['swarmpy'] / rps['engine']:.2f}")
    print(f"GET /services?status=true: swarmpy {rps_status['swarmpy']:.0f} req/s, engine {rps_status['engine']:.0f} req/s, "
          f"ratio {rps_status['swarmpy'] / rps_status['engine']:.2f}")
    for index, proxy in enumerate(proxy_rounds, 1):
        print(f"GET /containers/json round {index}: through swarmpy's proxy {proxy['swarmpy']:.0f} req/s, "
              f"engine's socket {proxy['engine']:.0f} req/s, ratio {proxy['swarmpy'] / proxy['engine']:.2f}")
    ratios = [proxy["swarmpy"] / proxy["engine"] for proxy in proxy_rounds]
    print(f"GET /containers/json via proxy / engine socket: median of {len(ratios)} rounds' ratios "
          f"{statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f}); medians "
          f"{statistics.median(p['swarmpy'] for p in proxy_rounds):.0f} / "
          f"{statistics.median(p['engine'] for p in proxy_rounds):.0f} req/s")
    proxied = options.proxy_rounds * (max(1, options.requests // options.proxy_block) * options.proxy_block + 1)
    print(f"swarmpyd CPU per proxied request {proxy_cpu / proxied * 1e6:.0f} us, of which its background "
          f"(idle: {idle_rate * 100:.0f} % of a core) {idle_rate * proxy_time / proxied * 1e6:.0f} us")


if __name__ == "__main__":
    main()
