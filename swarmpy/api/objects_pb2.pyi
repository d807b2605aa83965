from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NodeRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WORKER: _ClassVar[NodeRole]
    MANAGER: _ClassVar[NodeRole]

class TaskState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NEW: _ClassVar[TaskState]
    PENDING: _ClassVar[TaskState]
    ASSIGNED: _ClassVar[TaskState]
    ACCEPTED: _ClassVar[TaskState]
    PREPARING: _ClassVar[TaskState]
    READY: _ClassVar[TaskState]
    STARTING: _ClassVar[TaskState]
    RUNNING: _ClassVar[TaskState]
    COMPLETE: _ClassVar[TaskState]
    SHUTDOWN: _ClassVar[TaskState]
    FAILED: _ClassVar[TaskState]
    REJECTED: _ClassVar[TaskState]
    REMOVE: _ClassVar[TaskState]
    ORPHANED: _ClassVar[TaskState]
WORKER: NodeRole
MANAGER: NodeRole
NEW: TaskState
PENDING: TaskState
ASSIGNED: TaskState
ACCEPTED: TaskState
PREPARING: TaskState
READY: TaskState
STARTING: TaskState
RUNNING: TaskState
COMPLETE: TaskState
SHUTDOWN: TaskState
FAILED: TaskState
REJECTED: TaskState
REMOVE: TaskState
ORPHANED: TaskState

class Version(_message.Message):
    __slots__ = ("index",)
    INDEX_FIELD_NUMBER: _ClassVar[int]
    index: int
    def __init__(self, index: _Optional[int] = ...) -> None: ...

class Meta(_message.Message):
    __slots__ = ("version", "created_at", "updated_at")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    version: Version
    created_at: int
    updated_at: int
    def __init__(self, version: _Optional[_Union[Version, _Mapping]] = ..., created_at: _Optional[int] = ..., updated_at: _Optional[int] = ...) -> None: ...

