from gwproto import lnd_lightning_pb2 as _lnd_lightning_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResolveHoldForwardAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SETTLE: _ClassVar[ResolveHoldForwardAction]
    FAIL: _ClassVar[ResolveHoldForwardAction]
    RESUME: _ClassVar[ResolveHoldForwardAction]
    RESUME_MODIFIED: _ClassVar[ResolveHoldForwardAction]
SETTLE: ResolveHoldForwardAction
FAIL: ResolveHoldForwardAction
RESUME: ResolveHoldForwardAction
RESUME_MODIFIED: ResolveHoldForwardAction

class SendPaymentRequest(_message.Message):
    __slots__ = ("payment_request", "timeout_seconds", "cltv_limit", "amt_msat", "fee_limit_msat", "allow_self_payment", "max_parts", "no_inflight_updates")
    PAYMENT_REQUEST_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CLTV_LIMIT_FIELD_NUMBER: _ClassVar[int]
    AMT_MSAT_FIELD_NUMBER: _ClassVar[int]
    FEE_LIMIT_MSAT_FIELD_NUMBER: _ClassVar[int]
    ALLOW_SELF_PAYMENT_FIELD_NUMBER: _ClassVar[int]
    MAX_PARTS_FIELD_NUMBER: _ClassVar[int]
    NO_INFLIGHT_UPDATES_FIELD_NUMBER: _ClassVar[int]
    payment_request: str
    timeout_seconds: int
    cltv_limit: int
    amt_msat: int
    fee_limit_msat: int
    allow_self_payment: bool
    max_parts: int
    no_inflight_updates: bool
    def __init__(self, payment_request: _Optional[str] = ..., timeout_seconds: _Optional[int] = ..., cltv_limit: _Optional[int] = ..., amt_msat: _Optional[int] = ..., fee_limit_msat: _Optional[int] = ..., allow_self_payment: _Optional[bool] = ..., max_parts: _Optional[int] = ..., no_inflight_updates: _Optional[bool] = ...) -> None: ...

class TrackPaymentRequest(_message.Message):
    __slots__ = ("payment_hash", "no_inflight_updates")
    PAYMENT_HASH_FIELD_NUMBER: _ClassVar[int]
    NO_INFLIGHT_UPDATES_FIELD_NUMBER: _ClassVar[int]
    payment_hash: bytes
    no_inflight_updates: bool
    def __init__(self, payment_hash: _Optional[bytes] = ..., no_inflight_updates: _Optional[bool] = ...) -> None: ...

class CircuitKey(_message.Message):
    __slots__ = ("chan_id", "htlc_id")
    CHAN_ID_FIELD_NUMBER: _ClassVar[int]
    HTLC_ID_FIELD_NUMBER: _ClassVar[int]
    chan_id: int
    htlc_id: int
    def __init__(self, chan_id: _Optional[int] = ..., htlc_id: _Optional[int] = ...) -> None: ...

class ForwardHtlcInterceptRequest(_message.Message):
    __slots__ = ("incoming_circuit_key", "payment_hash", "outgoing_amount_msat", "outgoing_expiry", "incoming_amount_msat", "incoming_expiry", "outgoing_requested_chan_id", "onion_blob", "auto_fail_height")
    INCOMING_CIRCUIT_KEY_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_HASH_FIELD_NUMBER: _ClassVar[int]
    OUTGOING_AMOUNT_MSAT_FIELD_NUMBER: _ClassVar[int]
    OUTGOING_EXPIRY_FIELD_NUMBER: _ClassVar[int]
    INCOMING_AMOUNT_MSAT_FIELD_NUMBER: _ClassVar[int]
    INCOMING_EXPIRY_FIELD_NUMBER: _ClassVar[int]
    OUTGOING_REQUESTED_CHAN_ID_FIELD_NUMBER: _ClassVar[int]
    ONION_BLOB_FIELD_NUMBER: _ClassVar[int]
    AUTO_FAIL_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    incoming_circuit_key: CircuitKey
    payment_hash: bytes
    outgoing_amount_msat: int
    outgoing_expiry: int
    incoming_amount_msat: int
    incoming_expiry: int
    outgoing_requested_chan_id: int
    onion_blob: bytes
    auto_fail_height: int
    def __init__(self, incoming_circuit_key: _Optional[_Union[CircuitKey, _Mapping]] = ..., payment_hash: _Optional[bytes] = ..., outgoing_amount_msat: _Optional[int] = ..., outgoing_expiry: _Optional[int] = ..., incoming_amount_msat: _Optional[int] = ..., incoming_expiry: _Optional[int] = ..., outgoing_requested_chan_id: _Optional[int] = ..., onion_blob: _Optional[bytes] = ..., auto_fail_height: _Optional[int] = ...) -> None: ...

class ForwardHtlcInterceptResponse(_message.Message):
    __slots__ = ("incoming_circuit_key", "action", "preimage", "failure_message", "failure_code")
    INCOMING_CIRCUIT_KEY_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    PREIMAGE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_CODE_FIELD_NUMBER: _ClassVar[int]
    incoming_circuit_key: CircuitKey
    action: ResolveHoldForwardAction
    preimage: bytes
    failure_message: bytes
    failure_code: _lnd_lightning_pb2.Failure.FailureCode
    def __init__(self, incoming_circuit_key: _Optional[_Union[CircuitKey, _Mapping]] = ..., action: _Optional[_Union[ResolveHoldForwardAction, str]] = ..., preimage: _Optional[bytes] = ..., failure_message: _Optional[bytes] = ..., failure_code: _Optional[_Union[_lnd_lightning_pb2.Failure.FailureCode, str]] = ...) -> None: ...
