"""Secrets and configs in the control API: create, get, list, remove, and the references services hold.

Theory of operation
-------------------
Secrets and configs are immutable named blobs (swarmkit's rules): created whole, never updated, removed
only when no service refers to them. One set of functions serves both kinds; a `_Kind` row says what
differs (the store kind, the spec's fields, whether the data is returned: a secret's never is, not
even to the managers' own clients, while a config comes back whole as docker shows it).

A service spec refers to them by ID and name (SecretReference, ConfigReference). `resolve_references`
runs inside the service's store transaction: it finds each by ID or, when a client sent only a name,
by name, fills in both, and refuses an unknown one, a bad target or two references to one file, so a
service never points at something that is not there. `secret rm` of one in use is refused with the
names of the services using it (docker's message). Values never appear in an error or a log line:
messages name objects only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import grpc

from swarmpy.api import control_pb2, objects_pb2
from swarmpy.filetargets import MAX_DATA_BYTES, container_path, target_problem
from swarmpy.identity import new_id
from swarmpy.manager.store import ReadView, Transaction, retry_conflicts
from swarmpy.manager.store.memory import clone

from .errors import ControlError, InvalidArgument

# swarmkit's rule for secret and config names (validateConfigOrSecretAnnotations).
NAME = re.compile(r"^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$")
MAX_NAME_LENGTH = 64
TEMPLATE_DRIVERS = ("", "golang")


class AlreadyExists(ControlError):
    code = grpc.StatusCode.ALREADY_EXISTS


@dataclass(frozen=True)
class _Kind:
    name: str  # "secret" | "config": the store kind and the word in messages
    object_type: type
    returns_data: bool


SECRET = _Kind("secret", objects_pb2.Secret, returns_data=False)
CONFIG = _Kind("config", objects_pb2.Config, returns_data=True)


def validate_spec(kind: _Kind, spec: Any) -> None:
    """Raise InvalidArgument for a bad name, labels, template driver or data size; never shows the data."""
    name = spec.annotations.name
    if not name or len(name) > MAX_NAME_LENGTH or not NAME.match(name):
        raise InvalidArgument(
            "annotations.name",
            name,
            f"only {MAX_NAME_LENGTH} [a-zA-Z0-9-_.] characters allowed, and the start and end character must be"
            " [a-zA-Z0-9]",
        )
    for key in spec.annotations.labels:
        if not key.strip():
            raise InvalidArgument("annotations.labels key", key, "a label key must not be empty")
    if spec.template_driver not in TEMPLATE_DRIVERS:
        raise InvalidArgument("template_driver", spec.template_driver, 'the only template driver is "golang"')
    size = len(spec.data)
    limit = MAX_DATA_BYTES[kind.name]
    if size == 0 or size >= limit:
        raise InvalidArgument(
            "data", f"of {size} bytes", f"{kind.name} data must be larger than 0 and less than {limit} bytes"
        )


def shown(kind: _Kind, obj: Any) -> Any:
    """The object as a client may see it: a secret without its data."""
    if kind.returns_data:
        return obj
    copy = clone(obj)
    copy.spec.ClearField("data")
    return copy


def matches(obj: Any, filters: control_pb2.SecretConfigFilters) -> bool:
    name = obj.spec.annotations.name
    labels = obj.spec.annotations.labels
    if filters.ids and not any(obj.id.startswith(prefix) for prefix in filters.ids):
        return False
    if filters.names and name not in filters.names:
        return False
    if filters.name_prefixes and not any(name.startswith(prefix) for prefix in filters.name_prefixes):
        return False
    for key, value in filters.labels.items():
        if key not in labels or (value and labels[key] != value):
            return False
    return True


def create(tx: Transaction, kind: _Kind, spec: Any) -> str:
    name = spec.annotations.name
    if tx.by_name(kind.name, name) is not None:
        raise AlreadyExists(f"{kind.name} {name} already exists")
    obj = kind.object_type(id=new_id())
    obj.spec.CopyFrom(spec)
    tx.create(kind.name, obj)
    return obj.id


def remove(tx: Transaction, kind: _Kind, ref: str) -> str:
    obj = tx.resolve(kind.name, ref)
    users = sorted(
        service.spec.annotations.name
        for service in tx.services()
        if any(ref_id == obj.id for ref_id, _ in _references(kind, service.spec.task.container))
    )
    if users:
        plural = "s" if len(users) > 1 else ""
        raise InvalidArgument(
            kind.name,
            obj.spec.annotations.name,
            f"{kind.name} '{obj.spec.annotations.name}' is in use by the following service{plural}:"
            f" {', '.join(users)}",
        )
    tx.delete(kind.name, obj.id)
    return obj.id


def _references(kind: _Kind, container: objects_pb2.ContainerSpec) -> Iterable[tuple[str, str]]:
    if kind is SECRET:
        return [(ref.secret_id, ref.secret_name) for ref in container.secrets]
    return [(ref.config_id, ref.config_name) for ref in container.configs]


def validate_references(container: objects_pb2.ContainerSpec) -> None:
    """The references' own shape (no store needed): a source, a file target that stays where it belongs,
    and no two references to one file in the container."""
    paths: dict[str, str] = {}
    for kind, refs in ((SECRET, container.secrets), (CONFIG, container.configs)):
        for index, ref in enumerate(refs):
            field = f"task.container.{kind.name}s[{index}]"
            ref_id, ref_name = (ref.secret_id, ref.secret_name) if kind is SECRET else (ref.config_id, ref.config_name)
            if not ref_id and not ref_name:
                raise InvalidArgument(field, "", f"a {kind.name} reference needs the {kind.name}'s ID or name")
            problem = target_problem(ref.file.name)
            if problem is not None:
                raise InvalidArgument(f"{field}.file.name", ref.file.name, problem)
            for id_field in ("uid", "gid"):
                value = getattr(ref.file, id_field)
                if value and not value.isdigit():
                    raise InvalidArgument(f"{field}.file.{id_field}", value, "must be a number")
            if ref.file.mode > 0o777:
                raise InvalidArgument(f"{field}.file.mode", oct(ref.file.mode), "must be at most 0777")
            path = container_path(kind.name, ref.file.name)
            if path in paths:
                raise InvalidArgument(
                    f"{field}.file.name", ref.file.name, f"{paths[path]} already uses the file {path} in the container"
                )
            paths[path] = f"{kind.name} {ref_name or ref_id}"


def resolve_references(view: ReadView, container: objects_pb2.ContainerSpec) -> None:
    """Fill in each reference's ID and name from the store; refuse one that names nothing."""
    for kind, refs in ((SECRET, container.secrets), (CONFIG, container.configs)):
        id_field, name_field = f"{kind.name}_id", f"{kind.name}_name"
        for ref in refs:
            ref_id, ref_name = getattr(ref, id_field), getattr(ref, name_field)
            found = view.get(kind.name, ref_id) if ref_id else view.by_name(kind.name, ref_name)
            if found is None or (ref_name and found.spec.annotations.name != ref_name):
                raise InvalidArgument(f"task.container.{kind.name}s", ref_name or ref_id, f"{kind.name} not found: {ref_name or ref_id}")
            setattr(ref, id_field, found.id)
            setattr(ref, name_field, found.spec.annotations.name)


class SecretConfigRPCs:
    """The Secret and Config RPCs of ControlServicer (mixed in; it supplies _store, _unary and _read)."""

    _store: Any

    async def _create(self, kind: _Kind, spec: Any) -> Any:
        validate_spec(kind, spec)
        object_id = await self._store.update(lambda tx: create(tx, kind, spec))
        return shown(kind, self._read(kind.name, object_id))  # type: ignore[attr-defined]

    def _get(self, kind: _Kind, ref: str) -> Any:
        return shown(kind, self._store.view().resolve(kind.name, ref))

    def _list(self, kind: _Kind, filters: control_pb2.SecretConfigFilters) -> list[Any]:
        found = [obj for obj in self._store.view().list(kind.name) if matches(obj, filters)]
        found.sort(key=lambda obj: (obj.spec.annotations.name, obj.id))
        return [shown(kind, obj) for obj in found]

    async def _remove(self, kind: _Kind, ref: str) -> None:
        await retry_conflicts(
            lambda: self._store.update(lambda tx: remove(tx, kind, ref)),  # type: ignore[attr-defined]
            what=f"removing {kind.name} {ref}",
        )

