"""What any relay in front of the engine's socket can reach on this machine: the engine's socket
itself, a minimal relay in user space and a relay whose answers never leave the kernel, side by side.

Why: issue 14 asks the Engine API's proxy path for >= 0.8 of the engine's own socket (sequential GET
/containers/json on one keep-alive connection). swarmpy's door sits at 0.70-0.86; this bench asks
whether a relay could do better at all, with no HTTP framing and no Python between reads and writes.

Sides, each one keep-alive connection, GET /v1.41/containers/json sequentially, interleaved in blocks
(engineapi_bench.interleaved_rates), each relay in a process of its own (`--serve`):

- engine: /var/run/docker.sock;
- door: swarmpy's own front door (engineapi.relay.FrontDoor), which frames every answer, in a bare
  process (no daemon beside it; its swarm routes lead nowhere and are not asked);
- user: per client connection one engine connection and two threads, `recv_into`/`sendall` each way;
- kernel: the request is copied in user space as above, but the answer is passed by the kernel. The
  relay's end of the engine connection sits in a SOCKHASH whose SK_SKB verdict program redirects every
  buffer it receives to the client connection's egress (bpf_sk_redirect_hash), so the relay's thread
  never wakes for an answer. The program is 11 instructions, loaded through the bpf() system call.

Facts this needed (kernel 6.18), which also decide what the kernel side can gain:
- For AF_UNIX the verdict program sees the buffer's owner as the *sender* (the engine's end), so the
  redirect is keyed by the engine end's socket cookie, learnt through sock_diag (UDIAG_SHOW_PEER gives
  the peer's inode, which is 0 until the engine has accepted; then the peer's own cookie).
- An egress redirect is queued on the target socket and sent by a kernel worker
  (sk_psock_skb_redirect: skb_queue_tail + schedule_delayed_work): the relay's wake-up per answer
  becomes a kworker's, it does not go away.
- A socket in a sockmap has its recvmsg replaced; a write-space wake-up (the worker sending on it)
  makes a blocked recv return EAGAIN. The kernel relay therefore polls for POLLIN before each read.

    python -m bench.relay_ceiling --rounds 5 --requests 300
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import select
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.engineapi_bench import ENGINE_SOCKET, UnixHTTP, interleaved_rates

PATH = "/v1.41/containers/json"
AGREE_PATH = "/v1.41/images/json"
READ_SIZE = 256 * 1024
RELAYS = ("door", "user", "kernel")

# bpf(2), from linux/bpf.h
_NR_BPF = 321  # x86_64
_BPF_MAP_CREATE, _BPF_MAP_UPDATE_ELEM, _BPF_MAP_DELETE_ELEM, _BPF_PROG_LOAD, _BPF_PROG_ATTACH = 0, 2, 3, 5, 8
_BPF_MAP_TYPE_SOCKHASH = 18
_BPF_PROG_TYPE_SK_SKB = 14
_BPF_SK_SKB_VERDICT = 38
_FUNC_GET_SOCKET_COOKIE, _FUNC_SK_REDIRECT_HASH = 46, 72
_ATTR_SIZE = 144
_SO_COOKIE = 57
# sock_diag(7) for AF_UNIX, from linux/sock_diag.h and linux/unix_diag.h
_NETLINK_SOCK_DIAG, _SOCK_DIAG_BY_FAMILY, _NLMSG_ERROR = 4, 20, 2
_UDIAG_SHOW_PEER, _UNIX_DIAG_PEER = 4, 2
_NO_COOKIE = 0xFFFFFFFF

_libc = ctypes.CDLL(None, use_errno=True)


def _bpf(command: int, attr: bytes) -> int:
    buffer = ctypes.create_string_buffer(attr, _ATTR_SIZE)
    result = _libc.syscall(_NR_BPF, command, buffer, _ATTR_SIZE)
    if result < 0:
        error = ctypes.get_errno()
        raise OSError(error, f"bpf({command}): {os.strerror(error)}")
    return result


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


class KernelRedirect:
    """A SOCKHASH of engine connections whose verdict program sends what they receive to the client
    connection filed, in a second SOCKHASH, under the cookie of the engine's end."""

    def __init__(self, size: int = 1024) -> None:
        self.upstreams = _bpf(_BPF_MAP_CREATE, struct.pack("IIIII", _BPF_MAP_TYPE_SOCKHASH, 8, 8, size, 0))
        self.clients = _bpf(_BPF_MAP_CREATE, struct.pack("IIIII", _BPF_MAP_TYPE_SOCKHASH, 8, 8, size, 0))
        program = b"".join([
            _insn(0xBF, 6, 1),                                  # r6 = skb
            _insn(0x85, imm=_FUNC_GET_SOCKET_COOKIE),           # r0 = cookie of skb's owner (the sender)
            _insn(0x7B, 10, 0, -8),                             # *(u64 *)(fp - 8) = r0
            _insn(0xBF, 1, 6),                                  # r1 = skb
            _insn(0x18, 2, 1, 0, self.clients), _insn(0),       # r2 = the clients' map (ld_imm64)
            _insn(0xBF, 3, 10), _insn(0x07, 3, 0, 0, -8),       # r3 = fp - 8
            _insn(0xB7, 4, 0, 0, 0),                            # r4 = 0: that socket's egress
            _insn(0x85, imm=_FUNC_SK_REDIRECT_HASH),
            _insn(0x95),                                        # return its verdict
        ])
        code = ctypes.create_string_buffer(program, len(program))
        licence = ctypes.create_string_buffer(b"GPL")  # the sockmap helpers are GPL-only
        log = ctypes.create_string_buffer(65536)
        attr = bytearray(_ATTR_SIZE)
        struct.pack_into("IIQQIIQ", attr, 0, _BPF_PROG_TYPE_SK_SKB, len(program) // 8, ctypes.addressof(code),
                         ctypes.addressof(licence), 1, len(log), ctypes.addressof(log))
        struct.pack_into("I", attr, 68, _BPF_SK_SKB_VERDICT)  # expected_attach_type
        try:
            self.program = _bpf(_BPF_PROG_LOAD, bytes(attr))
        except OSError as error:
            raise OSError(error.errno, f"{error.strerror}: {log.value.decode(errors='replace').strip()}") from None
        _bpf(_BPF_PROG_ATTACH, struct.pack("IIII", self.upstreams, self.program, _BPF_SK_SKB_VERDICT, 0))

    def _file(self, map_fd: int, key: bytes, sock: socket.socket) -> None:
        k = ctypes.create_string_buffer(key, 8)
        v = ctypes.create_string_buffer(struct.pack("Q", sock.fileno()), 8)
        _bpf(_BPF_MAP_UPDATE_ELEM, struct.pack("IIQQQ", map_fd, 0, ctypes.addressof(k), ctypes.addressof(v), 0))

    def _forget(self, map_fd: int, key: bytes) -> None:
        k = ctypes.create_string_buffer(key, 8)
        _bpf(_BPF_MAP_DELETE_ELEM, struct.pack("IIQ", map_fd, 0, ctypes.addressof(k)))

    def pair(self, upstream: socket.socket, client: socket.socket) -> tuple[bytes, bytes]:
        """Send what `upstream` receives to `client`'s peer, from now on. Returns the keys for unpair."""
        engine_end = peer_cookie(upstream)
        own = upstream.getsockopt(socket.SOL_SOCKET, _SO_COOKIE, 8)
        self._file(self.clients, engine_end, client)
        self._file(self.upstreams, own, upstream)
        return engine_end, own

    def unpair(self, keys: tuple[bytes, bytes]) -> None:
        self._forget(self.upstreams, keys[1])
        self._forget(self.clients, keys[0])


