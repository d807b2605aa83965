"""`swarmpy service ...`: create, ls, ps, inspect, update, rollback, scale, rm, logs."""

from __future__ import annotations

import click

from swarmpy.cli.errors import CliError
from swarmpy.cli import network_flags, secret_refs
from swarmpy.cli.flag_types import GoFlagsCommand
from swarmpy.cli.service_options import common_service_options, create_only_options, update_only_options

FORMAT_HELP = ("Format output: \"table\" (default), \"json\" (one JSON object per line), \"table TEMPLATE\" "
               "or a Go TEMPLATE (e.g. '{{.ID}}\\t{{.Name}}').")
INSPECT_FORMAT_HELP = "Format output: \"json\" (the default) or a Go TEMPLATE (e.g. '{{.Spec.Name}}')."


@click.group()
def service() -> None:
    """Manage swarm services."""


def _print_rows(state, columns, rows, output_format, quiet_key=None, quiet=False, type_name="*formatter.Context"):
    from swarmpy.cli.table import print_listing

    print_listing(columns, rows, output_format, quiet_key, quiet, type_name=type_name)


def get_service(daemon, ref: str, insert_defaults: bool = False):
    from swarmpy.api import control_pb2

    return daemon.call(daemon.control.GetService,
                       control_pb2.GetServiceRequest(ref=ref, insert_defaults=insert_defaults)).service


def _resolve_image(spec) -> str:
    from swarmpy.cli.image_platform import resolve_image

    return resolve_image(spec)


def _print_warnings(state, warnings) -> None:
    for warning in warnings:
        state.err(warning)


def _wait(state, service_id: str, detach: bool, quiet: bool, is_job: bool = False, label: str | None = None) -> None:
    if detach:
        return
    if is_job:
        from swarmpy.cli.job_progress import wait_for_job

        wait_for_job(state.daemon, service_id, quiet=quiet)
        return
    from swarmpy.cli.converge import wait_for_convergence

    wait_for_convergence(state.daemon, service_id, quiet=quiet, label=label)


# ---------------------------------------------------------------- create


@service.command(cls=GoFlagsCommand, context_settings={"ignore_unknown_options": False, "allow_interspersed_args": False})
@create_only_options
@secret_refs.create_options
@network_flags.create_options
@common_service_options
@click.argument("image")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def create(state, **options) -> None:
    """Create a new service: IMAGE [COMMAND] [ARG...]."""
    from swarmpy.api import control_pb2
    from swarmpy.cli.service_spec import build_service_spec

    spec = build_service_spec(options)  # flag errors surface here, before any connection
    # docker's client asks the registry for the image's digest (here: the local engine for its platform)
    # and, none being reachable, adds its warning to the daemon's (docker's client library does it, after them).
    digest_warnings = [] if options.get("no_resolve_image") else [_resolve_image(spec)]
    secret_refs.add_to_new_spec(spec, options)
    network_flags.add_to_new_spec(spec, options)
    daemon = state.daemon
    secret_refs.resolve(daemon, spec)
    response = daemon.call(daemon.control.CreateService, control_pb2.CreateServiceRequest(spec=spec))
    _print_warnings(state, [*response.warnings, *digest_warnings])
    state.out(response.service.id)
    _wait(state, response.service.id, options["detach"], options["quiet"],
          is_job=spec.WhichOneof("mode") in ("replicated_job", "global_job"))


# ---------------------------------------------------------------- ls / ps / inspect


@service.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs.")
@click.option("--format", "output_format", help=FORMAT_HELP)
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output based on conditions provided (id, name, label).")
@click.pass_obj
def list_services(state, quiet, output_format, filters) -> None:
    """List services."""
    from swarmpy.api import control_pb2
    from swarmpy.cli.listings import SERVICE_COLUMNS, service_rows
    from swarmpy.cli.value_parsers import parse_filters, parse_labels

    try:
        parsed = parse_filters(filters, ("id", "name", "label", "mode"))
    except ValueError as exc:
        raise CliError(str(exc)) from None
    request = control_pb2.ListServicesRequest(filters=control_pb2.ListServicesRequest.Filters(
        ids=parsed.get("id", []), names=parsed.get("name", []), labels=parse_labels(parsed.get("label", []))))
    daemon = state.daemon
    rows = service_rows(daemon.call(daemon.control.ListServices, request))
    if "mode" in parsed:
        rows = [row for row in rows if row["Mode"] in parsed["mode"]]
    _print_rows(state, SERVICE_COLUMNS, rows, output_format, "ID", quiet, type_name="*service.serviceContext")


