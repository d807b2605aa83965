"""The cluster's Raft timing (spec.raft: tick period, heartbeat and election ticks): its rules and its effect.

Every manager runs Raft with the cluster's values, so they are checked once here, for `swarm init`,
`swarm update` and UpdateCluster alike, and turned into the driver's numbers by `effective_timing`.
Zero means "the default" (proto3 cannot tell it from "not given"); the CLI refuses a zero or negative
flag before anything is sent.

Why these rules: a follower must hear from the leader more often than it gives up on it, with room for
one lost heartbeat, so the election timeout is at least two heartbeat intervals (etcd recommends ~10).
A tick below 10 ms would keep a core busy with timers; above 10 s an election takes minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

from swarmpy.units import MILLISECOND, SECOND, format_duration

from .defaults import RAFT_ELECTION_TICK, RAFT_HEARTBEAT_TICK, RAFT_TICK_PERIOD
from .errors import Shown

MIN_TICK_PERIOD = 10 * MILLISECOND
MAX_TICK_PERIOD = 10 * SECOND


@dataclass(frozen=True, slots=True)
class RaftTiming:
    tick_seconds: float
    heartbeat_tick: int
    election_tick: int

    @property
    def election_timeout(self) -> float:
        """Seconds without a leader before a follower campaigns (the shortest draw of the randomised range)."""
        return self.tick_seconds * self.election_tick


def effective_timing(tick_period: int, heartbeat_tick: int, election_tick: int) -> RaftTiming:
    """The timing a spec's values mean, zeros taking the defaults."""
    return RaftTiming(
        tick_seconds=(tick_period or RAFT_TICK_PERIOD) / SECOND,
        heartbeat_tick=heartbeat_tick or RAFT_HEARTBEAT_TICK,
        election_tick=election_tick or RAFT_ELECTION_TICK,
    )


def raft_timing_refusal(tick_period: int, heartbeat_tick: int, election_tick: int) -> tuple[str, object, str] | None:
    """(field, value, reason) for InvalidArgument if the values break a rule, else None."""
    if tick_period < 0 or 0 < tick_period < MIN_TICK_PERIOD or tick_period > MAX_TICK_PERIOD:
        return (
            "raft.tick_period",
            Shown(format_duration(tick_period)),
            f"must be between {format_duration(MIN_TICK_PERIOD)} and {format_duration(MAX_TICK_PERIOD)}",
        )
    timing = effective_timing(tick_period, heartbeat_tick, election_tick)
    # One rule covers both: a heartbeat at or above the election tick is also under two heartbeats.
    if timing.election_tick < 2 * timing.heartbeat_tick:
        return (
            "raft.election_tick",
            timing.election_tick,
            f"must be at least twice the heartbeat tick ({timing.heartbeat_tick})",
        )
    return None
