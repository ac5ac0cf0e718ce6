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
import json
import logging
import time
from typing import Any

from coincurve import PrivateKey

from bus import BusClient
from fmclient.api import FederationApi
from fmclient.config import ClientConfig
from fmclient.lnv1 import Lnv1Config
from fmclient.lnv1_gateway import Announcement, LightningGateway, RouteHintHop, normalize_url
from gwcore.constants import (
    GATEWAY_SERVICE,
    METHOD_ACTOR_HTLC,
    METHOD_LIST_FEDS,
    METHOD_PAYMENT_HASH_OWNER,
)
from gwcore.errors import GatewayError, NotFound
from gwproto import gateway_lnrpc_pb2 as lnpb

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
        from fmclient.lnv1_gateway import parse_gateways

        answers = await asyncio.gather(
            *(
                self.api.request_peer(p, f"module_{self.module}_list_gateways")
                for p in self.api.peers
            ),
            return_exceptions=True,
        )
        return [a for ans in answers if isinstance(ans, list) for a in parse_gateways(ans)]


async def swap_by_scid(
    bus: BusClient, federation_id: str, scid: int, payload: dict, message_id: str
) -> dict | None:
    """The decision of the served federation whose LNv1 scid the invoice's last hop names (its
    actor funds its incoming contract as for an HTLC); None when no running federation has it."""
    feds = json.loads(await bus.request(GATEWAY_SERVICE, METHOD_LIST_FEDS, b"{}", timeout=10))
    target = next(
        (f for f in feds["federations"] if f["scid"] == scid and f["state"] == "running"), None
    )
    if target is None:
        return None
    raw = await bus.request(
        target["federation_id"], METHOD_ACTOR_HTLC, json.dumps(payload).encode(),
        timeout=120, retries=3, idempotent=False, message_id=message_id,
    )  # fmt: skip
    return dict(json.loads(raw))


async def swap_by_hash(
    bus: BusClient, payment_hash: str, amount_msat: int, message_id: str
) -> dict | None:
    """The decision of the served federation whose LNv2 incoming contract (our hold invoice)
    has this hash; None when none has."""
    body = json.dumps({"payment_hash": payment_hash}).encode()
    try:
        owner = json.loads(
            await bus.request(GATEWAY_SERVICE, METHOD_PAYMENT_HASH_OWNER, body, timeout=10)
        )["federation_id"]
    except NotFound:
        return None
    htlc = {"payment_hash": payment_hash, "incoming_amount_msat": amount_msat,
            "hold_invoice": True, "swap": True}  # fmt: skip
    raw = await bus.request(
        owner, METHOD_ACTOR_HTLC, json.dumps(htlc).encode(),
        timeout=120, retries=3, idempotent=False, message_id=message_id,
    )  # fmt: skip
    return dict(json.loads(raw))


__all__ = ["GatewayError", "Lnv1Registration", "swap_by_hash", "swap_by_scid"]
