"""`--secret`/`--config` on `service create`, `--secret-add/-rm`/`--config-add/-rm` on `service update`.

The value syntax is docker's: a bare name (`--secret db_pw`: target the same name), or comma-separated
`source=NAME,target=FILE,uid=U,gid=G,mode=0400` (`src` for source). Parsing is pure and happens in the
flag type, before any connection; the names are then resolved to IDs with one list call per kind
(`resolve`), as docker's CLI does ("secret not found: NAME").
"""

from __future__ import annotations

import csv
from typing import Any, Mapping

import click

from swarmpy.cli import flag_types
from swarmpy.cli.errors import CliError
from swarmpy.cli.service_options import add_rm_options
from swarmpy.filetargets import DEFAULT_MODE, parse_mode, target_problem

KINDS = ("secret", "config")


def _reference_type(kind: str) -> type:
    from swarmpy.api import objects_pb2

    return objects_pb2.SecretReference if kind == "secret" else objects_pb2.ConfigReference


def parse_reference(kind: str, value: str) -> Any:
    """One flag value -> a SecretReference or ConfigReference (without its ID yet); ValueError if bad."""
    ref = _reference_type(kind)()
    file = ref.file
    file.uid, file.gid, file.mode = "0", "0", DEFAULT_MODE
    fields = next(csv.reader([value])) if value else []
    source = target = ""
    if len(fields) == 1 and "=" not in fields[0]:
        source = target = fields[0]
    else:
        for field in fields:
            key, has_value, text = field.partition("=")
            if not has_value:
                raise ValueError(f"invalid field '{field}' must be a key=value pair")
            key = key.strip().lower()
            if key in ("source", "src"):
                source = text
            elif key == "target":
                target = text
            elif key in ("uid", "gid"):
                if not text.isdigit():
                    raise ValueError(f'invalid {key} specified: "{text}" is not a number')
                setattr(file, key, text)
            elif key == "mode":
                file.mode = parse_mode(text)
            else:
                raise ValueError(f"invalid field in {kind} request: {key}")
    if not source:
        raise ValueError("source is required")
    target = target or source
    problem = target_problem(target)
    if problem is not None:
        raise ValueError(f'invalid target "{target}": {problem}')
    setattr(ref, f"{kind}_name", source)
    file.name = target
    return ref


SECRET_REF = flag_types.ParsedBy("secret", lambda value: parse_reference("secret", value))
CONFIG_REF = flag_types.ParsedBy("config", lambda value: parse_reference("config", value))


def create_options(command):
    command = click.option("--config", "configs", type=CONFIG_REF, multiple=True, help="Specify configurations to expose to the service.")(command)
    return click.option("--secret", "secrets", type=SECRET_REF, multiple=True, help="Specify secrets to expose to the service.")(command)


def update_options(command):
    for decorator in reversed([
        *add_rm_options("secret", "Add or update a secret on a service.", "Remove a secret.", add_type=SECRET_REF),
        *add_rm_options("config", "Add or update a config file on a service.", "Remove a configuration file.",
                        add_type=CONFIG_REF),
    ]):
        command = decorator(command)
    return command


def _references(container: Any, kind: str):
    return container.secrets if kind == "secret" else container.configs


def _set_references(container: Any, kind: str, refs) -> None:
    field = _references(container, kind)
    kept = [_copy(ref) for ref in refs]
    del field[:]
    field.extend(kept)
    names = [ref.file.name for ref in kept]
    for name in names:
        if names.count(name) > 1:
            raise CliError(f"duplicate {kind} target for {name} not allowed")


def _copy(ref):
    copy = type(ref)()
    copy.CopyFrom(ref)
    return copy


def add_to_new_spec(spec: Any, options: Mapping[str, Any]) -> None:
    """`service create --secret/--config`."""
    container = spec.task.container
    _set_references(container, "secret", options.get("secrets") or ())
    _set_references(container, "config", options.get("configs") or ())


def update_spec(spec: Any, options: Mapping[str, Any]) -> None:
    """`service update --secret-add/-rm --config-add/-rm`: removals by name, then additions (an addition
    replaces a reference with the same target)."""
    container = spec.task.container
    for kind in KINDS:
        removed = set(options.get(f"{kind}_rm") or ())
        added = list(options.get(f"{kind}_add") or ())
        if not removed and not added:
            continue
        by_target = {
            ref.file.name: ref
            for ref in _references(container, kind)
            if getattr(ref, f"{kind}_name") not in removed
        }
        for ref in added:
            by_target[ref.file.name] = ref
        _set_references(container, kind, by_target.values())
        if added:
            _check_unique(added, kind)


def _check_unique(added, kind: str) -> None:
    targets = [ref.file.name for ref in added]
    for target in targets:
        if targets.count(target) > 1:
            raise CliError(f"duplicate {kind} target for {target} not allowed")


def resolve(daemon, spec: Any) -> None:
    """Fill in the ID of every reference from the daemon's secrets and configs, by name."""
    container = spec.task.container
    for kind in KINDS:
        refs = _references(container, kind)
        names = sorted({getattr(ref, f"{kind}_name") for ref in refs})
        if not names:
            continue
        from swarmpy.api import control_pb2

        filters = control_pb2.SecretConfigFilters(names=names)
        if kind == "secret":
            found = daemon.call(daemon.control.ListSecrets, control_pb2.ListSecretsRequest(filters=filters)).secrets
        else:
            found = daemon.call(daemon.control.ListConfigs, control_pb2.ListConfigsRequest(filters=filters)).configs
        ids = {obj.spec.annotations.name: obj.id for obj in found}
        for ref in refs:
            name = getattr(ref, f"{kind}_name")
            if name not in ids:
                raise CliError(f"{kind} not found: {name}")
            setattr(ref, f"{kind}_id", ids[name])
    _resolve_credential_spec_config(daemon, container)


def _resolve_credential_spec_config(daemon, container: Any) -> None:
    """--credential-spec config://NAME: the API wants the config's ID (docker's CLI swaps it in too); a
    spec read back from the daemon already holds one, which is kept."""
    credential = container.privileges.credential_spec
    if credential.WhichOneof("source") != "config":
        return
    from swarmpy.api import control_pb2

    wanted = credential.config
    for filters in (control_pb2.SecretConfigFilters(names=[wanted]), control_pb2.SecretConfigFilters(ids=[wanted])):
        found = daemon.call(daemon.control.ListConfigs, control_pb2.ListConfigsRequest(filters=filters)).configs
        match = next((c for c in found if wanted in (c.spec.annotations.name, c.id)), None)
        if match is not None:
            credential.config = match.id
            return
    raise CliError(f"config not found: {wanted}")
