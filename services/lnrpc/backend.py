"""The port every Lightning backend implements, and the values that cross it.

Contract (every backend, checked by tests/contract/):
* `node_info()` says who the node is and whether it is synced.
* `route_hints(n)` gives one-hop hints into the node from its active channels, with the *peer's*
  fee policy on each channel.
* `pay(...)` pays a BOLT11 invoice at most once per payment hash and reports one of four states:
  SETTLED (with preimage), FAILED (only when the node says so definitely), PENDING, UNKNOWN.
  `track(hash)` reports the state of an earlier payment without paying.
* `balances()` reports on-chain funds and each channel's local (outbound) and remote (inbound)
  balance; the totals count active channels only.
* `intercepted()` yields every HTLC the node holds for an unknown next-hop short channel id,
  and every HTLC paying one of its hold invoices (`hold_invoice` set, short_channel_id 0), again
  after a reconnect while it is still held; `complete(htlc, action)` resolves one exactly once
  (settle / fail / forward; forward of a hold-invoice HTLC fails it).
* `create_invoice(...)` makes a hold invoice signed by the node for a payment hash it does not
  know the preimage of; idempotent per hash (the same request gets the same invoice, another
  request for that hash `InvoiceExists`).

Payment status mapping of each backend is one explicit table in that backend's module.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


class PaymentState(enum.Enum):
    SETTLED = "settled"
    FAILED = "failed"
    PENDING = "pending"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class NodeInfo:
    pub_key: bytes
    alias: str
    network: str
    block_height: int
    synced: bool


@dataclass(frozen=True)
class HintHop:
    src_node_id: bytes
    short_channel_id: int
    base_msat: int
    proportional_millionths: int
    cltv_expiry_delta: int
    htlc_minimum_msat: int
    htlc_maximum_msat: int


@dataclass(frozen=True)
class ChannelBalance:
    peer_id: bytes
    short_channel_id: int
    capacity_sat: int
    local_msat: int
    remote_msat: int
    active: bool


@dataclass(frozen=True)
class Balances:
    onchain_balance_sat: int
    channels: tuple[ChannelBalance, ...]

    @property
    def lightning_balance_msat(self) -> int:
        return sum(c.local_msat for c in self.channels if c.active)

    @property
    def inbound_lightning_liquidity_msat(self) -> int:
        return sum(c.remote_msat for c in self.channels if c.active)


@dataclass(frozen=True)
class PaymentResult:
    state: PaymentState
    preimage: bytes = b""
    fee_msat: int = 0
    failure_reason: str = ""
    failure_code: int = 0
    invoice: str = ""  # the BOLT11 paid, when the node keeps it (track)


@dataclass
class InterceptedHtlc:
    payment_hash: bytes
    incoming_amount_msat: int
    outgoing_amount_msat: int
    incoming_expiry: int
    outgoing_expiry: int
    short_channel_id: int
    incoming_chan_id: int
    htlc_id: int
    ref: object = field(default=None, compare=False, repr=False)  # the backend's own handle
    hold_invoice: bool = False  # pays one of our hold invoices (short_channel_id 0)

    @property
    def key(self) -> tuple[int, int]:
        return (self.incoming_chan_id, self.htlc_id)


class HtlcAction(enum.Enum):
    SETTLE = "settle"
    FAIL = "fail"
    FORWARD = "forward"


INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS = 0x400F


class BackendError(Exception):
    """The node refused or could not be reached. `retryable` tells which."""

    def __init__(
        self, message: str, *, retryable: bool = False, invalid_input: bool = False
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.invalid_input = invalid_input


class InvoiceExists(BackendError):
    """Another invoice already has this payment hash (`create_invoice`)."""

    def __init__(self, message: str = "an invoice with this payment hash exists") -> None:
        super().__init__(message, invalid_input=True)


class LightningBackend(abc.ABC):
    """One node implementation behind the extension. Capability flags are class attributes."""

    name: str = "abstract"
    supports_interception: bool = True

    async def start(self) -> None:  # noqa: B027 - optional
        """Connect to the node (called once, before anything else)."""

    def intercepting(self) -> bool:
        """Whether the HTLCs that must reach us do right now: hold-invoice HTLCs always, and
        forwards to unknown scids while they are wanted (`intercept_forwards`) or the node holds
        them for us anyway (LND: our HtlcInterceptor stream is attached; lnd with
        requireinterceptor fails new forwards while it is not). Backends whose node hands us
        every HTLC without asking say True."""
        return True

    def intercept_forwards(self, wanted: bool) -> None:  # noqa: B027 - optional
        """Forwards to scids that are none of the node's channels (LNv1's virtual channels)
        are wanted (a served federation has them) or not. Level-triggered, called again and
        again; backends whose node hands them over anyway (CLN's hook, sim) ignore it."""

    def node_requires_interceptor(self) -> bool:
        """The node holds every forward for an interceptor whatever we want (lnd's
        requireinterceptor): the backend then intercepts always."""
        return False

    async def close(self) -> None:  # noqa: B027 - optional
        """Release connections."""

    @abc.abstractmethod
    async def node_info(self) -> NodeInfo: ...

    @abc.abstractmethod
    async def route_hints(self, num: int) -> list[list[HintHop]]: ...

    @abc.abstractmethod
    async def balances(self) -> Balances: ...

    @abc.abstractmethod
    async def pay(
        self, invoice: str, payment_hash: bytes, max_delay: int, max_fee_msat: int
    ) -> PaymentResult: ...

    @abc.abstractmethod
    async def track(self, payment_hash: bytes) -> PaymentResult | None:
        """The state of an earlier payment of this hash, or None if the node never saw one."""

    @abc.abstractmethod
    def intercepted(self) -> AsyncIterator[InterceptedHtlc]:
        """HTLCs held for unknown next-hop scids, as they arrive (reconnecting as needed)."""

    @abc.abstractmethod
    async def create_invoice(
        self,
        payment_hash: bytes,
        amount_msat: int,
        expiry_secs: int,
        *,
        memo: str = "",
        description_hash: bytes = b"",
    ) -> str:
        """A BOLT11 hold invoice for `payment_hash` (its HTLCs come out of `intercepted()`)."""

    @abc.abstractmethod
    async def complete(
        self,
        htlc: InterceptedHtlc,
        action: HtlcAction,
        *,
        preimage: bytes = b"",
        failure_code: int = INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS,
    ) -> None: ...
