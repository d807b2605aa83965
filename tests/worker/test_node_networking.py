"""NodeNetworking without a kernel: what it applies, when, and who it makes wait."""

from __future__ import annotations

import asyncio

from swarmpy.api import dispatcher_pb2
from swarmpy.worker.network.node_networking import NodeNetworking, node_resolvers


class RecordingPlane:
    def __init__(self, delay: float = 0.05, fail: int = 0) -> None:
        self.models = []
        self.published = []
        self.delay = delay
        self.fail = fail
        self.closed = self.torn_down = False

    async def apply(self, model):
        await asyncio.sleep(self.delay)
        if self.fail:
            self.fail -= 1
            raise OSError("netlink said no")
        self.models.append(model)

    def publish_names(self, model):
        self.published.append(model)

    async def teardown(self):
        self.torn_down = True

    async def close(self):
        self.closed = True


def view(*task_ids: str) -> dispatcher_pb2.NetworkView:
    v = dispatcher_pb2.NetworkView(underlay_addr="10.9.0.1", data_path_port=4789)
    net = v.networks.add(id="net0000001", name="front", vni=4097, subnet="10.0.1.0/24", gateway="10.0.1.1")
    for n, task_id in enumerate(task_ids, start=2):
        net.local.add(task_id=task_id, task_name=f"api.{n}.{task_id}", address=f"10.0.1.{n}/24")
    return v


async def test_nothing_is_applied_before_the_first_view_then_bursts_coalesce():
    containers = {"t1": "c" * 64}
    plane = RecordingPlane()

    async def running():
        return dict(containers)

    networking = NodeNetworking("node1", running, plane=plane, upstreams=())
    await networking.start()
    try:
        assert await networking.wait_applied(networking.request(), 1)
        assert plane.models == []  # no view yet: the kernel is left to be adopted
        networking.set_view(view("t1", "t2"))
        assert len(plane.published) == 1  # the names are answered from the view at once, before any pass
        last = [networking.request() for _ in range(20)][-1]
        assert await networking.wait_applied(last, 2)
        assert 1 <= len(plane.models) <= 2
        endpoints = plane.models[-1].networks[0].endpoints
        assert [ep.task_id for ep in endpoints] == ["t1"]  # t2 has no running container yet
        containers["t2"] = "d" * 64
        await networking.container_started("t2", "d" * 64)
        assert [ep.task_id for ep in plane.models[-1].networks[0].endpoints] == ["t1", "t2"]
    finally:
        await networking.close()
    assert plane.closed and not plane.torn_down


async def test_a_failed_pass_is_retried_and_waiters_are_bounded():
    plane = RecordingPlane(fail=2)

    async def running():
        return {"t1": "c" * 64}

    networking = NodeNetworking("node1", running, plane=plane, upstreams=())
    await networking.start()
    try:
        networking.set_view(view("t1"))
        for _ in range(50):
            if plane.models:
                break
            await asyncio.sleep(0.1)
        assert plane.models and networking.last_error == ""
    finally:
        await networking.close()


def test_node_resolvers_keep_ipv4_servers_but_not_the_embedded_one(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.11\nnameserver 10.1.1.1\nnameserver ::1\nsearch x\nnameserver 10.1.1.1\n")
    assert [str(a) for a in node_resolvers(str(conf))] == ["10.1.1.1"]
