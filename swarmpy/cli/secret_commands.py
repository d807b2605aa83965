"""`swarmpy secret ...` and `swarmpy config ...`: create, ls, inspect, rm, with docker's flags and output.

The two groups are one set of commands built twice (`_object_group`): secrets and configs differ only
in a few words, in the DRIVER column secrets have, and in their data, which a secret never shows (the
daemon does not even return it) while a config's inspect carries it, base64 in JSON, as docker does.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import click

from swarmpy.cli.errors import CliError, FlagError, remove_each

FORMAT_HELP = ("Format output: \"table\" (default), \"json\" (one JSON object per line), \"table TEMPLATE\" or a "
               "Go TEMPLATE over {{.ID}} {{.Name}} {{.Driver}} (secrets) {{.CreatedAt}} {{.UpdatedAt}} {{.Labels}} {{.Label \"k\"}}.")


@dataclass(frozen=True)
class _Kind:
    name: str  # "secret" | "config"
    title: str
    columns: tuple[str, ...]

    def rpc(self, daemon, verb: str):
        plural = "s" if verb == "List" else ""
        return getattr(daemon.control, f"{verb}{self.title}{plural}")


SECRET = _Kind("secret", "Secret", ("ID", "NAME", "DRIVER", "CREATED", "UPDATED"))
CONFIG = _Kind("config", "Config", ("ID", "NAME", "CREATED", "UPDATED"))


def _read_data(kind: "_Kind", path: str) -> bytes:
    """The file's (or stdin's) bytes, refused as docker's CLI does when unreadable or empty; read up to
    twice the daemon's limit, so the daemon still names the size of one too large."""
    from swarmpy.filetargets import MAX_DATA_BYTES

    where = "STDIN" if path == "-" else path
    try:
        if path == "-":
            data = sys.stdin.buffer.read(2 * MAX_DATA_BYTES[kind.name])
        else:
            with open(path, "rb") as source:
                data = source.read(2 * MAX_DATA_BYTES[kind.name])
    except OSError as exc:
        reason = f"open {path}: {(exc.strerror or str(exc)).lower()}" if path != "-" else str(exc)
        problem = f"error reading from {where}: {reason}"
    else:
        if data:
            return data
        problem = f"error reading from {where}: data is empty"
    if kind is CONFIG:  # docker's config create wraps the same reason once more (the path as Go's %q)
        import json

        problem = f"Error reading content from {json.dumps(path)}: {problem}"
    raise CliError(problem)


def _spec(kind: _Kind, name: str, data: bytes, labels, template_driver: str | None):
    from swarmpy.api import objects_pb2
    from swarmpy.cli.value_parsers import parse_labels

    spec = (objects_pb2.SecretSpec if kind is SECRET else objects_pb2.ConfigSpec)(data=data)
    spec.annotations.name = name
    try:
        spec.annotations.labels.update(parse_labels(list(labels)))
    except ValueError as exc:
        raise FlagError(f"invalid argument for \"-l, --label\" flag: {exc}") from None
    if template_driver:
        spec.template_driver = template_driver
    return spec


def as_json(kind: _Kind, obj) -> dict:
    from swarmpy.engineapi.convert.to_json import config, secret

    return config(obj) if kind is CONFIG else secret(obj)


def as_pretty(kind: _Kind, obj) -> str:
    """docker's inspect --pretty templates (a config's with tabs, a secret's with spaces); times through
    docker's PrettyPrint, which lower-cases all but the first letter ("+0000 utc")."""
    from swarmpy.cli.pretty import go_time_string

    name_gap, time_gap = ("\t\t\t", "            \t") if kind is CONFIG else ("              ", "        ")
    lines = [f"ID:{name_gap}{obj.id}", f"Name:{name_gap}{obj.spec.annotations.name}"]
    if obj.spec.annotations.labels:
        lines.append("Labels:")
        for key, value in sorted(obj.spec.annotations.labels.items()):
            lines.append(f" - {key}={value}" if value else f" - {key}")
    if kind is SECRET:
        lines.append("Driver:            ")
    for title, stamp in (("Created at:", obj.meta.created_at), ("Updated at:", obj.meta.updated_at)):
        lines.append(f"{title}{time_gap}{go_time_string(stamp).lower()}")
    if kind is CONFIG:
        lines.append("Data:")
        lines.append(obj.spec.data.decode("utf-8", errors="replace"))
    return "\n".join(lines)


def _ago(unix_nanos: int) -> str:
    from swarmpy.units import human_duration

    return human_duration(max(0, time.time_ns() - unix_nanos)) + " ago"


