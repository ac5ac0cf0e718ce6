from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PaymentStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PAYMENT_STATUS_UNSPECIFIED: _ClassVar[PaymentStatus]
    SETTLED: _ClassVar[PaymentStatus]
    FAILED: _ClassVar[PaymentStatus]
    PENDING: _ClassVar[PaymentStatus]
    UNKNOWN: _ClassVar[PaymentStatus]
PAYMENT_STATUS_UNSPECIFIED: PaymentStatus
SETTLED: PaymentStatus
FAILED: PaymentStatus
PENDING: PaymentStatus
UNKNOWN: PaymentStatus

class GetNodeInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetNodeInfoResponse(_message.Message):
    __slots__ = ("pub_key", "alias", "network", "block_height", "synced")
    PUB_KEY_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    SYNCED_FIELD_NUMBER: _ClassVar[int]
    pub_key: bytes
    alias: str
    network: str
    block_height: int
    synced: bool
    def __init__(self, pub_key: _Optional[bytes] = ..., alias: _Optional[str] = ..., network: _Optional[str] = ..., block_height: _Optional[int] = ..., synced: _Optional[bool] = ...) -> None: ...

class GetRouteHintsRequest(_message.Message):
    __slots__ = ("num_route_hints",)
    NUM_ROUTE_HINTS_FIELD_NUMBER: _ClassVar[int]
    num_route_hints: int
    def __init__(self, num_route_hints: _Optional[int] = ...) -> None: ...

class RouteHintHop(_message.Message):
    __slots__ = ("src_node_id", "short_channel_id", "base_msat", "proportional_millionths", "cltv_expiry_delta", "htlc_minimum_msat", "htlc_maximum_msat")
    SRC_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    SHORT_CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    BASE_MSAT_FIELD_NUMBER: _ClassVar[int]
    PROPORTIONAL_MILLIONTHS_FIELD_NUMBER: _ClassVar[int]
    CLTV_EXPIRY_DELTA_FIELD_NUMBER: _ClassVar[int]
    HTLC_MINIMUM_MSAT_FIELD_NUMBER: _ClassVar[int]
    HTLC_MAXIMUM_MSAT_FIELD_NUMBER: _ClassVar[int]
    src_node_id: bytes
    short_channel_id: int
    base_msat: int
    proportional_millionths: int
    cltv_expiry_delta: int
    htlc_minimum_msat: int
    htlc_maximum_msat: int
    def __init__(self, src_node_id: _Optional[bytes] = ..., short_channel_id: _Optional[int] = ..., base_msat: _Optional[int] = ..., proportional_millionths: _Optional[int] = ..., cltv_expiry_delta: _Optional[int] = ..., htlc_minimum_msat: _Optional[int] = ..., htlc_maximum_msat: _Optional[int] = ...) -> None: ...

class RouteHint(_message.Message):
    __slots__ = ("hops",)
    HOPS_FIELD_NUMBER: _ClassVar[int]
    hops: _containers.RepeatedCompositeFieldContainer[RouteHintHop]
    def __init__(self, hops: _Optional[_Iterable[_Union[RouteHintHop, _Mapping]]] = ...) -> None: ...

class GetRouteHintsResponse(_message.Message):
    __slots__ = ("route_hints",)
    ROUTE_HINTS_FIELD_NUMBER: _ClassVar[int]
    route_hints: _containers.RepeatedCompositeFieldContainer[RouteHint]
    def __init__(self, route_hints: _Optional[_Iterable[_Union[RouteHint, _Mapping]]] = ...) -> None: ...

class PayInvoiceRequest(_message.Message):
    __slots__ = ("invoice", "max_delay", "max_fee_msat", "payment_hash")
    INVOICE_FIELD_NUMBER: _ClassVar[int]
    MAX_DELAY_FIELD_NUMBER: _ClassVar[int]
    MAX_FEE_MSAT_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_HASH_FIELD_NUMBER: _ClassVar[int]
    invoice: str
    max_delay: int
    max_fee_msat: int
    payment_hash: bytes
    def __init__(self, invoice: _Optional[str] = ..., max_delay: _Optional[int] = ..., max_fee_msat: _Optional[int] = ..., payment_hash: _Optional[bytes] = ...) -> None: ...

