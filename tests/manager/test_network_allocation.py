"""The allocator's network side through its loop and a real store: subnets, VNIs, VIPs, task addresses,
exhaustion, and a new leader's restore (no address handed out twice, none leaked)."""

from ipaddress import ip_interface

from swarmpy.api import objects_pb2
from swarmpy.identity import new_id
from swarmpy.manager.allocator import Allocator
from swarmpy.manager.allocator.networks import VXLANID_OPTION, network_allocated
from swarmpy.manager.orchestrator.common import new_task
from swarmpy.manager.scheduler.scheduler import waits_for_node
from swarmpy.manager.store import MemoryStore
from tests.manager.test_orchestrator_support import eventually, make_service, running, set_task_state


def make_network(name: str, subnet: str = "", gateway: str = "", ip_range: str = "") -> objects_pb2.Network:
    network = objects_pb2.Network(id=new_id())
    network.spec.annotations.name = name
    network.spec.driver_config.name = "overlay"
    if subnet:
        network.spec.ipam.configs.add(subnet=subnet, gateway=gateway, range=ip_range)
    return network


def on_networks(service: objects_pb2.Service, *networks: objects_pb2.Network, aliases=()) -> objects_pb2.Service:
    for network in networks:
        service.spec.task.networks.add(target=network.id, aliases=list(aliases))
    return service


async def create(store, kind, *objects):
    await store.update(lambda tx: [tx.create(kind, obj) for obj in objects])


async def allocated_network(store, network_id):
    await eventually(lambda: network_allocated(store.view().get_network(network_id)), what="network allocated")
    return store.view().get_network(network_id)


def live_addresses(store):
    return [
        address
        for task in store.view().tasks()
        if task.status.state <= objects_pb2.RUNNING
        for attachment in task.networks
        for address in attachment.addresses
    ]


async def test_networks_get_subnets_gateways_and_vnis_that_never_overlap():
    store = MemoryStore()
    user = make_network("user", subnet="10.0.1.0/24")
    first, second = make_network("first"), make_network("second")
    async with running(Allocator(store)):
        await create(store, "network", user)
        await allocated_network(store, user.id)
        await create(store, "network", first, second)
        nets = [await allocated_network(store, n.id) for n in (user, first, second)]
    subnets = [n.ipam.configs[0].subnet for n in nets]
    assert subnets[0] == "10.0.1.0/24" and sorted(subnets[1:]) == ["10.0.0.0/24", "10.0.2.0/24"]
    assert [n.ipam.configs[0].gateway for n in nets] == [s.replace(".0/24", ".1") for s in subnets]
    vnis = sorted(int(n.driver_state.options[VXLANID_OPTION]) for n in nets)
    assert vnis == [4096, 4097, 4098]


async def test_a_service_gets_a_vip_per_network_and_each_task_an_address():
    store = MemoryStore()
    front, back = make_network("front"), make_network("back")
    service = on_networks(make_service("api", replicas=3), front, back, aliases=["web"])
    tasks = [new_task(None, service, slot) for slot in (1, 2, 3)]
    async with running(Allocator(store)):
        await create(store, "network", front, back)
        await create(store, "service", service)
        await create(store, "task", *tasks)
        await eventually(lambda: all(store.view().get_task(t.id).status.state == objects_pb2.PENDING for t in tasks), what="pending")
    stored = store.view().get_service(service.id)
    assert [vip.network_id for vip in stored.endpoint.virtual_ips] == [front.id, back.id]
    for task in (store.view().get_task(t.id) for t in tasks):
        assert [a.network.id for a in task.networks] == [front.id, back.id]
        assert all(len(a.addresses) == 1 and list(a.aliases) == ["web"] for a in task.networks)
        assert task.endpoint.virtual_ips == stored.endpoint.virtual_ips
        assert waits_for_node(task)
    every = [vip.addr for vip in stored.endpoint.virtual_ips] + live_addresses(store)
    assert len(every) == len(set(every)) == 8
    front_subnet = store.view().get_network(front.id).ipam.configs[0].subnet
    assert all(ip_interface(a).network == ip_interface(front_subnet).network
               for t in tasks for a in store.view().get_task(t.id).networks[0].addresses)


