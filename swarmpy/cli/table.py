"""Tables laid out as docker lays them out (Go's text/tabwriter with minwidth 10, padding 3): each
column but the last is as wide as its widest cell plus three spaces, and never narrower than 10."""

from __future__ import annotations

import re
import sys
from typing import Any, Sequence

_MIN_WIDTH = 10
_PADDING = 3


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [list(headers)] + [list(row) for row in rows]
    widths = [
        max(_MIN_WIDTH, max(len(line[column]) for line in lines) + _PADDING)
        for column in range(len(headers) - 1)
    ]
    rendered = []
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths)] + [line[-1]]
        rendered.append("".join(cells).rstrip())
    return "\n".join(rendered) + "\n"


_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> list:
    """Orders "node2" before "node10", as docker's sortorder.NaturalLess does."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in _DIGITS.split(text) if part]


def truncate_id(identifier: str) -> str:
    return identifier[:12]


def strip_digest(image: str) -> str:
    """`busybox:1.36@sha256:...` -> `busybox:1.36`; an image named only by digest keeps it."""
    name, at, _ = image.partition("@")
    if at and ":" in name.rsplit("/", 1)[-1]:
        return name
    return image


def pretty_word(word: str) -> str:
    """docker's command.PrettyPrint: "running" -> "Running"."""
    return word[:1].upper() + word[1:]


def print_listing(columns: Sequence[str], rows: Sequence[dict[str, Any]], output_format: str | None,
                  quiet_key: str | None = None, quiet: bool = False, *, type_name: str = "*formatter.Context") -> None:
    """A listing as every `ls`/`ps` prints it: `-q` (the `quiet_key` column), `json` (one object a
    row), a `--format` template, or the default table."""
    if quiet:
        sys.stdout.write("".join(f"{row[quiet_key]}\n" for row in rows))
    elif output_format == "json":
        import json

        sys.stdout.write("".join(json.dumps({key: value for key, value in row.items() if not callable(value)},
                                            sort_keys=True, separators=(",", ":")) + "\n" for row in rows))
    elif not output_format or output_format.strip() == "table":  # no Go template to parse: no gotemplate import
        _default_table(columns, rows)
    else:
        from swarmpy.cli import formats

        formats.print_rows(None, columns, rows, output_format, type_name=type_name,
                           default_table=lambda: _default_table(columns, rows))


def _default_table(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    # The table shows the columns; fields after them (Labels, Label) are for --format only.
    sys.stdout.write(render_table(columns, [list(row.values())[:len(columns)] for row in rows]))