def node_hostnames(daemon) -> dict[str, str]:
    from swarmpy.api import control_pb2

    nodes = daemon.call(daemon.control.ListNodes, control_pb2.ListNodesRequest()).nodes
    return {node.id: node.description.hostname or node.id for node in nodes}


TASK_FILTERS = ("desired-state", "id", "name", "node")
NODE_TASK_FILTERS = ("desired-state", "id", "label", "name")  # docker's node ps set


def print_tasks(state, tasks, service_names, filters, quiet, no_trunc, output_format, no_resolve=False) -> None:
    """The body `service ps` and `node ps` share. `no_resolve`: IDs where names would be (docker's
    --no-resolve): the task's service part and its node."""
    import time

    from swarmpy.cli.task_list import TASK_COLUMNS, task_rows

    daemon = state.daemon
    hostnames = node_hostnames(daemon)
    if no_resolve:
        hostnames = {node_id: node_id for node_id in hostnames}
        service_names = {service_id: service_id for service_id in service_names}
    if "label" in filters:
        tasks = [t for t in tasks if _task_labels_match(t, filters["label"])]
    rows = task_rows(tasks, service_names, hostnames, time.time_ns(), truncate=not no_trunc)
    if "name" in filters:
        rows = [r for r in rows if any(r["Name"].lstrip(" \\_").startswith(n) for n in filters["name"])]
    if "id" in filters:
        rows = [r for r in rows if any(task_id_prefix(r["ID"], i) for i in filters["id"])]
    if "node" in filters:
        wanted = set(filters["node"])
        rows = [r for r in rows if r["Node"] in wanted or any(i.startswith(w) for w in wanted
                                                               for i, h in hostnames.items() if h == r["Node"])]
    _print_rows(state, TASK_COLUMNS, rows, output_format, "ID", quiet, type_name="*task.taskContext")


def _task_labels_match(task, wanted) -> bool:
    """`label=key` / `label=key=value` against the task's labels and its service's (docker's node ps)."""
    labels = {**task.service_annotations.labels, **task.annotations.labels}
    for item in wanted:
        key, eq, value = item.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


def task_id_prefix(shown_id: str, wanted: str) -> bool:
    return shown_id.startswith(wanted) or wanted.startswith(shown_id)


def desired_states(filters) -> list[int]:
    from swarmpy.api import objects_pb2

    states = []
    for word in filters.get("desired-state", []):
        if word not in ("running", "shutdown", "accepted"):
            raise CliError(f"Invalid desired-state filter value: {word!r}")
        states.append(objects_pb2.TaskState.Value(word.upper()))
    return states


def parse_task_filters(filters, allowed=TASK_FILTERS):
    from swarmpy.cli.value_parsers import parse_filters

    try:
        return parse_filters(filters, allowed)
    except ValueError as exc:
        raise CliError(str(exc)) from None


@service.command("ps")
@click.option("-q", "--quiet", is_flag=True, help="Only display task IDs.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output.")
@click.option("--format", "output_format", help=FORMAT_HELP)
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output (desired-state, id, name, node).")
@click.option("--no-resolve", is_flag=True, help="Do not map IDs to Names.")
@click.argument("services", nargs=-1, required=True)
@click.pass_obj
def list_service_tasks(state, quiet, no_trunc, output_format, filters, no_resolve, services) -> None:
    """List the tasks of one or more services."""
    from swarmpy.api import control_pb2

    parsed = parse_task_filters(filters)
    daemon = state.daemon
    found = [get_service(daemon, ref) for ref in services]
    request = control_pb2.ListTasksRequest(filters=control_pb2.ListTasksRequest.Filters(
        service_ids=[s.id for s in found], desired_states=desired_states(parsed)))
    tasks = daemon.call(daemon.control.ListTasks, request).tasks
    names = {s.id: s.spec.annotations.name for s in found}
    print_tasks(state, tasks, names, parsed, quiet, no_trunc, output_format, no_resolve)


