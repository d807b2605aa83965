"""The bench harness's daemons do not outlive a bench ended by SIGTERM (`timeout`, a CI runner): they run
in sessions of their own, so only the bench's own cleanup can stop them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BENCH = textwrap.dedent("""
    import time
    from bench.cluster_harness import start_managers
    cluster = start_managers(1)
    try:
        # Printed inside the try: the test's SIGTERM follows this line at once, and may be handled before
        # the next statement (a SIGTERM before a bench's try is outside what the harness can clean up).
        print(cluster.leader.process.pid, cluster.work_dir, flush=True)
        time.sleep(120)
    finally:
        cluster.stop()
""")


def test_a_bench_ended_by_sigterm_stops_its_daemons_and_removes_its_work_dir():
    bench = subprocess.Popen([sys.executable, "-c", BENCH], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    daemon_pid = work_dir = None
    try:
        daemon_pid, work_dir = bench.stdout.readline().split()
        os.kill(int(daemon_pid), 0)  # running
        bench.send_signal(signal.SIGTERM)
        assert bench.wait(30) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(int(daemon_pid), 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"daemon {daemon_pid} outlived the bench")
        assert not Path(work_dir).exists()
    finally:
        if bench.poll() is None:
            bench.kill()
        if daemon_pid is not None:  # what the bench should have stopped, if the test failed
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(daemon_pid), signal.SIGKILL)
            shutil.rmtree(work_dir, ignore_errors=True)
