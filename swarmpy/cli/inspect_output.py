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
) -> None:
    if output_format and output_format != "json":
        raise CliError(f"unsupported format {output_format!r}: only \"json\" is supported")
    found, errors = [], []
    for ref in refs:
        try:
            found.append(fetch(ref))
        except CliError as error:
            errors.append(error.message)
    if pretty:
        state.out("\n\n".join(as_pretty(item) for item in found))
    else:
        state.out(json.dumps([as_json(item) for item in found], indent=4))
    if errors:
        raise CliError("\n".join(errors))
