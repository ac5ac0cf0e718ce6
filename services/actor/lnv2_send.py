"""LNv2 outgoing payments for a real Fedimint federation (`POST /send_payment`): a user funded
an OutgoingContract naming our key; we check it, pay the invoice over Lightning, answer the
preimage and claim the contract (with change notes), or, on a definite failure, answer a
forfeit signature so the user cancels at once. Reference: fedimint-0.13.md §6.3.

States: `SendState` below, one row per contract id in the federation's wallet file, each
committed before the step that follows it (`resume()` finishes what a crash left); PENDING or
UNKNOWN from the node leaves the row `paying` (asked again on the next call: never forfeited).

A repeated call for a contract answers its stored result and never pays twice (the extension
is idempotent per payment hash, and `paying` is committed before the first PayInvoice).
A payment hash is paid once for the whole gateway (`outgoing.py`): every step from `paying`
first claims the hash for this contract at the router, and a contract for a hash another
contract holds (a second payer of an invoice, in this federation or another) is `refused`
with our forfeit signature before anything is paid, so its payer refunds at once.

A swap: when the invoice's payee is a federation we serve (this one or another; our hold
invoice for an LNv2 receive, or a route hint to a served federation's scid for an LNv1 one),
nothing goes over Lightning: `swaps.decide` has that federation's actor fund its incoming
contract and answer the preimage (paid) or a definite refusal (forfeited), exactly as it
answers an HTLC (swaps.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from enum import StrEnum
from typing import Any

import grpc
from coincurve import PrivateKey

from fmclient.lnv2 import (
    Lnv2Config,
    Lnv2Error,
    OutgoingContract,
    invoice_hash,
)
from fmclient.wallet import MintWallet
from gwcore.constants import DUPLICATE_PAYMENT_REASON
from gwcore.errors import GatewayError, InvalidInput
from gwcore.payments import payment_row
from gwcore.states import StateMachine
from gwcore.values import fee_msat
from gwproto import gateway_lnrpc_pb2 as lnpb

from .crash import crash_point
from .flow_rows import LnFlow
from .invoices import decode_invoice as bolt11_decode
from .lnv2_claims import Claims
from .outgoing import PaymentHashClaims
from .swaps import Swaps

log = logging.getLogger(__name__)
SCHEMA = """
CREATE TABLE IF NOT EXISTS lnv2_sends (
    contract_id TEXT PRIMARY KEY, txid TEXT NOT NULL, out_idx INTEGER NOT NULL,
    contract TEXT NOT NULL, invoice TEXT NOT NULL, state TEXT NOT NULL, preimage TEXT,
    forfeit TEXT, error TEXT, max_delay INTEGER NOT NULL, max_fee_msat INTEGER NOT NULL,
    ln_fee_msat INTEGER, created REAL NOT NULL, updated REAL NOT NULL, invoice_msat INTEGER,
    swap INTEGER, claim_op TEXT
);
"""


class SendState(StrEnum):
    """An LNv2 send, by contract id:

    paying --SETTLED--> paid (preimage stored; answered) --claim accepted--> claimed
                        \\--claim refused--> claim_refused
    (claims: lnv2_claims.py, several contracts in one transaction under load)
    paying --FAILED--> forfeited (forfeit signature stored; answered; hash released)
    paying --hash held by another contract, or the contract too close to its expiry--> refused
           (forfeit signature stored; answered)
    """

    PAYING = "paying"
    PAID = "paid"
    CLAIMED = "claimed"
    CLAIM_REFUSED = "claim_refused"
    FORFEITED = "forfeited"
    REFUSED = "refused"


SEND = StateMachine(
    SendState,
    {
        SendState.PAYING: {SendState.PAID, SendState.FORFEITED, SendState.REFUSED},
        SendState.PAID: {SendState.CLAIMED, SendState.CLAIM_REFUSED},
    },
)
SEND_STATUS = {"paid": "settled", "claimed": "settled", "claim_refused": "settled"}
SEND_STATUS |= {"forfeited": "failed", "refused": "failed", "paying": "pending"}
SEND_FINAL = SEND.in_states(*(s for s in SendState if SEND.final(s)))
SEND_IN_FLIGHT = SEND.in_states(SendState.PAYING, SendState.PAID)
MIN_DELAY = 144  # blocks we keep for ourselves between the payment and the contract's expiry
MIN_SWAP_DELAY = 36  # the same for a swap, claimed as soon as the payee's federation decides


class Lnv2Sender(LnFlow):
    MODULE, CONFIG, SCHEMA = "lnv2", Lnv2Config, SCHEMA
    TABLE, KEY, MACHINE = "lnv2_sends", "contract_id", SEND

    def __init__(
        self,
        mint: MintWallet,
        key: PrivateKey,
        lnrpc: Any,
        fees: dict,
        federation_id: str,
        swaps: Swaps | None = None,
        hashes: PaymentHashClaims | None = None,
    ) -> None:
        """`swaps`: the decision of a served federation that is the invoice's payee (no
        Lightning then). `hashes`: the gateway's claims of the
        payment hashes it pays (outgoing.py)."""
        super().__init__(mint, key, lnrpc, fees, federation_id)
        self.swaps, self.hashes = swaps, hashes
        have = {r[1] for r in self.db.execute("PRAGMA table_info(lnv2_sends)")}
        added = {"invoice_msat": "INTEGER", "swap": "INTEGER", "claim_op": "TEXT"}
        for column, kind in added.items():  # rows of gateways from before these columns
            if column not in have:
                self.db.execute(f"ALTER TABLE lnv2_sends ADD COLUMN {column} {kind}")
        self.claims = Claims(self)

    async def send_payment(self, body: dict) -> dict:
        """SendPaymentPayload -> {"Ok": [preimage bytes]} | {"Err": forfeit signature hex}."""
        try:
            contract = OutgoingContract.from_json(body.get("contract"))
        except Lnv2Error as exc:
            raise InvalidInput(f"contract: {exc}") from None
        cid = contract.contract_id.hex()
        async with self._locks.setdefault(cid, asyncio.Lock()):  # the payer's ask, or resume()
            return await self._send_locked(body, contract, cid)

    async def _send_locked(self, body: dict, contract: OutgoingContract, cid: str) -> dict:
        row = self.row(cid)
        if row is None:
            row = await self._check_and_record(body, contract, cid)
        if row["state"] == SendState.PAYING:
            row = await self._pay(row, contract)
            if row["state"] == SendState.PAID:
                crash_point("lnv2-send-paid")  # paid, not yet answered nor claimed
        if row["state"] in (SendState.PAID, SendState.CLAIMED, SendState.CLAIM_REFUSED):
            if row["state"] == SendState.PAID:  # answered now, claimed next (lnv2_claims.py)
                self.claims.want(cid)
            return {"Ok": list(bytes.fromhex(row["preimage"]))}
        return {"Err": row["forfeit"]}

    async def _check_and_record(self, body: dict, contract: OutgoingContract, cid: str) -> dict:
        if body.get("federation_id") != self.federation_id:
            raise InvalidInput("federation_id is not this federation's")
        outpoint, invoice, auth = body.get("outpoint"), body.get("invoice"), body.get("auth")
        if not (isinstance(outpoint, dict) and isinstance(outpoint.get("txid"), str)):
            raise InvalidInput("outpoint is {txid, out_idx}")
        out_idx = outpoint.get("out_idx")
        if not isinstance(out_idx, int) or isinstance(out_idx, bool) or out_idx < 0:
            raise InvalidInput("outpoint.out_idx is a number")
        if not (isinstance(invoice, dict) and isinstance(invoice.get("Bolt11"), str)):
            raise InvalidInput('invoice is {"Bolt11": "ln…"}')
        bolt11 = invoice["Bolt11"]
        if contract.claim_pk != self.key.public_key.format(compressed=True):
            raise InvalidInput("the contract's claim key is not this gateway's")
        try:
            auth_sig = bytes.fromhex(auth)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InvalidInput("auth is a hex signature") from None
        if not contract.verify_invoice_auth(invoice_hash(bolt11), auth_sig):
            raise InvalidInput("the payer's auth signature does not verify")
        try:
            inv = bolt11_decode(bolt11)
        except Exception:
            raise InvalidInput("the invoice cannot be decoded") from None
        if not inv.amount_msat:
            raise InvalidInput("the invoice has no amount")
        if contract.payment_image.json() != {"Hash": inv.payment_hash}:
            raise InvalidInput("the contract is not for this invoice's payment hash")
        fee = fee_msat(self.fees, inv.amount_msat)
        if contract.amount_msat < inv.amount_msat + fee:
            raise InvalidInput(f"the contract does not cover the invoice and our fee of {fee} msat")
        point = {"txid": outpoint["txid"], "out_idx": out_idx}
        found = await self.mint.api.current_consensus(
            f"module_{self.module}_outgoing_contract_expiration", point
        )
        if not (isinstance(found, list) and len(found) == 2 and found[0] == cid):
            raise InvalidInput("the federation holds no such contract at this outpoint")
        blocks_left = int(found[1])
        now = time.time()
        limits = (max(0, blocks_left - MIN_DELAY), contract.amount_msat - inv.amount_msat - fee)
        self.db.execute(
            "INSERT OR IGNORE INTO lnv2_sends (contract_id, txid, out_idx, contract, invoice,"
            " state, max_delay, max_fee_msat, created, updated, invoice_msat)"
            " VALUES (?, ?, ?, ?, ?, 'paying', ?, ?, ?, ?, ?)",
            (
                cid,
                outpoint["txid"],
                out_idx,
                json.dumps(contract.json()),
                bolt11,
                *limits,
                now,
                now,
                inv.amount_msat,
            ),
        )
        if blocks_left <= MIN_DELAY and not (
            blocks_left > MIN_SWAP_DELAY
            and self.swaps is not None
            and await self.swaps.may_be_ours(bolt11)
        ):
            # too late to pay over Lightning (blocks were mined since the payer funded it): a
            # definite no, so the payer refunds now rather than asking until the expiry
            why = f"the contract expires in {blocks_left} blocks: too soon to pay"
            log.warning("LNv2 send %s refused: %s", cid, why)
            forfeit = contract.forfeit_signature(self.key.secret).hex()
            return self._put(cid, SendState.REFUSED, forfeit=forfeit, error=why)
        return self.row(cid) or {}

    async def _pay(self, row: dict, contract: OutgoingContract) -> dict:
        cid = row["contract_id"]
        inv = bolt11_decode(row["invoice"])
        if self.hashes is not None and not await self.hashes.claim(inv.payment_hash, cid):
            forfeit = contract.forfeit_signature(self.key.secret).hex()
            log.warning("LNv2 send %s refused: %s", cid, DUPLICATE_PAYMENT_REASON)
            return self._put(
                cid, SendState.REFUSED, forfeit=forfeit, error=DUPLICATE_PAYMENT_REASON
            )
        if self.swaps is not None:
            decision = await self.swaps.decide(
                row["invoice"], contract.amount_msat, f"lnv2-swap-{inv.payment_hash}"
            )
            if decision is not None:
                if decision.get("action") == "settle":
                    return self._put(
                        cid, SendState.PAID, preimage=decision["preimage"], ln_fee_msat=0, swap=1
                    )
                forfeit = contract.forfeit_signature(self.key.secret).hex()
                row = self._put(
                    cid, SendState.FORFEITED, forfeit=forfeit, error=decision.get("reason"), swap=1
                )
                await self._release(inv.payment_hash, cid)
                return row
        req = lnpb.PayInvoiceRequest(
            invoice=row["invoice"],
            max_delay=row["max_delay"],
            max_fee_msat=row["max_fee_msat"],
            payment_hash=bytes.fromhex(inv.payment_hash),
        )
        r = await self.lnrpc.PayInvoice(req, timeout=120)
        if r.status == lnpb.SETTLED:
            return self._put(cid, SendState.PAID, preimage=r.preimage.hex(), ln_fee_msat=r.fee_msat)
        if r.status == lnpb.FAILED:
            forfeit = contract.forfeit_signature(self.key.secret).hex()
            row = self._put(cid, SendState.FORFEITED, forfeit=forfeit, error=r.failure_reason)
            await self._release(inv.payment_hash, cid)
            return row
        raise GatewayError("payment pending: ask again", retryable=True)

    async def adopt(self, txid: str, out_idx: int, contract: OutgoingContract) -> bool:
        """An outgoing contract to us that a lost data folder forgot (found in the session
        history after a recovery, inflight.py), taken up from what our node knows of its
        payment hash: paid -> `paid` (claimed by resume()); in flight -> `paying` (asked again:
        PayInvoice is idempotent per hash); failed -> `forfeited` (the payer's next ask gets
        our forfeit). Nothing is adopted when the contract is known, spent or expired, or the
        node never paid the hash (the payer asks again, or refunds at expiry). True if taken."""
        cid = contract.contract_id.hex()
        if self.row(cid) is not None:
            return False
        point = {"txid": txid, "out_idx": out_idx}
        found = await self.mint.api.current_consensus(
            f"module_{self.module}_outgoing_contract_expiration", point
        )
        if not (isinstance(found, list) and len(found) == 2 and found[0] == cid):
            return False  # claimed, refunded or cancelled
        if int(found[1]) <= 0:
            return False  # expired: the payer's to refund
        image = contract.payment_image.json().get("Hash")
        if not isinstance(image, str):
            return False  # a point image (not a payment over Lightning): never ours to pay
        payment_hash = bytes.fromhex(image)
        try:
            r = await self.lnrpc.LookupPayment(
                lnpb.LookupPaymentRequest(payment_hash=payment_hash), timeout=30
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return False
            raise
        invoice, invoice_msat, max_fee = r.invoice, None, 0
        if invoice:
            inv = bolt11_decode(invoice)
            invoice_msat = inv.amount_msat
            fee = fee_msat(self.fees, inv.amount_msat or 0)
            max_fee = max(0, contract.amount_msat - (inv.amount_msat or 0) - fee)
        if r.status == lnpb.SETTLED:
            state, values = (
                SendState.PAID,
                {"preimage": r.preimage.hex(), "ln_fee_msat": r.fee_msat},
            )
        elif r.status == lnpb.FAILED:
            forfeit = contract.forfeit_signature(self.key.secret).hex()
            state, values = SendState.FORFEITED, {"forfeit": forfeit, "error": r.failure_reason}
        elif invoice:
            state, values = SendState.PAYING, {}
        else:  # in flight and the node keeps no invoice to ask again with: wait for its end
            raise GatewayError("a recovered contract's payment is in flight", retryable=True)
        now = time.time()
        self.db.execute(
            "INSERT OR IGNORE INTO lnv2_sends (contract_id, txid, out_idx, contract, invoice,"
            " state, preimage, forfeit, error, max_delay, max_fee_msat, ln_fee_msat, created,"
            " updated, invoice_msat) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                cid,
                txid,
                out_idx,
                json.dumps(contract.json()),
                invoice,
                state.value,
                values.get("preimage"),
                values.get("forfeit"),
                values.get("error"),
                max(0, int(found[1]) - MIN_DELAY),
                max_fee,
                values.get("ln_fee_msat"),
                now,
                now,
                invoice_msat,
            ),
        )
        if state == SendState.PAID and self.hashes is not None:
            await self.hashes.claim(image, cid)  # the hash is paid: no second payer
        log.info("LNv2 send %s recovered from the session history: %s", cid, state.value)
        return True

    async def _release(self, payment_hash: str, cid: str) -> None:
        """This contract failed definitely (committed first): another may pay the hash."""
        if self.hashes is not None:
            await self.hashes.release(payment_hash, cid)

    def log_rows(self, since: float, before: float | None, limit: int) -> list[dict]:
        """LNv2 sends as payment-log rows (gwcore.payments.payment_row): direction outgoing, or swap
        when the invoice was a served federation's; the fee earned is what the contract paid
        beyond the invoice and the Lightning fee."""
        end = before if before is not None else float("inf")
        return self.payments(
            "created >= ? AND created < ? ORDER BY created DESC LIMIT ?", (since, end, limit)
        )

    def payments(self, where: str, params: tuple) -> list[dict]:
        out = []
        for r in self.rows.select(where, params):
            status = SEND_STATUS.get(r["state"], "pending")
            amount = r["invoice_msat"] or 0
            contract = json.loads(r["contract"])["amount"]
            fee = contract - amount - (r["ln_fee_msat"] or 0)
            out.append(
                payment_row(
                    r["contract_id"],
                    self.federation_id,
                    "swap" if r["swap"] else "outgoing",
                    status,
                    amount,
                    r["created"],
                    r["updated"],
                    fee_earned_msat=fee if amount else 0,
                    payment_hash=bolt11_decode(r["invoice"]).payment_hash if amount else None,
                    error=r["error"],
                )
            )
        return out

    def in_flight(self) -> int:
        """Sends not finished: paying (maybe paid over Lightning) or paid, not yet claimed (a
        paid contract left unclaimed could expire and be refunded to its payer)."""
        return self.rows.count_in(SEND_IN_FLIGHT)

    async def resume(self) -> None:
        """Claim what was paid, ask again for what was in flight."""

        async def drive(cid: str) -> None:
            contract = OutgoingContract.from_json(json.loads((self.row(cid) or {})["contract"]))
            await self._send_locked({}, contract, cid)

        await self.drive_each(SEND_IN_FLIGHT, drive, "LNv2 send")
