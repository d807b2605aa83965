"""Tables laid out as docker lays them out (Go's text/tabwriter with minwidth 10, padding 3): each
column but the last is as wide as its widest cell plus three spaces, and never narrower than 10."""

from __future__ import annotations

import re
from typing import Sequence

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
