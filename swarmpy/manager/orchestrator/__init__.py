"""The leader's orchestration loops: replicated and global orchestrators, restarts, updates, task reaping."""

from .global_ import GlobalOrchestrator
from .replicated import ReplicatedOrchestrator
from .restart import RestartSupervisor
from .taskreaper import TaskReaper

__all__ = ["GlobalOrchestrator", "ReplicatedOrchestrator", "RestartSupervisor", "TaskReaper"]
