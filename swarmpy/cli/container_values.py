"""Parsers for the container flags of `service create/update`: --mount, --ulimit, --sysctl, --cap-add/-drop,
--generic-resource, --log-opt. Pure functions from the flag's text to protobuf messages (or plain values);
a bad value raises ValueError with docker's reason, which the flag layer wraps as
`invalid argument "<value>" for "--<flag>" flag: <reason>`.
"""

from __future__ import annotations

import csv

from swarmpy import units
from swarmpy.api import objects_pb2

MOUNT_TYPES = {"bind": objects_pb2.Mount.BIND, "volume": objects_pb2.Mount.VOLUME, "tmpfs": objects_pb2.Mount.TMPFS}
BIND_PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")
_TRUE = ("1", "t", "true", "True", "TRUE")
_FALSE = ("0", "f", "false", "False", "FALSE")


def parse_go_bool(text: str) -> bool:
    """strconv.ParseBool."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


def _option_bool(key: str, value: str) -> bool:
    try:
        return parse_go_bool(value)
    except ValueError:
        raise ValueError(f"invalid value for {key}: {value}") from None


def _set_on_map(mapping, text: str) -> None:
    key, _, value = text.partition("=")
    mapping[key] = value


def parse_mount(text: str) -> objects_pb2.Mount:
    """docker's --mount CSV: type=bind|volume|tmpfs, source/src, target/dst/destination, readonly/ro,
    bind-propagation, volume-nocopy, volume-label, volume-driver, volume-opt, tmpfs-size, tmpfs-mode."""
    mount = objects_pb2.Mount()
    kind = ""
    touched = {"bind": False, "volume": False, "tmpfs": False}
    try:
        fields = next(csv.reader([text]))
    except (csv.Error, StopIteration):
        fields = [text]
    for raw in fields:
        key, eq, value = raw.partition("=")
        key = key.strip().lower()
        if not eq:
            if key in ("readonly", "ro"):
                mount.read_only = True
                continue
            if key == "volume-nocopy":
                mount.volume_options.no_copy = True
                touched["volume"] = True
                continue
            raise ValueError(f"invalid field '{raw}' must be a key=value pair")
        if key == "type":
            kind = value.lower()
        elif key in ("source", "src"):
            mount.source = value
        elif key in ("target", "dst", "destination"):
            mount.target = value
        elif key in ("readonly", "ro"):
            mount.read_only = _option_bool(key, value)
        elif key == "bind-propagation":
            mount.bind_options.propagation = value.lower()
            touched["bind"] = True
        elif key == "volume-nocopy":
            mount.volume_options.no_copy = _option_bool(key, value)
            touched["volume"] = True
        elif key == "volume-label":
            _set_on_map(mount.volume_options.labels, value)
            touched["volume"] = True
        elif key == "volume-driver":
            mount.volume_options.driver_config.name = value
            touched["volume"] = True
        elif key == "volume-opt":
            _set_on_map(mount.volume_options.driver_config.options, value)
            touched["volume"] = True
        elif key == "tmpfs-size":
            try:
                mount.tmpfs_options.size_bytes = units.parse_memory_bytes(value)
            except ValueError:
                raise ValueError(f"invalid value for {key}: {value}") from None
            touched["tmpfs"] = True
        elif key == "tmpfs-mode":
            try:
                mount.tmpfs_options.mode = int(value, 8)
            except ValueError:
                raise ValueError(f"invalid value for {key}: {value}") from None
            touched["tmpfs"] = True
        else:
            raise ValueError(f"unexpected key '{key}' in '{raw}'")
    kind = kind or "volume"
    if not mount.target:
        raise ValueError("target is required")
    for family, used in touched.items():
        if used and kind != family:
            raise ValueError(f"cannot mix '{family}-*' options with mount type '{kind}'")
    if kind not in MOUNT_TYPES:
        raise ValueError(f'invalid mount config for type "{kind}": mount type unknown')
    if mount.bind_options.propagation and mount.bind_options.propagation not in BIND_PROPAGATIONS:
        raise ValueError(f'invalid mount config for type "bind": invalid propagation mode: {mount.bind_options.propagation}')
    if kind == "bind" and not mount.source:
        raise ValueError('invalid mount config for type "bind": field Source must not be empty')
    if kind == "tmpfs" and mount.source:
        raise ValueError('invalid mount config for type "tmpfs": field Source must not be specified')
    mount.type = MOUNT_TYPES[kind]
    return mount


ULIMIT_NAMES = ("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
                "rss", "rtprio", "rttime", "sigpending", "stack")


def _parse_int64(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax') from None


def parse_ulimit(text: str) -> objects_pb2.Ulimit:
    """`nofile=1024[:2048]` (go-units ParseUlimit): the hard limit defaults to the soft one."""
    name, eq, limits = text.partition("=")
    if not eq:
        raise ValueError(f"invalid ulimit argument: {text}")
    if name not in ULIMIT_NAMES:
        raise ValueError(f"invalid ulimit type: {name}")
    parts = limits.split(":")
    if len(parts) > 2:
        raise ValueError(f"too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`")
    soft = _parse_int64(parts[0])
    hard = _parse_int64(parts[1]) if len(parts) == 2 else soft
    if soft > hard:
        raise ValueError(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
    return objects_pb2.Ulimit(name=name, soft=soft, hard=hard)


# The sysctls the engine lets a container set: those namespaced by the kernel (docker's ValidateSysctl).
_NAMESPACED_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                       "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")
_NAMESPACED_PREFIXES = ("fs.mqueue.", "net.")


def parse_sysctl(text: str) -> tuple[str, str]:
    key, eq, value = text.partition("=")
    if eq and (key in _NAMESPACED_SYSCTLS or key.startswith(_NAMESPACED_PREFIXES)):
        return key, value
    raise ValueError(f"sysctl '{text}' is not allowed")


CAPABILITIES = frozenset(
    "CAP_" + name
    for name in (
        "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE "
        "NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT "
        "SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE "
        "AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ "
        "PERFMON BPF CHECKPOINT_RESTORE"
    ).split()
)


def normalize_capability(text: str) -> str:
    """`net_admin` -> CAP_NET_ADMIN, `all` -> ALL, as docker normalizes; unknown names are refused."""
    name = text.strip().upper()
    if name == "ALL":
        return name
    if not name.startswith("CAP_"):
        name = "CAP_" + name
    if name not in CAPABILITIES:
        raise ValueError(f'unknown capability: "{name}"')
    return name


def effective_capabilities(add: list[str], drop: list[str]) -> tuple[list[str], list[str]]:
    """docker's rule for a capability both added and dropped: adding wins, unless ALL is dropped
    (then only what is named in add is kept). Both lists come back sorted and without duplicates."""
    added, dropped = set(add), set(drop)
    if "ALL" in added:
        added = {"ALL"}
    if "ALL" not in dropped:
        dropped -= added
    if "ALL" in dropped:
        dropped = {"ALL"}
    return sorted(added), sorted(dropped)


def parse_generic_resource(text: str, *, named_allowed: bool = False) -> objects_pb2.GenericResource:
    """`gpu=2` (a count) or, for what a node offers, `gpu=UUID` (one named unit). A service can only
    ask for counts, as swarmkit allows."""
    kind, eq, value = text.partition("=")
    kind, value = kind.strip(), value.strip()
    if not eq or not kind or not value:
        raise ValueError(f"invalid generic-resource format `{text}` expected `name=value`")
    try:
        count = int(value, 10)
    except ValueError:
        if not named_allowed:
            raise ValueError(f"invalid generic-resource request `{text}`: a service can only ask for a count (kind=N)") from None
        return objects_pb2.GenericResource(kind=kind, named=value)
    if count < 0:
        raise ValueError(f"invalid generic-resource request `{text}`: the count cannot be negative")
    return objects_pb2.GenericResource(kind=kind, discrete=count)


def generic_resource_key(resource: objects_pb2.GenericResource) -> tuple[str, str]:
    """What makes two generic resources the same entry: the kind, and the name for a named one."""
    return resource.kind, resource.named if resource.WhichOneof("value") == "named" else ""


def generic_resource_text(resource: objects_pb2.GenericResource) -> str:
    value = resource.named if resource.WhichOneof("value") == "named" else str(resource.discrete)
    return f"{resource.kind}={value}"


def parse_driver_option(text: str) -> tuple[str, str]:
    """--log-opt / --volume-opt `k=v`; a bare `k` has an empty value, as docker's ConvertKVStringsToMap."""
    key, _, value = text.partition("=")
    return key, value
