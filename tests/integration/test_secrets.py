"""Secrets and configs on one real node, from the CLI: files in real containers, from memory only.

A secret's value must be readable in the container at its target with the uid, gid and mode given, and
nowhere else: not in `secret inspect`, not in `docker inspect` of the container, not in its environment,
not in the worker's assignments file nor the daemon's log. Removing it from the service rolls the task
and removes its files from the tmpfs; `secret rm` is refused while a service uses it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from swarmpy.worker.executor.task_files import DEFAULT_ROOT

from .conftest import wait_until

pytestmark = pytest.mark.docker


def exec_in(container, *command: str) -> str:
    result = container.exec_run(list(command))
    assert result.exit_code == 0, result.output
    return result.output.decode()


def only_container(daemon, service: str, not_id: str = ""):
    def found():
        running = [c for c in daemon.containers(service) if c.id != not_id]
        return running[0] if len(running) == 1 and not [c for c in daemon.containers(service) if c.id == not_id] else None

    return wait_until(found, what=f"one new running container of {service}",
                      details=lambda: f"{daemon.cli('service', 'ps', '--no-trunc', service)}\n{daemon.log_tail()}")


def test_secret_and_config_files_in_a_container(shared_daemon, image, tmp_path):
    value = "value-" + uuid.uuid4().hex  # a string found nowhere else
    secret_file = tmp_path / "pw"
    secret_file.write_text(value)
    config_file = tmp_path / "conf"
    config_file.write_text("service={{ .Service.Name }} slot={{ .Task.Slot }} env={{ env \"GREETING\" }}\n")

    secret_id = shared_daemon.ok("secret", "create", "--label", "team=db", "db_pw", str(secret_file)).stdout.strip()
    shared_daemon.ok("config", "create", "--template-driver", "golang", "app_conf", str(config_file))
    listing = shared_daemon.ok("secret", "ls").stdout.splitlines()
    assert listing[0].split() == ["ID", "NAME", "DRIVER", "CREATED", "UPDATED"]
    assert listing[1].split()[:2] == [secret_id, "db_pw"]
    inspected = shared_daemon.ok("secret", "inspect", "db_pw").stdout
    assert value not in inspected
    assert json.loads(inspected)[0]["Spec"] == {"Name": "db_pw", "Labels": {"team": "db"}}

    shared_daemon.ok(
        "service", "create", "-d", "--name", "reader", "--stop-grace-period", "1s", "-e", "GREETING=hi",
        "--secret", "source=db_pw,target=app/pw,uid=1000,gid=1001,mode=0440",
        "--secret", "db_pw",
        "--config", "source=app_conf,target=/etc/app.conf",
        image, "sleep", "1000",
    )
    container = only_container(shared_daemon, "reader")
    assert exec_in(container, "cat", "/run/secrets/app/pw") == value
    assert exec_in(container, "stat", "-c", "%u %g %a", "/run/secrets/app/pw").split() == ["1000", "1001", "440"]
    assert exec_in(container, "cat", "/run/secrets/db_pw") == value
    assert exec_in(container, "stat", "-c", "%u %g %a", "/run/secrets/db_pw").split() == ["0", "0", "444"]
    assert exec_in(container, "cat", "/etc/app.conf") == "service=reader slot=1 env=hi\n"
    assert "tmpfs" in exec_in(container, "sh", "-c", "grep /run/secrets/db_pw /proc/mounts")

    # the value is in no inspect, environment, worker file or log
    container.reload()
    assert value not in json.dumps(container.attrs)
    assert value not in exec_in(container, "env")
    assert value not in shared_daemon.ok("service", "inspect", "reader").stdout
    assert ("\nConfigs:\n Target:\t/etc/app.conf\n  Source:\tapp_conf\nSecrets:\n Target:\tapp/pw\n  Source:\tdb_pw\n"
            in shared_daemon.ok("service", "inspect", "--pretty", "reader").stdout)
    assert value.encode() not in (shared_daemon.data_dir / "worker" / "assignments.pb").read_bytes()
    assert value not in shared_daemon.log_path.read_text(errors="replace")
    task_dir = Path(DEFAULT_ROOT) / shared_daemon.node_id
    assert any(task_dir.iterdir())

    refused = shared_daemon.cli("secret", "rm", "db_pw")
    assert refused.code == 1
    assert refused.stderr.strip() == (
        "Error response from daemon: invalid secret \"db_pw\": secret 'db_pw' is in use by the following service: reader"
    )

    # removing the secret from the service rolls the task; its files leave the tmpfs with the old container
    shared_daemon.ok("service", "update", "-d", "--secret-rm", "db_pw", "reader")
    replacement = only_container(shared_daemon, "reader", not_id=container.id)
    assert replacement.exec_run(["cat", "/run/secrets/db_pw"]).exit_code != 0
    assert exec_in(replacement, "cat", "/etc/app.conf") == "service=reader slot=1 env=hi\n"
    shared_daemon.ok("secret", "rm", "db_pw")
    shared_daemon.ok("service", "rm", "reader")
    wait_until(lambda: not shared_daemon.containers("reader", include_stopped=True), what="reader's containers gone")
    wait_until(lambda: not task_dir.exists() or not any(task_dir.iterdir()), what="the task files to be removed")
    shared_daemon.ok("config", "rm", "app_conf")


def test_secret_create_from_stdin_and_config_inspect_shows_data(shared_daemon, tmp_path):
    created = subprocess.run(
        [sys.executable, "-m", "swarmpy.cli.main", "secret", "create", "from_stdin", "-"],
        input=b"piped", capture_output=True, env=dict(os.environ, SWARMPY_HOST=shared_daemon.host), timeout=60,
    )
    assert created.returncode == 0, created.stderr
    pretty = shared_daemon.ok("secret", "inspect", "--pretty", "from_stdin").stdout
    assert "\nName:              from_stdin\nDriver:            \nCreated at:        " in pretty and "piped" not in pretty
    assert shared_daemon.ok("secret", "rm", "from_stdin").stdout == "from_stdin\n"

    path = tmp_path / "conf"
    path.write_text("a=1\n")
    shared_daemon.ok("config", "create", "plain_conf", str(path))
    assert json.loads(shared_daemon.ok("config", "inspect", "plain_conf").stdout)[0]["Spec"]["Data"] == "YT0xCg=="
    # docker's --pretty templates: tabs for a config, its data as it is (then the template's newline)
    pretty_lines = shared_daemon.ok("config", "inspect", "--pretty", "plain_conf").stdout.split("\n")
    assert pretty_lines[0].startswith("ID:\t\t\t") and pretty_lines[1] == "Name:\t\t\tplain_conf", pretty_lines
    assert pretty_lines[2].startswith("Created at:            \t") and pretty_lines[2].endswith(" +0000 utc")
    assert pretty_lines[4:] == ["Data:", "a=1", "", ""]
    assert shared_daemon.ok("config", "ls").stdout.splitlines()[0].split() == ["ID", "NAME", "CREATED", "UPDATED"]
    shared_daemon.ok("config", "rm", "plain_conf")


@pytest.mark.parametrize(
    "kind,content,expected",
    [
        ("secret", b"", "error reading from {path}: data is empty"),  # docker's CLI refuses it before sending
        ("config", b"", 'Error reading content from "{path}": error reading from {path}: data is empty'),
        ("secret", b"x" * (500 * 1024),
         'Error response from daemon: invalid data "of 512000 bytes": secret data must be larger than 0 and less than 512000 bytes'),
        ("config", b"x" * (1000 * 1024), "config data must be larger than 0 and less than 1024000 bytes"),
    ],
)
def test_bad_secret_data_is_refused(shared_daemon, tmp_path, kind, content, expected):
    path = tmp_path / "data"
    path.write_bytes(content)
    result = shared_daemon.cli(kind, "create", "bad_size", str(path))
    assert result.code == 1 and expected.format(path=path) in result.stderr and result.stderr.count("\n") == 1, result
    assert "bad_size" not in shared_daemon.ok(kind, "ls").stdout
    missing = shared_daemon.cli(kind, "create", "bad_size", str(tmp_path / "nope"))
    assert missing.code == 1 and f"error reading from {tmp_path}/nope: open {tmp_path}/nope: no such file or directory" in missing.stderr


def test_bad_references_and_duplicates_are_refused(shared_daemon, image, tmp_path):
    path = tmp_path / "data"
    path.write_text("x")
    shared_daemon.ok("secret", "create", "dup", str(path))
    duplicate = shared_daemon.cli("secret", "create", "dup", str(path))
    assert duplicate.code == 1 and duplicate.stderr.strip() == "Error response from daemon: secret dup already exists"
    before = shared_daemon.ok("service", "ls", "-q").stdout
    for flag, message in (
        ("nope", "secret not found: nope"),
        ("source=dup,target=../x", 'invalid argument "source=dup,target=../x" for "--secret" flag: invalid target "../x"'),
        ("source=dup,mode=rw", 'invalid argument "source=dup,mode=rw" for "--secret" flag: invalid mode specified'),
        ("source=dup,size=1", "invalid field in secret request: size"),
    ):
        result = shared_daemon.cli("service", "create", "-d", "--secret", flag, image, "true")
        assert result.code != 0 and message in result.stderr and result.stderr.count("\n") == 1, result
    assert shared_daemon.ok("service", "ls", "-q").stdout == before
    shared_daemon.ok("secret", "rm", "dup")


def test_the_data_dir_holds_no_secret_in_clear_and_survives_a_restart(own_daemon, tmp_path):
    """Raft entries and snapshots are encrypted at rest: grep the whole data dir for the value."""
    value = "at-rest-" + uuid.uuid4().hex
    path = tmp_path / "value"
    path.write_text(value)
    own_daemon.ok("secret", "create", "at_rest", str(path))
    own_daemon.ok("config", "create", "at_rest_conf", str(path))

    def clear_copies() -> list[str]:
        found = []
        for root, _, names in os.walk(own_daemon.data_dir):
            for name in names:
                file = Path(root) / name
                if value.encode() in file.read_bytes():
                    found.append(str(file))
        return found

    assert clear_copies() == []
    own_daemon.stop()
    own_daemon.start()
    wait_until(lambda: own_daemon.cli("secret", "ls", "-q").code == 0, what="the restarted manager to answer")
    assert "at_rest" in own_daemon.ok("secret", "ls").stdout
    config = json.loads(own_daemon.ok("config", "inspect", "at_rest_conf").stdout)[0]
    import base64

    assert base64.b64decode(config["Spec"]["Data"]).decode() == value
    assert clear_copies() == []


def test_secret_and_config_ls_take_docker_templates(shared_daemon, tmp_path):
    path = tmp_path / "data"
    path.write_text("v")
    shared_daemon.ok("secret", "create", "--label", "tier=db", "--label", "env=prod", "fmt_secret", str(path))
    shared_daemon.ok("config", "create", "--label", "tier=web", "fmt_config", str(path))
    try:
        line = shared_daemon.ok("secret", "ls", "-f", "name=fmt_", "--format",
                                '{{.Name}}|{{.Labels}}|{{.Label "tier"}}|{{.Label "none"}}|{{.Driver}}').stdout
        assert line == "fmt_secret|env=prod,tier=db|db||\n"
        table = shared_daemon.ok("config", "ls", "-f", "name=fmt_", "--format", "table {{.Name}}\\t{{.Label \"tier\"}}").stdout
        assert table.splitlines()[0].split() == ["NAME"] and table.splitlines()[1].split() == ["fmt_config", "web"], table
        as_json = json.loads(shared_daemon.ok("config", "ls", "-f", "name=fmt_", "--format", "json").stdout)
        assert as_json["Labels"] == "tier=web" and "Label" not in as_json and as_json["Name"] == "fmt_config"
        assert shared_daemon.ok("config", "ls", "-f", "name=fmt_").stdout.splitlines()[0].split() == [
            "ID", "NAME", "CREATED", "UPDATED"]
        # A config has no Driver: docker's error, naming its context type; a parse error in one line.
        missing = shared_daemon.cli("config", "ls", "--format", "{{.Driver}}")
        assert missing.code != 0 and "can't evaluate field Driver in type *config.configContext" in missing.stderr, missing
        broken = shared_daemon.cli("secret", "ls", "--format", "{{.Name")
        assert broken.code != 0 and broken.stderr.startswith("template parsing error:"), broken
    finally:
        shared_daemon.ok("secret", "rm", "fmt_secret")
        shared_daemon.ok("config", "rm", "fmt_config")
