"""Compose files for stacks: YAML errors with line and column, interpolation, merging, docker's checks,
conversion to prefixed, labelled service specs."""

from __future__ import annotations

import re
import textwrap

import pytest

from swarmpy.api import objects_pb2
from swarmpy.cli.compose_convert import NAMESPACE_LABEL, convert
from swarmpy.cli.compose_load import ComposeError, load


def write(tmp_path, text, name="docker-compose.yml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_full_service_converts(tmp_path):
    (tmp_path / "pw.txt").write_text("pw")
    (tmp_path / ".env").write_text("TAG=1.0\nREPLICAS=9\n")
    path = write(tmp_path, """
        version: "3.8"
        services:
          web:
            image: "busybox:${TAG}"
            command: sleep 1000
            environment: {A: "1", B: "${MISSING:-dflt}"}
            labels: [team=web]
            ports: ["8080:80", {target: 443, published: 8443, protocol: tcp, mode: host}]
            secrets: [pw, {source: pw, target: other, mode: 0400}]
            volumes: ["data:/data", "/tmp:/host:ro"]
            stop_grace_period: 1m30s
            build: .
            depends_on: [api]
            container_name: web1
            expose: ["80"]
            restart: always
            deploy:
              replicas: ${REPLICAS}
              placement: {constraints: [node.role==worker], preferences: [{spread: node.labels.zone}], max_replicas_per_node: 2}
              resources: {limits: {cpus: "0.5", memory: 50M}}
              restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3}
              update_config: {parallelism: 2, delay: 10s, order: start-first}
              labels: {tier: front}
        secrets:
          pw: {file: ./pw.txt}
        """)
    stack = convert("app", load([path], {"REPLICAS": "3"}))
    # docker's words: depends_on is ignored silently, container_name and expose are "deprecated"
    assert stack.warnings == [
        "Ignoring unsupported options: build, restart\n",
        "Ignoring deprecated options:\n\ncontainer_name: Setting the container name is not supported.\n\nexpose: Exposing"
        " ports is unnecessary - services on the same network can access each other's containers on any port.\n"]
    spec = stack.services["app_web"]
    container = spec.task.container
    assert container.image == "busybox:1.0" and list(container.args) == ["sleep", "1000"]
    assert list(container.env) == ["A=1", "B=dflt"]
    assert container.labels == {"team": "web", NAMESPACE_LABEL: "app"}
    assert spec.annotations.labels["tier"] == "front" and spec.annotations.labels[NAMESPACE_LABEL] == "app"
    assert spec.replicated.replicas == 3  # the environment wins over .env
    assert [(p.published_port, p.target_port, p.publish_mode) for p in spec.endpoint.ports] == [
        (8080, 80, objects_pb2.PortConfig.INGRESS), (8443, 443, objects_pb2.PortConfig.HOST)]
    assert [(s.secret_name, s.file.name, s.file.mode) for s in container.secrets] == [("app_pw", "pw", 0o444), ("app_pw", "other", 0o400)]
    assert [(m.type, m.source, m.target, m.read_only) for m in container.mounts] == [
        (objects_pb2.Mount.VOLUME, "app_data", "/data", False), (objects_pb2.Mount.BIND, "/tmp", "/host", True)]
    assert container.stop_grace_period == 90 * 10**9
    assert spec.task.placement.max_replicas == 2 and spec.task.resources.limits.memory_bytes == 50 * 1024 * 1024
    assert spec.task.restart.condition == objects_pb2.RestartPolicy.ON_FAILURE and spec.update.parallelism == 2
    assert stack.secrets[0].name == "app_pw" and stack.secrets[0].data == b"pw"
    assert [(a.target, list(a.aliases)) for a in spec.task.networks] == [("app_default", ["web"])]
    assert [(n.name, n.spec.driver_config.name, n.spec.annotations.labels[NAMESPACE_LABEL]) for n in stack.networks] == [
        ("app_default", "overlay", "app")]


def test_declared_and_external_networks(tmp_path):
    path = write(tmp_path, """
        services:
          web: {image: a, networks: {front: {aliases: [www]}, shared: null}}
          api: {image: a}
        networks:
          front: {driver_opts: {com.docker.network.driver.mtu: "1400"}, attachable: true}
          shared: {external: true}
        """)
    stack = convert("s", load([path], {}))
    assert [(a.target, list(a.aliases)) for a in stack.services["s_web"].task.networks] == [("s_front", ["web", "www"]), ("shared", ["web"])]
    assert [a.target for a in stack.services["s_api"].task.networks] == ["s_default"]
    by_name = {n.name: n for n in stack.networks}
    assert set(by_name) == {"s_default", "s_front", "shared"} and by_name["shared"].external
    assert by_name["s_front"].spec.attachable and by_name["s_front"].spec.driver_config.options["com.docker.network.driver.mtu"] == "1400"


def test_override_files_merge(tmp_path):
    base = write(tmp_path, "services: {web: {image: a, environment: {X: '1'}}}\n")
    override = write(tmp_path, "services: {web: {image: b}, api: {image: c}}\n", "override.yml")
    model = load([base, override], {})
    assert model["services"]["web"] == {"image": "b", "environment": {"X": "1"}}
    assert set(convert("s", model).services) == {"s_web", "s_api"}


@pytest.mark.parametrize("text,message", [
    ("services:\n  web:\n    image: a\n   bad: [\n", "yaml:"),
    ("services: {web: {image: a}}\nfoo: 1\n", "(root) Additional property foo is not allowed"),
    ("services: {web: {command: x}}\n", "invalid image reference for service web: no image specified"),
    ("services: {web: {image: a, ports: ['80:abc']}}\n", "services.web.ports: invalid port '80:abc'"),
    ("services: {web: {image: '${NOPE?must be set}'}}\n", 'invalid interpolation format for services.web.image: "required'
     ' variable NOPE is missing a value: must be set"; you may need to escape any $ with another $'),
    ("services: {web: {image: a, command: [x, '${}']}}\n",
     'invalid interpolation format for services.web.command.[]: "${}"; you may need to escape any $ with another $'),
    ("services: {web: {image: a, secrets: [ghost]}}\n", "undefined secret: ghost"),
    ("services: {web: {image: a, bogus: 1}}\n", "services.web Additional property bogus is not allowed"),
    ("services: {web: {image: a, networks: [nope]}}\n", "service web: undefined network 'nope'"),
])
def test_bad_files_are_refused_in_one_line(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ComposeError) as caught:
        convert("s", load([path], {}))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_forbidden_keys_are_refused_with_dockers_reasons(tmp_path):
    path = write(tmp_path, "services: {web: {image: a, mem_limit: 1g, extends: {service: x}}}\n")
    with pytest.raises(ComposeError) as caught:
        load([path], {})
    assert str(caught.value) == ("Compose file contains unsupported options:\n\nextends: Support for `extends` is not"
                                 " implemented yet.\n\nmem_limit: Set resource limits using deploy.resources\n")


def test_yaml_error_names_line_and_column(tmp_path):
    path = write(tmp_path, "services:\n  web:\n    image: a\n  - nope\n")
    with pytest.raises(ComposeError, match=r"line 4, column 3"):
        load([path], {})


def test_container_keys_docker_converts(tmp_path):
    """dns, dns_search, extra_hosts, logging, ulimits, isolation, credential_spec as docker's convert makes
    them; tmpfs ignored silently as docker does; stdin_open, which swarmpy cannot apply, warned about."""
    (tmp_path / "cs.json").write_text("{}")
    path = write(tmp_path, """
        version: "3.13"
        services:
          web:
            image: a
            dns: 10.0.0.2
            dns_search: [example.org]
            extra_hosts: ["db:10.0.0.5", "cache:10.0.0.6", "no-address"]
            logging: {driver: json-file, options: {max-size: 10m}}
            ulimits: {nproc: 65535, nofile: {soft: 1024, hard: 2048}}
            isolation: default
            tmpfs: /run
            stdin_open: true
            configs: [cs]
            credential_spec: {config: cs}
        configs:
          cs: {file: ./cs.json}
        """)
    stack = convert("s", load([path], {}))
    assert stack.warnings == ["Ignoring unsupported options: stdin_open\n"]
    spec = stack.services["s_web"]
    container = spec.task.container
    assert list(container.dns_config.nameservers) == ["10.0.0.2"] and list(container.dns_config.search) == ["example.org"]
    assert list(container.hosts) == ["10.0.0.5 db", "10.0.0.6 cache"]
    assert spec.task.log_driver.name == "json-file" and dict(spec.task.log_driver.options) == {"max-size": "10m"}
    assert [(u.name, u.soft, u.hard) for u in container.ulimits] == [("nofile", 1024, 2048), ("nproc", 65535, 65535)]
    assert container.isolation == "default" and container.privileges.credential_spec.config == "s_cs"


@pytest.mark.parametrize("text,message", [
    ("services: {web: {image: a, credential_spec: {file: x, registry: y}}}\n",
     'invalid credential spec: cannot specify both "File" and "Registry"'),
    ("services: {web: {image: a, credential_spec: {config: nope}}}\n",
     "invalid credential spec: spec specifies config nope, but no such config can be found"),
    ("services: {web: {image: a, ulimits: {nofile: {soft: 9, hard: 1}}}}\n",
     "services.web.ulimits.nofile: ulimit soft limit must be less than or equal to hard limit: 9 > 1"),
    ("services: {web: {image: a, dns: [1]}}\n", "services.web.dns must be a string or a list of strings"),
])
def test_bad_container_keys_are_refused(tmp_path, text, message):
    with pytest.raises(ComposeError, match=re.escape(message)):
        convert("s", load([write(tmp_path, text)], {}))
