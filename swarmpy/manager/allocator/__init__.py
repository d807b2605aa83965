"""The allocator: service endpoints (ingress ports) and the NEW → PENDING step of every task."""

from .allocator import Allocator, PortAllocator, PortConflict

__all__ = ["Allocator", "PortAllocator", "PortConflict"]
