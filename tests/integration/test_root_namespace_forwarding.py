"""A daemon in the host's own namespace, beside the Docker engine, whose filter FORWARD chain drops what
it does not know (policy DROP, DOCKER-USER first): a client on another link reaches a published port
through the routing mesh, and a task reaches that client through its egress bridge. Both are forwarded
by the host, so both need the data plane's firewall exceptions (worker/network/forward_accept.py); after
`service rm` the exceptions are gone."""

from __future__ import annotations

import os
import subprocess

import pytest

from .conftest import free_port, wait_until

pytestmark = pytest.mark.docker

CLIENT_NS = f"lfc{os.getpid() % 10000}"
HOST_END, HOST_ADDRESS, CLIENT_ADDRESS = f"lfc{os.getpid() % 10000}h", "172.30.90.1", "172.30.90.2"
WEB = "mkdir -p /www && echo meshed > /www/index.html && exec httpd -f -p 80 -h /www"


def sh(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=20, check=check)


@pytest.fixture
def client_link():
    """A client namespace on its own link to the host: what it reaches on the host beyond the host's own
    addresses, the host forwards."""
    sh("iptables", "-S", "DOCKER-USER")  # the engine's chain is there: this host drops forwarded traffic
    try:
        sh("ip", "netns", "add", CLIENT_NS)
        sh("ip", "link", "add", HOST_END, "type", "veth", "peer", "name", "eth0", "netns", CLIENT_NS)
        sh("ip", "addr", "add", f"{HOST_ADDRESS}/24", "dev", HOST_END)
        sh("ip", "link", "set", HOST_END, "up")
        sh("ip", "-n", CLIENT_NS, "addr", "add", f"{CLIENT_ADDRESS}/24", "dev", "eth0")
        sh("ip", "-n", CLIENT_NS, "link", "set", "eth0", "up")
        sh("ip", "-n", CLIENT_NS, "link", "set", "lo", "up")
        sh("ip", "-n", CLIENT_NS, "route", "add", "default", "via", HOST_ADDRESS)
        yield
    finally:
        sh("ip", "link", "del", HOST_END, check=False)
        sh("ip", "netns", "del", CLIENT_NS, check=False)


def swarmpy_rules() -> list[str]:
    return [line for line in sh("iptables", "-S", "DOCKER-USER").stdout.splitlines() if "swarmpy" in line]


def test_mesh_hit_from_another_link_and_task_egress_are_forwarded(shared_daemon, image, client_link):
    daemon, port = shared_daemon, free_port()
    before = swarmpy_rules()
    daemon.ok("service", "create", "--name", "fwdweb", "-p", f"{port}:80", "--stop-grace-period", "1s",
              image, "sh", "-c", WEB, timeout=120)
    container = daemon.wait_running("fwdweb", 1)[0]

    def fetched() -> str:
        result = sh("ip", "netns", "exec", CLIENT_NS, "timeout", "3", "/bin/busybox", "wget", "-q", "-O-",
                    f"http://{HOST_ADDRESS}:{port}/", check=False)
        return result.stdout.strip()

    def firewall() -> str:
        return "\n".join([sh("iptables", "-S", "DOCKER-USER").stdout, sh("iptables", "-S", "FORWARD").stdout,
                          sh("nft", "list", "ruleset").stdout[-3000:], sh("ip", "route").stdout])

    wait_until(lambda: fetched() == "meshed", timeout=15, what="the published port answered from another link",
               details=firewall)
    ping = container.exec_run(["ping", "-c", "1", "-W", "2", CLIENT_ADDRESS])
    assert ping.exit_code == 0, f"task egress to {CLIENT_ADDRESS} was not forwarded: {ping.output.decode()}"
    assert len(swarmpy_rules()) > len(before)

    daemon.ok("service", "rm", "fwdweb")
    wait_until(lambda: swarmpy_rules() == before, timeout=15, what="the forwarding exceptions removed")
    assert fetched() == ""
