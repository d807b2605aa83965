"""East-west over the overlay against a plain veth/bridge path, VIP against one task IP, and the
embedded resolver's queries per second and p99 — all in one run, on 2 namespace hosts.

    PYTHONPATH=$PWD flock /tmp/heavy.lock python3 bench/overlay_bench.py [--seconds 5] [--rounds 5]

wrk (Debian's) runs in the client container's network namespace (nsenter), against busybox httpd in a
container on the other host: over the VXLAN, and over a veth pair bridged in the lab's hub namespace
between the same two containers. DNS: a separate process in the client's namespace sends queries for
`api` to 127.0.0.11 (1, then 32 in flight) and times each answer.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
from ipaddress import IPv4Address, IPv4Interface

sys.path.insert(0, ".")
from tests.worker.network.cluster_view import Net, Service, Task, host_models  # noqa: E402
from tests.worker.network.lab import NetLab, run  # noqa: E402
from tests.worker.network.test_dataplane import FRONT  # noqa: E402

DNS_CLIENT = r'''
import socket, time, struct, dns.message
q = dns.message.make_query("api", "A")
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
s.connect(("127.0.0.11", 53))
import sys
lat = []; inflight = {}; n = int(sys.argv[1]); depth = int(sys.argv[2]); sent = 0; t0 = time.perf_counter()
while len(lat) < n:
    while sent < n and len(inflight) < depth:
        q.id = sent % 65536; w = q.to_wire(); inflight[q.id] = time.perf_counter(); s.send(w); sent += 1
    data = s.recv(512); qid = struct.unpack("!H", data[:2])[0]
    lat.append(time.perf_counter() - inflight.pop(qid))
el = time.perf_counter() - t0; lat.sort()
print(f"{n/el:.0f} {lat[len(lat)//2]*1e3:.3f} {lat[int(len(lat)*0.99)]*1e3:.3f}")
'''


def wrk(pid: int, url: str, seconds: int) -> dict[str, float]:
    out = run("nsenter", f"--net=/proc/{pid}/ns/net", "wrk", "-t1", "-c8", f"-d{seconds}s", "--latency", url,
              timeout=seconds + 30)
    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50": ms("50%"), "p99": ms("99%")}
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errors:  # wrk prints the line only when there were some
        result["errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, errors.groups())))
    return result


async def main(seconds: int, rounds_wanted: int) -> None:
    lab = NetLab()
    try:
        lab.add_host("h1"), lab.add_host("h2")
        api = Service("svcapi000001", "api", {FRONT.id: IPv4Address("10.0.1.2")})
        client_svc = Service("svcclient001", "client", {})
        server = lab.start_container("api1")
        client = lab.start_container("client", "exec sleep 3600")
        tasks = [Task("apitask1", api, 1, "h2", server, {FRONT.id: IPv4Interface("10.0.1.3/24")}),
                 Task("clienttask1", client_svc, 1, "h1", client, {FRONT.id: IPv4Interface("10.0.1.20/24")})]
        models = host_models(lab.hosts, [FRONT], tasks)
        for host, model in models.items():
            await lab.planes[host].apply(model)
        pids = {c: lab.planes[h].plumbed[c].pid for h, c in (("h2", server), ("h1", client))}
        # The plain path: a veth from each container to a bridge in the hub namespace.
        run("ip", "-n", lab.hub, "link", "add", "plainbr", "type", "bridge")
        run("ip", "-n", lab.hub, "link", "set", "plainbr", "up")
        for n, (container, ip) in enumerate(((server, "10.99.0.1"), (client, "10.99.0.2"))):
            run("ip", "-n", lab.hub, "link", "add", f"plain{n}", "type", "veth", "peer", "name", "plain",
                "netns", f"/proc/{pids[container]}/ns/net")
            run("ip", "-n", lab.hub, "link", "set", f"plain{n}", "master", "plainbr", "up")
            run("nsenter", f"--net=/proc/{pids[container]}/ns/net", "sh", "-c",
                f"ip addr add {ip}/24 dev plain && ip link set plain up")
        # wrk closes each connection first (httpd answers "Connection: close" and wrk reconnects as soon as
        # it has read the answer), so the TIME_WAITs are the client's: ~9,000 a 3 s round on each port
        # range below. Without reuse, by the second round every connect() scanned a range full of them in
        # the kernel (wrk at 90 % system time) and all paths fell together, 3,000 -> 500-700 req/s, a
        # measure of the client's port search and not of any path. Reusing a TIME_WAIT port for a new
        # outgoing connection (timestamps make it safe) is what load generators are run with.
        run("nsenter", f"--net=/proc/{pids[client]}/ns/net", "sysctl", "-q", "-w", "net.ipv4.tcp_tw_reuse=1")
        # Rounds interleave the paths, each round's ratios taken between runs seconds apart: on a shared
        # machine the load moves between runs, and one run of each path in a row measured the load.
        rounds: list[dict[str, dict[str, float]]] = []
        for number in range(rounds_wanted):
            results = {}
            for label, url in (("plain", "http://10.99.0.1/"), ("overlay", "http://10.0.1.3/"),
                               ("vip", "http://10.0.1.2/"), ("direct", "http://10.0.1.3/")):
                # The VIP path and the straight ones reach the same server address and port, and each
                # connection ends in a TIME_WAIT that lasts 60 s. The client's
                # kernel picks source ports per destination it sees (the VIP or the task IP) and stamps
                # TCP timestamps with an offset hashed from that destination, so a straight connection
                # that reuses a VIP connection's port meets a TIME_WAIT whose last timestamp may be
                # newer: refused (PAWS), a reset, a 1 s SYN retry. Every DNAT load balancer (IPVS,
                # kube-proxy) has this when one client mixes a VIP and its backends' IPs at thousands of
                # connections a second; without disjoint port ranges the later rounds measured it (VIP
                # and direct throughput fell round after round, 4,182 -> 295 req/s, while plain held).
                ports = "32768 46883" if label == "vip" else "46884 60999"
                run("nsenter", f"--net=/proc/{pids[client]}/ns/net", "sysctl", "-q", "-w",
                    f"net.ipv4.ip_local_port_range={ports}")
                results[label] = await asyncio.to_thread(wrk, pids[client], url, seconds)
            rounds.append(results)
            print(f"round {number + 1}:", {k: v for k, v in results.items()}, flush=True)
        dns = {}
        for depth in (1, 32):
            out = await asyncio.to_thread(
                run, "nsenter", f"--net=/proc/{pids[client]}/ns/net", sys.executable, "-c", DNS_CLIENT, "10000",
                str(depth), timeout=120)
            dns[depth] = tuple(map(float, out.split()))
        def median(values: list[float]) -> float:
            return sorted(values)[len(values) // 2]

        throughput = median([r["overlay"]["rps"] / r["plain"]["rps"] for r in rounds])
        p99 = median([r["overlay"]["p99"] / r["plain"]["p99"] for r in rounds])
        vip = median([r["vip"]["p50"] / r["direct"]["p50"] for r in rounds])
        print(f"median of {len(rounds)} rounds: east-west throughput overlay/plain {throughput:.2f} (target >= 0.8), "
              f"p99 overlay/plain {p99:.2f} (target <= 1.3)")
        print(f"median of {len(rounds)} rounds: VIP/direct p50 {vip:.2f} (target <= 1.1)")
        for depth, (qps, p50, p99) in dns.items():
            print(f"DNS, {depth} in flight: {qps:.0f} q/s, p50 {p50:.3f} ms, p99 {p99:.3f} ms "
                  "(target >= 5000 q/s, p99 <= 2 ms)")
    finally:
        await lab.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.seconds, arguments.rounds))
