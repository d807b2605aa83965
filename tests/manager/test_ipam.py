"""The allocator's address and VNI arithmetic, alone (swarmpy/manager/allocator/ipam.py)."""

from ipaddress import IPv4Address, IPv4Network

import pytest

from swarmpy.manager.allocator.ipam import (
    VNI_FIRST,
    AddressSpace,
    Exhausted,
    IPAMError,
    Overlap,
    SubnetPool,
    VNIAllocator,
    mac_for,
    parse_subnet,
)


def test_the_default_pool_is_docker_s_10_0_0_0_8_in_24s():
    pool = SubnetPool()
    assert [str(pool.allocate()) for _ in range(3)] == ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"]


def test_pool_subnets_never_overlap_user_subnets_even_large_ones():
    pool = SubnetPool(["10.0.0.0/8"], 24)
    pool.reserve(IPv4Network("10.0.1.0/24"))
    pool.reserve(IPv4Network("10.0.4.0/22"))  # covers 10.0.4-7
    got = [pool.allocate() for _ in range(5)]
    assert [str(s) for s in got] == ["10.0.0.0/24", "10.0.2.0/24", "10.0.3.0/24", "10.0.8.0/24", "10.0.9.0/24"]
    taken = [IPv4Network("10.0.1.0/24"), IPv4Network("10.0.4.0/22"), *got]
    assert not any(a.overlaps(b) for i, a in enumerate(taken) for b in taken[i + 1:])


def test_a_user_subnet_overlapping_one_in_use_is_refused_and_changes_nothing():
    pool = SubnetPool()
    first = pool.allocate()
    with pytest.raises(Overlap, match="subnet 10.0.0.0/16 overlaps with 10.0.0.0/24"):
        pool.reserve(IPv4Network("10.0.0.0/16"))
    assert pool.overlapping(IPv4Network("10.0.0.128/25")) == first
    assert str(pool.allocate()) == "10.0.1.0/24"


def test_custom_pools_and_mask_length_and_exhaustion():
    pool = SubnetPool(["192.168.0.0/23", "172.30.0.0/24"], 24)
    got = [str(pool.allocate()) for _ in range(3)]
    assert got == ["192.168.0.0/24", "192.168.1.0/24", "172.30.0.0/24"]
    with pytest.raises(Exhausted, match="no free /24 subnet left"):
        pool.allocate()
    pool.release(IPv4Network("192.168.1.0/24"))
    assert str(pool.allocate()) == "192.168.1.0/24"


def test_a_pool_smaller_than_the_subnet_size_is_refused():
    with pytest.raises(IPAMError, match="smaller than the subnet size /24"):
        SubnetPool(["10.0.0.0/26"], 24)


def test_a_released_subnet_is_not_reused_at_once():
    pool = SubnetPool(["10.1.0.0/16"], 24)
    a, b = pool.allocate(), pool.allocate()
    pool.release(a)
    assert pool.allocate() not in (a, b)


def test_vnis_start_at_4096_and_are_serial():
    vnis = VNIAllocator()
    vnis.reserve(4097)
    assert [vnis.allocate(), vnis.allocate()] == [VNI_FIRST, 4098]
    vnis.release(VNI_FIRST)
    assert vnis.allocate() == 4099  # a freed ID is not handed out straight away
    with pytest.raises(IPAMError):
        vnis.reserve(100)


def test_an_address_space_reserves_network_broadcast_and_gateway():
    space = AddressSpace(IPv4Network("10.0.9.0/29"))  # .1 gateway, .2-.6 usable
    assert space.gateway == IPv4Address("10.0.9.1")
    got = [str(space.allocate()) for _ in range(5)]
    assert got == ["10.0.9.2", "10.0.9.3", "10.0.9.4", "10.0.9.5", "10.0.9.6"]
    with pytest.raises(Exhausted, match="could not find an available IP"):
        space.allocate()
    space.release(IPv4Address("10.0.9.4"))
    assert str(space.allocate()) == "10.0.9.4"
    assert space.cidr(IPv4Address("10.0.9.4")) == "10.0.9.4/29"


def test_serial_addresses_skip_a_just_freed_one_and_restore_reserves():
    space = AddressSpace(IPv4Network("10.0.0.0/24"))
    a = space.allocate()
    space.allocate()
    space.release(a)
    assert space.allocate() != a
    rebuilt = AddressSpace(IPv4Network("10.0.0.0/24"))
    for held in ("10.0.0.2", "10.0.0.3"):
        rebuilt.reserve(IPv4Address(held))
    assert str(rebuilt.allocate()) == "10.0.0.4"


def test_gateway_and_range_are_checked():
    space = AddressSpace(IPv4Network("10.5.0.0/24"), IPv4Address("10.5.0.254"), IPv4Network("10.5.0.128/30"))
    assert [str(space.allocate()) for _ in range(4)] == ["10.5.0.128", "10.5.0.129", "10.5.0.130", "10.5.0.131"]
    with pytest.raises(IPAMError, match="gateway 10.6.0.1 is not a usable address of subnet 10.5.0.0/24"):
        AddressSpace(IPv4Network("10.5.0.0/24"), IPv4Address("10.6.0.1"))
    with pytest.raises(IPAMError, match="ip range 10.6.0.0/25 is not inside subnet 10.5.0.0/24"):
        AddressSpace(IPv4Network("10.5.0.0/24"), None, IPv4Network("10.6.0.0/25"))
    with pytest.raises(IPAMError, match="too small"):
        AddressSpace(IPv4Network("10.5.0.0/31"))


def test_parse_subnet_and_mac():
    assert parse_subnet("10.1.0.0/16") == IPv4Network("10.1.0.0/16")
    for bad, why in (("10.1.0.0/33", "invalid CIDR"), ("banana", "invalid CIDR"), ("10.1.0.1/16", "host bits"), ("10.0.0.1", "invalid CIDR")):
        with pytest.raises(ValueError, match=why):
            parse_subnet(bad)
    assert mac_for("10.0.1.5") == "02:42:0a:00:01:05"
