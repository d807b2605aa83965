"""The container flags' value parsers: what they build, and docker's reasons for what they refuse
(the refusals' texts are what docker 28.2's CLI prints for the same values)."""

from __future__ import annotations

import pytest

from swarmpy.api import objects_pb2
from swarmpy.cli import container_values as values
from swarmpy.cli.container_flags import apply_container_flags, update_container_flags
from swarmpy.cli.errors import FlagError


def test_mount_fields_and_aliases():
    mount = values.parse_mount("type=volume,src=data,dst=/d,ro,volume-label=a=b,volume-driver=local,volume-opt=o=1,volume-nocopy")
    assert (mount.type, mount.source, mount.target, mount.read_only) == (objects_pb2.Mount.VOLUME, "data", "/d", True)
    assert dict(mount.volume_options.labels) == {"a": "b"} and mount.volume_options.no_copy
    assert mount.volume_options.driver_config.name == "local" and dict(mount.volume_options.driver_config.options) == {"o": "1"}
    tmpfs = values.parse_mount("type=tmpfs,destination=/t,tmpfs-size=1m,tmpfs-mode=1770,readonly=false")
    assert (tmpfs.tmpfs_options.size_bytes, tmpfs.tmpfs_options.mode, tmpfs.read_only) == (1 << 20, 0o1770, False)
    assert values.parse_mount("target=/anon").type == objects_pb2.Mount.VOLUME  # docker's default type


@pytest.mark.parametrize("text, reason", [
    ("target", "invalid field 'target' must be a key=value pair"),
    ("source=/x", "target is required"),
    ("type=bind,target=/x,volume-nocopy", "cannot mix 'volume-*' options with mount type 'bind'"),
    ("type=volume,target=/x,tmpfs-size=1m", "cannot mix 'tmpfs-*' options with mount type 'volume'"),
    ("bogus=1,target=/x", "unexpected key 'bogus' in 'bogus=1'"),
    ("type=tmpfs,target=/x,tmpfs-size=abc", "invalid value for tmpfs-size: abc"),
    ("type=bind,target=/x,readonly=maybe", "invalid value for readonly: maybe"),
    ("type=foo,target=/x", 'invalid mount config for type "foo": mount type unknown'),
    ("type=bind,src=/a,dst=/x,bind-propagation=foo", 'invalid mount config for type "bind": invalid propagation mode: foo'),
])
def test_mount_refusals_read_as_docker(text, reason):
    with pytest.raises(ValueError) as refused:
        values.parse_mount(text)
    assert str(refused.value) == reason


def test_ulimits():
    assert values.parse_ulimit("nofile=1024:2048") == objects_pb2.Ulimit(name="nofile", soft=1024, hard=2048)
    assert values.parse_ulimit("nproc=10") == objects_pb2.Ulimit(name="nproc", soft=10, hard=10)
    for text, reason in (("nofile=abc", 'strconv.ParseInt: parsing "abc": invalid syntax'),
                         ("nofile", "invalid ulimit argument: nofile"),
                         ("bogus=1", "invalid ulimit type: bogus"),
                         ("nofile=3:2", "ulimit soft limit must be less than or equal to hard limit: 3 > 2")):
        with pytest.raises(ValueError, match="^" + reason.replace("(", r"\(") + "$"):
            values.parse_ulimit(text)


def test_sysctls_capabilities_generic_resources():
    assert values.parse_sysctl("net.core.somaxconn=1") == ("net.core.somaxconn", "1")
    with pytest.raises(ValueError, match="^sysctl 'foo' is not allowed$"):
        values.parse_sysctl("foo")
    with pytest.raises(ValueError, match="is not allowed"):
        values.parse_sysctl("vm.swappiness=1")  # not namespaced: the engine would refuse it
    assert values.normalize_capability("net_admin") == "CAP_NET_ADMIN"
    with pytest.raises(ValueError, match='^unknown capability: "CAP_FOO"$'):
        values.normalize_capability("foo")
    assert values.effective_capabilities(["CAP_A"], ["CAP_A", "CAP_B"]) == (["CAP_A"], ["CAP_B"])
    assert values.parse_generic_resource("gpu=2") == objects_pb2.GenericResource(kind="gpu", discrete=2)
    assert values.parse_generic_resource("gpu=U1", named_allowed=True).named == "U1"
    with pytest.raises(ValueError, match="expected `name=value`"):
        values.parse_generic_resource("gpu")
    with pytest.raises(ValueError, match="only ask for a count"):
        values.parse_generic_resource("gpu=U1")


def _create(**options):
    spec = objects_pb2.ServiceSpec()
    apply_container_flags(spec, options)
    return spec


def test_untouched_sections_stay_unset():
    spec = _create()
    assert not spec.task.HasField("resources") and not spec.task.HasField("log_driver")
    assert not spec.task.container.HasField("init")


def test_update_merges_lists_by_key_as_docker():
    spec = _create(mount=("type=volume,src=b,dst=/b", "type=volume,src=a,dst=/a"), cap_add=("NET_ADMIN",),
                   ulimit=("nofile=1",), group=("20",), generic_resource=("gpu=1",), log_driver="json-file",
                   log_opt=("max-size=1m",))
    update_container_flags(spec, {"mount_add": ("type=tmpfs,dst=/b",), "mount_rm": ("/a",), "cap_drop": ("NET_ADMIN",),
                                  "ulimit_rm": ("nofile",), "ulimit_add": ("core=0",), "group_add": ("10",),
                                  "generic_resource_rm": ("gpu",), "generic_resource_add": ("fpga=2",),
                                  "log_opt": ("max-file=2",), "init": False})
    container = spec.task.container
    assert [(m.type, m.target) for m in container.mounts] == [(objects_pb2.Mount.TMPFS, "/b")]
    assert list(container.capability_add) == [] and list(container.capability_drop) == ["CAP_NET_ADMIN"]
    assert [u.name for u in container.ulimits] == ["core"] and list(container.groups) == ["10", "20"]
    assert [(g.kind, g.discrete) for g in spec.task.resources.reservations.generic] == [("fpga", 2)]
    assert dict(spec.task.log_driver.options) == {"max-size": "1m", "max-file": "2"}
    assert container.HasField("init") and container.init is False


def test_log_opt_without_a_driver_is_refused():
    with pytest.raises(FlagError, match="--log-driver"):
        _create(log_opt=("max-size=1m",))


def test_credential_spec_forms_and_docker_refusal():
    for given, field, value in (("file://spec.json", "file", "spec.json"), ("registry://gmsa", "registry", "gmsa"),
                                ("config://credspec", "config", "credspec")):
        spec = _create(credential_spec=given).task.container.privileges.credential_spec
        assert (spec.WhichOneof("source"), getattr(spec, field)) == (field, value)
    with pytest.raises(FlagError) as refused:
        _create(credential_spec="spec.json")
    assert str(refused.value) == ('invalid argument "spec.json" for "--credential-spec" flag: invalid credential spec: '
                                  'value must be prefixed with "config://", "file://", or "registry://"')
    spec = _create(credential_spec="file://a.json")
    update_container_flags(spec, {"credential_spec": "registry://b"})
    assert spec.task.container.privileges.credential_spec.registry == "b"
    update_container_flags(spec, {"credential_spec": ""})  # docker's way to remove it
    assert not spec.task.container.HasField("privileges")
    update_container_flags(spec, {})
    assert not spec.task.container.HasField("privileges")
