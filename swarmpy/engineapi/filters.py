"""docker's query-string conventions: `filters` JSON (both spellings) and booleans.

The CLI sends filters as {"name": {"web": true}}, docker-py as {"name": ["web"]}; both mean "any of
these values" for that key, and every key must match. A key the endpoint does not know is refused
("invalid filter 'foo'"), as the engine refuses it. Booleans in the query follow the engine: false only
for "", "0", "no", "false" and "none", in any case; anything else is true.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from swarmpy.manager.controlapi.queries import matches_labels, matches_prefix  # noqa: F401 - re-exported

from .errors import BadRequest

_FALSE = {"", "0", "no", "false", "none"}


def query_flag(query: Mapping[str, str], name: str) -> bool:
    value = query.get(name)
    return value is not None and value.strip().lower() not in _FALSE


class Filters:
    """Parsed `filters`: key -> the values asked for."""

    def __init__(self, values: dict[str, list[str]]) -> None:
        self._values = values

    def get(self, key: str) -> list[str]:
        return self._values.get(key, [])

    def __contains__(self, key: str) -> bool:
        return key in self._values

    def labels(self, key: str = "label") -> dict[str, str]:
        """label=k or label=k=v, as a map (an empty value asks only for the key)."""
        wanted = {}
        for item in self.get(key):
            name, _, value = item.partition("=")
            wanted[name] = value
        return wanted


def parse_filters(query: Mapping[str, str], allowed: Iterable[str]) -> Filters:
    text = query.get("filters", "")
    if not text:
        return Filters({})
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise BadRequest(f"invalid filter: {text!r} is not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise BadRequest(f"invalid filter: {text!r} is not a JSON object")
    values: dict[str, list[str]] = {}
    for key, given in raw.items():
        if isinstance(given, dict):
            items = [name for name, on in given.items() if on is True]
            if not all(isinstance(on, bool) for on in given.values()):
                raise BadRequest(f"invalid filter: the values of {key!r} must be booleans")
        elif isinstance(given, list) and all(isinstance(item, str) for item in given):
            items = list(given)
        else:
            raise BadRequest(f"invalid filter: {key!r} must be a list of strings or an object of booleans")
        values[key] = items
    allowed = set(allowed)
    for key in values:
        if key not in allowed:
            raise BadRequest(f"invalid filter '{key}'")
    return Filters(values)

