"""A node renews its certificate before expiry while it runs: new connections see the new certificate."""

from __future__ import annotations

import asyncio
import socket

from cryptography import x509

from swarmpy.api import control_pb2
from swarmpy.ca.bootstrap import peer_certificate_chain
from swarmpy.ca.keystore import load_node_credentials
from swarmpy.daemon import swarmnode
from swarmpy.daemon.daemon import Daemon


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serial(cert_pem: bytes) -> int:
    return x509.load_pem_x509_certificate(cert_pem).serial_number


async def test_a_manager_renews_its_certificate_and_serves_the_new_one(tmp_path, monkeypatch):
    delays = iter([0.5])
    # The first renewal comes at once instead of weeks from now; later ones never within the test.
    monkeypatch.setattr(swarmnode, "renewal_delay", lambda cert_pem: next(delays, 3600.0))
    port = free_port()
    daemon = Daemon(str(tmp_path / "data"), str(tmp_path / "swarmpy.sock"), hostname="renewer")
    stop = asyncio.Event()
    runner = asyncio.create_task(daemon.run(stop))
    try:
        for _ in range(100):
            if (tmp_path / "swarmpy.sock").exists():
                break
            await asyncio.sleep(0.05)
        await daemon.init(control_pb2.InitRequest(listen_addr=f"127.0.0.1:{port}", advertise_addr="127.0.0.1"))
        first = await load_node_credentials(tmp_path / "data")
        renewed = first
        for _ in range(100):
            await asyncio.sleep(0.1)
            renewed = await load_node_credentials(tmp_path / "data")
            if serial(renewed.cert_pem) != serial(first.cert_pem):
                break
        assert serial(renewed.cert_pem) != serial(first.cert_pem), "the certificate was not renewed"
        assert renewed.key_pem != first.key_pem  # a new key, not just a new signature
        # The file is written before the server swaps its certificate (a crash between them keeps the old,
        # still valid one), so the served certificate may lag the file by a moment.
        served = 0
        for _ in range(50):
            served = (await peer_certificate_chain(f"127.0.0.1:{port}"))[0].serial_number
            if served == serial(renewed.cert_pem):
                break
            await asyncio.sleep(0.1)
        assert served == serial(renewed.cert_pem)  # new handshakes present the new one
        assert daemon.info().control_available
    finally:
        stop.set()
        await asyncio.wait_for(runner, 30)
