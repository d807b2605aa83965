"""Hosts for overlay tests and benchmarks: tests/cluster's partition lab with each swarmpyd plumbing its
own tasks, its namespaces `nw`-prefixed.

Two changes to the partition lab: the daemons are started with `nsenter --net` instead of `ip netns exec`
(which gives each daemon a mount namespace of its own, hiding the namespaces it creates for its overlays
from everyone else and killing them with it), and the hub holds an address standing for "the outside"
that a task's egress reaches. Every host is a swarm node: m1 initialises (the one manager), h2.. join as
workers.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

from swarmpy.worker.network import netns as nsutil

from .test_partition import SUBNET, PartitionableCluster, PartitionLab

OUTSIDE = f"{SUBNET}.254"  # an address in the hub: "the world" a task's egress reaches


class OverlayLab(PartitionLab):
    def __init__(self) -> None:
        super().__init__()
        self.tag = f"nwovl-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.hub = f"{self.tag}-hub"

    def open(self) -> None:
        super().open()
        subprocess.run(["ip", "-n", self.hub, "addr", "add", f"{OUTSIDE}/24", "dev", "br0"], check=True)

    def launcher(self, host: str) -> tuple[str, ...]:
        return ("nsenter", f"--net={nsutil.netns_path(self.namespace(host))}")


class OverlayCluster(PartitionableCluster):
    def add(self, name: str):
        daemon = super().add(name)
        daemon.node_netns = self.lab.namespace(name)
        return daemon


@contextlib.contextmanager
def overlay_cluster(root: Path, docker, workers: int = 2) -> Iterator[OverlayCluster]:
    """m1 (manager) and h2..h{workers+1}, all ready; torn down and the lab closed afterwards, also on failure
    (when the cluster's status is printed first)."""
    with OverlayLab() as lab:
        cluster = OverlayCluster(root, docker, lab)
        with cluster.torn_down():
            first = cluster.init("m1")
            for n in range(2, workers + 2):
                cluster.join(f"h{n}", "worker", through=first)
            cluster.wait_ready()
            yield cluster
