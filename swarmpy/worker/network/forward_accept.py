"""Let the node's firewall forward what the data plane routes (blocking; the data plane calls it on a thread).

Theory of operation
-------------------
Two kinds of traffic are *forwarded* by the node's namespace rather than delivered to it: a task's
connections out through the egress bridge (docker's docker_gwbridge role), and routing-mesh connections
DNATed from the node's published port onto the mesh veth, with their replies. On a host where the Docker
engine runs, the filter FORWARD chain has policy DROP and accepts only docker's own bridges, so without
a rule of ours both are dropped silently: tasks have no way out past the host, and a published port
answers only the host itself (measured: a forwarded ping between two bridges fails until accepted).
A separate nftables table cannot help: a packet must be accepted by every base chain on its hook, and
iptables' DROP is one of them.

So, per interface the data plane owns, two iptables rules, in DOCKER-USER (the chain docker keeps for
its users' rules and consults first) or, with no Docker, in FORWARD itself:

    -i IF -j ACCEPT                                                   what the tasks send out
    -o IF -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT   replies, and the mesh's DNATed hits

each tagged with the comment `swarmpy <node tag>`. `reconcile` makes the tagged rules exactly those of
the given interfaces (an empty set removes them all), so it is idempotent, a restarted daemon adopts
its rules, and cleanup is exact. A namespace whose FORWARD accepts by default and has no DOCKER-USER
(a test host namespace, a host without Docker) needs nothing and gets nothing.

Passes come often while tasks start, so an unchanged set is not re-read from the kernel on every one;
but someone else may flush the chain (an admin's `iptables -F`, a firewall service reloading), so the
kernel is looked at again once the last look is RECHECK_AFTER old, and lost rules come back then.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)

DOCKER_CHAIN = "DOCKER-USER"
RECHECK_AFTER = 10.0  # seconds an unchanged set is trusted without reading the kernel again


def comment(tag: str) -> str:
    return f"swarmpy {tag}"


def wanted_rules(tag: str, interfaces: Iterable[str]) -> list[list[str]]:
    """The rule specs (after the chain name) that let `interfaces` forward, in insertion order (pure)."""
    mark = ["-m", "comment", "--comment", comment(tag)]
    rules = []
    for interface in sorted(set(interfaces)):
        rules.append(["-i", interface, *mark, "-j", "ACCEPT"])
        rules.append(["-o", interface, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED,DNAT", *mark, "-j", "ACCEPT"])
    return rules


def tagged_rules(listing: str, chain: str, tag: str) -> list[tuple[list[str], str | None]]:
    """From `iptables -S CHAIN` output, this node's rules: (spec after the chain, its interface) (pure)."""
    found = []
    for line in listing.splitlines():
        words = shlex.split(line)
        if words[:2] != ["-A", chain] or comment(tag) not in words:
            continue
        spec = words[2:]
        interface = next((spec[i + 1] for i, w in enumerate(spec[:-1]) if w in ("-i", "-o")), None)
        found.append((spec, interface))
    return found


class ForwardAccepts:
    """This node's forwarding exceptions in the namespace `netns_path` (every method blocks)."""

    def __init__(self, tag: str, netns_path: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.tag = tag
        self.netns_path = netns_path
        self._clock = clock
        self._applied: frozenset[str] | None = None  # None: not yet looked (a restart adopts what is there)
        self._looked_at = 0.0

    def _iptables(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = ["nsenter", f"--net={self.netns_path}", "iptables", "-w", "5", *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=15, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(f"iptables {' '.join(args)}: {result.stderr.strip() or result.returncode}")
        return result

    def _chain(self) -> str | None:
        """Where our rules go: DOCKER-USER when docker made it, FORWARD when it drops by default, else none."""
        if self._iptables("-S", DOCKER_CHAIN, check=False).returncode == 0:
            return DOCKER_CHAIN
        policy = self._iptables("-S", "FORWARD").stdout.splitlines()
        return "FORWARD" if policy and policy[0].split()[-1:] in (["DROP"], ["REJECT"]) else None

    def reconcile(self, interfaces: Iterable[str]) -> None:
        wanted = frozenset(interfaces)
        if wanted == self._applied and self._clock() - self._looked_at < RECHECK_AFTER:
            return
        self._looked_at = self._clock()
        if shutil.which("iptables") is None:
            if wanted:
                log.warning("iptables is not installed: forwarded task traffic depends on the host's firewall")
            self._applied = wanted
            return
        chain = self._chain()
        if chain is None:
            self._applied = wanted
            return
        existing = tagged_rules(self._iptables("-S", chain).stdout, chain, self.tag)
        for spec, interface in existing:
            if interface not in wanted:
                self._iptables("-D", chain, *spec)
        for spec in reversed(wanted_rules(self.tag, wanted)):
            if self._iptables("-C", chain, *spec, check=False).returncode != 0:
                self._iptables("-I", chain, "1", *spec)
        if wanted != (self._applied or frozenset()):
            log.info("forwarding accepted in %s for %s", chain, ", ".join(sorted(wanted)) or "nothing")
        self._applied = wanted
