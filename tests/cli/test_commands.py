"""The CLI end to end against the in-process fake daemon (tests/cli/fake_daemon.py)."""

import os
import subprocess
import sys

from click.testing import CliRunner

from swarmpy.api import control_pb2, dispatcher_pb2, objects_pb2
from swarmpy.cli.main import cli
from tests.cli.fake_daemon import SELF_NODE_ID, make_node

TaskState = objects_pb2.TaskState


# ---------------------------------------------------------------- no daemon


def test_no_daemon_is_one_plain_line_and_exit_1(tmp_path):
    missing = tmp_path / "nothing.sock"
    result = CliRunner().invoke(cli, ["-H", f"unix://{missing}", "service", "ls"])
    assert result.exit_code == 1
    assert result.stderr == f"Cannot connect to the swarmpy daemon at unix://{missing}. Is swarmpyd running?\n"
    assert result.stdout == ""


def test_no_daemon_from_a_real_process_has_no_traceback(tmp_path):
    env = dict(os.environ, SWARMPY_HOST=str(tmp_path / "nothing.sock"))
    completed = subprocess.run([sys.executable, "-m", "swarmpy.cli.main", "node", "ls"], env=env,
                               capture_output=True, text=True, timeout=30)
    assert completed.returncode == 1
    assert completed.stderr == f"Cannot connect to the swarmpy daemon at {tmp_path / 'nothing.sock'}. Is swarmpyd running?\n"
    assert "Traceback" not in completed.stdout + completed.stderr


# ---------------------------------------------------------------- service create


def test_service_create_sends_the_spec_built_from_flags(run, fake):
    result = run("service", "create", "-d", "--name", "web", "--replicas", "3", "-e", "A=1", "--env", "B=2",
                 "-l", "tier=front", "--constraint", "node.role==worker", "-p", "8080:80",
                 "--limit-cpu", "0.5", "--limit-memory", "512m", "--reserve-memory", "1.5GiB",
                 "--restart-condition", "on-failure", "--restart-delay", "10s", "--update-parallelism", "2",
                 "--update-delay", "1m30s", "--update-failure-action", "rollback", "--stop-grace-period", "300ms",
                 "busybox:1.36", "sleep", "1000")
    assert result.exit_code == 0, result.output
    (request,) = fake.sent("CreateService")
    spec = request.spec
    assert spec.annotations.name == "web" and dict(spec.annotations.labels) == {"tier": "front"}
    assert spec.replicated.replicas == 3
    container = spec.task.container
    assert container.image == "busybox:1.36" and list(container.args) == ["sleep", "1000"]
    assert not container.command
    assert list(container.env) == ["A=1", "B=2"]
    assert container.stop_grace_period == 300_000_000
    assert spec.task.resources.limits.nano_cpus == 500_000_000
    assert spec.task.resources.limits.memory_bytes == 512 * 1024**2
    assert spec.task.resources.reservations.memory_bytes == int(1.5 * 1024**3)
    assert spec.task.restart.condition == objects_pb2.RestartPolicy.ON_FAILURE and spec.task.restart.delay == 10**10
    assert spec.update.parallelism == 2 and spec.update.delay == 90 * 10**9
    assert spec.update.failure_action == objects_pb2.UpdateConfig.ROLLBACK
    assert list(spec.task.placement.constraints) == ["node.role==worker"]
    assert spec.endpoint.ports[0].published_port == 8080 and spec.endpoint.ports[0].target_port == 80
    service_id = next(iter(fake.services))
    assert result.stdout == service_id + "\n"


def test_entrypoint_goes_to_command_and_args_keep_their_dashes(run, fake):
    result = run("service", "create", "-d", "--entrypoint", "/bin/sh -c", "busybox", "--not-a-flag", "x")
    assert result.exit_code == 0, result.output
    container = fake.sent("CreateService")[0].spec.task.container
    assert list(container.command) == ["/bin/sh", "-c"]
    assert list(container.args) == ["--not-a-flag", "x"]


