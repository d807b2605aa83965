"""Secrets and configs through the Control stubs: immutable named blobs, data never returned for
secrets, references resolved and checked on service create/update, rm refused while in use."""

from __future__ import annotations

import grpc
import pytest

from swarmpy.api import control_pb2, objects_pb2
from tests.manager.test_controlapi import serve, web_spec

VALUE = b"s3cr3t-value-never-shown"


@pytest.fixture
async def harness(tmp_path):
    async with serve(tmp_path) as h:
        yield h


async def create_secret(h, name="db_password", data=VALUE, **labels):
    spec = objects_pb2.SecretSpec(data=data)
    spec.annotations.name = name
    spec.annotations.labels.update(labels)
    return (await h.control.CreateSecret(control_pb2.CreateSecretRequest(spec=spec))).secret


async def create_config(h, name="app_conf", data=b"port=80\n"):
    spec = objects_pb2.ConfigSpec(data=data)
    spec.annotations.name = name
    return (await h.control.CreateConfig(control_pb2.CreateConfigRequest(spec=spec))).config


async def expect_error(call, code, *fragments):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    for fragment in fragments:
        assert fragment in caught.value.details()
    assert VALUE.decode() not in caught.value.details()
    return caught.value.details()


async def test_secret_data_is_stored_but_never_returned(harness):
    secret = await create_secret(harness, env="prod")
    assert secret.spec.data == b"" and secret.spec.annotations.name == "db_password"
    assert harness.store.view().get("secret", secret.id).spec.data == VALUE
    got = (await harness.control.GetSecret(control_pb2.GetSecretRequest(ref="db_password"))).secret
    assert got.id == secret.id and got.spec.data == b""
    listed = (await harness.control.ListSecrets(control_pb2.ListSecretsRequest())).secrets
    assert [s.id for s in listed] == [secret.id] and listed[0].spec.data == b""
    filters = control_pb2.SecretConfigFilters(labels={"env": "dev"})
    assert not (await harness.control.ListSecrets(control_pb2.ListSecretsRequest(filters=filters))).secrets


async def test_config_data_is_returned(harness):
    config = await create_config(harness)
    assert config.spec.data == b"port=80\n"


@pytest.mark.parametrize(
    "name,data,fragment",
    [
        ("ok", b"", "secret data must be larger than 0 and less than 512000 bytes"),
        ("ok", b"x" * (500 * 1024), "secret data must be larger than 0 and less than 512000 bytes"),
        ("-bad", b"x", 'invalid annotations.name "-bad"'),
        ("", b"x", "invalid annotations.name"),
    ],
)
async def test_bad_secrets_are_refused_and_change_nothing(harness, name, data, fragment):
    before = harness.store.applied_index
    await expect_error(create_secret(harness, name=name, data=data), grpc.StatusCode.INVALID_ARGUMENT, fragment)
    assert harness.store.applied_index == before


async def test_configs_may_be_twice_as_large_as_secrets(harness):
    """swarmkit's MaxConfigSize is 1000 KiB, its MaxSecretSize 500 KiB."""
    config = await create_config(harness, name="big_conf", data=b"x" * (1000 * 1024 - 1))
    assert len(config.spec.data) == 1000 * 1024 - 1
    await expect_error(create_config(harness, name="too_big", data=b"x" * (1000 * 1024)), grpc.StatusCode.INVALID_ARGUMENT,
                       'invalid data "of 1024000 bytes": config data must be larger than 0 and less than 1024000 bytes')


async def test_duplicate_name_is_refused(harness):
    await create_secret(harness)
    await expect_error(create_secret(harness), grpc.StatusCode.ALREADY_EXISTS, "secret db_password already exists")
    # the same name is free among configs
    await create_config(harness, name="db_password")


def spec_with_secret(name="db_password", target="db_password", mode=0o444):
    spec = web_spec()
    spec.task.container.secrets.add(secret_name=name, file=objects_pb2.FileTarget(name=target, uid="0", gid="0", mode=mode))
    return spec


async def test_service_references_are_resolved_and_rm_in_use_refused(harness):
    secret = await create_secret(harness)
    service = (await harness.control.CreateService(control_pb2.CreateServiceRequest(spec=spec_with_secret()))).service
    assert service.spec.task.container.secrets[0].secret_id == secret.id
    details = await expect_error(
        harness.control.RemoveSecret(control_pb2.RemoveSecretRequest(ref="db_password")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.endswith("secret 'db_password' is in use by the following service: web")
    await harness.control.RemoveService(control_pb2.RemoveServiceRequest(ref="web"))
    await harness.control.RemoveSecret(control_pb2.RemoveSecretRequest(ref="db_password"))
    assert harness.store.view().count("secret") == 0


@pytest.mark.parametrize(
    "spec,fragment",
    [
        (spec_with_secret(name="nope", target="x"), "secret not found: nope"),
        (spec_with_secret(target="../x"), 'it must not contain ".."'),
        (spec_with_secret(target="a/../../x"), 'it must not contain ".."'),
        (spec_with_secret(target="dir/"), "names a directory"),
        (spec_with_secret(mode=0o1777), "must be at most 0777"),
    ],
)
async def test_bad_references_are_refused(harness, spec, fragment):
    await create_secret(harness)
    before = harness.store.applied_index
    await expect_error(
        harness.control.CreateService(control_pb2.CreateServiceRequest(spec=spec)), grpc.StatusCode.INVALID_ARGUMENT, fragment
    )
    assert harness.store.applied_index == before


async def test_two_references_to_one_file_are_refused(harness):
    await create_secret(harness)
    await create_secret(harness, name="other")
    spec = spec_with_secret(target="same")
    spec.task.container.secrets.add(secret_name="other", file=objects_pb2.FileTarget(name="/run/secrets/same", mode=0o444))
    await expect_error(
        harness.control.CreateService(control_pb2.CreateServiceRequest(spec=spec)),
        grpc.StatusCode.INVALID_ARGUMENT, "already uses the file /run/secrets/same",
    )


async def test_snapshot_round_trip_keeps_secrets_and_names(harness):
    from swarmpy.manager.store import MemoryStore

    secret = await create_secret(harness)
    restored = MemoryStore()
    restored.restore(harness.store.snapshot())
    assert restored.view().by_name("secret", "db_password").id == secret.id
