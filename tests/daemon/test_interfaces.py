"""Interface names in --advertise-addr/--listen-addr resolve to the interface's address, as docker's do."""

import pytest

from swarmpy.daemon import interfaces
from swarmpy.daemon.interfaces import InterfaceError, resolve_addr


def test_loopback_by_name_with_and_without_port():
    assert resolve_addr("lo") == "127.0.0.1"
    assert resolve_addr("lo:2377") == "127.0.0.1:2377"


def test_addresses_and_unknown_names_pass_through():
    for addr in ("10.1.2.3:2377", "10.1.2.3", "[::1]:2377", ":2377", "", "no-such-interface0:2377"):
        assert resolve_addr(addr) == addr


def test_ambiguous_or_addressless_interfaces_are_refused(monkeypatch):
    monkeypatch.setattr(interfaces, "_interface_addresses", lambda name: (["10.0.0.1", "10.0.0.2"], []))
    with pytest.raises(InterfaceError, match=r"^interface eth9 has more than one IPv4 address \(10.0.0.1 and 10.0.0.2\)$"):
        resolve_addr("eth9:2377")
    monkeypatch.setattr(interfaces, "_interface_addresses", lambda name: ([], []))
    with pytest.raises(InterfaceError, match="^interface eth9 has no usable IPv4 or IPv6 address$"):
        resolve_addr("eth9")
