from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PaymentFailureReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FAILURE_REASON_NONE: _ClassVar[PaymentFailureReason]
    FAILURE_REASON_TIMEOUT: _ClassVar[PaymentFailureReason]
    FAILURE_REASON_NO_ROUTE: _ClassVar[PaymentFailureReason]
    FAILURE_REASON_ERROR: _ClassVar[PaymentFailureReason]
    FAILURE_REASON_INCORRECT_PAYMENT_DETAILS: _ClassVar[PaymentFailureReason]
    FAILURE_REASON_INSUFFICIENT_BALANCE: _ClassVar[PaymentFailureReason]
    FAILURE_REASON_CANCELED: _ClassVar[PaymentFailureReason]

class InvoiceHTLCState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACCEPTED: _ClassVar[InvoiceHTLCState]
    SETTLED: _ClassVar[InvoiceHTLCState]
    CANCELED: _ClassVar[InvoiceHTLCState]
FAILURE_REASON_NONE: PaymentFailureReason
FAILURE_REASON_TIMEOUT: PaymentFailureReason
FAILURE_REASON_NO_ROUTE: PaymentFailureReason
FAILURE_REASON_ERROR: PaymentFailureReason
FAILURE_REASON_INCORRECT_PAYMENT_DETAILS: PaymentFailureReason
FAILURE_REASON_INSUFFICIENT_BALANCE: PaymentFailureReason
FAILURE_REASON_CANCELED: PaymentFailureReason
ACCEPTED: InvoiceHTLCState
SETTLED: InvoiceHTLCState
CANCELED: InvoiceHTLCState

class WalletBalanceRequest(_message.Message):
    __slots__ = ("account", "min_confs")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    MIN_CONFS_FIELD_NUMBER: _ClassVar[int]
    account: str
    min_confs: int
    def __init__(self, account: _Optional[str] = ..., min_confs: _Optional[int] = ...) -> None: ...

class WalletBalanceResponse(_message.Message):
    __slots__ = ("total_balance", "confirmed_balance", "unconfirmed_balance")
    TOTAL_BALANCE_FIELD_NUMBER: _ClassVar[int]
    CONFIRMED_BALANCE_FIELD_NUMBER: _ClassVar[int]
    UNCONFIRMED_BALANCE_FIELD_NUMBER: _ClassVar[int]
    total_balance: int
    confirmed_balance: int
    unconfirmed_balance: int
    def __init__(self, total_balance: _Optional[int] = ..., confirmed_balance: _Optional[int] = ..., unconfirmed_balance: _Optional[int] = ...) -> None: ...

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetDebugInfoRequest(_message.Message):
    __slots__ = ("include_log",)
    INCLUDE_LOG_FIELD_NUMBER: _ClassVar[int]
    include_log: bool
    def __init__(self, include_log: _Optional[bool] = ...) -> None: ...

class GetDebugInfoResponse(_message.Message):
    __slots__ = ("config", "log")
    class ConfigEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    config: _containers.ScalarMap[str, str]
    log: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, config: _Optional[_Mapping[str, str]] = ..., log: _Optional[_Iterable[str]] = ...) -> None: ...

class Chain(_message.Message):
    __slots__ = ("chain", "network")
    CHAIN_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    chain: str
    network: str
    def __init__(self, chain: _Optional[str] = ..., network: _Optional[str] = ...) -> None: ...

class GetInfoResponse(_message.Message):
    __slots__ = ("identity_pubkey", "alias", "block_height", "synced_to_chain", "chains", "synced_to_graph")
    IDENTITY_PUBKEY_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    SYNCED_TO_CHAIN_FIELD_NUMBER: _ClassVar[int]
    CHAINS_FIELD_NUMBER: _ClassVar[int]
    SYNCED_TO_GRAPH_FIELD_NUMBER: _ClassVar[int]
    identity_pubkey: str
    alias: str
    block_height: int
    synced_to_chain: bool
    chains: _containers.RepeatedCompositeFieldContainer[Chain]
    synced_to_graph: bool
    def __init__(self, identity_pubkey: _Optional[str] = ..., alias: _Optional[str] = ..., block_height: _Optional[int] = ..., synced_to_chain: _Optional[bool] = ..., chains: _Optional[_Iterable[_Union[Chain, _Mapping]]] = ..., synced_to_graph: _Optional[bool] = ...) -> None: ...

