"""The Raft state machine: pure, deterministic, no I/O.

Theory of operation
-------------------
A RaftNode is one server's view of the protocol. It is driven from outside (see the contract in
swarmpy/raft/__init__.py): `tick()` is the passage of time, `step(message)` a message from a peer,
`propose`/`propose_conf_change`/`read_index`/`transfer_leadership` requests from the application.
None of them performs I/O; their effects accumulate and are handed out by `ready()`: state to
persist, messages to send, committed entries to apply, linearizable reads that may now be served.
`advance(ready)` tells the node the driver did all that. Randomness (election timeouts) comes from the
`random.Random` in the Config, so a seeded simulation replays exactly.

Roles and their transitions (one `_step_<role>` function each, after the checks every role shares):

    FOLLOWER --election timeout--> PRE_CANDIDATE --pre-vote majority--> CANDIDATE --vote majority--> LEADER
        ^  (or straight to CANDIDATE when pre_vote is off, or on TIMEOUT_NOW from a transferring leader)
        +---- any role, on a message from a higher term (or a leader of its own term) ------------+
        +---- LEADER, when CheckQuorum sees no majority within an election timeout, or it is removed

Rules that matter for safety, and where they live:
- Terms: a message from a higher term turns us into a follower of that term (`step`), except
  pre-votes (a pre-vote asks "would you vote for me?" without disturbing anyone's term) and votes a
  follower ignores because it heard from a live leader within the election timeout (leader lease).
- Votes: one per term, persisted in the hard state before the response leaves (driver contract),
  only for a candidate whose log is at least as up to date as ours (`RaftLog.is_up_to_date`).
- Commit: the leader advances commit to the highest index stored on a majority, but only if that
  entry is from its own term (Figure 8 of the Raft paper); a new leader appends an empty entry so it
  can commit (and learn the commit index of) everything before it promptly.
- Membership: one server at a time. A CONF_CHANGE entry takes effect in this node when the driver
  hands the applied entry back in `advance()`; the leader accepts the next change only after the
  previous one is applied (and, as a new leader, after its own first entry is applied, which rules
  out the known single-server-change bug with a change left over from an earlier term).
- Learners (etcd's non-voting members): ADD_LEARNER adds a server that receives entries, heartbeats
  and snapshots like any follower but is left out of every majority -- commit, elections, CheckQuorum,
  ReadIndex -- and never campaigns, so a server that starts far behind costs the cluster nothing while
  it catches up. ADD_NODE of a learner promotes it (one voter more: still a single-server change, under
  the same rules), and the leader refuses it while the learner's stored log is more than
  `Config.max_learner_lag` entries behind its own or it was not heard from within an election timeout:
  a voter that cannot soon acknowledge new entries would shrink the cluster's fault tolerance.
- Persisted state is exactly (term, vote, commit) + log + snapshot: after a crash the node restarts
  from storage alone and never contradicts a promise it made.

Things this node does not trust: messages. `step` validates every field (types, ranges, internal
consistency of entries and snapshots), drops what fails and counts it in `stats`; it never raises
on input from the network. It also checks what a message means, since a faulty member is still a
member: terms and indexes stay below 2^63 (storage and arithmetic never overflow), an
APPEND_RESPONSE acknowledges at most what this leader sent that follower in its term
(`Progress.sent_high`; honest followers never claim more), a HEARTBEAT commits nothing beyond our
log, leader messages in a term come only from that term's leader once we know it, TIMEOUT_NOW only
from our current leader in its term, and a snapshot's membership names each member once. Nonsense is
counted as `dropped_malformed`/`dropped_invalid` and logged with its sender. Messages from servers outside the membership are dropped too, except
those that can only come from a legitimately elected leader whose configuration may be newer than
ours, and vote requests from a candidate whose log is ahead of ours (which may know a membership we
do not yet) -- dropping those could deadlock an election.
"""

from __future__ import annotations

import logging
import random
from collections import OrderedDict
from dataclasses import dataclass, field

from . import errors
from .errors import Compacted, Unavailable
from .log import RaftLog
from .messages import (
    NONE,
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    ReadState,
    Ready,
    Role,
    Snapshot,
    SoftState,
)
from .progress import Progress, ProgressState
from .quorum import VoteResult, committed_index, has_quorum, vote_result
from .storage import Storage

log = logging.getLogger(__name__)

TRANSFER_CONTEXT = b"transfer"  # on a VOTE: the election was started by TIMEOUT_NOW; bypass leases
MAX_ID = 2**64 - 1
MAX_TERM = 2**63 - 1  # terms and indexes stay far from the u64 limit, whatever a faulty member sends
MAX_INDEX = 2**63 - 1
_LOGGED_DROPS = frozenset({"dropped_malformed", "dropped_invalid", "dropped_inconsistent"})

_LEADER_MESSAGES = frozenset({MessageType.APPEND, MessageType.HEARTBEAT, MessageType.SNAPSHOT})
_VOTE_REQUESTS = frozenset({MessageType.VOTE, MessageType.PRE_VOTE})
_LOCAL_MESSAGES = frozenset({MessageType.SNAPSHOT_STATUS, MessageType.UNREACHABLE})


@dataclass
class Config:
    id: int
    peers: tuple[int, ...] = ()  # initial voters when bootstrapping a new cluster; () when restarting or joining
    election_tick: int = 10
    heartbeat_tick: int = 1
    max_size_per_msg: int = 65535
    max_inflight_msgs: int = 256
    max_proposal_bytes: int = 4 * 1024 * 1024
    check_quorum: bool = True
    pre_vote: bool = True
    applied: int = 0  # the application's applied index at start (its state is at least the snapshot)
    max_learner_lag: int = 64  # promote a learner only once its log is within this many entries of ours
    rng: random.Random | None = None  # seeded for reproducible elections; default Random(id)

    def validate(self) -> None:
        if not isinstance(self.id, int) or not 0 < self.id <= MAX_ID:
            raise ValueError(f"node id must be a positive 64-bit integer, got {self.id!r}")
        if any(not isinstance(p, int) or not 0 < p <= MAX_ID for p in self.peers):
            raise ValueError(f"peer ids must be positive 64-bit integers, got {self.peers!r}")
        if self.peers and self.id not in self.peers:
            raise ValueError(f"bootstrapping node {self.id:x} must be one of the peers {self.peers!r}")
        if self.heartbeat_tick < 1:
            raise ValueError("heartbeat_tick must be at least 1")
        if self.election_tick <= self.heartbeat_tick:
            raise ValueError("election_tick must be greater than heartbeat_tick")
        if self.max_inflight_msgs < 1 or self.max_size_per_msg < 1 or self.max_proposal_bytes < 1:
            raise ValueError("max_inflight_msgs, max_size_per_msg and max_proposal_bytes must be positive")
        if self.applied < 0:
            raise ValueError("applied must not be negative")
        if self.max_learner_lag < 0:
            raise ValueError("max_learner_lag must not be negative")


