"""Mutation testing of the Raft simulator: plant one classic bug at a time in a copy of the code and
check that `python -m tests.raft.simulator` catches it within a stated number of seeds.

    python -m tests.raft.mutations [--seeds N] [--only NAME ...]

Each mutation is a textual patch of one file in a fresh copy of swarmpy/ and tests/ (the working tree
is never touched); the copy's simulator runs seeds 0..bound-1 (or 0..N-1 with --seeds) with
--fail-fast, and the mutation counts as caught when a seed fails; the line printed says which check
failed. Exit status 1 if any mutation survives its budget. Each `bound` is the stated budget: about
twice the seeds it took when measured (see /work/coord/notes/raft.md); tests/raft/test_mutations.py
runs them all in CI.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str  # relative to the repository
    old: str
    new: str
    bound: int = 60  # seeds within which the simulator must catch it
    also: tuple[tuple[str, str, str], ...] = ()  # further (path, old, new) patches of the same bug


def patches(mutation: Mutation) -> list[tuple[str, str, str]]:
    return [(mutation.path, mutation.old, mutation.new), *mutation.also]


MUTATIONS = [
    Mutation("figure-8 rule removed (commit entries of older terms by counting replicas)", "swarmpy/raft/log.py",
             "if index > self.committed and self.term_or_zero(index) == term:",
             "if index > self.committed and self.term_or_zero(index) > 0:", bound=30),
    Mutation("ReadIndex without a confirming heartbeat quorum", "swarmpy/raft/core.py",
             "self._reads[ctx] = _PendingRead(index=self.log.committed, acks={self.id})\n        if has_quorum(self._voters, (self.id,)):",
             "self._reads[ctx] = _PendingRead(index=self.log.committed, acks={self.id})\n        if True:",
             bound=150),
    Mutation("concurrent membership changes", "swarmpy/raft/core.py",
             # Only the guard against a second change in flight goes: a new leader still waits for its
             # first entry (whose index starts as the pending one) before proposing any change.
             "if self._pending_conf_index > self.log.applied:",
             "if self._pending_conf_index > self.log.applied and self._pending_conf_index not in self._conf_indexes:",
             bound=60,
             also=(("swarmpy/raft/core.py", "        self._pending_conf_index = index\n",
                    "        self._pending_conf_index = index\n        self._conf_indexes = getattr(self, '_conf_indexes', set()) | {index}\n"),
                   ("swarmpy/raft/core.py", "        self._pending_conf_index = 0\n",
                    "        self._pending_conf_index = 0\n        self._conf_indexes = set()\n"))),
    Mutation("membership change before an own-term commit", "swarmpy/raft/core.py",
             "self._pending_conf_index = self.log.last_index()", "self._pending_conf_index = 0", bound=40),
    Mutation("vote not persisted", "swarmpy/raft/core.py",
             "return HardState(term=self._term, vote=self._vote, commit=self.log.committed)",
             "return HardState(term=self._term, vote=NONE, commit=self.log.committed)", bound=30),
    # The driver contract itself (DriverCore, which RaftDriver and the simulator both run): the Ready's
    # messages leave before its entries and hard state are saved; a crash in between breaks promises.
    Mutation("messages sent before persisting", "swarmpy/raft/driver_core.py",
             "        # 1. Persist: snapshot, entries, hard state -- one save (one fsync).\n",
             "        if rd.messages:\n            yield Send(rd.messages)\n            rd.messages = []\n"),
    Mutation("up-to-date check on votes removed", "swarmpy/raft/log.py",
             "return last_term > my_term or (last_term == my_term and last_index >= self.last_index())",
             "return True", bound=10),
    Mutation("leader lease check removed", "swarmpy/raft/core.py",
             "if mtype in _VOTE_REQUESTS and m.context != TRANSFER_CONTEXT and self._in_lease():", "if False:",
             bound=10),
    # Learners: a non-voting member's acknowledgement commits entries, or its grant elects a leader.
    Mutation("learner counted in the commit quorum", "swarmpy/raft/core.py",
             "index = committed_index(self._voters, {v: pr.match for v, pr in self._progress.items()})",
             "index = committed_index(self._voters | self._learners, {v: pr.match for v, pr in self._progress.items()})",
             bound=40),
    Mutation("learners' votes counted (and asked for)", "swarmpy/raft/core.py",
             "        return vote_result(self._voters, self._votes)",
             "        return vote_result(self._voters | self._learners, self._votes)",
             bound=120,
             also=(("swarmpy/raft/core.py",
                    "        for voter in sorted(self._voters):\n            if voter != self.id:\n                self._send(\n"
                    "                    Message(\n                        type=request,",
                    "        for voter in sorted(self._voters | self._learners):\n            if voter != self.id:\n"
                    "                self._send(\n                    Message(\n                        type=request,"),
                   ("swarmpy/raft/core.py",
                    "        for voter in sorted(self._voters):\n            if voter != self.id:\n                self._send(\n"
                    "                    Message(\n                        type=MessageType.VOTE,",
                    "        for voter in sorted(self._voters | self._learners):\n            if voter != self.id:\n"
                    "                self._send(\n                    Message(\n                        type=MessageType.VOTE,"))),
    # Our own: the WAL, which the simulator now runs for real, acknowledging what is not yet durable.
    Mutation("WAL acknowledges a batch before its fdatasync", "swarmpy/raft/wal.py",
             "        self.files.append(self._fd, buffer)\n        self.files.fdatasync(self._fd)\n",
             "        self.files.append(self._fd, buffer)\n"),
]


def run_mutation(mutation: Mutation, seeds: int | None = None) -> tuple[bool, str]:
    """Run the simulator on a copy with `mutation` planted; (caught, what the run said)."""
    seeds = seeds or mutation.bound
    with tempfile.TemporaryDirectory(prefix="raft-mutation-") as copy:
        for folder in ("swarmpy", "tests"):
            shutil.copytree(os.path.join(ROOT, folder), os.path.join(copy, folder),
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for path, old, new in patches(mutation):
            target = os.path.join(copy, path)
            with open(target) as file:
                source = file.read()
            if source.count(old) != 1:
                return False, f"patch of {path} does not apply ({source.count(old)} matches): the code moved"
            with open(target, "w") as file:
                file.write(source.replace(old, new))
        result = subprocess.run(
            [sys.executable, "-m", "tests.raft.simulator", "--seeds", str(seeds), "--fail-fast"],
            cwd=copy, env={**os.environ, "PYTHONPATH": copy}, capture_output=True, text=True, timeout=3600,
        )
        last = (result.stdout.strip().splitlines() or [""])[-1]
        reason = next((line for line in result.stderr.splitlines() if line.startswith("FAIL ")), "")
        return result.returncode != 0, f"{last[:100]} {reason[:200]}".strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=None, help="seeds per mutation (default: each one's bound)")
    parser.add_argument("--only", nargs="*", help="run only mutations whose name contains one of these")
    args = parser.parse_args()
    survivors = 0
    for mutation in MUTATIONS:
        if args.only and not any(word in mutation.name for word in args.only):
            continue
        started = time.monotonic()
        caught, detail = run_mutation(mutation, args.seeds)
        survivors += not caught
        verdict = "CAUGHT  " if caught else "SURVIVED"
        budget = args.seeds or mutation.bound
        print(f"{verdict} {mutation.name} (bound {budget} seeds, {time.monotonic() - started:.0f}s): {detail}", flush=True)
    print(f"{survivors} of the planted bugs survived their budgets")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