def test_bad_flag_values_name_the_flag_and_send_nothing(run, fake):
    cases = [
        (["--limit-memory", "abc"], 'invalid argument "abc" for "--limit-memory" flag: invalid size: \'abc\''),
        (["--restart-delay", "10"], 'invalid argument "10" for "--restart-delay" flag: time: missing unit in duration "10"'),
        (["--limit-cpu", "lots"], 'invalid argument "lots" for "--limit-cpu" flag: failed to parse lots as a rational number'),
        (["--replicas", "x"], 'invalid argument "x" for "--replicas" flag: strconv.ParseUint: parsing "x": invalid syntax'),
        (["-p", "abc:80"], 'invalid argument "abc:80" for "-p, --publish" flag: invalid published port: \'abc\''),
        (["--update-order", "sideways"], 'invalid argument "sideways" for "--update-order" flag: must be one of start-first, stop-first'),
        (["--mode", "global", "--replicas", "2"], "replicas can only be used with replicated or replicated-job mode"),
    ]
    for flags, message in cases:
        result = run("service", "create", "-d", *flags, "busybox")
        assert result.exit_code == 125, (flags, result.output)
        assert result.stderr == message + "\n", flags
    assert fake.requests == []


def test_create_waits_for_convergence_in_plain_lines(run, fake):
    fake.advance_tasks = True
    result = run("service", "create", "--name", "web", "--update-monitor", "50ms", "busybox")
    assert result.exit_code == 0, result.output
    service_id = next(iter(fake.services))
    lines = result.stdout.splitlines()
    assert lines[0] == service_id
    assert lines[1] == "overall progress: 0 out of 1 tasks"
    states = [line.split()[1] for line in lines if line.startswith("1/1: ")]
    assert states == ["pending", "assigned", "accepted", "preparing", "ready", "starting", "running"]
    assert "1/1: running   [==================================================>]" in lines
    assert "overall progress: 1 out of 1 tasks" in lines
    assert lines[-2] == "verify: Waiting 1 seconds to verify that tasks are stable..."
    assert lines[-1] == f"verify: Service {service_id} converged"
    polls = fake.sent("ListTasks")
    assert polls and all(p.filters.up_to_date and list(p.filters.service_ids) == [service_id] for p in polls)


def test_create_shows_task_errors_while_waiting(run, fake, monkeypatch):
    from swarmpy.cli import converge

    fake.advance_tasks = True
    fake.fail_image = "foo:latest"
    polls = []

    def interrupt_after_a_while(seconds):
        polls.append(seconds)
        if len(polls) > 12:
            raise KeyboardInterrupt

    monkeypatch.setattr(converge.time, "sleep", interrupt_after_a_while)
    result = run("service", "create", "--name", "bad", "foo:latest")
    assert result.exit_code == 0, result.output
    assert "1/1: No such image: foo:latest" in result.stdout.splitlines()
    assert result.stdout.splitlines()[-1] == "Operation continuing in background."


# ---------------------------------------------------------------- ls / ps / inspect


def _create(run, *args):
    result = run("service", "create", "-d", *args)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_service_ls_columns(run, fake):
    web = _create(run, "--name", "web", "--replicas", "3", "-p", "8080:80", "nginx:1.25")
    agent = _create(run, "--name", "agent", "--mode", "global", "busybox")
    fake.tasks[next(t for t in fake.tasks if fake.tasks[t].service_id == web)].status.state = TaskState.RUNNING
    result = run("service", "ls")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "ID             NAME      MODE         REPLICAS   IMAGE        PORTS",
        f"{agent[:12]}   agent     global       0/0        busybox",
        f"{web[:12]}   web       replicated   1/3        nginx:1.25   *:8080->80/tcp",
    ]
    quiet = run("service", "ls", "-q")
    assert quiet.stdout.splitlines() == [agent[:12], web[:12]]
    as_json = run("service", "ls", "--format", "json", "-f", "name=web")
    assert as_json.stdout.splitlines() == [
        f'{{"ID":"{web[:12]}","Image":"nginx:1.25","Mode":"replicated","Name":"web","Ports":"*:8080->80/tcp","Replicas":"1/3"}}']
    assert list(fake.sent("ListServices")[-1].filters.names) == ["web"]


