"""click parameter types for docker's value syntaxes; a bad value becomes docker's one-line error.

They are plain click types so the parsing happens before any connection is made: a rejected flag
means nothing was sent.
"""

from __future__ import annotations

from typing import Callable

import click

from swarmpy import units
from swarmpy.cli.errors import invalid_flag_value


def _names(param: click.Parameter | None) -> tuple[str, str | None]:
    if param is None:
        return "value", None
    opts = list(param.opts)
    long_name = next((o for o in opts if o.startswith("--")), opts[0] if opts else param.name)
    short_name = next((o for o in opts if not o.startswith("--")), None)
    return long_name, short_name


class FlagValueError(click.UsageError):
    """click aborts parsing with this; main() prints its message as-is and exits 125."""


def reject(value: str, param: click.Parameter | None, reason: str) -> FlagValueError:
    long_name, short_name = _names(param)
    return FlagValueError(invalid_flag_value(value, long_name, reason, short_name).message)


class ParsedBy(click.ParamType):
    def __init__(self, name: str, parse: Callable[[str], object]) -> None:
        self.name = name
        self._parse = parse

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        try:
            return self._parse(value)
        except ValueError as exc:
            raise reject(value, param, str(exc)) from None


def _non_negative_duration(text: str) -> int:
    nanos = units.parse_duration(text)
    if nanos < 0:
        raise ValueError("duration cannot be negative")
    return nanos


def _unsigned_int(text: str) -> int:
    try:
        number = int(text, 0)
    except ValueError:
        raise ValueError(f'strconv.ParseUint: parsing "{text}": invalid syntax') from None
    if number < 0:
        raise ValueError(f'strconv.ParseUint: parsing "{text}": invalid syntax')
    return number


def _ratio(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f'strconv.ParseFloat: parsing "{text}": invalid syntax') from None


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return text

    return parse


DURATION = ParsedBy("duration", _non_negative_duration)
MEMORY_BYTES = ParsedBy("bytes", units.parse_memory_bytes)
NANO_CPUS = ParsedBy("decimal", units.parse_nano_cpus)
UINT = ParsedBy("uint", _unsigned_int)
RATIO = ParsedBy("float", _ratio)


def choice(*allowed: str) -> click.ParamType:
    return ParsedBy("|".join(allowed), _choice(*allowed))
