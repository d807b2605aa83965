"""`--mode replicated-job|global-job` and `--max-concurrent` on `service create`/`update`.

A replicated job runs `--replicas` tasks to completion (docker's TotalCompletions, default 1), at most
`--max-concurrent` at once (default: all of them); a global job one task on every eligible node. Jobs
restart only failed tasks (their restart condition defaults to on-failure, as docker sets it) and take
no update or rollback configuration. Any `service update` of a job, `--force` included, runs it again.
"""

from __future__ import annotations

from typing import Any, Mapping

from swarmpy.api import objects_pb2
from swarmpy.cli.container_flags import given
from swarmpy.cli.errors import FlagError

JOB_MODES = ("replicated-job", "global-job")
_UPDATE_FLAGS = tuple(f"{section}_{field}" for section in ("update", "rollback")
                      for field in ("parallelism", "delay", "monitor", "failure_action", "max_failure_ratio", "order"))


def check_job_flags(mode: str, options: Mapping[str, Any]) -> None:
    if given(options, "max_concurrent") and mode != "replicated-job":
        raise FlagError("max-concurrent can only be used with replicated-job mode")
    if mode in JOB_MODES:
        used = [name for name in _UPDATE_FLAGS if given(options, name)]
        if used:
            flag = "--" + used[0].replace("_", "-")
            raise FlagError(f"{flag}: update and rollback configuration is not supported for jobs")


def _check_concurrency(job: objects_pb2.ReplicatedJob) -> None:
    if job.max_concurrent > job.total_completions:
        raise FlagError(f'invalid argument "{job.max_concurrent}" for "--max-concurrent" flag: the maximum number '
                        f"of concurrent tasks cannot be larger than the number of replicas ({job.total_completions})")


def apply_job_mode(spec: objects_pb2.ServiceSpec, mode: str, options: Mapping[str, Any]) -> None:
    """Set a new spec's job mode and its defaults."""
    if mode == "replicated-job":
        job = spec.replicated_job
        job.total_completions = options["replicas"] if given(options, "replicas") else 1
        job.max_concurrent = options["max_concurrent"] if given(options, "max_concurrent") else job.total_completions
        _check_concurrency(job)
    else:
        spec.global_job.SetInParent()
    if not spec.task.HasField("restart"):
        spec.task.restart.condition = objects_pb2.RestartPolicy.ON_FAILURE


def update_job(spec: objects_pb2.ServiceSpec, options: Mapping[str, Any]) -> bool:
    """`--replicas`/`--max-concurrent` on a job; returns whether the spec is a job at all."""
    mode = spec.WhichOneof("mode")
    if mode not in ("replicated_job", "global_job"):
        if given(options, "max_concurrent"):
            raise FlagError("max-concurrent can only be used with replicated-job mode")
        return False
    check_job_flags(mode.replace("_", "-"), {k: v for k, v in options.items() if k != "max_concurrent"})
    if mode == "global_job":
        if given(options, "replicas"):
            raise FlagError("replicas can only be used with replicated or replicated-job mode")
        if given(options, "max_concurrent"):
            raise FlagError("max-concurrent can only be used with replicated-job mode")
        return True
    job = spec.replicated_job
    if given(options, "replicas"):
        job.total_completions = options["replicas"]
    if given(options, "max_concurrent"):
        job.max_concurrent = options["max_concurrent"]
    _check_concurrency(job)
    return True