def test_service_ps_columns_and_history(run, fake):
    web = _create(run, "--name", "web", "--replicas", "2", "busybox")
    first, second = sorted((t for t in fake.tasks.values() if t.service_id == web), key=lambda t: t.slot)
    first.status.state = TaskState.FAILED
    first.status.err = "task: non-zero exit (1)"
    first.desired_state = TaskState.SHUTDOWN
    replacement = objects_pb2.Task()
    replacement.CopyFrom(second)
    replacement.id = "replacement0000000000000a"
    replacement.slot = 1
    replacement.meta.created_at = first.meta.created_at + 1
    replacement.status.state = TaskState.RUNNING
    fake.tasks[replacement.id] = replacement
    fake.nodes["other"] = make_node("other", "node-2")
    second.node_id = "other"
    result = run("service", "ps", "web")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == ("ID             NAME        IMAGE     NODE      DESIRED STATE   CURRENT STATE"
                        "                    ERROR                       PORTS")
    assert lines[1].startswith("replacement0   web.1       busybox   node-1    Running         Running less than a second ago")
    assert lines[2].startswith(f"{first.id[:12]}    \\_ web.1   busybox   node-1    Shutdown        Failed less than a second ago")
    assert lines[2].endswith('"task: non-zero exit (1)"')
    assert lines[3].startswith(f"{second.id[:12]}   web.2       busybox   node-2    Running         New less than a second ago")
    running_only = run("service", "ps", "-q", "-f", "desired-state=running", "web")
    assert list(fake.sent("ListTasks")[-1].filters.desired_states) == [TaskState.RUNNING]
    assert running_only.exit_code == 0


def test_service_ps_unknown_service(run):
    result = run("service", "ps", "nope")
    assert result.exit_code == 1
    assert result.stderr == "Error response from daemon: no such service: nope\n"


def test_service_inspect_json_and_pretty(run, fake):
    _create(run, "--name", "web", "--replicas", "2", "--limit-memory", "512m", "--limit-cpu", "0.5", "busybox", "sleep", "9")
    import json

    inspected = json.loads(run("service", "inspect", "web").stdout)
    assert inspected[0]["Spec"]["Name"] == "web"
    assert inspected[0]["Spec"]["TaskTemplate"]["ContainerSpec"]["Args"] == ["sleep", "9"]
    assert fake.sent("GetService")[-1].insert_defaults
    pretty = run("service", "inspect", "--pretty", "web").stdout
    assert "Name:\t\tweb\n" in pretty
    assert "Service Mode:\tReplicated\n Replicas:\t2\n" in pretty
    assert "ContainerSpec:\n Image:\t\tbusybox\n Args:\t\tsleep 9 \n" in pretty
    assert "Resources:\n Limits:\n  CPU:\t\t0.5\n  Memory:\t512MiB\n" in pretty


# ---------------------------------------------------------------- scale / update / rollback / rm


def test_scale(run, fake):
    _create(run, "--name", "web", "busybox")
    _create(run, "--name", "agent", "--mode", "global", "busybox")
    result = run("service", "scale", "-d", "web=5", "agent=2")
    assert result.exit_code == 1
    assert result.stdout == "web scaled to 5\n"
    assert result.stderr == "agent: scale can only be used with replicated or replicated-job mode\n"
    (update,) = fake.sent("UpdateService")
    assert update.spec.replicated.replicas == 5 and update.version.index > 0


def test_scale_rejects_bad_specifiers_before_sending(run, fake):
    result = run("service", "scale", "web")
    assert result.exit_code == 1
    assert result.stderr.startswith("invalid scale specifier 'web'.")
    assert fake.requests == []


def test_update_sends_the_edited_spec_with_the_version_read(run, fake):
    _create(run, "--name", "web", "-e", "A=1", "busybox:1")
    read_version = next(iter(fake.services.values())).meta.version.index
    result = run("service", "update", "-d", "--image", "busybox:2", "--env-add", "B=2", "--env-rm", "A",
                 "--force", "--limit-memory", "1g", "web")
    assert result.exit_code == 0, result.output
    assert result.stdout == "web\n"
    (update,) = fake.sent("UpdateService")
    assert update.version.index == read_version
    assert update.spec.task.container.image == "busybox:2"
    assert list(update.spec.task.container.env) == ["B=2"]
    assert update.spec.task.force_update == 1
    assert update.spec.task.resources.limits.memory_bytes == 1024**3


def test_update_conflict_says_what_to_do(run, fake):
    _create(run, "--name", "web", "busybox")
    fake.abort_updates = True
    result = run("service", "update", "-d", "--image", "x", "web")
    assert result.exit_code == 1
    assert "was changed by someone else" in result.stderr and "run the command again" in result.stderr


