"""Object identifiers: 25 lowercase base36 characters drawn from 128 random bits, as swarmkit's IDs.

`to_base36` is here too because join tokens encode digests the same way.
"""

from __future__ import annotations

import secrets

_BASE36_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"

# 36**25 > 2**128, so 25 characters hold any 128-bit value; zero-padding makes every ID the same length.
ID_LENGTH = 25
_ID_RANDOM_BITS = 128


def to_base36(value: int, width: int) -> str:
    """Encode a non-negative integer as lowercase base36, left-padded with zeros to `width` characters."""
    if value < 0:
        raise ValueError(f"base36 encodes non-negative integers, got {value}")
    digits = []
    while value:
        value, remainder = divmod(value, 36)
        digits.append(_BASE36_DIGITS[remainder])
    encoded = "".join(reversed(digits)) or "0"
    if len(encoded) > width:
        raise ValueError(f"{encoded!r} is longer than the requested width of {width}")
    return encoded.rjust(width, "0")


def new_id() -> str:
    """A fresh random ID: 25 lowercase base36 characters."""
    return to_base36(secrets.randbits(_ID_RANDOM_BITS), ID_LENGTH)
