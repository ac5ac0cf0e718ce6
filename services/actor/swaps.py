"""Swaps: an invoice paid to a federation this gateway serves needs no Lightning payment. The
payee's federation decides as for an HTLC (funds its incoming contract, answers the preimage or
a refusal), asked over the bus by its federation id, or by this actor itself when payer and
payee are of one federation. Every Lightning role's send asks `decide` before paying, so swaps
work between any two served federations whatever their Lightning modules (v1↔v1, v1↔v2, v2↔v2):

- an invoice whose payee is our node is one of our hold invoices: an LNv2 receive, owned by the
  federation that claimed its payment hash at the router (`gateway.payment_hash_owner`);
- an invoice whose route hint ends at our node names a served federation's short channel id:
  an LNv1 receive, owned by the federation with that scid.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from bus import BusClient
from gwcore.constants import (
    GATEWAY_SERVICE,
    METHOD_ACTOR_HTLC,
    METHOD_LIST_FEDS,
    METHOD_PAYMENT_HASH_OWNER,
)
from gwcore.errors import NotFound
from gwproto import gateway_lnrpc_pb2 as lnpb

from .invoices import decode_invoice as bolt11_decode
from .roles import HTLC_HOLD, HTLC_SCID

Local = Callable[[str, dict], Awaitable[dict]]


def scid_of(text: str) -> int:
    """A BOLT11 route hint's "BxTxO" short channel id as the integer the router keeps."""
    block, tx, out = (int(x) for x in text.split("x"))
    return (block << 40) | (tx << 16) | out


class Swaps:
    def __init__(
        self, bus: BusClient | None, federation_id: str, scid: int, lnrpc: Any, local: Local
    ) -> None:
        """`scid`: this federation's. `local(route, htlc)`: this actor's own handler of an HTLC
        of `route` (roles.HTLC_HOLD or HTLC_SCID), for a payer and payee of this federation."""
        self.bus, self.federation_id, self.lnrpc, self.local = bus, federation_id, lnrpc, local
        self.scid = scid
        self._node_key: str | None = None

    async def node_key(self) -> str:
        if self._node_key is None:
            info = await self.lnrpc.GetNodeInfo(lnpb.GetNodeInfoRequest(), timeout=10)
            self._node_key = bytes(info.pub_key).hex()
        return self._node_key

    async def target_scid(self, invoice: str) -> int | None:
        """The scid of the route hint that ends at our node, if the invoice has one."""
        me = await self.node_key()
        for hint in bolt11_decode(invoice).route_hints or []:
            last = hint.routes[-1]
            if last.public_key == me:
                return scid_of(last.short_channel_id)
        return None

    async def may_be_ours(self, invoice: str) -> bool:
        """The invoice names our node as its payee or last hop: a swap, if the federation it
        names is served (`decide` finds out)."""
        return bolt11_decode(invoice).payee == await self.node_key() or (
            await self.target_scid(invoice) is not None
        )

    async def decide(self, invoice: str, amount_msat: int, message_id: str) -> dict | None:
        """The payee federation's decision on paying `invoice` with `amount_msat` ({action:
        settle, preimage} | {action: cancel, reason}), or None when no federation we serve is
        its payee (then it goes over Lightning)."""
        inv = bolt11_decode(invoice)
        if inv.payee == await self.node_key():
            return await self.to_hold_invoice(inv.payment_hash, inv.amount_msat, message_id)
        scid = await self.target_scid(invoice)
        if scid is None:
            return None
        htlc = {
            "payment_hash": inv.payment_hash,
            "incoming_amount_msat": amount_msat,
            "outgoing_amount_msat": inv.amount_msat,
            "incoming_expiry": 0,
            "short_channel_id": scid,
            "incoming_chan_id": 0,
            "htlc_id": int(hashlib.sha256(message_id.encode()).hexdigest()[:12], 16),
            "swap": True,
        }
        return await self.to_scid(scid, htlc, message_id)

    async def to_hold_invoice(
        self, payment_hash: str, amount_msat: int, message_id: str
    ) -> dict | None:
        """The decision of the federation whose hold invoice has this hash, or None."""
        body = json.dumps({"payment_hash": payment_hash}).encode()
        assert self.bus is not None
        try:
            owner = json.loads(
                await self.bus.request(GATEWAY_SERVICE, METHOD_PAYMENT_HASH_OWNER, body, timeout=10)
            )["federation_id"]
        except NotFound:
            return None
        htlc = {
            "payment_hash": payment_hash,
            "incoming_amount_msat": amount_msat,
            "hold_invoice": True,
            "swap": True,
        }
        return await self._ask(owner, HTLC_HOLD, htlc, message_id)

    async def to_scid(self, scid: int, htlc: dict, message_id: str) -> dict | None:
        """The decision of the running federation with `scid`, or None if none has it."""
        if scid == self.scid:
            return await self.local(HTLC_SCID, htlc)
        assert self.bus is not None
        feds = json.loads(
            await self.bus.request(GATEWAY_SERVICE, METHOD_LIST_FEDS, b"{}", timeout=10)
        )["federations"]
        target = next((f for f in feds if f["scid"] == scid and f["state"] == "running"), None)
        if target is None:
            return None
        return await self._ask(target["federation_id"], HTLC_SCID, htlc, message_id)

    async def _ask(self, owner: str, route: str, htlc: dict, message_id: str) -> dict:
        if owner == self.federation_id:  # payer and payee of this federation
            return await self.local(route, htlc)
        assert self.bus is not None
        raw = await self.bus.request(
            owner,
            METHOD_ACTOR_HTLC,
            json.dumps(htlc).encode(),
            timeout=120,
            retries=3,
            idempotent=False,
            message_id=message_id,
        )
        return dict(json.loads(raw))
