"""Knobs for tests and benchmarks, read from the daemon's environment. Production leaves them unset.

SWARMPY_RAFT_TICK  seconds per Raft tick (a float; default 1 s, as swarmkit). Heartbeats go every tick and
                   an election starts after 10-20 ticks without a leader, so 0.1 makes failover take
                   1-2 s instead of 10-20 s: what multi-host tests need to stay fast. Every manager of a
                   swarm should run with the same value.
"""

from __future__ import annotations

import os

from swarmpy.raft.driver import DriverConfig

RAFT_TICK_ENV = "SWARMPY_RAFT_TICK"
MIN_RAFT_TICK = 0.01  # below this the tick task alone would keep a core busy


# Threads for the daemon's blocking calls (asyncio.to_thread: Docker SDK calls, fsync, netlink). Each
# call is short, but a worker starts, stops and removes dozens of containers at once, and the engine
# serves them concurrently; a pool of cores + 4 serialised them.
BLOCKING_CALL_THREADS = 64


def raft_config_from_environment(environ: dict[str, str] | None = None) -> DriverConfig:
    """The Raft driver's configuration: swarmkit's defaults, with the tick from SWARMPY_RAFT_TICK if set."""
    raw = (os.environ if environ is None else environ).get(RAFT_TICK_ENV, "").strip()
    if not raw:
        return DriverConfig()
    try:
        tick = float(raw)
    except ValueError:
        raise RuntimeError(f"{RAFT_TICK_ENV}={raw!r}: not a number of seconds (the environment's fault)") from None
    if not MIN_RAFT_TICK <= tick <= 60:
        raise RuntimeError(f"{RAFT_TICK_ENV}={raw!r}: a Raft tick must be between {MIN_RAFT_TICK} and 60 seconds")
    return DriverConfig(tick_interval=tick)
