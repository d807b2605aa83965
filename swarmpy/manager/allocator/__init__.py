"""The allocator: networks (subnets, VNIs), service endpoints (ingress ports, VIPs), task addresses, and
the NEW → PENDING step of every task."""

from .allocator import Allocator, PortAllocator, PortConflict
from .networks import NetworkAllocator

__all__ = ["Allocator", "NetworkAllocator", "PortAllocator", "PortConflict"]
