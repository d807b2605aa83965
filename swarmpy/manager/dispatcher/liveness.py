"""Heartbeat deadlines (which nodes have gone quiet for longer than their grace period), the clock they are
kept on (one that stands still while the leader's own event loop does not run), bursts of broken streams,
and the pace at which sessions are admitted. No I/O: the caller passes `now` (LoopClock.now() or
time.monotonic() in the dispatcher, plain numbers in tests), and LoopClock reads the clock it is given."""

from __future__ import annotations

import heapq
from collections.abc import Callable


class Deadlines:
    """One deadline per node; `expired(now)` hands back (and forgets) the nodes whose deadline passed.

    Every heartbeat moves a deadline and the dispatcher then asks for the next one due: with 1,000 nodes
    a scan of them all per heartbeat was a measurable share of the leader's loop, so the deadlines sit
    in a heap too. A moved or discarded deadline leaves a stale heap entry behind (skipped when it comes
    up; the heap is rebuilt when stale entries outnumber live ones)."""

    def __init__(self) -> None:
        self._due: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def set(self, node_id: str, due: float) -> None:
        self._due[node_id] = due
        heapq.heappush(self._heap, (due, node_id))
        if len(self._heap) > 2 * len(self._due) + 64:
            self._heap = [(when, node) for node, when in self._due.items()]
            heapq.heapify(self._heap)

    def discard(self, node_id: str) -> None:
        self._due.pop(node_id, None)

    def __contains__(self, node_id: str) -> bool:
        return node_id in self._due

    def due(self, node_id: str, default: float) -> float:
        return self._due.get(node_id, default)

    def _drop_stale(self) -> None:
        heap, due = self._heap, self._due
        while heap and due.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)

    def next_due(self) -> float | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def expired(self, now: float) -> list[str]:
        late = []
        heap = self._heap
        self._drop_stale()
        while heap and heap[0][0] <= now:
            _, node_id = heapq.heappop(heap)
            del self._due[node_id]
            late.append(node_id)
            self._drop_stale()
        return late


class LoopClock:
    """Time as the event loop that serves the heartbeats saw it: a clock that stands still while that loop
    did not run, so that a node is never judged late for the leader's own lateness.

    A node's heartbeat (or new session) that arrives while the leader's loop is busy with bulk work waits
    in the socket buffers and gRPC's queue until the loop gets round to it. Measured in wall time, the
    wait counts against the node: on the 2-core convergence bench the leader's loop starved 1-2 s at a
    time, the short session-break grace (2 s) and heartbeat deadlines expired, and healthy nodes were
    written DOWN by the hundred, their tasks rescheduled onto the same overload (bench/RESULTS.md, issue
    15). The dispatcher's deadlines are kept on this clock instead: `tick()`, called by a task on the
    same loop every few tens of milliseconds, credits the time since the previous tick, but at most
    `slack` seconds of it; the rest was time the loop was not running (or ran one long callback), and is
    not counted -- the clock was paused. Between ticks, `now()` runs with the wall clock but never
    more than `slack` past the last tick, so a deadline checked first thing after a stall, before the
    ticker had its turn, does not count the stall either.

    On a responsive loop this is the wall clock (a SIGKILLed node is DOWN its 2 s grace after its stream
    broke); a starved one stretches every deadline by the time it starved, no more. `paused` and
    `longest` say how much was not counted."""

    def __init__(self, clock: Callable[[], float], slack: float = 0.25) -> None:
        if slack <= 0:
            raise ValueError("loop clock: slack must be positive")
        self._clock = clock
        self._slack = slack
        self._real = clock()  # the wall time of the last tick ...
        self._credited = self._real  # ... and this clock's time then (they start equal)
        self.paused = 0.0  # seconds not counted, in all
        self.longest = 0.0  # the longest single pause

    def tick(self) -> float:
        """Credit the time since the last tick, up to `slack`; the seconds not credited (0 normally)."""
        real = self._clock()
        gap = real - self._real
        credited = min(gap, self._slack)
        self._credited += credited
        self._real = real
        lost = gap - credited
        if lost > 0:
            self.paused += lost
            self.longest = max(self.longest, lost)
        return lost

    def now(self) -> float:
        return self._credited + min(self._clock() - self._real, self._slack)


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


class RegistrationPace:
    """Admits session registrations at a bounded rate: `rate` a second, `burst` at once.

    A new leader's dispatcher has every node of the swarm register again within seconds (their sessions
    were with the old leader). Each registration is a store write, then the node opens its Assignments
    and log streams; a thousand at once kept the new leader's loop busy for seconds, long enough for the
    followers to elect yet another leader, whose dispatcher had the same thousand register (the cascade
    of bench/RESULTS.md, issue 15). swarmkit rate-limits registrations per node; this bounds them for the
    whole manager. `slot(now)` gives the delay after which the caller may register, or None when that
    delay would exceed `max_wait` -- the caller then refuses at once and the node retries (with its
    backoff): better than a wait beyond the node's own RPC timeout."""

    def __init__(self, rate: float = 50.0, burst: int = 50, max_wait: float = 2.0) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("registration pace: rate and burst must be positive")
        self._interval = 1.0 / rate
        self._tolerance = (burst - 1) * self._interval  # how far ahead of the rate a burst may run
        self._max_wait = max_wait
        self._theoretical_arrival = float("-inf")  # GCRA: when the next registration is due at the rate

    def slot(self, now: float) -> float | None:
        due = max(self._theoretical_arrival, now)
        delay = max(0.0, due - self._tolerance - now)
        if delay > self._max_wait:
            return None
        self._theoretical_arrival = due + self._interval
        return delay
