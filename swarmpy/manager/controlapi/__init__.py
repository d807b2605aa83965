"""The Control API: validation, defaults and the gRPC servicer over the store (see servicer.py)."""

from .errors import ControlError, FailedPrecondition, InvalidArgument
from .servicer import ControlServicer, LeaderGate, LogBroker

__all__ = ["ControlError", "ControlServicer", "FailedPrecondition", "InvalidArgument", "LeaderGate", "LogBroker"]
