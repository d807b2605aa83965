"""The core never trusts a message: malformed, misaddressed, non-member and old-term input is dropped
and counted, and step() never raises on it."""

from __future__ import annotations

import dataclasses

import pytest

from swarmpy.raft.messages import ConfState, Entry, Message, MessageType, Snapshot, SnapshotMeta

from .harness import Cluster

GOOD = Message(MessageType.APPEND, to=2, frm=1, term=2, index=3, log_term=1, entries=(Entry(2, 4, data=b"a"),))

MALFORMED = [
    "not a message",
    None,
    dataclasses.replace(GOOD, type=99),
    dataclasses.replace(GOOD, term=-1),
    dataclasses.replace(GOOD, term=2**64),
    dataclasses.replace(GOOD, index="3"),
    dataclasses.replace(GOOD, frm=0),
    dataclasses.replace(GOOD, frm=2),  # claims to come from the recipient
    dataclasses.replace(GOOD, reject=1),
    dataclasses.replace(GOOD, context="text"),
    dataclasses.replace(GOOD, term=0),
    dataclasses.replace(GOOD, entries=[Entry(2, 4)]),  # a list, not a tuple
    dataclasses.replace(GOOD, entries=(Entry(2, 5),)),  # not right after index 3
    dataclasses.replace(GOOD, entries=(Entry(3, 4),)),  # term from the future
    dataclasses.replace(GOOD, entries=(Entry(2, 4), Entry(1, 5))),  # terms go backwards
    dataclasses.replace(GOOD, entries=(Entry(2, 4, type=7),)),
    dataclasses.replace(GOOD, entries=(Entry(2, 4, data="str"),)),
    dataclasses.replace(GOOD, entries=("entry",)),
    Message(MessageType.SNAPSHOT, to=2, frm=1, term=2),  # no snapshot
    Message(MessageType.SNAPSHOT, to=2, frm=1, term=2, snapshot=Snapshot(SnapshotMeta(5, 3, ConfState((1, 2, 3))))),
    Message(MessageType.SNAPSHOT, to=2, frm=1, term=2, snapshot=Snapshot(SnapshotMeta(5, 2, ConfState(())))),
    Message(MessageType.HEARTBEAT, to=2, frm=1, term=2, snapshot=Snapshot(SnapshotMeta(5, 2, ConfState((1,))))),
]


@pytest.mark.parametrize("bad", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_message_is_dropped_counted_and_changes_nothing(bad):
    c = Cluster(3)
    c.elect(1)
    node = c[2]
    before = (node.term, node.vote, node.log.last_index(), node.log.committed, node.leader)
    node.step(bad)
    assert node.stats["dropped_malformed"] == 1 and node.last_drop_reason
    assert (node.term, node.vote, node.log.last_index(), node.log.committed, node.leader) == before


def test_message_for_another_node_is_dropped_and_counted():
    c = Cluster(3)
    c[2].step(dataclasses.replace(GOOD, to=3))
    assert c[2].stats["dropped_wrong_recipient"] == 1


def test_messages_from_non_members_are_dropped_and_counted():
    c = Cluster(3)
    c.elect(1)
    term = c[2].term
    c[2].step(Message(MessageType.VOTE, to=2, frm=99, term=term + 5, index=0, log_term=0))
    c[2].step(Message(MessageType.HEARTBEAT_RESPONSE, to=2, frm=99, term=term))
    c[1].step(Message(MessageType.APPEND_RESPONSE, to=1, frm=99, term=term, index=1000))
    assert c[2].stats["dropped_non_member"] == 2 and c[1].stats["dropped_non_member"] == 1
    assert c[2].term == term and c[1].log.committed < 1000


def test_messages_from_older_terms_are_ignored_and_counted():
    c = Cluster(3)
    c.elect(1)
    c.tick(1)
    c[1].transfer_leadership(2)
    c.stabilize()
    term = c[3].term
    last = c[3].log.last_index()
    c[3].step(Message(MessageType.APPEND, to=3, frm=1, term=term - 1, index=last, log_term=term - 1,
                      entries=(Entry(term - 1, last + 1, data=b"stale"),)))
    c[3].step(Message(MessageType.VOTE, to=3, frm=1, term=term - 1, index=last + 10, log_term=term - 1))
    assert c[3].stats["dropped_stale_term"] == 2
    assert c[3].log.last_index() == last and c[3].term == term


def test_append_that_would_overwrite_committed_entries_changes_nothing_and_does_not_raise():
    c = Cluster(3)
    c.elect(1)
    c.propose(1, b"x")
    node = c[2]
    committed = node.log.committed
    evil = Message(MessageType.APPEND, to=2, frm=1, term=node.term, index=1, log_term=1,
                   entries=(Entry(node.term, 2, data=b"overwrite"),), commit=0)
    entries_before = node.log.entries(1, committed + 1)
    node.step(evil)
    assert node.log.committed == committed and node.log.entries(1, committed + 1) == entries_before
