"""The flags `service create` and `service update` share, declared once as click decorators.

Every option defaults to None (or an empty tuple) so the spec builder can tell "not given" from a
value, as docker's `flags.Changed` does."""

from __future__ import annotations

import click

from swarmpy.cli import flag_types
from swarmpy.cli.value_parsers import parse_port

PORT = flag_types.ParsedBy("port", parse_port)
RESTART_CONDITION = flag_types.choice("none", "on-failure", "any")
FAILURE_ACTION = flag_types.choice("pause", "continue", "rollback")
ROLLBACK_FAILURE_ACTION = flag_types.choice("pause", "continue")
UPDATE_ORDER = flag_types.choice("start-first", "stop-first")


def add_rm_options(name: str, add_help: str, rm_help: str, *, add_type=None, rm_type=None) -> list:
    """`service update`'s pair for a list-valued setting: --NAME-add and --NAME-rm, both repeatable."""
    return [click.option(f"--{name}-add", type=add_type, multiple=True, help=add_help),
            click.option(f"--{name}-rm", type=rm_type, multiple=True, help=rm_help)]


def _apply(decorators, command):
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def _update_config_options(section: str, done: str, do: str):
    actions = '"pause", "continue", "rollback"' if section == "update" else '"pause", "continue"'
    return [
        click.option(f"--{section}-parallelism", type=flag_types.UINT, help=f"Maximum number of tasks {done} simultaneously (0 to {do} all at once)."),
        click.option(f"--{section}-delay", type=flag_types.DURATION, help=f"Delay between {section}s (ns|us|ms|s|m|h)."),
        click.option(f"--{section}-monitor", type=flag_types.DURATION, help=f"Duration after each task {section} to monitor for failure (ns|us|ms|s|m|h)."),
        click.option(f"--{section}-failure-action", type=FAILURE_ACTION if section == "update" else ROLLBACK_FAILURE_ACTION,
                     help=f"Action on {section} failure ({actions})."),
        click.option(f"--{section}-max-failure-ratio", type=flag_types.RATIO, help=f"Failure rate to tolerate during a {section}."),
        click.option(f"--{section}-order", type=UPDATE_ORDER, help=f"{section.capitalize()} order (\"start-first\", \"stop-first\")."),
    ]


def _health_options():
    return [
        click.option("--health-cmd", help="Command to run to check health."),
        click.option("--health-interval", type=flag_types.HEALTH_DURATION, help="Time between running the check (ms|s|m|h) (default 0s)."),
        click.option("--health-timeout", type=flag_types.HEALTH_DURATION, help="Maximum time to allow one check to run (ms|s|m|h) (default 0s)."),
        click.option("--health-retries", type=flag_types.HEALTH_RETRIES, help="Consecutive failures needed to report unhealthy."),
        click.option("--health-start-period", type=flag_types.HEALTH_DURATION,
                     help="Start period for the container to initialize before counting retries towards unstable (ms|s|m|h) (default 0s)."),
        click.option("--no-healthcheck", is_flag=True, default=None, help="Disable any container-specified HEALTHCHECK."),
    ]


def common_service_options(command):
    """Flags with the same name and meaning on create and update."""
    return _apply([
        click.option("--replicas", type=flag_types.UINT, help="Number of tasks."),
        click.option("--replicas-max-per-node", type=flag_types.UINT, help="Maximum number of tasks per node (default 0 = unlimited)."),
        click.option("--limit-cpu", type=flag_types.NANO_CPUS, help="Limit CPUs."),
        click.option("--limit-memory", type=flag_types.MEMORY_BYTES, help="Limit Memory."),
        click.option("--reserve-cpu", type=flag_types.NANO_CPUS, help="Reserve CPUs."),
        click.option("--reserve-memory", type=flag_types.MEMORY_BYTES, help="Reserve Memory."),
        click.option("--restart-condition", type=RESTART_CONDITION, help="Restart when condition is met (\"none\", \"on-failure\", \"any\")."),
        click.option("--restart-delay", type=flag_types.DURATION, help="Delay between restart attempts (ns|us|ms|s|m|h)."),
        click.option("--restart-max-attempts", type=flag_types.UINT, help="Maximum number of restarts before giving up."),
        click.option("--restart-window", type=flag_types.DURATION, help="Window used to evaluate the restart policy (ns|us|ms|s|m|h)."),
        click.option("--stop-grace-period", type=flag_types.DURATION, help="Time to wait before force killing a container (ns|us|ms|s|m|h)."),
        *_health_options(),
        *_update_config_options("update", "updated", "update"),
        *_update_config_options("rollback", "rolled back", "roll back"),
        click.option("-w", "--workdir", help="Working directory inside the container."),
        click.option("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])."),
        click.option("--hostname", help="Container hostname."),
        click.option("--entrypoint", help="Overwrite the default ENTRYPOINT of the image."),
        click.option("-d", "--detach", is_flag=True, help="Exit immediately instead of waiting for the service to converge."),
        click.option("-q", "--quiet", is_flag=True, help="Suppress progress output."),
        *container_options(),
    ], command)


