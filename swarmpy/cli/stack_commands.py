"""`swarmpy stack ...`: deploy, ls, ps, services, rm, config -- compose files run as prefixed, labelled objects.

A stack is nothing stored of its own: it is the services, networks, secrets and configs labelled
`com.docker.stack.namespace=NAME` (docker's model). `deploy` creates what is missing and updates the
services whose spec changed (an unchanged service is left alone, so its tasks do not roll); `--prune`
removes the stack's services the file no longer has; `rm` removes everything labelled with the stack.
"""

from __future__ import annotations

import sys

import click

from swarmpy.cli import flag_types
from swarmpy.cli.errors import CliError

NAMESPACE_LABEL = "com.docker.stack.namespace"


@click.group()
def stack() -> None:
    """Manage swarm stacks."""


def _load(compose_files):
    from swarmpy.cli.compose_load import ComposeError, load

    try:
        return load(list(compose_files))
    except ComposeError as exc:
        raise CliError(str(exc)) from None


def _stack_services(daemon, name: str):
    from swarmpy.api import control_pb2

    request = control_pb2.ListServicesRequest(filters=control_pb2.ListServicesRequest.Filters(labels={NAMESPACE_LABEL: name}))
    return daemon.call(daemon.control.ListServices, request)


def _stack_objects(daemon, kind: str, name: str):
    from swarmpy.api import control_pb2

    filters = control_pb2.SecretConfigFilters(labels={NAMESPACE_LABEL: name})
    if kind == "secret":
        return daemon.call(daemon.control.ListSecrets, control_pb2.ListSecretsRequest(filters=filters)).secrets
    return daemon.call(daemon.control.ListConfigs, control_pb2.ListConfigsRequest(filters=filters)).configs


def _ensure_objects(state, kind: str, objects) -> None:
    from swarmpy.api import control_pb2, objects_pb2

    daemon = state.daemon
    for obj in objects:
        filters = control_pb2.SecretConfigFilters(names=[obj.name])
        if kind == "secret":
            existing = daemon.call(daemon.control.ListSecrets, control_pb2.ListSecretsRequest(filters=filters)).secrets
        else:
            existing = daemon.call(daemon.control.ListConfigs, control_pb2.ListConfigsRequest(filters=filters)).configs
        if obj.external:
            if not existing:
                raise CliError(f"{kind} not found: {obj.name}")
            continue
        if existing:
            # Secrets and configs are immutable: a changed file needs a new name (docker's rule too).
            if kind == "config" and existing[0].spec.data != obj.data:
                raise CliError(f"config {obj.name} already exists with other data: configs cannot be changed,"
                               " give the new content another name")
            continue
        spec_type = objects_pb2.SecretSpec if kind == "secret" else objects_pb2.ConfigSpec
        spec = spec_type(data=obj.data, template_driver=obj.template_driver)
        spec.annotations.name = obj.name
        spec.annotations.labels.update(obj.labels)
        state.out(f"Creating {kind} {obj.name}")
        if kind == "secret":
            daemon.call(daemon.control.CreateSecret, control_pb2.CreateSecretRequest(spec=spec))
        else:
            daemon.call(daemon.control.CreateConfig, control_pb2.CreateConfigRequest(spec=spec))


def _networks_named(daemon, name: str):
    from swarmpy.api import control_pb2

    request = control_pb2.ListNetworksRequest(filters=control_pb2.ListNetworksRequest.Filters(names=[name]))
    return [n for n in daemon.call(daemon.control.ListNetworks, request).networks if n.spec.annotations.name == name]


def _ensure_networks(state, networks) -> dict[str, str]:
    """Create the stack's missing networks; the ID of every network it uses, by name."""
    from swarmpy.api import control_pb2

    daemon = state.daemon
    ids = {}
    for network in networks:
        found = _networks_named(daemon, network.name)
        if network.external:
            if not found:
                raise CliError(f"network {network.name!r} is declared as external, but could not be found. You need"
                               " to create a swarm-scoped network before the stack is deployed")
        elif not found:
            state.out(f"Creating network {network.name}")
            created = daemon.call(daemon.control.CreateNetwork, control_pb2.CreateNetworkRequest(spec=network.spec))
            found = [created.network]
        ids[network.name] = found[0].id
    return ids


