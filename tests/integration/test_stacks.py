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
    assert deployed.stderr == ("Ignoring unsupported options: build\n\n"
                               "Since --detach=false was not specified, tasks will be created in the background.\n"
                               "In a future release, --detach=false will become the default.\n")
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

    # the same file again: nothing rolls; a changed variable changes one service: only it rolls.
    # --resolve-image always (the default) asks for each updated service's digest: with no registry to
    # ask, docker's warning, once per service
    again = own_daemon.ok("stack", "deploy", "-c", str(compose), "shop")
    assert again.stderr.count(f"image {image} could not be accessed on a registry to record\nits digest.") == 3, again
    quiet = own_daemon.ok("stack", "deploy", "--resolve-image", "changed", "-d", "-c", str(compose), "shop")
    assert quiet.stderr == "Ignoring unsupported options: build\n\n", quiet
    bogus = own_daemon.cli("stack", "deploy", "--resolve-image", "sometimes", "-c", str(compose), "shop")
    assert bogus.code == 1 and bogus.stderr.endswith("\nInvalid option sometimes for flag --resolve-image\n"), bogus
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

    # --prune: a service the file no longer has goes; the others stay as they are
    without_worker = tmp_path / "no-worker.yml"
    without_worker.write_text(COMPOSE.format(image=image).split("  worker:")[0]
                              + "secrets:\n  db_password: {file: ./password.txt}\nconfigs:\n  site: {file: ./site.conf}\n")
    pruned = subprocess.run([sys.executable, "-m", "swarmpy.cli.main", "stack", "deploy", "--prune", "-c",
                             str(without_worker), "shop"], env=dict(os.environ, SWARMPY_HOST=own_daemon.host, API_MODE="slow"),
                            capture_output=True, text=True, timeout=60)
    assert pruned.returncode == 0 and pruned.stdout.startswith("Removing service shop_worker\n"), pruned
    wait_until(lambda: not own_daemon.containers("shop_worker"), what="shop_worker's containers gone")
    assert running_ids(own_daemon, "shop_web", 1) == web and {c.id for c in own_daemon.containers("shop_api")} == {new_api.id}

    removed = own_daemon.ok("stack", "rm", "shop").stdout.splitlines()
    assert removed == ["Removing service shop_api", "Removing service shop_web",
                       "Removing secret shop_db_password", "Removing config shop_site", "Removing network shop_default"]
    wait_until(lambda: not [c for c in own_daemon.containers(include_stopped=True)
                            if c.labels.get("com.docker.swarm.service.name", "").startswith("shop_")],
               what="every container of the stack gone")
    assert own_daemon.ok("secret", "ls", "-q").stdout == "" and own_daemon.ok("config", "ls", "-q").stdout == ""
    assert "shop_default" not in own_daemon.ok("network", "ls").stdout
    for command, code, words in (("rm", 0, "Nothing found"), ("services", 0, "Nothing found"), ("ps", 1, "nothing found")):
        nothing = own_daemon.cli("stack", command, "shop")  # docker's codes and words (ps's lower case)
        assert nothing.code == code and nothing.stderr == f"{words} in stack: shop\n", nothing


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
