"""The chaos bench's judgement: what counts as lost, duplicated, or a refusal that lied; how errors read."""

from __future__ import annotations

import grpc
import grpc.aio

from bench.chaos_bench import ACKNOWLEDGED, AMBIGUOUS, DUPLICATE, REFUSED, Attempt, check_view, classify
from swarmpy.manager.control_router import WENT_AWAY_WITH_WRITE, no_leader_after_wait


def attempt(name: str, outcome: str, service_id: str = "") -> Attempt:
    return Attempt(client=0, name=name, started=0.0, outcome=outcome, service_id=service_id)


def error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


def test_a_clean_view_has_no_problems():
    attempts = [attempt("p-c0-1", ACKNOWLEDGED, "s1"), attempt("p-c0-2", AMBIGUOUS), attempt("p-c0-3", REFUSED)]
    assert check_view("m1", {"p-c0-1": ["s1"], "p-c0-2": ["s2"], "other": ["x"]}, "p", attempts) == []
    assert check_view("m1", {"p-c0-1": ["s1"]}, "p", attempts) == []  # the ambiguous one may be absent


def test_lost_duplicated_invented_and_lying_refusals_are_each_reported():
    attempts = [attempt("p-c0-1", ACKNOWLEDGED, "s1"), attempt("p-c0-2", ACKNOWLEDGED, "s2"),
                attempt("p-c0-3", REFUSED), attempt("p-c0-4", DUPLICATE)]
    problems = check_view("m2", {"p-c0-2": ["s2", "s9"], "p-c0-3": ["s3"], "p-c9-9": ["s4"]}, "p", attempts)
    assert len(problems) == 6, problems
    assert any("acknowledged p-c0-1 (s1) lost" in p for p in problems)
    assert any("p-c0-2 exists 2 times" in p for p in problems)
    assert any("acknowledged p-c0-2 (s2) lost" in p for p in problems)
    assert any("p-c0-3 was refused as not applied, yet exists" in p for p in problems)
    assert any("p-c9-9 was never attempted" in p for p in problems)
    assert any("p-c0-4 answered duplicate" in p for p in problems)


def test_errors_are_classified_by_what_they_say_about_the_write():
    assert classify(error(grpc.StatusCode.UNAVAILABLE, no_leader_after_wait(4.0))) == REFUSED
    assert classify(error(grpc.StatusCode.UNAVAILABLE, f"the swarm does not have a leader ({WENT_AWAY_WITH_WRITE})")) == AMBIGUOUS
    assert classify(error(grpc.StatusCode.UNAVAILABLE, "Socket closed")) == AMBIGUOUS
    assert classify(error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")) == AMBIGUOUS
    assert classify(error(grpc.StatusCode.ALREADY_EXISTS, "name conflicts with an existing object")) == DUPLICATE
