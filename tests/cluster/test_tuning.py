"""SWARMPY_RAFT_TICK: the test knob that shortens Raft's tick (no processes here)."""

from __future__ import annotations

import pytest

from swarmpy.api import objects_pb2
from swarmpy.daemon.tuning import pinned_raft_tick, raft_config_from_environment
from swarmpy.manager.controlapi.errors import InvalidArgument
from swarmpy.manager.controlapi.raft_timing import effective_timing
from swarmpy.manager.controlapi.validation import validate_cluster_spec
from swarmpy.units import MILLISECOND


def test_unset_takes_the_100ms_default_tick():
    assert raft_config_from_environment({}).tick_interval == 0.1
    assert raft_config_from_environment({"SWARMPY_RAFT_TICK": " "}).election_tick == 10
    assert pinned_raft_tick({}) is None and pinned_raft_tick({"SWARMPY_RAFT_TICK": "0.2"}) == 0.2


@pytest.mark.parametrize(
    ("tick", "heartbeat", "election", "field"),
    [
        (0, 5, 5, "raft.election_tick"),  # heartbeat >= election
        (0, 3, 5, "raft.election_tick"),  # election < 2 heartbeats
        (0, 0, 1, "raft.election_tick"),  # election 1 <= the default heartbeat 1
        (5 * MILLISECOND, 0, 0, "raft.tick_period"),
        (-1, 0, 0, "raft.tick_period"),
    ],
)
def test_raft_timing_that_breaks_the_rules_is_refused_naming_the_value(tick, heartbeat, election, field):
    spec = objects_pb2.ClusterSpec(raft=objects_pb2.RaftConfig(tick_period=tick, heartbeat_tick=heartbeat, election_tick=election))
    with pytest.raises(InvalidArgument) as refused:
        validate_cluster_spec(spec)
    assert refused.value.field == field and "\n" not in str(refused.value)


def test_good_raft_timing_passes_and_means_what_it_says():
    validate_cluster_spec(objects_pb2.ClusterSpec(raft=objects_pb2.RaftConfig(heartbeat_tick=2, election_tick=4)))
    timing = effective_timing(0, 0, 0)
    assert (timing.tick_seconds, timing.heartbeat_tick, timing.election_tick) == (0.1, 1, 10)


def test_a_short_tick_is_taken_and_nothing_else_changes():
    config = raft_config_from_environment({"SWARMPY_RAFT_TICK": "0.1"})
    assert config.tick_interval == 0.1
    assert config.election_tick == 10 and config.heartbeat_tick == 1


@pytest.mark.parametrize("raw", ["fast", "0", "-1", "1000"])
def test_nonsense_is_refused_naming_the_variable(raw):
    with pytest.raises(RuntimeError, match="SWARMPY_RAFT_TICK"):
        raft_config_from_environment({"SWARMPY_RAFT_TICK": raw})
