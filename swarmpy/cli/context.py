"""What every command gets: the daemon address, the --debug switch, and the one lazily opened
connection (so `--help` and flag errors never import grpc nor touch the socket)."""

from __future__ import annotations

import sys

DEFAULT_HOST = "unix:///var/run/swarmpy/swarmpy.sock"


class CliContext:
    def __init__(self, host: str, debug: bool) -> None:
        self.host = host
        self.debug = debug
        self._daemon = None

    @property
    def daemon(self):
        if self._daemon is None:
            from swarmpy.cli.connection import Daemon

            self._daemon = Daemon(self.host)
        return self._daemon

    def close(self) -> None:
        if self._daemon is not None:
            self._daemon.close()
            self._daemon = None

    def out(self, text: str = "") -> None:
        sys.stdout.write(text + "\n")

    def err(self, text: str) -> None:
        sys.stderr.write(text + "\n")
