"""The payment flows of one federation actor, each a persisted state machine.

Outgoing (a federation user pays a Lightning invoice; `pay_invoice(contract_id)`): `OutState`.
A repeated call returns the stored result; a payment is never sent twice (the extension is
idempotent per payment hash, and `paying` is persisted before the first call). A payment hash
is paid once for the whole gateway (`outgoing.py`): `paying` and `swapping` first claim the
hash for this contract at the router; a contract for a hash another contract holds is refused
and cancelled (the user refunds), nothing paid. A definite failure releases the hash.

Incoming (an intercepted HTLC for our scid; `handle_htlc(htlc)`): `InState`. Keyed by
(incoming channel id, htlc id): a redelivered HTLC gets the stored decision.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from enum import StrEnum
from pathlib import Path
from typing import Any

from bolt11 import decode as bolt11_decode
from coincurve import PrivateKey

from devworld.fedlib import crypto
from devworld.fedlib.api import FedApiError
from devworld.fedlib.client import FederationClient
from devworld.fedlib.wallet import WalletError
from gwcore.constants import DUPLICATE_PAYMENT_REASON
from gwcore.errors import GatewayError, InvalidInput, NotFound, PaymentFailed
from gwcore.states import StateMachine
from gwcore.values import fee_msat
from gwproto import gateway_lnrpc_pb2 as lnpb

from .outgoing import PaymentHashClaims
from .store import ActorStore

log = logging.getLogger(__name__)
TIMELOCK_SAFETY = 10


class OutState(StrEnum):
    """A development federation's outgoing contract (a row is created `paying`, or `swapping`
    when the invoice is another served federation's; PENDING/UNKNOWN leaves it `paying`):

        paying --SETTLED--> claiming --claim accepted--> claimed
        paying --FAILED, or hash held by another contract--> cancelling --cancel accepted--> cancelled
        swapping --the other federation settles--> claiming
        swapping --it refuses, or hash held by another contract--> cancelling
    """

    PAYING = "paying"
    SWAPPING = "swapping"
    CLAIMING = "claiming"
    CLAIMED = "claimed"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"


class InState(StrEnum):
    """An HTLC intercepted for a development federation's scid (created `received`):

    received --no offer, expired, or above the HTLC--> failed
    received --offer found (persisted)--> funding --preimage valid--> settled
                                          \\--invalid--> refunding --refund accepted--> failed
    funding --funding refused--> failed
    """

    RECEIVED = "received"
    FUNDING = "funding"
    SETTLED = "settled"
    REFUNDING = "refunding"
    FAILED = "failed"


OUTGOING = StateMachine(
    OutState,
    {
        OutState.PAYING: {OutState.CLAIMING, OutState.CANCELLING},
        OutState.SWAPPING: {OutState.CLAIMING, OutState.CANCELLING},
        OutState.CLAIMING: {OutState.CLAIMED},
        OutState.CANCELLING: {OutState.CANCELLED},
    },
)
INCOMING = StateMachine(
    InState,
    {
        InState.RECEIVED: {InState.FAILED, InState.FUNDING},
        InState.FUNDING: {InState.SETTLED, InState.REFUNDING, InState.FAILED},
        InState.REFUNDING: {InState.FAILED},
    },
)
MACHINES = {"outgoing": OUTGOING, "incoming": INCOMING}
OUT_FINAL = ("claimed", "cancelled", "refused")  # "refused": rows of older gateways
IN_FINAL = INCOMING.in_states(InState.SETTLED, InState.FAILED)


class FlowRunner:
    def __init__(
        self,
        client: FederationClient,
        store: ActorStore,
        key: PrivateKey,
        lnrpc,
        fees: dict,
        swap=None,
        node_pubkey=None,
        hashes: PaymentHashClaims | None = None,
    ) -> None:  # type: ignore[no-untyped-def]
        self.client, self.store, self.key, self.lnrpc, self.fees = client, store, key, lnrpc, fees
        self.hashes = hashes  # the gateway's claims of the payment hashes it pays
        self.swap = swap  # async (scid, htlc-like payload, message id) -> the target federation actor's decision, or None
        self.node_pubkey = node_pubkey  # () -> our node's public key (hex) once known
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    # --- outgoing -------------------------------------------------------------------------------
    async def pay_invoice(self, contract_id: str) -> dict:
        async with self._lock(contract_id):
            row = self.store.get("outgoing", contract_id)
            if row is None:
                row = await self._check_outgoing(contract_id)
            return await self._advance_outgoing(contract_id, row)

    async def _check_outgoing(self, cid: str) -> dict:
        try:
            c = await asyncio.to_thread(self.client.api.contract, cid)
        except FedApiError as exc:
            raise (NotFound if exc.status == 404 else InvalidInput)(
                f"contract {cid}: {exc.message}"
            ) from None
        if c.get("kind") != "outgoing":
            raise InvalidInput("not an outgoing contract")
        if c["spent_by"] or c["cancelled"]:
            raise InvalidInput("contract already claimed, refunded or cancelled")
        if c["gateway_key"] != crypto.xonly(self.key):
            raise InvalidInput("contract is not addressed to this gateway")
        try:
            inv = bolt11_decode(c["invoice"])
        except Exception:
            raise InvalidInput("contract's invoice cannot be decoded") from None
        if inv.payment_hash != c["payment_hash"] or not inv.amount_msat:
            raise InvalidInput("invoice does not match the contract")
        fee = fee_msat(self.fees, inv.amount_msat)
        if c["amount"] < inv.amount_msat + fee:
            raise InvalidInput(
                f"contract {c['amount']} msat < invoice {inv.amount_msat} msat + fee {fee} msat"
            )
        height = await asyncio.to_thread(self.client.api.block_height)
        max_delay = c["timelock"] - height - TIMELOCK_SAFETY
        if max_delay <= 0:
            raise InvalidInput("contract timelock too close")
        target = self._swap_target(inv)
        return self._put(
            "outgoing",
            cid,
            "swapping" if target else "paying",
            swap_scid=target,
            invoice=c["invoice"],
            payment_hash=c["payment_hash"],
            amount_msat=c["amount"],
            invoice_msat=inv.amount_msat,
            max_delay=max_delay,
            max_fee_msat=c["amount"] - inv.amount_msat,
            started=time.time(),
        )

    def _put(self, table: str, key: str, state: str, **data: Any) -> dict:
        """The store's put, for a move the flow's table allows (IllegalTransition otherwise)."""
        row = self.store.get(table, key)
        if row is not None:
            MACHINES[table].check(row["state"], state)
        return self.store.put(table, key, state, **data)

    def _swap_target(self, inv) -> int | None:  # type: ignore[no-untyped-def]
        """The scid of another federation we serve, when the invoice's last hop is our node's
        virtual channel for it: then no Lightning payment is needed (a swap)."""
        me = self.node_pubkey() if self.node_pubkey else None
        for hint in inv.route_hints or []:
            last = hint.routes[-1]
            if me and last.public_key == me:
                block, tx, out = (int(x) for x in last.short_channel_id.split("x"))
                return (block << 40) | (tx << 16) | out
        return None

    async def _advance_outgoing(self, cid: str, row: dict) -> dict:
        if (
            row["state"] in ("paying", "swapping")
            and self.hashes is not None
            and not await self.hashes.claim(row["payment_hash"], cid)
        ):
            log.warning("outgoing %s refused: %s", cid, DUPLICATE_PAYMENT_REASON)
            row = self._put(
                "outgoing", cid, "cancelling", error=DUPLICATE_PAYMENT_REASON, refused=True
            )
        if row["state"] == "swapping":
            if self.swap is None:
                raise GatewayError("swaps are not available", retryable=True)
            payload = {
                "payment_hash": row["payment_hash"],
                "incoming_amount_msat": row["amount_msat"],
                "outgoing_amount_msat": row["invoice_msat"],
                "incoming_expiry": 0,
                "short_channel_id": row["swap_scid"],
                "incoming_chan_id": 0,
                "htlc_id": int(cid[:12], 16),
            }
            decision = await self.swap(row["swap_scid"], payload, f"swap-{cid}")
            if decision is not None and decision.get("action") == "settle":
                row = self._put(
                    "outgoing",
                    cid,
                    "claiming",
                    preimage=decision["preimage"],
                    ln_fee_msat=0,
                    swapped=True,
                )
            else:
                reason = (
                    "no such federation" if decision is None else decision.get("reason", "refused")
                )
                row = self._put("outgoing", cid, "cancelling", error=f"swap refused: {reason}")
                await self._release(row["payment_hash"], cid)
        if row["state"] == "paying":
            req = lnpb.PayInvoiceRequest(
                invoice=row["invoice"],
                max_delay=row["max_delay"],
                max_fee_msat=row["max_fee_msat"],
                payment_hash=bytes.fromhex(row["payment_hash"]),
            )
            r = await self.lnrpc.PayInvoice(req, timeout=120)
            if r.status == lnpb.SETTLED:
                row = self._put(
                    "outgoing", cid, "claiming", preimage=r.preimage.hex(), ln_fee_msat=r.fee_msat
                )
                crash_point("paid")  # the worst moment: paid over Lightning, not yet claimed
            elif r.status == lnpb.FAILED:
                row = self._put(
                    "outgoing", cid, "cancelling", error=r.failure_reason or "payment failed"
                )
                await self._release(row["payment_hash"], cid)
            else:
                raise GatewayError("payment pending: ask again", retryable=True)
        if row["state"] == "claiming":
            await self._client_op(self.client.claim_outgoing, cid, row["preimage"], self.key)
            row = self._put("outgoing", cid, "claimed", finished=time.time())
        if row["state"] == "cancelling":
            await self._client_op(self.client.cancel_outgoing, cid, self.key)
            row = self._put("outgoing", cid, "cancelled", finished=time.time())
        if row["state"] == "claimed":
            return {"preimage": row["preimage"], "contract_id": cid}
        if row.get("refused"):
            raise PaymentFailed(f"refused: {row['error']}; contract cancelled for refund")
        raise PaymentFailed(
            f"Lightning payment failed: {row.get('error', 'failed')}; contract cancelled for refund"
        )

    async def _release(self, payment_hash: str, cid: str) -> None:
        """This contract failed definitely (committed first): another may pay the hash."""
        if self.hashes is not None:
            await self.hashes.release(payment_hash, cid)

    async def _client_op(self, func, *args):  # type: ignore[no-untyped-def]
        try:
            return await asyncio.to_thread(func, *args)
        except WalletError as exc:
            if exc.code in ("contract_spent", "contract_cancelled"):
                return None  # done before a crash: the federation remembers
            raise GatewayError(
                f"{exc.code}: {exc.message}", retryable=exc.code == "federation_unreachable"
            ) from None

    # --- incoming -------------------------------------------------------------------------------
    async def handle_htlc(self, htlc: dict) -> dict:
        key = f"{htlc['incoming_chan_id']}/{htlc['htlc_id']}"
        async with self._lock(key):
            row = self.store.get("incoming", key)
            if row is None:
                row = self._put("incoming", key, "received", **htlc)
            return await self._advance_incoming(key, row)

    async def _advance_incoming(self, key: str, row: dict) -> dict:
        ph = row["payment_hash"]
        if row["state"] == "received":
            try:
                offer = await asyncio.to_thread(self.client.api.offer, ph)
            except FedApiError as exc:
                if exc.unreachable:
                    raise GatewayError(
                        f"federation unreachable: {exc.message}", retryable=True
                    ) from None
                offer = None
            if (
                offer is None
                or offer["funded_by"]
                or offer["expiry"] <= time.time()
                or offer["amount"] > row["outgoing_amount_msat"]
            ):
                reason = (
                    "no offer"
                    if offer is None
                    else "offer funded, expired or above the HTLC amount"
                )
                row = self._put("incoming", key, "failed", reason=reason)
            else:
                row = self._put("incoming", key, "funding", offer_amount_msat=offer["amount"])
        if row["state"] == "funding":
            try:
                outcome = await asyncio.to_thread(
                    self.client.fund_incoming, ph, row["offer_amount_msat"], self.key
                )
            except WalletError as exc:
                if exc.code == "federation_unreachable":
                    raise GatewayError(exc.message, retryable=True) from None
                row = self._put("incoming", key, "failed", reason=f"{exc.code}: {exc.message}")
            else:
                if outcome["valid"]:
                    row = self._put(
                        "incoming",
                        key,
                        "settled",
                        preimage=outcome["preimage"],
                        contract_id=outcome["contract_id"],
                    )
                else:
                    row = self._put(
                        "incoming", key, "refunding", contract_id=outcome["contract_id"]
                    )
        if row["state"] == "refunding":
            await self._client_op(self.client.refund_incoming, row["contract_id"], self.key)
            row = self._put(
                "incoming",
                key,
                "failed",
                reason="the federation could not decrypt a valid preimage",
            )
        if row["state"] == "settled":
            return {"action": "settle", "preimage": row["preimage"]}
        return {"action": "cancel", "reason": row.get("reason", "failed")}

    def in_flight(self) -> dict[str, int]:
        """Payments not finished, by kind: outgoing (to Lightning), swap (to a federation we
        serve), incoming (an HTLC being decided)."""
        out = self.store.unfinished("outgoing", OUT_FINAL)
        swaps = sum(1 for _, row in out if row.get("swap_scid"))
        return {
            "outgoing": len(out) - swaps,
            "swap": swaps,
            "incoming": len(self.store.unfinished("incoming", IN_FINAL)),
        }

    async def resume(self) -> None:
        """Finish what a crash interrupted (called on start)."""
        for cid, row in self.store.unfinished("outgoing", OUT_FINAL):
            try:
                await self._advance_outgoing(cid, row)
            except Exception as exc:
                log.warning("outgoing %s not finished yet: %s", cid, exc)
        for key, row in self.store.unfinished("incoming", IN_FINAL):
            if row["state"] in ("funding", "refunding"):
                try:
                    await self._advance_incoming(key, row)
                except Exception as exc:
                    log.warning("incoming %s not finished yet: %s", key, exc)


def crash_point(name: str) -> None:
    """Test hook for crash tests: with GATEWAY_ACTOR_CRASH_AT=<name>[,<name>…] the actor dies
    here, once per name (a marker file in its data dir remembers), as kill -9 would. Inert
    otherwise."""
    if name not in os.environ.get("GATEWAY_ACTOR_CRASH_AT", "").split(","):
        return
    marker = Path(os.environ.get("GATEWAY_ACTOR_DATA_DIR", ".")) / f"crashed-at-{name}"
    if not marker.exists():
        marker.write_text("crashed")
        os._exit(137)


def preimage_ok(preimage_hex: str, payment_hash_hex: str) -> bool:
    return hashlib.sha256(bytes.fromhex(preimage_hex)).hexdigest() == payment_hash_hex


__all__ = ["Any", "FlowRunner", "preimage_ok"]
