from swarmpy.api import objects_pb2 as _objects_pb2
from swarmpy.api import dispatcher_pb2 as _dispatcher_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetNodeRequest(_message.Message):
    __slots__ = ("ref",)
    REF_FIELD_NUMBER: _ClassVar[int]
    ref: str
    def __init__(self, ref: _Optional[str] = ...) -> None: ...

class GetNodeResponse(_message.Message):
    __slots__ = ("node",)
    NODE_FIELD_NUMBER: _ClassVar[int]
    node: _objects_pb2.Node
    def __init__(self, node: _Optional[_Union[_objects_pb2.Node, _Mapping]] = ...) -> None: ...

class ListNodesRequest(_message.Message):
    __slots__ = ("filters",)
    class Filters(_message.Message):
        __slots__ = ("ids", "names", "roles")
        IDS_FIELD_NUMBER: _ClassVar[int]
        NAMES_FIELD_NUMBER: _ClassVar[int]
        ROLES_FIELD_NUMBER: _ClassVar[int]
        ids: _containers.RepeatedScalarFieldContainer[str]
        names: _containers.RepeatedScalarFieldContainer[str]
        roles: _containers.RepeatedScalarFieldContainer[_objects_pb2.NodeRole]
        def __init__(self, ids: _Optional[_Iterable[str]] = ..., names: _Optional[_Iterable[str]] = ..., roles: _Optional[_Iterable[_Union[_objects_pb2.NodeRole, str]]] = ...) -> None: ...
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    filters: ListNodesRequest.Filters
    def __init__(self, filters: _Optional[_Union[ListNodesRequest.Filters, _Mapping]] = ...) -> None: ...

