"""Knobs for tests and benchmarks, read from the daemon's environment. Production leaves them unset.

SWARMPY_RAFT_TICK  seconds per Raft tick (a float). Set, it pins this daemon's tick, overriding the
                   cluster's (`swarm init/update --raft-tick`, default 100 ms); the tick counts still come
                   from the cluster. Tests use it to keep timing fixed whatever the cluster says. Every
                   manager of a swarm should run with the same value.
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


def pinned_raft_tick(environ: dict[str, str] | None = None) -> float | None:
    """The tick SWARMPY_RAFT_TICK pins, or None when it is unset. Raises RuntimeError for a bad value."""
    raw = (os.environ if environ is None else environ).get(RAFT_TICK_ENV, "").strip()
    if not raw:
        return None
    try:
        tick = float(raw)
    except ValueError:
        raise RuntimeError(f"{RAFT_TICK_ENV}={raw!r}: not a number of seconds (the environment's fault)") from None
    if not MIN_RAFT_TICK <= tick <= 60:
        raise RuntimeError(f"{RAFT_TICK_ENV}={raw!r}: a Raft tick must be between {MIN_RAFT_TICK} and 60 seconds")
    return tick


def raft_config_from_environment(environ: dict[str, str] | None = None) -> DriverConfig:
    """The Raft driver's starting configuration: the defaults, with the tick from SWARMPY_RAFT_TICK if set.
    (A manager then follows the cluster's Raft config, except a pinned tick.)"""
    tick = pinned_raft_tick(environ)
    return DriverConfig() if tick is None else DriverConfig(tick_interval=tick)