class ListChannelsRequest(_message.Message):
    __slots__ = ("active_only", "inactive_only", "public_only", "private_only", "peer")
    ACTIVE_ONLY_FIELD_NUMBER: _ClassVar[int]
    INACTIVE_ONLY_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_ONLY_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    active_only: bool
    inactive_only: bool
    public_only: bool
    private_only: bool
    peer: bytes
    def __init__(self, active_only: _Optional[bool] = ..., inactive_only: _Optional[bool] = ..., public_only: _Optional[bool] = ..., private_only: _Optional[bool] = ..., peer: _Optional[bytes] = ...) -> None: ...

class Channel(_message.Message):
    __slots__ = ("active", "remote_pubkey", "channel_point", "chan_id", "capacity", "local_balance", "remote_balance", "private", "alias_scids", "zero_conf_confirmed_scid")
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    REMOTE_PUBKEY_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_POINT_FIELD_NUMBER: _ClassVar[int]
    CHAN_ID_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    LOCAL_BALANCE_FIELD_NUMBER: _ClassVar[int]
    REMOTE_BALANCE_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_FIELD_NUMBER: _ClassVar[int]
    ALIAS_SCIDS_FIELD_NUMBER: _ClassVar[int]
    ZERO_CONF_CONFIRMED_SCID_FIELD_NUMBER: _ClassVar[int]
    active: bool
    remote_pubkey: str
    channel_point: str
    chan_id: int
    capacity: int
    local_balance: int
    remote_balance: int
    private: bool
    alias_scids: _containers.RepeatedScalarFieldContainer[int]
    zero_conf_confirmed_scid: int
    def __init__(self, active: _Optional[bool] = ..., remote_pubkey: _Optional[str] = ..., channel_point: _Optional[str] = ..., chan_id: _Optional[int] = ..., capacity: _Optional[int] = ..., local_balance: _Optional[int] = ..., remote_balance: _Optional[int] = ..., private: _Optional[bool] = ..., alias_scids: _Optional[_Iterable[int]] = ..., zero_conf_confirmed_scid: _Optional[int] = ...) -> None: ...

class ListChannelsResponse(_message.Message):
    __slots__ = ("channels",)
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    channels: _containers.RepeatedCompositeFieldContainer[Channel]
    def __init__(self, channels: _Optional[_Iterable[_Union[Channel, _Mapping]]] = ...) -> None: ...

class ChanInfoRequest(_message.Message):
    __slots__ = ("chan_id",)
    CHAN_ID_FIELD_NUMBER: _ClassVar[int]
    chan_id: int
    def __init__(self, chan_id: _Optional[int] = ...) -> None: ...

class RoutingPolicy(_message.Message):
    __slots__ = ("time_lock_delta", "min_htlc", "fee_base_msat", "fee_rate_milli_msat", "disabled", "max_htlc_msat")
    TIME_LOCK_DELTA_FIELD_NUMBER: _ClassVar[int]
    MIN_HTLC_FIELD_NUMBER: _ClassVar[int]
    FEE_BASE_MSAT_FIELD_NUMBER: _ClassVar[int]
    FEE_RATE_MILLI_MSAT_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    MAX_HTLC_MSAT_FIELD_NUMBER: _ClassVar[int]
    time_lock_delta: int
    min_htlc: int
    fee_base_msat: int
    fee_rate_milli_msat: int
    disabled: bool
    max_htlc_msat: int
    def __init__(self, time_lock_delta: _Optional[int] = ..., min_htlc: _Optional[int] = ..., fee_base_msat: _Optional[int] = ..., fee_rate_milli_msat: _Optional[int] = ..., disabled: _Optional[bool] = ..., max_htlc_msat: _Optional[int] = ...) -> None: ...

