from swarmpy.api import objects_pb2 as _objects_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetRootCACertificateRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetRootCACertificateResponse(_message.Message):
    __slots__ = ("certificate",)
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    certificate: bytes
    def __init__(self, certificate: _Optional[bytes] = ...) -> None: ...

class IssueNodeCertificateRequest(_message.Message):
    __slots__ = ("csr", "token", "availability", "advertise_addr")
    CSR_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    AVAILABILITY_FIELD_NUMBER: _ClassVar[int]
    ADVERTISE_ADDR_FIELD_NUMBER: _ClassVar[int]
    csr: bytes
    token: str
    availability: _objects_pb2.NodeSpec.Availability
    advertise_addr: str
    def __init__(self, csr: _Optional[bytes] = ..., token: _Optional[str] = ..., availability: _Optional[_Union[_objects_pb2.NodeSpec.Availability, str]] = ..., advertise_addr: _Optional[str] = ...) -> None: ...

class IssueNodeCertificateResponse(_message.Message):
    __slots__ = ("node_id", "certificate", "role", "cluster_id")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    certificate: bytes
    role: _objects_pb2.NodeRole
    cluster_id: str
    def __init__(self, node_id: _Optional[str] = ..., certificate: _Optional[bytes] = ..., role: _Optional[_Union[_objects_pb2.NodeRole, str]] = ..., cluster_id: _Optional[str] = ...) -> None: ...

class RenewNodeCertificateRequest(_message.Message):
    __slots__ = ("csr", "forwarded_node_id")
    CSR_FIELD_NUMBER: _ClassVar[int]
    FORWARDED_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    csr: bytes
    forwarded_node_id: str
    def __init__(self, csr: _Optional[bytes] = ..., forwarded_node_id: _Optional[str] = ...) -> None: ...

class RenewNodeCertificateResponse(_message.Message):
    __slots__ = ("certificate",)
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    certificate: bytes
    def __init__(self, certificate: _Optional[bytes] = ...) -> None: ...
