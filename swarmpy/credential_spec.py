"""Credential specs (`--credential-spec`, the Engine API's Privileges.CredentialSpec): a Windows managed
service account (gMSA) spec named by `file://`, `registry://` or `config://`. swarmpy stores it and hands
it to the engine as docker's executor does (security option `credentialspec=<scheme>://<value>`); an
engine on Linux refuses that option, so a task carrying one is REJECTED there with the engine's reason.
Both doors (the swarmpy CLI through the control API, the docker CLI through the Engine API) get the
same warning saying so when such a spec is created or updated."""

from __future__ import annotations

from swarmpy.api import objects_pb2

SCHEMES = ("config", "file", "registry")

CredentialSpec = objects_pb2.Privileges.CredentialSpec


def parse(text: str) -> CredentialSpec:
    """docker's flag forms (a config by name here; its ID is filled in before the spec is sent). An
    empty value is no credential spec (on `service update`: remove it)."""
    spec = CredentialSpec()
    if not text:
        return spec
    scheme, sep, value = text.partition("://")
    if not sep or scheme not in SCHEMES:
        raise ValueError('invalid credential spec: value must be prefixed with "config://", "file://", or "registry://"')
    setattr(spec, scheme, value)
    return spec


def text(spec: CredentialSpec) -> str:
    """`scheme://value` ('' when unset)."""
    scheme = spec.WhichOneof("source")
    return f"{scheme}://{getattr(spec, scheme)}" if scheme else ""


def security_options(container: objects_pb2.ContainerSpec) -> list[str]:
    """The engine's security options for the container's credential spec (docker's executor's form)."""
    given = text(container.privileges.credential_spec)
    return [f"credentialspec={given}"] if given else []


def warnings(spec: objects_pb2.ServiceSpec) -> list[str]:
    given = text(spec.task.container.privileges.credential_spec)
    if not given:
        return []
    return [f"credential spec {given} is for Windows containers (managed service accounts): "
            "the engines of Linux nodes refuse it, so the service's tasks are rejected there"]
