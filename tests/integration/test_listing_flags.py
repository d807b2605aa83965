"""The listing flags: `service ps`/`node ps --no-resolve`, node ps and node ls filters, `service logs
--since/--no-resolve`, through the real CLI and daemon."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from .conftest import wait_until

pytestmark = pytest.mark.docker

IMAGE = "swarmpy-test/busybox"


def test_no_resolve_filters_and_logs_since(shared_daemon):
    daemon = shared_daemon
    service_id = daemon.ok("service", "create", "-d", "--name", "lister", "--stop-grace-period", "1s",
                           "-l", "team=blue", IMAGE, "sh", "-c", "echo early; sleep 3; echo late; sleep 1000").stdout.strip()
    [container] = daemon.wait_running("lister", 1)
    task_id = container.labels["com.docker.swarm.task.id"]

    resolved = daemon.ok("service", "ps", "--format", "{{.Name}} {{.Node}}", "lister").stdout
    assert resolved == f"lister.1 {daemon.hostname}\n"
    unresolved = daemon.ok("service", "ps", "--no-resolve", "--format", "{{.Name}} {{.Node}}", "lister").stdout
    assert unresolved == f"{service_id}.1 {daemon.node_id}\n"
    node_tasks = daemon.ok("node", "ps", "--no-resolve", "--filter", "label=team=blue", "--format", "{{.Name}}", "self").stdout
    assert node_tasks == f"{service_id}.1\n"
    assert daemon.ok("node", "ps", "--filter", "label=team=red", "-q", "self").stdout == ""
    refused = daemon.cli("node", "ps", "--filter", "node=x", "self")
    assert refused.code != 0 and "invalid filter 'node'" in refused.stderr

    daemon.ok("node", "update", "--label-add", "zone=a", "self")
    assert daemon.ok("node", "ls", "-q", "--filter", "node.label=zone=a").stdout.strip() == daemon.node_id
    assert daemon.ok("node", "ls", "-q", "--filter", "node.label=zone=b").stdout == ""
    assert daemon.ok("node", "ls", "-q", "--filter", "membership=accepted").stdout.strip() == daemon.node_id
    assert daemon.ok("node", "ls", "-q", "--filter", "membership=pending").stdout == ""
    assert daemon.ok("node", "ls", "-q", "--filter", "label=nonexistent").stdout == ""  # engine labels

    def both_lines():
        out = daemon.ok("service", "logs", "--raw", "lister").stdout
        return out if "late" in out else None

    assert wait_until(both_lines, timeout=20, what="both log lines") == "early\nlate\n"
    stamped = daemon.ok("service", "logs", "--raw", "-t", "lister").stdout.split()  # [t1, early, t2, late]
    early, late = (datetime.fromisoformat(stamped[i][:26] + "+00:00").timestamp() for i in (0, 2))
    between = f"{(early + late) / 2:.3f}"  # a Unix timestamp 1.5 s after "early", as long before "late"
    assert daemon.ok("service", "logs", "--raw", "--since", between, "lister").stdout == "late\n"
    assert daemon.ok("service", "logs", "--raw", "--since", "1h", "lister").stdout == "early\nlate\n"
    since_start = daemon.ok("service", "logs", "--raw", "--since", str(int(time.time()) - 3600), "lister").stdout
    assert since_start == "early\nlate\n"
    assert daemon.ok("service", "logs", "--raw", "--since", "2099-01-01T00:00:00Z", "lister").stdout == ""
    prefixed = daemon.ok("service", "logs", "--no-resolve", "lister").stdout.splitlines()
    assert prefixed[0] == f"{service_id}.1.{task_id[:12]}@{daemon.node_id}    | early"
    bad = daemon.cli("service", "logs", "--since", "yesterday", "lister")
    assert bad.code == 125 and 'invalid argument "yesterday" for "--since" flag' in bad.stderr
    daemon.ok("service", "rm", "lister")


def test_logs_details_show_the_log_drivers_attributes(shared_daemon):
    daemon = shared_daemon
    daemon.ok("service", "create", "-d", "--name", "detailed", "--stop-grace-period", "1s",
              "--container-label", "team=blue", "--log-driver", "json-file", "--log-opt", "labels=team",
              IMAGE, "sh", "-c", "echo hi; sleep 1000")
    [container] = daemon.wait_running("detailed", 1)
    task_id = container.labels["com.docker.swarm.task.id"]

    def logged():
        out = daemon.ok("service", "logs", "--details", "detailed").stdout
        return out if "hi" in out else None

    shown = wait_until(logged, timeout=20, what="the detailed log line")
    assert shown == f"detailed.1.{task_id[:12]}@{daemon.hostname}    | team=blue hi\n"
    assert daemon.ok("service", "logs", "--raw", "detailed").stdout == "hi\n"  # without --details: the line alone
    daemon.ok("service", "rm", "detailed")