class PayInvoiceResponse(_message.Message):
    __slots__ = ("status", "preimage", "fee_msat", "failure_reason", "failure_code")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PREIMAGE_FIELD_NUMBER: _ClassVar[int]
    FEE_MSAT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    FAILURE_CODE_FIELD_NUMBER: _ClassVar[int]
    status: PaymentStatus
    preimage: bytes
    fee_msat: int
    failure_reason: str
    failure_code: int
    def __init__(self, status: _Optional[_Union[PaymentStatus, str]] = ..., preimage: _Optional[bytes] = ..., fee_msat: _Optional[int] = ..., failure_reason: _Optional[str] = ..., failure_code: _Optional[int] = ...) -> None: ...

class LookupPaymentRequest(_message.Message):
    __slots__ = ("payment_hash",)
    PAYMENT_HASH_FIELD_NUMBER: _ClassVar[int]
    payment_hash: bytes
    def __init__(self, payment_hash: _Optional[bytes] = ...) -> None: ...

class LookupPaymentResponse(_message.Message):
    __slots__ = ("status", "preimage", "fee_msat", "failure_reason", "invoice")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PREIMAGE_FIELD_NUMBER: _ClassVar[int]
    FEE_MSAT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    INVOICE_FIELD_NUMBER: _ClassVar[int]
    status: PaymentStatus
    preimage: bytes
    fee_msat: int
    failure_reason: str
    invoice: str
    def __init__(self, status: _Optional[_Union[PaymentStatus, str]] = ..., preimage: _Optional[bytes] = ..., fee_msat: _Optional[int] = ..., failure_reason: _Optional[str] = ..., invoice: _Optional[str] = ...) -> None: ...

class RouteHtlcsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class InterceptedHtlc(_message.Message):
    __slots__ = ("payment_hash", "incoming_amount_msat", "outgoing_amount_msat", "incoming_expiry", "short_channel_id", "incoming_chan_id", "htlc_id", "outgoing_expiry", "hold_invoice")
    PAYMENT_HASH_FIELD_NUMBER: _ClassVar[int]
    INCOMING_AMOUNT_MSAT_FIELD_NUMBER: _ClassVar[int]
    OUTGOING_AMOUNT_MSAT_FIELD_NUMBER: _ClassVar[int]
    INCOMING_EXPIRY_FIELD_NUMBER: _ClassVar[int]
    SHORT_CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    INCOMING_CHAN_ID_FIELD_NUMBER: _ClassVar[int]
    HTLC_ID_FIELD_NUMBER: _ClassVar[int]
    OUTGOING_EXPIRY_FIELD_NUMBER: _ClassVar[int]
    HOLD_INVOICE_FIELD_NUMBER: _ClassVar[int]
    payment_hash: bytes
    incoming_amount_msat: int
    outgoing_amount_msat: int
    incoming_expiry: int
    short_channel_id: int
    incoming_chan_id: int
    htlc_id: int
    outgoing_expiry: int
    hold_invoice: bool
    def __init__(self, payment_hash: _Optional[bytes] = ..., incoming_amount_msat: _Optional[int] = ..., outgoing_amount_msat: _Optional[int] = ..., incoming_expiry: _Optional[int] = ..., short_channel_id: _Optional[int] = ..., incoming_chan_id: _Optional[int] = ..., htlc_id: _Optional[int] = ..., outgoing_expiry: _Optional[int] = ..., hold_invoice: _Optional[bool] = ...) -> None: ...

class CompleteHtlcRequest(_message.Message):
    __slots__ = ("incoming_chan_id", "htlc_id", "settle", "cancel", "forward")
    class Settle(_message.Message):
        __slots__ = ("preimage",)
        PREIMAGE_FIELD_NUMBER: _ClassVar[int]
        preimage: bytes
        def __init__(self, preimage: _Optional[bytes] = ...) -> None: ...
    class Cancel(_message.Message):
        __slots__ = ("reason", "failure_code")
        REASON_FIELD_NUMBER: _ClassVar[int]
        FAILURE_CODE_FIELD_NUMBER: _ClassVar[int]
        reason: str
        failure_code: int
        def __init__(self, reason: _Optional[str] = ..., failure_code: _Optional[int] = ...) -> None: ...
    class Forward(_message.Message):
        __slots__ = ()
        def __init__(self) -> None: ...
    INCOMING_CHAN_ID_FIELD_NUMBER: _ClassVar[int]
    HTLC_ID_FIELD_NUMBER: _ClassVar[int]
    SETTLE_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    FORWARD_FIELD_NUMBER: _ClassVar[int]
    incoming_chan_id: int
    htlc_id: int
    settle: CompleteHtlcRequest.Settle
    cancel: CompleteHtlcRequest.Cancel
    forward: CompleteHtlcRequest.Forward
    def __init__(self, incoming_chan_id: _Optional[int] = ..., htlc_id: _Optional[int] = ..., settle: _Optional[_Union[CompleteHtlcRequest.Settle, _Mapping]] = ..., cancel: _Optional[_Union[CompleteHtlcRequest.Cancel, _Mapping]] = ..., forward: _Optional[_Union[CompleteHtlcRequest.Forward, _Mapping]] = ...) -> None: ...

class CompleteHtlcResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateInvoiceRequest(_message.Message):
    __slots__ = ("payment_hash", "amount_msat", "memo", "description_hash", "expiry_secs")
    PAYMENT_HASH_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MSAT_FIELD_NUMBER: _ClassVar[int]
    MEMO_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_HASH_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_SECS_FIELD_NUMBER: _ClassVar[int]
    payment_hash: bytes
    amount_msat: int
    memo: str
    description_hash: bytes
    expiry_secs: int
    def __init__(self, payment_hash: _Optional[bytes] = ..., amount_msat: _Optional[int] = ..., memo: _Optional[str] = ..., description_hash: _Optional[bytes] = ..., expiry_secs: _Optional[int] = ...) -> None: ...

class CreateInvoiceResponse(_message.Message):
    __slots__ = ("invoice",)
    INVOICE_FIELD_NUMBER: _ClassVar[int]
    invoice: str
    def __init__(self, invoice: _Optional[str] = ...) -> None: ...

class GetBalancesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ChannelBalance(_message.Message):
    __slots__ = ("peer_id", "short_channel_id", "capacity_sat", "local_msat", "remote_msat", "active")
    PEER_ID_FIELD_NUMBER: _ClassVar[int]
    SHORT_CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_SAT_FIELD_NUMBER: _ClassVar[int]
    LOCAL_MSAT_FIELD_NUMBER: _ClassVar[int]
    REMOTE_MSAT_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    peer_id: bytes
    short_channel_id: int
    capacity_sat: int
    local_msat: int
    remote_msat: int
    active: bool
    def __init__(self, peer_id: _Optional[bytes] = ..., short_channel_id: _Optional[int] = ..., capacity_sat: _Optional[int] = ..., local_msat: _Optional[int] = ..., remote_msat: _Optional[int] = ..., active: _Optional[bool] = ...) -> None: ...

class GetBalancesResponse(_message.Message):
    __slots__ = ("onchain_balance_sat", "lightning_balance_msat", "inbound_lightning_liquidity_msat", "channels")
    ONCHAIN_BALANCE_SAT_FIELD_NUMBER: _ClassVar[int]
    LIGHTNING_BALANCE_MSAT_FIELD_NUMBER: _ClassVar[int]
    INBOUND_LIGHTNING_LIQUIDITY_MSAT_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    onchain_balance_sat: int
    lightning_balance_msat: int
    inbound_lightning_liquidity_msat: int
    channels: _containers.RepeatedCompositeFieldContainer[ChannelBalance]
    def __init__(self, onchain_balance_sat: _Optional[int] = ..., lightning_balance_msat: _Optional[int] = ..., inbound_lightning_liquidity_msat: _Optional[int] = ..., channels: _Optional[_Iterable[_Union[ChannelBalance, _Mapping]]] = ...) -> None: ...

class InterceptForwardsRequest(_message.Message):
    __slots__ = ("enabled",)
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    def __init__(self, enabled: _Optional[bool] = ...) -> None: ...

class InterceptForwardsResponse(_message.Message):
    __slots__ = ("intercepting", "node_requires")
    INTERCEPTING_FIELD_NUMBER: _ClassVar[int]
    NODE_REQUIRES_FIELD_NUMBER: _ClassVar[int]
    intercepting: bool
    node_requires: bool
    def __init__(self, intercepting: _Optional[bool] = ..., node_requires: _Optional[bool] = ...) -> None: ...
