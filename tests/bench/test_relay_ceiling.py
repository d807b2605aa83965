"""bench/relay_ceiling.py runs end to end in its smallest form: swarmpy's door, a bare user-space relay and
the BPF sockmap relay each pass the engine's answers on (the same /images/json answer, twice on one connection,
the kernel side's answers only ever passed by its redirect program) and every figure is printed. The ratios
themselves are the machine's (bench/RESULTS.md)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_relay_ceiling_relays_through_every_side_and_prints_every_figure():
    result = subprocess.run([sys.executable, "-m", "bench.relay_ceiling", "--rounds", "2", "--requests", "40"],
                            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
                            timeout=120)
    out = result.stdout
    assert result.returncode == 0, f"{out}\n{result.stderr}"
    assert re.search(r"GET /v1.41/images/json: the same \d+-byte answer on every side, twice", out), out
    rounds = re.findall(r"^round \d: engine (\d+) req/s, door (\d+) \([\d.]+\), user (\d+) \([\d.]+\), "
                        r"kernel (\d+) \([\d.]+\)$", out, re.MULTILINE)
    assert len(rounds) == 2, out
    assert all(int(rate) > 50 for row in rounds for rate in row), rounds
    for kind in ("door", "user", "kernel"):
        assert re.search(rf"^{kind} / engine socket: median [\d.]+ ", out, re.MULTILINE), out
