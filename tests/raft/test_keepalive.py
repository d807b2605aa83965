"""RaftDriver.keepalive_heartbeats: heartbeats for a starved leader's loop, and only then."""

from swarmpy.raft.driver import KEEPALIVE_AFTER_TICKS, DriverConfig, RaftDriver
from swarmpy.raft.messages import MessageType


def _driver() -> RaftDriver:
    driver = RaftDriver.__new__(RaftDriver)
    driver.node_id = 1
    driver.config = DriverConfig()
    driver._leading = (7, (2, 3))
    driver._last_tick = 100.0
    return driver


def test_nothing_while_the_loop_ticks_or_when_not_leading():
    driver = _driver()
    assert driver.keepalive_heartbeats(100.0 + (KEEPALIVE_AFTER_TICKS - 1) * driver.config.tick_interval) == []
    driver._leading = None
    assert driver.keepalive_heartbeats(101.0) == []


def test_heartbeats_of_its_term_commit_nothing_while_starved_then_stop_at_the_limit():
    driver = _driver()
    beats = driver.keepalive_heartbeats(101.0)
    assert [(m.type, m.to, m.frm, m.term, m.commit, m.context) for m in beats] == [
        (MessageType.HEARTBEAT, 2, 1, 7, 0, b""), (MessageType.HEARTBEAT, 3, 1, 7, 0, b"")]
    assert driver.keepalive_heartbeats(100.0 + driver.config.keepalive_limit + 0.1) == []
