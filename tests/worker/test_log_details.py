"""The engine's `details=1` log lines: `k=v,k2=v2 ` (query-escaped, empty when none) before the text."""

from swarmpy.worker.executor.logs import _split_details


def test_attributes_are_split_from_the_line():
    assert _split_details(b"team=blue,note=a%20b hi there\n") == ((("team", "blue"), ("note", "a b")), b"hi there\n")
    assert _split_details(b" plain x=y\n") == ((), b"plain x=y\n")
