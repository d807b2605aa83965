"""The VIP table kept up to date in place (nftrules.lb_delta through dataplane.sync_vip_table), on a real
kernel: one network namespace of this test's own stands for a task container.

Each pass reads the table back and writes only the difference, so the table object (its handle) stays
the same across backend changes, and whatever was done to it by hand is undone by the next pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from ipaddress import IPv4Address as IP

import pytest

from swarmpy.worker.network import netns as nsutil
from swarmpy.worker.network import nftlib
from swarmpy.worker.network.dataplane import sync_vip_table
from swarmpy.worker.network.nftrules import LB_TABLE, lb_delta, lb_ruleset, service_chain

VIP_A, VIP_B, VIP_C = IP("10.0.1.2"), IP("10.0.1.3"), IP("10.0.1.4")
T1, T2, T3, T4 = IP("10.0.1.10"), IP("10.0.1.11"), IP("10.0.1.12"), IP("10.0.1.13")
WANTED = [(VIP_A, (T1, T2)), (VIP_B, ()), (VIP_C, (T3,))]


@pytest.fixture
def container_ns():
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    name = f"nc-vip-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=15)
    try:
        yield nsutil.netns_path(name)
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True, timeout=15)


def nft(path: str, script: str) -> str:
    return nftlib.run(path, script)


def listing(path: str) -> str:
    return nft(path, f"list table ip {LB_TABLE}")


def handles(path: str) -> tuple[int, int]:
    """(the table's handle, the dispatch chain's): both change only when the table is replaced whole."""
    objects = json.loads(nftlib.run(path, f"list table ip {LB_TABLE}", json=True))["nftables"]
    table = next(o["table"]["handle"] for o in objects if "table" in o)
    chain = next(o["chain"]["handle"] for o in objects if "chain" in o and o["chain"]["name"] == "vip-dnat")
    return table, chain


def expected_text(path: str, wanted) -> str:
    """The listing a table written whole for `wanted` has (in a namespace of its own, for comparison)."""
    nft(path, lb_ruleset(wanted))
    return listing(path)


def test_first_pass_writes_the_table_and_a_second_pass_writes_nothing(container_ns):
    assert sync_vip_table(container_ns, WANTED) is True
    text = listing(container_ns)
    assert f"{VIP_A} : goto {service_chain(VIP_A)}" in text and f"{VIP_C} : goto {service_chain(VIP_C)}" in text
    assert "dnat to numgen random mod 2 map { 0 : 10.0.1.10, 1 : 10.0.1.11 }" in text
    assert f"dnat to {T3}" in text
    assert f"elements = {{ {VIP_B} }}" in text and "reject with icmp host-unreachable" in text
    # nft's JSON of what lb_delta wrote reads back as what it wants: nothing more to do.
    assert sync_vip_table(container_ns, WANTED) is False


def test_backend_changes_are_written_in_place_not_as_a_new_table(container_ns):
    sync_vip_table(container_ns, WANTED)
    before = handles(container_ns)
    steps = [
        [(VIP_A, (T1, T2, T4)), (VIP_B, ()), (VIP_C, (T3,))],  # a task joins A
        [(VIP_A, (T2,)), (VIP_B, (T1,)), (VIP_C, ())],  # A shrinks to one, B gets one, C loses its last
        [(VIP_A, (T2,)), (VIP_C, (T3, T4))],  # B's service is gone
        [],  # no VIP at all
        WANTED,
    ]
    for wanted in steps:
        assert sync_vip_table(container_ns, wanted) is True
        assert handles(container_ns) == before
        text = listing(container_ns)
        assert sync_vip_table(container_ns, wanted) is False
        assert text == listing(container_ns)
        for vip, backends in wanted:
            assert str(vip) in text
        gone = {VIP_A, VIP_B, VIP_C} - {vip for vip, _ in wanted}
        assert not any(str(vip) in text or service_chain(vip) in text for vip in gone)


def test_what_was_changed_by_hand_is_restored_by_the_next_pass(container_ns):
    sync_vip_table(container_ns, WANTED)
    want = listing(container_ns)
    table = f"ip {LB_TABLE}"
    by_hand = [
        f"delete element {table} vips {{ {VIP_A} }}",  # an element deleted
        f"delete element {table} empty {{ {VIP_B} }}",
        f"add element {table} empty {{ 10.0.1.99 }}",  # a foreign one added
        f"flush chain {table} {service_chain(VIP_A)}",  # a service's rule gone
        f"add rule {table} {service_chain(VIP_C)} counter",  # one rule too many
        f"delete element {table} vips {{ {VIP_C} }}\nflush chain {table} {service_chain(VIP_C)}\n"
        f"delete chain {table} {service_chain(VIP_C)}",  # a service chain gone with its element
        f"add chain {table} svc-stray",  # a chain of nobody's
        f"delete element {table} vips {{ {VIP_A} }}\nadd element {table} vips {{ {VIP_A} : goto {service_chain(VIP_C)} }}",
    ]
    before = handles(container_ns)
    for change in by_hand:
        nft(container_ns, change)
        assert listing(container_ns) != want, change
        assert sync_vip_table(container_ns, WANTED) is True, change
        assert listing(container_ns) == want, change
        assert handles(container_ns) == before, f"{change}: repaired in place"


def test_a_skeleton_that_is_not_ours_is_replaced_whole(container_ns):
    sync_vip_table(container_ns, WANTED)
    want = listing(container_ns)
    table = f"ip {LB_TABLE}"
    for change in [
        f"add rule {table} vip-dnat ip daddr 10.0.1.7 accept",  # a foreign rule in a base chain
        f"flush chain {table} vip-empty",  # a base chain's rule gone
        f"delete chain {table} vip-empty",
        f"add set {table} extra {{ type ipv4_addr; }}",
        f"delete table {table}",
        "add table ip other",  # another table beside ours is left alone
    ]:
        nft(container_ns, change)
        sync_vip_table(container_ns, WANTED)
        assert listing(container_ns) == want, change
        assert sync_vip_table(container_ns, WANTED) is False, change
    assert "table ip other" in nft(container_ns, "list tables")


def test_the_delta_of_a_kernel_with_no_table_is_the_whole_table():
    assert lb_delta(None, WANTED) == lb_ruleset(WANTED)
    assert lb_delta({"nftables": [{"metainfo": {}}]}, WANTED) == lb_ruleset(WANTED)
