"""Waiting for a job (`service create/update` without -d on a job): the run's progress as the docker
CLI 28.2 writes it, until every completion is in ("job complete"). Ctrl-C leaves the job running.

Not on a terminal (a pipe, a log) docker writes a line per update, as captured from it against the
engine's own Swarm mode: "active tasks: R out of D tasks" at every poll, after the first one a
"i/N:  " line per slot of a replicated job, and at the end "active tasks: 0 out of 0 tasks" and
"job complete"; its "job progress" line is a progress bar, which only a terminal shows. On a
terminal: "job progress: N out of M complete" and the active tasks, written when they change."""

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


def job_lines(service, status, first: bool, terminal: bool) -> list[str]:
    """What one poll writes (before "job complete")."""
    total = _total(service, status)
    running, desired = status.running_tasks, status.desired_tasks
    if total and status.completed_tasks >= total:
        running = desired = 0  # docker's last line: nothing active once the run is done
    active = f"active tasks: {running} out of {desired} tasks"
    if terminal:
        return [f"job progress: {status.completed_tasks} out of {total} complete", active]
    lines = [active]
    if first and service.spec.WhichOneof("mode") == "replicated_job":
        lines += [f"{slot}/{total}:  " for slot in range(1, total + 1)]
    return lines


def _total(service, status) -> int:
    if service.spec.WhichOneof("mode") == "replicated_job":
        return service.spec.replicated_job.total_completions
    return status.desired_tasks + status.completed_tasks


def wait_for_job(daemon, service_id: str, quiet: bool = False, stream=None) -> None:
    out = stream or sys.stdout
    terminal = out.isatty()
    shown = None
    first = True
    try:
        while True:
            service, status = _status(daemon, service_id)
            if service is None:
                return
            lines = job_lines(service, status, first, terminal)
            first = False
            if not quiet and (lines != shown or not terminal):
                out.write("\n".join(lines) + "\n")
                out.flush()
                shown = lines
            total = _total(service, status)
            if total and status.completed_tasks >= total:
                if not quiet:
                    out.write("job complete\n")
                return
            time.sleep(POLL_INTERVAL)
    except KeyboardInterrupt:
        out.write("Operation continuing in background.\n")
