"""Raft over gRPC mutual TLS: 3 managers, fsynced DiskStorage, commits/s and commit latency.

By default each manager is its own process (the parent makes a root CA and three manager certificates,
starts the three, and prints what the leader measured); `--in-process` runs the three in one asyncio
loop instead, which shows what sharing one core's worth of Python costs. Each manager serves
swarmpy.api.Raft (RaftServicer behind AuthorizationInterceptor) on 127.0.0.1 and sends through
GrpcTransport, exactly as managers do. The leader measures, with 100-byte proposals:
- sequential: one proposal at a time (latency = one replication round trip + fsyncs);
- pipelined: a window of proposals in flight (throughput with batching).

Run: python bench/raft_grpc_bench.py [--sequential N] [--pipelined N] [--window W] [--in-process]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import grpc  # noqa: E402

from swarmpy.api import objects_pb2, raft_pb2_grpc  # noqa: E402
from swarmpy.ca import tls  # noqa: E402
from swarmpy.ca.authz import AuthorizationInterceptor  # noqa: E402
from swarmpy.ca.certs import create_root_ca, make_node_key_and_csr, sign_node_csr  # noqa: E402
from swarmpy.manager.raftnet import GrpcTransport, RaftServicer  # noqa: E402
from swarmpy.raft.driver import DriverConfig, RaftDriver  # noqa: E402
from swarmpy.raft.wal import DiskStorage  # noqa: E402

from bench.raft_measure import CountingStateMachine, measure_proposals  # noqa: E402

CLUSTER_ID = "raftgrpcbench"
NODE_IDS = (1, 2, 3)


def make_certificates(folder: str) -> None:
    root_key, root_cert = create_root_ca()
    with open(os.path.join(folder, "root.crt"), "wb") as f:
        f.write(root_cert)
    for raft_id in NODE_IDS:
        key, csr = make_node_key_and_csr()
        cert = sign_node_csr(root_key, root_cert, csr, f"manager{raft_id}", objects_pb2.MANAGER, CLUSTER_ID)
        for suffix, data in (("key", key), ("crt", cert)):
            with open(os.path.join(folder, f"manager{raft_id}.{suffix}"), "wb") as f:
                f.write(data)


def read(folder: str, name: str) -> bytes:
    with open(os.path.join(folder, name), "rb") as f:
        return f.read()


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


async def measure(driver: RaftDriver, sequential: int, pipelined: int, window: int) -> dict:
    result = await measure_proposals(driver, sequential, pipelined, window)
    result["transport"] = dataclasses.asdict(driver.transport.stats)
    return result


async def run_manager(raft_id: int, folder: str, ports: list[int], tick: float) -> tuple[RaftDriver, Callable[[], Awaitable[None]]]:
    """Start one manager (server, transport, driver); returns its driver and how to stop it."""
    root = read(folder, "root.crt")
    key, cert = read(folder, f"manager{raft_id}.key"), read(folder, f"manager{raft_id}.crt")
    addresses = {i: f"127.0.0.1:{port}" for i, port in zip(NODE_IDS, ports)}
    credentials = tls.channel_credentials(key, cert, root)
    transport = GrpcTransport(
        addresses.get,
        lambda addr: grpc.aio.secure_channel(addr, credentials, options=tls.channel_options()),
    )
    driver_box: list[RaftDriver] = []
    server = grpc.aio.server(interceptors=[AuthorizationInterceptor(CLUSTER_ID, lambda: root)], options=tls.server_options())
    members = [objects_pb2.RaftMember(raft_id=i, node_id=f"manager{i}", addr=a) for i, a in addresses.items()]
    raft_pb2_grpc.add_RaftServicer_to_server(RaftServicer(lambda: driver_box[0] if driver_box else None, lambda: members), server)
    server.add_secure_port(addresses[raft_id], tls.server_credentials(key, cert, root))
    await server.start()
    storage = await asyncio.to_thread(DiskStorage, os.path.join(folder, f"data{raft_id}"))
    driver = RaftDriver(
        raft_id, NODE_IDS, storage, transport, CountingStateMachine(), DriverConfig(tick_interval=tick),
        rng=random.Random(raft_id * 7919 + int(time.time())),
    )
    driver_box.append(driver)
    await driver.start()

    async def stop() -> None:
        await server.stop(grace=0.5)
        await driver.stop()

    return driver, stop


async def one_process(raft_id: int, folder: str, ports: list[int], args: argparse.Namespace) -> None:
    """A child: run one manager; if it leads, measure and write the result; stop when the leader says so."""
    done_path = os.path.join(folder, "done")
    driver, stop = await run_manager(raft_id, folder, ports, args.tick)
    leader = await driver.wait_for_leader()
    if leader == raft_id:
        result = await measure(driver, args.sequential, args.pipelined, args.window)
        with open(os.path.join(folder, "result.json"), "w") as f:
            json.dump(result, f)
        with open(done_path, "w"):
            pass
    else:
        while not os.path.exists(done_path):
            await asyncio.sleep(0.1)
    await asyncio.sleep(0.2)
    await stop()


async def in_process(folder: str, ports: list[int], args: argparse.Namespace) -> dict:
    managers = [await run_manager(raft_id, folder, ports, args.tick) for raft_id in NODE_IDS]
    drivers = [driver for driver, _ in managers]
    leader_id = await drivers[0].wait_for_leader()
    leader = next(d for d in drivers if d.node_id == leader_id)
    while not leader.is_leader:
        await asyncio.sleep(args.tick)
    try:
        return await measure(leader, args.sequential, args.pipelined, args.window)
    finally:
        for _, stop in managers:
            await stop()


def report(result: dict, mode: str) -> str:
    seq, pipe = result["sequential"], result["pipelined"]
    return "\n".join(
        [
            f"Raft over gRPC mTLS, 3 managers ({mode}), fsync on, 100 B proposals; {os.cpu_count()} cores, "
            f"python {sys.version.split()[0]}, grpcio {grpc.__version__}",
            f"sequential ({seq['count']:,} proposals, one at a time): {seq['per_second']:,.0f} commits/s, "
            f"p50 {seq['p50_ms']:.2f} ms, p99 {seq['p99_ms']:.2f} ms",
            f"pipelined ({pipe['count']:,} proposals, {pipe['window']:,} in flight): {pipe['per_second']:,.0f} commits/s, "
            f"p50 {pipe['p50_ms']:.2f} ms, p99 {pipe['p99_ms']:.2f} ms",
            f"leader's transport: {result['transport']}",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=int, default=1_000)
    parser.add_argument("--pipelined", type=int, default=10_000)
    parser.add_argument("--window", type=int, default=1_000)
    parser.add_argument("--tick", type=float, default=0.05, help="tick interval in seconds")
    parser.add_argument("--in-process", action="store_true", help="run the 3 managers in this process")
    parser.add_argument("--node", type=int, help=argparse.SUPPRESS)  # a child: which manager to run
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--ports", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.node:
        asyncio.run(one_process(args.node, args.folder, [int(p) for p in args.ports.split(",")], args))
        return
    with tempfile.TemporaryDirectory() as folder:
        make_certificates(folder)
        ports = free_ports(len(NODE_IDS))
        if args.in_process:
            print(report(asyncio.run(in_process(folder, ports, args)), "one process"))
            return
        common = ["--sequential", str(args.sequential), "--pipelined", str(args.pipelined), "--window",
                  str(args.window), "--tick", str(args.tick), "--folder", folder, "--ports", ",".join(map(str, ports))]
        children = [
            subprocess.Popen([sys.executable, os.path.abspath(__file__), "--node", str(raft_id), *common])
            for raft_id in NODE_IDS
        ]
        for child in children:
            child.wait(timeout=600)
        failed = [c.args for c in children if c.returncode != 0]
        if failed:
            sys.exit(f"a manager process failed: {failed}")
        with open(os.path.join(folder, "result.json")) as f:
            print(report(json.load(f), "3 processes"))


if __name__ == "__main__":
    main()
