"""Chaos: 3 managers, 3 clients creating services, the leader SIGKILLed and restarted; nothing lost, nothing twice.

Theory of operation
-------------------
A fresh swarm of real `swarmpyd` managers (bench/cluster_harness.py, the daemons' default Raft timing)
gets a steady load: each client creates services with names unique to the attempt (`PREFIX-cN-K`, zero
replicas: a Raft write with nothing to schedule), one after another, through its own manager's local
socket, as a user's CLI would. Meanwhile the leader is SIGKILLed, left down `down_for` seconds, started
again on its data dir, and once all managers are REACHABLE again with one leader, the next leader is
killed; `kills` times. The load runs on `settle` seconds after the last restart.

Every attempt ends one way:
- acknowledged: CreateService answered with the service;
- refused: an answer saying nothing was applied (no leader elected within the bound, the proposal
  refused before it was made);
- ambiguous: the call broke after the write may have been proposed ("it may or may not have been
  applied", the killed manager's socket closing under the call);
- duplicate: ALREADY_EXISTS for a name no other attempt used -- the write was applied twice;
- error: anything else (a bug).
A client whose own manager is down (its socket refuses the connection: nothing was sent) sends the same
attempt to the next manager, as a user with several managers in their SWARMPY_HOST list would.

Afterwards: every manager, over its own socket, must list every acknowledged service with the ID it was
acknowledged with, no service under the prefix that was never attempted, no name twice; then every
daemon is stopped and each one's *own* committed state (its Raft snapshot and log up to its commit
index, read from its data dir with its Raft key) is checked the same way, since a follower's answers
over the socket are its leader's. Refused attempts must be absent. "became leader" lines in the logs
count the elections: one per kill is the floor, any more are spurious.

    python -m bench.chaos_bench --runs 3 --kills 2
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import re
import signal
import statistics
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from bench.cluster_harness import ManagerCluster, ManagerProcess, start_managers
from bench.failover_bench import leader_hostname, leadership_times, tiny_spec
from swarmpy.api import control_pb2, control_pb2_grpc, objects_pb2
from swarmpy.ca.keystore import load_node_credentials
from swarmpy.daemon.state import DataDir
from swarmpy.manager.store import MemoryStore
from swarmpy.raft.encryption import RecordCipher
from swarmpy.raft.messages import EntryType
from swarmpy.raft.wal import DiskStorage

CALL_TIMEOUT = 30.0  # far above the router's bound (two election timeouts) plus a commit
STEADY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
ACKNOWLEDGED, REFUSED, AMBIGUOUS, DUPLICATE, ERROR = "acknowledged", "refused", "ambiguous", "duplicate", "error"
_NOT_CONNECTED = ("failed to connect", "connection refused", "connect failed", "no such file")
_NOTHING_APPLIED = ("not applied", "try again")


@dataclass
class Attempt:
    client: int
    name: str
    started: float  # perf_counter
    took: float = 0.0
    outcome: str = ""
    service_id: str = ""
    details: str = ""


@dataclass
class Kill:
    victim: str
    at: float  # perf_counter of the SIGKILL
    first_ack_after: float | None = None  # seconds from the kill to the first acknowledged create issued after it


@dataclass
class ChaosReport:
    attempts: list[Attempt]
    kills: list[Kill]
    elections: int  # "became leader" lines after the swarm was formed
    problems: list[str] = field(default_factory=list)  # lost, duplicated, lying refusals: must stay empty

    def count(self, outcome: str) -> int:
        return sum(a.outcome == outcome for a in self.attempts)

    @property
    def acknowledged_share(self) -> float:
        return self.count(ACKNOWLEDGED) / len(self.attempts) if self.attempts else 0.0

    @property
    def spurious_elections(self) -> int:
        return max(0, self.elections - len(self.kills))

    def summary(self) -> str:
        outcomes = collections.Counter(a.outcome for a in self.attempts)
        slowest = max((a.took for a in self.attempts if a.outcome == ACKNOWLEDGED), default=0.0)
        recoveries = ", ".join("?" if k.first_ack_after is None else f"{k.first_ack_after:.2f}" for k in self.kills)
        return (f"{len(self.attempts)} creates attempted: {self.count(ACKNOWLEDGED)} acknowledged "
                f"({100 * self.acknowledged_share:.1f} %), {dict(outcomes)}; {len(self.problems)} problems; "
                f"kill -> next acknowledged create: {recoveries} s; slowest acknowledged call {slowest:.2f} s; "
                f"elections {self.elections} for {len(self.kills)} kills")


def classify(error: grpc.aio.AioRpcError) -> str:
    details = (error.details() or "").lower()
    if error.code() == grpc.StatusCode.ALREADY_EXISTS:
        return DUPLICATE
    if error.code() == grpc.StatusCode.UNAVAILABLE:
        if "may or may not" in details:
            return AMBIGUOUS
        if any(words in details for words in _NOTHING_APPLIED) or details == "the swarm does not have a leader":
            return REFUSED
        return AMBIGUOUS  # e.g. "Socket closed": the manager died with the call
    if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
        return AMBIGUOUS
    return ERROR


def never_connected(error: grpc.aio.AioRpcError) -> bool:
    details = (error.details() or "").lower()
    return error.code() == grpc.StatusCode.UNAVAILABLE and any(marker in details for marker in _NOT_CONNECTED)


class Stubs:
    """One channel per manager's local socket, reconnecting quickly after a restart."""

    def __init__(self, managers: Sequence[ManagerProcess]) -> None:
        options = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", 500), ("grpc.max_receive_message_length", 256 * 2**20)]
        self._channels = [grpc.aio.insecure_channel(f"unix:{m.socket_path}", options=options) for m in managers]
        self.control = [control_pb2_grpc.ControlStub(channel) for channel in self._channels]

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()