class ListNodesResponse(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[_objects_pb2.Node]
    def __init__(self, nodes: _Optional[_Iterable[_Union[_objects_pb2.Node, _Mapping]]] = ...) -> None: ...

class UpdateNodeRequest(_message.Message):
    __slots__ = ("ref", "version", "spec")
    REF_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    ref: str
    version: _objects_pb2.Version
    spec: _objects_pb2.NodeSpec
    def __init__(self, ref: _Optional[str] = ..., version: _Optional[_Union[_objects_pb2.Version, _Mapping]] = ..., spec: _Optional[_Union[_objects_pb2.NodeSpec, _Mapping]] = ...) -> None: ...

class UpdateNodeResponse(_message.Message):
    __slots__ = ("node",)
    NODE_FIELD_NUMBER: _ClassVar[int]
    node: _objects_pb2.Node
    def __init__(self, node: _Optional[_Union[_objects_pb2.Node, _Mapping]] = ...) -> None: ...

class RemoveNodeRequest(_message.Message):
    __slots__ = ("ref", "force")
    REF_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    ref: str
    force: bool
    def __init__(self, ref: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class RemoveNodeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateServiceRequest(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: _objects_pb2.ServiceSpec
    def __init__(self, spec: _Optional[_Union[_objects_pb2.ServiceSpec, _Mapping]] = ...) -> None: ...

class CreateServiceResponse(_message.Message):
    __slots__ = ("service", "warnings")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    service: _objects_pb2.Service
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, service: _Optional[_Union[_objects_pb2.Service, _Mapping]] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class GetServiceRequest(_message.Message):
    __slots__ = ("ref", "insert_defaults")
    REF_FIELD_NUMBER: _ClassVar[int]
    INSERT_DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    ref: str
    insert_defaults: bool
    def __init__(self, ref: _Optional[str] = ..., insert_defaults: _Optional[bool] = ...) -> None: ...

class GetServiceResponse(_message.Message):
    __slots__ = ("service",)
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    service: _objects_pb2.Service
    def __init__(self, service: _Optional[_Union[_objects_pb2.Service, _Mapping]] = ...) -> None: ...

class ListServicesRequest(_message.Message):
    __slots__ = ("filters",)
    class Filters(_message.Message):
        __slots__ = ("ids", "names", "labels")
        class LabelsEntry(_message.Message):
            __slots__ = ("key", "value")
            KEY_FIELD_NUMBER: _ClassVar[int]
            VALUE_FIELD_NUMBER: _ClassVar[int]
            key: str
            value: str
            def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
        IDS_FIELD_NUMBER: _ClassVar[int]
        NAMES_FIELD_NUMBER: _ClassVar[int]
        LABELS_FIELD_NUMBER: _ClassVar[int]
        ids: _containers.RepeatedScalarFieldContainer[str]
        names: _containers.RepeatedScalarFieldContainer[str]
        labels: _containers.ScalarMap[str, str]
        def __init__(self, ids: _Optional[_Iterable[str]] = ..., names: _Optional[_Iterable[str]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    filters: ListServicesRequest.Filters
    def __init__(self, filters: _Optional[_Union[ListServicesRequest.Filters, _Mapping]] = ...) -> None: ...

class ServiceStatus(_message.Message):
    __slots__ = ("service_id", "running_tasks", "desired_tasks", "completed_tasks")
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    RUNNING_TASKS_FIELD_NUMBER: _ClassVar[int]
    DESIRED_TASKS_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_TASKS_FIELD_NUMBER: _ClassVar[int]
    service_id: str
    running_tasks: int
    desired_tasks: int
    completed_tasks: int
    def __init__(self, service_id: _Optional[str] = ..., running_tasks: _Optional[int] = ..., desired_tasks: _Optional[int] = ..., completed_tasks: _Optional[int] = ...) -> None: ...

class ListServicesResponse(_message.Message):
    __slots__ = ("services", "statuses")
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    services: _containers.RepeatedCompositeFieldContainer[_objects_pb2.Service]
    statuses: _containers.RepeatedCompositeFieldContainer[ServiceStatus]
    def __init__(self, services: _Optional[_Iterable[_Union[_objects_pb2.Service, _Mapping]]] = ..., statuses: _Optional[_Iterable[_Union[ServiceStatus, _Mapping]]] = ...) -> None: ...

class UpdateServiceRequest(_message.Message):
    __slots__ = ("ref", "version", "spec", "rollback")
    class Rollback(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        NONE: _ClassVar[UpdateServiceRequest.Rollback]
        PREVIOUS: _ClassVar[UpdateServiceRequest.Rollback]
    NONE: UpdateServiceRequest.Rollback
    PREVIOUS: UpdateServiceRequest.Rollback
    REF_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    ROLLBACK_FIELD_NUMBER: _ClassVar[int]
    ref: str
    version: _objects_pb2.Version
    spec: _objects_pb2.ServiceSpec
    rollback: UpdateServiceRequest.Rollback
    def __init__(self, ref: _Optional[str] = ..., version: _Optional[_Union[_objects_pb2.Version, _Mapping]] = ..., spec: _Optional[_Union[_objects_pb2.ServiceSpec, _Mapping]] = ..., rollback: _Optional[_Union[UpdateServiceRequest.Rollback, str]] = ...) -> None: ...

class UpdateServiceResponse(_message.Message):
    __slots__ = ("service", "warnings")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    service: _objects_pb2.Service
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, service: _Optional[_Union[_objects_pb2.Service, _Mapping]] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class RemoveServiceRequest(_message.Message):
    __slots__ = ("ref",)
    REF_FIELD_NUMBER: _ClassVar[int]
    ref: str
    def __init__(self, ref: _Optional[str] = ...) -> None: ...

class RemoveServiceResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServiceLogsRequest(_message.Message):
    __slots__ = ("ref", "options")
    REF_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    ref: str
    options: _dispatcher_pb2.LogOptions
    def __init__(self, ref: _Optional[str] = ..., options: _Optional[_Union[_dispatcher_pb2.LogOptions, _Mapping]] = ...) -> None: ...

class ServiceLogsMessage(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[_dispatcher_pb2.LogMessage]
    def __init__(self, messages: _Optional[_Iterable[_Union[_dispatcher_pb2.LogMessage, _Mapping]]] = ...) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("ref",)
    REF_FIELD_NUMBER: _ClassVar[int]
    ref: str
    def __init__(self, ref: _Optional[str] = ...) -> None: ...

class GetTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: _objects_pb2.Task
    def __init__(self, task: _Optional[_Union[_objects_pb2.Task, _Mapping]] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("filters",)
    class Filters(_message.Message):
        __slots__ = ("ids", "service_ids", "node_ids", "desired_states", "up_to_date")
        IDS_FIELD_NUMBER: _ClassVar[int]
        SERVICE_IDS_FIELD_NUMBER: _ClassVar[int]
        NODE_IDS_FIELD_NUMBER: _ClassVar[int]
        DESIRED_STATES_FIELD_NUMBER: _ClassVar[int]
        UP_TO_DATE_FIELD_NUMBER: _ClassVar[int]
        ids: _containers.RepeatedScalarFieldContainer[str]
        service_ids: _containers.RepeatedScalarFieldContainer[str]
        node_ids: _containers.RepeatedScalarFieldContainer[str]
        desired_states: _containers.RepeatedScalarFieldContainer[_objects_pb2.TaskState]
        up_to_date: bool
        def __init__(self, ids: _Optional[_Iterable[str]] = ..., service_ids: _Optional[_Iterable[str]] = ..., node_ids: _Optional[_Iterable[str]] = ..., desired_states: _Optional[_Iterable[_Union[_objects_pb2.TaskState, str]]] = ..., up_to_date: _Optional[bool] = ...) -> None: ...
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    filters: ListTasksRequest.Filters
    def __init__(self, filters: _Optional[_Union[ListTasksRequest.Filters, _Mapping]] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("tasks",)
    TASKS_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[_objects_pb2.Task]
    def __init__(self, tasks: _Optional[_Iterable[_Union[_objects_pb2.Task, _Mapping]]] = ...) -> None: ...

class GetClusterRequest(_message.Message):
    __slots__ = ("ref",)
    REF_FIELD_NUMBER: _ClassVar[int]
    ref: str
    def __init__(self, ref: _Optional[str] = ...) -> None: ...

class GetClusterResponse(_message.Message):
    __slots__ = ("cluster",)
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    cluster: _objects_pb2.Cluster
    def __init__(self, cluster: _Optional[_Union[_objects_pb2.Cluster, _Mapping]] = ...) -> None: ...

class UpdateClusterRequest(_message.Message):
    __slots__ = ("version", "spec", "rotate_worker_token", "rotate_manager_token", "rotate_manager_unlock_key")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    ROTATE_WORKER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ROTATE_MANAGER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ROTATE_MANAGER_UNLOCK_KEY_FIELD_NUMBER: _ClassVar[int]
    version: _objects_pb2.Version
    spec: _objects_pb2.ClusterSpec
    rotate_worker_token: bool
    rotate_manager_token: bool
    rotate_manager_unlock_key: bool
    def __init__(self, version: _Optional[_Union[_objects_pb2.Version, _Mapping]] = ..., spec: _Optional[_Union[_objects_pb2.ClusterSpec, _Mapping]] = ..., rotate_worker_token: _Optional[bool] = ..., rotate_manager_token: _Optional[bool] = ..., rotate_manager_unlock_key: _Optional[bool] = ...) -> None: ...

class GetUnlockKeyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetUnlockKeyResponse(_message.Message):
    __slots__ = ("unlock_key", "version")
    UNLOCK_KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    unlock_key: str
    version: _objects_pb2.Version
    def __init__(self, unlock_key: _Optional[str] = ..., version: _Optional[_Union[_objects_pb2.Version, _Mapping]] = ...) -> None: ...

class UpdateClusterResponse(_message.Message):
    __slots__ = ("cluster",)
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    cluster: _objects_pb2.Cluster
    def __init__(self, cluster: _Optional[_Union[_objects_pb2.Cluster, _Mapping]] = ...) -> None: ...

class SecretConfigFilters(_message.Message):
    __slots__ = ("ids", "names", "name_prefixes", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    IDS_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    NAME_PREFIXES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    names: _containers.RepeatedScalarFieldContainer[str]
    name_prefixes: _containers.RepeatedScalarFieldContainer[str]
    labels: _containers.ScalarMap[str, str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ..., names: _Optional[_Iterable[str]] = ..., name_prefixes: _Optional[_Iterable[str]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CreateSecretRequest(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: _objects_pb2.SecretSpec
    def __init__(self, spec: _Optional[_Union[_objects_pb2.SecretSpec, _Mapping]] = ...) -> None: ...

class CreateSecretResponse(_message.Message):
    __slots__ = ("secret",)
    SECRET_FIELD_NUMBER: _ClassVar[int]
    secret: _objects_pb2.Secret
    def __init__(self, secret: _Optional[_Union[_objects_pb2.Secret, _Mapping]] = ...) -> None: ...

class GetSecretRequest(_message.Message):
    __slots__ = ("ref",)
    REF_FIELD_NUMBER: _ClassVar[int]
    ref: str
    def __init__(self, ref: _Optional[str] = ...) -> None: ...

class GetSecretResponse(_message.Message):
    __slots__ = ("secret",)
    SECRET_FIELD_NUMBER: _ClassVar[int]
    secret: _objects_pb2.Secret
    def __init__(self, secret: _Optional[_Union[_objects_pb2.Secret, _Mapping]] = ...) -> None: ...

class ListSecretsRequest(_message.Message):
    __slots__ = ("filters",)
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    filters: SecretConfigFilters
    def __init__(self, filters: _Optional[_Union[SecretConfigFilters, _Mapping]] = ...) -> None: ...

class ListSecretsResponse(_message.Message):
    __slots__ = ("secrets",)
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    secrets: _containers.RepeatedCompositeFieldContainer[_objects_pb2.Secret]
    def __init__(self, secrets: _Optional[_Iterable[_Union[_objects_pb2.Secret, _Mapping]]] = ...) -> None: ...

class RemoveSecretRequest(_message.Message):
    __slots__ = ("ref",)
    REF_FIELD_NUMBER: _ClassVar[int]
    ref: str
    def __init__(self, ref: _Optional[str] = ...) -> None: ...

class RemoveSecretResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateConfigRequest(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: _objects_pb2.ConfigSpec
    def __init__(self, spec: _Optional[_Union[_objects_pb2.ConfigSpec, _Mapping]] = ...) -> None: ...

class CreateConfigResponse(_message.Message):
    __slots__ = ("config",)
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config: _objects_pb2.Config
    def __init__(self, config: _Optional[_Union[_objects_pb2.Config, _Mapping]] = ...) -> None: ...

class GetConfigRequest(_message.Message):
    __slots__ = ("ref",)
    REF_FIELD_NUMBER: _ClassVar[int]
    ref: str
    def __init__(self, ref: _Optional[str] = ...) -> None: ...

class GetConfigResponse(_message.Message):
    __slots__ = ("config",)
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config: _objects_pb2.Config
    def __init__(self, config: _Optional[_Union[_objects_pb2.Config, _Mapping]] = ...) -> None: ...

class ListConfigsRequest(_message.Message):
    __slots__ = ("filters",)
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    filters: SecretConfigFilters
    def __init__(self, filters: _Optional[_Union[SecretConfigFilters, _Mapping]] = ...) -> None: ...

class ListConfigsResponse(_message.Message):
    __slots__ = ("configs",)
    CONFIGS_FIELD_NUMBER: _ClassVar[int]
    configs: _containers.RepeatedCompositeFieldContainer[_objects_pb2.Config]
    def __init__(self, configs: _Optional[_Iterable[_Union[_objects_pb2.Config, _Mapping]]] = ...) -> None: ...

class RemoveConfigRequest(_message.Message):
    __slots__ = ("ref",)
    REF_FIELD_NUMBER: _ClassVar[int]
    ref: str
    def __init__(self, ref: _Optional[str] = ...) -> None: ...

class RemoveConfigResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateNetworkRequest(_message.Message):
    __slots__ = ("spec",)
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: _objects_pb2.NetworkSpec
    def __init__(self, spec: _Optional[_Union[_objects_pb2.NetworkSpec, _Mapping]] = ...) -> None: ...

class CreateNetworkResponse(_message.Message):
    __slots__ = ("network",)
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    network: _objects_pb2.Network
    def __init__(self, network: _Optional[_Union[_objects_pb2.Network, _Mapping]] = ...) -> None: ...

class GetNetworkRequest(_message.Message):
    __slots__ = ("ref",)
    REF_FIELD_NUMBER: _ClassVar[int]
    ref: str
    def __init__(self, ref: _Optional[str] = ...) -> None: ...

class GetNetworkResponse(_message.Message):
    __slots__ = ("network",)
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    network: _objects_pb2.Network
    def __init__(self, network: _Optional[_Union[_objects_pb2.Network, _Mapping]] = ...) -> None: ...

class ListNetworksRequest(_message.Message):
    __slots__ = ("filters",)
    class Filters(_message.Message):
        __slots__ = ("ids", "names", "labels", "drivers")
        class LabelsEntry(_message.Message):
            __slots__ = ("key", "value")
            KEY_FIELD_NUMBER: _ClassVar[int]
            VALUE_FIELD_NUMBER: _ClassVar[int]
            key: str
            value: str
            def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
        IDS_FIELD_NUMBER: _ClassVar[int]
        NAMES_FIELD_NUMBER: _ClassVar[int]
        LABELS_FIELD_NUMBER: _ClassVar[int]
        DRIVERS_FIELD_NUMBER: _ClassVar[int]
        ids: _containers.RepeatedScalarFieldContainer[str]
        names: _containers.RepeatedScalarFieldContainer[str]
        labels: _containers.ScalarMap[str, str]
        drivers: _containers.RepeatedScalarFieldContainer[str]
        def __init__(self, ids: _Optional[_Iterable[str]] = ..., names: _Optional[_Iterable[str]] = ..., labels: _Optional[_Mapping[str, str]] = ..., drivers: _Optional[_Iterable[str]] = ...) -> None: ...
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    filters: ListNetworksRequest.Filters
    def __init__(self, filters: _Optional[_Union[ListNetworksRequest.Filters, _Mapping]] = ...) -> None: ...

class ListNetworksResponse(_message.Message):
    __slots__ = ("networks",)
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    networks: _containers.RepeatedCompositeFieldContainer[_objects_pb2.Network]
    def __init__(self, networks: _Optional[_Iterable[_Union[_objects_pb2.Network, _Mapping]]] = ...) -> None: ...

class RemoveNetworkRequest(_message.Message):
    __slots__ = ("ref",)
    REF_FIELD_NUMBER: _ClassVar[int]
    ref: str
    def __init__(self, ref: _Optional[str] = ...) -> None: ...

class RemoveNetworkResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class InfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class InfoResponse(_message.Message):
    __slots__ = ("state", "node_id", "node_addr", "control_available", "cluster_id", "remote_managers", "error", "daemon_version")
    class LocalNodeState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        INACTIVE: _ClassVar[InfoResponse.LocalNodeState]
        PENDING: _ClassVar[InfoResponse.LocalNodeState]
        ACTIVE: _ClassVar[InfoResponse.LocalNodeState]
        ERROR: _ClassVar[InfoResponse.LocalNodeState]
        LOCKED: _ClassVar[InfoResponse.LocalNodeState]
    INACTIVE: InfoResponse.LocalNodeState
    PENDING: InfoResponse.LocalNodeState
    ACTIVE: InfoResponse.LocalNodeState
    ERROR: InfoResponse.LocalNodeState
    LOCKED: InfoResponse.LocalNodeState
    STATE_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ADDR_FIELD_NUMBER: _ClassVar[int]
    CONTROL_AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    REMOTE_MANAGERS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DAEMON_VERSION_FIELD_NUMBER: _ClassVar[int]
    state: InfoResponse.LocalNodeState
    node_id: str
    node_addr: str
    control_available: bool
    cluster_id: str
    remote_managers: _containers.RepeatedCompositeFieldContainer[_dispatcher_pb2.WeightedPeer]
    error: str
    daemon_version: str
    def __init__(self, state: _Optional[_Union[InfoResponse.LocalNodeState, str]] = ..., node_id: _Optional[str] = ..., node_addr: _Optional[str] = ..., control_available: _Optional[bool] = ..., cluster_id: _Optional[str] = ..., remote_managers: _Optional[_Iterable[_Union[_dispatcher_pb2.WeightedPeer, _Mapping]]] = ..., error: _Optional[str] = ..., daemon_version: _Optional[str] = ...) -> None: ...

class InitRequest(_message.Message):
    __slots__ = ("listen_addr", "advertise_addr", "force_new_cluster", "spec", "availability", "default_addr_pool", "subnet_size", "data_path_addr", "data_path_port")
    LISTEN_ADDR_FIELD_NUMBER: _ClassVar[int]
    ADVERTISE_ADDR_FIELD_NUMBER: _ClassVar[int]
    FORCE_NEW_CLUSTER_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    AVAILABILITY_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_ADDR_POOL_FIELD_NUMBER: _ClassVar[int]
    SUBNET_SIZE_FIELD_NUMBER: _ClassVar[int]
    DATA_PATH_ADDR_FIELD_NUMBER: _ClassVar[int]
    DATA_PATH_PORT_FIELD_NUMBER: _ClassVar[int]
    listen_addr: str
    advertise_addr: str
    force_new_cluster: bool
    spec: _objects_pb2.ClusterSpec
    availability: _objects_pb2.NodeSpec.Availability
    default_addr_pool: _containers.RepeatedScalarFieldContainer[str]
    subnet_size: int
    data_path_addr: str
    data_path_port: int
    def __init__(self, listen_addr: _Optional[str] = ..., advertise_addr: _Optional[str] = ..., force_new_cluster: _Optional[bool] = ..., spec: _Optional[_Union[_objects_pb2.ClusterSpec, _Mapping]] = ..., availability: _Optional[_Union[_objects_pb2.NodeSpec.Availability, str]] = ..., default_addr_pool: _Optional[_Iterable[str]] = ..., subnet_size: _Optional[int] = ..., data_path_addr: _Optional[str] = ..., data_path_port: _Optional[int] = ...) -> None: ...

class InitResponse(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    def __init__(self, node_id: _Optional[str] = ...) -> None: ...

class JoinRequest(_message.Message):
    __slots__ = ("listen_addr", "advertise_addr", "remote_addrs", "join_token", "availability", "data_path_addr")
    LISTEN_ADDR_FIELD_NUMBER: _ClassVar[int]
    ADVERTISE_ADDR_FIELD_NUMBER: _ClassVar[int]
    REMOTE_ADDRS_FIELD_NUMBER: _ClassVar[int]
    JOIN_TOKEN_FIELD_NUMBER: _ClassVar[int]
    AVAILABILITY_FIELD_NUMBER: _ClassVar[int]
    DATA_PATH_ADDR_FIELD_NUMBER: _ClassVar[int]
    listen_addr: str
    advertise_addr: str
    remote_addrs: _containers.RepeatedScalarFieldContainer[str]
    join_token: str
    availability: _objects_pb2.NodeSpec.Availability
    data_path_addr: str
    def __init__(self, listen_addr: _Optional[str] = ..., advertise_addr: _Optional[str] = ..., remote_addrs: _Optional[_Iterable[str]] = ..., join_token: _Optional[str] = ..., availability: _Optional[_Union[_objects_pb2.NodeSpec.Availability, str]] = ..., data_path_addr: _Optional[str] = ...) -> None: ...

class JoinResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LeaveRequest(_message.Message):
    __slots__ = ("force",)
    FORCE_FIELD_NUMBER: _ClassVar[int]
    force: bool
    def __init__(self, force: _Optional[bool] = ...) -> None: ...

class LeaveResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UnlockRequest(_message.Message):
    __slots__ = ("unlock_key",)
    UNLOCK_KEY_FIELD_NUMBER: _ClassVar[int]
    unlock_key: str
    def __init__(self, unlock_key: _Optional[str] = ...) -> None: ...

class UnlockResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
