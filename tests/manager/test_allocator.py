"""Allocator: ingress port bookkeeping and the NEW -> PENDING step."""

import pytest

from swarmpy.api import objects_pb2
from swarmpy.manager.allocator import Allocator, PortAllocator, PortConflict
from swarmpy.manager.orchestrator.common import new_task
from swarmpy.manager.store import MemoryStore
from tests.manager.test_orchestrator_support import eventually, make_service, running

INGRESS = objects_pb2.PortConfig.PublishMode.INGRESS
HOST = objects_pb2.PortConfig.PublishMode.HOST


def publish(service, target, published=0, mode=INGRESS):
    service.spec.endpoint.ports.add(target_port=target, published_port=published, publish_mode=mode)
    return service


def test_dynamic_ingress_ports_come_from_the_range_and_are_not_reused():
    ports = PortAllocator()
    a = publish(publish(make_service("a"), 80), 443)
    b = publish(make_service("b"), 80)
    got_a = [p.published_port for p in ports.allocate(a)]
    got_b = [p.published_port for p in ports.allocate(b)]
    assert got_a == [30000, 30001] and got_b == [30002]


def test_an_update_keeps_the_ports_already_assigned():
    ports = PortAllocator()
    service = publish(make_service("a"), 80)
    first = ports.allocate(service)
    service.endpoint.ports.extend(first)
    publish(service, 8080)
    again = ports.allocate(service)
    assert again[0].published_port == first[0].published_port and again[1].published_port != first[0].published_port


def test_a_published_port_belongs_to_one_service_and_host_ports_are_left_alone():
    ports = PortAllocator()
    ports.allocate(publish(make_service("a", service_id="svc-a"), 80, 8080))
    with pytest.raises(PortConflict, match="service b: published port 8080/tcp is already in use by service svc-a"):
        ports.allocate(publish(make_service("b"), 80, 8080))
    host = ports.allocate(publish(make_service("c"), 80, 8080, mode=HOST))
    assert host[0].published_port == 8080 and host[0].publish_mode == HOST
    ports.release("svc-a")
    ports.allocate(publish(make_service("b"), 80, 8080))


async def test_allocator_sets_the_endpoint_then_moves_tasks_to_pending():
    store = MemoryStore()
    service = publish(make_service("web", replicas=1), 80)
    task = new_task(None, service, 1)
    await store.update(lambda tx: (tx.create("service", service), tx.create("task", task)))
    async with running(Allocator(store)):
        await eventually(lambda: store.view().get_task(task.id).status.state == objects_pb2.PENDING, what="pending")
    stored_service = store.view().get_service(service.id)
    stored_task = store.view().get_task(task.id)
    assert stored_service.endpoint.ports[0].published_port == 30000
    assert stored_task.endpoint == stored_service.endpoint
    assert stored_task.status.message == "pending task scheduling"
