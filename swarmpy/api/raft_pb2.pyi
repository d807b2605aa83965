from swarmpy.api import objects_pb2 as _objects_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RaftEntry(_message.Message):
    __slots__ = ("term", "index", "type", "data")
    TERM_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    term: int
    index: int
    type: int
    data: bytes
    def __init__(self, term: _Optional[int] = ..., index: _Optional[int] = ..., type: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class RaftSnapshot(_message.Message):
    __slots__ = ("index", "term", "voters", "data", "learners")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    VOTERS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    LEARNERS_FIELD_NUMBER: _ClassVar[int]
    index: int
    term: int
    voters: _containers.RepeatedScalarFieldContainer[int]
    data: bytes
    learners: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, index: _Optional[int] = ..., term: _Optional[int] = ..., voters: _Optional[_Iterable[int]] = ..., data: _Optional[bytes] = ..., learners: _Optional[_Iterable[int]] = ...) -> None: ...

class RaftMessage(_message.Message):
    __slots__ = ("type", "to", "term", "log_term", "index", "entries", "commit", "reject", "reject_hint", "snapshot", "context")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    LOG_TERM_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    REJECT_FIELD_NUMBER: _ClassVar[int]
    REJECT_HINT_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    type: int
    to: int
    term: int
    log_term: int
    index: int
    entries: _containers.RepeatedCompositeFieldContainer[RaftEntry]
    commit: int
    reject: bool
    reject_hint: int
    snapshot: RaftSnapshot
    context: bytes
    def __init__(self, type: _Optional[int] = ..., to: _Optional[int] = ..., term: _Optional[int] = ..., log_term: _Optional[int] = ..., index: _Optional[int] = ..., entries: _Optional[_Iterable[_Union[RaftEntry, _Mapping]]] = ..., commit: _Optional[int] = ..., reject: _Optional[bool] = ..., reject_hint: _Optional[int] = ..., snapshot: _Optional[_Union[RaftSnapshot, _Mapping]] = ..., context: _Optional[bytes] = ..., **kwargs) -> None: ...

class RaftMessageBatch(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[RaftMessage]
    def __init__(self, messages: _Optional[_Iterable[_Union[RaftMessage, _Mapping]]] = ...) -> None: ...

class RaftMessageChunk(_message.Message):
    __slots__ = ("header", "total_data_bytes", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    TOTAL_DATA_BYTES_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: RaftMessage
    total_data_bytes: int
    data: bytes
    def __init__(self, header: _Optional[_Union[RaftMessage, _Mapping]] = ..., total_data_bytes: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class ProcessRaftMessageResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RaftJoinRequest(_message.Message):
    __slots__ = ("addr",)
    ADDR_FIELD_NUMBER: _ClassVar[int]
    addr: str
    def __init__(self, addr: _Optional[str] = ...) -> None: ...

class RaftJoinResponse(_message.Message):
    __slots__ = ("raft_id", "members")
    RAFT_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    raft_id: int
    members: _containers.RepeatedCompositeFieldContainer[_objects_pb2.RaftMember]
    def __init__(self, raft_id: _Optional[int] = ..., members: _Optional[_Iterable[_Union[_objects_pb2.RaftMember, _Mapping]]] = ...) -> None: ...

class RaftLeaveRequest(_message.Message):
    __slots__ = ("raft_id",)
    RAFT_ID_FIELD_NUMBER: _ClassVar[int]
    raft_id: int
    def __init__(self, raft_id: _Optional[int] = ...) -> None: ...

class RaftLeaveResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
