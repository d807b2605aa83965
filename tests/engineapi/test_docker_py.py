"""docker-py 7.x drives swarmpy through its Engine API socket, unchanged."""

from __future__ import annotations

import docker
import pytest
from docker import errors as docker_errors
from docker.types import ServiceMode

from tests.integration.conftest import wait_until

pytestmark = pytest.mark.docker


def test_docker_py_swarm_services_nodes_secrets_configs(bare, image):
    client = docker.DockerClient(base_url=bare.docker_host)
    try:
        with pytest.raises(docker_errors.APIError) as refused:
            client.swarm.reload()
        assert refused.value.status_code == 503
        node_id = client.swarm.init(advertise_addr="127.0.0.1", listen_addr=f"127.0.0.1:{bare.listen_port}")
        bare.node_id = node_id
        client.swarm.reload()
        assert client.swarm.attrs["JoinTokens"]["Worker"].startswith("SWMTKN-1-")
        assert client.info()["Swarm"]["NodeID"] == node_id

        [node] = client.nodes.list()
        assert node.id == node_id and node.attrs["Spec"]["Role"] == "manager"
        assert node.update({"Availability": "active", "Role": "manager", "Labels": {"disk": "ssd"}})
        assert client.nodes.get(node_id).attrs["Spec"]["Labels"] == {"disk": "ssd"}

        service = client.services.create(image, ["sh", "-c", "echo hello-from-docker-py; sleep 3600"], name="eapi-py", mode=ServiceMode("replicated", replicas=1),
                                         labels={"made-by": "docker-py"})
        assert [s.id for s in client.services.list(filters={"label": "made-by=docker-py"})] == [service.id]
        assert client.services.get("eapi-py").name == "eapi-py"
        wait_until(lambda: [t for t in service.tasks() if t["Status"]["State"] == "running"], what="a running task")
        service.scale(2)
        wait_until(lambda: len(service.tasks(filters={"desired-state": "running"})) == 2, what="two tasks")
        service.reload()
        before = service.attrs["Spec"]["TaskTemplate"].get("ForceUpdate", 0)
        service.force_update()
        service.reload()
        assert service.attrs["Spec"]["TaskTemplate"]["ForceUpdate"] == before + 1
        service.update(env=["MODE=updated"])
        service.reload()
        assert service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"] == ["MODE=updated"]
        wait_until(lambda: b"hello-from-docker-py" in b"".join(service.logs(stdout=True, stderr=True)),
                   what="the service's output in service.logs()")
        assert service.remove()
        with pytest.raises(docker_errors.NotFound):
            client.services.get("eapi-py")

        secret = client.secrets.create(name="eapi-secret", data=b"s3cret", labels={"k": "v"})
        assert [s.name for s in client.secrets.list(filters={"name": "eapi-"})] == ["eapi-secret"]
        assert "Data" not in client.secrets.get(secret.id).attrs["Spec"]
        config = client.configs.create(name="eapi-config", data=b"key=value")
        assert client.configs.get(config.id).attrs["Spec"]["Data"] == "a2V5PXZhbHVl"
        secret.remove()
        config.remove()
        assert client.secrets.list() == [] and client.configs.list() == []

        assert client.swarm.leave(force=True)
        assert client.info()["Swarm"]["LocalNodeState"] == "inactive"
    finally:
        client.close()
