"""Heartbeat deadlines: which nodes have gone quiet for longer than their grace period. No I/O, no clock:
the caller passes `now` (time.monotonic() in the dispatcher, plain numbers in tests)."""

from __future__ import annotations


class Deadlines:
    """One deadline per node; `expired(now)` hands back (and forgets) the nodes whose deadline passed."""

    def __init__(self) -> None:
        self._due: dict[str, float] = {}

    def set(self, node_id: str, due: float) -> None:
        self._due[node_id] = due

    def discard(self, node_id: str) -> None:
        self._due.pop(node_id, None)

    def __contains__(self, node_id: str) -> bool:
        return node_id in self._due

    def due(self, node_id: str, default: float) -> float:
        return self._due.get(node_id, default)

    def next_due(self) -> float | None:
        return min(self._due.values(), default=None)

    def expired(self, now: float) -> list[str]:
        late = [node_id for node_id, due in self._due.items() if due <= now]
        for node_id in late:
            del self._due[node_id]
        return late
