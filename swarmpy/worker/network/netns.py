"""Doing one thing inside another network namespace: open a socket there, write a sysctl there, run nft there.

setns(2) moves only the calling thread, so each call gets a fresh thread of its own that enters the
namespace, does its one job and exits: a thread of the shared executor is never left in a foreign
namespace. A socket keeps the namespace it was created in for its whole life, which is how the resolver
listens on 127.0.0.11 inside a container while being served by the daemon's event loop.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def netns_path(name_or_path: str | None) -> str:
    """`None` is this process's namespace; a bare name is one under /run/netns (as `ip netns` makes)."""
    if name_or_path is None:
        return "/proc/self/ns/net"
    return name_or_path if name_or_path.startswith("/") else f"/run/netns/{name_or_path}"


def container_netns(pid: int) -> str:
    return f"/proc/{pid}/ns/net"


def in_netns(path: str, fn: Callable[[], T]) -> T:
    """Run `fn` on a new thread that has entered the namespace at `path`; blocks until it returns."""
    result: list[T] = []
    error: list[BaseException] = []

    def body() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns into {path}: {os.strerror(err)}")
            finally:
                os.close(fd)
            result.append(fn())
        except BaseException as exc:  # handed back to the caller's thread below
            error.append(exc)

    thread = threading.Thread(target=body, name=f"netns:{path}", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def socket_in_netns(path: str, family: int, kind: int) -> socket.socket:
    return in_netns(path, lambda: socket.socket(family, kind))


def write_sysctl(path: str, key: str, value: str) -> None:
    def write() -> None:
        with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
            f.write(value)

    in_netns(path, write)


async def run_nft(netns: str, script: str, *args: str) -> str:
    """`nft -f -` (one atomic transaction) or `nft ARGS` inside a namespace; raises with nft's stderr."""
    command = ["nsenter", f"--net={netns}", "nft", *(args or ("-f", "-"))]
    proc = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate(script.encode())
    if proc.returncode != 0:
        raise RuntimeError(f"nft in {netns} failed: {err.decode().strip()}")
    return out.decode()
