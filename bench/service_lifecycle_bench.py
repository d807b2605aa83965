"""A service's life as a user drives it from the CLI, swarmpy against the engine's own Swarm mode.

Theory of operation
-------------------
Each *system* is one single-node swarm on this machine's Docker engine: `swarmpy` (one swarmpyd, active,
driven by the `swarmpy` CLI) or `docker` (the engine itself after `docker swarm init`, driven by the
`docker` CLI). A run takes one system through the STEPS, in order, on one fresh service of 40 replicas of
`sleep` (PID 1 ignores SIGTERM, so every stop waits out its 10 s grace period):

    create      `service create -d --name N --replicas 40 IMAGE sleep 100000`, until 40 containers run
    scale-down  `service scale -d N=20`, until 20 run (the 20 stopped each wait out their grace period)
    scale-up    `service scale -d N=40`, until 40 run again
    rm          `service rm N`, until no container of the service is left (running or not)

Each step's time runs from just before its command until the engine shows the step's end state, polled
every 0.1 s through the Docker SDK on the label both systems put on their containers
(com.docker.swarm.service.name). So the two systems are timed by one clock and one criterion, the way a
user waiting at a terminal would see it. A step is a `Step(name, command, done)`: to add one (say a
scale), append it to STEPS; the table and the ratios pick it up.

Runs alternate which system goes first, so neither always meets a warmer engine. Whoever puts the engine
into Swarm mode holds `flock /tmp/docker-swarm.lock` for as long as it is in Swarm mode, and leaves it as
found: `docker swarm leave --force`, then `docker network rm docker_gwbridge`.

    python -m bench.service_lifecycle_bench --runs 3
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import docker

from bench.cluster_harness import start_managers

IMAGE = "swarmpy-test/busybox"
REPLICAS = 40
POLL_INTERVAL = 0.1
STEP_TIMEOUT = 300.0
SWARM_LOCK = "/tmp/docker-swarm.lock"
SERVICE_LABEL = "com.docker.swarm.service.name"
TARGET_RATIO = 1.1


class System:
    """One swarm and the CLI that drives it."""

    name: str

    def cli(self, *args: str) -> None:
        raise NotImplementedError


class Swarmpy(System):
    name = "swarmpy"

    def __init__(self) -> None:
        self._cluster = start_managers(1, availability="active")

    def cli(self, *args: str) -> None:
        self._cluster.leader.cli(*args)

    def close(self) -> None:
        self._cluster.stop()


class EngineSwarm(System):
    name = "docker"

    def cli(self, *args: str) -> None:
        # Images are never pulled here; without this the engine asks a registry for the image's digest.
        if args[:2] == ("service", "create"):
            args = (*args[:2], "--no-resolve-image", *args[2:])
        _run("docker", *args)


def _run(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=STEP_TIMEOUT)
    if check and result.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` failed: {result.stderr.strip()}")
    return result


@contextlib.contextmanager
def swarmpy_swarm() -> Iterator[Swarmpy]:
    system = Swarmpy()
    try:
        yield system
    finally:
        system.close()


@contextlib.contextmanager
def engine_swarm() -> Iterator[EngineSwarm]:
    """The engine in Swarm mode, under the machine's lock, left as found."""
    with open(SWARM_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if _run("docker", "info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip() != "inactive":
                raise RuntimeError("the engine is already in Swarm mode (someone else's?); not touching it")
            _run("docker", "swarm", "init", "--advertise-addr", "127.0.0.1")
            try:
                yield EngineSwarm()
            finally:
                _run("docker", "swarm", "leave", "--force", check=False)
                _run("docker", "network", "rm", "docker_gwbridge", check=False)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


SYSTEMS: dict[str, Callable[[], contextlib.AbstractContextManager[System]]] = {
    "swarmpy": swarmpy_swarm,
    "docker": engine_swarm,
}


# ---------------------------------------------------------------------------------------------- steps


def containers(client: docker.DockerClient, service: str, *, running_only: bool) -> int:
    filters: dict = {"label": f"{SERVICE_LABEL}={service}"}
    if running_only:
        filters["status"] = "running"
    return len(client.api.containers(all=not running_only, filters=filters))


@dataclass(frozen=True)
class Step:
    name: str
    command: Callable[[str], tuple[str, ...]]  # service name -> CLI arguments (same for both systems)
    done: Callable[[docker.DockerClient, str], bool]  # the end state, as the engine shows it


STEPS = [
    Step("create",
         lambda service: ("service", "create", "-d", "--name", service, "--replicas", str(REPLICAS), IMAGE, "sleep", "100000"),
         lambda client, service: containers(client, service, running_only=True) == REPLICAS),
    Step("scale-down",
         lambda service: ("service", "scale", "-d", f"{service}={REPLICAS // 2}"),
         lambda client, service: containers(client, service, running_only=True) == REPLICAS // 2),
    Step("scale-up",
         lambda service: ("service", "scale", "-d", f"{service}={REPLICAS}"),
         lambda client, service: containers(client, service, running_only=True) == REPLICAS),
    Step("rm",
         lambda service: ("service", "rm", service),
         lambda client, service: containers(client, service, running_only=False) == 0),
]


def time_step(system: System, client: docker.DockerClient, step: Step, service: str) -> float:
    started = time.perf_counter()
    system.cli(*step.command(service))
    deadline = started + STEP_TIMEOUT
    while not step.done(client, service):
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{system.name}: step {step.name} did not finish within {STEP_TIMEOUT:.0f}s")
        time.sleep(POLL_INTERVAL)
    return time.perf_counter() - started


def one_run(system_name: str, client: docker.DockerClient) -> dict[str, float]:
    service = f"bench-life-{uuid.uuid4().hex[:8]}"
    with SYSTEMS[system_name]() as system:
        try:
            return {step.name: time_step(system, client, step, service) for step in STEPS}
        finally:
            for leftover in client.api.containers(all=True, filters={"label": f"{SERVICE_LABEL}={service}"}):
                with contextlib.suppress(docker.errors.APIError):
                    client.api.remove_container(leftover["Id"], force=True, v=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per system, alternating which goes first")
    parser.add_argument("--only", choices=list(SYSTEMS), help="measure one system alone (no ratios): for profiling")
    args = parser.parse_args(argv)
    client = docker.from_env(timeout=STEP_TIMEOUT)
    times: dict[str, dict[str, list[float]]] = {name: {step.name: [] for step in STEPS} for name in SYSTEMS}
    order = [args.only] if args.only else list(SYSTEMS)
    for run in range(1, args.runs + 1):
        for system_name in order if run % 2 else reversed(order):
            measured = one_run(system_name, client)
            for step, seconds in measured.items():
                times[system_name][step].append(seconds)
            print(f"run {run} {system_name}: " + ", ".join(f"{step} {s:.1f}s" for step, s in measured.items()), flush=True)
    if args.only:
        return 0
    print(f"\n{REPLICAS} replicas of `sleep` (ignores SIGTERM; 10 s grace), {args.runs} runs each, median (min-max) s")
    print(f"{'step':<8} {'swarmpy':>20} {'docker swarm':>20} {'ratio':>7}")
    worst = 0.0
    for step in STEPS:
        ours, theirs = times["swarmpy"][step.name], times["docker"][step.name]
        ratio = statistics.median(ours) / statistics.median(theirs)
        worst = max(worst, ratio)
        print(f"{step.name:<8} {_spread(ours):>20} {_spread(theirs):>20} {ratio:>7.2f}")
    print(f"worst ratio {worst:.2f} (target <= {TARGET_RATIO})")
    return 0


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


if __name__ == "__main__":
    sys.exit(main())