async def test_dnsrr_services_get_no_vip():
    store = MemoryStore()
    net = make_network("net")
    service = on_networks(make_service("rr"), net)
    service.spec.endpoint.mode = objects_pb2.EndpointSpec.DNSRR
    task = new_task(None, service, 1)
    async with running(Allocator(store)):
        await create(store, "network", net)
        await create(store, "service", service)
        await create(store, "task", task)
        await eventually(lambda: store.view().get_task(task.id).status.state == objects_pb2.PENDING, what="pending")
    assert not store.view().get_service(service.id).endpoint.virtual_ips
    assert len(store.view().get_task(task.id).networks[0].addresses) == 1


async def test_an_exhausted_network_leaves_the_task_pending_naming_it_until_an_address_frees():
    store = MemoryStore()
    tiny = make_network("tiny", subnet="10.9.0.0/29")  # .1 gateway; .2-.6: one VIP + four tasks
    service = on_networks(make_service("big", replicas=5), tiny)
    tasks = [new_task(None, service, slot) for slot in range(1, 6)]
    async with running(Allocator(store)):
        await create(store, "network", tiny)
        await create(store, "service", service)
        await create(store, "task", *tasks)
        await eventually(lambda: all(store.view().get_task(t.id).status.state == objects_pb2.PENDING for t in tasks), what="pending")
        stored = [store.view().get_task(t.id) for t in tasks]
        starved = [t for t in stored if not t.networks]
        assert len(starved) == 1
        assert starved[0].status.err == (
            f"failed to allocate network IP for task {starved[0].id} network tiny: could not find an available IP"
        )
        assert "tiny" in starved[0].status.message and not waits_for_node(starved[0])
        # One task terminates: its address is freed and the starved task gets one.
        done = next(t for t in stored if t.networks)
        await set_task_state(store, done.id, objects_pb2.FAILED)
        await eventually(lambda: store.view().get_task(starved[0].id).networks, what="the starved task allocated")
        revived = store.view().get_task(starved[0].id)
        assert revived.status.err == "" and revived.status.message == "pending task scheduling" and waits_for_node(revived)
    assert len(set(live_addresses(store))) == len(live_addresses(store)) == 4


async def test_a_new_leader_restores_what_is_held_and_hands_out_nothing_twice():
    store = MemoryStore()
    net = make_network("net")
    service = on_networks(make_service("api", replicas=3), net)
    first = [new_task(None, service, slot) for slot in (1, 2, 3)]
    async with running(Allocator(store)):
        await create(store, "network", net)
        await create(store, "service", service)
        await create(store, "task", *first)
        await eventually(lambda: all(store.view().get_task(t.id).networks for t in first), what="allocated")
    vip = store.view().get_service(service.id).endpoint.virtual_ips[0].addr
    # A different manager's allocator (fresh memory) takes over and allocates more tasks.
    more = [new_task(None, service, slot) for slot in (4, 5, 6)]
    async with running(Allocator(store)):
        await create(store, "task", *more)
        await eventually(lambda: all(store.view().get_task(t.id).networks for t in more), what="allocated")
        assert store.view().get_service(service.id).endpoint.virtual_ips[0].addr == vip
        addresses = [vip, *live_addresses(store)]
        assert len(addresses) == len(set(addresses)) == 7
        stored = store.view().get_network(net.id)
        assert stored.driver_state.options[VXLANID_OPTION] == "4096"
        # The network's subnet is taken: the next network gets another.
        other = make_network("other")
        await create(store, "network", other)
        other_net = await allocated_network(store, other.id)
        assert other_net.ipam.configs[0].subnet != stored.ipam.configs[0].subnet
        assert other_net.driver_state.options[VXLANID_OPTION] == "4097"


async def test_removing_a_network_frees_its_subnet_and_vni():
    store = MemoryStore()
    allocator = Allocator(store)
    gone = make_network("gone")
    async with running(allocator):
        await create(store, "network", gone)
        await allocated_network(store, gone.id)
        await store.update(lambda tx: tx.delete("network", gone.id))
        await eventually(lambda: not allocator.networks.is_allocated(gone.id), what="released")
        assert not allocator.networks.vnis.in_use(4096)
        assert allocator.networks.pool.overlapping(ip_interface("10.0.0.0/24").network) is None