async def client_loop(client: int, stubs: Stubs, prefix: str, pace: float, stop: asyncio.Event,
                      attempts: list[Attempt]) -> None:
    """Create services one after another until `stop`; each attempt recorded with its outcome."""
    count = len(stubs.control)
    number = 0
    while not stop.is_set():
        number += 1
        attempt = Attempt(client, f"{prefix}-c{client}-{number}", time.perf_counter())
        attempts.append(attempt)
        request = control_pb2.CreateServiceRequest(spec=tiny_spec(attempt.name))
        for hop in range(count):
            stub = stubs.control[(client + hop) % count]
            try:
                answer = await stub.CreateService(request, timeout=CALL_TIMEOUT)
            except grpc.aio.AioRpcError as error:
                attempt.details = f"{error.code().name}: {error.details()}"
                if never_connected(error) and hop + 1 < count:
                    continue  # this manager is down and nothing was sent: the next one gets the same attempt
                attempt.outcome = REFUSED if never_connected(error) else classify(error)
            else:
                attempt.outcome, attempt.service_id = ACKNOWLEDGED, answer.service.id
            break
        attempt.took = time.perf_counter() - attempt.started
        await asyncio.sleep(pace)


async def current_leader(cluster: ManagerCluster, stubs: Stubs) -> ManagerProcess:
    """Once every manager is REACHABLE and one leads (as the live managers answer), the leader."""
    names = {m.name: m for m in cluster.managers}
    async with asyncio.timeout(STEADY_TIMEOUT):
        while True:
            for manager, stub in zip(cluster.managers, stubs.control):
                if not manager.alive:
                    continue
                nodes = await list_nodes_via(stub)
                if nodes is None:
                    continue
                reachable = [n for n in nodes if n.role == objects_pb2.MANAGER
                             and n.manager_status.reachability == objects_pb2.ManagerStatus.REACHABLE]
                leader = leader_hostname(nodes)
                if (len(reachable) == len(cluster.managers) and leader in names and names[leader].alive
                        and leads_by_its_log(names[leader])):
                    return names[leader]
            await asyncio.sleep(0.1)