@service.command("inspect")
@click.option("--pretty", is_flag=True, help="Print the information in a human friendly format.")
@click.option("-f", "--format", "output_format", help=INSPECT_FORMAT_HELP)
@click.argument("services", nargs=-1, required=True)
@click.pass_obj
def inspect_services(state, pretty, output_format, services) -> None:
    """Display detailed information on one or more services."""
    from swarmpy.engineapi.convert import to_json as convert
    from swarmpy.cli.inspect_output import print_inspected
    from swarmpy.cli.pretty import pretty_service

    print_inspected(
        state, services, lambda ref: get_service(state.daemon, ref, insert_defaults=True), convert.service, pretty_service,
        pretty=pretty, output_format=output_format, type_name="swarm.Service",
    )


# ---------------------------------------------------------------- update / rollback / scale


def _send_update(state, ref: str, read_service, spec, rollback: bool = False):
    """UpdateService with the version read; ABORTED means someone wrote in between."""
    import grpc

    from swarmpy.api import control_pb2
    from swarmpy.cli.connection import error_from_rpc

    daemon = state.daemon
    request = control_pb2.UpdateServiceRequest(
        ref=read_service.id, version=read_service.meta.version, spec=spec,
        rollback=control_pb2.UpdateServiceRequest.PREVIOUS if rollback else control_pb2.UpdateServiceRequest.NONE)
    try:
        return daemon.control.UpdateService(request, timeout=daemon.timeout)
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.ABORTED:
            raise CliError(
                f"Error response from daemon: service {ref} was changed by someone else while this command "
                f"was running ({error.details()}); run the command again") from None
        raise error_from_rpc(error, daemon.host) from None


@service.command(cls=GoFlagsCommand)
@update_only_options
@secret_refs.update_options
@network_flags.update_options
@common_service_options
@click.argument("service_ref", metavar="SERVICE")
@click.pass_obj
def update(state, service_ref, **options) -> None:
    """Update a service."""
    from swarmpy.cli.service_spec import apply_service_update

    current = get_service(state.daemon, service_ref)
    digest_warnings: list[str] = []
    if options["rollback"]:
        response = _send_update(state, service_ref, current, current.spec, rollback=True)
    else:
        spec = apply_service_update(current.spec, options)
        if options.get("image") and not options.get("no_resolve_image"):
            digest_warnings.append(_resolve_image(spec))
        secret_refs.update_spec(spec, options)
        secret_refs.resolve(state.daemon, spec)
        network_flags.update_spec(state.daemon, spec, options)
        response = _send_update(state, service_ref, current, spec)
    _print_warnings(state, [*response.warnings, *digest_warnings])
    state.out(service_ref)
    _wait(state, current.id, options["detach"], options["quiet"],
          is_job=current.spec.WhichOneof("mode") in ("replicated_job", "global_job"), label=service_ref)


@service.command()
@click.option("-d", "--detach", is_flag=True, help="Exit immediately instead of waiting for the service to converge.")
@click.option("-q", "--quiet", is_flag=True, help="Suppress progress output.")
@click.argument("service_ref", metavar="SERVICE")
@click.pass_obj
def rollback(state, detach, quiet, service_ref) -> None:
    """Revert changes to a service's configuration."""
    current = get_service(state.daemon, service_ref)
    response = _send_update(state, service_ref, current, current.spec, rollback=True)
    _print_warnings(state, response.warnings)
    state.out(service_ref)
    _wait(state, current.id, detach, quiet, label=service_ref)


