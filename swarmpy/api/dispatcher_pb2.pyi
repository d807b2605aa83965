from swarmpy.api import objects_pb2 as _objects_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WeightedPeer(_message.Message):
    __slots__ = ("addr", "node_id", "weight")
    ADDR_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    addr: str
    node_id: str
    weight: int
    def __init__(self, addr: _Optional[str] = ..., node_id: _Optional[str] = ..., weight: _Optional[int] = ...) -> None: ...

class SessionRequest(_message.Message):
    __slots__ = ("description", "session_id")
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    description: _objects_pb2.NodeDescription
    session_id: str
    def __init__(self, description: _Optional[_Union[_objects_pb2.NodeDescription, _Mapping]] = ..., session_id: _Optional[str] = ...) -> None: ...

class SessionMessage(_message.Message):
    __slots__ = ("session_id", "node", "managers", "root_ca")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    MANAGERS_FIELD_NUMBER: _ClassVar[int]
    ROOT_CA_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    node: _objects_pb2.Node
    managers: _containers.RepeatedCompositeFieldContainer[WeightedPeer]
    root_ca: bytes
    def __init__(self, session_id: _Optional[str] = ..., node: _Optional[_Union[_objects_pb2.Node, _Mapping]] = ..., managers: _Optional[_Iterable[_Union[WeightedPeer, _Mapping]]] = ..., root_ca: _Optional[bytes] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("period",)
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    period: int
    def __init__(self, period: _Optional[int] = ...) -> None: ...

class TaskStatusUpdate(_message.Message):
    __slots__ = ("task_id", "status")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    status: _objects_pb2.TaskStatus
    def __init__(self, task_id: _Optional[str] = ..., status: _Optional[_Union[_objects_pb2.TaskStatus, _Mapping]] = ...) -> None: ...

class UpdateTaskStatusRequest(_message.Message):
    __slots__ = ("session_id", "updates")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    updates: _containers.RepeatedCompositeFieldContainer[TaskStatusUpdate]
    def __init__(self, session_id: _Optional[str] = ..., updates: _Optional[_Iterable[_Union[TaskStatusUpdate, _Mapping]]] = ...) -> None: ...

class UpdateTaskStatusResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AssignmentsRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class AssignmentChange(_message.Message):
    __slots__ = ("task", "action", "secret", "config")
    class Action(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        UPDATE: _ClassVar[AssignmentChange.Action]
        REMOVE: _ClassVar[AssignmentChange.Action]
    UPDATE: AssignmentChange.Action
    REMOVE: AssignmentChange.Action
    TASK_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    task: _objects_pb2.Task
    action: AssignmentChange.Action
    secret: _objects_pb2.Secret
    config: _objects_pb2.Config
    def __init__(self, task: _Optional[_Union[_objects_pb2.Task, _Mapping]] = ..., action: _Optional[_Union[AssignmentChange.Action, str]] = ..., secret: _Optional[_Union[_objects_pb2.Secret, _Mapping]] = ..., config: _Optional[_Union[_objects_pb2.Config, _Mapping]] = ...) -> None: ...

class AssignmentsMessage(_message.Message):
    __slots__ = ("type", "applies_to", "results_in", "changes", "network_view")
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        COMPLETE: _ClassVar[AssignmentsMessage.Type]
        INCREMENTAL: _ClassVar[AssignmentsMessage.Type]
    COMPLETE: AssignmentsMessage.Type
    INCREMENTAL: AssignmentsMessage.Type
    TYPE_FIELD_NUMBER: _ClassVar[int]
    APPLIES_TO_FIELD_NUMBER: _ClassVar[int]
    RESULTS_IN_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    NETWORK_VIEW_FIELD_NUMBER: _ClassVar[int]
    type: AssignmentsMessage.Type
    applies_to: str
    results_in: str
    changes: _containers.RepeatedCompositeFieldContainer[AssignmentChange]
    network_view: NetworkView
    def __init__(self, type: _Optional[_Union[AssignmentsMessage.Type, str]] = ..., applies_to: _Optional[str] = ..., results_in: _Optional[str] = ..., changes: _Optional[_Iterable[_Union[AssignmentChange, _Mapping]]] = ..., network_view: _Optional[_Union[NetworkView, _Mapping]] = ...) -> None: ...

class NetworkView(_message.Message):
    __slots__ = ("networks", "data_path_port", "underlay_addr")
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    DATA_PATH_PORT_FIELD_NUMBER: _ClassVar[int]
    UNDERLAY_ADDR_FIELD_NUMBER: _ClassVar[int]
    networks: _containers.RepeatedCompositeFieldContainer[NodeNetwork]
    data_path_port: int
    underlay_addr: str
    def __init__(self, networks: _Optional[_Iterable[_Union[NodeNetwork, _Mapping]]] = ..., data_path_port: _Optional[int] = ..., underlay_addr: _Optional[str] = ...) -> None: ...

class NodeNetwork(_message.Message):
    __slots__ = ("id", "name", "vni", "subnet", "gateway", "internal", "local", "peers", "services", "mtu", "ingress", "node_address")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VNI_FIELD_NUMBER: _ClassVar[int]
    SUBNET_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_FIELD_NUMBER: _ClassVar[int]
    LOCAL_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    MTU_FIELD_NUMBER: _ClassVar[int]
    INGRESS_FIELD_NUMBER: _ClassVar[int]
    NODE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    vni: int
    subnet: str
    gateway: str
    internal: bool
    local: _containers.RepeatedCompositeFieldContainer[NetworkEndpoint]
    peers: _containers.RepeatedCompositeFieldContainer[NetworkEndpoint]
    services: _containers.RepeatedCompositeFieldContainer[ServiceRecord]
    mtu: int
    ingress: bool
    node_address: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., vni: _Optional[int] = ..., subnet: _Optional[str] = ..., gateway: _Optional[str] = ..., internal: _Optional[bool] = ..., local: _Optional[_Iterable[_Union[NetworkEndpoint, _Mapping]]] = ..., peers: _Optional[_Iterable[_Union[NetworkEndpoint, _Mapping]]] = ..., services: _Optional[_Iterable[_Union[ServiceRecord, _Mapping]]] = ..., mtu: _Optional[int] = ..., ingress: _Optional[bool] = ..., node_address: _Optional[str] = ...) -> None: ...

class NetworkEndpoint(_message.Message):
    __slots__ = ("task_id", "task_name", "address", "mac", "node_id", "underlay_addr", "aliases", "service_id")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    UNDERLAY_ADDR_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    task_name: str
    address: str
    mac: str
    node_id: str
    underlay_addr: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    service_id: str
    def __init__(self, task_id: _Optional[str] = ..., task_name: _Optional[str] = ..., address: _Optional[str] = ..., mac: _Optional[str] = ..., node_id: _Optional[str] = ..., underlay_addr: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ..., service_id: _Optional[str] = ...) -> None: ...

class ServiceRecord(_message.Message):
    __slots__ = ("service_id", "name", "aliases", "vip", "dnsrr", "tasks", "published")
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    VIP_FIELD_NUMBER: _ClassVar[int]
    DNSRR_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    service_id: str
    name: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    vip: str
    dnsrr: bool
    tasks: _containers.RepeatedCompositeFieldContainer[ServiceTask]
    published: _containers.RepeatedCompositeFieldContainer[PublishedPort]
    def __init__(self, service_id: _Optional[str] = ..., name: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ..., vip: _Optional[str] = ..., dnsrr: _Optional[bool] = ..., tasks: _Optional[_Iterable[_Union[ServiceTask, _Mapping]]] = ..., published: _Optional[_Iterable[_Union[PublishedPort, _Mapping]]] = ...) -> None: ...

class PublishedPort(_message.Message):
    __slots__ = ("protocol", "published_port", "target_port", "proxy_protocol")
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_PORT_FIELD_NUMBER: _ClassVar[int]
    TARGET_PORT_FIELD_NUMBER: _ClassVar[int]
    PROXY_PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    protocol: str
    published_port: int
    target_port: int
    proxy_protocol: str
    def __init__(self, protocol: _Optional[str] = ..., published_port: _Optional[int] = ..., target_port: _Optional[int] = ..., proxy_protocol: _Optional[str] = ...) -> None: ...

class ServiceTask(_message.Message):
    __slots__ = ("task_id", "task_name", "ip")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_NAME_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    task_name: str
    ip: str
    def __init__(self, task_id: _Optional[str] = ..., task_name: _Optional[str] = ..., ip: _Optional[str] = ...) -> None: ...

class LogSelector(_message.Message):
    __slots__ = ("service_ids", "task_ids")
    SERVICE_IDS_FIELD_NUMBER: _ClassVar[int]
    TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    service_ids: _containers.RepeatedScalarFieldContainer[str]
    task_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, service_ids: _Optional[_Iterable[str]] = ..., task_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class LogOptions(_message.Message):
    __slots__ = ("follow", "tail", "timestamps", "since", "details")
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    TAIL_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMPS_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    follow: bool
    tail: int
    timestamps: bool
    since: int
    details: bool
    def __init__(self, follow: _Optional[bool] = ..., tail: _Optional[int] = ..., timestamps: _Optional[bool] = ..., since: _Optional[int] = ..., details: _Optional[bool] = ...) -> None: ...

class LogSubscription(_message.Message):
    __slots__ = ("id", "selector", "options", "close")
    ID_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    id: str
    selector: LogSelector
    options: LogOptions
    close: bool
    def __init__(self, id: _Optional[str] = ..., selector: _Optional[_Union[LogSelector, _Mapping]] = ..., options: _Optional[_Union[LogOptions, _Mapping]] = ..., close: _Optional[bool] = ...) -> None: ...

class LogSubscriptionsRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class LogContext(_message.Message):
    __slots__ = ("service_id", "node_id", "task_id")
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    service_id: str
    node_id: str
    task_id: str
    def __init__(self, service_id: _Optional[str] = ..., node_id: _Optional[str] = ..., task_id: _Optional[str] = ...) -> None: ...

class LogAttr(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class LogMessage(_message.Message):
    __slots__ = ("context", "timestamp", "stream", "data", "attrs")
    class Stream(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STDOUT: _ClassVar[LogMessage.Stream]
        STDERR: _ClassVar[LogMessage.Stream]
    STDOUT: LogMessage.Stream
    STDERR: LogMessage.Stream
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    ATTRS_FIELD_NUMBER: _ClassVar[int]
    context: LogContext
    timestamp: int
    stream: LogMessage.Stream
    data: bytes
    attrs: _containers.RepeatedCompositeFieldContainer[LogAttr]
    def __init__(self, context: _Optional[_Union[LogContext, _Mapping]] = ..., timestamp: _Optional[int] = ..., stream: _Optional[_Union[LogMessage.Stream, str]] = ..., data: _Optional[bytes] = ..., attrs: _Optional[_Iterable[_Union[LogAttr, _Mapping]]] = ...) -> None: ...

class PublishLogsMessage(_message.Message):
    __slots__ = ("subscription_id", "messages", "close")
    SUBSCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    subscription_id: str
    messages: _containers.RepeatedCompositeFieldContainer[LogMessage]
    close: bool
    def __init__(self, subscription_id: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[LogMessage, _Mapping]]] = ..., close: _Optional[bool] = ...) -> None: ...

class PublishLogsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
