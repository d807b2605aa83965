"""The node simulator: many simulated worker nodes in one process, for benchmarks and scale tests.

Each simulated node is a real swarm member (its own join, certificate, mutual-TLS session and Agent);
only the executor is simulated (`SimulatedExecutorWorker`: the real task state machine, fake
containers with configurable delays and failure rates). It lives with the benchmarks and tests and is
never part of the daemon.

    from bench.simulator import NodeSimulator, SimulationProfile
"""

from .executor import SimulatedExecutorWorker, SimulationProfile
from .nodes import NodeSimulator, SimulatedNode, open_file_count, raise_open_files_limit

__all__ = [
    "NodeSimulator",
    "SimulatedExecutorWorker",
    "SimulatedNode",
    "SimulationProfile",
    "open_file_count",
    "raise_open_files_limit",
]