def container_options():
    """Container flags with the same name on create and update (issue 10). Boolean ones default to
    None so update can tell "not given" from `--init=false` (see flag_types.GoFlagsCommand)."""
    return [
        click.option("--max-concurrent", type=flag_types.UINT, help="Number of job tasks to run concurrently (default equal to --replicas)."),
        click.option("--cap-add", multiple=True, help="Add Linux capabilities."),
        click.option("--cap-drop", multiple=True, help="Drop Linux capabilities."),
        click.option("--init", is_flag=True, default=None, help="Use an init inside each service container to forward signals and reap processes."),
        click.option("--read-only", is_flag=True, default=None, help="Mount the container's root filesystem as read only."),
        click.option("-t", "--tty", is_flag=True, default=None, help="Allocate a pseudo-TTY."),
        click.option("--stop-signal", help="Signal to stop the container."),
        click.option("--limit-pids", type=flag_types.INT64, help="Limit maximum number of processes (default 0 = unlimited)."),
        click.option("--log-driver", help="Logging driver for service."),
        click.option("--log-opt", multiple=True, help="Logging driver options."),
        click.option("--isolation", help="Service container isolation mode."),
        click.option("--credential-spec", help="Credential spec for managed service account (Windows only)."),
        click.option("--no-resolve-image", is_flag=True, default=None,
                     help="Do not query the registry to resolve image digest and supported platforms (images are never pulled here)."),
        click.option("--with-registry-auth", is_flag=True, default=None,
                     help="Send registry authentication details to swarm agents (accepted; there is no registry)."),
    ]


def create_only_options(command):
    return _apply([
        click.option("--name", help="Service name."),
        click.option("--mode", type=flag_types.choice("replicated", "global", "replicated-job", "global-job"),
                     default="replicated", show_default=True,
                     help="Service mode (\"replicated\", \"global\", \"replicated-job\", \"global-job\")."),
        click.option("-e", "--env", multiple=True, help="Set environment variables."),
        click.option("--env-file", multiple=True, help="Read in a file of environment variables."),
        click.option("-l", "--label", multiple=True, help="Service labels."),
        click.option("--container-label", multiple=True, help="Container labels."),
        click.option("--constraint", multiple=True, help="Placement constraints."),
        click.option("--placement-pref", multiple=True, help="Add a placement preference."),
        click.option("-p", "--publish", type=PORT, multiple=True, help="Publish a port as a node port."),
        click.option("--mount", multiple=True, help="Attach a filesystem mount to the service."),
        click.option("--sysctl", multiple=True, help="Sysctl options."),
        click.option("--ulimit", multiple=True, help="Ulimit options."),
        click.option("--group", multiple=True, help="Set one or more supplementary user groups for the container."),
        click.option("--generic-resource", multiple=True, help="User defined resources."),
    ], command)


def update_only_options(command):
    return _apply([
        click.option("--image", help="Service image tag."),
        click.option("--args", help="Service command args."),
        *add_rm_options("env", "Add or update an environment variable.", "Remove an environment variable."),
        *add_rm_options("label", "Add or update a service label.", "Remove a label by its key."),
        *add_rm_options("container-label", "Add or update a container label.", "Remove a container label by its key."),
        *add_rm_options("constraint", "Add or update a placement constraint.", "Remove a constraint."),
        *add_rm_options("publish", "Add or update a published port.", "Remove a published port by its target port.",
                        add_type=PORT, rm_type=PORT),
        *add_rm_options("mount", "Add or update a mount on a service.", "Remove a mount by its target path."),
        *add_rm_options("sysctl", "Add or update a Sysctl option.", "Remove a Sysctl option."),
        *add_rm_options("ulimit", "Add or update a ulimit option.", "Remove a ulimit option."),
        *add_rm_options("group", "Add an additional supplementary user group to the container.",
                        "Remove a previously added supplementary user group from the container."),
        *add_rm_options("generic-resource", "Add a Generic resource.", "Remove a Generic resource."),
        *add_rm_options("placement-pref", "Add a placement preference.", "Remove a placement preference."),
        click.option("--force", is_flag=True, help="Force update even if no changes require it."),
        click.option("--rollback", is_flag=True, help="Rollback to previous specification."),
    ], command)
