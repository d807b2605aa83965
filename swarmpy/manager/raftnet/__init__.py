"""Raft between managers: the gRPC mutual-TLS transport (transport.py), the Raft service (servicer.py)
and the wire format of Raft messages (codec.py)."""

from .codec import MalformedRaftMessage, decode_message, encode_message
from .servicer import MembersSenderCheck, RaftServicer, random_raft_id
from .transport import GrpcTransport, MessageTooLarge

__all__ = [
    "GrpcTransport",
    "MalformedRaftMessage",
    "MembersSenderCheck",
    "MessageTooLarge",
    "RaftServicer",
    "decode_message",
    "encode_message",
    "random_raft_id",
]
