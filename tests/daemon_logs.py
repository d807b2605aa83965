"""The daemon logs a test made, shown when it fails: a 500 "internal error in swarmpyd (a bug)" or a
timeout says little in CI's output without the traceback the daemon wrote to its own log.

Every test harness that starts a swarmpyd process calls `started(log_path)`; tests/conftest.py prints,
for a failed test, the tracebacks and the last lines of what each of those logs got during the test
(a module's shared daemon included)."""

from __future__ import annotations

from pathlib import Path

TAIL_LINES = 30
MAX_TRACEBACK_LINES = 120

_logs: list[Path] = []


def started(log_path: Path) -> None:
    if log_path not in _logs:
        _logs.append(log_path)


def mark() -> dict[Path, int]:
    """How long each known log is now: a test's report shows only what was written after."""
    sizes = {}
    for path in _logs:
        try:
            sizes[path] = path.stat().st_size
        except OSError:
            pass
    return sizes


def report(since: dict[Path, int]) -> str:
    parts = []
    for path in _logs:
        try:
            with open(path, "rb") as log:
                log.seek(since.get(path, 0))
                lines = log.read().decode(errors="replace").splitlines()
        except OSError:
            continue
        if not lines:
            continue
        tracebacks = _tracebacks(lines)
        parts.append(f"==== {path} ====")
        if tracebacks:
            parts.append("-- tracebacks --")
            parts.extend(tracebacks[-MAX_TRACEBACK_LINES:])
        parts.append(f"-- last {TAIL_LINES} lines --")
        parts.extend(lines[-TAIL_LINES:])
    return "\n".join(parts)


def _tracebacks(lines: list[str]) -> list[str]:
    """Each 'Traceback' block with the log line before it (what failed), up to the exception line."""
    found: list[str] = []
    inside = False
    for i, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last)"):
            inside = True
            if i:
                found.append(lines[i - 1])
        if inside:
            found.append(line)
            if line and not line[0].isspace() and not line.startswith(("Traceback", "During handling", "The above")):
                inside = False
    return found
