"""The Raft benchmark, small and for correctness only: every proposal commits, every node applies it,
a new leader follows a stopped one. No timing assertions."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[2] / "bench" / "raft_bench.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("raft_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(60)
async def test_bench_runs_and_every_node_applies_everything(tmp_path):
    bench = load_bench()
    result = await bench.run(sequential=50, pipelined=500, window=100, failovers=2, tick_interval=0.01, folder=str(tmp_path))
    assert result.applied_everywhere
    assert result.sequential_per_second > 0 and result.pipelined_per_second > 0
    assert len(result.failover_seconds) == 2
    assert "commits/s" in bench.report(result)