def test_rollback_asks_for_the_previous_spec(run, fake):
    _create(run, "--name", "web", "busybox:1")
    run("service", "update", "-d", "--image", "busybox:2", "web")
    result = run("service", "rollback", "-d", "web")
    assert result.exit_code == 0, result.output
    assert fake.sent("UpdateService")[-1].rollback == control_pb2.UpdateServiceRequest.PREVIOUS
    assert next(iter(fake.services.values())).spec.task.container.image == "busybox:1"


def test_rm_reports_unknown_services_after_removing_the_others(run, fake):
    _create(run, "--name", "web", "busybox")
    _create(run, "--name", "api", "busybox")
    result = run("service", "rm", "web", "ghost", "api")
    assert result.exit_code == 1
    assert result.stdout == "web\napi\n"
    assert result.stderr == "Error: No such service: ghost\n"
    assert fake.services == {}


# ---------------------------------------------------------------- logs


def test_logs_prefix_lines_with_task_and_node(run, fake):
    service_id = _create(run, "--name", "web", "--replicas", "2", "busybox")
    task = next(t for t in fake.tasks.values() if t.slot == 1)
    fake.logs = [dispatcher_pb2.LogMessage(
        context=dispatcher_pb2.LogContext(service_id=service_id, node_id=SELF_NODE_ID, task_id=task.id),
        timestamp=1_700_000_000_000_000_000, data=b"hello\n")]
    result = run("service", "logs", "web")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"web.1.{task.id[:12]}@node-1    | hello\n"
    stamped = run("service", "logs", "-t", "--no-task-ids", "--tail", "5", "web")
    assert stamped.stdout == "2023-11-14T22:13:20.000000000Z web.1@node-1    | hello\n"
    assert fake.sent("ServiceLogs")[-1].options.tail == 5
    assert run("service", "logs", "nothing").stderr == "no such task or service: nothing\n"


# ---------------------------------------------------------------- nodes


def test_node_ls_columns(run, fake):
    fake.nodes["w1"] = make_node("w1xxxxxxxxxxxxxxxxxxxxxxx", "worker-1", state=objects_pb2.NodeStatus.DOWN,
                                 availability=objects_pb2.NodeSpec.DRAIN)
    result = run("node", "ls")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "ID                            HOSTNAME   STATUS    AVAILABILITY   MANAGER STATUS   ENGINE VERSION",
        f"{SELF_NODE_ID} *   node-1     Ready     Active         Leader           0.1.0",
        "w1xxxxxxxxxxxxxxxxxxxxxxx     worker-1   Down      Drain                           0.1.0",
    ]
    assert run("node", "ls", "-q").stdout.splitlines() == [SELF_NODE_ID, "w1xxxxxxxxxxxxxxxxxxxxxxx"]


def test_node_promote_demote_update_rm(run, fake):
    fake.nodes["w1"] = make_node("w1", "worker-1")
    assert run("node", "promote", "worker-1").stdout == "Node worker-1 promoted to a manager in the swarm.\n"
    assert fake.sent("UpdateNode")[-1].spec.desired_role == objects_pb2.MANAGER
    assert run("node", "demote", "worker-1").stdout == "Manager worker-1 demoted in the swarm.\n"
    assert fake.sent("UpdateNode")[-1].spec.desired_role == objects_pb2.WORKER
    result = run("node", "update", "--availability", "drain", "--label-add", "zone=a", "worker-1")
    assert result.stdout == "worker-1\n"
    sent = fake.sent("UpdateNode")[-1]
    assert sent.spec.availability == objects_pb2.NodeSpec.DRAIN and dict(sent.spec.annotations.labels) == {"zone": "a"}
    assert run("node", "rm", "worker-1").stdout == "worker-1\n"
    missing = run("node", "rm", "ghost")
    assert missing.exit_code == 1 and missing.stderr == "Error response from daemon: no such node: ghost\n"


def test_node_inspect_self_and_node_ps(run, fake):
    import json

    inspected = json.loads(run("node", "inspect", "self").stdout)
    assert inspected[0]["ID"] == SELF_NODE_ID
    assert "Hostname:              \tnode-1" in run("node", "inspect", "--pretty", "self").stdout
    _create(run, "--name", "web", "busybox")
    result = run("node", "ps")
    assert result.exit_code == 0
    assert list(fake.sent("ListTasks")[-1].filters.node_ids) == [SELF_NODE_ID]
    assert result.stdout.splitlines()[1].split()[1:4] == ["web.1", "busybox", "node-1"]


