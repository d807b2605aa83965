"""SWARMPY_RAFT_TICK: the test knob that shortens Raft's tick (no processes here)."""

from __future__ import annotations

import pytest

from swarmpy.daemon.tuning import raft_config_from_environment


def test_unset_keeps_swarmkits_one_second_tick():
    assert raft_config_from_environment({}).tick_interval == 1.0
    assert raft_config_from_environment({"SWARMPY_RAFT_TICK": " "}).election_tick == 10


def test_a_short_tick_is_taken_and_nothing_else_changes():
    config = raft_config_from_environment({"SWARMPY_RAFT_TICK": "0.1"})
    assert config.tick_interval == 0.1
    assert config.election_tick == 10 and config.heartbeat_tick == 1


@pytest.mark.parametrize("raw", ["fast", "0", "-1", "1000"])
def test_nonsense_is_refused_naming_the_variable(raw):
    with pytest.raises(RuntimeError, match="SWARMPY_RAFT_TICK"):
        raft_config_from_environment({"SWARMPY_RAFT_TICK": raw})
