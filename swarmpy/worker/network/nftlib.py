"""nftables in-process: libnftables (the library behind the `nft` command) called through ctypes.

Theory of operation
-------------------
A data-plane pass talks to nftables in many namespaces (every task container holds its VIP table), and
spawning `nsenter ... nft -f -` for each cost ~30 ms of fork/exec and start-up on a loaded machine, so a
pass over tens of containers took seconds (bench/RESULTS.md, "Convergence through swarmpyd"). The same
work in-process costs well under a millisecond: `run(netns, script)` enters the namespace on a thread of
its own (netns.in_netns), makes a libnftables context there (its netlink socket is opened by that thread,
so it belongs to that namespace), runs the script and frees the context before the thread ends. A script
of several commands is one nftables transaction, as with `nft -f`: all of it applies or none.

`run(..., json=True)` returns the listing as nft's JSON (a schema nftables keeps stable across versions),
which is how callers read the kernel back and diff it instead of trusting what they last wrote.

Why ctypes on the system library and not bindings: PyPI has no nftables binding, and Debian's
python3-nftables is the same four calls for the system Python only. libnftables.so.1 is installed with
the `nft` command (Debian's nftables depends on libnftables1). Calls are serialised by one lock: the
library keeps no shared state between contexts that we rely on, but it makes no promise either, and each
call takes well under a millisecond.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import threading

from swarmpy.worker.network import netns as nsutil

NFT_CTX_OUTPUT_JSON = 1 << 4

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None


class NftError(RuntimeError):
    """nftables refused the script (the message is nft's own, naming the namespace)."""


def _library() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        name = ctypes.util.find_library("nftables") or "libnftables.so.1"
        try:
            lib = ctypes.CDLL(name, use_errno=True)
        except OSError as exc:
            raise NftError(f"libnftables is not installed ({exc}); apt: nftables") from None
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        _lib = lib
    return _lib


def run_here(script: str, *, json: bool = False) -> str:
    """Run `script` in the calling thread's network namespace; returns nft's output (JSON if asked)."""
    lib = _library()
    with _lock:
        ctx = lib.nft_ctx_new(0)
        if not ctx:
            raise NftError("nft_ctx_new failed")
        try:
            lib.nft_ctx_buffer_output(ctx)
            lib.nft_ctx_buffer_error(ctx)
            if json:
                lib.nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON)
            status = lib.nft_run_cmd_from_buffer(ctx, script.encode())
            out = (lib.nft_ctx_get_output_buffer(ctx) or b"").decode()
            err = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode()
        finally:
            lib.nft_ctx_free(ctx)
    if status != 0:
        raise NftError(err.strip() or f"nft exited with {status}")
    return out


def run(netns_path: str, script: str, *, json: bool = False) -> str:
    """Run `script` inside the namespace at `netns_path` (blocking: call it on a thread)."""
    try:
        return nsutil.in_netns(netns_path, lambda: run_here(script, json=json))
    except NftError as exc:
        raise NftError(f"nft in {netns_path} failed: {exc}") from None


async def run_nft(netns_path: str, script: str) -> str:
    """`run` from the event loop: one atomic nft transaction in a namespace; raises NftError."""
    return await asyncio.to_thread(run, netns_path, script)
