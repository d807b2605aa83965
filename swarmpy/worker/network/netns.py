"""Doing one thing inside another network namespace: open a socket there, list its links, write a sysctl there (nftlib.py runs nft there).

setns(2) moves only the calling thread, so each call gets a fresh thread of its own that enters the
namespace, does its one job and exits: a thread of the shared executor is never left in a foreign
namespace. Nothing here forks: pyroute2's own `netns.create` and `IPRoute(netns=...)` fork a helper
process, which a daemon with gRPC's threads must not do (its forked child took the daemon down), so
namespaces are made by a thread (`create_netns`) and netlink sockets are opened by one (`iproute`). A socket keeps the namespace it was created in for its whole life, which is how the resolver
listens on 127.0.0.11 inside a container while being served by the daemon's event loop.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading
from collections.abc import Callable
from typing import TypeVar

from pyroute2 import IPRoute

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
MS_REC, MS_BIND, MS_SHARED = 0x4000, 0x1000, 1 << 20
NETLINK_ROUTE = 0
NETNS_RUN_DIR = "/run/netns"
_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def netns_path(name_or_path: str | None) -> str:
    """`None` is this process's namespace; a bare name is one under /run/netns (as `ip netns` makes)."""
    if name_or_path is None:
        return "/proc/self/ns/net"
    return name_or_path if name_or_path.startswith("/") else f"/run/netns/{name_or_path}"


def container_netns(pid: int) -> str:
    return f"/proc/{pid}/ns/net"


def _on_new_thread(name: str, fn: Callable[[], T]) -> T:
    """Run `fn` on a thread of its own (which may then change its namespace and die); blocks until done."""
    result: list[T] = []
    error: list[BaseException] = []

    def body() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # handed back to the caller's thread below
            error.append(exc)

    thread = threading.Thread(target=body, name=name, daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def in_netns(path: str, fn: Callable[[], T]) -> T:
    """Run `fn` on a new thread that has entered the namespace at `path`; blocks until it returns."""

    def entered() -> T:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _check(_libc.setns(fd, CLONE_NEWNET), f"setns into {path}")
        finally:
            os.close(fd)
        return fn()

    return _on_new_thread(f"netns:{path}", entered)


def create_netns(name: str) -> None:
    """A named network namespace, as `ip netns add` makes it: a thread unshares its network namespace and
    bind-mounts it on /run/netns/NAME (a shared mount, so every mount namespace sees it)."""
    os.makedirs(NETNS_RUN_DIR, exist_ok=True)
    if _libc.mount(b"", NETNS_RUN_DIR.encode(), b"none", MS_SHARED | MS_REC, None) != 0:
        _check(_libc.mount(NETNS_RUN_DIR.encode(), NETNS_RUN_DIR.encode(), b"none", MS_BIND | MS_REC, None),
               f"bind-mounting {NETNS_RUN_DIR}")
        _check(_libc.mount(b"", NETNS_RUN_DIR.encode(), b"none", MS_SHARED | MS_REC, None),
               f"sharing {NETNS_RUN_DIR}")
    path = netns_path(name)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))

    def unshared() -> None:
        _check(_libc.unshare(CLONE_NEWNET), "unshare")
        _check(_libc.mount(b"/proc/thread-self/ns/net", path.encode(), b"none", MS_BIND, None),
               f"bind-mounting the namespace on {path}")

    try:
        _on_new_thread(f"netns-create:{name}", unshared)
    except BaseException:
        os.unlink(path)
        raise


def iproute(name_or_path: str | None) -> IPRoute:
    """An IPRoute bound to a namespace (None: this process's), its netlink socket opened inside it."""
    if name_or_path is None:
        return IPRoute()
    sock = in_netns(netns_path(name_or_path),
                    lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE))
    return IPRoute(use_socket=sock)


def link_indexes(name_or_path: str | None) -> dict[str, int]:
    """Name -> index of every link in a namespace (None: this process's), listed by libc's
    if_nameindex(3): one netlink dump decoded in C, about 1 ms for 80 links, where pyroute2 decodes every
    attribute of every link in Python (about 0.4 ms a link, holding the GIL the daemon's event loop needs)."""
    if name_or_path is None:
        return {name: index for index, name in socket.if_nameindex()}
    return {name: index for index, name in in_netns(netns_path(name_or_path), socket.if_nameindex)}


def socket_in_netns(path: str, family: int, kind: int) -> socket.socket:
    return in_netns(path, lambda: socket.socket(family, kind))


def write_sysctl(path: str, key: str, value: str) -> None:
    def write() -> None:
        with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
            f.write(value)

    in_netns(path, write)

