"""A fake Docker engine for the relay's unit tests: a blocking unix server in a thread that answers every
request head it reads from a script (`answer(head)`: bytes to send, or None to close)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

from swarmpy.engineapi import framing

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]"


class FakeEngine:
    """Answers each request head it reads with `answer(head)` (bytes to send, or None: close)."""

    def __init__(self, path: str, answer: Callable[[bytes], bytes | None] = lambda head: OK) -> None:
        self.path = path
        self.answer = answer
        self.heads: list[bytes] = []
        self.accepted = 0
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(path)
        self._listener.listen(64)
        self._socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            self._socks.append(sock)
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        data = b""
        try:
            while True:
                end = data.find(framing.HEAD_END)
                if end < 0:
                    more = sock.recv(65536)
                    if not more:
                        return
                    data += more
                    continue
                head, data = data[:end + 4], data[end + 4:]
                length = framing.parse_head(head).length
                while length is not None and len(data) < int(length):
                    data += sock.recv(65536)
                data = data[int(length or 0):]
                self.heads.append(head)
                answer = self.answer(head)
                if answer is None:
                    return
                sock.sendall(answer)
        except OSError:
            return
        finally:
            sock.close()

    def close(self) -> None:
        self._listener.close()
        for sock in self._socks:
            try:
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass
