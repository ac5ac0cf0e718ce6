"""The LNv1 ("ln" module) gateway role of one real Fedimint federation's actor: registration
with the federation (`Lnv1Registration`), and the wiring of the two payment flows
(`lnv1_send.Lnv1Sender` for `POST /pay_invoice`, `lnv1_receive.Lnv1Receiver` for HTLCs whose
next hop is this federation's scid) with the calls that leave the actor for them (a swap with
another federation we serve, LNv1 by its scid or LNv2 by its hold invoice's payment hash).
Reference: fedimint-0.13.md §5; gatewayd's fedimint-gw-client-0.13.0.

Registration: gatewayd's announcement — our node key and alias, our module key as
`gateway_redeem_key` (outgoing contracts name it; incoming contracts we fund are refunded to
it), the scid users put in their invoices' last route hint (`mint_channel_id`), our node's
one-hop route hints, our fees, our public API URL, a TTL — signed by our key as `gateway_id`
with nonce = unix milliseconds (strictly increasing in one process, so a fee change within a
millisecond is not refused). Guardians keep it for the TTL: it is renewed before it lapses,
and at once when fees change (a change with a nonce that did not increase is refused).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from coincurve import PrivateKey

from bus import BusClient
from fmclient.api import FederationApi
from fmclient.config import ClientConfig
from fmclient.lnv1 import Lnv1Config
from fmclient.lnv1_gateway import (
    Announcement,
    LightningGateway,
    RouteHintHop,
    normalize_url,
    parse_gateways,
)
from fmclient.wallet import MintWallet
from gwcore.constants import (
    METHOD_ACTOR_PAY,
)
from gwproto import gateway_lnrpc_pb2 as lnpb

from .inflight import MARGIN, ContractFinder
from .lnv1_inflight import Lnv1ContractFinder
from .lnv1_receive import MAX_HTLC_CLTV, RECEIVE_IN_FLIGHT, Lnv1Receiver
from .lnv1_send import MAX_TIMELOCK_DELTA, SEND_IN_FLIGHT, Lnv1Sender
from .lnv2_role import _transient  # the bus rule: only definite answers are final
from .outgoing import PaymentHashClaims
from .roles import HTLC_SCID, Handler, PairedFlows, Registering
from .swaps import Swaps

log = logging.getLogger(__name__)
DEFAULT_TTL_S = 600  # gatewayd's, renewed every 8.5 min; we renew every third of it
NUM_ROUTE_HINTS = 3


class Lnv1Registration:
    """Our announcement to one federation's `ln` module."""

    def __init__(
        self,
        api: FederationApi,
        config: ClientConfig,
        key: PrivateKey,
        lnrpc: Any,
        fees: dict,
        scid: int,
        api_url: str,
        ttl_s: int = DEFAULT_TTL_S,
    ) -> None:
        self.api, self.key, self.lnrpc, self.fees = api, key, lnrpc, fees
        self.module = config.module_id("ln")
        self.config = Lnv1Config.from_bytes(config.modules[self.module].body)
        self.scid, self.api_url, self.ttl_s = scid, normalize_url(api_url), ttl_s
        self._last_nonce = 0
        self.last: Announcement | None = None

    async def announcement(self) -> Announcement:
        """Our signed announcement as of now: node info and route hints from the extension."""
        node = await self.lnrpc.GetNodeInfo(lnpb.GetNodeInfoRequest(), timeout=10)
        hints = await self.lnrpc.GetRouteHints(
            lnpb.GetRouteHintsRequest(num_route_hints=NUM_ROUTE_HINTS), timeout=10
        )
        me = self.key.public_key.format(compressed=True)
        info = LightningGateway(
            mint_channel_id=self.scid,
            gateway_redeem_key=me,
            node_pub_key=bytes(node.pub_key),
            lightning_alias=node.alias,
            api=self.api_url,
            route_hints=tuple(
                tuple(
                    RouteHintHop(
                        bytes(h.src_node_id),
                        h.short_channel_id,
                        h.base_msat,
                        h.proportional_millionths,
                        h.cltv_expiry_delta,
                        h.htlc_minimum_msat or None,
                        h.htlc_maximum_msat or None,
                    )
                    for h in hint.hops
                )
                for hint in hints.route_hints
                if hint.hops
            ),
            base_msat=int(self.fees["base_msat"]),
            proportional_millionths=int(self.fees["proportional_millionths"]),
            gateway_id=me,
            supports_private_payments=False,  # users send the whole invoice
        )
        self._last_nonce = max(int(time.time() * 1000), self._last_nonce + 1)
        return Announcement.signed(
            info, self.ttl_s, self.key.secret, self.config.threshold_pub_key, self._last_nonce
        )

    async def register(self) -> dict:
        """Announce ourselves; the guardians' agreement that they took it, or an error."""
        a = await self.announcement()
        await self.api.current_consensus(
            f"module_{self.module}_register_gateway", a.json(), timeout=30
        )
        self.last = a
        log.info(
            "registered with the federation's ln module",
            extra={"fields": {"nonce": a.nonce, "ttl_s": a.ttl_secs}},
        )
        return {
            "gateway_id": a.info.gateway_id.hex(),
            "scid": self.scid,
            "fees": a.info.fees,
            "nonce": a.nonce,
            "valid_until": time.time() + a.ttl_secs,
            "node_pubkey": a.info.node_pub_key.hex(),
            "route_hints": [[hop.json() for hop in hint] for hint in a.info.route_hints],
        }

    async def listed(self) -> list[Announcement]:
        """What each guardian lists (union), for checks and the dashboard."""
        answers = await asyncio.gather(
            *(
                self.api.request_peer(p, f"module_{self.module}_list_gateways")
                for p in self.api.peers
            ),
            return_exceptions=True,
        )
        return [a for ans in answers if isinstance(ans, list) for a in parse_gateways(ans)]


