"""The managers' replicated object store; see memory.py for the theory of operation."""

from .errors import Ambiguous, Conflict, Exists, NameConflict, NotFound, StoreError
from .memory import Change, Commit, MemoryStore, ReadView, Transaction, Watch
from .retry import retry_conflicts

__all__ = [
    "Ambiguous",
    "Change",
    "Commit",
    "Conflict",
    "Exists",
    "MemoryStore",
    "NameConflict",
    "NotFound",
    "ReadView",
    "StoreError",
    "Transaction",
    "Watch",
    "retry_conflicts",
]
