"""Task files: templates expanded, files written with their owner and mode on a tmpfs, refused elsewhere."""

from __future__ import annotations

import os

import pytest

from swarmpy.api import dispatcher_pb2, objects_pb2
from swarmpy.worker.dependencies import TaskDependencies
from swarmpy.worker.executor.base import ExecutorError
from swarmpy.worker.executor.task_files import TaskFiles
from swarmpy.worker.templates import TemplateContext, TemplateError, expand


def task_with(secret_ids=(), config_ids=(), targets=None):
    task = objects_pb2.Task(id="t1", service_id="svc1", slot=3)
    task.service_annotations.name = "web"
    task.spec.container.env.append("GREETING=hello")
    for i, secret_id in enumerate(secret_ids):
        task.spec.container.secrets.add(secret_id=secret_id, secret_name=secret_id, file=objects_pb2.FileTarget(
            name=(targets or {}).get(secret_id, secret_id), uid="1000", gid="1001", mode=0o440))
    for config_id in config_ids:
        task.spec.container.configs.add(config_id=config_id, config_name=config_id,
                                        file=objects_pb2.FileTarget(name=f"/etc/{config_id}", uid="0", gid="0", mode=0o444))
    return task


def context(task):
    return TemplateContext(task, "node1", "host1", lambda t: b"pw" if t == "db" else None, lambda t: None)


def test_expand_fields_env_secret_and_trimming():
    task = task_with()
    data = b'{{ .Service.Name }}.{{.Task.Slot}} {{ env "GREETING" }} {{ env "NONE" }}|  {{- .Task.ID -}}  |{{ .Node.Hostname }} {{ secret "db" }}'
    assert expand("c", data, context(task)) == b"web.3 hello |t1|host1 pw"


def test_unknown_field_or_target_names_the_action_not_the_data():
    task = task_with()
    with pytest.raises(TemplateError, match=r"config x: .*Nope"):
        expand("config x", b"SECRET-DATA {{ .Task.Nope }}", context(task))
    with pytest.raises(TemplateError, match="secret target other not found") as caught:
        expand("config x", b"SECRET-DATA {{ secret \"other\" }}", context(task))
    assert "SECRET-DATA" not in str(caught.value)


def test_files_are_written_with_owner_and_mode_and_removed(tmp_path):
    dependencies = TaskDependencies()
    dependencies.apply(dispatcher_pb2.AssignmentChange(secret=objects_pb2.Secret(id="s1", spec=objects_pb2.SecretSpec(data=b"v1"))))
    config = objects_pb2.Config(id="c1", spec=objects_pb2.ConfigSpec(data=b"slot={{ .Task.Slot }}", template_driver="golang"))
    dependencies.apply(dispatcher_pb2.AssignmentChange(config=config))
    files = TaskFiles("node1", dependencies, root="/dev/shm/swarmpy-test-" + os.urandom(4).hex())
    try:
        mounts = files.prepare(task_with(["s1"], ["c1"], targets={"s1": "app/pw"}))
        assert [(m["Target"], m["ReadOnly"]) for m in mounts] == [("/run/secrets/app/pw", True), ("/etc/c1", True)]
        secret_path, config_path = (m["Source"] for m in mounts)
        stat = os.stat(secret_path)
        assert (stat.st_uid, stat.st_gid, stat.st_mode & 0o777) == (1000, 1001, 0o440)
        assert open(secret_path, "rb").read() == b"v1" and open(config_path, "rb").read() == b"slot=3"
        files.remove_except(["t1"])
        assert os.path.exists(secret_path)
        files.remove("t1")
        assert not os.path.exists(secret_path)
    finally:
        import shutil

        shutil.rmtree(files.root.parent, ignore_errors=True)


def test_a_missing_secret_or_a_disk_root_is_refused(tmp_path):
    dependencies = TaskDependencies()
    files = TaskFiles("node1", dependencies, root="/dev/shm/swarmpy-test-" + os.urandom(4).hex())
    with pytest.raises(ExecutorError, match="secret s1 not found on node node1"):
        files.prepare(task_with(["s1"]))
    os.rmdir(files.root.parent)
    dependencies.apply(dispatcher_pb2.AssignmentChange(secret=objects_pb2.Secret(id="s1", spec=objects_pb2.SecretSpec(data=b"v"))))
    on_disk = TaskFiles("node1", dependencies, root=str(tmp_path / "files"))
    from swarmpy.worker.executor.task_files import file_system_type

    if file_system_type(str(tmp_path)) in ("tmpfs", "ramfs"):
        pytest.fail("the test's tmp_path is itself a tmpfs: it cannot check the refusal")
    with pytest.raises(ExecutorError, match="not a tmpfs"):
        on_disk.prepare(task_with(["s1"]))
    assert not (tmp_path / "files" / "node1").exists()
