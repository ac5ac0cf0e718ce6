"""LNv1 outgoing payments for a real Fedimint federation (`POST /pay_invoice`): a user funded an
OutgoingContract naming our redeem key and sends us its id with the invoice; we check the
contract as gatewayd does (fedimint-gw-client-0.13.0 pay.rs `validate_outgoing_account`), pay
the invoice, claim the contract with the preimage (plus change notes) and answer the preimage;
on a definite failure we sign and submit `CancelOutgoing` so the user refunds at once.
Reference: fedimint-0.13.md §5.2.

Checks, in gatewayd's order: the account exists and is an outgoing contract, not cancelled,
not spent, keyed to us (else refused, nothing written: we could not cancel it anyway); then,
for a contract of ours, the invoice's hash is the contract's, the invoice has an amount, the
contract covers it plus our LNv1 fee (`lnv1_fee_msat`), `max_delay = timelock - (block_count
- 1) - 10 > 0` and the invoice has not expired — a contract of ours that fails these is
cancelled at once (gatewayd does the same). A pruned invoice is refused: we register
`supports_private_payments = false`, so clients send the whole invoice.

A repeated call for the contract answers its stored result, and only to the caller with the
`preimage_auth` the first call came with (gatewayd's rule: the contract id is public). A payment
hash is paid once for the whole gateway (`outgoing.py`): the step from `paying` first claims
the hash at the router, and a contract for a hash another contract holds is cancelled, nothing
paid. PENDING/UNKNOWN from the node leaves the row `paying`: asked again, never cancelled.

A direct swap: when the invoice's first route hint ends at our node on a served federation's
scid (LNv1), or the payee is our node (an LNv2 hold invoice of a served federation), nothing
goes over Lightning: `swap(invoice, contract_id)` has that federation's actor fund its incoming
contract and answer the preimage (paid) or a definite refusal (cancelled).

After a lost data folder (`connect-fed --recover`), `Lnv1ContractFinder` (lnv1_inflight.py) finds the outgoing
contracts to our redeem key in the federation's signed session history (inflight.py) and
`Lnv1Sender.adopt` takes up the unspent ones from what our node knows of their payment hash:
paid -> `paid` (claimed by resume()), in flight -> `paying`, failed -> `cancelling`. Such a row
has no `preimage_auth` (the payer's is not on chain, and the payer's client asks again only for
3 minutes after funding): a call for it drives it like resume() does, and answers the preimage
only once the contract is `claimed` (then our claim's input carries it on chain for anyone to
read); before that it answers "ask again", and a refused claim never answers it. A definite
failure is answered to anyone (it gives nothing away).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from enum import StrEnum
from typing import Any

import grpc
from coincurve import PrivateKey

from fmclient.lnv1 import Lnv1Config, OutgoingContract
from fmclient.lnv1_checks import Lnv1Error
from fmclient.lnv1_gateway import PayInvoicePayload, lnv1_fee_msat
from fmclient.lnv1_tx import cancel_outgoing_output, gateway_account, lightning_input, parse_account
from fmclient.tx import ModuleItem
from fmclient.wallet import MintWallet
from fmclient.wallet_operations import Foreign, Rejected
from gwcore.constants import DUPLICATE_PAYMENT_REASON
from gwcore.errors import GatewayError, InvalidInput, PaymentFailed
from gwcore.payments import payment_row
from gwcore.states import StateMachine
from gwproto import gateway_lnrpc_pb2 as lnpb

from .crash import crash_point
from .flow_rows import LnFlow
from .invoices import decode_invoice as bolt11_decode
from .outgoing import PaymentHashClaims
from .swaps import Swaps

log = logging.getLogger(__name__)
TIMELOCK_DELTA = 10  # gatewayd's blocks of margin below the contract's timelock
# the longest timelock delta a payer's client gives a contract (fedimint-ln-client 0.13's
# MAX_OUTGOING_CONTRACT_TIMELOCK_DELTA: the invoice's min_final_cltv_expiry_delta + 499)
MAX_TIMELOCK_DELTA = 1440
RECOVERED = ""  # the preimage_auth of a row adopted from the session history: unknown
SCHEMA = """
CREATE TABLE IF NOT EXISTS lnv1_sends (
    contract_id TEXT PRIMARY KEY, payment_hash TEXT NOT NULL, invoice TEXT NOT NULL,
    invoice_msat INTEGER NOT NULL, amount_msat INTEGER NOT NULL, contract TEXT NOT NULL,
    preimage_auth TEXT NOT NULL, state TEXT NOT NULL, preimage TEXT, error TEXT,
    max_delay INTEGER NOT NULL, max_fee_msat INTEGER NOT NULL, ln_fee_msat INTEGER,
    swap INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL, updated REAL NOT NULL
);
"""


class Lnv1SendState(StrEnum):
    """An LNv1 send, by contract id (a contract that fails the checks starts at `cancelling`):

    paying --SETTLED or swapped--> paid (preimage stored; answered) --claim accepted--> claimed
                                   \\--claim refused--> claim_refused
    paying --FAILED, swap refused, or hash held by another contract--> cancelling
    cancelling --cancellation accepted--> cancelled
               \\--cancellation refused--> cancel_refused
    """

    PAYING = "paying"
    PAID = "paid"
    CLAIMED = "claimed"
    CLAIM_REFUSED = "claim_refused"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    CANCEL_REFUSED = "cancel_refused"


S = Lnv1SendState
SEND = StateMachine(
    S,
    {
        S.PAYING: {S.PAID, S.CANCELLING},
        S.PAID: {S.CLAIMED, S.CLAIM_REFUSED},
        S.CANCELLING: {S.CANCELLED, S.CANCEL_REFUSED},
    },
)
SEND_STATUS = {"paid": "settled", "claimed": "settled", "claim_refused": "settled"}
SEND_STATUS |= {"cancelled": "failed", "cancel_refused": "failed"}
SEND_FINAL = SEND.in_states(*(s for s in S if SEND.final(s)))
SEND_IN_FLIGHT = SEND.in_states(S.PAYING, S.PAID, S.CANCELLING)


class Lnv1Sender(LnFlow):
    MODULE, CONFIG, SCHEMA = "ln", Lnv1Config, SCHEMA
    TABLE, KEY, MACHINE = "lnv1_sends", "contract_id", SEND

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
        """`swaps`: the decision of a served federation that is the invoice's payee
        ({action: settle, preimage} | {action: cancel, reason}; swaps.py), no Lightning then.
        `hashes`: the gateway's claims of payment hashes."""
        super().__init__(mint, key, lnrpc, fees, federation_id)
        self.swaps, self.hashes = swaps, hashes

    async def pay_invoice(self, body: dict) -> dict:
        """PayInvoicePayload -> {preimage, contract_id}; PaymentFailed once the contract is
        cancelled (its user refunds); retryable GatewayError while the payment is pending."""
        try:
            payload = PayInvoicePayload.from_json(body)
        except Lnv1Error as exc:
            raise InvalidInput(f"pay_invoice: {exc}") from None
        cid = payload.contract_id.hex()
        async with self._locks.setdefault(cid, asyncio.Lock()):
            row = self.row(cid)
            if row is None:
                row = await self._check_and_record(payload)
                crash_point("lnv1-send-recorded")  # the contract stored, nothing paid yet
            elif row["preimage_auth"] == RECOVERED:
                return await self._answer_recovered(row)
            elif row["preimage_auth"] != payload.preimage_auth.hex():
                raise InvalidInput("this contract's payment was started by another caller")
            return await self._advance(row)

    async def _answer_recovered(self, row: dict) -> dict:
        """A row adopted from the session history (no payer's proof): driven on as resume()
        would; its preimage answered only once claimed (public on chain by then)."""
        answer = await self._advance(row)  # PaymentFailed for a cancelled one: nothing secret
        state = (self.row(row["contract_id"]) or {}).get("state")
        if state == S.CLAIMED:
            return answer
        if state == S.PAID:
            raise GatewayError(
                "the recovered contract is not claimed yet: ask again", retryable=True
            )
        raise InvalidInput("a recovered contract's preimage is answered only once it is claimed")

    async def _check_and_record(self, p: PayInvoicePayload) -> dict:
        if p.federation_id != self.federation_id:
            raise InvalidInput("federation_id is not this federation's")
        if p.invoice is None:
            raise InvalidInput("this gateway pays whole invoices only (no pruned invoices)")
        cid = p.contract_id.hex()
        account = parse_account(
            await self.mint.api.current_consensus(f"module_{self.module}_account", cid)
        )
        if account is None:
            raise GatewayError("no such contract (yet): ask again", retryable=True)
        c = account.contract
        if not isinstance(c, OutgoingContract):
            raise InvalidInput("the contract is not an outgoing contract")
        if c.cancelled:
            raise InvalidInput("the contract is cancelled")
        if c.gateway_key != self.key.public_key.format(compressed=True):
            raise InvalidInput("the contract is keyed to another gateway")
        if account.amount_msat == 0:
            raise InvalidInput("the contract is already spent")
        try:
            inv = bolt11_decode(p.invoice)
        except Exception:
            raise InvalidInput("the invoice cannot be decoded") from None
        count = int(await self.mint.api.current_consensus(f"module_{self.module}_block_count"))
        max_delay = c.timelock - (count - 1) - TIMELOCK_DELTA
        invoice_msat = int(inv.amount_msat or 0)
        fee = lnv1_fee_msat(
            int(self.fees["base_msat"]), int(self.fees["proportional_millionths"]), invoice_msat
        )
        refusal = None
        if inv.payment_hash != c.hash.hex():
            refusal = "the invoice is not for the contract's payment hash"
        elif not invoice_msat:
            refusal = "the invoice has no amount"
        elif account.amount_msat < invoice_msat + fee:
            refusal = f"the contract does not cover the invoice and our fee of {fee} msat"
        elif max_delay <= 0:
            refusal = "the contract's timelock is too close"
        elif inv.date + inv.expiry < time.time():
            refusal = "the invoice has expired"
        now = time.time()
        self.db.execute(
            "INSERT OR IGNORE INTO lnv1_sends (contract_id, payment_hash, invoice, invoice_msat,"
            " amount_msat, contract, preimage_auth, state, error, max_delay, max_fee_msat,"
            " created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                cid, c.hash.hex(), p.invoice, invoice_msat, account.amount_msat,
                json.dumps(c.json()), p.preimage_auth.hex(),
                S.CANCELLING if refusal else S.PAYING, refusal, max(max_delay, 0),
                max(account.amount_msat - invoice_msat, 0), now, now,
            ),
        )  # fmt: skip
        if refusal:
            log.warning("LNv1 contract %s refused: %s; cancelling it", cid, refusal)
        return self.row(cid) or {}

    async def _advance(self, row: dict) -> dict:
        cid = row["contract_id"]
        if row["state"] == S.PAYING:
            row = await self._pay(row)
        if row["state"] == S.PAID:
            crash_point("lnv1-send-paid")  # paid, not yet claimed
            try:  # the payer gets its preimage whatever the claim does
                await asyncio.wait_for(self._claim(row), 30)
                row = self._put(cid, S.CLAIMED)
            except Rejected as exc:
                log.error("LNv1 claim of %s refused: %s", cid, exc)
                row = self._put(cid, S.CLAIM_REFUSED, error=str(exc))
            except Exception as exc:  # the federation away: claimed by resume()
                log.warning("LNv1 claim of %s not done yet: %s", cid, exc)
        if row["state"] == S.CANCELLING:
            try:
                await self._cancel(row)
                row = self._put(cid, S.CANCELLED)
            except Rejected as exc:
                log.error("LNv1 cancellation of %s refused: %s", cid, exc)
                row = self._put(cid, S.CANCEL_REFUSED, error=f"{row['error']}; {exc}")
        if SEND_STATUS.get(row["state"]) == "settled":
            return {"preimage": row["preimage"], "contract_id": cid}
        raise PaymentFailed(f"{row['error']}; the contract is cancelled: refund it")

    async def _pay(self, row: dict) -> dict:
        cid, ph = row["contract_id"], row["payment_hash"]
        if self.hashes is not None and not await self.hashes.claim(ph, cid):
            log.warning("LNv1 send %s refused: %s", cid, DUPLICATE_PAYMENT_REASON)
            return self._put(cid, S.CANCELLING, error=DUPLICATE_PAYMENT_REASON)
        if self.swaps is not None:
            decision = await self.swaps.decide(
                row["invoice"], row["amount_msat"], f"lnv1-swap-{cid}"
            )
            if decision is not None:
                if decision.get("action") == "settle" and _hashes_to(decision["preimage"], ph):
                    return self._put(
                        cid, S.PAID, preimage=decision["preimage"], ln_fee_msat=0, swap=1
                    )
                row = self._put(
                    cid, S.CANCELLING, error=f"swap refused: {decision.get('reason')}", swap=1
                )
                await self._release(ph, cid)
                return row
        req = lnpb.PayInvoiceRequest(
            invoice=row["invoice"],
            max_delay=row["max_delay"],
            max_fee_msat=row["max_fee_msat"],
            payment_hash=bytes.fromhex(ph),
        )
        r = await self.lnrpc.PayInvoice(req, timeout=120)
        if r.status == lnpb.SETTLED and _hashes_to(r.preimage.hex(), ph):
            return self._put(cid, S.PAID, preimage=r.preimage.hex(), ln_fee_msat=r.fee_msat)
        if r.status == lnpb.FAILED:
            row = self._put(cid, S.CANCELLING, error=r.failure_reason or "payment failed")
            await self._release(ph, cid)
            return row
        raise GatewayError("payment pending: ask again", retryable=True)

    async def adopt(self, contract: OutgoingContract) -> bool:
        """An outgoing contract to our key that a lost data folder forgot (found in the session
        history after a recovery, inflight.py), taken up from what our node knows of its hash:
        paid -> `paid` (claimed by resume()); in flight with the invoice -> `paying` (asked
        again: PayInvoice is idempotent per hash); failed -> `cancelling` (cancelled by
        resume(): the payer refunds at once). Nothing is adopted when the contract is known
        here, not ours, spent, cancelled or past its timelock, or our node never paid the hash
        (the payer refunds at the timelock). True if taken up."""
        cid = contract.contract_id.hex()
        if self.row(cid) is not None:
            return False
        ours = self.key.public_key.format(compressed=True)
        account = await gateway_account(self.mint.api, self.module, cid, OutgoingContract, ours)
        if account is None:
            return False
        c: OutgoingContract = account.contract  # type: ignore[assignment]
        if account.amount_msat == 0 or c.cancelled:
            return False  # claimed, refunded or cancelled
        count = int(await self.mint.api.current_consensus(f"module_{self.module}_block_count"))
        if count > c.timelock:
            return False  # past the timelock: the payer's to refund, our claim refused
        try:
            r = await self.lnrpc.LookupPayment(
                lnpb.LookupPaymentRequest(payment_hash=c.hash), timeout=30
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return False
            raise
        invoice_msat = int(bolt11_decode(r.invoice).amount_msat or 0) if r.invoice else 0
        values: dict = {"error": None, "preimage": None, "ln_fee_msat": None}
        if r.status == lnpb.SETTLED and _hashes_to(r.preimage.hex(), c.hash.hex()):
            state = S.PAID
            values.update(preimage=r.preimage.hex(), ln_fee_msat=r.fee_msat)
        elif r.status == lnpb.FAILED:
            state, values["error"] = S.CANCELLING, r.failure_reason or "payment failed"
        elif r.status in (lnpb.PENDING, lnpb.UNKNOWN) and r.invoice:
            state = S.PAYING
        else:  # in flight and the node keeps no invoice to ask again with: wait for its end
            raise GatewayError("a recovered contract's payment is in flight", retryable=True)
        max_delay = c.timelock - (count - 1) - TIMELOCK_DELTA
        now = time.time()
        self.db.execute(
            "INSERT OR IGNORE INTO lnv1_sends (contract_id, payment_hash, invoice, invoice_msat,"
            " amount_msat, contract, preimage_auth, state, preimage, error, max_delay,"
            " max_fee_msat, ln_fee_msat, created, updated)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                cid, c.hash.hex(), r.invoice, invoice_msat, account.amount_msat,
                json.dumps(c.json()), RECOVERED, state.value, values["preimage"],
                values["error"], max(max_delay, 0), max(account.amount_msat - invoice_msat, 0),
                values["ln_fee_msat"], now, now,
            ),
        )  # fmt: skip
        if state == S.PAID and self.hashes is not None:
            await self.hashes.claim(c.hash.hex(), cid)  # the hash is paid: no second payer
        log.info("LNv1 send %s recovered from the session history: %s", cid, state.value)
        return True

    async def _release(self, payment_hash: str, cid: str) -> None:
        """This contract failed definitely (committed first): another may pay the hash."""
        if self.hashes is not None:
            await self.hashes.release(payment_hash, cid)

    async def _claim(self, row: dict) -> None:
        """Input with the preimage (signed by our key), change notes for what it brings."""
        cid = row["contract_id"]
        op_id = f"lnv1-claim-{cid[:32]}"
        if self.mint.operation(op_id) is None:
            amount = row["amount_msat"]
            item = ModuleItem(
                self.module,
                lightning_input(bytes.fromhex(cid), amount, bytes.fromhex(row["preimage"])),
            )
            net = amount - self.config.contract_input_fee_msat
            self.mint.create_operation(
                op_id, "lnv1_claim", [], external=False,
                foreign=Foreign((item,), (self.key.secret,), (), net),
            )  # fmt: skip
        await self.mint.finish(op_id)

    async def _cancel(self, row: dict) -> None:
        """A zero-value CancelOutgoing output signed by our key; no input, no fee."""
        cid = row["contract_id"]
        op_id = f"lnv1-cancel-{cid[:32]}"
        if self.mint.operation(op_id) is None:
            contract = OutgoingContract.from_json(json.loads(row["contract"]))
            signature = contract.cancel_signature(self.key.secret)
            item = ModuleItem(self.module, cancel_outgoing_output(contract.contract_id, signature))
            self.mint.create_operation(
                op_id, "lnv1_cancel", [], external=False, foreign=Foreign((), (), (item,), 0)
            )
        await self.mint.finish(op_id)

    def log_rows(self, since: float, before: float | None, limit: int) -> list[dict]:
        """LNv1 sends as payment-log rows (gwcore.payments.payment_row): direction outgoing, or swap;
        the fee earned is what the contract paid beyond the invoice and the Lightning fee."""
        end = before if before is not None else float("inf")
        return self.payments(
            "created >= ? AND created < ? ORDER BY created DESC LIMIT ?", (since, end, limit)
        )

    def payments(self, where: str, params: tuple) -> list[dict]:
        out = []
        for r in self.rows.select(where, params):
            status = SEND_STATUS.get(r["state"], "pending")
            fee = r["amount_msat"] - r["invoice_msat"] - (r["ln_fee_msat"] or 0)
            out.append(
                payment_row(
                    r["contract_id"],
                    self.federation_id,
                    "swap" if r["swap"] else "outgoing",
                    status,
                    r["invoice_msat"],
                    r["created"],
                    r["updated"],
                    # (a recovered row whose invoice the node did not keep: unknown, 0)
                    fee_earned_msat=fee if r["invoice"] else 0,
                    payment_hash=r["payment_hash"],
                    error=r["error"],
                )
            )
        return out

    def in_flight(self) -> int:
        """Sends not finished: paying (maybe paid over Lightning), paid and not yet claimed (a
        contract left unclaimed could expire to its payer), or being cancelled."""
        return self.rows.count_in(SEND_IN_FLIGHT)

    async def resume(self) -> None:
        """Claim what was paid, cancel what failed, ask again for what was in flight."""

        async def drive(cid: str) -> None:
            with contextlib.suppress(PaymentFailed):  # cancelled: the user refunds
                await self._advance(self.row(cid) or {})

        await self.drive_each(SEND_IN_FLIGHT, drive, "LNv1 send")


def _hashes_to(preimage_hex: str, payment_hash_hex: str) -> bool:
    try:
        return hashlib.sha256(bytes.fromhex(preimage_hex)).hexdigest() == payment_hash_hex
    except (TypeError, ValueError):
        return False
