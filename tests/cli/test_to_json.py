import json

from swarmpy.api import objects_pb2
from swarmpy.engineapi.convert import to_json as convert
from swarmpy.cli.service_spec import build_service_spec
from swarmpy.cli.value_parsers import parse_port
from tests.cli.fake_daemon import make_node


def test_rfc3339_nano_trims_trailing_zeros():
    assert convert.rfc3339_nano(0) == "1970-01-01T00:00:00Z"
    assert convert.rfc3339_nano(1_700_000_000_120_000_000) == "2023-11-14T22:13:20.12Z"


def test_go_time_string_and_log_timestamps_share_the_instant_but_not_the_layout():
    from swarmpy.cli.pretty import go_time_string
    from swarmpy.engineapi.convert.to_json import fixed_rfc3339_nano

    assert go_time_string(1_700_000_000_120_000_000) == "2023-11-14 22:13:20.12 +0000 UTC"
    assert go_time_string(0) == "1970-01-01 00:00:00 +0000 UTC"
    assert fixed_rfc3339_nano(1_700_000_000_120_000_000) == "2023-11-14T22:13:20.120000000Z"
    assert fixed_rfc3339_nano(0) == "1970-01-01T00:00:00.000000000Z"


def test_update_state_words_are_dockers():
    assert convert.update_state_word(objects_pb2.UpdateStatus.UNKNOWN) == ""
    assert convert.update_state_word(objects_pb2.UpdateStatus.UPDATING) == "updating"
    assert convert.update_state_word(objects_pb2.UpdateStatus.ROLLBACK_COMPLETED) == "rollback_completed"


def test_service_in_engine_api_shape():
    spec = build_service_spec({"image": "nginx", "name": "web", "replicas": 2, "args": ("-g", "daemon off;"),
                               "env": ("A=1",), "limit_memory": 1024, "restart_condition": "on-failure",
                               "update_parallelism": 2, "publish": (parse_port("8080:80"),)})
    service = objects_pb2.Service(id="svc1", spec=spec, meta=objects_pb2.Meta(
        version=objects_pb2.Version(index=7), created_at=1_700_000_000_000_000_000, updated_at=1_700_000_001_000_000_000))
    converted = convert.service(service)
    json.dumps(converted)  # serializable
    assert converted["ID"] == "svc1" and converted["Version"] == {"Index": 7}
    assert converted["CreatedAt"] == "2023-11-14T22:13:20Z"
    assert converted["Spec"]["Name"] == "web"
    assert converted["Spec"]["Mode"] == {"Replicated": {"Replicas": 2}}
    container = converted["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert container == {"Image": "nginx", "Args": ["-g", "daemon off;"], "Env": ["A=1"]}
    assert converted["Spec"]["TaskTemplate"]["Resources"] == {"Limits": {"MemoryBytes": 1024}}
    assert converted["Spec"]["TaskTemplate"]["RestartPolicy"] == {"Condition": "on-failure", "MaxAttempts": 0}
    assert converted["Spec"]["UpdateConfig"] == {"Parallelism": 2, "FailureAction": "pause", "MaxFailureRatio": 0,
                                                 "Order": "stop-first"}
    assert converted["Spec"]["EndpointSpec"] == {"Mode": "vip", "Ports": [
        {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"}]}


def test_global_mode_and_node():
    spec = build_service_spec({"image": "x", "mode": "global"})
    assert convert.service_spec(spec)["Mode"] == {"Global": {}}
    node = convert.node(make_node("n1", "host1", leader=True))
    assert node["Description"]["Hostname"] == "host1"
    assert node["Status"]["State"] == "ready"
    assert node["Spec"]["Role"] == "manager" and node["Spec"]["Availability"] == "active"
    assert node["ManagerStatus"] == {"Leader": True, "Reachability": "reachable", "Addr": "10.0.0.1:2377"}
