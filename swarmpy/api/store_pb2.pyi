from swarmpy.api import objects_pb2 as _objects_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StoreAction(_message.Message):
    __slots__ = ("kind", "node", "service", "task", "cluster", "secret", "config", "network")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        CREATE: _ClassVar[StoreAction.Kind]
        UPDATE: _ClassVar[StoreAction.Kind]
        REMOVE: _ClassVar[StoreAction.Kind]
    CREATE: StoreAction.Kind
    UPDATE: StoreAction.Kind
    REMOVE: StoreAction.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    kind: StoreAction.Kind
    node: _objects_pb2.Node
    service: _objects_pb2.Service
    task: _objects_pb2.Task
    cluster: _objects_pb2.Cluster
    secret: _objects_pb2.Secret
    config: _objects_pb2.Config
    network: _objects_pb2.Network
    def __init__(self, kind: _Optional[_Union[StoreAction.Kind, str]] = ..., node: _Optional[_Union[_objects_pb2.Node, _Mapping]] = ..., service: _Optional[_Union[_objects_pb2.Service, _Mapping]] = ..., task: _Optional[_Union[_objects_pb2.Task, _Mapping]] = ..., cluster: _Optional[_Union[_objects_pb2.Cluster, _Mapping]] = ..., secret: _Optional[_Union[_objects_pb2.Secret, _Mapping]] = ..., config: _Optional[_Union[_objects_pb2.Config, _Mapping]] = ..., network: _Optional[_Union[_objects_pb2.Network, _Mapping]] = ...) -> None: ...

class StoreProposal(_message.Message):
    __slots__ = ("actions",)
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    actions: _containers.RepeatedCompositeFieldContainer[StoreAction]
    def __init__(self, actions: _Optional[_Iterable[_Union[StoreAction, _Mapping]]] = ...) -> None: ...

class StoreSnapshot(_message.Message):
    __slots__ = ("nodes", "services", "tasks", "clusters", "members", "secrets", "configs", "networks")
    NODES_FIELD_NUMBER: _ClassVar[int]
    SERVICES_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    CONFIGS_FIELD_NUMBER: _ClassVar[int]
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[_objects_pb2.Node]
    services: _containers.RepeatedCompositeFieldContainer[_objects_pb2.Service]
    tasks: _containers.RepeatedCompositeFieldContainer[_objects_pb2.Task]
    clusters: _containers.RepeatedCompositeFieldContainer[_objects_pb2.Cluster]
    members: _containers.RepeatedCompositeFieldContainer[_objects_pb2.RaftMember]
    secrets: _containers.RepeatedCompositeFieldContainer[_objects_pb2.Secret]
    configs: _containers.RepeatedCompositeFieldContainer[_objects_pb2.Config]
    networks: _containers.RepeatedCompositeFieldContainer[_objects_pb2.Network]
    def __init__(self, nodes: _Optional[_Iterable[_Union[_objects_pb2.Node, _Mapping]]] = ..., services: _Optional[_Iterable[_Union[_objects_pb2.Service, _Mapping]]] = ..., tasks: _Optional[_Iterable[_Union[_objects_pb2.Task, _Mapping]]] = ..., clusters: _Optional[_Iterable[_Union[_objects_pb2.Cluster, _Mapping]]] = ..., members: _Optional[_Iterable[_Union[_objects_pb2.RaftMember, _Mapping]]] = ..., secrets: _Optional[_Iterable[_Union[_objects_pb2.Secret, _Mapping]]] = ..., configs: _Optional[_Iterable[_Union[_objects_pb2.Config, _Mapping]]] = ..., networks: _Optional[_Iterable[_Union[_objects_pb2.Network, _Mapping]]] = ...) -> None: ...