_LEADERSHIP_LINE = re.compile(r"msg=node [0-9a-f]+: (became leader|lost leadership)", re.M)


def leads_by_its_log(manager: ManagerProcess) -> bool:
    """Whether the running process's last word on its leadership is that it leads.

    The leader flag in the node list is the store's, written by a leader's role manager some time after
    an election: just after a kill and restart it can still name the restarted victim, now a follower,
    and killing that one would be a kill no election answers (CI once saw 1 election for 2 kills).
    """
    changes = _LEADERSHIP_LINE.findall(manager.own_log())
    return bool(changes) and changes[-1] == "became leader"


async def list_nodes_via(stub: control_pb2_grpc.ControlStub):
    try:
        return list((await stub.ListNodes(control_pb2.ListNodesRequest(), timeout=5)).nodes)
    except grpc.aio.AioRpcError:
        return None


def open_raft_storage(data_dir: Path) -> DiskStorage:
    """A stopped manager's Raft storage, opened with its own Raft key (close it after use)."""
    credentials = asyncio.run(load_node_credentials(data_dir))
    cipher = RecordCipher(credentials.raft_dek) if credentials and credentials.raft_dek else None
    return DiskStorage(str(DataDir(data_dir).raft), cipher=cipher)


def committed_services(data_dir: Path) -> dict[str, list[str]]:
    """Service name -> IDs in one stopped manager's own committed state (snapshot + log up to commit)."""
    storage = open_raft_storage(data_dir)
    try:
        store = MemoryStore()
        snapshot = storage.snapshot()
        if not snapshot.empty:
            store.restore(snapshot.data)
        first, commit = max(storage.first_index(), snapshot.meta.index + 1), storage.hard_state.commit
        for entry in storage.entries(first, commit + 1) if commit >= first else []:
            if entry.type == EntryType.NORMAL:
                store.apply(entry.index, entry.data)
    finally:
        storage.close()
    named: dict[str, list[str]] = collections.defaultdict(list)
    for service in store.view().services():
        named[service.spec.annotations.name].append(service.id)
    return named


def check_view(where: str, named: dict[str, list[str]], prefix: str, attempts: Sequence[Attempt]) -> list[str]:
    """What is wrong with one manager's services, against the attempts' outcomes."""
    ours = {name: ids for name, ids in named.items() if name.startswith(prefix + "-")}
    by_name = {a.name: a for a in attempts}
    problems = [f"{where}: {name} exists {len(ids)} times" for name, ids in ours.items() if len(ids) > 1]
    problems += [f"{where}: {name} was never attempted" for name in ours if name not in by_name]
    for attempt in attempts:
        present = ours.get(attempt.name, [])
        if attempt.outcome == ACKNOWLEDGED and present != [attempt.service_id]:
            problems.append(f"{where}: acknowledged {attempt.name} ({attempt.service_id}) lost: {present}")
        elif attempt.outcome == REFUSED and present:
            problems.append(f"{where}: {attempt.name} was refused as not applied, yet exists: {attempt.details}")
        elif attempt.outcome in (DUPLICATE, ERROR):
            problems.append(f"{where}: {attempt.name} answered {attempt.outcome}: {attempt.details}")
    return problems


