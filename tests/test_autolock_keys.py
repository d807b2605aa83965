"""Unlock keys: docker's SWMKEY-1- form, malformed keys named without echoing them, wrap/unwrap."""

from __future__ import annotations

import pytest

from swarmpy import autolock


def test_key_round_trip_and_wrapping():
    key = autolock.new_unlock_key()
    assert key.startswith("SWMKEY-1-") and len(autolock.parse_unlock_key(key)) == 32
    wrapped = autolock.wrap(b"d" * 32, key)
    assert autolock.unwrap(wrapped, key) == b"d" * 32
    with pytest.raises(autolock.WrongUnlockKey):
        autolock.unwrap(wrapped, autolock.new_unlock_key())


@pytest.mark.parametrize("text,reason", [
    ("SWMTKN-1-abc", "it must start with SWMKEY-1-"),
    ("SWMKEY-1-***", "is not base64"),
    ("SWMKEY-1-AAAA", "it holds 3 bytes, not 32"),
])
def test_malformed_keys_are_refused_by_field(text, reason):
    with pytest.raises(ValueError, match=reason) as caught:
        autolock.parse_unlock_key(text)
    assert text[9:] not in str(caught.value) or not text[9:]
