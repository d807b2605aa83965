"""Units as docker spells them: Go durations, memory sizes, CPU counts, human-readable ages.

The CLI accepts what `docker` accepts and prints what `docker` prints, so these follow Go's
`time.ParseDuration` / `Duration.String` and docker/go-units (`RAMInBytes`, `BytesSize`,
`HumanSize`, `HumanDuration`) exactly, error messages included: users paste them into searches.
"""

from __future__ import annotations

import re
from fractions import Fraction

NANOSECOND = 1
MICROSECOND = 1_000
MILLISECOND = 1_000_000
SECOND = 1_000_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

_DURATION_UNITS = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "\u00b5s": MICROSECOND,  # micro sign
    "\u03bcs": MICROSECOND,  # greek mu
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}
_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)")
_INT64_MAX = 2**63 - 1


def parse_duration(text: str) -> int:
    """Go's time.ParseDuration: "1h2m3.5s", "300ms", "-1.5h", "0" -> int nanoseconds."""
    original = text
    if not text:
        raise ValueError(f'time: invalid duration "{original}"')
    negative = False
    if text[0] in "+-":
        negative = text[0] == "-"
        text = text[1:]
    if text == "0":
        return 0
    if not text:
        raise ValueError(f'time: invalid duration "{original}"')
    total = Fraction(0)
    while text:
        match = _DURATION_PART.match(text)
        whole, fraction, unit = match.group(1), match.group(2), match.group(3)
        if not whole and not fraction:
            raise ValueError(f'time: invalid duration "{original}"')
        if not unit:
            raise ValueError(f'time: missing unit in duration "{original}"')
        if unit not in _DURATION_UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{original}"')
        value = Fraction(int(whole or "0"))
        if fraction:
            value += Fraction(int(fraction), 10 ** len(fraction))
        total += value * _DURATION_UNITS[unit]
        text = text[match.end():]
    nanos = int(total)  # Go truncates sub-nanosecond fractions
    if nanos > _INT64_MAX:
        raise ValueError(f'time: invalid duration "{original}"')
    return -nanos if negative else nanos


def _format_fraction(value: int, precision: int) -> tuple[str, int]:
    """Splits value into its last `precision` digits (as ".ddd", trailing zeros cut) and the rest."""
    digits = f"{value % 10**precision:0{precision}d}".rstrip("0")
    return ("." + digits if digits else ""), value // 10**precision


def format_duration(nanos: int) -> str:
    """Go's Duration.String(): 0s, 1.5µs, 300ms, 1h2m3.5s, 2160h0m0s."""
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    value = abs(nanos)
    if value < SECOND:
        for unit, size, precision in (("ns", 1, 0), ("\u00b5s", MICROSECOND, 3), ("ms", MILLISECOND, 6)):
            if value < size * 1000:
                fraction, whole = _format_fraction(value, precision) if precision else ("", value)
                return f"{sign}{whole}{fraction}{unit}"
    fraction, seconds = _format_fraction(value, 9)
    text = f"{seconds % 60}{fraction}s"
    minutes = seconds // 60
    if minutes:
        text = f"{minutes % 60}m{text}"
        hours = minutes // 60
        if hours:
            text = f"{hours}h{text}"
    return sign + text


# docker/go-units RAMInBytes: a number, optional space, optional unit letter, optional "i" and "b".
_SIZE = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_BINARY_MULTIPLIERS = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


def parse_memory_bytes(text: str) -> int:
    """docker's RAMInBytes: "512m", "1g", "1.5GiB", "100" -> bytes (units are powers of 1024)."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"invalid size: '{text}'")
    try:
        number = float(match.group(1))
    except ValueError:
        raise ValueError(f"invalid size: '{text}'") from None
    unit = (match.group(2) or "").lower()
    return int(number * _BINARY_MULTIPLIERS.get(unit, 1))


_BINARY_ABBREVIATIONS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
_DECIMAL_ABBREVIATIONS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def _go_g4(value: float) -> str:
    """Go's %.4g: like Python's, but Go never switches to exponent form below 1e21 for these sizes."""
    return f"{value:.4g}"


def _custom_size(size: float, base: float, abbreviations: tuple[str, ...]) -> str:
    index = 0
    while size >= base and index < len(abbreviations) - 1:
        size /= base
        index += 1
    return f"{_go_g4(size)}{abbreviations[index]}"


def format_bytes(size: int) -> str:
    """docker's units.BytesSize: 536870912 -> "512MiB" (powers of 1024)."""
    return _custom_size(float(size), 1024.0, _BINARY_ABBREVIATIONS)


def human_size(size: int) -> str:
    """docker's units.HumanSize: 1500000 -> "1.5MB" (powers of 1000)."""
    return _custom_size(float(size), 1000.0, _DECIMAL_ABBREVIATIONS)


def parse_nano_cpus(text: str) -> int:
    """docker's ParseCPUs: a decimal or rational CPU count ("0.5", "2", "1/3" is rejected as too
    precise) -> nano CPUs."""
    try:
        cpus = Fraction(text.strip()) if text.strip() else None
    except (ValueError, ZeroDivisionError):
        cpus = None
    if cpus is None:
        raise ValueError(f"failed to parse {text} as a rational number")
    nanos = cpus * 1_000_000_000
    if nanos.denominator != 1:
        raise ValueError("value is too precise")
    return int(nanos)


def format_nano_cpus(nanos: int) -> str:
    """The inverse of parse_nano_cpus as docker's --pretty prints it: 500000000 -> "0.5"."""
    return f"{nanos / 1e9:g}"


def human_duration(nanos: int) -> str:
    """docker/go-units HumanDuration: how long ago, in words ("2 minutes", "About an hour")."""
    seconds = int(nanos / SECOND)
    if seconds < 1:
        return "Less than a second"
    if seconds == 1:
        return "1 second"
    if seconds < 60:
        return f"{seconds} seconds"
    minutes = int(nanos / MINUTE)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(nanos / HOUR + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(nanos / HOUR) // 24 // 365} years"