# ---------------------------------------------------------------- swarm


def test_swarm_init_prints_the_join_command(run, fake):
    result = run("swarm", "init", "--advertise-addr", "10.0.0.1", "--task-history-limit", "3", "--cert-expiry", "24h")
    assert result.exit_code == 0, result.output
    (init,) = fake.sent("Init")
    assert init.listen_addr == "0.0.0.0:2377" and init.advertise_addr == "10.0.0.1"
    assert init.spec.orchestration.task_history_retention_limit == 3
    assert init.spec.ca_config.node_cert_expiry == 24 * 3600 * 10**9
    assert init.spec.dispatcher.heartbeat_period == 5 * 10**9
    assert result.stdout == (
        f"Swarm initialized: current node ({SELF_NODE_ID}) is now a manager.\n\n"
        "To add a worker to this swarm, run the following command:\n\n"
        "    swarmpy swarm join --token SWMTKN-1-aaa-worker 10.0.0.1:2377\n\n"
        "To add a manager to this swarm, run 'swarmpy swarm join-token manager' and follow the instructions.\n")


def test_join_token_rotate_and_quiet(run, fake):
    assert run("swarm", "join-token", "-q", "manager").stdout == "SWMTKN-1-aaa-manager\n"
    result = run("swarm", "join-token", "--rotate", "worker")
    assert result.stdout.startswith("Successfully rotated worker join token.\n\n"
                                    "To add a worker to this swarm, run the following command:\n\n"
                                    "    swarmpy swarm join --token SWMTKN-1-aaa-rotatedworker 10.0.0.1:2377\n")
    (update,) = fake.sent("UpdateCluster")
    assert update.rotate_worker_token and not update.rotate_manager_token and update.version.index == 3


def test_join_leave_ca(run, fake):
    assert run("swarm", "join", "--token", "SWMTKN-1-x", "10.0.0.9:2377").stdout == "This node joined a swarm as a manager.\n"
    assert list(fake.sent("Join")[0].remote_addrs) == ["10.0.0.9:2377"]
    assert run("swarm", "leave", "--force").stdout == "Node left the swarm.\n"
    assert fake.sent("Leave")[0].force
    assert run("swarm", "ca").stdout.startswith("-----BEGIN CERTIFICATE-----")



def test_swarm_ca_reads_its_pem_files_first(run, fake, tmp_path):
    """docker reads --ca-cert/--ca-key as it parses them: a missing file is the flag's error, before the
    pairing rule or any call."""
    missing = tmp_path / "nofile"
    for flag in ("--ca-cert", "--ca-key"):
        result = run("swarm", "ca", "--rotate", flag, str(missing))
        assert result.exit_code == 125, result.stderr
        assert result.stderr == (f'invalid argument "{missing}" for "{flag}" flag: open {missing}:'
                                 " no such file or directory\n")
    assert not fake.sent("UpdateCluster") and not fake.sent("GetCluster")


def test_node_update_rejects_a_label_without_key(run, fake):
    result = run("node", "update", "--label-add", "=x", "self")
    assert result.exit_code == 125
    assert result.stderr == 'invalid argument "=x" for "--label-add" flag: invalid label format: \'=x\'\n'
    assert fake.sent("UpdateNode") == []


def test_inspect_prints_what_it_found_then_fails_for_the_rest(run, fake):
    _create(run, "--name", "web", "busybox")
    import json

    result = run("service", "inspect", "web", "nope")
    assert result.exit_code == 1
    assert [s["Spec"]["Name"] for s in json.loads(result.stdout)] == ["web"]
    assert "nope" in result.stderr
    formatted = run("node", "inspect", "--format", "{{.ID}}|{{.Spec.Role}}", "self")
    assert formatted.exit_code == 0 and formatted.stdout.strip().endswith("|manager"), formatted.stdout
    refused = run("node", "inspect", "--format", "{{.ID", "self")
    assert refused.exit_code == 1 and refused.stderr == "template parsing error: template: :1: unclosed action\n"
