"""`swarmpy stack ...`: deploy, ls, ps, services, rm, config -- compose files run as prefixed, labelled objects.

A stack is nothing stored of its own: it is the services, networks, secrets and configs labelled
`com.docker.stack.namespace=NAME` (docker's model). `deploy` creates what is missing and updates the
services whose spec changed (an unchanged service is left alone, so its tasks do not roll); `--prune`
removes the stack's services the file no longer has; `rm` removes everything labelled with the stack.
"""

from __future__ import annotations

import sys

import click

from swarmpy.cli.errors import CliError, FlagError

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


@stack.command("deploy")
@click.option("-c", "--compose-file", "compose_files", multiple=True, required=True, help="Path to a Compose file, or \"-\" to read from stdin.")
@click.option("--prune", is_flag=True, help="Prune services that are no longer referenced.")
@click.option("--resolve-image", default="never", show_default=True,
              help="Query the registry to resolve image digest and supported platforms (\"always\", \"changed\", \"never\").")
@click.argument("name", metavar="STACK")
@click.pass_obj
def deploy(state, compose_files, prune, resolve_image, name) -> None:
    """Deploy a new stack or update an existing stack."""
    from swarmpy.api import control_pb2
    from swarmpy.cli import secret_refs
    from swarmpy.cli.compose_convert import convert
    from swarmpy.cli.compose_load import ComposeError

    if resolve_image not in ("always", "changed", "never"):
        raise FlagError(f'invalid argument "{resolve_image}" for "--resolve-image" flag: must be one of always, changed, never')
    if resolve_image != "never":
        raise FlagError(f'invalid argument "{resolve_image}" for "--resolve-image" flag: swarmpy has no registry to'
                        " resolve images against; only \"never\" is supported")
    model = _load(compose_files)
    try:
        built = convert(name, model)
    except ComposeError as exc:
        raise CliError(str(exc)) from None
    for warning in built.warnings:
        state.err(warning)
    daemon = state.daemon
    network_ids = _ensure_networks(state, built.networks)
    _ensure_objects(state, "secret", built.secrets)
    _ensure_objects(state, "config", built.configs)
    current = {s.spec.annotations.name: s for s in _stack_services(daemon, name).services}
    if prune:
        for service_name, service in sorted(current.items()):
            if service_name not in built.services:
                state.out(f"Removing service {service_name}")
                daemon.call(daemon.control.RemoveService, control_pb2.RemoveServiceRequest(ref=service.id))
    for service_name, spec in built.services.items():
        secret_refs.resolve(daemon, spec)
        for attachment in spec.task.networks:  # by ID, as the daemon stores them (so unchanged compares equal)
            attachment.target = network_ids[attachment.target]
        existing = current.get(service_name)
        if existing is None:
            state.out(f"Creating service {service_name}")
            daemon.call(daemon.control.CreateService, control_pb2.CreateServiceRequest(spec=spec))
            continue
        state.out(f"Updating service {service_name} (id: {existing.id})")
        if existing.spec.SerializeToString(deterministic=True) == spec.SerializeToString(deterministic=True):
            continue  # nothing changed: its tasks keep running
        daemon.call(daemon.control.UpdateService, control_pb2.UpdateServiceRequest(
            ref=existing.id, version=existing.meta.version, spec=spec))


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


def _require_stack(daemon, name: str):
    response = _stack_services(daemon, name)
    if not response.services:
        raise CliError(f"Nothing found in stack: {name}")
    return response


@stack.command("services")
@click.option("-q", "--quiet", is_flag=True, help="Only display IDs.")
@click.option("--format", "output_format", help="Format output: \"json\", or the table (default).")
@click.argument("name", metavar="STACK")
@click.pass_obj
def stack_services(state, quiet, output_format, name) -> None:
    """List the services in the stack."""
    from swarmpy.cli.listings import SERVICE_COLUMNS, service_rows
    from swarmpy.cli.service_commands import _print_rows

    rows = service_rows(_require_stack(state.daemon, name))
    _print_rows(state, SERVICE_COLUMNS, rows, output_format, "ID", quiet)


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

    parsed = parse_task_filters(filters)
    daemon = state.daemon
    services = _require_stack(daemon, name).services
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


@stack.command("rm")
@click.argument("names", metavar="STACK", nargs=-1, required=True)
@click.pass_obj
def remove(state, names) -> None:
    """Remove one or more stacks."""
    from swarmpy.api import control_pb2

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
            errors.append(f"Nothing found in stack: {name}")
            continue
        for service in sorted(services, key=lambda s: s.spec.annotations.name):
            state.out(f"Removing service {service.spec.annotations.name}")
            daemon.call(daemon.control.RemoveService, control_pb2.RemoveServiceRequest(ref=service.id))
        for secret in secrets:
            state.out(f"Removing secret {secret.spec.annotations.name}")
            daemon.call(daemon.control.RemoveSecret, control_pb2.RemoveSecretRequest(ref=secret.id))
        for config in configs:
            state.out(f"Removing config {config.spec.annotations.name}")
            daemon.call(daemon.control.RemoveConfig, control_pb2.RemoveConfigRequest(ref=config.id))
        for network in sorted(networks, key=lambda n: n.spec.annotations.name):
            state.out(f"Removing network {network.spec.annotations.name}")
            _remove_network_once_free(daemon, network.id)
    if errors:
        raise CliError("\n".join(errors))
