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


def _health_duration(text: str) -> int:
    # docker's CLI takes any non-negative duration; its daemon then refuses a positive one below 1 ms
    # (it could never be scheduled). Said here, naming the flag, before anything is sent.
    nanos = _non_negative_duration(text)
    if 0 < nanos < units.MILLISECOND:
        raise ValueError("must be 0 (the default) or at least 1ms")
    return nanos


def _health_retries(text: str) -> int:
    try:
        number = int(text, 0)
    except ValueError:
        raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax') from None
    if number < 0:
        raise ValueError("Retries in HealthConfig cannot be negative")
    return number


def _unsigned_int(text: str) -> int:
    try:
        number = int(text, 0)
    except ValueError:
        raise ValueError(f'strconv.ParseUint: parsing "{text}": invalid syntax') from None
    if number < 0:
        raise ValueError(f'strconv.ParseUint: parsing "{text}": invalid syntax')
    return number


def _int64(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax') from None
def _positive_int(text: str) -> int:
    try:
        number = int(text, 0)
    except ValueError:
        raise ValueError(f'strconv.ParseUint: parsing "{text}": invalid syntax') from None
    if number < 1:
        raise ValueError("must be at least 1")
    if number > 0xFFFFFFFF:
        raise ValueError(f'strconv.ParseUint: parsing "{text}": value out of range')
    return number


def _positive_duration(text: str) -> int:
    nanos = units.parse_duration(text)
    if nanos <= 0:
        raise ValueError("must be positive")
    return nanos


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
INT64 = ParsedBy("int", _int64)
POSITIVE_UINT = ParsedBy("uint", _positive_int)
POSITIVE_DURATION = ParsedBy("duration", _positive_duration)
RATIO = ParsedBy("float", _ratio)
HEALTH_DURATION = ParsedBy("duration", _health_duration)
HEALTH_RETRIES = ParsedBy("int", _health_retries)


def choice(*allowed: str) -> click.ParamType:
    return ParsedBy("|".join(allowed), _choice(*allowed))


_GO_TRUE = ("1", "t", "T", "true", "True", "TRUE")
_GO_FALSE = ("0", "f", "F", "false", "False", "FALSE")


class GoFlagsCommand(click.Command):
    """A command whose boolean flags also take docker's `--flag=false` / `-f=true` (pflag's form),
    which `service update` needs to turn a setting off again.

    A command that does not intersperse options (create) is read up to its first positional argument,
    so what follows the image, like a container's own `--init=false`, is left alone."""

    def parse_args(self, ctx, args):
        # Long and one-letter forms alike: pflag reads `-d=false` as it reads `--detach=false`.
        booleans = {opt: param for param in self.params if isinstance(param, click.Option) and param.is_flag
                    and not param.count for opt in param.opts}
        take_value = {opt for param in self.params if isinstance(param, click.Option) and not param.is_flag
                      for opt in param.opts}
        kept, forced = [], {}
        index = 0
        while index < len(args):
            arg = args[index]
            if arg == "--" or (not ctx.allow_interspersed_args and (not arg.startswith("-") or arg == "-")):
                kept.extend(args[index:])
                break
            name, eq, value = arg.partition("=")
            if eq and name in booleans:
                if value not in _GO_TRUE + _GO_FALSE:
                    raise reject(value, booleans[name], f'strconv.ParseBool: parsing "{value}": invalid syntax')
                forced[booleans[name].name] = value in _GO_TRUE
            else:
                kept.append(arg)
                if not eq and arg in take_value and index + 1 < len(args):
                    kept.append(args[index + 1])
                    index += 1
            index += 1
        rest = super().parse_args(ctx, kept)
        ctx.params.update(forced)
        return rest
