"""The mutation command (tests/raft/mutations.py): each planted bug's patch matches exactly one place in
today's code, and the simulator catches every planted bug within its stated bound of seeds."""

from __future__ import annotations

import os

import pytest

from .mutations import MUTATIONS, ROOT, patches, run_mutation


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_each_planted_bug_still_patches_exactly_one_place(mutation):
    for path, old, _new in patches(mutation):
        with open(os.path.join(ROOT, path)) as file:
            assert file.read().count(old) == 1, path


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_the_simulator_catches_each_planted_bug_within_its_bound(mutation):
    caught, detail = run_mutation(mutation)
    assert caught, f"{mutation.name} survived {mutation.bound} seeds: {detail}"
