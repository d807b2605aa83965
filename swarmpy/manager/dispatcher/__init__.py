"""The dispatcher: the leader's end of the manager ↔ worker protocol (see dispatcher.py for the theory)."""

from .dispatcher import Dispatcher, DispatcherSettings, certificate_identity
from .errors import DispatcherError, DispatcherStopped, SessionInvalid, UnknownNode
from .gate import LEADER_ADDR_KEY, DispatcherGate, leader_redirect

__all__ = [
    "LEADER_ADDR_KEY",
    "Dispatcher",
    "DispatcherError",
    "DispatcherGate",
    "DispatcherSettings",
    "DispatcherStopped",
    "SessionInvalid",
    "UnknownNode",
    "certificate_identity",
    "leader_redirect",
]
