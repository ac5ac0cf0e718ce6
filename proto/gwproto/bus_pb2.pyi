from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Envelope(_message.Message):
    __slots__ = ("protocol_version", "message_id", "correlation_id", "sender", "federation_id", "request_id", "deadline_unix_ms", "payment_hash", "ready", "disconnect", "heartbeat", "request", "reply", "error")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    FEDERATION_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_HASH_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    DISCONNECT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    REPLY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    message_id: str
    correlation_id: str
    sender: str
    federation_id: str
    request_id: str
    deadline_unix_ms: int
    payment_hash: str
    ready: Ready
    disconnect: Disconnect
    heartbeat: Heartbeat
    request: Request
    reply: Reply
    error: Error
    def __init__(self, protocol_version: _Optional[int] = ..., message_id: _Optional[str] = ..., correlation_id: _Optional[str] = ..., sender: _Optional[str] = ..., federation_id: _Optional[str] = ..., request_id: _Optional[str] = ..., deadline_unix_ms: _Optional[int] = ..., payment_hash: _Optional[str] = ..., ready: _Optional[_Union[Ready, _Mapping]] = ..., disconnect: _Optional[_Union[Disconnect, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., request: _Optional[_Union[Request, _Mapping]] = ..., reply: _Optional[_Union[Reply, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class Ready(_message.Message):
    __slots__ = ("service", "incarnation")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    service: str
    incarnation: str
    def __init__(self, service: _Optional[str] = ..., incarnation: _Optional[str] = ...) -> None: ...

class Disconnect(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Request(_message.Message):
    __slots__ = ("service", "method", "payload", "idempotent", "attempt")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    service: str
    method: str
    payload: bytes
    idempotent: bool
    attempt: int
    def __init__(self, service: _Optional[str] = ..., method: _Optional[str] = ..., payload: _Optional[bytes] = ..., idempotent: _Optional[bool] = ..., attempt: _Optional[int] = ...) -> None: ...

class Reply(_message.Message):
    __slots__ = ("payload", "replayed")
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    replayed: bool
    def __init__(self, payload: _Optional[bytes] = ..., replayed: _Optional[bool] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "message", "retryable", "replayed")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    retryable: bool
    replayed: bool
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., retryable: _Optional[bool] = ..., replayed: _Optional[bool] = ...) -> None: ...

class LivenessRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WorkerStatus(_message.Message):
    __slots__ = ("identity", "service", "state", "incarnation", "last_seen_age_s", "ready_since_unix_ms", "in_flight", "requests_forwarded")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[WorkerStatus.State]
        ALIVE: _ClassVar[WorkerStatus.State]
        EXPIRED: _ClassVar[WorkerStatus.State]
        DISCONNECTED: _ClassVar[WorkerStatus.State]
    STATE_UNSPECIFIED: WorkerStatus.State
    ALIVE: WorkerStatus.State
    EXPIRED: WorkerStatus.State
    DISCONNECTED: WorkerStatus.State
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_AGE_S_FIELD_NUMBER: _ClassVar[int]
    READY_SINCE_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FORWARDED_FIELD_NUMBER: _ClassVar[int]
    identity: str
    service: str
    state: WorkerStatus.State
    incarnation: str
    last_seen_age_s: float
    ready_since_unix_ms: int
    in_flight: int
    requests_forwarded: int
    def __init__(self, identity: _Optional[str] = ..., service: _Optional[str] = ..., state: _Optional[_Union[WorkerStatus.State, str]] = ..., incarnation: _Optional[str] = ..., last_seen_age_s: _Optional[float] = ..., ready_since_unix_ms: _Optional[int] = ..., in_flight: _Optional[int] = ..., requests_forwarded: _Optional[int] = ...) -> None: ...

class LivenessReport(_message.Message):
    __slots__ = ("workers", "broker_started_unix_ms", "counters")
    class CountersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    BROKER_STARTED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    workers: _containers.RepeatedCompositeFieldContainer[WorkerStatus]
    broker_started_unix_ms: int
    counters: _containers.ScalarMap[str, int]
    def __init__(self, workers: _Optional[_Iterable[_Union[WorkerStatus, _Mapping]]] = ..., broker_started_unix_ms: _Optional[int] = ..., counters: _Optional[_Mapping[str, int]] = ...) -> None: ...