RESOLVE_IMAGE_CHOICES = ("always", "changed", "never")


def _check_stack_name(name: str) -> None:
    if not name.strip(" \t\n\r\v\f\"'"):
        import json

        raise CliError(f"invalid stack name: {json.dumps(name)}")


def _deployed_spec(state, spec, existing, resolve_image: str):
    """The spec to send for one service, as docker's deployServices makes it: the registry asked (here:
    the local engine, and docker's warning) per --resolve-image; an image the file did not change keeps
    what an earlier query recorded; a forced update's counter is kept so nothing rolls for it."""
    from swarmpy.cli.compose_convert import IMAGE_LABEL
    from swarmpy.cli.image_platform import resolve_image as query

    if existing is None:
        if resolve_image != "never":
            query(spec)  # docker's stack deploy prints no warning for a service it creates
        return spec, None
    unchanged_image = spec.task.container.image == existing.spec.annotations.labels.get(IMAGE_LABEL)
    warning = None
    if resolve_image == "always" or (resolve_image == "changed" and not unchanged_image):
        warning = query(spec)
    elif unchanged_image:
        spec.task.container.image = existing.spec.task.container.image
        spec.task.placement.ClearField("platforms")
        spec.task.placement.platforms.extend(existing.spec.task.placement.platforms)
    spec.task.force_update = existing.spec.task.force_update
    return spec, warning


@stack.command("deploy", cls=flag_types.GoFlagsCommand)
@click.option("-c", "--compose-file", "compose_files", multiple=True, required=True, help="Path to a Compose file, or \"-\" to read from stdin.")
@click.option("-d", "--detach", is_flag=True, default=None,
              help="Exit immediately instead of waiting for the stack services to converge (default true; --detach=false waits).")
@click.option("--prune", is_flag=True, help="Prune services that are no longer referenced.")
@click.option("-q", "--quiet", is_flag=True, help="Suppress progress output.")
@click.option("--resolve-image", default="always", show_default=True,
              help="Query the registry to resolve image digest and supported platforms (\"always\", \"changed\", \"never\").")
@click.argument("name", metavar="STACK")
@click.pass_obj
def deploy(state, compose_files, detach, prune, quiet, resolve_image, name) -> None:
    """Deploy a new stack or update an existing stack."""
    from swarmpy.api import control_pb2
    from swarmpy.cli import secret_refs
    from swarmpy.cli.compose_convert import convert
    from swarmpy.cli.compose_load import ComposeError

    _check_stack_name(name)
    model = _load(compose_files)
    try:
        built = convert(name, model)
    except ComposeError as exc:
        raise CliError(str(exc)) from None
    for warning in built.warnings:
        state.err(warning)
    if resolve_image not in RESOLVE_IMAGE_CHOICES:
        raise CliError(f"Invalid option {resolve_image} for flag --resolve-image")
    if detach is None:
        detach = True
        state.err("Since --detach=false was not specified, tasks will be created in the background.\n"
                  "In a future release, --detach=false will become the default.")
    daemon = state.daemon
    current = {s.spec.annotations.name: s for s in _stack_services(daemon, name).services}
    if prune:  # docker's pruneServices: removeServices, its failures said and passed over
        _remove_all(state, "service", [service for service_name, service in current.items()
                                       if service_name not in built.services])
    network_ids = _ensure_networks(state, built.networks)
    _ensure_objects(state, "secret", built.secrets)
    _ensure_objects(state, "config", built.configs)
    service_ids = []
    for service_name, spec in built.services.items():
        secret_refs.resolve(daemon, spec)
        for attachment in spec.task.networks:  # by ID, as the daemon stores them (so unchanged compares equal)
            attachment.target = network_ids[attachment.target]
        existing = current.get(service_name)
        spec, warning = _deployed_spec(state, spec, existing, resolve_image)
        if existing is None:
            state.out(f"Creating service {service_name}")
            created = daemon.call(daemon.control.CreateService, control_pb2.CreateServiceRequest(spec=spec))
            service_ids.append(created.service.id)
            continue
        state.out(f"Updating service {service_name} (id: {existing.id})")
        if existing.spec.SerializeToString(deterministic=True) != spec.SerializeToString(deterministic=True):
            daemon.call(daemon.control.UpdateService, control_pb2.UpdateServiceRequest(
                ref=existing.id, version=existing.meta.version, spec=spec))
        # (an unchanged spec is not sent: its tasks keep running, as they do when docker sends it)
        if warning:
            state.err(warning)
        service_ids.append(existing.id)
    if not detach:
        _wait_on_services(state, service_ids, quiet)


