"""The data-plane benches run end to end in their smallest form (bench/overlay_bench.py, bench/mesh_bench.py):
lab hosts in namespaces, real containers, wrk on every path. What is checked is that each path served
requests without socket errors and that every figure was printed, not the targets (the machine decides those;
bench/RESULTS.md holds the measured runs)."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_bench(*args: str) -> str:
    result = subprocess.run([sys.executable, *args], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{args[0]} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_overlay_bench_serves_every_path_and_prints_every_figure():
    out = run_bench("bench/overlay_bench.py", "--seconds", "1", "--rounds", "2")
    rounds = [ast.literal_eval(line.split(":", 1)[1]) for line in out.splitlines() if line.startswith("round ")]
    assert len(rounds) == 2, out
    for figures in rounds:
        assert set(figures) == {"plain", "overlay", "vip", "direct"}, figures
        for path, result in figures.items():
            assert result["rps"] > 100, (path, result)
            assert "errors" not in result, (path, result)  # wrk's socket errors: refused, reset, timed out
    assert re.search(r"east-west throughput overlay/plain [\d.]+ .* p99 overlay/plain [\d.]+", out), out
    assert re.search(r"VIP/direct p50 [\d.]+", out), out
    for depth in (1, 32):
        assert re.search(rf"DNS, {depth} in flight: [1-9]\d* q/s, p50 [\d.]+ ms, p99 [\d.]+ ms", out), out


def test_mesh_bench_serves_both_paths_and_times_the_changes():
    out = run_bench("bench/mesh_bench.py", "--seconds", "1", "--rounds", "2", "--changes", "3")
    rows = re.findall(r"^\s+(mesh|direct)\s+(\d+) req/s.*?ms(  \(errors\))?$", out, re.MULTILINE)
    assert sorted(label for label, _, _ in rows) == ["direct", "direct", "mesh", "mesh"], out
    for label, rps, errors in rows:
        assert int(rps) > 100 and not errors, (label, rps, out)
    assert re.search(r"throughput ratio [\d.]+ .* p99 ratio [\d.]+", out), out
    assert re.search(r"change -> mesh updated on 3 nodes, 100 tasks, 3 changes: p50 \d+ ms, p99 \d+ ms", out), out
