"""`service create`/`update` container flags, read back from what the engine got (`docker inspect`).

One service carries every container flag at once; its container's inspect output must show each one
(templates expanded), then `service update` with the -add/-rm forms and `--flag=false` must show the
edits on the replacement container. Bad values are refused with one line naming flag and value, and
change nothing; a bind mount whose source is missing on the node rejects the task with the engine's
reason; a generic resource the node lacks keeps the task pending, and one it offers lets it run.
"""

from __future__ import annotations

import json
import uuid

import docker as docker_sdk
import pytest

from .conftest import _start_swarm, wait_until
from .test_bad_input import FLAG_ERROR, assert_rejected

pytestmark = pytest.mark.docker

IMAGE = "swarmpy-test/busybox"


def _one_container(daemon, service: str, exclude: str = ""):
    def found():
        running = [c for c in daemon.containers(service) if c.id != exclude]
        return running[0] if len(running) == 1 else None

    return wait_until(found, timeout=30, what=f"a running container of {service}",
                      details=lambda: f"{daemon.cli('service', 'ps', '--no-trunc', service)}\n{daemon.log_tail()}")


def _remove(daemon, service: str) -> None:
    """rm, then wait until its tasks and containers are gone, so later cases see a still swarm."""
    daemon.ok("service", "rm", service)
    wait_until(lambda: not daemon.state()[2] and not daemon.containers(service, include_stopped=True),
               what=f"{service}'s tasks and containers removed")


@pytest.fixture
def volume_name(docker):
    name = f"spflags-{uuid.uuid4().hex[:8]}"
    yield name
    for volume in docker.volumes.list(filters={"name": name}):
        # a failed test leaves the service's container holding the volume: ours too, so remove it first
        for holder in docker.containers.list(all=True, filters={"volume": volume.name}):
            holder.remove(force=True)
        volume.remove(force=True)


def test_every_container_flag_reaches_the_engine_and_update_edits_them(shared_daemon, tmp_path, volume_name, docker):
    bind_source = tmp_path / "shared"
    bind_source.mkdir()
    daemon = shared_daemon
    daemon.ok(
        "service", "create", "-d", "--name", "flagged", "--stop-grace-period", "1s",
        "--mount", f"type=bind,source={bind_source},target=/bound,readonly,bind-propagation=private",
        "--mount", f"type=volume,source={volume_name}-{{{{.Task.Slot}}}},target=/data,volume-label=owner=flags,volume-nocopy",
        "--mount", "type=tmpfs,target=/scratch,tmpfs-size=2m,tmpfs-mode=1770",
        "--cap-add", "net_admin", "--cap-drop", "MKNOD",
        "--sysctl", "net.core.somaxconn=512",
        "--ulimit", "nofile=1024:2048",
        "--limit-pids", "64", "--init", "--read-only", "--stop-signal", "SIGUSR1", "-t",
        "--group", "20", "--hostname", "{{.Service.Name}}-{{.Task.Slot}}",
        "-e", "WHERE={{.Node.Hostname}}/{{.Node.ID}}", "-e", "TASK={{.Task.ID}}",
        "--log-driver", "json-file", "--log-opt", "max-size=1m", "--log-opt", "max-file=2",
        "--isolation", "default", "--no-resolve-image", "--with-registry-auth",
        IMAGE, "sleep", "1000",
    )
    container = _one_container(daemon, "flagged")
    attrs = container.attrs
    host, config = attrs["HostConfig"], attrs["Config"]
    task_id = container.labels["com.docker.swarm.task.id"]

    assert host["CapAdd"] == ["CAP_NET_ADMIN"] and host["CapDrop"] == ["CAP_MKNOD"]
    assert host["Sysctls"] == {"net.core.somaxconn": "512"}
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert host["PidsLimit"] == 64
    assert host["Init"] is True and host["ReadonlyRootfs"] is True
    assert host["GroupAdd"] == ["20"]
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}}
    assert host["Isolation"] in ("", "default")
    assert config["StopSignal"] == "SIGUSR1" and config["Tty"] is True
    assert config["Hostname"] == "flagged-1"
    assert f"WHERE={daemon.hostname}/{daemon.node_id}" in config["Env"]
    assert f"TASK={task_id}" in config["Env"]

    mounts = {m["Target"]: m for m in host["Mounts"]}
    assert mounts["/bound"]["Source"] == str(bind_source) and mounts["/bound"]["ReadOnly"] is True
    assert mounts["/bound"]["BindOptions"]["Propagation"] == "private"
    assert mounts["/data"]["Source"] == f"{volume_name}-1"
    assert mounts["/data"]["VolumeOptions"]["NoCopy"] is True
    assert mounts["/scratch"]["TmpfsOptions"] == {"SizeBytes": 2 * 1024 * 1024, "Mode": 0o1770}
    # the named volume was created on the node's engine when first used, with its labels
    assert docker.volumes.get(f"{volume_name}-1").attrs["Labels"] == {"owner": "flags"}

    spec = daemon.ok("service", "inspect", "flagged").stdout
    assert '"CapabilityAdd": [\n' in spec and '"Pids": 64' in spec and '"LogDriver"' in spec

    daemon.ok(
        "service", "update", "-d", "flagged",
        "--cap-drop", "NET_ADMIN", "--sysctl-rm", "net.core.somaxconn", "--sysctl-add", "net.ipv4.ip_forward=1",
        "--ulimit-add", "nproc=100", "--ulimit-rm", "nofile", "--mount-rm", "/scratch",
        "--mount-add", "type=tmpfs,target=/more", "--group-add", "30", "--group-rm", "20",
        "--init=false", "--read-only=false", "--tty=false", "--limit-pids", "128",
        "--hostname", "{{.Task.Slot}}.{{.Service.Name}}",
    )
    replacement = _one_container(daemon, "flagged", exclude=container.id)
    host, config = replacement.attrs["HostConfig"], replacement.attrs["Config"]
    assert not host["CapAdd"] and sorted(host["CapDrop"]) == ["CAP_MKNOD", "CAP_NET_ADMIN"]
    assert host["Sysctls"] == {"net.ipv4.ip_forward": "1"}
    assert host["Ulimits"] == [{"Name": "nproc", "Soft": 100, "Hard": 100}]
    assert host["PidsLimit"] == 128 and host["Init"] is False and host["ReadonlyRootfs"] is False
    assert host["GroupAdd"] == ["30"] and config["Tty"] is False
    assert config["Hostname"] == "1.flagged"
    assert sorted(m["Target"] for m in host["Mounts"]) == ["/bound", "/data", "/more"]

    _remove(daemon, "flagged")


