"""Task → container create arguments, without an engine."""

from __future__ import annotations

import pytest

from swarmpy.api import objects_pb2
from swarmpy.worker.executor import container_config
from swarmpy.worker.executor.base import InvalidSpec, stop_grace_seconds


def task(**fields) -> objects_pb2.Task:
    t = objects_pb2.Task(id="t" * 25, service_id="s1", node_id="n1", **fields)
    t.service_annotations.name = "web"
    t.spec.container.image = "img:1"
    return t


def test_names_follow_swarm():
    assert container_config.container_name(task(slot=2)) == f"web.2.{'t' * 25}"
    assert container_config.container_name(task(slot=0)) == f"web.n1.{'t' * 25}"  # global: the node ID


def test_only_host_mode_ports_are_bound_ingress_ones_are_the_mesh_s():
    t = task(slot=1)
    t.endpoint.ports.add(target_port=80, published_port=30080, publish_mode=objects_pb2.PortConfig.INGRESS)
    t.endpoint.ports.add(target_port=53, published_port=53, protocol=objects_pb2.PortConfig.UDP,
                         publish_mode=objects_pb2.PortConfig.HOST)
    assert container_config.port_bindings(t) == {"53/udp": 53}


def test_unset_stop_grace_is_ten_seconds():
    t = task(slot=1)
    assert stop_grace_seconds(t) == 10
    t.spec.container.stop_grace_period = 0
    assert stop_grace_seconds(t) == 0


def test_image_defaults_are_kept_when_command_and_args_are_empty():
    kwargs = container_config.create_kwargs(task(slot=1), "n1")
    assert "entrypoint" not in kwargs and "command" not in kwargs


@pytest.mark.parametrize(
    "mount",
    [objects_pb2.Mount(type=objects_pb2.Mount.BIND, target="/x"), objects_pb2.Mount(type=objects_pb2.Mount.TMPFS)],
)
def test_bad_mounts_are_invalid_specs_naming_the_task(mount):
    t = task(slot=1)
    t.spec.container.mounts.append(mount)
    with pytest.raises(InvalidSpec, match="t" * 25):
        container_config.create_kwargs(t, "n1")


def test_dns_settings_and_extra_hosts_reach_the_engine():
    t = task(slot=1)
    t.spec.container.dns_config.nameservers.append("10.0.0.53")
    t.spec.container.dns_config.search.append("example.org")
    t.spec.container.dns_config.options.append("ndots:2")
    t.spec.container.hosts.append("10.1.2.3 db.local db")
    kwargs = container_config.create_kwargs(t, "n1")
    assert (kwargs["dns"], kwargs["dns_search"], kwargs["dns_opt"]) == (["10.0.0.53"], ["example.org"], ["ndots:2"])
    assert kwargs["extra_hosts"] == ["db.local:10.1.2.3", "db:10.1.2.3"]
    assert "dns" not in container_config.create_kwargs(task(slot=1), "n1")


def test_a_task_on_an_overlay_gets_no_engine_network_and_only_the_embedded_resolver():
    t = task(slot=1)
    t.networks.add(addresses=["10.0.1.5/24"]).network.id = "net1"
    t.spec.container.dns_config.nameservers.append("10.0.0.53")
    t.spec.container.dns_config.search.append("example.org")
    kwargs = container_config.create_kwargs(t, "n1")
    assert kwargs["network_mode"] == "none"
    # Only the embedded resolver in resolv.conf, as docker's; the --dns servers are its upstreams.
    assert kwargs["dns"] == ["127.0.0.11"] and kwargs["dns_search"] == ["example.org"]
    assert kwargs["labels"][container_config.DNS_SERVERS_LABEL] == "10.0.0.53"
    assert kwargs["dns_opt"] == ["ndots:0"]  # docker's, unless the user sets ndots
    t.spec.container.dns_config.options.append("ndots:3")
    assert container_config.create_kwargs(t, "n1")["dns_opt"] == ["ndots:3"]
    assert container_config.DNS_SERVERS_LABEL not in container_config.create_kwargs(task(slot=1), "n1")["labels"]
    plain = container_config.create_kwargs(task(slot=1), "n1")
    assert "network_mode" not in plain and "dns" not in plain


def test_assigned_generic_resources_become_docker_resource_variables():
    t = task(slot=1)
    t.spec.container.env.append("A=1")
    t.assigned_generic_resources.add(kind="gpu", named="GPU-1")
    t.assigned_generic_resources.add(kind="gpu", named="GPU-2")
    t.assigned_generic_resources.add(kind="ssd", discrete=3)
    env = container_config.create_kwargs(t, "n1")["environment"]
    assert env == ["A=1", "DOCKER_RESOURCE_GPU=GPU-1,GPU-2", "DOCKER_RESOURCE_SSD=3"]
    assert container_config.create_kwargs(task(slot=1), "n1")["environment"] == []


def _overlay_task_with_host_ports():
    t = task(slot=1)
    t.networks.add(addresses=["10.0.1.5/24"]).network.id = "net1"
    t.endpoint.ports.add(target_port=80, published_port=8080, publish_mode=objects_pb2.PortConfig.HOST)
    t.endpoint.ports.add(target_port=53, protocol=objects_pb2.PortConfig.UDP, publish_mode=objects_pb2.PortConfig.HOST)
    return t


def test_an_overlay_task_s_host_ports_are_the_node_s_recorded_on_its_container():
    from swarmpy.worker.task_states import HostPort

    t = _overlay_task_with_host_ports()
    assert container_config.host_mode_ports(t) == [HostPort(80, "tcp", 8080), HostPort(53, "udp", 0)]
    chosen = [HostPort(80, "tcp", 8080), HostPort(53, "udp", 30001)]
    kwargs = container_config.create_kwargs(t, "n1", overlay_host_ports=chosen)
    assert "ports" not in kwargs and kwargs["network_mode"] == "none"  # the engine would ignore them there
    assert kwargs["labels"][container_config.HOST_PORTS_LABEL] == "80/tcp=8080,53/udp=30001"
    assert container_config.parse_host_ports_label("80/tcp=8080,53/udp=30001,junk") == tuple(chosen)
    # PortStatus reports the node's pick for published 0
    reported = container_config.port_status(t, tuple(chosen))
    assert [(p.target_port, p.published_port) for p in reported] == [(80, 8080), (53, 30001)]


def test_host_ports_are_checked_free_and_zero_gets_a_free_one():
    import socket

    from swarmpy.worker.executor import host_ports
    from swarmpy.worker.task_states import HostPort

    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        taken_port = busy.getsockname()[1]
        with pytest.raises(host_ports.PortInUse, match=f"Bind for 0.0.0.0:{taken_port} failed: port is already allocated"):
            host_ports.choose([HostPort(80, "tcp", taken_port)], [])
    with pytest.raises(host_ports.PortInUse):  # another task of this node holds it
        host_ports.choose([HostPort(80, "tcp", 18093)], [HostPort(81, "tcp", 18093)])
    [picked] = host_ports.choose([HostPort(80, "tcp", 0)], [])
    assert picked.target_port == 80 and picked.published_port > 0
