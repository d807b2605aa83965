"""Join tokens: exact format, parse errors that name the bad part, CA digest pinning, secret checks."""

from __future__ import annotations

import re

import pytest

from swarmpy.api import objects_pb2
from swarmpy.ca import certs, tokens
from swarmpy.ca.errors import InvalidJoinTokenSecret, JoinTokenForOtherSwarm, MalformedJoinToken
from tests.ca.swarm_fixtures import new_swarm


def test_token_format():
    swarm = new_swarm()
    token = tokens.generate_join_token(swarm.root_cert)
    assert re.fullmatch(r"SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}", token)
    assert len(token) == tokens.TOKEN_LENGTH == 85
    parsed = tokens.parse_join_token(token)
    assert parsed.ca_digest == certs.ca_digest(swarm.root_cert)
    assert str(parsed) == token
    assert tokens.generate_join_token(swarm.root_cert) != token


def test_worker_and_manager_tokens_grant_their_roles():
    swarm = new_swarm()
    join_tokens = swarm.cluster.root_ca.join_tokens
    assert join_tokens.worker != join_tokens.manager
    assert tokens.role_for_join_token(join_tokens.worker, join_tokens, swarm.root_cert) == objects_pb2.WORKER
    assert tokens.role_for_join_token(join_tokens.manager, join_tokens, swarm.root_cert) == objects_pb2.MANAGER
    # Surrounding whitespace from a copy-paste is forgiven.
    assert tokens.role_for_join_token(f"  {join_tokens.worker}\n", join_tokens, swarm.root_cert) == objects_pb2.WORKER


def test_rotation_replaces_only_the_secret_and_retires_the_old_token():
    swarm = new_swarm()
    join_tokens = swarm.cluster.root_ca.join_tokens
    old = join_tokens.worker
    join_tokens.worker = tokens.rotate_join_token(old)
    assert join_tokens.worker[:59] == old[:59]
    assert join_tokens.worker[59:] != old[59:]
    with pytest.raises(InvalidJoinTokenSecret, match="invalid join token"):
        tokens.role_for_join_token(old, join_tokens, swarm.root_cert)
    assert tokens.role_for_join_token(join_tokens.worker, join_tokens, swarm.root_cert) == objects_pb2.WORKER


def test_token_of_another_swarm_is_refused_for_its_digest():
    ours, theirs = new_swarm(), new_swarm()
    with pytest.raises(JoinTokenForOtherSwarm, match="different swarm"):
        tokens.role_for_join_token(theirs.worker_token, ours.cluster.root_ca.join_tokens, ours.root_cert)


def test_empty_configured_token_matches_nothing():
    swarm = new_swarm()
    join_tokens = objects_pb2.JoinTokens(worker=swarm.worker_token)  # no manager token configured
    with pytest.raises(InvalidJoinTokenSecret):
        tokens.role_for_join_token(swarm.manager_token, join_tokens, swarm.root_cert)


GOOD_DIGEST = "a" * 50
GOOD_SECRET = "b" * 25


@pytest.mark.parametrize(
    "token, complaint",
    [
        ("", "dash-separated parts, expected 4"),
        ("SWMTKN-1-abc", "dash-separated parts, expected 4"),
        (f"SWMTKN-1-{GOOD_DIGEST}-{GOOD_SECRET}-x", "dash-separated parts, expected 4"),
        (f"SWMTOK-1-{GOOD_DIGEST}-{GOOD_SECRET}", "does not start with SWMTKN-"),
        (f"SWMTKN-2-{GOOD_DIGEST}-{GOOD_SECRET}", "version '2'"),
        (f"SWMTKN-1-{GOOD_DIGEST[:-1]}-{GOOD_SECRET}", "CA digest has 49 characters, expected 50"),
        (f"SWMTKN-1-{GOOD_DIGEST.upper()}-{GOOD_SECRET}", "CA digest has characters outside lowercase base36"),
        (f"SWMTKN-1-{GOOD_DIGEST}-{GOOD_SECRET}b", "secret has 26 characters, expected 25"),
        (f"SWMTKN-1-{GOOD_DIGEST}-{GOOD_SECRET[:-1]}!", "secret has characters outside"),
    ],
)
def test_parse_names_what_is_malformed(token, complaint):
    with pytest.raises(MalformedJoinToken, match=re.escape(complaint)):
        tokens.parse_join_token(token)