@dataclass(frozen=True)
class PeerStatus:
    match: int
    next: int
    state: str
    ticks_since_heard: int


@dataclass(frozen=True)
class Status:
    id: int
    term: int
    vote: int
    role: Role
    leader: int
    commit: int
    applied: int
    last_index: int
    voters: tuple[int, ...]
    lead_transferee: int = NONE
    learners: tuple[int, ...] = ()
    progress: dict[int, PeerStatus] = field(default_factory=dict)  # leader only


@dataclass
class _PendingRead:
    index: int  # the commit index when the read arrived: serve once applied reaches it
    acks: set[int]


class RaftNode:
    def __init__(self, config: Config, storage: Storage) -> None:
        config.validate()
        self.id = config.id
        self.config = config
        self._rng = config.rng if config.rng is not None else random.Random(config.id)
        self.election_tick = config.election_tick
        self.heartbeat_tick = config.heartbeat_tick
        self.check_quorum = config.check_quorum
        self.pre_vote = config.pre_vote
        self.max_size_per_msg = config.max_size_per_msg
        self.max_inflight_msgs = config.max_inflight_msgs
        self.max_proposal_bytes = config.max_proposal_bytes
        self.max_learner_lag = config.max_learner_lag

        self.log = RaftLog(storage)
        self.stats: dict[str, int] = {}
        self.last_drop_reason = ""  # why the most recent message was dropped (for logs and tests)

        self._term = 0
        self._vote = NONE
        self._leader = NONE
        self._role = Role.FOLLOWER
        self._voters: set[int] = set()
        self._learners: set[int] = set()  # never in _voters; see "Learners" above
        self._votes: dict[int, bool] = {}
        self._progress: dict[int, Progress] = {}
        self._now = 0  # ticks since this node started; progress.last_heard is measured in it
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomized_election_timeout = self.election_tick
        self._lead_transferee = NONE
        self._transfer_elapsed = 0
        self._pending_conf_index = 0
        self._reads: OrderedDict[bytes, _PendingRead] = OrderedDict()
        self._reads_awaiting_commit: list[bytes] = []
        self.msgs: list[Message] = []
        self.read_states: list[ReadState] = []
        self._ready_outstanding = False

        hard_state, conf_state = storage.initial_state()
        storage_empty = storage.last_index() == 0 and storage.snapshot().empty and hard_state == HardState()
        if config.peers:
            if not storage_empty:
                raise ValueError("peers given but storage already holds Raft state; pass peers=() to restart")
            self._bootstrap(tuple(sorted(set(config.peers))))
            self._prev_hard_state = HardState()
        else:
            self._restore_from_storage(hard_state, conf_state, config.applied)
            self._prev_hard_state = self._hard_state()
        self._become_follower(self._term, NONE)
        self._prev_soft_state = self._soft_state()

    # -- construction ---------------------------------------------------------------------------

    def _bootstrap(self, peers: tuple[int, ...]) -> None:
        # Every founding member writes the same entries (term 1, one ADD per peer, in id order) and
        # treats them as committed, so the membership is in the log from the start and survives a
        # restart like any later change. Identical logs mean log matching holds from index 1.
        entries = [
            Entry(term=1, index=i + 1, type=EntryType.CONF_CHANGE, data=ConfChange(ConfChangeType.ADD_NODE, p).encode())
            for i, p in enumerate(peers)
        ]
        self.log.append(entries)
        self.log.commit_to(len(entries))
        self._term = 1
        self._voters = set(peers)

    def _restore_from_storage(self, hard_state: HardState, conf_state: ConfState, applied: int) -> None:
        log = self.log
        if hard_state.commit > log.last_index():
            raise ValueError(f"stored commit {hard_state.commit} is beyond the stored log (last index {log.last_index()})")
        self._term = hard_state.term
        self._vote = hard_state.vote
        log.commit_to(hard_state.commit)
        snapshot_index = log.first_index() - 1
        applied = max(applied, snapshot_index)
        if applied > log.committed:
            raise ValueError(f"config.applied {applied} is beyond the stored commit index {log.committed}")
        # Membership as of `applied`: the snapshot's, then every change applied since. Entries after
        # `applied` are re-delivered as committed entries and take effect again in advance().
        # Replaying ADD/REMOVE is idempotent, so a storage whose initial_state already includes
        # later applied changes converges to the same membership.
        self._voters = set(conf_state.voters)
        self._learners = set(conf_state.learners) - self._voters
        for entry in log.entries(snapshot_index + 1, applied + 1):
            self._apply_conf_change_entry(entry)
        log.applied = applied

    # -- read-only views ------------------------------------------------------------------------

    @property
    def term(self) -> int:
        return self._term

    @property
    def leader(self) -> int:
        return self._leader

    @property
    def role(self) -> Role:
        return self._role

    @property
    def vote(self) -> int:
        return self._vote

    @property
    def voters(self) -> frozenset[int]:
        return frozenset(self._voters)

    @property
    def learners(self) -> frozenset[int]:
        return frozenset(self._learners)

    @property
    def lead_transferee(self) -> int:
        return self._lead_transferee

    def conf_state(self) -> ConfState:
        """The current voters and learners (as of the applied index): what the driver records in a snapshot."""
        return ConfState(voters=tuple(sorted(self._voters)), learners=tuple(sorted(self._learners)))

    def status(self) -> Status:
        progress: dict[int, PeerStatus] = {}
        if self._role is Role.LEADER:
            for node_id, pr in sorted(self._progress.items()):
                progress[node_id] = PeerStatus(pr.match, pr.next, pr.state.value, self._now - pr.last_heard)
        return Status(
            id=self.id,
            term=self._term,
            vote=self._vote,
            role=self._role,
            leader=self._leader,
            commit=self.log.committed,
            applied=self.log.applied,
            last_index=self.log.last_index(),
            voters=tuple(sorted(self._voters)),
            lead_transferee=self._lead_transferee,
            learners=tuple(sorted(self._learners)),
            progress=progress,
        )

    def _soft_state(self) -> SoftState:
        return SoftState(leader=self._leader, role=self._role)

    def _hard_state(self) -> HardState:
        return HardState(term=self._term, vote=self._vote, commit=self.log.committed)

    def _count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1

    def _drop(self, key: str, reason: str, sender: object = None) -> None:
        self._count(key)
        self.last_drop_reason = reason
        if key in _LOGGED_DROPS:
            # Nonsense from a member: a faulty or malicious peer. Never applied; worth an operator's look.
            who = f"{sender:x}" if type(sender) is int else repr(sender)
            log.warning("raft %x: dropped a message from %s (%s): %s", self.id, who, key, reason)

    def _promotable(self) -> bool:
        """May this node campaign? Only a voter in its own configuration (never a learner), with no
        snapshot pending."""
        return self.id in self._voters and self.log.unstable.snapshot is None

    # -- role changes ---------------------------------------------------------------------------

    def _reset(self, term: int, keep_election_clock: bool = False) -> None:
        if term != self._term:
            self._term = term
            self._vote = NONE
        self._leader = NONE
        if not keep_election_clock:
            self._election_elapsed = 0
            self._randomized_election_timeout = self._rng.randrange(self.election_tick, 2 * self.election_tick)
        self._heartbeat_elapsed = 0
        self._abort_transfer()
        self._votes = {}
        self._progress = {}
        self._reads.clear()
        self._reads_awaiting_commit.clear()

    def _become_follower(self, term: int, leader: int, keep_election_clock: bool = False) -> None:
        self._reset(term, keep_election_clock)
        self._leader = leader
        self._role = Role.FOLLOWER

    def _become_pre_candidate(self) -> None:
        # Neither term nor vote changes: a pre-candidate has promised nothing.
        self._votes = {}
        self._leader = NONE
        self._role = Role.PRE_CANDIDATE

    def _become_candidate(self) -> None:
        self._reset(self._term + 1)
        self._vote = self.id
        self._role = Role.CANDIDATE

    def _become_leader(self) -> None:
        self._reset(self._term)
        self._leader = self.id
        self._role = Role.LEADER
        last = self.log.last_index()
        for member in self._voters | self._learners:  # learners are replicated to, but never counted
            self._progress[member] = Progress(last + 1, self.max_inflight_msgs, self._now)
        if self.id in self._progress:
            own = self._progress[self.id]
            own.match = last
            own.become_replicate()
        # An empty entry of our term: committing it commits everything before it (Figure 8) and
        # tells us the cluster's commit index, which ReadIndex needs.
        self._append(EntryType.NORMAL, b"")
        # A membership change left in the log by an earlier leader may still be unapplied; wait for
        # everything up to our first entry to be applied before accepting another change.
        self._pending_conf_index = self.log.last_index()

    # -- time -----------------------------------------------------------------------------------

    def set_timing(self, heartbeat_tick: int, election_tick: int) -> None:
        """New tick counts from now on (the cluster's Raft config changed; every member gets them). A
        follower restarts its election clock with a timeout drawn from the new range, so a change that
        reaches it before the leader's own cannot make it campaign at once. Liveness only: no safety
        rule depends on timing."""
        Config(id=self.id, heartbeat_tick=heartbeat_tick, election_tick=election_tick).validate()
        self.heartbeat_tick, self.election_tick = heartbeat_tick, election_tick
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._randomized_election_timeout = self._rng.randrange(election_tick, 2 * election_tick)

    def tick(self) -> None:
        self._now += 1
        if self._role is Role.LEADER:
            self._tick_leader()
        else:
            self._tick_election()

    def _tick_election(self) -> None:
        self._election_elapsed += 1
        if self._promotable() and self._election_elapsed >= self._randomized_election_timeout:
            self._election_elapsed = 0
            self._campaign(transfer=False)

    def _tick_leader(self) -> None:
        self._heartbeat_elapsed += 1
        self._election_elapsed += 1
        if self._lead_transferee != NONE:
            self._transfer_elapsed += 1
            if self._transfer_elapsed >= self.election_tick:
                # The target did not take over within an election timeout: carry on leading.
                self._count("transfer_aborted")
                self._abort_transfer()
        if self.check_quorum and not self._quorum_recently_active():
            self._count("check_quorum_step_down")
            self._become_follower(self._term, NONE)
            return
        if self._heartbeat_elapsed >= self.heartbeat_tick:
            self._heartbeat_elapsed = 0
            self._broadcast_heartbeat()

    def _recently_active(self, node_id: int) -> bool:
        if node_id == self.id:
            return True
        pr = self._progress.get(node_id)
        return pr is not None and self._now - pr.last_heard < self.election_tick

    def _quorum_recently_active(self) -> bool:
        return has_quorum(self._voters, [v for v in self._voters if self._recently_active(v)])

    # -- elections ------------------------------------------------------------------------------

    def campaign(self) -> None:
        """Start an election now, as if the election timeout had elapsed (tests, operator tools)."""
        if self._role is not Role.LEADER:
            self._campaign(transfer=False)

    def _has_unapplied_conf_change(self) -> bool:
        # A committed but unapplied membership change may remove us; campaigning on the old
        # membership could elect a leader the new one does not recognise.
        if self.log.committed <= self.log.applied:
            return False
        entries = self.log.entries(max(self.log.applied + 1, self.log.first_index()), self.log.committed + 1)
        return any(e.type is EntryType.CONF_CHANGE for e in entries)

    def _campaign(self, transfer: bool) -> None:
        if not self._promotable() or self._has_unapplied_conf_change():
            return
        if self.pre_vote and not transfer:
            self._become_pre_candidate()
            request, term = MessageType.PRE_VOTE, self._term + 1
        else:
            self._become_candidate()
            request, term = MessageType.VOTE, self._term
        if self._record_vote(self.id, True) is VoteResult.WON:
            self._won_election(request)  # a cluster of one
            return
        context = TRANSFER_CONTEXT if transfer else b""
        for voter in sorted(self._voters):
            if voter != self.id:
                self._send(
                    Message(
                        type=request,
                        to=voter,
                        frm=self.id,
                        term=term,
                        index=self.log.last_index(),
                        log_term=self.log.last_term(),
                        context=context,
                    )
                )

    def _record_vote(self, voter: int, granted: bool) -> VoteResult:
        self._votes.setdefault(voter, granted)
        return vote_result(self._voters, self._votes)

    def _won_election(self, request: MessageType) -> None:
        if request is MessageType.PRE_VOTE:
            self._start_real_election()
        else:
            self._become_leader()
            self._broadcast_append()

    def _start_real_election(self) -> None:
        self._become_candidate()
        if self._record_vote(self.id, True) is VoteResult.WON:
            self._won_election(MessageType.VOTE)
            return
        for voter in sorted(self._voters):
            if voter != self.id:
                self._send(
                    Message(
                        type=MessageType.VOTE,
                        to=voter,
                        frm=self.id,
                        term=self._term,
                        index=self.log.last_index(),
                        log_term=self.log.last_term(),
                    )
                )

    def _in_lease(self) -> bool:
        """Did we hear from a live leader within the election timeout? Then we refuse to elect another.

        This is what keeps a server that was partitioned away (and whose log may be as good as
        anyone's) from deposing a leader that the rest of the cluster can reach.
        """
        if not self.check_quorum or self._leader == NONE:
            return False
        if self._role is Role.LEADER:
            return True  # with CheckQuorum a leader steps down by itself once it loses its majority
        return self._election_elapsed < self.election_tick

    def _handle_vote_request(self, m: Message) -> None:
        response = MessageType.VOTE_RESPONSE if m.type == MessageType.VOTE else MessageType.PRE_VOTE_RESPONSE
        can_vote = (
            self._vote == m.frm
            or (self._vote == NONE and self._leader == NONE)
            or (m.type == MessageType.PRE_VOTE and m.term > self._term)
        )
        if can_vote and self.log.is_up_to_date(m.index, m.log_term):
            # A granted pre-vote answers in the term it asked about, so the pre-candidate counts it.
            self._send(Message(type=response, to=m.frm, frm=self.id, term=m.term))
            if m.type == MessageType.VOTE:
                self._election_elapsed = 0
                self._vote = m.frm
        else:
            self._send(Message(type=response, to=m.frm, frm=self.id, term=self._term, reject=True))

    # -- input: messages ------------------------------------------------------------------------

    def step(self, msg: Message) -> None:
        """Process one message from a peer. Never raises on bad input: drops it and counts why."""
        reason = _malformed_reason(msg)
        if reason is None and msg.to != self.id:
            self._drop("dropped_wrong_recipient", f"addressed to {msg.to:x}, this is {self.id:x}")
            return
        if reason is None and msg.frm == self.id:
            reason = "message claims to come from this node"
        if reason is not None:
            self._drop("dropped_malformed", reason, getattr(msg, "frm", None))
            return
        mtype = MessageType(msg.type)
        if mtype in _LOCAL_MESSAGES:
            # Only the driver produces these; they carry no term and change nothing durable.
            if mtype is MessageType.UNREACHABLE:
                self.report_unreachable(msg.frm)
            else:
                self.report_snapshot(msg.frm, not msg.reject)
            return
        if not self._accepts_sender(msg, mtype):
            self._drop("dropped_non_member", f"{mtype.name} from node {msg.frm:x}, not a member")
            return
        try:
            self._step_checked(msg, mtype)
        except (Compacted, Unavailable, ValueError) as exc:
            # Only a message inconsistent with what we know committed gets here (e.g. entries that
            # would overwrite committed ones: a faulty or malicious peer). Keep our log as it is.
            self._drop("dropped_inconsistent", f"{mtype.name} from {msg.frm:x}: {exc}", msg.frm)

    def _accepts_sender(self, m: Message, mtype: MessageType) -> bool:
        if not self._voters or m.frm in self._voters or m.frm in self._learners:
            return True  # a joining node knows no membership yet and must hear its leader
        if mtype in _LEADER_MESSAGES and m.term >= self._term:
            # Only an elected leader sends these in a term; it was elected by a majority of a
            # membership at least as new as any committed one, so it is legitimate even if our
            # (applied) membership does not list it yet.
            return True
        if mtype in _VOTE_REQUESTS:
            return self._added_in_unapplied_log(m.frm) or (
                m.log_term > self.log.last_term()
                or (m.log_term == self.log.last_term() and m.index > self.log.last_index())
            )
        return False

    def _added_in_unapplied_log(self, node_id: int) -> bool:
        lo = max(self.log.applied + 1, self.log.first_index())
        for entry in self.log.entries(lo, self.log.last_index() + 1):
            if entry.type is EntryType.CONF_CHANGE:
                change = _decode_conf_change(entry.data)
                # (ADD_NODE of a learner is its promotion: a voter-to-be may campaign before we apply it.)
                if change is not None and change.node_id == node_id and change.type is ConfChangeType.ADD_NODE:
                    return True
        return False

    def _step_checked(self, m: Message, mtype: MessageType) -> None:
        if mtype is MessageType.TIMEOUT_NOW and (m.term != self._term or m.frm != self._leader):
            # Only our current leader hands over leadership, and only in its own term; anything else
            # would let one member force elections (and push terms) at will.
            self._drop("dropped_invalid", f"TIMEOUT_NOW from {m.frm:x} in term {m.term}, not from the "
                       f"leader of term {self._term} ({self._leader:x})", m.frm)
            return
        if m.term > self._term:
            if mtype in _VOTE_REQUESTS and m.context != TRANSFER_CONTEXT and self._in_lease():
                self._drop("ignored_vote_in_lease", f"{mtype.name} from {m.frm:x} while the leader is live")
                return
            if mtype is MessageType.PRE_VOTE:
                pass  # a pre-vote never changes our term
            elif mtype is MessageType.PRE_VOTE_RESPONSE and not m.reject:
                pass  # granted: the term is the one we will campaign in, not a newer one
            elif mtype in _LEADER_MESSAGES:
                self._become_follower(m.term, m.frm)
            else:
                # A newer term, but no leader of it heard from (a vote request or a response): follow
                # that term without restarting the election clock. Only hearing from a current leader
                # or granting a vote restarts it (Figure 2); otherwise a candidate that cannot win (its
                # log is behind) keeps pushing back the timeouts of those that could, and no one is
                # elected (simulator seeds 7726, 10059, 14631). A leader stepping down has no follower
                # clock to keep (it counted since its election), so it starts a fresh one.
                self._become_follower(m.term, NONE, keep_election_clock=self._role is not Role.LEADER)
        elif m.term < self._term:
            if mtype in (MessageType.HEARTBEAT, MessageType.APPEND):
                # A deposed leader that never heard of the new term: tell it, so it steps down.
                # (With pre-vote or leases, the newer term would otherwise never reach it.)
                self._send(Message(type=MessageType.APPEND_RESPONSE, to=m.frm, frm=self.id, term=self._term))
            elif mtype is MessageType.PRE_VOTE:
                self._send(
                    Message(type=MessageType.PRE_VOTE_RESPONSE, to=m.frm, frm=self.id, term=self._term, reject=True)
                )
            self._drop("dropped_stale_term", f"{mtype.name} from {m.frm:x} in term {m.term} < {self._term}")
            return

        if mtype in _VOTE_REQUESTS:
            self._handle_vote_request(m)
        elif self._role is Role.LEADER:
            self._step_leader(m, mtype)
        elif self._role is Role.FOLLOWER:
            self._step_follower(m, mtype)
        else:
            self._step_candidate(m, mtype)

    def _step_follower(self, m: Message, mtype: MessageType) -> None:
        if mtype in _LEADER_MESSAGES and self._leader not in (NONE, m.frm):
            # One leader per term, and we know this term's: a second one is a faulty member.
            self._drop("dropped_invalid", f"{mtype.name} from {m.frm:x} in term {m.term}, whose leader is "
                       f"{self._leader:x}", m.frm)
            return
        if mtype in _LEADER_MESSAGES:
            self._election_elapsed = 0
            self._leader = m.frm
            if mtype is MessageType.APPEND:
                self._handle_append(m)
            elif mtype is MessageType.HEARTBEAT:
                self._handle_heartbeat(m)
            else:
                self._handle_snapshot(m)
        elif mtype is MessageType.TIMEOUT_NOW:
            # Our leader hands over: campaign at once, skipping pre-vote, with votes that bypass leases.
            if self._promotable():
                self._count("transfer_campaigns")
                self._campaign(transfer=True)
        else:
            self._drop("ignored_unexpected", f"{mtype.name} from {m.frm:x} while follower")

    def _step_candidate(self, m: Message, mtype: MessageType) -> None:
        if mtype in _LEADER_MESSAGES:
            # A leader exists in our term (a pre-candidate's term is the current one): follow it.
            self._become_follower(m.term, m.frm)
            self._step_follower(m, mtype)
            return
        expected = MessageType.PRE_VOTE_RESPONSE if self._role is Role.PRE_CANDIDATE else MessageType.VOTE_RESPONSE
        if mtype is not expected:
            self._drop("ignored_unexpected", f"{mtype.name} from {m.frm:x} while {self._role.value}")
            return
        result = self._record_vote(m.frm, not m.reject)
        if result is VoteResult.WON:
            self._won_election(MessageType.PRE_VOTE if self._role is Role.PRE_CANDIDATE else MessageType.VOTE)
        elif result is VoteResult.LOST:
            self._become_follower(self._term, NONE)

    def _step_leader(self, m: Message, mtype: MessageType) -> None:
        pr = self._progress.get(m.frm)
        if pr is None:
            self._drop("dropped_non_member", f"{mtype.name} from {m.frm:x}, which has no progress")
            return
        if mtype is MessageType.APPEND_RESPONSE:
            pr.last_heard = self._now
            self._handle_append_response(m, pr)
        elif mtype is MessageType.HEARTBEAT_RESPONSE:
            pr.last_heard = self._now
            self._handle_heartbeat_response(m, pr)
        else:
            # Another leader in our term is impossible; vote responses arrive after we already won.
            self._drop("ignored_unexpected", f"{mtype.name} from {m.frm:x} while leader")

    # -- follower handlers ----------------------------------------------------------------------

    def _handle_append(self, m: Message) -> None:
        if m.index < self.log.committed:
            # Everything up to our commit index matches the leader's log already. Acknowledge no more
            # than this message covers: the leader checks answers against what it sent.
            index = min(self.log.committed, m.index + len(m.entries))
            self._send(Message(type=MessageType.APPEND_RESPONSE, to=m.frm, frm=self.id, term=self._term, index=index))
            return
        last_new = self.log.maybe_append(m.index, m.log_term, m.commit, m.entries)
        if last_new is not None:
            self._send(Message(type=MessageType.APPEND_RESPONSE, to=m.frm, frm=self.id, term=self._term, index=last_new))
            return
        # Our log diverges at or before m.index. Tell the leader the largest index whose term is no
        # greater than the leader's term there, so it can skip a whole term per round trip.
        hint_index, hint_term = self.log.find_conflict_by_term(min(m.index, self.log.last_index()), m.log_term)
        self._send(
            Message(
                type=MessageType.APPEND_RESPONSE,
                to=m.frm,
                frm=self.id,
                term=self._term,
                index=m.index,
                reject=True,
                reject_hint=hint_index,
                log_term=hint_term,
            )
        )

    def _handle_heartbeat(self, m: Message) -> None:
        if m.commit > self.log.last_index():
            # The leader caps a heartbeat's commit at what we acknowledged; we never lose that.
            self._drop("dropped_invalid", f"HEARTBEAT from {m.frm:x} commits {m.commit}, beyond our log's "
                       f"end at {self.log.last_index()}", m.frm)
            return
        self.log.commit_to(m.commit)  # the leader capped it at what it knows we store
        self._send(Message(type=MessageType.HEARTBEAT_RESPONSE, to=m.frm, frm=self.id, term=self._term, context=m.context))

    def _handle_snapshot(self, m: Message) -> None:
        assert m.snapshot is not None  # validated
        if self._restore(m.snapshot):
            self._count("snapshots_installed")
        # Installed or already held: we store (a log matching the leader's up to) the snapshot's index.
        index = m.snapshot.meta.index
        self._send(Message(type=MessageType.APPEND_RESPONSE, to=m.frm, frm=self.id, term=self._term, index=index))

    def _restore(self, snapshot: Snapshot) -> bool:
        meta = snapshot.meta
        if meta.index <= self.log.committed:
            return False  # we already have (and may have applied) everything it contains
        if self.log.match_term(meta.index, meta.term):
            # Our log already holds the snapshot's last entry, so it matches up to there.
            self.log.commit_to(meta.index)
            return False
        self.log.restore(snapshot)
        self._voters = set(meta.conf.voters)
        self._learners = set(meta.conf.learners)
        return True

    # -- leader handlers ------------------------------------------------------------------------

    def _handle_append_response(self, m: Message, pr: Progress) -> None:
        if m.index > pr.sent_high or (m.reject and m.reject_hint > m.index):
            self._drop("dropped_invalid", f"APPEND_RESPONSE from {m.frm:x} for index {m.index} (hint "
                       f"{m.reject_hint}), but only up to {pr.sent_high} was sent to it", m.frm)
            return
        if m.reject:
            next_probe = m.reject_hint
            if m.log_term > 0:
                # Skip every entry of ours whose term the follower cannot have at that index.
                next_probe, _ = self.log.find_conflict_by_term(m.reject_hint, m.log_term)
            if pr.maybe_decrease_to(m.index, next_probe):
                if pr.state is ProgressState.REPLICATE:
                    pr.become_probe()
                self._send_append(m.frm)
            return
        was_paused = pr.is_paused()
        if pr.maybe_update(m.index) or (pr.match == m.index and pr.state is ProgressState.PROBE):
            if pr.state is ProgressState.PROBE:
                pr.become_replicate()
            elif pr.state is ProgressState.SNAPSHOT and pr.match + 1 >= self.log.first_index():
                pr.become_probe()
                pr.become_replicate()
            elif pr.state is ProgressState.REPLICATE:
                pr.inflights.free_up_to(m.index)
            if self._maybe_commit():
                self._broadcast_append()
            elif was_paused:
                self._send_append(m.frm)
            while self._maybe_send_append(m.frm, send_if_empty=False):
                pass  # stream as much as the inflight window and message size allow
            if m.frm == self._lead_transferee and pr.match == self.log.last_index():
                self._send_timeout_now(m.frm)

    def _handle_heartbeat_response(self, m: Message, pr: Progress) -> None:
        pr.probe_sent = False  # the follower is reachable: allow the next probe
        if pr.state is ProgressState.REPLICATE and pr.inflights.full():
            pr.inflights.free_first()
        if pr.match < self.log.last_index():
            self._send_append(m.frm)
        if m.context:
            self._ack_read(m.context, m.frm)

    # -- sending --------------------------------------------------------------------------------

    def _send(self, msg: Message) -> None:
        self.msgs.append(msg)

    def _send_append(self, to: int) -> None:
        self._maybe_send_append(to, send_if_empty=True)

    def _maybe_send_append(self, to: int, send_if_empty: bool) -> bool:
        pr = self._progress.get(to)
        if pr is None or to == self.id or pr.is_paused():
            return False
        prev_index = pr.next - 1
        try:
            prev_term = self.log.term(prev_index)
            entries = self.log.entries_from(pr.next, self.max_size_per_msg)
        except Compacted:
            return self._send_snapshot(to, pr)
        if not entries and not send_if_empty:
            return False
        self._send(
            Message(
                type=MessageType.APPEND,
                to=to,
                frm=self.id,
                term=self._term,
                index=prev_index,
                log_term=prev_term,
                entries=tuple(entries),
                commit=self.log.committed,
            )
        )
        pr.sent_high = max(pr.sent_high, prev_index + len(entries))
        if entries:
            pr.sent_entries(entries[-1].index)
        elif pr.state is ProgressState.PROBE:
            pr.probe_sent = True
        return True

    def _send_snapshot(self, to: int, pr: Progress) -> bool:
        snapshot = self.log.snapshot()
        if snapshot.empty:
            # Compacted without a snapshot would be a driver bug (MemoryStorage refuses it).
            self._count("snapshot_unavailable")
            return False
        pr.become_snapshot(snapshot.meta.index)
        pr.sent_high = max(pr.sent_high, snapshot.meta.index)
        self._count("snapshots_sent")
        self._send(Message(type=MessageType.SNAPSHOT, to=to, frm=self.id, term=self._term, snapshot=snapshot))
        return True

    def _broadcast_append(self) -> None:
        for voter in sorted(self._progress):
            if voter != self.id:
                self._send_append(voter)

    def _broadcast_heartbeat(self) -> None:
        # Repeat the newest pending read's context so a lost heartbeat does not stall the read.
        context = next(reversed(self._reads)) if self._reads else b""
        self._broadcast_heartbeat_with(context)

    def _broadcast_heartbeat_with(self, context: bytes) -> None:
        for voter in sorted(self._progress):
            if voter != self.id:
                pr = self._progress[voter]
                self._send(
                    Message(
                        type=MessageType.HEARTBEAT,
                        to=voter,
                        frm=self.id,
                        term=self._term,
                        commit=min(pr.match, self.log.committed),
                        context=context,
                    )
                )

    def _send_timeout_now(self, to: int) -> None:
        self._send(Message(type=MessageType.TIMEOUT_NOW, to=to, frm=self.id, term=self._term))

    # -- commit ---------------------------------------------------------------------------------

    def _maybe_commit(self) -> bool:
        index = committed_index(self._voters, {v: pr.match for v, pr in self._progress.items()})
        if not self.log.maybe_commit(index, self._term):
            return False
        if self._reads_awaiting_commit and self.log.term_or_zero(self.log.committed) == self._term:
            waiting, self._reads_awaiting_commit = self._reads_awaiting_commit, []
            for ctx in waiting:
                self._start_read(ctx)
        return True

    def _append(self, entry_type: EntryType, data: bytes) -> int:
        index = self.log.last_index() + 1
        self.log.append([Entry(term=self._term, index=index, type=entry_type, data=data)])
        own = self._progress.get(self.id)
        if own is not None:
            own.maybe_update(index)
        self._maybe_commit()  # a cluster of one commits at once
        return index

    # -- input: application requests ------------------------------------------------------------

    def propose(self, data: bytes) -> int:
        """Append `data` as a new entry; returns its index. It is committed when applied, not before."""
        if not isinstance(data, bytes):
            raise TypeError(f"proposal data must be bytes, got {type(data).__name__}")
        self._check_can_propose(len(data))
        index = self._append(EntryType.NORMAL, data)
        self._broadcast_append()
        return index

    def propose_conf_change(self, change: ConfChange) -> int:
        """Propose one membership change; returns its index. It takes effect when applied."""
        if not isinstance(change, ConfChange):
            raise TypeError(f"expected a ConfChange, got {type(change).__name__}")
        if not isinstance(change.node_id, int) or not 0 < change.node_id <= MAX_ID:
            raise ValueError(f"node id must be a positive 64-bit integer, got {change.node_id!r}")
        data = change.encode()
        self._check_can_propose(len(data))
        if self._pending_conf_index > self.log.applied:
            raise errors.ProposalDropped(
                f"the membership change at index {self._pending_conf_index} is not applied yet "
                f"(applied {self.log.applied}); membership changes go one at a time"
            )
        node = change.node_id
        if change.type is ConfChangeType.ADD_NODE and node in self._voters:
            raise errors.ConfChangeRefused(f"node {node:x} is already a member")
        if change.type is ConfChangeType.ADD_NODE and node not in self._learners:
            # A voter must hold the log the moment it counts toward a majority; a new member first
            # catches up as a learner (ADD_LEARNER), and ADD_NODE then promotes it.
            raise errors.ConfChangeRefused(
                f"node {node:x} is not a learner: a new member joins as a learner and is promoted once caught up"
            )
        if change.type is ConfChangeType.ADD_NODE and node in self._learners:
            self._check_learner_caught_up(node)
        if change.type is ConfChangeType.ADD_LEARNER and node in self._voters:
            raise errors.ConfChangeRefused(f"node {node:x} is already a voting member")
        if change.type is ConfChangeType.ADD_LEARNER and node in self._learners:
            raise errors.ConfChangeRefused(f"node {node:x} is already a learner")
        members = self._voters | self._learners
        if change.type in (ConfChangeType.REMOVE_NODE, ConfChangeType.UPDATE_NODE) and node not in members:
            raise errors.ConfChangeRefused(f"node {node:x} is not a member")
        if change.type is ConfChangeType.REMOVE_NODE and node in self._voters:
            self._check_removal_keeps_quorum(node)
        index = self._append(EntryType.CONF_CHANGE, data)
        self._pending_conf_index = index
        self._broadcast_append()
        return index

    def _check_learner_caught_up(self, node: int) -> None:
        """Promotion only of a learner that holds nearly all of our log and answers: as a voter it must
        acknowledge new entries at once, or it weakens the majority it joins."""
        pr = self._progress.get(node)
        last = self.log.last_index()
        if pr is None or last - pr.match > self.max_learner_lag:
            match = pr.match if pr is not None else 0
            raise errors.ConfChangeRefused(
                f"learner {node:x} is not caught up: it stores up to index {match}, {last - match} entries behind "
                f"the leader's last index {last} (at most {self.max_learner_lag} allowed); it can be promoted once it "
                "has caught up"
            )
        if not self._recently_active(node):
            raise errors.ConfChangeRefused(
                f"learner {node:x} was not heard from within {self.election_tick} ticks; it can be promoted once it answers"
            )

    def _check_removal_keeps_quorum(self, node: int) -> None:
        remaining = self._voters - {node}
        if not remaining:
            raise errors.ConfChangeRefused(f"removing node {node:x} would leave no members")
        reachable = sorted(v for v in remaining if self._recently_active(v))
        needed = len(remaining) // 2 + 1
        if len(reachable) < needed:
            unreachable = sorted(remaining - set(reachable))
            raise errors.ConfChangeRefused(
                f"removing node {node:x} would leave {len(reachable)} reachable of {len(remaining)} members, "
                f"fewer than the quorum of {needed}; not heard from within {self.election_tick} ticks: "
                + ", ".join(f"{v:x}" for v in unreachable)
            )

    def _check_can_propose(self, size: int) -> None:
        if size > self.max_proposal_bytes:
            raise errors.ProposalTooLarge(size, self.max_proposal_bytes)
        if self._role is not Role.LEADER:
            raise errors.NotLeader(self._leader)
        if self._lead_transferee != NONE:
            raise errors.ProposalDropped(f"leadership transfer to node {self._lead_transferee:x} in progress")

    def transfer_leadership(self, target: int) -> None:
        """Hand leadership to `target`: catch its log up, then tell it to campaign (TIMEOUT_NOW).

        Proposals are refused until the transfer completes or is abandoned after an election timeout.
        """
        if self._role is not Role.LEADER:
            raise errors.NotLeader(self._leader)
        if target == self.id:
            return
        if target in self._learners:
            raise errors.TransferRefused(f"node {target:x} is a learner (non-voting member); it cannot lead")
        if target not in self._voters or target not in self._progress:
            raise errors.TransferRefused(f"node {target:x} is not a member")
        if self._lead_transferee == target:
            return
        self._abort_transfer()
        self._lead_transferee = target
        self._transfer_elapsed = 0
        if self._progress[target].match == self.log.last_index():
            self._send_timeout_now(target)
        else:
            self._send_append(target)

    def _abort_transfer(self) -> None:
        self._lead_transferee = NONE
        self._transfer_elapsed = 0

    def read_index(self, ctx: bytes) -> None:
        """Start a linearizable read identified by `ctx` (unique, non-empty).

        The leader notes its commit index, confirms it is still leader with a heartbeat round
        carrying `ctx`, and then emits ReadState(index, ctx) in a Ready; the driver serves the read
        once it has applied up to `index`. Only the leader serves reads; others raise NotLeader.
        """
        if not isinstance(ctx, bytes) or not ctx:
            raise ValueError("read_index needs a non-empty bytes ctx")
        if self._role is not Role.LEADER:
            raise errors.NotLeader(self._leader)
        if self.log.term_or_zero(self.log.committed) != self._term:
            # Until an entry of our own term commits, our commit index may be behind the cluster's.
            if ctx not in self._reads_awaiting_commit:
                self._reads_awaiting_commit.append(ctx)
            return
        self._start_read(ctx)

    def _start_read(self, ctx: bytes) -> None:
        if ctx in self._reads:
            return
        self._reads[ctx] = _PendingRead(index=self.log.committed, acks={self.id})
        if has_quorum(self._voters, (self.id,)):
            self._release_reads_up_to(ctx)
        else:
            self._broadcast_heartbeat_with(ctx)

    def _ack_read(self, ctx: bytes, frm: int) -> None:
        pending = self._reads.get(ctx)
        if pending is None:
            return
        pending.acks.add(frm)
        if has_quorum(self._voters, pending.acks):
            self._release_reads_up_to(ctx)

    def _release_reads_up_to(self, ctx: bytes) -> None:
        # A heartbeat round confirming leadership for `ctx` also confirms every earlier read.
        while self._reads:
            key, pending = self._reads.popitem(last=False)
            self.read_states.append(ReadState(index=pending.index, request_ctx=key))
            if key == ctx:
                break

    # -- input: the driver's reports ------------------------------------------------------------

    def report_unreachable(self, node_id: int) -> None:
        """The transport failed to reach `node_id`: stop streaming to it, probe instead."""
        pr = self._progress.get(node_id) if self._role is Role.LEADER else None
        if pr is not None and pr.state is ProgressState.REPLICATE:
            pr.become_probe()

    def report_snapshot(self, node_id: int, ok: bool) -> None:
        """The snapshot sent to `node_id` was delivered (ok) or not; resume replication either way."""
        pr = self._progress.get(node_id) if self._role is Role.LEADER else None
        if pr is None or pr.state is not ProgressState.SNAPSHOT:
            return
        if not ok:
            pr.pending_snapshot = 0
        pr.become_probe()
        # Wait for the follower's answer (or a heartbeat response) before sending again.
        pr.probe_sent = True

    # -- output ---------------------------------------------------------------------------------

    def has_ready(self) -> bool:
        """Whether ready() has anything. False while a Ready is handed out and not yet advanced."""
        if self._ready_outstanding:
            return False
        hard = self._hard_state()
        return bool(
            self._soft_state() != self._prev_soft_state
            or hard != self._prev_hard_state
            or self.log.unstable.entries
            or self.log.unstable.snapshot is not None
            or self.msgs
            or self.read_states
            or self.log.has_next_committed_entries()
        )

    def ready(self) -> Ready:
        """Everything to persist, send and apply. Call advance(ready) before the next ready()."""
        if self._ready_outstanding:
            raise RuntimeError("ready() called again before advance() of the previous Ready")
        rd = Ready()
        soft = self._soft_state()
        if soft != self._prev_soft_state:
            rd.soft_state = soft
            self._prev_soft_state = soft
        hard = self._hard_state()
        if hard != self._prev_hard_state:
            rd.hard_state = hard
            self._prev_hard_state = hard
        rd.entries = self.log.unstable_entries()
        rd.snapshot = self.log.unstable.snapshot
        rd.messages, self.msgs = self.msgs, []
        rd.committed_entries = self.log.next_committed_entries()
        rd.read_states, self.read_states = self.read_states, []
        self._ready_outstanding = True
        return rd

    def advance(self, rd: Ready) -> None:
        """The driver persisted, sent and applied `rd`: mark it stable and applied."""
        self._ready_outstanding = False
        if rd.snapshot is not None:
            self.log.stable_snapshot_to(rd.snapshot.meta.index)
            if rd.snapshot.meta.index > self.log.applied:
                self.log.applied = rd.snapshot.meta.index  # the application restored from it
        if rd.entries:
            last = rd.entries[-1]
            self.log.stable_to(last.index, last.term)
        if rd.committed_entries:
            # A snapshot restored since ready() supersedes membership changes at or before it.
            snapshot_index = self.log.first_index() - 1
            for entry in rd.committed_entries:
                if entry.index > snapshot_index and entry.index > self.log.applied:
                    self._apply_conf_change_entry(entry)
            last_index = rd.committed_entries[-1].index
            if last_index > self.log.applied:
                self.log.applied_to(min(last_index, self.log.committed))

    def _apply_conf_change_entry(self, entry: Entry) -> None:
        if entry.type is not EntryType.CONF_CHANGE:
            return
        change = _decode_conf_change(entry.data)
        if change is None:
            # Every node holds the same bytes here and skips them alike, so memberships stay equal.
            self._count("conf_change_undecodable")
            return
        self._apply_conf_change(change)

    def _apply_conf_change(self, change: ConfChange) -> None:
        node = change.node_id
        if change.type is ConfChangeType.ADD_NODE or change.type is ConfChangeType.ADD_LEARNER:
            if node in self._voters:
                return  # (ADD_LEARNER of a voter: proposals refuse it; a replayed entry changes nothing)
            if change.type is ConfChangeType.ADD_NODE:
                self._voters.add(node)
                was_learner = node in self._learners
                self._learners.discard(node)
                if was_learner:
                    return  # promoted: the leader already replicates to it
            elif node in self._learners:
                return
            else:
                self._learners.add(node)
            if self._role is Role.LEADER and node not in self._progress:
                self._progress[node] = Progress(self.log.last_index() + 1, self.max_inflight_msgs, self._now)
                self._send_append(node)
        elif change.type is ConfChangeType.REMOVE_NODE:
            if node in self._learners:
                self._learners.discard(node)
                self._progress.pop(node, None)
                return  # a learner counts toward nothing: no majority changes
            if node not in self._voters:
                return
            self._voters.discard(node)
            self._progress.pop(node, None)
            if node == self.id and self._role is Role.LEADER:
                self._count("stepped_down_removed")
                self._become_follower(self._term, NONE)
                return
            if self._lead_transferee == node:
                self._abort_transfer()
            if self._role is Role.LEADER and self._voters and self._maybe_commit():
                # A smaller majority may already hold more entries.
                self._broadcast_append()
        # UPDATE_NODE changes only the context (the address), which is the driver's business.


