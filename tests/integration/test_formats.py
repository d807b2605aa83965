"""`--format` through the real CLI and daemon, on every listing and inspect command."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.docker

IMAGE = "swarmpy-test/busybox"


def test_format_on_listings_and_inspect(shared_daemon):
    daemon = shared_daemon
    service_id = daemon.ok("service", "create", "-d", "--name", "fmt", "--stop-grace-period", "1s",
                           "-l", "team=blue", IMAGE, "sleep", "1000").stdout.strip()
    daemon.wait_running("fmt", 1)
    daemon.wait_listed(r"\sfmt\s+replicated\s+1/1\s")

    assert daemon.ok("service", "ls", "--format", "{{.ID}} {{.Name}} {{.Mode}}").stdout == f"{service_id[:12]} fmt replicated\n"
    table = daemon.ok("service", "ls", "--format", "table {{.Name}}\\t{{.Replicas}}").stdout
    assert table == "NAME      REPLICAS\nfmt       1/1\n"
    assert daemon.ok("service", "inspect", "-f", '{{.Spec.Name}} {{index .Spec.Labels "team"}}', "fmt").stdout == "fmt blue\n"
    assert daemon.ok("service", "inspect", "--format", "{{json .Spec.Labels}}", "fmt").stdout == '{"team":"blue"}\n'

    tasks = daemon.ok("service", "ps", "--format", "{{.Name}} {{.DesiredState}}", "fmt").stdout
    assert tasks == "fmt.1 Running\n"
    assert daemon.ok("node", "ps", "--format", "{{.Name}}", "self").stdout.split() .count("fmt.1") == 1
    nodes = daemon.ok("node", "ls", "--format", "{{.Hostname}}|{{.ManagerStatus}}").stdout
    assert nodes == f"{daemon.hostname}|Leader\n"
    assert daemon.ok("node", "inspect", "-f", "{{.Description.Hostname}} {{.Spec.Role}}", "self").stdout == \
        f"{daemon.hostname} manager\n"

    bad = daemon.cli("service", "ls", "--format", "{{.Nope}}")
    assert bad.code != 0 and re.fullmatch(
        r'template parsing error: template: :1:2: executing "" at <\.Nope>: can\'t evaluate field Nope in type '
        r"\*service\.serviceContext\n", bad.stderr), bad
    unclosed = daemon.cli("service", "inspect", "-f", "{{.Spec.Name", "fmt")
    assert unclosed.code != 0 and unclosed.stderr == "template parsing error: template: :1: unclosed action\n"
    daemon.ok("service", "rm", "fmt")