class Lnv1Role(Registering, PairedFlows):
    """The actor's role for a federation's `ln` module (roles.LightningRole): registration,
    `/pay_invoice` (bus METHOD_ACTOR_PAY with the whole PayInvoicePayload), HTLCs intercepted
    for `scid` (HTLC_SCID)."""

    SEND_IN_FLIGHT, RECEIVE_IN_FLIGHT = SEND_IN_FLIGHT, RECEIVE_IN_FLIGHT

    kind = "ln"

    def contract_finder(self) -> ContractFinder | None:
        """Contracts to our redeem key a lost data folder forgot (inflight.py): a payer's
        client gives an outgoing contract at most MAX_TIMELOCK_DELTA blocks, and the HTLC a
        receive was funded for expires at most MAX_HTLC_CLTV blocks after it reached us."""
        window = max(MAX_TIMELOCK_DELTA, MAX_HTLC_CLTV) + MARGIN
        return Lnv1ContractFinder(self.sender, window, self.receiver)

    def __init__(
        self,
        mint: MintWallet,
        key: PrivateKey,
        lnrpc: Any,
        fees: dict,
        federation_id: str,
        bus: BusClient,
        hashes: PaymentHashClaims,
        scid: int,
        public_api_url: str,
        ttl_s: int = DEFAULT_TTL_S,
        swaps: Swaps | None = None,
    ) -> None:
        self.key, self.lnrpc, self.fees, self.bus = key, lnrpc, fees, bus
        self.federation_id, self.scid = federation_id, scid
        self.registration = Lnv1Registration(
            mint.api, mint.config, key, lnrpc, fees, scid, public_api_url, ttl_s
        )
        self.registered: dict | None = None
        self.ttl_s = self.registration.ttl_s
        self._init_registering()
        self.sender = Lnv1Sender(mint, key, lnrpc, fees, federation_id, swaps, hashes)
        self.receiver = Lnv1Receiver(mint, key, lnrpc, fees, federation_id)

    def bus_methods(self) -> dict[str, Handler]:
        return {METHOD_ACTOR_PAY: self.pay_invoice, HTLC_SCID: self.handle_htlc}

    # --- registration: READY once registered; renewed every third of the TTL, at once on fees
    async def register(self) -> dict:
        self.registered = await self.registration.register()
        return self.registered

    async def run(self, stop: asyncio.Event) -> None:
        resume = asyncio.create_task(self.keep_finishing(stop))
        try:
            await self.renewals(stop)
        finally:
            resume.cancel()

    def info(self) -> dict:
        return {"registration": self.registered}

    # --- what the bus asks: only definite answers may be final (see lnv2_role) --------------
    async def pay_invoice(self, body: dict) -> dict:
        return await _transient(self.sender.pay_invoice(body), "LNv1 payment")

    async def handle_htlc(self, htlc: dict) -> dict:
        return await _transient(self.receiver.handle_htlc(htlc), "LNv1 receive")

    # --- books --------------------------------------------------------------------------------
    def in_flight(self) -> dict[str, int]:
        """LNv1 payments under way, by kind: outgoing (and swaps, counted as outgoing on the
        payer's side), incoming."""
        return {"outgoing": self.sender.in_flight(), "incoming": self.receiver.in_flight()}
