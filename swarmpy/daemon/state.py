"""What a daemon remembers about its place in a swarm, under its data dir.

Layout of the data dir:
    node.json           this file's NodeState: who this node is and how it reaches the swarm
    certificates/       node key, node certificate, root CA certificate (swarmpy.ca.keystore)
    raft/               the Raft log and snapshots (managers only; swarmpy.raft.wal)
    worker/             the worker's persisted assignments (swarmpy.worker)

node.json is written atomically (temporary file, fsync, rename, fsync of the folder), so a crash leaves
either the old state or the new one. Its absence means "not in a swarm".
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from swarmpy.files import write_atomically

STATE_FILE = "node.json"


@dataclass
class NodeState:
    node_id: str
    cluster_id: str
    role: str  # "manager" | "worker": the role of the certificate this node holds
    listen_addr: str  # host:port the swarm port binds (managers)
    advertise_addr: str  # host:port other nodes reach this one on
    raft_id: int = 0  # this manager's Raft member id (0 for a worker)
    managers: list[str] = field(default_factory=list)  # manager addresses known, for the agent
    hostname: str = ""
    data_path_addr: str = ""  # the VXLAN underlay address (--data-path-addr); empty: the advertised host


class DataDir:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @property
    def certificates(self) -> Path:
        return self.root / "certificates"

    @property
    def raft(self) -> Path:
        return self.root / "raft"

    @property
    def worker(self) -> Path:
        return self.root / "worker"

    def load(self) -> NodeState | None:
        path = self.root / STATE_FILE
        try:
            raw = path.read_text()
        except FileNotFoundError:
            return None
        try:
            return NodeState(**json.loads(raw))
        except (ValueError, TypeError) as exc:
            raise RuntimeError(f"{path}: unreadable node state ({exc}); move it away to start afresh") from exc

    def save(self, state: NodeState) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomically(self.root / STATE_FILE, json.dumps(asdict(state), indent=2).encode())

    def erase_swarm_state(self) -> None:
        """Forget the swarm: node state, certificates, Raft data, worker assignments."""
        (self.root / STATE_FILE).unlink(missing_ok=True)
        for sub in (self.certificates, self.raft, self.worker):
            shutil.rmtree(sub, ignore_errors=True)