def test_a_bind_mount_of_a_missing_path_rejects_the_task_with_the_engines_reason(shared_daemon):
    missing = f"/nonexistent-{uuid.uuid4().hex[:8]}"
    shared_daemon.ok("service", "create", "-d", "--name", "nobind", "--restart-condition", "none",
                     "--mount", f"type=bind,source={missing},target=/x", IMAGE, "sleep", "1000")

    def rejected():
        listing = shared_daemon.ok("service", "ps", "--no-trunc", "nobind").stdout
        return listing if "Rejected" in listing and "bind source path does not exist" in listing else None

    listing = wait_until(rejected, what="the task rejected for its bind source")
    assert missing in listing
    _remove(shared_daemon, "nobind")


BAD = {
    "unknown mount type": (("--mount", "type=foo,target=/x"), ('"type=foo,target=/x"', "--mount", "mount type unknown")),
    "mount without target": (("--mount", "source=/x"), ('"source=/x"', "--mount", "target is required")),
    "mount mixing options": (("--mount", "type=bind,src=/tmp,dst=/x,volume-nocopy"), ("--mount", "cannot mix 'volume-*'")),
    "bad ulimit": (("--ulimit", "nofile=abc"), ('"nofile=abc"', "--ulimit", 'parsing "abc"')),
    "sysctl without =": (("--sysctl", "net.core.somaxconn"), ('"net.core.somaxconn"', "--sysctl", "is not allowed")),
    "unknown capability": (("--cap-add", "FOO"), ('"FOO"', "--cap-add", 'unknown capability: "CAP_FOO"')),
    "bad pids limit": (("--limit-pids", "many"), ('"many"', "--limit-pids")),
    "bad isolation": (("--isolation", "hyperv"), ('"hyperv"', "--isolation", "linux only supports 'default'")),
    "bad generic resource": (("--generic-resource", "gpu"), ('"gpu"', "--generic-resource", "expected `name=value`")),
    "bad hostname template": (("--hostname", "{{.Task.Slot"), ('"{{.Task.Slot"', "--hostname", "unclosed action")),
    "bad env template": (("-e", "A={{nope}}"), ('"{{nope}}"', "--env", 'function "nope" not defined')),
    "bad bool": (("--init=maybe",), ('"maybe"', "--init")),
    "unknown placement strategy": (("--placement-pref", "pack=node.labels.zone"), ('"pack=node.labels.zone"', "--placement-pref")),
    "credential spec without a scheme": (("--credential-spec", "spec.json"),
                                         ('"spec.json"', "--credential-spec", 'prefixed with "config://"')),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_container_flags_are_refused_and_change_nothing(shared_daemon, case):
    flags, mentions = BAD[case]
    assert_rejected(shared_daemon, ("service", "create", "-d", "--name", "bad", *flags, IMAGE), mentions, FLAG_ERROR)


def test_update_refuses_a_bad_mount_and_changes_nothing(shared_daemon):
    shared_daemon.ok("service", "create", "-d", "--name", "upd-bad", "--stop-grace-period", "1s", IMAGE, "sleep", "1000")
    shared_daemon.wait_running("upd-bad", 1)
    assert_rejected(shared_daemon, ("service", "update", "-d", "--mount-add", "type=foo,target=/x", "upd-bad"),
                    ("--mount-add", "mount type unknown"), FLAG_ERROR)
    assert_rejected(shared_daemon, ("service", "update", "-d", "--ulimit-add", "nofile=abc", "upd-bad"),
                    ("--ulimit-add", '"nofile=abc"'), FLAG_ERROR)
    _remove(shared_daemon, "upd-bad")


def test_generic_resources_are_scheduled_against_what_the_node_offers(docker, tmp_path, monkeypatch, busybox_image):
    monkeypatch.setenv("SWARMPY_NODE_GENERIC_RESOURCES", "gpu=GPU-A")
    daemon = _start_swarm(tmp_path, docker, "--node-generic-resource", "gpu=GPU-B", "--node-generic-resource", "ssd=4")
    try:
        daemon.ok("service", "create", "-d", "--name", "gpu", "--stop-grace-period", "1s", "--replicas", "3",
                  "--generic-resource", "gpu=1", "--generic-resource", "ssd=1", IMAGE, "sleep", "1000")
        daemon.wait_running("gpu", 2)

        def third_pending():
            listing = daemon.ok("service", "ps", "--no-trunc", "gpu").stdout
            return listing if "insufficient resources on 1 node" in listing else None

        wait_until(third_pending, what="the third task pending for want of a gpu")
        containers = daemon.containers("gpu")
        assert len(containers) == 2
        # Each container was given its own GPU, by name, and its share of the count (docker's variables).
        envs = [{k: v for k, _, v in (item.partition("=") for item in c.attrs["Config"]["Env"])
                 if k.startswith("DOCKER_RESOURCE_")} for c in containers]
        assert sorted(env["DOCKER_RESOURCE_GPU"] for env in envs) == ["GPU-A", "GPU-B"], envs
        assert [env["DOCKER_RESOURCE_SSD"] for env in envs] == ["1", "1"], envs
        # The task shows what it holds, as the Engine API's Task.GenericResources (docker inspect's).
        api = docker_sdk.APIClient(base_url=f"unix://{daemon.socket_path.parent / 'docker.sock'}")
        try:
            shown = api.inspect_task(containers[0].labels["com.docker.swarm.task.id"])["GenericResources"]
        finally:
            api.close()
        assert shown == [
            {"NamedResourceSpec": {"Kind": "gpu", "Value": envs[0]["DOCKER_RESOURCE_GPU"]}},
            {"DiscreteResourceSpec": {"Kind": "ssd", "Value": 1}}]
        node = daemon.ok("node", "inspect", "self").stdout
        assert '"DiscreteResourceSpec": {\n' in node and '"Kind": "gpu"' in node and '"Value": "GPU-B"' in node
    finally:
        daemon.teardown()


def test_a_credential_spec_is_stored_warned_about_and_refused_by_the_linux_engine(shared_daemon):
    daemon = shared_daemon
    # --no-resolve-image: the registry's digest warning (test_services) would follow the credential spec's.
    created = daemon.ok("service", "create", "-d", "--name", "gmsa", "--stop-grace-period", "1s", "--no-resolve-image",
                        "--credential-spec", "file://spec.json", IMAGE, "sleep", "1000")
    assert created.stderr.strip() == ("credential spec file://spec.json is for Windows containers (managed service "
                                      "accounts): the engines of Linux nodes refuse it, so the service's tasks are "
                                      "rejected there")
    shown = daemon.ok("service", "inspect", "-f", "{{json .Spec.TaskTemplate.ContainerSpec.Privileges}}", "gmsa").stdout
    assert json.loads(shown)["CredentialSpec"] == {"Config": "", "File": "spec.json", "Registry": ""}

    def rejected():  # what docker's executor gives a Linux engine, and the engine's own reason
        listing = daemon.ok("service", "ps", "--no-trunc", "gmsa").stdout
        return listing if ("Rejected" in listing and "invalid --security-opt 2: " in listing
                           and "credentialspec=file://spec.json" in listing) else None

    wait_until(rejected, what="the task rejected by the engine for its credential spec",
               details=lambda: daemon.ok("service", "ps", "--no-trunc", "gmsa").stdout)
    updated = daemon.ok("service", "update", "-d", "--credential-spec", "", "gmsa")  # docker's way to remove it
    assert "credential spec" not in updated.stderr
    shown = daemon.ok("service", "inspect", "-f", "{{json .Spec.TaskTemplate.ContainerSpec}}", "gmsa").stdout
    assert "Privileges" not in json.loads(shown)
    daemon.wait_running("gmsa", 1)
    _remove(daemon, "gmsa")


def test_a_credential_spec_config_is_named_and_stored_by_id(shared_daemon, tmp_path):
    daemon = shared_daemon
    assert_rejected(daemon, ("service", "create", "-d", "--name", "gmsa-cfg", "--credential-spec", "config://nosuch",
                             IMAGE, "true"), ("config not found: nosuch",), 1)
    source = tmp_path / "credspec.json"
    source.write_text("{}")
    config_id = daemon.ok("config", "create", "credspec", str(source)).stdout.strip()
    try:
        daemon.ok("service", "create", "-d", "--name", "gmsa-cfg", "--replicas", "0", "--credential-spec",
                  "config://credspec", IMAGE, "true")
        shown = daemon.ok("service", "inspect", "-f", "{{json .Spec.TaskTemplate.ContainerSpec.Privileges}}",
                          "gmsa-cfg").stdout
        assert json.loads(shown)["CredentialSpec"]["Config"] == config_id
        daemon.ok("service", "update", "-d", "--env-add", "A=1", "gmsa-cfg")  # the stored ID is kept as it is
        shown = daemon.ok("service", "inspect", "-f", "{{json .Spec.TaskTemplate.ContainerSpec.Privileges}}",
                          "gmsa-cfg").stdout
        assert json.loads(shown)["CredentialSpec"]["Config"] == config_id
        daemon.ok("service", "rm", "gmsa-cfg")
    finally:
        daemon.cli("config", "rm", "credspec")


def test_the_local_images_platform_is_recorded_unless_no_resolve_image(shared_daemon, docker):
    image = docker.images.get(IMAGE)
    wanted = [{"Architecture": image.attrs["Architecture"], "OS": image.attrs["Os"]}]
    shared_daemon.ok("service", "create", "-d", "--name", "plat", "--stop-grace-period", "1s", IMAGE, "sleep", "1000")
    shared_daemon.wait_running("plat", 1)  # the node's x86_64 matches the image's amd64
    shown = shared_daemon.ok("service", "inspect", "-f", "{{json .Spec.TaskTemplate.Placement.Platforms}}", "plat").stdout
    assert json.loads(shown) == wanted
    shared_daemon.ok("service", "create", "-d", "--name", "noplat", "--no-resolve-image", "--restart-condition", "none",
                     IMAGE, "true")
    shown = shared_daemon.ok("service", "inspect", "-f", "{{json .Spec.TaskTemplate.Placement}}", "noplat").stdout
    assert "Platforms" not in json.loads(shown)
    shared_daemon.ok("service", "rm", "noplat")
    _remove(shared_daemon, "plat")
