"""LeaderLoops: a loop that loses the leadership ends quietly, even when a TaskGroup wraps the error."""

import asyncio
import logging

from swarmpy.manager.manager import LeaderLoops, without_leadership_loss
from swarmpy.raft.errors import LeadershipLost, NotLeader


async def _group_losing_leadership():
    async def sibling():
        await asyncio.sleep(10)

    async def writer():
        raise LeadershipLost("leadership lost while the proposal was in flight")

    async with asyncio.TaskGroup() as group:
        group.create_task(sibling())
        group.create_task(writer())


async def test_leadership_lost_inside_an_exception_group_is_one_line_without_traceback(caplog):
    loops = LeaderLoops({"orchestrator": _group_losing_leadership})
    caplog.set_level(logging.INFO, logger="swarmpy.manager.manager")
    await asyncio.wait_for(loops._supervise("orchestrator", _group_losing_leadership), 2)
    records = [r for r in caplog.records if "orchestrator" in r.getMessage()]
    assert len(records) == 1
    assert records[0].levelno == logging.INFO and records[0].exc_info is None
    assert "no longer the leader" in records[0].getMessage()


def test_a_real_crash_beside_a_leadership_loss_is_kept():
    crash = ValueError("bug")
    group = ExceptionGroup("loop", [NotLeader(2), crash])
    rest = without_leadership_loss(group)
    assert rest is not None and rest.exceptions == (crash,)
    assert without_leadership_loss(ExceptionGroup("loop", [ExceptionGroup("inner", [LeadershipLost("x")])])) is None
    assert without_leadership_loss(crash) is crash
