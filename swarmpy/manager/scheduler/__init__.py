"""The scheduler: assigns PENDING tasks to nodes (placement.py decides, scheduler.py is the loop)."""

from .nodeinfo import NodeInfo
from .placement import explain, place_group, place_preassigned
from .scheduler import Scheduler

__all__ = ["NodeInfo", "Scheduler", "explain", "place_group", "place_preassigned"]
