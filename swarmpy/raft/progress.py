"""What the leader knows about each follower's log, and how fast it may send to it.

A leader keeps one Progress per voter (itself included). `match` is the highest index known to be
stored on the follower; `next` is the next index to send. The state says how to send:

- PROBE: the leader does not know where the follower's log diverges. It sends one append at a time
  and waits for the answer (or a heartbeat response) before sending another, walking `next` back on
  each rejection (quickly, with the follower's reject hint).
- REPLICATE: the follower accepted the last append, so the leader streams optimistically: it
  advances `next` as it sends, and stops only when `max_inflight_msgs` appends are unacknowledged
  (the inflight window), which bounds memory and the damage of a slow follower.
- SNAPSHOT: the entries the follower needs are compacted; a snapshot is on its way and nothing else
  is sent until the driver reports the snapshot's fate (report_snapshot) or the follower answers.

`last_heard` is the leader's tick count when the follower last answered; CheckQuorum and the
"would a REMOVE lose quorum" check both read it.
"""

from __future__ import annotations

import enum
from collections import deque


class ProgressState(enum.Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


class Inflights:
    """The last index of each unacknowledged append sent in REPLICATE state, oldest first."""

    __slots__ = ("capacity", "_last_indexes")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._last_indexes: deque[int] = deque()

    def add(self, last_index: int) -> None:
        self._last_indexes.append(last_index)

    def free_up_to(self, index: int) -> None:
        """The follower acknowledged everything up to `index`: those appends are no longer in flight."""
        while self._last_indexes and self._last_indexes[0] <= index:
            self._last_indexes.popleft()

    def free_first(self) -> None:
        """Make room for one message (a heartbeat answer proves the follower is alive and reading)."""
        if self._last_indexes:
            self._last_indexes.popleft()

    def full(self) -> bool:
        return len(self._last_indexes) >= self.capacity

    def reset(self) -> None:
        self._last_indexes.clear()

    def __len__(self) -> int:
        return len(self._last_indexes)


class Progress:
    __slots__ = ("match", "next", "state", "probe_sent", "pending_snapshot", "last_heard", "inflights", "sent_high")

    def __init__(self, next_index: int, max_inflight: int, now: int, match: int = 0) -> None:
        self.match = match
        self.next = next_index
        self.state = ProgressState.PROBE
        self.probe_sent = False  # PROBE: an append is out, wait for its answer before the next one
        self.pending_snapshot = 0  # SNAPSHOT: the index of the snapshot being sent
        self.last_heard = now  # a new leader gives everyone a full election timeout of grace
        self.inflights = Inflights(max_inflight)
        # The highest index this leader has sent the follower (as an entry, a probe's previous index,
        # or a snapshot) in its term: no honest answer can acknowledge more.
        self.sent_high = match

    def __repr__(self) -> str:
        return (
            f"Progress(match={self.match}, next={self.next}, state={self.state.value}, "
            f"probe_sent={self.probe_sent}, inflight={len(self.inflights)})"
        )

    def _reset_state(self, state: ProgressState) -> None:
        self.state = state
        self.probe_sent = False
        self.pending_snapshot = 0
        self.inflights.reset()

    def become_probe(self) -> None:
        # Coming back from a snapshot, the follower has at least the snapshot; start right after it.
        if self.state is ProgressState.SNAPSHOT:
            pending = self.pending_snapshot
            self._reset_state(ProgressState.PROBE)
            self.next = max(self.match + 1, pending + 1)
        else:
            self._reset_state(ProgressState.PROBE)
            self.next = self.match + 1

    def become_replicate(self) -> None:
        self._reset_state(ProgressState.REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, snapshot_index: int) -> None:
        self._reset_state(ProgressState.SNAPSHOT)
        self.pending_snapshot = snapshot_index

    def maybe_update(self, index: int) -> bool:
        """The follower stored everything up to `index`. Returns False for a stale acknowledgement."""
        updated = False
        if self.match < index:
            self.match = index
            updated = True
            self.probe_sent = False
        self.next = max(self.next, index + 1)
        return updated

    def sent_entries(self, last_index: int) -> None:
        """Bookkeeping after sending an append whose last entry is `last_index`."""
        if self.state is ProgressState.REPLICATE:
            self.next = last_index + 1
            self.inflights.add(last_index)
        elif self.state is ProgressState.PROBE:
            self.probe_sent = True

    def maybe_decrease_to(self, rejected: int, match_hint: int) -> bool:
        """The follower rejected an append at `rejected`; back off toward `match_hint`.

        Returns False when the rejection is stale (answers an append we no longer care about).
        """
        if self.state is ProgressState.REPLICATE:
            if rejected <= self.match:
                return False
            # We streamed past a gap (a lost append): restart from what we know is stored.
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, match_hint + 1), self.match + 1)
        self.probe_sent = False
        return True

    def is_paused(self) -> bool:
        if self.state is ProgressState.PROBE:
            return self.probe_sent
        if self.state is ProgressState.REPLICATE:
            return self.inflights.full()
        return True  # SNAPSHOT: wait for the snapshot's fate
