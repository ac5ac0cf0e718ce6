"""The LNv2 gateway role of one real Fedimint federation's actor: what fedimint clients ask of
us (routing info, sends, receives, LUD-21 verify) and the two calls that leave the actor for it
(claiming a payment hash at the router before our node makes its hold invoice; swaps with a
federation we serve, `swaps.py`). The payments themselves
are `lnv2_send.Lnv2Sender` and `lnv2_receive.Lnv2Receiver`; this module only wires them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

import grpc
from coincurve import PrivateKey

from bus import BusClient
from fmclient.wallet import MintWallet
from gwcore.constants import (
    GATEWAY_SERVICE,
    METHOD_ACTOR_LNV2_INVOICE,
    METHOD_ACTOR_LNV2_SEND,
    METHOD_ACTOR_LNV2_VERIFY,
    METHOD_ACTOR_ROUTING_INFO,
    METHOD_CLAIM_PAYMENT_HASH,
)
from gwcore.errors import GatewayError, ServiceNotReady
from gwproto import gateway_lnrpc_pb2 as lnpb

from .inflight import CONFIRMATION_BUFFER, MARGIN, ContractFinder
from .lnv2_inflight import Lnv2ContractFinder
from .lnv2_invoice import receive_fee
from .lnv2_receive import RECEIVE_IN_FLIGHT, Lnv2Receiver
from .lnv2_send import SEND_IN_FLIGHT, Lnv2Sender
from .outgoing import PaymentHashClaims
from .roles import HTLC_HOLD, Handler, PairedFlows
from .swaps import Swaps

log = logging.getLogger(__name__)
T = TypeVar("T")
# blocks an outgoing contract must leave us to pay (gatewayd's defaults; clients accept <= 1440)
EXPIRATION_DELTA_MINIMUM = 144
EXPIRATION_DELTA_DEFAULT = 1440


class Lnv2Role(PairedFlows):
    """The actor's role for a federation's `lnv2` module (roles.LightningRole). Guardians add
    the gateway (`public_api_url`) themselves: there is nothing to register."""

    SEND_IN_FLIGHT, RECEIVE_IN_FLIGHT = SEND_IN_FLIGHT, RECEIVE_IN_FLIGHT

    kind = "lnv2"

    def __init__(
        self,
        mint: MintWallet,
        key: PrivateKey,
        lnrpc: Any,
        fees: dict,
        federation_id: str,
        bus: BusClient,
        hashes: PaymentHashClaims,
        public_api_url: str | None = None,
        swaps: Swaps | None = None,
    ) -> None:
        self.key, self.lnrpc, self.fees, self.bus = key, lnrpc, fees, bus
        self.federation_id, self.public_api_url = federation_id, public_api_url
        self.sender = Lnv2Sender(mint, key, lnrpc, fees, federation_id, swaps=swaps, hashes=hashes)
        self.receiver = Lnv2Receiver(mint, key, lnrpc, fees, federation_id, self.claim_hash)

    def bus_methods(self) -> dict[str, Handler]:
        return {
            METHOD_ACTOR_LNV2_SEND: self.send_payment,
            METHOD_ACTOR_LNV2_INVOICE: self.create_invoice,
            METHOD_ACTOR_LNV2_VERIFY: lambda body: self.receiver.verify(
                str(body.get("payment_hash"))
            ),
            METHOD_ACTOR_ROUTING_INFO: lambda body: self.routing_info(),
            HTLC_HOLD: self.on_htlc,
        }

    async def start(self, stop: asyncio.Event) -> None:
        return None

    async def run(self, stop: asyncio.Event) -> None:
        await self.keep_finishing(stop)

    def fees_changed(self) -> None:
        return None  # read per call

    def contract_finder(self) -> ContractFinder | None:
        """Outgoing contracts to us a lost data folder forgot (inflight.py): a payer's client
        uses at most our default expiration delta, plus its confirmation buffer."""
        return Lnv2ContractFinder(
            self.sender, EXPIRATION_DELTA_DEFAULT + CONFIRMATION_BUFFER + MARGIN, self.receiver
        )

    def info(self) -> dict:
        # the URL every guardian adds (`module lnv2 gateways add`)
        return {"lnv2_gateway_url": self.public_api_url}

    # --- what the bus asks: only definite answers may be final ---------------------------------
    # A send and an HTLC are requests the bus de-duplicates by id: an answer it stores is
    # replayed for ever. So a fault that is not a definite answer (the federation or the node
    # unreachable, a timeout) must go back as retryable, never as a stored error: the payer asks
    # again, the router asks again, and the payment goes on from its committed state.
    async def send_payment(self, body: dict) -> dict:
        return await _transient(self.sender.send_payment(body), "LNv2 send")

    async def on_htlc(self, htlc: dict) -> dict:
        return await _transient(self.receiver.on_htlc(htlc), "LNv2 receive")

    async def create_invoice(self, body: dict) -> str:
        return await _transient(self.receiver.create_invoice(body), "LNv2 invoice")

    async def routing_info(self) -> dict:
        """RoutingInfo: our node, the key contracts name us by (`module_public_key`, this
        federation's gateway key), our fees, expiration deltas; receives (hold invoices) at our
        fees within what LNv2 clients accept. Read per call: `set_fees` is effective at once."""
        try:
            node = await self.lnrpc.GetNodeInfo(lnpb.GetNodeInfoRequest(), timeout=10)
        except grpc.aio.AioRpcError as exc:  # the extension restarting: 503, ask again
            raise ServiceNotReady(f"the Lightning node is unreachable: {exc.code().name}") from None
        fee = {
            "base": self.fees["base_msat"],
            "parts_per_million": self.fees["proportional_millionths"],
        }
        rf = receive_fee(self.fees)
        return {
            "lightning_public_key": node.pub_key.hex(),
            "lightning_alias": node.alias,
            "module_public_key": self.key.public_key.format(compressed=True).hex(),
            "send_fee_minimum": fee,
            "send_fee_default": fee,
            "expiration_delta_minimum": EXPIRATION_DELTA_MINIMUM,
            "expiration_delta_default": EXPIRATION_DELTA_DEFAULT,
            "receive_fee": {
                "base": rf["base_msat"],
                "parts_per_million": rf["proportional_millionths"],
            },
            "receive_enabled": True,
        }

    async def claim_hash(self, payment_hash: str) -> None:
        """Tell the router that HTLCs of our hold invoice for this hash are ours to decide."""
        body = {"payment_hash": payment_hash, "federation_id": self.federation_id}
        await self.bus.request(
            GATEWAY_SERVICE, METHOD_CLAIM_PAYMENT_HASH, json.dumps(body).encode(), timeout=10
        )

    def in_flight(self) -> dict[str, int]:
        """LNv2 payments under way, by kind (a swap's payer side is a send, its payee side a
        receive)."""
        return {"lnv2_send": self.sender.in_flight(), "lnv2_receive": self.receiver.in_flight()}


async def _transient(work: Awaitable[T], what: str) -> T:
    try:
        return await work
    except GatewayError:
        raise
    except Exception as exc:
        log.warning("%s not finished yet: %s: %s", what, type(exc).__name__, exc)
        raise GatewayError(f"{what} not finished yet: ask again", retryable=True) from exc
