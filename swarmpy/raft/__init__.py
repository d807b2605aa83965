"""swarmpy's Raft: a pure state machine (`core`), durable storage (`wal`), the driver contract
(`driver_core`) and an asyncio driver running it (`driver`).

The driver contract, written down once
--------------------------------------
The core (`core.RaftNode`) does no I/O: it never reads a clock, touches a file or opens a socket.
Time is `tick()`; input is `step(message)` and `propose(data)`; output is a `Ready`. A driver loops:

1. `if node.has_ready(): rd = node.ready()`
2. Persist, durably (fsync), before anything below: `rd.snapshot` (if any), then `rd.entries`
   (appending, and truncating any conflicting suffix first), then `rd.hard_state` (if any).
3. Only then send `rd.messages`. A message may promise a vote or an append that step 2 made durable;
   sending it earlier could break election safety after a crash.
   (A leader may send its own new entries before persisting them locally -- etcd's optimisation -- but
   swarmpy does not need it, so the rule is uniform.)
4. Restore the application from `rd.snapshot` if set, then apply `rd.committed_entries` in order;
   answer `rd.read_states` once the applied index reaches each one's index.
5. `node.advance(rd)`.

The contract is implemented once, in `driver_core.DriverCore`: it applies steps 2-5 to a Ready and
yields the I/O (persist, send, snapshot, compact) for its runner. The asyncio `driver.RaftDriver` runs
it in production; the deterministic simulator (tests/raft/simulator.py) runs the same code over the
real WAL on a simulated disk, crashing it anywhere in between.

`rd.soft_state` tells the driver when leadership changes (start or stop leader-only work, fail pending
proposals). The driver reports transport failures with `report_unreachable(id)` and snapshot sends
with `report_snapshot(id, ok)`.

Errors are typed by whose fault they are (`errors`): a caller's bad proposal, this node not being the
leader, the cluster being unavailable.
"""