class ChannelEdge(_message.Message):
    __slots__ = ("channel_id", "chan_point", "node1_pub", "node2_pub", "capacity", "node1_policy", "node2_policy")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    CHAN_POINT_FIELD_NUMBER: _ClassVar[int]
    NODE1_PUB_FIELD_NUMBER: _ClassVar[int]
    NODE2_PUB_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    NODE1_POLICY_FIELD_NUMBER: _ClassVar[int]
    NODE2_POLICY_FIELD_NUMBER: _ClassVar[int]
    channel_id: int
    chan_point: str
    node1_pub: str
    node2_pub: str
    capacity: int
    node1_policy: RoutingPolicy
    node2_policy: RoutingPolicy
    def __init__(self, channel_id: _Optional[int] = ..., chan_point: _Optional[str] = ..., node1_pub: _Optional[str] = ..., node2_pub: _Optional[str] = ..., capacity: _Optional[int] = ..., node1_policy: _Optional[_Union[RoutingPolicy, _Mapping]] = ..., node2_policy: _Optional[_Union[RoutingPolicy, _Mapping]] = ...) -> None: ...

class Payment(_message.Message):
    __slots__ = ("payment_hash", "payment_preimage", "value_msat", "payment_request", "status", "fee_msat", "creation_time_ns", "payment_index", "failure_reason")
    class PaymentStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        UNKNOWN: _ClassVar[Payment.PaymentStatus]
        IN_FLIGHT: _ClassVar[Payment.PaymentStatus]
        SUCCEEDED: _ClassVar[Payment.PaymentStatus]
        FAILED: _ClassVar[Payment.PaymentStatus]
        INITIATED: _ClassVar[Payment.PaymentStatus]
    UNKNOWN: Payment.PaymentStatus
    IN_FLIGHT: Payment.PaymentStatus
    SUCCEEDED: Payment.PaymentStatus
    FAILED: Payment.PaymentStatus
    INITIATED: Payment.PaymentStatus
    PAYMENT_HASH_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_PREIMAGE_FIELD_NUMBER: _ClassVar[int]
    VALUE_MSAT_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_REQUEST_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FEE_MSAT_FIELD_NUMBER: _ClassVar[int]
    CREATION_TIME_NS_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_INDEX_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    payment_hash: str
    payment_preimage: str
    value_msat: int
    payment_request: str
    status: Payment.PaymentStatus
    fee_msat: int
    creation_time_ns: int
    payment_index: int
    failure_reason: PaymentFailureReason
    def __init__(self, payment_hash: _Optional[str] = ..., payment_preimage: _Optional[str] = ..., value_msat: _Optional[int] = ..., payment_request: _Optional[str] = ..., status: _Optional[_Union[Payment.PaymentStatus, str]] = ..., fee_msat: _Optional[int] = ..., creation_time_ns: _Optional[int] = ..., payment_index: _Optional[int] = ..., failure_reason: _Optional[_Union[PaymentFailureReason, str]] = ...) -> None: ...

