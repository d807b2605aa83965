"""A compose file deployed as a stack on a real node: three services, a secret and a config; redeploying
with one service changed rolls only that one; `stack rm` leaves nothing of the stack."""

from __future__ import annotations

import textwrap

import pytest

from .conftest import wait_until

pytestmark = pytest.mark.docker

COMPOSE = """
version: "3.8"
services:
  web:
    image: {image}
    command: sleep 1000
    stop_grace_period: 1s
    secrets: [db_password]
    configs: [{{source: site, target: /etc/site.conf}}]
    build: .
  api:
    image: {image}
    command: sleep 1000
    stop_grace_period: 1s
    environment: {{MODE: "${{API_MODE:-fast}}"}}
  worker:
    image: {image}
    command: sleep 1000
    stop_grace_period: 1s
    deploy: {{replicas: 2}}
secrets:
  db_password: {{file: ./password.txt}}
configs:
  site: {{file: ./site.conf}}
"""


def running_ids(daemon, service: str, count: int) -> set[str]:
    return {c.id for c in daemon.wait_running(service, count)}


def test_stack_deploy_redeploy_and_rm(own_daemon, image, tmp_path):
    (tmp_path / "password.txt").write_text("stack-secret-value")
    (tmp_path / "site.conf").write_text("listen 80\n")
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE.format(image=image))

    deployed = own_daemon.cli("stack", "deploy", "-c", str(compose), "shop")
    assert deployed.code == 0, deployed
    assert deployed.stderr.strip() == "Ignoring unsupported options: build"
    assert deployed.stdout.splitlines() == [
        "Creating network shop_default", "Creating secret shop_db_password", "Creating config shop_site",
        "Creating service shop_web", "Creating service shop_api", "Creating service shop_worker"]
    web = running_ids(own_daemon, "shop_web", 1)
    api = running_ids(own_daemon, "shop_api", 1)
    worker = running_ids(own_daemon, "shop_worker", 2)
    (web_container,) = own_daemon.containers("shop_web")
    assert web_container.exec_run(["cat", "/run/secrets/db_password"]).output == b"stack-secret-value"
    assert web_container.exec_run(["cat", "/etc/site.conf"]).output == b"listen 80\n"
    wait_until(lambda: all(" Running " in line for line in own_daemon.ok("stack", "ps", "shop").stdout.splitlines()[1:]),
               what="every task of the stack running")
    assert own_daemon.ok("stack", "ls").stdout.splitlines() == ["NAME      SERVICES", "shop      3"]
    services = own_daemon.ok("stack", "services", "shop").stdout.splitlines()
    assert [line.split()[1] for line in services[1:]] == ["shop_api", "shop_web", "shop_worker"]

    # the same file again: nothing rolls; a changed variable changes one service: only it rolls
    own_daemon.ok("stack", "deploy", "-c", str(compose), "shop")
    import os
    import subprocess
    import sys

    changed = subprocess.run([sys.executable, "-m", "swarmpy.cli.main", "stack", "deploy", "-c", str(compose), "shop"],
                             env=dict(os.environ, SWARMPY_HOST=own_daemon.host, API_MODE="slow"),
                             capture_output=True, text=True, timeout=60)
    assert changed.returncode == 0, changed.stderr
    wait_until(lambda: {c.id for c in own_daemon.containers("shop_api")} - api and len(own_daemon.containers("shop_api")) == 1,
               what="shop_api to roll")
    (new_api,) = own_daemon.containers("shop_api")
    assert "MODE=slow" in new_api.attrs["Config"]["Env"]
    assert running_ids(own_daemon, "shop_web", 1) == web and running_ids(own_daemon, "shop_worker", 2) == worker

    removed = own_daemon.ok("stack", "rm", "shop").stdout.splitlines()
    assert removed == ["Removing service shop_api", "Removing service shop_web", "Removing service shop_worker",
                       "Removing secret shop_db_password", "Removing config shop_site", "Removing network shop_default"]
    wait_until(lambda: not [c for c in own_daemon.containers(include_stopped=True)
                            if c.labels.get("com.docker.swarm.service.name", "").startswith("shop_")],
               what="every container of the stack gone")
    assert own_daemon.ok("secret", "ls", "-q").stdout == "" and own_daemon.ok("config", "ls", "-q").stdout == ""
    assert "shop_default" not in own_daemon.ok("network", "ls").stdout
    nothing = own_daemon.cli("stack", "rm", "shop")
    assert nothing.code == 1 and nothing.stderr.strip() == "Nothing found in stack: shop"


def test_bad_compose_changes_nothing(own_daemon, tmp_path):
    compose = tmp_path / "bad.yml"
    compose.write_text(textwrap.dedent("""
        services:
          web:
            image: busybox
            ports: ["http"]
        """))
    result = own_daemon.cli("stack", "deploy", "-c", str(compose), "bad")
    assert result.code == 1 and "services.web.ports: invalid port 'http'" in result.stderr
    assert own_daemon.ok("service", "ls", "-q").stdout == ""