class Annotations(_message.Message):
    __slots__ = ("name", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    name: str
    labels: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Platform(_message.Message):
    __slots__ = ("architecture", "os")
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    OS_FIELD_NUMBER: _ClassVar[int]
    architecture: str
    os: str
    def __init__(self, architecture: _Optional[str] = ..., os: _Optional[str] = ...) -> None: ...

class Resources(_message.Message):
    __slots__ = ("nano_cpus", "memory_bytes", "pids", "generic")
    NANO_CPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    PIDS_FIELD_NUMBER: _ClassVar[int]
    GENERIC_FIELD_NUMBER: _ClassVar[int]
    nano_cpus: int
    memory_bytes: int
    pids: int
    generic: _containers.RepeatedCompositeFieldContainer[GenericResource]
    def __init__(self, nano_cpus: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., pids: _Optional[int] = ..., generic: _Optional[_Iterable[_Union[GenericResource, _Mapping]]] = ...) -> None: ...

class GenericResource(_message.Message):
    __slots__ = ("kind", "discrete", "named")
    KIND_FIELD_NUMBER: _ClassVar[int]
    DISCRETE_FIELD_NUMBER: _ClassVar[int]
    NAMED_FIELD_NUMBER: _ClassVar[int]
    kind: str
    discrete: int
    named: str
    def __init__(self, kind: _Optional[str] = ..., discrete: _Optional[int] = ..., named: _Optional[str] = ...) -> None: ...

class Driver(_message.Message):
    __slots__ = ("name", "options")
    class OptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    options: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., options: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ResourceRequirements(_message.Message):
    __slots__ = ("limits", "reservations")
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    RESERVATIONS_FIELD_NUMBER: _ClassVar[int]
    limits: Resources
    reservations: Resources
    def __init__(self, limits: _Optional[_Union[Resources, _Mapping]] = ..., reservations: _Optional[_Union[Resources, _Mapping]] = ...) -> None: ...

class NodeSpec(_message.Message):
    __slots__ = ("annotations", "desired_role", "availability")
    class Availability(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ACTIVE: _ClassVar[NodeSpec.Availability]
        PAUSE: _ClassVar[NodeSpec.Availability]
        DRAIN: _ClassVar[NodeSpec.Availability]
    ACTIVE: NodeSpec.Availability
    PAUSE: NodeSpec.Availability
    DRAIN: NodeSpec.Availability
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    DESIRED_ROLE_FIELD_NUMBER: _ClassVar[int]
    AVAILABILITY_FIELD_NUMBER: _ClassVar[int]
    annotations: Annotations
    desired_role: NodeRole
    availability: NodeSpec.Availability
    def __init__(self, annotations: _Optional[_Union[Annotations, _Mapping]] = ..., desired_role: _Optional[_Union[NodeRole, str]] = ..., availability: _Optional[_Union[NodeSpec.Availability, str]] = ...) -> None: ...

class EngineDescription(_message.Message):
    __slots__ = ("engine_version", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ENGINE_VERSION_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    engine_version: str
    labels: _containers.ScalarMap[str, str]
    def __init__(self, engine_version: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class NodeDescription(_message.Message):
    __slots__ = ("hostname", "platform", "resources", "engine", "data_path_addr", "tls_info")
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    DATA_PATH_ADDR_FIELD_NUMBER: _ClassVar[int]
    TLS_INFO_FIELD_NUMBER: _ClassVar[int]
    hostname: str
    platform: Platform
    resources: Resources
    engine: EngineDescription
    data_path_addr: str
    tls_info: NodeTLSInfo
    def __init__(self, hostname: _Optional[str] = ..., platform: _Optional[_Union[Platform, _Mapping]] = ..., resources: _Optional[_Union[Resources, _Mapping]] = ..., engine: _Optional[_Union[EngineDescription, _Mapping]] = ..., data_path_addr: _Optional[str] = ..., tls_info: _Optional[_Union[NodeTLSInfo, _Mapping]] = ...) -> None: ...

class NodeTLSInfo(_message.Message):
    __slots__ = ("trust_root", "cert_issuer_subject", "cert_issuer_public_key")
    TRUST_ROOT_FIELD_NUMBER: _ClassVar[int]
    CERT_ISSUER_SUBJECT_FIELD_NUMBER: _ClassVar[int]
    CERT_ISSUER_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    trust_root: bytes
    cert_issuer_subject: bytes
    cert_issuer_public_key: bytes
    def __init__(self, trust_root: _Optional[bytes] = ..., cert_issuer_subject: _Optional[bytes] = ..., cert_issuer_public_key: _Optional[bytes] = ...) -> None: ...

class NodeStatus(_message.Message):
    __slots__ = ("state", "message", "addr")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        UNKNOWN: _ClassVar[NodeStatus.State]
        DOWN: _ClassVar[NodeStatus.State]
        READY: _ClassVar[NodeStatus.State]
        DISCONNECTED: _ClassVar[NodeStatus.State]
    UNKNOWN: NodeStatus.State
    DOWN: NodeStatus.State
    READY: NodeStatus.State
    DISCONNECTED: NodeStatus.State
    STATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ADDR_FIELD_NUMBER: _ClassVar[int]
    state: NodeStatus.State
    message: str
    addr: str
    def __init__(self, state: _Optional[_Union[NodeStatus.State, str]] = ..., message: _Optional[str] = ..., addr: _Optional[str] = ...) -> None: ...

class ManagerStatus(_message.Message):
    __slots__ = ("raft_id", "addr", "leader", "reachability")
    class Reachability(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        UNKNOWN: _ClassVar[ManagerStatus.Reachability]
        UNREACHABLE: _ClassVar[ManagerStatus.Reachability]
        REACHABLE: _ClassVar[ManagerStatus.Reachability]
    UNKNOWN: ManagerStatus.Reachability
    UNREACHABLE: ManagerStatus.Reachability
    REACHABLE: ManagerStatus.Reachability
    RAFT_ID_FIELD_NUMBER: _ClassVar[int]
    ADDR_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    REACHABILITY_FIELD_NUMBER: _ClassVar[int]
    raft_id: int
    addr: str
    leader: bool
    reachability: ManagerStatus.Reachability
    def __init__(self, raft_id: _Optional[int] = ..., addr: _Optional[str] = ..., leader: _Optional[bool] = ..., reachability: _Optional[_Union[ManagerStatus.Reachability, str]] = ...) -> None: ...

class IssuanceStatus(_message.Message):
    __slots__ = ("state", "err")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        UNKNOWN: _ClassVar[IssuanceStatus.State]
        RENEW: _ClassVar[IssuanceStatus.State]
        PENDING: _ClassVar[IssuanceStatus.State]
        ISSUED: _ClassVar[IssuanceStatus.State]
        FAILED: _ClassVar[IssuanceStatus.State]
        ROTATE: _ClassVar[IssuanceStatus.State]
    UNKNOWN: IssuanceStatus.State
    RENEW: IssuanceStatus.State
    PENDING: IssuanceStatus.State
    ISSUED: IssuanceStatus.State
    FAILED: IssuanceStatus.State
    ROTATE: IssuanceStatus.State
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERR_FIELD_NUMBER: _ClassVar[int]
    state: IssuanceStatus.State
    err: str
    def __init__(self, state: _Optional[_Union[IssuanceStatus.State, str]] = ..., err: _Optional[str] = ...) -> None: ...

class Certificate(_message.Message):
    __slots__ = ("role", "csr", "certificate", "cn", "status")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CSR_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    CN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    role: NodeRole
    csr: bytes
    certificate: bytes
    cn: str
    status: IssuanceStatus
    def __init__(self, role: _Optional[_Union[NodeRole, str]] = ..., csr: _Optional[bytes] = ..., certificate: _Optional[bytes] = ..., cn: _Optional[str] = ..., status: _Optional[_Union[IssuanceStatus, _Mapping]] = ...) -> None: ...

class Node(_message.Message):
    __slots__ = ("id", "meta", "spec", "description", "status", "manager_status", "role", "certificate", "attachments")
    ID_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MANAGER_STATUS_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    meta: Meta
    spec: NodeSpec
    description: NodeDescription
    status: NodeStatus
    manager_status: ManagerStatus
    role: NodeRole
    certificate: Certificate
    attachments: _containers.RepeatedCompositeFieldContainer[NetworkAttachment]
    def __init__(self, id: _Optional[str] = ..., meta: _Optional[_Union[Meta, _Mapping]] = ..., spec: _Optional[_Union[NodeSpec, _Mapping]] = ..., description: _Optional[_Union[NodeDescription, _Mapping]] = ..., status: _Optional[_Union[NodeStatus, _Mapping]] = ..., manager_status: _Optional[_Union[ManagerStatus, _Mapping]] = ..., role: _Optional[_Union[NodeRole, str]] = ..., certificate: _Optional[_Union[Certificate, _Mapping]] = ..., attachments: _Optional[_Iterable[_Union[NetworkAttachment, _Mapping]]] = ...) -> None: ...

class HealthConfig(_message.Message):
    __slots__ = ("test", "interval", "timeout", "retries", "start_period")
    TEST_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    START_PERIOD_FIELD_NUMBER: _ClassVar[int]
    test: _containers.RepeatedScalarFieldContainer[str]
    interval: int
    timeout: int
    retries: int
    start_period: int
    def __init__(self, test: _Optional[_Iterable[str]] = ..., interval: _Optional[int] = ..., timeout: _Optional[int] = ..., retries: _Optional[int] = ..., start_period: _Optional[int] = ...) -> None: ...

class Mount(_message.Message):
    __slots__ = ("type", "source", "target", "read_only", "bind_options", "volume_options", "tmpfs_options")
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        BIND: _ClassVar[Mount.Type]
        VOLUME: _ClassVar[Mount.Type]
        TMPFS: _ClassVar[Mount.Type]
    BIND: Mount.Type
    VOLUME: Mount.Type
    TMPFS: Mount.Type
    class BindOptions(_message.Message):
        __slots__ = ("propagation",)
        PROPAGATION_FIELD_NUMBER: _ClassVar[int]
        propagation: str
        def __init__(self, propagation: _Optional[str] = ...) -> None: ...
    class VolumeOptions(_message.Message):
        __slots__ = ("no_copy", "labels", "driver_config")
        class LabelsEntry(_message.Message):
            __slots__ = ("key", "value")
            KEY_FIELD_NUMBER: _ClassVar[int]
            VALUE_FIELD_NUMBER: _ClassVar[int]
            key: str
            value: str
            def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
        NO_COPY_FIELD_NUMBER: _ClassVar[int]
        LABELS_FIELD_NUMBER: _ClassVar[int]
        DRIVER_CONFIG_FIELD_NUMBER: _ClassVar[int]
        no_copy: bool
        labels: _containers.ScalarMap[str, str]
        driver_config: Driver
        def __init__(self, no_copy: _Optional[bool] = ..., labels: _Optional[_Mapping[str, str]] = ..., driver_config: _Optional[_Union[Driver, _Mapping]] = ...) -> None: ...
    class TmpfsOptions(_message.Message):
        __slots__ = ("size_bytes", "mode")
        SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
        MODE_FIELD_NUMBER: _ClassVar[int]
        size_bytes: int
        mode: int
        def __init__(self, size_bytes: _Optional[int] = ..., mode: _Optional[int] = ...) -> None: ...
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    BIND_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    VOLUME_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    TMPFS_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    type: Mount.Type
    source: str
    target: str
    read_only: bool
    bind_options: Mount.BindOptions
    volume_options: Mount.VolumeOptions
    tmpfs_options: Mount.TmpfsOptions
    def __init__(self, type: _Optional[_Union[Mount.Type, str]] = ..., source: _Optional[str] = ..., target: _Optional[str] = ..., read_only: _Optional[bool] = ..., bind_options: _Optional[_Union[Mount.BindOptions, _Mapping]] = ..., volume_options: _Optional[_Union[Mount.VolumeOptions, _Mapping]] = ..., tmpfs_options: _Optional[_Union[Mount.TmpfsOptions, _Mapping]] = ...) -> None: ...

class Ulimit(_message.Message):
    __slots__ = ("name", "soft", "hard")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOFT_FIELD_NUMBER: _ClassVar[int]
    HARD_FIELD_NUMBER: _ClassVar[int]
    name: str
    soft: int
    hard: int
    def __init__(self, name: _Optional[str] = ..., soft: _Optional[int] = ..., hard: _Optional[int] = ...) -> None: ...

class ContainerSpec(_message.Message):
    __slots__ = ("image", "labels", "command", "args", "env", "dir", "user", "hostname", "stop_grace_period", "tty", "healthcheck", "mounts", "stop_signal", "secrets", "configs", "init", "read_only", "sysctls", "capability_add", "capability_drop", "ulimits", "groups", "isolation", "privileges", "dns_config", "hosts")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class SysctlsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    DIR_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    STOP_GRACE_PERIOD_FIELD_NUMBER: _ClassVar[int]
    TTY_FIELD_NUMBER: _ClassVar[int]
    HEALTHCHECK_FIELD_NUMBER: _ClassVar[int]
    MOUNTS_FIELD_NUMBER: _ClassVar[int]
    STOP_SIGNAL_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    CONFIGS_FIELD_NUMBER: _ClassVar[int]
    INIT_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    SYSCTLS_FIELD_NUMBER: _ClassVar[int]
    CAPABILITY_ADD_FIELD_NUMBER: _ClassVar[int]
    CAPABILITY_DROP_FIELD_NUMBER: _ClassVar[int]
    ULIMITS_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    ISOLATION_FIELD_NUMBER: _ClassVar[int]
    PRIVILEGES_FIELD_NUMBER: _ClassVar[int]
    DNS_CONFIG_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    image: str
    labels: _containers.ScalarMap[str, str]
    command: _containers.RepeatedScalarFieldContainer[str]
    args: _containers.RepeatedScalarFieldContainer[str]
    env: _containers.RepeatedScalarFieldContainer[str]
    dir: str
    user: str
    hostname: str
    stop_grace_period: int
    tty: bool
    healthcheck: HealthConfig
    mounts: _containers.RepeatedCompositeFieldContainer[Mount]
    stop_signal: str
    secrets: _containers.RepeatedCompositeFieldContainer[SecretReference]
    configs: _containers.RepeatedCompositeFieldContainer[ConfigReference]
    init: bool
    read_only: bool
    sysctls: _containers.ScalarMap[str, str]
    capability_add: _containers.RepeatedScalarFieldContainer[str]
    capability_drop: _containers.RepeatedScalarFieldContainer[str]
    ulimits: _containers.RepeatedCompositeFieldContainer[Ulimit]
    groups: _containers.RepeatedScalarFieldContainer[str]
    isolation: str
    privileges: Privileges
    dns_config: DNSConfig
    hosts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, image: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., command: _Optional[_Iterable[str]] = ..., args: _Optional[_Iterable[str]] = ..., env: _Optional[_Iterable[str]] = ..., dir: _Optional[str] = ..., user: _Optional[str] = ..., hostname: _Optional[str] = ..., stop_grace_period: _Optional[int] = ..., tty: _Optional[bool] = ..., healthcheck: _Optional[_Union[HealthConfig, _Mapping]] = ..., mounts: _Optional[_Iterable[_Union[Mount, _Mapping]]] = ..., stop_signal: _Optional[str] = ..., secrets: _Optional[_Iterable[_Union[SecretReference, _Mapping]]] = ..., configs: _Optional[_Iterable[_Union[ConfigReference, _Mapping]]] = ..., init: _Optional[bool] = ..., read_only: _Optional[bool] = ..., sysctls: _Optional[_Mapping[str, str]] = ..., capability_add: _Optional[_Iterable[str]] = ..., capability_drop: _Optional[_Iterable[str]] = ..., ulimits: _Optional[_Iterable[_Union[Ulimit, _Mapping]]] = ..., groups: _Optional[_Iterable[str]] = ..., isolation: _Optional[str] = ..., privileges: _Optional[_Union[Privileges, _Mapping]] = ..., dns_config: _Optional[_Union[DNSConfig, _Mapping]] = ..., hosts: _Optional[_Iterable[str]] = ...) -> None: ...

class Privileges(_message.Message):
    __slots__ = ("credential_spec",)
    class CredentialSpec(_message.Message):
        __slots__ = ("file", "registry", "config")
        FILE_FIELD_NUMBER: _ClassVar[int]
        REGISTRY_FIELD_NUMBER: _ClassVar[int]
        CONFIG_FIELD_NUMBER: _ClassVar[int]
        file: str
        registry: str
        config: str
        def __init__(self, file: _Optional[str] = ..., registry: _Optional[str] = ..., config: _Optional[str] = ...) -> None: ...
    CREDENTIAL_SPEC_FIELD_NUMBER: _ClassVar[int]
    credential_spec: Privileges.CredentialSpec
    def __init__(self, credential_spec: _Optional[_Union[Privileges.CredentialSpec, _Mapping]] = ...) -> None: ...

class DNSConfig(_message.Message):
    __slots__ = ("nameservers", "search", "options")
    NAMESERVERS_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    nameservers: _containers.RepeatedScalarFieldContainer[str]
    search: _containers.RepeatedScalarFieldContainer[str]
    options: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, nameservers: _Optional[_Iterable[str]] = ..., search: _Optional[_Iterable[str]] = ..., options: _Optional[_Iterable[str]] = ...) -> None: ...

class RestartPolicy(_message.Message):
    __slots__ = ("condition", "delay", "max_attempts", "window")
    class Condition(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        NONE: _ClassVar[RestartPolicy.Condition]
        ON_FAILURE: _ClassVar[RestartPolicy.Condition]
        ANY: _ClassVar[RestartPolicy.Condition]
    NONE: RestartPolicy.Condition
    ON_FAILURE: RestartPolicy.Condition
    ANY: RestartPolicy.Condition
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    DELAY_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    condition: RestartPolicy.Condition
    delay: int
    max_attempts: int
    window: int
    def __init__(self, condition: _Optional[_Union[RestartPolicy.Condition, str]] = ..., delay: _Optional[int] = ..., max_attempts: _Optional[int] = ..., window: _Optional[int] = ...) -> None: ...

class PlacementPreference(_message.Message):
    __slots__ = ("spread",)
    SPREAD_FIELD_NUMBER: _ClassVar[int]
    spread: str
    def __init__(self, spread: _Optional[str] = ...) -> None: ...

class Placement(_message.Message):
    __slots__ = ("constraints", "preferences", "max_replicas", "platforms")
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    PREFERENCES_FIELD_NUMBER: _ClassVar[int]
    MAX_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    PLATFORMS_FIELD_NUMBER: _ClassVar[int]
    constraints: _containers.RepeatedScalarFieldContainer[str]
    preferences: _containers.RepeatedCompositeFieldContainer[PlacementPreference]
    max_replicas: int
    platforms: _containers.RepeatedCompositeFieldContainer[Platform]
    def __init__(self, constraints: _Optional[_Iterable[str]] = ..., preferences: _Optional[_Iterable[_Union[PlacementPreference, _Mapping]]] = ..., max_replicas: _Optional[int] = ..., platforms: _Optional[_Iterable[_Union[Platform, _Mapping]]] = ...) -> None: ...

class TaskSpec(_message.Message):
    __slots__ = ("container", "resources", "restart", "placement", "force_update", "log_driver", "networks")
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    RESTART_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    FORCE_UPDATE_FIELD_NUMBER: _ClassVar[int]
    LOG_DRIVER_FIELD_NUMBER: _ClassVar[int]
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    container: ContainerSpec
    resources: ResourceRequirements
    restart: RestartPolicy
    placement: Placement
    force_update: int
    log_driver: Driver
    networks: _containers.RepeatedCompositeFieldContainer[NetworkAttachmentConfig]
    def __init__(self, container: _Optional[_Union[ContainerSpec, _Mapping]] = ..., resources: _Optional[_Union[ResourceRequirements, _Mapping]] = ..., restart: _Optional[_Union[RestartPolicy, _Mapping]] = ..., placement: _Optional[_Union[Placement, _Mapping]] = ..., force_update: _Optional[int] = ..., log_driver: _Optional[_Union[Driver, _Mapping]] = ..., networks: _Optional[_Iterable[_Union[NetworkAttachmentConfig, _Mapping]]] = ...) -> None: ...

class NetworkAttachmentConfig(_message.Message):
    __slots__ = ("target", "aliases", "addresses", "driver_attachment_opts")
    class DriverAttachmentOptsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    DRIVER_ATTACHMENT_OPTS_FIELD_NUMBER: _ClassVar[int]
    target: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    addresses: _containers.RepeatedScalarFieldContainer[str]
    driver_attachment_opts: _containers.ScalarMap[str, str]
    def __init__(self, target: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ..., addresses: _Optional[_Iterable[str]] = ..., driver_attachment_opts: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ReplicatedService(_message.Message):
    __slots__ = ("replicas",)
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    replicas: int
    def __init__(self, replicas: _Optional[int] = ...) -> None: ...

class GlobalService(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReplicatedJob(_message.Message):
    __slots__ = ("max_concurrent", "total_completions")
    MAX_CONCURRENT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COMPLETIONS_FIELD_NUMBER: _ClassVar[int]
    max_concurrent: int
    total_completions: int
    def __init__(self, max_concurrent: _Optional[int] = ..., total_completions: _Optional[int] = ...) -> None: ...

class GlobalJob(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UpdateConfig(_message.Message):
    __slots__ = ("parallelism", "delay", "failure_action", "monitor", "max_failure_ratio", "order")
    class FailureAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        PAUSE: _ClassVar[UpdateConfig.FailureAction]
        CONTINUE: _ClassVar[UpdateConfig.FailureAction]
        ROLLBACK: _ClassVar[UpdateConfig.FailureAction]
    PAUSE: UpdateConfig.FailureAction
    CONTINUE: UpdateConfig.FailureAction
    ROLLBACK: UpdateConfig.FailureAction
    class Order(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STOP_FIRST: _ClassVar[UpdateConfig.Order]
        START_FIRST: _ClassVar[UpdateConfig.Order]
    STOP_FIRST: UpdateConfig.Order
    START_FIRST: UpdateConfig.Order
    PARALLELISM_FIELD_NUMBER: _ClassVar[int]
    DELAY_FIELD_NUMBER: _ClassVar[int]
    FAILURE_ACTION_FIELD_NUMBER: _ClassVar[int]
    MONITOR_FIELD_NUMBER: _ClassVar[int]
    MAX_FAILURE_RATIO_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    parallelism: int
    delay: int
    failure_action: UpdateConfig.FailureAction
    monitor: int
    max_failure_ratio: float
    order: UpdateConfig.Order
    def __init__(self, parallelism: _Optional[int] = ..., delay: _Optional[int] = ..., failure_action: _Optional[_Union[UpdateConfig.FailureAction, str]] = ..., monitor: _Optional[int] = ..., max_failure_ratio: _Optional[float] = ..., order: _Optional[_Union[UpdateConfig.Order, str]] = ...) -> None: ...

class PortConfig(_message.Message):
    __slots__ = ("name", "protocol", "target_port", "published_port", "publish_mode", "proxy_protocol")
    class Protocol(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        TCP: _ClassVar[PortConfig.Protocol]
        UDP: _ClassVar[PortConfig.Protocol]
        SCTP: _ClassVar[PortConfig.Protocol]
    TCP: PortConfig.Protocol
    UDP: PortConfig.Protocol
    SCTP: PortConfig.Protocol
    class PublishMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        INGRESS: _ClassVar[PortConfig.PublishMode]
        HOST: _ClassVar[PortConfig.PublishMode]
    INGRESS: PortConfig.PublishMode
    HOST: PortConfig.PublishMode
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    TARGET_PORT_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_PORT_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_MODE_FIELD_NUMBER: _ClassVar[int]
    PROXY_PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    name: str
    protocol: PortConfig.Protocol
    target_port: int
    published_port: int
    publish_mode: PortConfig.PublishMode
    proxy_protocol: str
    def __init__(self, name: _Optional[str] = ..., protocol: _Optional[_Union[PortConfig.Protocol, str]] = ..., target_port: _Optional[int] = ..., published_port: _Optional[int] = ..., publish_mode: _Optional[_Union[PortConfig.PublishMode, str]] = ..., proxy_protocol: _Optional[str] = ...) -> None: ...

class EndpointSpec(_message.Message):
    __slots__ = ("mode", "ports")
    class ResolutionMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        VIP: _ClassVar[EndpointSpec.ResolutionMode]
        DNSRR: _ClassVar[EndpointSpec.ResolutionMode]
    VIP: EndpointSpec.ResolutionMode
    DNSRR: EndpointSpec.ResolutionMode
    MODE_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    mode: EndpointSpec.ResolutionMode
    ports: _containers.RepeatedCompositeFieldContainer[PortConfig]
    def __init__(self, mode: _Optional[_Union[EndpointSpec.ResolutionMode, str]] = ..., ports: _Optional[_Iterable[_Union[PortConfig, _Mapping]]] = ...) -> None: ...

class Endpoint(_message.Message):
    __slots__ = ("spec", "ports", "virtual_ips")
    class VirtualIP(_message.Message):
        __slots__ = ("network_id", "addr")
        NETWORK_ID_FIELD_NUMBER: _ClassVar[int]
        ADDR_FIELD_NUMBER: _ClassVar[int]
        network_id: str
        addr: str
        def __init__(self, network_id: _Optional[str] = ..., addr: _Optional[str] = ...) -> None: ...
    SPEC_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    VIRTUAL_IPS_FIELD_NUMBER: _ClassVar[int]
    spec: EndpointSpec
    ports: _containers.RepeatedCompositeFieldContainer[PortConfig]
    virtual_ips: _containers.RepeatedCompositeFieldContainer[Endpoint.VirtualIP]
    def __init__(self, spec: _Optional[_Union[EndpointSpec, _Mapping]] = ..., ports: _Optional[_Iterable[_Union[PortConfig, _Mapping]]] = ..., virtual_ips: _Optional[_Iterable[_Union[Endpoint.VirtualIP, _Mapping]]] = ...) -> None: ...

class ServiceSpec(_message.Message):
    __slots__ = ("annotations", "task", "replicated", "replicated_job", "global_job", "update", "rollback", "endpoint")
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    REPLICATED_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_FIELD_NUMBER: _ClassVar[int]
    REPLICATED_JOB_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_JOB_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    ROLLBACK_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    annotations: Annotations
    task: TaskSpec
    replicated: ReplicatedService
    replicated_job: ReplicatedJob
    global_job: GlobalJob
    update: UpdateConfig
    rollback: UpdateConfig
    endpoint: EndpointSpec
    def __init__(self, annotations: _Optional[_Union[Annotations, _Mapping]] = ..., task: _Optional[_Union[TaskSpec, _Mapping]] = ..., replicated: _Optional[_Union[ReplicatedService, _Mapping]] = ..., replicated_job: _Optional[_Union[ReplicatedJob, _Mapping]] = ..., global_job: _Optional[_Union[GlobalJob, _Mapping]] = ..., update: _Optional[_Union[UpdateConfig, _Mapping]] = ..., rollback: _Optional[_Union[UpdateConfig, _Mapping]] = ..., endpoint: _Optional[_Union[EndpointSpec, _Mapping]] = ..., **kwargs) -> None: ...

class UpdateStatus(_message.Message):
    __slots__ = ("state", "started_at", "completed_at", "message")
    class UpdateState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        UNKNOWN: _ClassVar[UpdateStatus.UpdateState]
        UPDATING: _ClassVar[UpdateStatus.UpdateState]
        PAUSED: _ClassVar[UpdateStatus.UpdateState]
        COMPLETED: _ClassVar[UpdateStatus.UpdateState]
        ROLLBACK_STARTED: _ClassVar[UpdateStatus.UpdateState]
        ROLLBACK_PAUSED: _ClassVar[UpdateStatus.UpdateState]
        ROLLBACK_COMPLETED: _ClassVar[UpdateStatus.UpdateState]
    UNKNOWN: UpdateStatus.UpdateState
    UPDATING: UpdateStatus.UpdateState
    PAUSED: UpdateStatus.UpdateState
    COMPLETED: UpdateStatus.UpdateState
    ROLLBACK_STARTED: UpdateStatus.UpdateState
    ROLLBACK_PAUSED: UpdateStatus.UpdateState
    ROLLBACK_COMPLETED: UpdateStatus.UpdateState
    STATE_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    state: UpdateStatus.UpdateState
    started_at: int
    completed_at: int
    message: str
    def __init__(self, state: _Optional[_Union[UpdateStatus.UpdateState, str]] = ..., started_at: _Optional[int] = ..., completed_at: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class Service(_message.Message):
    __slots__ = ("id", "meta", "spec", "spec_version", "previous_spec", "previous_spec_version", "endpoint", "update_status")
    ID_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    SPEC_VERSION_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_SPEC_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_SPEC_VERSION_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_STATUS_FIELD_NUMBER: _ClassVar[int]
    id: str
    meta: Meta
    spec: ServiceSpec
    spec_version: Version
    previous_spec: ServiceSpec
    previous_spec_version: Version
    endpoint: Endpoint
    update_status: UpdateStatus
    def __init__(self, id: _Optional[str] = ..., meta: _Optional[_Union[Meta, _Mapping]] = ..., spec: _Optional[_Union[ServiceSpec, _Mapping]] = ..., spec_version: _Optional[_Union[Version, _Mapping]] = ..., previous_spec: _Optional[_Union[ServiceSpec, _Mapping]] = ..., previous_spec_version: _Optional[_Union[Version, _Mapping]] = ..., endpoint: _Optional[_Union[Endpoint, _Mapping]] = ..., update_status: _Optional[_Union[UpdateStatus, _Mapping]] = ...) -> None: ...

class ContainerStatus(_message.Message):
    __slots__ = ("container_id", "pid", "exit_code")
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    pid: int
    exit_code: int
    def __init__(self, container_id: _Optional[str] = ..., pid: _Optional[int] = ..., exit_code: _Optional[int] = ...) -> None: ...

class PortStatus(_message.Message):
    __slots__ = ("ports",)
    PORTS_FIELD_NUMBER: _ClassVar[int]
    ports: _containers.RepeatedCompositeFieldContainer[PortConfig]
    def __init__(self, ports: _Optional[_Iterable[_Union[PortConfig, _Mapping]]] = ...) -> None: ...

class TaskStatus(_message.Message):
    __slots__ = ("timestamp", "state", "message", "err", "container_status", "port_status")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ERR_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_STATUS_FIELD_NUMBER: _ClassVar[int]
    PORT_STATUS_FIELD_NUMBER: _ClassVar[int]
    timestamp: int
    state: TaskState
    message: str
    err: str
    container_status: ContainerStatus
    port_status: PortStatus
    def __init__(self, timestamp: _Optional[int] = ..., state: _Optional[_Union[TaskState, str]] = ..., message: _Optional[str] = ..., err: _Optional[str] = ..., container_status: _Optional[_Union[ContainerStatus, _Mapping]] = ..., port_status: _Optional[_Union[PortStatus, _Mapping]] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("id", "meta", "spec", "spec_version", "service_id", "slot", "node_id", "annotations", "service_annotations", "status", "desired_state", "endpoint", "assigned_generic_resources", "networks")
    ID_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    SPEC_VERSION_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DESIRED_STATE_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_GENERIC_RESOURCES_FIELD_NUMBER: _ClassVar[int]
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    id: str
    meta: Meta
    spec: TaskSpec
    spec_version: Version
    service_id: str
    slot: int
    node_id: str
    annotations: Annotations
    service_annotations: Annotations
    status: TaskStatus
    desired_state: TaskState
    endpoint: Endpoint
    assigned_generic_resources: _containers.RepeatedCompositeFieldContainer[GenericResource]
    networks: _containers.RepeatedCompositeFieldContainer[NetworkAttachment]
    def __init__(self, id: _Optional[str] = ..., meta: _Optional[_Union[Meta, _Mapping]] = ..., spec: _Optional[_Union[TaskSpec, _Mapping]] = ..., spec_version: _Optional[_Union[Version, _Mapping]] = ..., service_id: _Optional[str] = ..., slot: _Optional[int] = ..., node_id: _Optional[str] = ..., annotations: _Optional[_Union[Annotations, _Mapping]] = ..., service_annotations: _Optional[_Union[Annotations, _Mapping]] = ..., status: _Optional[_Union[TaskStatus, _Mapping]] = ..., desired_state: _Optional[_Union[TaskState, str]] = ..., endpoint: _Optional[_Union[Endpoint, _Mapping]] = ..., assigned_generic_resources: _Optional[_Iterable[_Union[GenericResource, _Mapping]]] = ..., networks: _Optional[_Iterable[_Union[NetworkAttachment, _Mapping]]] = ...) -> None: ...

class NetworkAttachment(_message.Message):
    __slots__ = ("network", "addresses", "aliases", "driver_attachment_opts")
    class DriverAttachmentOptsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    DRIVER_ATTACHMENT_OPTS_FIELD_NUMBER: _ClassVar[int]
    network: Network
    addresses: _containers.RepeatedScalarFieldContainer[str]
    aliases: _containers.RepeatedScalarFieldContainer[str]
    driver_attachment_opts: _containers.ScalarMap[str, str]
    def __init__(self, network: _Optional[_Union[Network, _Mapping]] = ..., addresses: _Optional[_Iterable[str]] = ..., aliases: _Optional[_Iterable[str]] = ..., driver_attachment_opts: _Optional[_Mapping[str, str]] = ...) -> None: ...

class IPAMConfig(_message.Message):
    __slots__ = ("subnet", "range", "gateway")
    SUBNET_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    subnet: str
    range: str
    gateway: str
    def __init__(self, subnet: _Optional[str] = ..., range: _Optional[str] = ..., gateway: _Optional[str] = ...) -> None: ...

class IPAMOptions(_message.Message):
    __slots__ = ("driver", "configs")
    DRIVER_FIELD_NUMBER: _ClassVar[int]
    CONFIGS_FIELD_NUMBER: _ClassVar[int]
    driver: Driver
    configs: _containers.RepeatedCompositeFieldContainer[IPAMConfig]
    def __init__(self, driver: _Optional[_Union[Driver, _Mapping]] = ..., configs: _Optional[_Iterable[_Union[IPAMConfig, _Mapping]]] = ...) -> None: ...

class NetworkSpec(_message.Message):
    __slots__ = ("annotations", "driver_config", "ipv6_enabled", "internal", "ipam", "attachable", "ingress")
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    DRIVER_CONFIG_FIELD_NUMBER: _ClassVar[int]
    IPV6_ENABLED_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_FIELD_NUMBER: _ClassVar[int]
    IPAM_FIELD_NUMBER: _ClassVar[int]
    ATTACHABLE_FIELD_NUMBER: _ClassVar[int]
    INGRESS_FIELD_NUMBER: _ClassVar[int]
    annotations: Annotations
    driver_config: Driver
    ipv6_enabled: bool
    internal: bool
    ipam: IPAMOptions
    attachable: bool
    ingress: bool
    def __init__(self, annotations: _Optional[_Union[Annotations, _Mapping]] = ..., driver_config: _Optional[_Union[Driver, _Mapping]] = ..., ipv6_enabled: _Optional[bool] = ..., internal: _Optional[bool] = ..., ipam: _Optional[_Union[IPAMOptions, _Mapping]] = ..., attachable: _Optional[bool] = ..., ingress: _Optional[bool] = ...) -> None: ...

class Network(_message.Message):
    __slots__ = ("id", "meta", "spec", "driver_state", "ipam")
    ID_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    DRIVER_STATE_FIELD_NUMBER: _ClassVar[int]
    IPAM_FIELD_NUMBER: _ClassVar[int]
    id: str
    meta: Meta
    spec: NetworkSpec
    driver_state: Driver
    ipam: IPAMOptions
    def __init__(self, id: _Optional[str] = ..., meta: _Optional[_Union[Meta, _Mapping]] = ..., spec: _Optional[_Union[NetworkSpec, _Mapping]] = ..., driver_state: _Optional[_Union[Driver, _Mapping]] = ..., ipam: _Optional[_Union[IPAMOptions, _Mapping]] = ...) -> None: ...

class FileTarget(_message.Message):
    __slots__ = ("name", "uid", "gid", "mode")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    name: str
    uid: str
    gid: str
    mode: int
    def __init__(self, name: _Optional[str] = ..., uid: _Optional[str] = ..., gid: _Optional[str] = ..., mode: _Optional[int] = ...) -> None: ...

class SecretReference(_message.Message):
    __slots__ = ("secret_id", "secret_name", "file")
    SECRET_ID_FIELD_NUMBER: _ClassVar[int]
    SECRET_NAME_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    secret_id: str
    secret_name: str
    file: FileTarget
    def __init__(self, secret_id: _Optional[str] = ..., secret_name: _Optional[str] = ..., file: _Optional[_Union[FileTarget, _Mapping]] = ...) -> None: ...

class ConfigReference(_message.Message):
    __slots__ = ("config_id", "config_name", "file")
    CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_NAME_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    config_id: str
    config_name: str
    file: FileTarget
    def __init__(self, config_id: _Optional[str] = ..., config_name: _Optional[str] = ..., file: _Optional[_Union[FileTarget, _Mapping]] = ...) -> None: ...

class SecretSpec(_message.Message):
    __slots__ = ("annotations", "data", "template_driver")
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_DRIVER_FIELD_NUMBER: _ClassVar[int]
    annotations: Annotations
    data: bytes
    template_driver: str
    def __init__(self, annotations: _Optional[_Union[Annotations, _Mapping]] = ..., data: _Optional[bytes] = ..., template_driver: _Optional[str] = ...) -> None: ...

class Secret(_message.Message):
    __slots__ = ("id", "meta", "spec")
    ID_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    id: str
    meta: Meta
    spec: SecretSpec
    def __init__(self, id: _Optional[str] = ..., meta: _Optional[_Union[Meta, _Mapping]] = ..., spec: _Optional[_Union[SecretSpec, _Mapping]] = ...) -> None: ...

class ConfigSpec(_message.Message):
    __slots__ = ("annotations", "data", "template_driver")
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_DRIVER_FIELD_NUMBER: _ClassVar[int]
    annotations: Annotations
    data: bytes
    template_driver: str
    def __init__(self, annotations: _Optional[_Union[Annotations, _Mapping]] = ..., data: _Optional[bytes] = ..., template_driver: _Optional[str] = ...) -> None: ...

class Config(_message.Message):
    __slots__ = ("id", "meta", "spec")
    ID_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    id: str
    meta: Meta
    spec: ConfigSpec
    def __init__(self, id: _Optional[str] = ..., meta: _Optional[_Union[Meta, _Mapping]] = ..., spec: _Optional[_Union[ConfigSpec, _Mapping]] = ...) -> None: ...

class OrchestrationConfig(_message.Message):
    __slots__ = ("task_history_retention_limit",)
    TASK_HISTORY_RETENTION_LIMIT_FIELD_NUMBER: _ClassVar[int]
    task_history_retention_limit: int
    def __init__(self, task_history_retention_limit: _Optional[int] = ...) -> None: ...

class RaftConfig(_message.Message):
    __slots__ = ("snapshot_interval", "keep_old_snapshots", "log_entries_for_slow_followers", "heartbeat_tick", "election_tick", "tick_period")
    SNAPSHOT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    KEEP_OLD_SNAPSHOTS_FIELD_NUMBER: _ClassVar[int]
    LOG_ENTRIES_FOR_SLOW_FOLLOWERS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_TICK_FIELD_NUMBER: _ClassVar[int]
    ELECTION_TICK_FIELD_NUMBER: _ClassVar[int]
    TICK_PERIOD_FIELD_NUMBER: _ClassVar[int]
    snapshot_interval: int
    keep_old_snapshots: int
    log_entries_for_slow_followers: int
    heartbeat_tick: int
    election_tick: int
    tick_period: int
    def __init__(self, snapshot_interval: _Optional[int] = ..., keep_old_snapshots: _Optional[int] = ..., log_entries_for_slow_followers: _Optional[int] = ..., heartbeat_tick: _Optional[int] = ..., election_tick: _Optional[int] = ..., tick_period: _Optional[int] = ...) -> None: ...

class DispatcherConfig(_message.Message):
    __slots__ = ("heartbeat_period",)
    HEARTBEAT_PERIOD_FIELD_NUMBER: _ClassVar[int]
    heartbeat_period: int
    def __init__(self, heartbeat_period: _Optional[int] = ...) -> None: ...

class CAConfig(_message.Message):
    __slots__ = ("node_cert_expiry", "signing_ca_cert", "signing_ca_key", "force_rotate")
    NODE_CERT_EXPIRY_FIELD_NUMBER: _ClassVar[int]
    SIGNING_CA_CERT_FIELD_NUMBER: _ClassVar[int]
    SIGNING_CA_KEY_FIELD_NUMBER: _ClassVar[int]
    FORCE_ROTATE_FIELD_NUMBER: _ClassVar[int]
    node_cert_expiry: int
    signing_ca_cert: bytes
    signing_ca_key: bytes
    force_rotate: int
    def __init__(self, node_cert_expiry: _Optional[int] = ..., signing_ca_cert: _Optional[bytes] = ..., signing_ca_key: _Optional[bytes] = ..., force_rotate: _Optional[int] = ...) -> None: ...

class EncryptionConfig(_message.Message):
    __slots__ = ("auto_lock_managers",)
    AUTO_LOCK_MANAGERS_FIELD_NUMBER: _ClassVar[int]
    auto_lock_managers: bool
    def __init__(self, auto_lock_managers: _Optional[bool] = ...) -> None: ...

class ClusterSpec(_message.Message):
    __slots__ = ("annotations", "orchestration", "raft", "dispatcher", "ca_config", "encryption_config")
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    ORCHESTRATION_FIELD_NUMBER: _ClassVar[int]
    RAFT_FIELD_NUMBER: _ClassVar[int]
    DISPATCHER_FIELD_NUMBER: _ClassVar[int]
    CA_CONFIG_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTION_CONFIG_FIELD_NUMBER: _ClassVar[int]
    annotations: Annotations
    orchestration: OrchestrationConfig
    raft: RaftConfig
    dispatcher: DispatcherConfig
    ca_config: CAConfig
    encryption_config: EncryptionConfig
    def __init__(self, annotations: _Optional[_Union[Annotations, _Mapping]] = ..., orchestration: _Optional[_Union[OrchestrationConfig, _Mapping]] = ..., raft: _Optional[_Union[RaftConfig, _Mapping]] = ..., dispatcher: _Optional[_Union[DispatcherConfig, _Mapping]] = ..., ca_config: _Optional[_Union[CAConfig, _Mapping]] = ..., encryption_config: _Optional[_Union[EncryptionConfig, _Mapping]] = ...) -> None: ...

class JoinTokens(_message.Message):
    __slots__ = ("worker", "manager")
    WORKER_FIELD_NUMBER: _ClassVar[int]
    MANAGER_FIELD_NUMBER: _ClassVar[int]
    worker: str
    manager: str
    def __init__(self, worker: _Optional[str] = ..., manager: _Optional[str] = ...) -> None: ...

class RootCA(_message.Message):
    __slots__ = ("ca_key", "ca_cert", "ca_cert_hash", "join_tokens", "root_rotation", "last_forced_rotation")
    CA_KEY_FIELD_NUMBER: _ClassVar[int]
    CA_CERT_FIELD_NUMBER: _ClassVar[int]
    CA_CERT_HASH_FIELD_NUMBER: _ClassVar[int]
    JOIN_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ROOT_ROTATION_FIELD_NUMBER: _ClassVar[int]
    LAST_FORCED_ROTATION_FIELD_NUMBER: _ClassVar[int]
    ca_key: bytes
    ca_cert: bytes
    ca_cert_hash: str
    join_tokens: JoinTokens
    root_rotation: RootRotation
    last_forced_rotation: int
    def __init__(self, ca_key: _Optional[bytes] = ..., ca_cert: _Optional[bytes] = ..., ca_cert_hash: _Optional[str] = ..., join_tokens: _Optional[_Union[JoinTokens, _Mapping]] = ..., root_rotation: _Optional[_Union[RootRotation, _Mapping]] = ..., last_forced_rotation: _Optional[int] = ...) -> None: ...

class RootRotation(_message.Message):
    __slots__ = ("ca_cert", "ca_key", "cross_signed_ca_cert")
    CA_CERT_FIELD_NUMBER: _ClassVar[int]
    CA_KEY_FIELD_NUMBER: _ClassVar[int]
    CROSS_SIGNED_CA_CERT_FIELD_NUMBER: _ClassVar[int]
    ca_cert: bytes
    ca_key: bytes
    cross_signed_ca_cert: bytes
    def __init__(self, ca_cert: _Optional[bytes] = ..., ca_key: _Optional[bytes] = ..., cross_signed_ca_cert: _Optional[bytes] = ...) -> None: ...

class Cluster(_message.Message):
    __slots__ = ("id", "meta", "spec", "root_ca", "unlock_key", "default_address_pool", "subnet_size", "vxlan_udp_port")
    ID_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    ROOT_CA_FIELD_NUMBER: _ClassVar[int]
    UNLOCK_KEY_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_ADDRESS_POOL_FIELD_NUMBER: _ClassVar[int]
    SUBNET_SIZE_FIELD_NUMBER: _ClassVar[int]
    VXLAN_UDP_PORT_FIELD_NUMBER: _ClassVar[int]
    id: str
    meta: Meta
    spec: ClusterSpec
    root_ca: RootCA
    unlock_key: str
    default_address_pool: _containers.RepeatedScalarFieldContainer[str]
    subnet_size: int
    vxlan_udp_port: int
    def __init__(self, id: _Optional[str] = ..., meta: _Optional[_Union[Meta, _Mapping]] = ..., spec: _Optional[_Union[ClusterSpec, _Mapping]] = ..., root_ca: _Optional[_Union[RootCA, _Mapping]] = ..., unlock_key: _Optional[str] = ..., default_address_pool: _Optional[_Iterable[str]] = ..., subnet_size: _Optional[int] = ..., vxlan_udp_port: _Optional[int] = ...) -> None: ...

class RaftMember(_message.Message):
    __slots__ = ("raft_id", "node_id", "addr")
    RAFT_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDR_FIELD_NUMBER: _ClassVar[int]
    raft_id: int
    node_id: str
    addr: str
    def __init__(self, raft_id: _Optional[int] = ..., node_id: _Optional[str] = ..., addr: _Optional[str] = ...) -> None: ...