def _wait_on_services(state, service_ids: list[str], quiet: bool) -> None:
    """docker's waitOnServices: each service's convergence in turn, failures named by service ID at the end."""
    from swarmpy.cli.converge import wait_for_convergence

    failures = []
    for service_id in service_ids:
        try:
            wait_for_convergence(state.daemon, service_id, quiet=quiet)
        except CliError as error:
            failures.append(f"{service_id}: {error.message}")
    if failures:
        raise CliError("\n".join(failures))


@stack.command("config")
@click.option("-c", "--compose-file", "compose_files", multiple=True, required=True, help="Path to a Compose file.")
@click.pass_obj
def show_config(state, compose_files) -> None:
    """Outputs the final config file, after doing merges and interpolations."""
    import yaml

    model = _load(compose_files)
    model.pop("_base_dir", None)
    sys.stdout.write(yaml.safe_dump(model, sort_keys=False, default_flow_style=False))


@stack.command("ls")
@click.option("--format", "output_format", help="Format output: \"json\", or the table (default).")
@click.pass_obj
def list_stacks(state, output_format) -> None:
    """List stacks."""
    from swarmpy.api import control_pb2
    from swarmpy.cli.service_commands import _print_rows
    from swarmpy.cli.table import natural_key

    daemon = state.daemon
    services = daemon.call(daemon.control.ListServices, control_pb2.ListServicesRequest()).services
    counts: dict[str, int] = {}
    for service in services:
        namespace = service.spec.annotations.labels.get(NAMESPACE_LABEL)
        if namespace:
            counts[namespace] = counts.get(namespace, 0) + 1
    rows = [{"Name": n, "Services": str(counts[n])} for n in sorted(counts, key=natural_key)]
    _print_rows(state, ("NAME", "SERVICES"), rows, output_format)




@stack.command("services")
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs.")
@click.option("--format", "output_format", help="Format output: \"json\", or the table (default).")
@click.argument("name", metavar="STACK")
@click.pass_obj
def stack_services(state, quiet, output_format, name) -> None:
    """List the services in the stack."""
    from swarmpy.cli.listings import SERVICE_COLUMNS, service_rows
    from swarmpy.cli.service_commands import _print_rows

    _check_stack_name(name)
    response = _stack_services(state.daemon, name)
    if not response.services:  # docker: a word on stderr, and success
        state.err(f"Nothing found in stack: {name}")
        return
    _print_rows(state, SERVICE_COLUMNS, service_rows(response), output_format, "ID", quiet)


@stack.command("ps")
@click.option("-q", "--quiet", is_flag=True, help="Only display task IDs.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate output.")
@click.option("--format", "output_format", help="Format output: \"json\", or the table (default).")
@click.option("-f", "--filter", "filters", multiple=True, help="Filter output (desired-state, id, name, node).")
@click.argument("name", metavar="STACK")
@click.pass_obj
def stack_tasks(state, quiet, no_trunc, output_format, filters, name) -> None:
    """List the tasks in the stack."""
    from swarmpy.api import control_pb2
    from swarmpy.cli.service_commands import desired_states, parse_task_filters, print_tasks

    _check_stack_name(name)
    parsed = parse_task_filters(filters)
    daemon = state.daemon
    services = _stack_services(daemon, name).services
    if not services:
        raise CliError(f"nothing found in stack: {name}")  # docker's words here, lower case
    request = control_pb2.ListTasksRequest(filters=control_pb2.ListTasksRequest.Filters(
        service_ids=[s.id for s in services], desired_states=desired_states(parsed)))
    tasks = daemon.call(daemon.control.ListTasks, request).tasks
    print_tasks(state, tasks, {s.id: s.spec.annotations.name for s in services}, parsed, quiet, no_trunc, output_format)


