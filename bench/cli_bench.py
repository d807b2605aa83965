"""CLI: wall time of `swarmpy service ls` against `python -c pass`, median of 20 each, same run.

A running daemon: one manager process serving the Engine API too, swarm initialised, one service of 3
replicas (the manager is drained, so its tasks stay pending; `service ls` only reads). The commands
run with this interpreter: `swarmpy` is the console script installed beside it (not a version
manager's shim, whose own start-up is not ours), and the baseline is `python -c pass`. `service ls`
is timed through both doors: the quick path over the daemon's Engine API socket (the default when the
socket is there) and the click + gRPC path (SWARMPY_API_SOCKET='' turns the quick path off).
The tree is byte-compiled first (`compileall`), as an installed package is: a run under
PYTHONDONTWRITEBYTECODE=1 would otherwise compile every module on every start.
`--importtime` also prints the heaviest imports of one `service ls` (python -X importtime).

    python -m bench.cli_bench --repeat 20
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.cluster_harness import start_managers


def wall_times(command: list[str], env: dict[str, str], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return times


def heaviest_imports(command: list[str], env: dict[str, str], top: int = 12) -> list[tuple[int, str]]:
    """(cumulative µs, module) of the slowest imports the program itself made, from -X importtime."""
    result = subprocess.run([sys.executable, "-X", "importtime", *command], env=env, capture_output=True, text=True)
    rows = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self_us, cumulative, name = line[len("import time:"):].split("|")
        if len(name) - len(name.lstrip()) == 1:  # nested imports are indented further
            rows.append((int(cumulative), name.strip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--importtime", action="store_true")
    args = parser.parse_args()

    console_script = Path(sys.executable).parent / "swarmpy"
    if not console_script.exists():
        sys.exit(f"no swarmpy console script beside {sys.executable}; install the project (pip install -e .)")
    import swarmpy

    compileall.compile_dir(str(Path(swarmpy.__file__).parent), quiet=1)
    cluster = start_managers(1, engine_api=True)
    try:
        leader = cluster.leader
        api_socket = leader.socket_path.parent / "docker.sock"
        deadline = time.monotonic() + 30
        while not api_socket.exists():
            if time.monotonic() > deadline:
                sys.exit(f"the daemon did not open its Engine API socket {api_socket} within 30 s")
            time.sleep(0.1)
        leader.cli("service", "create", "--name", "cli-bench", "--replicas", "3", "-d", "swarmpy-test/busybox", "sleep", "1000")
        quick_env = dict(os.environ, SWARMPY_HOST=leader.host)
        quick_env.pop("SWARMPY_API_SOCKET", None)
        grpc_env = dict(quick_env, SWARMPY_API_SOCKET="")
        service_ls = [str(console_script), "service", "ls"]
        baseline = [sys.executable, "-c", "pass"]
        quick_out = subprocess.run(service_ls, env=quick_env, capture_output=True, text=True, check=True).stdout
        grpc_out = subprocess.run(service_ls, env=grpc_env, capture_output=True, text=True, check=True).stdout
        if quick_out != grpc_out or "cli-bench" not in quick_out:
            sys.exit(f"the two doors print differently:\n{quick_out}\n---\n{grpc_out}")
        wall_times(service_ls, quick_env, 2)  # warm the page cache and the daemon's first calls
        wall_times(service_ls, grpc_env, 2)
        quick_times, grpc_times, pass_times = [], [], []
        for _ in range(args.repeat):  # interleaved, so background load hits all alike
            quick_times += wall_times(service_ls, quick_env, 1)
            grpc_times += wall_times(service_ls, grpc_env, 1)
            pass_times += wall_times(baseline, quick_env, 1)
        if args.importtime:
            for door, env in (("Engine API", quick_env), ("gRPC", grpc_env)):
                print(f"heaviest imports, {door} door:")
                for cumulative, module in heaviest_imports(service_ls, env):
                    print(f"  import {module}: {cumulative / 1000:.1f} ms")
    finally:
        cluster.stop()
    quick, through_grpc, bare = (statistics.median(t) for t in (quick_times, grpc_times, pass_times))
    print(f"median of {args.repeat}: `swarmpy service ls` {1e3 * quick:.0f} ms over the Engine API socket, "
          f"{1e3 * through_grpc:.0f} ms over gRPC (click); `python -c pass` {1e3 * bare:.0f} ms; "
          f"Engine API door - python start-up {1e3 * (quick - bare):.0f} ms")


if __name__ == "__main__":
    main()
