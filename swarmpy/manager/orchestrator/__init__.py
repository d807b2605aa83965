"""The leader's orchestration loops: replicated, global and jobs orchestrators, restarts, updates, delayed starts,
task reaping."""

from .delayedstart import DelayedStarter
from .global_ import GlobalOrchestrator
from .jobs import JobsOrchestrator
from .replicated import ReplicatedOrchestrator
from .restart import RestartSupervisor
from .taskreaper import TaskReaper

__all__ = [
    "DelayedStarter",
    "GlobalOrchestrator",
    "JobsOrchestrator",
    "ReplicatedOrchestrator",
    "RestartSupervisor",
    "TaskReaper",
]
