"""The leader's orchestration loops: replicated, global and jobs orchestrators, restarts, updates, task reaping."""

from .global_ import GlobalOrchestrator
from .jobs import JobsOrchestrator
from .replicated import ReplicatedOrchestrator
from .restart import RestartSupervisor
from .taskreaper import TaskReaper

__all__ = ["GlobalOrchestrator", "JobsOrchestrator", "ReplicatedOrchestrator", "RestartSupervisor", "TaskReaper"]