def _unix_diag(inode: int, show: int) -> tuple[bytes, dict[int, bytes]]:
    """One AF_UNIX socket's cookie and requested attributes, by inode."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_SOCK_DIAG) as netlink:
        request = struct.pack("BBHIIIII", socket.AF_UNIX, 0, 0, 0xFFFFFFFF, inode, show, _NO_COOKIE, _NO_COOKIE)
        netlink.send(struct.pack("IHHII", 16 + len(request), _SOCK_DIAG_BY_FAMILY, 1, 1, 0) + request)
        answer = netlink.recv(65536)
    length, kind = struct.unpack_from("IH", answer)
    if kind == _NLMSG_ERROR:
        error = -struct.unpack_from("i", answer, 16)[0]
        raise OSError(error, f"sock_diag of inode {inode}: {os.strerror(error)}")
    cookie = answer[24:32]
    attributes, offset = {}, 32
    while offset + 4 <= length:
        size, kind = struct.unpack_from("HH", answer, offset)
        attributes[kind] = answer[offset + 4:offset + size]
        offset += (size + 3) & ~3
    return cookie, attributes


def peer_cookie(sock: socket.socket, wait: float = 2.0) -> bytes:
    """The socket cookie of `sock`'s peer, once the peer has been accepted (it has no inode before)."""
    deadline = time.monotonic() + wait
    inode = os.fstat(sock.fileno()).st_ino
    while True:
        _, attributes = _unix_diag(inode, _UDIAG_SHOW_PEER)
        peer = struct.unpack("I", attributes[_UNIX_DIAG_PEER])[0]
        if peer:
            return _unix_diag(peer, 0)[0]
        if time.monotonic() > deadline:
            raise TimeoutError(f"the engine did not accept within {wait} s")
        time.sleep(0.001)


