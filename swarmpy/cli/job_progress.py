"""Waiting for a job (`service create/update` without -d on a job): the run's progress as docker words
it, "job progress: N out of M complete" and "active tasks: R out of D tasks", redrawn when it changes,
until every completion is in ("job complete"). Ctrl-C leaves the job running."""

from __future__ import annotations

import sys
import time

from swarmpy.api import control_pb2

POLL_INTERVAL = 0.2


def _status(daemon, service_id: str):
    response = daemon.call(daemon.control.ListServices, control_pb2.ListServicesRequest(
        filters=control_pb2.ListServicesRequest.Filters(ids=[service_id])))
    for service, status in zip(response.services, response.statuses):
        if service.id == service_id:
            return service, status
    return None, None


def wait_for_job(daemon, service_id: str, quiet: bool = False, stream=None) -> None:
    out = stream or sys.stdout
    shown = None
    try:
        while True:
            service, status = _status(daemon, service_id)
            if service is None:
                return
            if service.spec.WhichOneof("mode") == "replicated_job":
                total = service.spec.replicated_job.total_completions
            else:
                total = status.desired_tasks + status.completed_tasks
            lines = (f"job progress: {status.completed_tasks} out of {total} complete",
                     f"active tasks: {status.running_tasks} out of {status.desired_tasks} tasks")
            if lines != shown and not quiet:
                out.write("\n".join(lines) + "\n")
                out.flush()
                shown = lines
            if total and status.completed_tasks >= total:
                if not quiet:
                    out.write("job complete\n")
                return
            time.sleep(POLL_INTERVAL)
    except KeyboardInterrupt:
        out.write("Operation continuing in background.\n")
