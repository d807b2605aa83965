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


class BreakBursts:
    """Recent Session-stream breaks, to tell a dead node from a struggling manager or network.

    A host that dies breaks its own stream; the dispatcher then gives it a short grace (seconds, not the
    heartbeat expiry). But when many streams break at once -- more than `floor`, or `share` of the open
    sessions, within `window` seconds -- it is this manager that is too slow to answer (overloaded: its
    agents gave up waiting and reconnect) or the network that flaps, and a short grace would mark
    healthy nodes DOWN by the hundred and reschedule their tasks onto the same overload. Then breaks count
    for nothing and the heartbeat deadline stands."""

    def __init__(self, window: float = 10.0, floor: int = 5, share: float = 0.02) -> None:
        self._window = window
        self._floor = floor
        self._share = share
        self._times: list[float] = []

    def few(self, now: float, sessions: int) -> bool:
        """Record a break at `now`; whether breaks are still few enough for the short grace."""
        self._times = [t for t in self._times if t > now - self._window]
        self._times.append(now)
        return len(self._times) <= max(self._floor, self._share * sessions)
