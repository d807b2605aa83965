"""`inspect` for every kind of object, as docker prints it: the objects found (a JSON array, or the
--pretty text), then one error line per reference that was not, so one bad reference hides no other."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from swarmpy.cli.errors import CliError


def print_inspected(
    state,
    refs: Iterable[str],
    fetch: Callable[[str], Any],
    as_json: Callable[[Any], dict],
    as_pretty: Callable[[Any], str],
    *,
    pretty: bool,
    output_format: str | None,
    type_name: str = "",
) -> None:
    """`type_name`: docker's struct for these objects (swarm.Service), for template errors."""
    template = None
    if output_format and output_format.strip() != "json":
        from swarmpy.cli import formats

        template = formats.inspect_template(output_format)  # refused before anything is fetched
    found, errors = [], []
    for ref in refs:
        try:
            found.append(fetch(ref))
        except CliError as error:
            errors.append(error.message)
    if template is not None:
        from swarmpy.cli import formats

        for item in found:
            state.out(formats.render_inspected(template, as_json(item), type_name or "map[string]interface {}"))
    elif pretty:
        state.out("\n\n".join(as_pretty(item) for item in found))
    else:
        state.out(json.dumps([as_json(item) for item in found], indent=4))
    if errors:
        raise CliError("\n".join(errors))
