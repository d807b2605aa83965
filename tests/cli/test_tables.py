from swarmpy.api import control_pb2, objects_pb2
from swarmpy.cli.listings import ingress_ports_text, node_rows, service_rows
from swarmpy.engineapi.convert import to_json
from swarmpy.cli.table import natural_key, render_table, strip_digest
from tests.cli.fake_daemon import make_node

PortConfig = objects_pb2.PortConfig


def test_render_table_pads_like_docker_tabwriter():
    text = render_table(("ID", "NAME", "PORTS"), [("abc", "a-long-service-name", ""), ("d", "x", "*:80->80/tcp")])
    assert text.splitlines() == [
        "ID        NAME                  PORTS",
        "abc       a-long-service-name",
        "d         x                     *:80->80/tcp",
    ]


def test_natural_order():
    assert sorted(["node10", "node2", "node1"], key=natural_key) == ["node1", "node2", "node10"]


def test_strip_digest():
    assert strip_digest("busybox:1.36@sha256:abc") == "busybox:1.36"
    assert strip_digest("busybox@sha256:abc") == "busybox@sha256:abc"
    assert strip_digest("registry:5000/busybox") == "registry:5000/busybox"


def _port(published, target, protocol=PortConfig.TCP, mode=PortConfig.INGRESS):
    return PortConfig(published_port=published, target_port=target, protocol=protocol, publish_mode=mode)


def test_ingress_ports_fold_into_ranges_and_skip_host_mode():
    ports = [_port(8080, 80), _port(8081, 81), _port(53, 53, PortConfig.UDP), _port(9000, 90, mode=PortConfig.HOST),
             _port(7000, 70)]
    assert ingress_ports_text([to_json.port_config(p) for p in ports]) == "*:7000->70/tcp, *:8080-8081->80-81/tcp, *:53->53/udp"


def _service(service_id, name, replicas=None, ports=()):
    spec = objects_pb2.ServiceSpec(annotations=objects_pb2.Annotations(name=name))
    spec.task.container.image = "busybox:1.36@sha256:ffff"
    if replicas is None:
        getattr(spec, "global").SetInParent()
    else:
        spec.replicated.replicas = replicas
    spec.endpoint.ports.extend(ports)
    return objects_pb2.Service(id=service_id, spec=spec)


def test_service_rows():
    response = control_pb2.ListServicesResponse(
        services=[_service("zzzzzzzzzzzzzzzzzzzzzzzzz", "web", 3, [_port(8080, 80)]),
                  _service("aaaaaaaaaaaaaaaaaaaaaaaaa", "agent")],
        statuses=[control_pb2.ServiceStatus(service_id="zzzzzzzzzzzzzzzzzzzzzzzzz", running_tasks=2, desired_tasks=3),
                  control_pb2.ServiceStatus(service_id="aaaaaaaaaaaaaaaaaaaaaaaaa", running_tasks=1, desired_tasks=1)])
    assert service_rows(response) == [
        {"ID": "aaaaaaaaaaaa", "Name": "agent", "Mode": "global", "Replicas": "1/1", "Image": "busybox:1.36", "Ports": ""},
        {"ID": "zzzzzzzzzzzz", "Name": "web", "Mode": "replicated", "Replicas": "2/3", "Image": "busybox:1.36",
         "Ports": "*:8080->80/tcp"},
    ]


def test_node_rows_mark_self_and_manager_status():
    nodes = [make_node("n2", "node10"), make_node("n1", "node2", leader=True),
             make_node("n3", "node3", manager=True, state=objects_pb2.NodeStatus.DOWN,
                       availability=objects_pb2.NodeSpec.DRAIN)]
    rows = node_rows(nodes, "n1")
    assert [(r["ID"], r["Hostname"], r["Status"], r["Availability"], r["ManagerStatus"]) for r in rows] == [
        ("n1 *", "node2", "Ready", "Active", "Leader"),
        ("n3", "node3", "Down", "Drain", "Reachable"),
        ("n2", "node10", "Ready", "Active", ""),
    ]


def test_tls_status_is_dockers():
    from swarmpy.api import objects_pb2
    from swarmpy.cli.listings import tls_status

    wanted = objects_pb2.NodeTLSInfo(trust_root=b"root", cert_issuer_subject=b"s", cert_issuer_public_key=b"k")
    node = objects_pb2.Node(id="n1")
    assert tls_status(node, wanted) == "Unknown"
    node.description.tls_info.CopyFrom(wanted)
    assert tls_status(node, wanted) == "Ready"
    assert tls_status(node, None) == "Unknown"
    node.description.tls_info.trust_root = b"old root\nroot"
    assert tls_status(node, wanted) == "Needs Rotation"