def _decode_conf_change(data: bytes) -> ConfChange | None:
    try:
        return ConfChange.decode(data)
    except ValueError:
        return None


def _is_u64(value: object) -> bool:
    return type(value) is int and 0 <= value <= MAX_ID  # type() excludes bool


def _malformed_reason(m: object) -> str | None:
    """Why `m` cannot be a well-formed message, or None. Checks everything the core later relies on."""
    if not isinstance(m, Message):
        return f"not a Message: {type(m).__name__}"
    try:
        mtype = MessageType(m.type)
    except ValueError:
        return f"unknown message type {m.type!r}"
    for name in ("to", "frm", "term", "log_term", "index", "commit", "reject_hint"):
        if not _is_u64(getattr(m, name)):
            return f"field {name} is not a 64-bit unsigned integer: {getattr(m, name)!r}"
    if m.frm == NONE or m.to == NONE:
        return "sender or recipient is node 0"
    if m.term > MAX_TERM or m.log_term > MAX_TERM:
        return f"term {max(m.term, m.log_term)} is beyond 2^63-1"
    if max(m.index, m.commit, m.reject_hint) > MAX_INDEX:
        return f"index {max(m.index, m.commit, m.reject_hint)} is beyond 2^63-1"
    if type(m.reject) is not bool:
        return "field reject is not a bool"
    if not isinstance(m.context, bytes):
        return "field context is not bytes"
    if mtype not in _LOCAL_MESSAGES and m.term == 0:
        return f"{mtype.name} without a term"
    if mtype is MessageType.APPEND and m.index > 0 and m.log_term == 0:
        return f"APPEND after index {m.index} without that entry's term"
    if not isinstance(m.entries, tuple):
        return "field entries is not a tuple"
    if m.entries:
        if mtype is not MessageType.APPEND:
            return f"{mtype.name} carries entries"
        previous_term = m.log_term
        expected_index = m.index + 1
        for entry in m.entries:
            if not isinstance(entry, Entry):
                return "an entry is not an Entry"
            if not (_is_u64(entry.term) and _is_u64(entry.index)) or not isinstance(entry.data, bytes):
                return "an entry has a bad field"
            try:
                EntryType(entry.type)
            except ValueError:
                return f"entry {entry.index} has unknown type {entry.type!r}"
            if entry.index != expected_index:
                return f"entries are not consecutive after index {m.index}"
            if entry.index > MAX_INDEX:
                return f"entry index {entry.index} is beyond 2^63-1"
            if entry.term < previous_term or entry.term > m.term or entry.term == 0:
                return f"entry {entry.index} has term {entry.term} out of order (message term {m.term})"
            previous_term = entry.term
            expected_index += 1
    if m.snapshot is not None or mtype is MessageType.SNAPSHOT:
        if mtype is not MessageType.SNAPSHOT:
            return f"{mtype.name} carries a snapshot"
        snap = m.snapshot
        if not isinstance(snap, Snapshot) or not isinstance(snap.data, bytes):
            return "snapshot is not a Snapshot"
        meta = snap.meta
        if not (_is_u64(getattr(meta, "index", None)) and _is_u64(getattr(meta, "term", None))):
            return "snapshot metadata has a bad index or term"
        if meta.index == 0 or meta.term == 0 or meta.term > m.term:
            return "snapshot has no index, no term, or a term from the future"
        voters = getattr(meta.conf, "voters", None)
        if not isinstance(voters, tuple) or not voters or not all(_is_u64(v) and v != NONE for v in voters):
            return "snapshot membership is not a non-empty tuple of node ids"
        learners = getattr(meta.conf, "learners", None)
        if not isinstance(learners, tuple) or not all(_is_u64(v) and v != NONE for v in learners):
            return "snapshot learners are not a tuple of node ids"
        if len(set(voters) | set(learners)) != len(voters) + len(learners):
            return "snapshot membership names a node twice"
        if meta.index > MAX_INDEX:
            return f"snapshot index {meta.index} is beyond 2^63-1"
    return None