def _copy(source: socket.socket, target: socket.socket, wait_readable: bool = False) -> None:
    buffer = bytearray(READ_SIZE)
    view = memoryview(buffer)
    poller = select.poll()
    poller.register(source.fileno(), select.POLLIN)
    try:
        while True:
            if wait_readable:
                poller.poll()
                try:
                    count = source.recv_into(buffer, 0, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    continue
            else:
                count = source.recv_into(buffer)
            if not count:
                return
            target.sendall(view[:count])
    except OSError:  # a side reset its connection: this direction is over
        return
    finally:
        with contextlib.suppress(OSError):  # the other side's end goes on as a half-close
            target.shutdown(socket.SHUT_WR)


def serve(kind: str, path: str) -> None:
    """Relay connections on `path` to the engine until killed."""
    listener = socket.socket(socket.AF_UNIX)
    Path(path).unlink(missing_ok=True)
    listener.bind(path)
    listener.listen(64)
    if kind == "door":
        from swarmpy.engineapi.relay import FrontDoor, SwarmRoutes
        from swarmpy.engineapi.server import SWARM_KINDS, _swarm_routes, version_refusal
        from swarmpy.engineapi.upstreams import Pool, unix_opener

        door = FrontDoor(SwarmRoutes(_swarm_routes(), SWARM_KINDS), swarm=Pool("swarmpyd", unix_opener("/nonexistent")),
                         engine=Pool("engine", unix_opener(ENGINE_SOCKET)), engine_version=lambda: (1, 41),
                         version_refusal=version_refusal)
        door.serve(listener)
        print("ready", flush=True)
        threading.Event().wait()
    redirect = KernelRedirect() if kind == "kernel" else None

    def connection(client: socket.socket) -> None:
        with client, socket.socket(socket.AF_UNIX) as upstream:
            upstream.connect(ENGINE_SOCKET)
            if redirect is None:
                answers = threading.Thread(target=_copy, args=(upstream, client), daemon=True)
                answers.start()
                _copy(client, upstream)
                answers.join()
                return
            keys = redirect.pair(upstream, client)
            try:
                _copy(client, upstream, wait_readable=True)
            finally:
                redirect.unpair(keys)

    print("ready", flush=True)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=connection, args=(client,), daemon=True).start()


def answers_agree(sockets: dict[str, str]) -> None:
    """Every side gives the engine's own answer to GET /images/json, twice on one connection (the
    second shows that the kernel side's redirect carries a keep-alive exchange on). Images, because
    the container list may change between the sides' turns, and /version or /info are the door's own."""
    bodies: dict[str, tuple[int, bytes]] = {}
    for name, socket_path in sockets.items():
        connection = UnixHTTP(socket_path)
        try:
            connection.connect()
            connection.sock.settimeout(10)  # a redirect that goes nowhere fails here, not in a hang
            for _ in range(2):
                connection.request("GET", AGREE_PATH)
                answer = connection.getresponse()
                bodies[name] = (answer.status, answer.read())
        finally:
            connection.close()
    if len(set(bodies.values())) != 1 or bodies["engine"][0] != 200:
        raise SystemExit(f"the sides' answers differ: { {n: (s, len(b)) for n, (s, b) in bodies.items()} }")
    print(f"GET {AGREE_PATH}: the same {len(bodies['engine'][1])}-byte answer on every side, twice")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=300, help="per side and round")
    parser.add_argument("--block", type=int, default=20, help="requests in a side's turn")
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    for name in ("rounds", "requests", "block"):
        if getattr(options, name) < 1:
            parser.error(f"--{name} must be at least 1, not {getattr(options, name)}")
    if options.serve:
        serve(*options.serve)
        return
    workdir = Path(f"/tmp/relay-ceiling-{os.getpid()}")
    workdir.mkdir()
    relays, sockets = [], {"engine": ENGINE_SOCKET}
    try:
        for kind in RELAYS:
            sockets[kind] = str(workdir / f"{kind}.sock")
            relay = subprocess.Popen([sys.executable, "-m", "bench.relay_ceiling", "--serve", kind, sockets[kind]],
                                     stdout=subprocess.PIPE, text=True)
            relays.append(relay)
            if relay.stdout.readline().strip() != "ready":
                raise SystemExit(f"the {kind} relay did not start (exit {relay.wait()})")
        answers_agree(sockets)
        ratios: dict[str, list[float]] = {kind: [] for kind in RELAYS}
        for index in range(1, options.rounds + 1):
            rates = {name: rate for name, (rate, _) in
                     interleaved_rates(sockets, PATH, options.requests, options.block).items()}
            for kind in ratios:
                ratios[kind].append(rates[kind] / rates["engine"])
            print(f"round {index}: engine {rates['engine']:.0f} req/s, "
                  + ", ".join(f"{kind} {rates[kind]:.0f} ({ratios[kind][-1]:.2f})" for kind in RELAYS), flush=True)
        for kind, values in ratios.items():
            print(f"{kind} / engine socket: median {statistics.median(values):.2f} "
                  f"(rounds {', '.join(f'{v:.2f}' for v in values)})")
    finally:
        for relay in relays:
            relay.kill()
            relay.wait()
        for leftover in workdir.iterdir():
            leftover.unlink()
        workdir.rmdir()


if __name__ == "__main__":
    main()
