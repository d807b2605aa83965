"""docker's `--format` for listings and inspect: Go templates (swarmpy.gotemplate) over the same fields
docker's formatters offer.

Listings (`service ls`, `service ps`, `node ls`, `node ps`, ...): `json` prints one JSON object a row;
`table` alone is the default table; `table TEMPLATE` prints a header row (each field's column title)
and the rows, aligned as docker's tabwriter does (minwidth 10, padding 3); any other text is applied
to each row, one output line per row. As docker does, `\\t` and `\\n` written in the format stand for a
tab and a newline, and the format is trimmed of surrounding spaces. A row is a struct for the
template: a field it lacks is an error naming the field and docker's context type.

Inspect: `json` (or nothing) prints the JSON array; a template is applied to each object's Engine API
JSON, one result a line. A key the Engine API may carry but this object left out (docker omits empty
fields) reads as empty, as on docker's typed structs; any other key is docker's "map has no entry".
"""

from __future__ import annotations

import re
import sys
from functools import lru_cache
from typing import Any, Sequence

from swarmpy import gotemplate
from swarmpy.cli.errors import CliError

_MIN_WIDTH, _PADDING = 10, 3


class TemplateParseError(CliError):
    pass


def _prepare(text: str) -> str:
    return text.strip(" ").replace("\\t", "\t").replace("\\n", "\n")


def parse(text: str) -> gotemplate.Template:
    try:
        return gotemplate.parse(_prepare(text))
    except gotemplate.TemplateError as error:
        raise TemplateParseError(f"template parsing error: {error}") from None


def _execute(template: gotemplate.Template, data: Any, **options: Any) -> str:
    try:
        return template.execute(data, **options)
    except gotemplate.TemplateExecError as error:
        raise CliError(f"template parsing error: {error}") from None


def column_title(field: str) -> str:
    """docker's header for a field: DesiredState -> DESIRED STATE, TLSStatus -> TLS STATUS."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", field).upper()


class _Row:
    """One listing row as docker's formatter context: known fields only."""

    def __init__(self, fields: dict[str, Any], type_name: str) -> None:
        self._fields = fields
        self.template_type = type_name

    def template_field(self, name: str) -> Any:
        return self._fields[name]

    def template_json(self) -> dict[str, Any]:
        # docker marshals a map: sorted; methods (`Label`) are not data
        return {key: self._fields[key] for key in sorted(self._fields) if not callable(self._fields[key])}


class _Title(str):
    """A header cell of an empty listing, whose fields are unknown: a title, or a method's empty one."""

    def __call__(self, *args: Any) -> str:
        return ""


class _Header(_Row):
    """The header row: each field's title, as docker's header context maps it (the default table's
    column for the row's leading fields, the field's words upper-cased after them)."""

    def __init__(self, fields: dict[str, Any], type_name: str, columns: Sequence[str]) -> None:
        super().__init__(fields, type_name)
        self._titles = dict(zip(fields, columns))

    def template_field(self, name: str) -> Any:
        if not self._fields:
            return _Title(column_title(name))
        if callable(self._fields.get(name)):
            return lambda *args: ""  # docker's header context has no title for a method
        if name not in self._fields:
            return ""
        return self._titles.get(name) or column_title(name)


def tabwriter(text: str) -> str:
    """Go's text/tabwriter as docker sets it up: tab-terminated cells, aligned per block of
    consecutive lines that have the cell, each as wide as its widest text + 3 and at least 10."""
    lines = text.split("\n")
    cells = [line.split("\t") for line in lines]
    widths: list[list[int]] = [[0] * (len(parts) - 1) for parts in cells]
    column = 0
    while True:
        rows = [i for i, parts in enumerate(cells) if len(parts) - 1 > column]
        if not rows:
            break
        block: list[int] = []
        for i in range(len(cells) + 1):
            if i < len(cells) and len(cells[i]) - 1 > column:
                block.append(i)
                continue
            if block:
                width = max(_MIN_WIDTH, max(len(cells[j][column]) for j in block) + _PADDING)
                for j in block:
                    widths[j][column] = width
                block = []
        column += 1
    out = []
    for parts, line_widths in zip(cells, widths):
        out.append("".join(cell.ljust(width) for cell, width in zip(parts, line_widths)) + parts[-1])
    return "\n".join(out)


def print_rows(state, columns: Sequence[str], rows: Sequence[dict[str, Any]], output_format: str | None,
               *, type_name: str = "*formatter.Context", default_table) -> None:
    """A listing in a `--format` (json and the default table are the caller's: `default_table()`)."""
    text = _prepare(output_format or "")
    if not text or text == "table":
        default_table()
        return
    is_table = text.startswith("table")
    template = parse(text[len("table"):] if is_table else text)
    out = []
    if is_table:  # an empty listing has no row to name its fields: its header titles whatever is asked
        out.append(_execute(template, _Header(dict(rows[0]) if rows else {}, type_name, columns)))
    out.extend(_execute(template, _Row(row, type_name)) for row in rows)
    if not out:
        return
    body = "\n".join(out) + "\n"
    sys.stdout.write(tabwriter(body) if is_table else body)
    sys.stdout.flush()


@lru_cache(maxsize=1)
def engine_api_keys() -> frozenset[str]:
    """Every key swarmpy's Engine API shapes can carry (those docker's structs define)."""
    import inspect

    from swarmpy.engineapi.convert import to_json as convert

    return frozenset(re.findall(r'"([A-Z][A-Za-z0-9]*)"', inspect.getsource(convert)))


def inspect_template(output_format: str) -> gotemplate.Template:
    return parse(output_format)


def render_inspected(template: gotemplate.Template, converted: dict[str, Any], type_name: str) -> str:
    """`type_name` is docker's struct for the object (swarm.Service), named when a top-level field is unknown."""
    def missing_key(mapping: dict, name: str) -> Any:
        if name in engine_api_keys():
            return ""
        if mapping is converted:
            raise KeyError(f"can't evaluate field {name} in type {type_name}")
        raise KeyError(f'map has no entry for key "{name}"')

    return _execute(template, converted, missing_key=missing_key)