class Failure(_message.Message):
    __slots__ = ()
    class FailureCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        RESERVED: _ClassVar[Failure.FailureCode]
        INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS: _ClassVar[Failure.FailureCode]
        INVALID_ONION_VERSION: _ClassVar[Failure.FailureCode]
        INVALID_ONION_HMAC: _ClassVar[Failure.FailureCode]
        INVALID_ONION_KEY: _ClassVar[Failure.FailureCode]
        TEMPORARY_CHANNEL_FAILURE: _ClassVar[Failure.FailureCode]
        UNKNOWN_NEXT_PEER: _ClassVar[Failure.FailureCode]
        TEMPORARY_NODE_FAILURE: _ClassVar[Failure.FailureCode]
    RESERVED: Failure.FailureCode
    INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS: Failure.FailureCode
    INVALID_ONION_VERSION: Failure.FailureCode
    INVALID_ONION_HMAC: Failure.FailureCode
    INVALID_ONION_KEY: Failure.FailureCode
    TEMPORARY_CHANNEL_FAILURE: Failure.FailureCode
    UNKNOWN_NEXT_PEER: Failure.FailureCode
    TEMPORARY_NODE_FAILURE: Failure.FailureCode
    def __init__(self) -> None: ...

class Invoice(_message.Message):
    __slots__ = ("memo", "r_preimage", "r_hash", "value", "value_msat", "creation_date", "settle_date", "payment_request", "description_hash", "expiry", "cltv_expiry", "add_index", "settle_index", "amt_paid_sat", "amt_paid_msat", "state", "htlcs", "is_keysend", "payment_addr", "is_amp")
    class InvoiceState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OPEN: _ClassVar[Invoice.InvoiceState]
        SETTLED: _ClassVar[Invoice.InvoiceState]
        CANCELED: _ClassVar[Invoice.InvoiceState]
        ACCEPTED: _ClassVar[Invoice.InvoiceState]
    OPEN: Invoice.InvoiceState
    SETTLED: Invoice.InvoiceState
    CANCELED: Invoice.InvoiceState
    ACCEPTED: Invoice.InvoiceState
    MEMO_FIELD_NUMBER: _ClassVar[int]
    R_PREIMAGE_FIELD_NUMBER: _ClassVar[int]
    R_HASH_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    VALUE_MSAT_FIELD_NUMBER: _ClassVar[int]
    CREATION_DATE_FIELD_NUMBER: _ClassVar[int]
    SETTLE_DATE_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_REQUEST_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_HASH_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_FIELD_NUMBER: _ClassVar[int]
    CLTV_EXPIRY_FIELD_NUMBER: _ClassVar[int]
    ADD_INDEX_FIELD_NUMBER: _ClassVar[int]
    SETTLE_INDEX_FIELD_NUMBER: _ClassVar[int]
    AMT_PAID_SAT_FIELD_NUMBER: _ClassVar[int]
    AMT_PAID_MSAT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    HTLCS_FIELD_NUMBER: _ClassVar[int]
    IS_KEYSEND_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_ADDR_FIELD_NUMBER: _ClassVar[int]
    IS_AMP_FIELD_NUMBER: _ClassVar[int]
    memo: str
    r_preimage: bytes
    r_hash: bytes
    value: int
    value_msat: int
    creation_date: int
    settle_date: int
    payment_request: str
    description_hash: bytes
    expiry: int
    cltv_expiry: int
    add_index: int
    settle_index: int
    amt_paid_sat: int
    amt_paid_msat: int
    state: Invoice.InvoiceState
    htlcs: _containers.RepeatedCompositeFieldContainer[InvoiceHTLC]
    is_keysend: bool
    payment_addr: bytes
    is_amp: bool
    def __init__(self, memo: _Optional[str] = ..., r_preimage: _Optional[bytes] = ..., r_hash: _Optional[bytes] = ..., value: _Optional[int] = ..., value_msat: _Optional[int] = ..., creation_date: _Optional[int] = ..., settle_date: _Optional[int] = ..., payment_request: _Optional[str] = ..., description_hash: _Optional[bytes] = ..., expiry: _Optional[int] = ..., cltv_expiry: _Optional[int] = ..., add_index: _Optional[int] = ..., settle_index: _Optional[int] = ..., amt_paid_sat: _Optional[int] = ..., amt_paid_msat: _Optional[int] = ..., state: _Optional[_Union[Invoice.InvoiceState, str]] = ..., htlcs: _Optional[_Iterable[_Union[InvoiceHTLC, _Mapping]]] = ..., is_keysend: _Optional[bool] = ..., payment_addr: _Optional[bytes] = ..., is_amp: _Optional[bool] = ...) -> None: ...

