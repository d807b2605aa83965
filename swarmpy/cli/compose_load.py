"""Compose files for `stack deploy` and `stack config`: read (pyyaml), merged, interpolated, checked.

Theory of operation
-------------------
`load(paths, environ)` reads each file, merges them in order (a later file's mapping keys override
an earlier one's, recursively; lists and scalars are replaced), interpolates variables in every string
value (`$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`, `${VAR?message}`,
`$$` for a literal `$`) from the environment, then from a `.env` file next to the first compose file,
and checks the shape docker's schema checks: known top-level keys, a mapping of services each with an
image. Every problem raises ComposeError with one line naming the file, key or variable.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from swarmpy.cli.value_parsers import parse_env_file

TOP_LEVEL_KEYS = ("version", "name", "services", "networks", "volumes", "secrets", "configs")

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*)|(?P<invalid>\{[^}]*\}?))"
)


class ComposeError(Exception):
    """A compose file that cannot be deployed; the message is one line for the user."""


def _read(path: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8") if path != "-" else sys.stdin.read()
    except OSError as exc:
        raise ComposeError(f"open {path}: {(exc.strerror or str(exc)).lower()}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "unknown position"
        problem = exc.problem or exc.context or "invalid YAML"
        raise ComposeError(f"yaml: {path}: {where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ComposeError(f"yaml: {path}: {exc}") from None
    if data is None:
        raise ComposeError(f"{path}: empty compose file")
    if not isinstance(data, dict):
        raise ComposeError(f"{path}: top-level object must be a mapping")
    return data


def merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    return override


def dotenv(directory: Path) -> dict[str, str]:
    path = directory / ".env"
    try:
        content = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ComposeError(f"open {path}: {(exc.strerror or str(exc)).lower()}") from None
    try:
        variables = parse_env_file(content, {})
    except ValueError as exc:
        raise ComposeError(f"{path}: {exc}") from None
    return dict(variable.partition("=")[::2] for variable in variables)


def interpolate(value: Any, environ: Mapping[str, str], where: str = "") -> Any:
    if isinstance(value, dict):
        return {key: interpolate(item, environ, f"{where}.{key}" if where else str(key)) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, environ, f"{where}.[]") for item in value]  # docker's path for a list item
    if not isinstance(value, str):
        return value

    def invalid(template: str) -> ComposeError:  # docker's words; the template quoted as Go's %#v
        return ComposeError(f"invalid interpolation format for {where}: {json.dumps(template, ensure_ascii=False)};"
                            " you may need to escape any $ with another $")

    def substitute(match: re.Match) -> str:
        if match.group("escaped"):
            return "$"
        if match.group("invalid") is not None:
            raise invalid(value)
        name = match.group("named") or match.group("braced")
        op, arg = match.group("op"), match.group("arg") or ""
        current = environ.get(name)
        unset_or_empty = current is None or (op is not None and op.startswith(":") and current == "")
        if op in ("-", ":-"):
            return arg if unset_or_empty else current
        if op in ("?", ":?"):
            if unset_or_empty:
                raise invalid(f"required variable {name} is missing a value: {arg}")
            return current
        return current if current is not None else ""

    return _VARIABLE.sub(substitute, value)


def load(paths: list[str], environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The merged, interpolated, checked compose model of `paths` (at least one)."""
    if not paths:
        raise ComposeError("Please specify a Compose file (with --compose-file)")
    merged: dict[str, Any] = {}
    for path in paths:
        merged = merge(merged, _read(path))
    base = Path(paths[0]).resolve().parent if paths[0] != "-" else Path.cwd()
    variables = {**dotenv(base), **(environ if environ is not None else os.environ)}
    model = interpolate(merged, variables)
    check(model)
    model["_base_dir"] = str(base)
    return model


# Service keys docker's stack deploy refuses outright, with its reasons.
FORBIDDEN_SERVICE_KEYS = {
    "extends": "Support for `extends` is not implemented yet.",
    "volume_driver": "Instead of setting the volume driver on the service, define a volume using the top-level"
                     " `volumes` option and specify the driver there.",
    "volumes_from": "To share a volume between services, define it using the top-level `volumes` option and"
                    " reference it from each service that shares it using the service-level `volumes` option.",
    "cpu_quota": "Set resource limits using deploy.resources",
    "cpu_shares": "Set resource limits using deploy.resources",
    "cpuset": "Set resource limits using deploy.resources",
    "mem_limit": "Set resource limits using deploy.resources",
    "memswap_limit": "Set resource limits using deploy.resources",
}


def check(model: dict[str, Any]) -> None:
    services = model.get("services")
    if isinstance(services, dict):
        forbidden = sorted({f"{key}: {FORBIDDEN_SERVICE_KEYS[key]}" for service in services.values()
                            if isinstance(service, dict) for key in service if key in FORBIDDEN_SERVICE_KEYS})
        if forbidden:  # docker's one multi-line message
            raise ComposeError("Compose file contains unsupported options:\n\n" + "\n\n".join(forbidden) + "\n")
    for key in model:
        if key not in TOP_LEVEL_KEYS and not str(key).startswith("x-"):
            raise ComposeError(f"(root) Additional property {key} is not allowed")
    services = model.get("services")
    if not isinstance(services, dict) or not services:
        raise ComposeError("services must be a mapping with at least one service")
    for name, service in services.items():
        if not isinstance(service, dict):
            raise ComposeError(f"services.{name} must be a mapping")
        if not service.get("image"):
            raise ComposeError(f"invalid image reference for service {name}: no image specified")
    for section in ("networks", "volumes", "secrets", "configs"):
        value = model.get(section)
        if value is not None and not isinstance(value, dict):
            raise ComposeError(f"{section} must be a mapping")