NETWORK_FREE_TIMEOUT = 60.0


def _remove_network_once_free(daemon, network_id: str) -> None:
    """The stack's tasks are shutting down when its network goes: wait (bounded) until none holds it."""
    import time

    from swarmpy.api import control_pb2

    deadline = time.monotonic() + NETWORK_FREE_TIMEOUT
    while True:
        try:
            daemon.call(daemon.control.RemoveNetwork, control_pb2.RemoveNetworkRequest(ref=network_id))
            return
        except CliError as error:
            if "in use by task" not in error.message or time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def _remover(daemon, kind: str):
    """How one object of a stack's kind is removed, by ID (a network once no task holds it)."""
    from swarmpy.api import control_pb2

    if kind == "network":
        return lambda ref: _remove_network_once_free(daemon, ref)
    title = kind.title()
    method, request = getattr(daemon.control, f"Remove{title}"), getattr(control_pb2, f"Remove{title}Request")
    return lambda ref: daemon.call(method, request(ref=ref))


def _remove_all(state, kind: str, objects) -> bool:
    """docker's removeServices/Secrets/Configs/Networks (also its prune): each named as it goes, a
    failure said and passed over; True if any failed."""
    remove = _remover(state.daemon, kind)
    failed = False
    for obj in sorted(objects, key=lambda o: o.spec.annotations.name):
        state.out(f"Removing {kind} {obj.spec.annotations.name}")
        try:
            remove(obj.id)
        except CliError as error:
            failed = True
            state.err(f"Failed to remove {kind} {obj.id}: {error.message}")
    return failed


def _wait_for_tasks_gone(daemon, service_ids: list[str]) -> None:
    """--detach=false: until every task of the removed services is past RUNNING (or gone)."""
    import time

    from swarmpy.api import control_pb2, objects_pb2

    request = control_pb2.ListTasksRequest(filters=control_pb2.ListTasksRequest.Filters(service_ids=service_ids))
    while any(task.status.state <= objects_pb2.TaskState.RUNNING
              for task in daemon.call(daemon.control.ListTasks, request).tasks):
        time.sleep(0.5)


@stack.command("rm", cls=flag_types.GoFlagsCommand)
@click.option("-d", "--detach", is_flag=True, default=True, help="Do not wait for stack removal (default true).")
@click.argument("names", metavar="STACK", nargs=-1, required=True)
@click.pass_obj
def remove(state, detach, names) -> None:
    """Remove one or more stacks."""
    from swarmpy.api import control_pb2

    for name in names:
        _check_stack_name(name)
    daemon = state.daemon
    errors = []
    for name in names:
        services = _stack_services(daemon, name).services
        secrets = _stack_objects(daemon, "secret", name)
        configs = _stack_objects(daemon, "config", name)
        request = control_pb2.ListNetworksRequest(
            filters=control_pb2.ListNetworksRequest.Filters(labels={NAMESPACE_LABEL: name}))
        networks = daemon.call(daemon.control.ListNetworks, request).networks
        if not services and not secrets and not configs and not networks:
            state.err(f"Nothing found in stack: {name}")  # docker goes on, and succeeds
            continue
        failed = False
        for kind, objects in (("service", services), ("secret", secrets), ("config", configs), ("network", networks)):
            failed |= _remove_all(state, kind, objects)
        if failed:
            errors.append(f"failed to remove some resources from stack: {name}")
        elif not detach:
            _wait_for_tasks_gone(daemon, [service.id for service in services])
    if errors:
        raise CliError("\n".join(errors))
