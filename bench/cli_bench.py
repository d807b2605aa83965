"""CLI: wall time of `swarmpy service ls` against `python -c pass`, median of 20 each, same run.

A running daemon: one manager process, swarm initialised, one service of 3 replicas (the manager is
drained, so its tasks stay pending; `service ls` only reads). Both
commands run with this interpreter: `swarmpy` is the console script installed beside it (not a version
manager's shim, whose own start-up is not ours), and the baseline is `python -c pass`.
`--importtime` also prints the heaviest imports of one `service ls` (python -X importtime).

    python -m bench.cli_bench --repeat 20
"""

from __future__ import annotations

import argparse
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
    cluster = start_managers(1)
    try:
        leader = cluster.leader
        leader.cli("service", "create", "--name", "cli-bench", "--replicas", "3", "-d", "swarmpy-test/busybox", "sleep", "1000")
        env = dict(os.environ, SWARMPY_HOST=leader.host)
        service_ls = [str(console_script), "service", "ls"]
        baseline = [sys.executable, "-c", "pass"]
        wall_times(service_ls, env, 2)  # warm the page cache and the daemon's first calls
        ls_times, pass_times = [], []
        for _ in range(args.repeat):  # interleaved, so background load hits both alike
            ls_times += wall_times(service_ls, env, 1)
            pass_times += wall_times(baseline, env, 1)
        if args.importtime:
            for cumulative, module in heaviest_imports(service_ls, env):
                print(f"  import {module}: {cumulative / 1000:.1f} ms")
    finally:
        cluster.stop()
    ls, bare = statistics.median(ls_times), statistics.median(pass_times)
    print(f"median of {args.repeat}: `swarmpy service ls` {1e3 * ls:.0f} ms, `python -c pass` {1e3 * bare:.0f} ms, "
          f"ratio {ls / bare:.1f}, difference {1e3 * (ls - bare):.0f} ms")


if __name__ == "__main__":
    main()
