"""Building servicers whose every method does the same thing (forward, route, refuse)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import FileDescriptor

MethodFactory = Callable[[str], Callable[..., Any]]


def install_methods(
    cls: type, file: FileDescriptor, service: str, unary: MethodFactory, server_streaming: MethodFactory
) -> None:
    """Give `cls` one method per RPC of `service`, made by the factory matching the RPC's kind."""
    for method in file.services_by_name[service].methods:
        make = server_streaming if method.server_streaming else unary
        handler = make(method.name)
        handler.__name__ = method.name
        setattr(cls, method.name, handler)
