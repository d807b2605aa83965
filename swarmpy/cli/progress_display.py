"""Drawing progress lines: in place with ANSI cursor moves on a terminal, as plain appended lines
(each printed only when its text changes) anywhere else, so logs and tests read a clean history."""

from __future__ import annotations

from typing import TextIO


class PlainProgressDisplay:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._shown: dict[str, str] = {}

    def show(self, lines: list[tuple[str, str]]) -> None:
        for line_id, text in lines:
            if not text.strip() or self._shown.get(line_id) == text:
                continue
            self._shown[line_id] = text
            self._stream.write(f"{line_id}: {text}\n")
        self._stream.flush()

    def message(self, text: str) -> None:
        self._stream.write(text + "\n")
        self._stream.flush()


class TerminalProgressDisplay:
    """One screen line per line id, in order of first appearance; updates rewrite that line."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._order: list[str] = []
        self._shown: dict[str, str] = {}

    def show(self, lines: list[tuple[str, str]]) -> None:
        for line_id, text in lines:
            if self._shown.get(line_id) == text:
                continue
            self._shown[line_id] = text
            rendered = f"{line_id}: {text}"
            if line_id not in self._order:
                self._order.append(line_id)
                self._stream.write(rendered + "\n")
                continue
            distance = len(self._order) - self._order.index(line_id)
            self._stream.write(f"\x1b[{distance}A\r\x1b[2K{rendered}\x1b[{distance}B\r")
        self._stream.flush()

    def message(self, text: str) -> None:
        self._stream.write(text + "\n")
        self._stream.flush()


class SilentProgressDisplay:
    """-q: wait for convergence, show nothing."""

    def show(self, lines: list[tuple[str, str]]) -> None:
        pass

    def message(self, text: str) -> None:
        pass


def progress_display(stream: TextIO, quiet: bool):
    if quiet:
        return SilentProgressDisplay()
    if stream.isatty():
        return TerminalProgressDisplay(stream)
    return PlainProgressDisplay(stream)
