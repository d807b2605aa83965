"""The poll loop of converging output: every 200 ms read the service, its up-to-date tasks and the
nodes, feed the tracker, draw what changed. Ctrl-C leaves the daemon working and exits cleanly."""

from __future__ import annotations

import sys
import time

from swarmpy.api import control_pb2
from swarmpy.cli.connection import Daemon
from swarmpy.cli.errors import CliError
from swarmpy.cli.progress import ConvergenceTracker, ProgressFailed, Snapshot
from swarmpy.cli.progress_display import progress_display

POLL_INTERVAL = 0.2


def wait_for_convergence(daemon: Daemon, service_id: str, quiet: bool = False, stream=None, label: str | None = None) -> None:
    """Poll until the service converges; `label` is how the final line names it (default: its ID)."""
    display = progress_display(stream or sys.stdout, quiet)
    tracker = ConvergenceTracker(service_id, label)
    try:
        while True:
            service = daemon.call(daemon.control.GetService, control_pb2.GetServiceRequest(ref=service_id)).service
            tasks = daemon.call(daemon.control.ListTasks, control_pb2.ListTasksRequest(
                filters=control_pb2.ListTasksRequest.Filters(service_ids=[service_id], up_to_date=True))).tasks
            nodes = daemon.call(daemon.control.ListNodes, control_pb2.ListNodesRequest()).nodes
            try:
                observation = tracker.observe(Snapshot(service, list(tasks), list(nodes), time.monotonic_ns()))
            except ProgressFailed as failure:
                raise CliError(str(failure)) from None
            display.show(observation.lines)
            if observation.converged:
                return
            time.sleep(POLL_INTERVAL)
    except KeyboardInterrupt:
        display.message("Operation continuing in background.")
