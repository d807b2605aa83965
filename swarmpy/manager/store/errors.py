"""Store errors. Each names the object; the class says what went wrong."""

from __future__ import annotations


class StoreError(Exception):
    """A write was refused by the store's rules; nothing of the proposal was applied."""


class NotFound(StoreError):
    def __init__(self, kind: str, ref: str) -> None:
        super().__init__(f"no such {kind}: {ref}")
        self.kind = kind
        self.ref = ref


class Ambiguous(StoreError):
    def __init__(self, kind: str, ref: str, matches: int) -> None:
        super().__init__(f"{kind} {ref} is ambiguous ({matches} matches found)")
        self.kind = kind
        self.ref = ref
        self.matches = matches


class Exists(StoreError):
    def __init__(self, kind: str, object_id: str) -> None:
        super().__init__(f"{kind} {object_id} already exists")
        self.kind = kind
        self.object_id = object_id


class NameConflict(StoreError):
    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"{kind} with name {name} already exists")
        self.kind = kind
        self.name = name


class Conflict(StoreError):
    """Optimistic concurrency: the object changed since the writer read it."""

    def __init__(self, kind: str, object_id: str, read_version: int, current_version: int) -> None:
        super().__init__(
            f"update out of sequence: {kind} {object_id} was read at version {read_version}"
            f" but is now at version {current_version}"
        )
        self.kind = kind
        self.object_id = object_id
        self.read_version = read_version
        self.current_version = current_version
