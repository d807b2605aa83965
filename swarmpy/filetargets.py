"""Where secrets and configs land in a container, and the rules a target must follow.

One module for the CLI (which refuses a bad flag before calling the daemon), the control API (which
refuses it again, for any other client) and the worker (which mounts the file): a target names a file,
relative to /run/secrets for a secret and to / for a config, or absolute. It may not climb out of that
directory ("..") nor name a directory (".", empty, a trailing "/"), so what the container sees is
exactly one file where the user asked for it.
"""

from __future__ import annotations

import posixpath

SECRETS_DIR = "/run/secrets"
CONFIGS_DIR = "/"
DEFAULT_MODE = 0o444  # docker's default for both secrets and configs
# swarmkit's MaxSecretSize and MaxConfigSize: the data must be smaller
MAX_DATA_BYTES = {"secret": 500 * 1024, "config": 1000 * 1024}


def target_problem(target: str) -> str | None:
    """Why `target` cannot be a secret's or config's file target, or None if it can."""
    if not target:
        return "a target file name is required"
    if "\x00" in target:
        return "it contains a NUL byte"
    if target.endswith("/"):
        return "it names a directory, not a file"
    parts = [part for part in target.split("/") if part]
    if ".." in parts:
        return 'it must not contain ".." (it would escape the directory it is mounted in)'
    if not parts or "." in parts:
        return 'it must not contain "." components'
    return None


def container_path(kind: str, target: str) -> str:
    """The absolute path in the container of a secret's (kind "secret") or config's file target."""
    if target.startswith("/"):
        return posixpath.normpath(target)
    base = SECRETS_DIR if kind == "secret" else CONFIGS_DIR
    return posixpath.join(base, target)


def parse_mode(text: str) -> int:
    """A file mode as docker reads one (Go's ParseUint base 0: 0400 and 0o400 octal, 0x100 hex, 256
    decimal); anything else, or a mode beyond 0777, raises ValueError."""
    digits = text.replace("_", "")
    lowered = digits.lower()
    try:
        if lowered.startswith("0x"):
            mode = int(digits[2:], 16)
        elif lowered.startswith("0o"):
            mode = int(digits[2:], 8)
        elif lowered.startswith("0b"):
            mode = int(digits[2:], 2)
        elif len(digits) > 1 and digits.startswith("0"):
            mode = int(digits[1:], 8)
        else:
            if not digits.isdigit():
                raise ValueError(text)
            mode = int(digits, 10)
    except ValueError:
        raise ValueError(f'invalid mode specified: "{text}" is not a number (use octal, e.g. 0400)') from None
    if mode > 0o777:
        raise ValueError(f'invalid mode specified: "{text}" is more than 0777')
    return mode