async def run_chaos(*, kills: int = 2, warmup: float = 3.0, down_for: float = 1.0, settle: float = 3.0,
                    clients: int = 3, managers: int = 3, pace: float = 0.1,
                    keep_logs: Path | None = None) -> ChaosReport:
    cluster = await asyncio.to_thread(start_managers, managers)
    stubs = Stubs(cluster.managers)
    prefix = f"chaos{uuid.uuid4().hex[:6]}"
    attempts: list[Attempt] = []
    done: list[Kill] = []
    problems: list[str] = []
    stop = asyncio.Event()
    try:
        await current_leader(cluster, stubs)
        formed_elections = sum(len(leadership_times(m.log_path.read_text(errors="replace"))) for m in cluster.managers)
        loops = [asyncio.create_task(client_loop(i, stubs, prefix, pace, stop, attempts), name=f"chaos-client-{i}")
                 for i in range(clients)]
        try:
            await asyncio.sleep(warmup)
            for _ in range(kills):
                victim = await current_leader(cluster, stubs)
                kill = Kill(victim.name, time.perf_counter())
                await asyncio.to_thread(victim.kill)
                done.append(kill)
                await asyncio.sleep(down_for)
                await asyncio.to_thread(victim.restart)
            await current_leader(cluster, stubs)
            await asyncio.sleep(settle)
        finally:
            stop.set()
            async with asyncio.timeout(CALL_TIMEOUT + 5):
                await asyncio.gather(*loops)
        for kill in done:
            # Writes issued after the kill: one acknowledged just after it may have committed before it.
            after = [a.started + a.took for a in attempts if a.outcome == ACKNOWLEDGED and a.started > kill.at]
            kill.first_ack_after = min(after) - kill.at if after else None

        await current_leader(cluster, stubs)
        for manager, stub in zip(cluster.managers, stubs.control):
            answer = await stub.ListServices(control_pb2.ListServicesRequest(), timeout=CALL_TIMEOUT)
            named: dict[str, list[str]] = collections.defaultdict(list)
            for service in answer.services:
                named[service.spec.annotations.name].append(service.id)
            problems += check_view(f"{manager.name} (answered)", named, prefix, attempts)
        elections = sum(len(leadership_times(m.log_path.read_text(errors="replace"))) for m in cluster.managers)
        await stubs.close()
        await asyncio.to_thread(stop_all, cluster.managers)
        for manager in cluster.managers:
            named = await asyncio.to_thread(committed_services, manager.data_dir)
            problems += check_view(f"{manager.name} (own committed state)", named, prefix, attempts)
    finally:
        stop.set()
        await stubs.close()
        await asyncio.to_thread(cluster.stop, keep_logs)
    return ChaosReport(attempts, done, elections - formed_elections, problems)


def stop_all(managers: Sequence[ManagerProcess]) -> None:
    """SIGTERM every daemon and wait for each to exit (their Raft files closed)."""
    for manager in managers:
        if manager.alive:
            manager.process.send_signal(signal.SIGTERM)
    for manager in managers:
        manager.process.wait(STOP_TIMEOUT)


async def all_runs(args: argparse.Namespace) -> None:
    reports = []
    for run in range(1, args.runs + 1):
        keep = args.keep_logs / f"run{run}" if args.keep_logs else None
        report = await run_chaos(kills=args.kills, warmup=args.warmup, down_for=args.down_for, settle=args.settle,
                                 clients=args.clients, pace=args.pace, keep_logs=keep)
        reports.append(report)
        print(f"run {run}: {report.summary()}", flush=True)
        for problem in report.problems[:20]:
            print(f"  PROBLEM {problem}", flush=True)
    recoveries = [k.first_ack_after for r in reports for k in r.kills if k.first_ack_after is not None]
    print(f"{args.runs} runs, {sum(len(r.kills) for r in reports)} kills: acknowledged "
          f"{100 * min(r.acknowledged_share for r in reports):.1f}-{100 * max(r.acknowledged_share for r in reports):.1f} %"
          f" of {sum(len(r.attempts) for r in reports)} attempts; lost/duplicated/lying: "
          f"{sum(len(r.problems) for r in reports)}; spurious elections {sum(r.spurious_elections for r in reports)}; "
          f"kill -> next acknowledged create median {statistics.median(recoveries):.2f} s, max {max(recoveries):.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kills", type=int, default=2, help="leader kills (each followed by a restart) per run")
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before the first kill")
    parser.add_argument("--down-for", type=float, default=2.0, help="seconds a killed leader stays down")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds of load after the last restart")
    parser.add_argument("--pace", type=float, default=0.05, help="each client's pause between creates")
    parser.add_argument("--keep-logs", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(all_runs(args))  # one loop for every run: grpc.aio binds to the first loop it sees


if __name__ == "__main__":
    main()