@service.command()
@click.option("-d", "--detach", is_flag=True, help="Exit immediately instead of waiting for the service to converge.")
@click.argument("specifiers", nargs=-1, required=True, metavar="SERVICE=REPLICAS...")
@click.pass_obj
def scale(state, detach, specifiers) -> None:
    """Scale one or multiple replicated services."""
    from swarmpy.cli.value_parsers import parse_scale_spec

    try:
        wanted = [parse_scale_spec(spec) for spec in specifiers]
    except ValueError as exc:
        raise CliError(str(exc)) from None
    errors, scaled = [], []
    for name, replicas in wanted:
        try:
            current = get_service(state.daemon, name)
            mode = current.spec.WhichOneof("mode")
            if mode not in ("replicated", "replicated_job"):
                raise CliError(f"{name}: scale can only be used with replicated or replicated-job mode")
            spec = type(current.spec)()
            spec.CopyFrom(current.spec)
            if mode == "replicated_job":
                spec.replicated_job.total_completions = replicas  # docker: a job's replicas are its completions
            else:
                spec.replicated.replicas = replicas
            response = _send_update(state, name, current, spec)
        except CliError as error:
            errors.append(error.message)
            continue
        _print_warnings(state, response.warnings)
        state.out(f"{name} scaled to {replicas}")
        scaled.append((current.id, name, mode == "replicated_job"))
    if not detach:
        for service_id, name, is_job in scaled:
            _wait(state, service_id, False, False, is_job=is_job, label=name)
    if errors:
        raise CliError("\n".join(errors))


@service.command("rm")
@click.argument("services", nargs=-1, required=True)
@click.pass_obj
def remove_services(state, services) -> None:
    """Remove one or more services."""
    import grpc

    from swarmpy.api import control_pb2
    from swarmpy.cli.connection import DaemonUnreachable, error_from_rpc

    daemon = state.daemon
    errors = []
    for ref in services:
        try:
            daemon.control.RemoveService(control_pb2.RemoveServiceRequest(ref=ref), timeout=daemon.timeout)
        except grpc.RpcError as error:
            failure = error_from_rpc(error, daemon.host)
            if isinstance(failure, DaemonUnreachable):
                raise failure from None
            errors.append(f"Error: No such service: {ref}" if error.code() == grpc.StatusCode.NOT_FOUND else failure.message)
            continue
        state.out(ref)
    if errors:
        raise CliError("\n".join(errors))


# ---------------------------------------------------------------- logs


@service.command()
@click.option("-f", "--follow", is_flag=True, help="Follow log output.")
@click.option("-n", "--tail", default="all", show_default=True, help="Number of lines to show from the end of the logs.")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps.")
@click.option("--no-task-ids", is_flag=True, help="Do not include task IDs in output.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output.")
@click.option("--raw", is_flag=True, help="Do not neatly format logs.")
@click.option("--since", help="Show logs since timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes).")
@click.option("--no-resolve", is_flag=True, help="Do not map IDs to Names in output.")
@click.option("--details", is_flag=True, help="Show extra details provided to logs.")
@click.argument("ref", metavar="SERVICE|TASK")
@click.pass_obj
def logs(state, follow, tail, timestamps, no_task_ids, no_trunc, raw, since, no_resolve, details, ref) -> None:
    """Fetch the logs of a service or task."""
    import time

    from swarmpy.cli.errors import invalid_flag_value
    from swarmpy.cli.service_logs import LogOptions, parse_since, print_logs

    since_ns = 0
    if since:
        try:
            since_ns = parse_since(since, time.time_ns())
        except ValueError as exc:
            raise invalid_flag_value(since, "--since", str(exc)) from None

    if tail == "all":
        tail_lines = -1
    else:
        try:
            tail_lines = int(tail)
        except ValueError:
            from swarmpy.cli.errors import invalid_flag_value

            raise invalid_flag_value(tail, "--tail", f'strconv.Atoi: parsing "{tail}": invalid syntax', "-n") from None
    print_logs(state, ref, LogOptions(follow=follow, tail=tail_lines, timestamps=timestamps,
                                      task_ids=not no_task_ids, truncate=not no_trunc, raw=raw,
                                      since_ns=since_ns, resolve=not no_resolve, details=details))