def _rows(kind: _Kind, objects) -> list[dict[str, str]]:
    from swarmpy.cli.table import natural_key

    rows = []
    for obj in sorted(objects, key=lambda o: natural_key(o.spec.annotations.name)):
        row = {"ID": obj.id, "Name": obj.spec.annotations.name}
        if kind is SECRET:
            row["Driver"] = ""
        row["CreatedAt"] = _ago(obj.meta.created_at)
        row["UpdatedAt"] = _ago(obj.meta.updated_at)
        # docker's secret/config formatter placeholders beyond the table's columns
        labels = dict(obj.spec.annotations.labels)
        row["Labels"] = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
        row["Label"] = lambda name, labels=labels: labels.get(name, "")
        rows.append(row)
    return rows


def _object_group(kind: _Kind) -> click.Group:
    word = kind.name

    @click.group(name=word, help=f"Manage swarm {word}s.")
    def group() -> None:
        pass

    @group.command("create", help=f"Create a {word} from a file or STDIN as content: {word.upper()} file|-.")
    @click.option("-l", "--label", "labels", multiple=True, help=f"{kind.title} labels.")
    @click.option("--template-driver", help="Template driver (\"golang\").")
    @click.option("-d", "--driver", hidden=kind is CONFIG, help=f"{kind.title} driver.")
    @click.argument("name")
    @click.argument("path", metavar="file|-")
    @click.pass_obj
    def create(state, labels, template_driver, driver, name, path) -> None:
        from swarmpy.api import control_pb2

        if driver:
            raise FlagError(f'invalid argument "{driver}" for "-d, --driver" flag: {word} drivers are not supported')
        if template_driver and template_driver != "golang":
            raise FlagError(f'invalid argument "{template_driver}" for "--template-driver" flag: the only template driver is "golang"')
        spec = _spec(kind, name, _read_data(kind, path), labels, template_driver)
        daemon = state.daemon
        request = (control_pb2.CreateSecretRequest if kind is SECRET else control_pb2.CreateConfigRequest)(spec=spec)
        response = daemon.call(kind.rpc(daemon, "Create"), request)
        state.out(getattr(response, word).id)

    @group.command("ls", help=f"List {word}s.")
    @click.option("-q", "--quiet", is_flag=True, help="Only display IDs.")
    @click.option("--format", "output_format", help=FORMAT_HELP)
    @click.option("-f", "--filter", "filters", multiple=True, help="Filter output based on conditions provided (id, label, name, names).")
    @click.pass_obj
    def list_objects(state, quiet, output_format, filters) -> None:
        from swarmpy.api import control_pb2
        from swarmpy.cli.service_commands import _print_rows
        from swarmpy.cli.value_parsers import parse_filters, parse_labels

        try:
            parsed = parse_filters(filters, ("id", "label", "name", "names"))  # the engine's: names is exact
        except ValueError as exc:
            raise CliError(str(exc)) from None
        request_filters = control_pb2.SecretConfigFilters(
            ids=parsed.get("id", []), names=parsed.get("names", []), name_prefixes=parsed.get("name", []),
            labels=parse_labels(parsed.get("label", [])),
        )
        daemon = state.daemon
        request = (control_pb2.ListSecretsRequest if kind is SECRET else control_pb2.ListConfigsRequest)(filters=request_filters)
        found = getattr(daemon.call(kind.rpc(daemon, "List"), request), f"{word}s")
        _print_rows(state, kind.columns, _rows(kind, found), output_format, "ID", quiet,
                    type_name=f"*{word}.{word}Context")

    @group.command("inspect", help=f"Display detailed information on one or more {word}s.")
    @click.option("--pretty", is_flag=True, help="Print the information in a human friendly format.")
    @click.option("-f", "--format", "output_format", help="Format output: \"json\" (the default).")
    @click.argument("refs", nargs=-1, required=True)
    @click.pass_obj
    def inspect(state, pretty, output_format, refs) -> None:
        from swarmpy.api import control_pb2
        from swarmpy.cli.inspect_output import print_inspected

        def fetch(ref: str):
            daemon = state.daemon
            request = (control_pb2.GetSecretRequest if kind is SECRET else control_pb2.GetConfigRequest)(ref=ref)
            return getattr(daemon.call(kind.rpc(daemon, "Get"), request), word)

        print_inspected(
            state, refs, fetch, lambda obj: as_json(kind, obj), lambda obj: as_pretty(kind, obj),
            pretty=pretty, output_format=output_format,
        )

    @group.command("rm", help=f"Remove one or more {word}s.")
    @click.argument("refs", nargs=-1, required=True)
    @click.pass_obj
    def remove(state, refs) -> None:
        from swarmpy.api import control_pb2

        daemon = state.daemon
        request_type = control_pb2.RemoveSecretRequest if kind is SECRET else control_pb2.RemoveConfigRequest
        remove_each(state, refs, lambda ref: daemon.call(kind.rpc(daemon, "Remove"), request_type(ref=ref)))

    return group


secret = _object_group(SECRET)
config = _object_group(CONFIG)
