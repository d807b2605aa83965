"""Every rejected command: one line naming the field or value, a non-zero exit, and nothing changed.

The module's daemon holds one service, `keep`; each case compares the services, `keep`'s full
inspect output (which carries its version) and the node's containers before and after.
"""

from __future__ import annotations

import pytest

from .conftest import wait_until

pytestmark = pytest.mark.docker

IMAGE = "swarmpy-test/busybox"
FLAG_ERROR = 125  # docker's status for a command line rejected before it reached the daemon
FAILURE = 1


@pytest.fixture(scope="module")
def daemon(shared_daemon, busybox_image):
    shared_daemon.ok("service", "create", "-d", "--name", "keep", "--stop-grace-period", "1s",
                     IMAGE, "sleep", "1000")
    shared_daemon.wait_running("keep", 1)
    return shared_daemon


def assert_rejected(daemon, args: tuple[str, ...], mentions: tuple[str, ...], code: int):
    before = daemon.state()
    result = daemon.cli(*args)
    assert result.code == code, result
    # A usage error adds docker's "See '... --help'." line; the error itself is one line.
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("See '")]
    assert len(lines) == 1, result
    assert "Traceback" not in result.stderr
    for text in mentions:
        assert text in lines[0], result
    assert daemon.state() == before, f"{result}\nchanged the swarm"


CASES = {
    "bad mode": (
        ("service", "create", "-d", "--mode", "bogus", IMAGE),
        ('"bogus"', "--mode"), FLAG_ERROR),
    "negative replicas": (
        ("service", "create", "-d", "--replicas", "-1", IMAGE),
        ('"-1"', "--replicas"), FLAG_ERROR),
    "absurd replicas": (
        ("service", "create", "-d", "--replicas", "100000000", IMAGE),
        ("replicas", "100000000"), FAILURE),
    "replicas on a global service": (
        ("service", "create", "-d", "--mode", "global", "--replicas", "2", IMAGE),
        ("replicas",), FLAG_ERROR),
    "constraint without operator": (
        ("service", "create", "-d", "--constraint", "node.role", IMAGE),
        ('"node.role"', "constraints"), FAILURE),
    "constraint without value": (
        ("service", "create", "-d", "--constraint", "node.role==", IMAGE),
        ('"node.role=="', "constraints"), FAILURE),
    "duplicate name": (
        ("service", "create", "-d", "--name", "keep", IMAGE),
        ("keep", "already exists"), FAILURE),
    "bad service name": (
        ("service", "create", "-d", "--name", "bad name!", IMAGE),
        ('"bad name!"', "name"), FAILURE),
    "invalid duration": (
        ("service", "create", "-d", "--restart-delay", "5x", IMAGE),
        ('"5x"', "--restart-delay"), FLAG_ERROR),
    "invalid grace period": (
        ("service", "create", "-d", "--stop-grace-period", "soon", IMAGE),
        ('"soon"', "--stop-grace-period"), FLAG_ERROR),
    "invalid memory size": (
        ("service", "create", "-d", "--limit-memory", "12q", IMAGE),
        ('"12q"', "--limit-memory"), FLAG_ERROR),
    "negative memory size": (
        ("service", "create", "-d", "--reserve-memory", "-5m", IMAGE),
        ('"-5m"', "--reserve-memory"), FLAG_ERROR),
    "invalid cpus": (
        ("service", "create", "-d", "--limit-cpu", "lots", IMAGE),
        ('"lots"', "--limit-cpu"), FLAG_ERROR),
    "port out of range": (
        ("service", "create", "-d", "--publish", "99999:80", IMAGE),
        ('"99999:80"', "--publish", "99999"), FLAG_ERROR),
    "failure ratio above one": (
        ("service", "create", "-d", "--update-max-failure-ratio", "2", IMAGE),
        ("max_failure_ratio", "2"), FAILURE),
    "empty label": (
        ("service", "create", "-d", "--label", "=x", IMAGE),
        ('"=x"', "--label"), FLAG_ERROR),
    "empty image": (
        ("service", "create", "-d", ""),
        ("image",), FAILURE),
    "unknown service: inspect": (
        ("service", "inspect", "nosuch"),
        ("no such service: nosuch",), FAILURE),
    "unknown service: ps": (
        ("service", "ps", "nosuch"),
        ("no such service: nosuch",), FAILURE),
    "unknown service: scale": (
        ("service", "scale", "-d", "nosuch=3"),
        ("no such service: nosuch",), FAILURE),
    "unknown service: update": (
        ("service", "update", "-d", "--replicas", "2", "nosuch"),
        ("no such service: nosuch",), FAILURE),
    "unknown service: rm": (
        ("service", "rm", "nosuch"),
        ("nosuch",), FAILURE),
    "unknown service: logs": (
        ("service", "logs", "nosuch"),
        ("nosuch",), FAILURE),
    "bad scale value": (
        ("service", "scale", "-d", "keep=-1"),
        ("-1", "replicas"), FAILURE),
    "scale without a count": (
        ("service", "scale", "-d", "keep"),
        ("'keep'",), FAILURE),
    "update: absurd replicas": (
        ("service", "update", "-d", "--replicas", "100000000", "keep"),
        ("replicas", "100000000"), FAILURE),
    "update: malformed constraint": (
        ("service", "update", "-d", "--constraint-add", "node.labels.x", "keep"),
        ('"node.labels.x"', "constraints"), FAILURE),
    "update: empty image": (
        ("service", "update", "-d", "--image", "", "keep"),
        ("image",), FAILURE),
    "update: invalid memory size": (
        ("service", "update", "-d", "--limit-memory", "12q", "keep"),
        ('"12q"', "--limit-memory"), FLAG_ERROR),
    "unknown node: inspect": (
        ("node", "inspect", "nosuch"),
        ("no such node: nosuch",), FAILURE),
    "unknown node: update": (
        ("node", "update", "--availability", "drain", "nosuch"),
        ("no such node: nosuch",), FAILURE),
    "unknown node: ps": (
        ("node", "ps", "nosuch"),
        ("no such node: nosuch",), FAILURE),
    "bad availability": (
        ("node", "update", "--availability", "bogus", "self"),
        ('"bogus"', "--availability"), FLAG_ERROR),
    "bad node label": (
        ("node", "update", "--label-add", "", "self"),
        ('""', "--label-add"), FLAG_ERROR),
}


@pytest.mark.parametrize("case", list(CASES))
def test_rejected(daemon, case):
    args, mentions, code = CASES[case]
    assert_rejected(daemon, args, mentions, code)


def test_ambiguous_id_prefix_is_refused(daemon):
    """Services get random IDs: create until two share a first character (at most 37 by pigeonhole)."""
    first_chars: dict[str, str] = {}
    for char_id in daemon.ok("service", "ls", "-q").stdout.split():
        first_chars[char_id[0]] = char_id
    prefix = None
    for number in range(40):
        created = daemon.ok("service", "create", "-d", "--replicas", "0", "--name", f"twin{number}", IMAGE)
        service_id = created.stdout.strip()
        if service_id[0] in first_chars:
            prefix = service_id[0]
            break
        first_chars[service_id[0]] = service_id
    assert prefix is not None

    for command in (("service", "inspect", prefix), ("service", "scale", "-d", f"{prefix}=2"),
                    ("service", "rm", prefix)):
        assert_rejected(daemon, command, (prefix, "ambiguous"), FAILURE)

    daemon.ok("service", "rm", *[f"twin{n}" for n in range(number + 1)])
    wait_until(lambda: "twin" not in daemon.ok("service", "ls").stdout, what="the twin services to be gone")