class InvoiceHTLC(_message.Message):
    __slots__ = ("chan_id", "htlc_index", "amt_msat", "accept_height", "accept_time", "resolve_time", "expiry_height", "state", "mpp_total_amt_msat")
    CHAN_ID_FIELD_NUMBER: _ClassVar[int]
    HTLC_INDEX_FIELD_NUMBER: _ClassVar[int]
    AMT_MSAT_FIELD_NUMBER: _ClassVar[int]
    ACCEPT_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    ACCEPT_TIME_FIELD_NUMBER: _ClassVar[int]
    RESOLVE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MPP_TOTAL_AMT_MSAT_FIELD_NUMBER: _ClassVar[int]
    chan_id: int
    htlc_index: int
    amt_msat: int
    accept_height: int
    accept_time: int
    resolve_time: int
    expiry_height: int
    state: InvoiceHTLCState
    mpp_total_amt_msat: int
    def __init__(self, chan_id: _Optional[int] = ..., htlc_index: _Optional[int] = ..., amt_msat: _Optional[int] = ..., accept_height: _Optional[int] = ..., accept_time: _Optional[int] = ..., resolve_time: _Optional[int] = ..., expiry_height: _Optional[int] = ..., state: _Optional[_Union[InvoiceHTLCState, str]] = ..., mpp_total_amt_msat: _Optional[int] = ...) -> None: ...

class PaymentHash(_message.Message):
    __slots__ = ("r_hash_str", "r_hash")
    R_HASH_STR_FIELD_NUMBER: _ClassVar[int]
    R_HASH_FIELD_NUMBER: _ClassVar[int]
    r_hash_str: str
    r_hash: bytes
    def __init__(self, r_hash_str: _Optional[str] = ..., r_hash: _Optional[bytes] = ...) -> None: ...

class ListInvoiceRequest(_message.Message):
    __slots__ = ("pending_only", "index_offset", "num_max_invoices", "reversed", "creation_date_start", "creation_date_end")
    PENDING_ONLY_FIELD_NUMBER: _ClassVar[int]
    INDEX_OFFSET_FIELD_NUMBER: _ClassVar[int]
    NUM_MAX_INVOICES_FIELD_NUMBER: _ClassVar[int]
    REVERSED_FIELD_NUMBER: _ClassVar[int]
    CREATION_DATE_START_FIELD_NUMBER: _ClassVar[int]
    CREATION_DATE_END_FIELD_NUMBER: _ClassVar[int]
    pending_only: bool
    index_offset: int
    num_max_invoices: int
    reversed: bool
    creation_date_start: int
    creation_date_end: int
    def __init__(self, pending_only: _Optional[bool] = ..., index_offset: _Optional[int] = ..., num_max_invoices: _Optional[int] = ..., reversed: _Optional[bool] = ..., creation_date_start: _Optional[int] = ..., creation_date_end: _Optional[int] = ...) -> None: ...

class ListInvoiceResponse(_message.Message):
    __slots__ = ("invoices", "last_index_offset", "first_index_offset")
    INVOICES_FIELD_NUMBER: _ClassVar[int]
    LAST_INDEX_OFFSET_FIELD_NUMBER: _ClassVar[int]
    FIRST_INDEX_OFFSET_FIELD_NUMBER: _ClassVar[int]
    invoices: _containers.RepeatedCompositeFieldContainer[Invoice]
    last_index_offset: int
    first_index_offset: int
    def __init__(self, invoices: _Optional[_Iterable[_Union[Invoice, _Mapping]]] = ..., last_index_offset: _Optional[int] = ..., first_index_offset: _Optional[int] = ...) -> None: ...
