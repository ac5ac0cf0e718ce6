"""LNv2 incoming payments for a real Fedimint federation (`POST /create_bolt11_invoice`): a
user's IncomingContract names our key as its refund key; we check it, keep it, and have our
node make a hold invoice for its payment hash. When that invoice's HTLC arrives we fund the
contract from our e-cash, combine the guardians' decryption key shares into the preimage and
settle the HTLC with it; a contract that does not decrypt to the preimage is refunded to us
and the HTLC cancelled. Reference: fedimint-0.13.md §6.4 (gatewayd's create_bolt11_invoice_v2,
gwv2-client's relay_incoming_htlc and receive state machine).

States: `ReceiveState` below, one row per payment hash in the federation's wallet file, each
committed before the step that follows it (the funding transaction is stored with the `funding`
state, in one SQLite transaction; `resume()` finishes what a crash left). `decrypted`: the
HTLC that started the funding (its key, or "swap", is stored with it) is settled with the
preimage; `refunded`, `funding_refused`: cancelled. Any other HTLC of the hash (a second payment
of the invoice, or one after a direct swap paid it) is cancelled: the invoice is paid once. An
HTLC refused by the checks (wrong amount, too near its deadline, no funds) is cancelled and the
row stays `created` (the payer may try again).

Nothing here settles or cancels an HTLC itself: the decision goes back to the router, which
completes the HTLC until the node acknowledges it. The payload and contract checks before an
invoice are lnv2_invoice.py's; the payment log and LUD-21 verify read the rows in
lnv2_receive_log.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any

from coincurve import PrivateKey

from fmclient import tbs, tpe
from fmclient.ecash import EcashError
from fmclient.lnv2 import IncomingContract, Lnv2Config, incoming_input, incoming_output
from fmclient.tx import ModuleItem
from fmclient.wallet import MintWallet
from fmclient.wallet_operations import Foreign, Rejected
from gwcore.errors import InvalidInput
from gwcore.states import StateMachine
from gwproto import gateway_lnrpc_pb2 as lnpb

from .crash import crash_point
from .flow_rows import LnFlow
from .lnv2_invoice import check_contract, hold_invoice_request, parse_payload
from .lnv2_receive_log import payment_rows, verify_answer

log = logging.getLogger(__name__)
SCHEMA = """
CREATE TABLE IF NOT EXISTS lnv2_receives (
    payment_hash TEXT PRIMARY KEY, contract TEXT NOT NULL, amount_msat INTEGER NOT NULL,
    description TEXT NOT NULL, expiry_secs INTEGER NOT NULL, invoice TEXT, state TEXT NOT NULL,
    txid TEXT, out_idx INTEGER, agg_dk TEXT, preimage TEXT, error TEXT, htlc TEXT,
    created REAL NOT NULL, updated REAL NOT NULL
);
"""


class ReceiveState(StrEnum):
    """An LNv2 receive, by payment hash:

    created (contract checked and kept; the router knows the hash is ours; invoice made)
    created --HTLC of the invoice's amount, 2 blocks or more before its deadline--> funding
    funding --funding accepted--> decrypting --preimage hashes right--> decrypted
                                  \\--it does not--> refunding --refund accepted--> refunded
    funding --funding refused--> funding_refused
    """

    CREATED = "created"
    FUNDING = "funding"
    DECRYPTING = "decrypting"
    DECRYPTED = "decrypted"
    REFUNDING = "refunding"
    REFUNDED = "refunded"
    FUNDING_REFUSED = "funding_refused"


RECEIVE = StateMachine(
    ReceiveState,
    {
        ReceiveState.CREATED: {ReceiveState.FUNDING},
        ReceiveState.FUNDING: {ReceiveState.DECRYPTING, ReceiveState.FUNDING_REFUSED},
        ReceiveState.DECRYPTING: {ReceiveState.DECRYPTED, ReceiveState.REFUNDING},
        ReceiveState.REFUNDING: {ReceiveState.REFUNDED},
    },
)
RECEIVE_IN_FLIGHT = RECEIVE.in_states(
    ReceiveState.FUNDING, ReceiveState.DECRYPTING, ReceiveState.REFUNDING
)
CLAIM_DEADLINE_MARGIN = 2  # blocks an HTLC must leave before we fund (gwv2-client's margin)


class Lnv2Receiver(LnFlow):
    MODULE, CONFIG, SCHEMA = "lnv2", Lnv2Config, SCHEMA
    TABLE, KEY, MACHINE = "lnv2_receives", "payment_hash", RECEIVE

    def __init__(
        self,
        mint: MintWallet,
        key: PrivateKey,
        lnrpc: Any,
        fees: dict,
        federation_id: str,
        claim_hash: Callable[[str], Awaitable[None]],
    ) -> None:
        """`claim_hash(payment_hash)`: tell the router that HTLCs of this hash are ours."""
        super().__init__(mint, key, lnrpc, fees, federation_id)
        self.claim_hash = claim_hash

    # --- the invoice ------------------------------------------------------------------------
    async def create_invoice(self, body: dict) -> str:
        """CreateBolt11InvoicePayload -> the BOLT11 of our node's hold invoice. The same
        payload again answers the same invoice; another contract for that hash is refused."""
        contract, amount, description, expiry = parse_payload(body, self.federation_id)
        ph = contract.commitment.payment_image.json().get("Hash")
        if not isinstance(ph, str):
            raise InvalidInput("the contract's payment image is not a payment hash")
        kept = self.row(ph)
        record = (json.dumps(contract.json()), amount, json.dumps(description), expiry)
        if kept is not None:
            if (
                kept["contract"],
                kept["amount_msat"],
                kept["description"],
                kept["expiry_secs"],
            ) != record:
                raise InvalidInput("this payment hash is already registered")
            if kept["invoice"]:
                return str(kept["invoice"])
        else:
            await check_contract(contract, amount, self.key, self.fees)
            now = time.time()
            self.db.execute(
                "INSERT OR IGNORE INTO lnv2_receives (payment_hash, contract, amount_msat,"
                " description, expiry_secs, state, created, updated)"
                " VALUES (?, ?, ?, ?, ?, 'created', ?, ?)",
                (ph, *record, now, now),
            )
        await self.claim_hash(ph)  # before the invoice exists: no HTLC can reach us unclaimed
        req = hold_invoice_request(ph, amount, expiry, description)
        invoice = (await self.lnrpc.CreateInvoice(req, timeout=30)).invoice
        self.db.execute(
            "UPDATE lnv2_receives SET invoice = ?, updated = ? WHERE payment_hash = ?",
            (invoice, time.time(), ph),
        )
        return str(invoice)

    # --- the HTLC ---------------------------------------------------------------------------
    async def on_htlc(self, htlc: dict) -> dict:
        """An HTLC of one of our hold invoices -> {action: settle, preimage} | {action: cancel,
        reason}. Idempotent per payment hash: a repeat after a crash resumes where it stopped.
        `swap: true`: no HTLC, a payer of a federation we serve (direct swap); no deadline."""
        ph = str(htlc.get("payment_hash", ""))
        lock = self._locks.setdefault(ph, asyncio.Lock())
        async with lock:
            row = self.row(ph)
            if row is None:
                return _cancel("no incoming contract for this payment hash")
            key = (
                "swap"
                if htlc.get("swap")
                else f"{htlc.get('incoming_chan_id')}:{htlc.get('htlc_id')}"
            )
            if row["state"] == ReceiveState.DECRYPTED and row["htlc"] is None:
                # recovered after a lost data folder (`adopt`): the HTLC we held is this one
                self.db.execute(
                    "UPDATE lnv2_receives SET htlc = ?, updated = ? WHERE payment_hash = ?"
                    " AND htlc IS NULL",
                    (key, time.time(), ph),
                )
                row = self.row(ph) or row
            if row["state"] != ReceiveState.CREATED and row["htlc"] != key:
                return _cancel("this invoice is already paid")
            if row["state"] == ReceiveState.CREATED:
                refused = await self._start_funding(row, htlc, key)
                if refused:
                    return _cancel(refused)
                crash_point("lnv2-receive-funding")  # the funding stored, not yet submitted
            return await self._advance(ph)

    async def _start_funding(self, row: dict, htlc: dict, key: str) -> str | None:
        ph = row["payment_hash"]
        if int(htlc.get("incoming_amount_msat", 0)) != row["amount_msat"]:
            return f"the HTLC does not pay the invoice's {row['amount_msat']} msat"
        if not htlc.get("swap"):
            info = await self.lnrpc.GetNodeInfo(lnpb.GetNodeInfoRequest(), timeout=10)
            if int(htlc.get("incoming_expiry", 0)) - info.block_height < CLAIM_DEADLINE_MARGIN:
                return "the HTLC's claim deadline is too close"
        contract = IncomingContract.from_json(json.loads(row["contract"]))
        if contract.commitment.expiration <= time.time():
            return "the contract has expired"
        amount = contract.commitment.amount_msat
        cost = amount + self.config.fee_msat(amount)
        item = ModuleItem(self.module, incoming_output(contract))
        try:
            notes = self.mint.choose(cost)
            self.mint.create_operation(
                _fund_op(ph), "lnv2_fund", notes, external=False,
                foreign=Foreign((), (), (item,), -cost),
                also=lambda db: db.execute(
                    "UPDATE lnv2_receives SET state = ?, htlc = ?, updated = ?"
                    " WHERE payment_hash = ?",
                    (RECEIVE.check(row["state"], ReceiveState.FUNDING), key, time.time(), ph),
                ),
            )  # fmt: skip
        except EcashError as exc:
            log.warning("LNv2 receive %s not funded: %s", ph, exc)
            return "the gateway cannot fund this contract now"
        return None

    async def _advance(self, ph: str) -> dict:
        row = self.row(ph) or {}
        contract = IncomingContract.from_json(json.loads(row["contract"]))
        if row["state"] == ReceiveState.FUNDING:
            try:
                await self.mint.finish(_fund_op(ph))
            except Rejected as exc:
                log.error("LNv2 funding of %s refused: %s", ph, exc)
                row = self._put(ph, ReceiveState.FUNDING_REFUSED, error=str(exc))
            else:
                txid = (self.mint.operation(_fund_op(ph)) or {})["txid"]
                row = self._put(
                    ph, ReceiveState.DECRYPTING, txid=txid, out_idx=0
                )  # our output is first
        if row["state"] == ReceiveState.DECRYPTING:
            agg = await self._aggregate_key(contract, row["txid"], row["out_idx"])
            preimage = contract.decrypt(agg)
            if preimage is not None:
                row = self._put(
                    ph,
                    ReceiveState.DECRYPTED,
                    agg_dk=tbs.to_bytes(agg).hex(),
                    preimage=preimage.hex(),
                )
            else:
                log.error("LNv2 contract %s does not decrypt to its preimage: refunding", ph)
                row = self._put(ph, ReceiveState.REFUNDING, agg_dk=tbs.to_bytes(agg).hex())
        if row["state"] == ReceiveState.REFUNDING:
            await self._refund(row, contract)
            row = self._put(ph, ReceiveState.REFUNDED)
        if row["state"] == ReceiveState.DECRYPTED:
            crash_point("lnv2-receive-decrypted")  # the preimage known, the HTLC not yet settled
            return {"action": "settle", "preimage": row["preimage"]}
        return _cancel(f"the incoming contract was {row['state'].replace('_', ' ')}")

    async def adopt(
        self, txid: str, out_idx: int, contract: IncomingContract, spent_dk: bytes | None
    ) -> bool:
        """An incoming contract we funded that a lost data folder forgot (found in the session
        history after a recovery, inflight.py), taken up from its decryption: to the preimage
        -> `decrypted` with no HTLC yet (the hash claimed at the router, so the HTLC our node
        still holds comes here and is settled with it); not -> `refunding` (resume() refunds
        it to us). `spent_dk`: the aggregate key of the contract's spend, if the history shows
        one (the payer claimed: the preimage is in it; a refund of ours: nothing to do).
        Nothing when the hash is known here. True if taken."""
        ph = contract.commitment.payment_image.json().get("Hash")
        if not isinstance(ph, str) or self.row(ph) is not None:
            return False
        if spent_dk is not None:
            agg = tbs.g1(spent_dk)
        else:
            agg = await self._aggregate_key(contract, txid, out_idx)
        preimage = contract.decrypt(agg)
        if preimage is None and spent_dk is not None:
            return False  # spent without the preimage: our own refund, already done
        state = ReceiveState.DECRYPTED if preimage is not None else ReceiveState.REFUNDING
        now = time.time()
        amount = contract.commitment.amount_msat  # the invoice's less our fee: not on chain
        self.db.execute(
            "INSERT OR IGNORE INTO lnv2_receives (payment_hash, contract, amount_msat,"
            " description, expiry_secs, state, txid, out_idx, agg_dk, preimage, created,"
            " updated) VALUES (?, ?, ?, '{}', 0, ?, ?, ?, ?, ?, ?, ?)",
            (
                ph,
                json.dumps(contract.json()),
                amount,
                state.value,
                txid,
                out_idx,
                tbs.to_bytes(agg).hex(),
                preimage.hex() if preimage is not None else None,
                now,
                now,
            ),
        )
        await self.claim_hash(ph)
        log.info("LNv2 receive %s recovered from the session history: %s", ph, state.value)
        return True

    async def _aggregate_key(self, contract: IncomingContract, txid: str, out_idx: int) -> Any:
        ct = contract.ciphertext
        message = await asyncio.to_thread(ct.message, contract.commitment.hash)

        def verify(peer: int, answer: Any) -> Any:
            try:
                share = tbs.g1(bytes.fromhex(answer))
            except (TypeError, ValueError, tbs.TbsError):
                return None
            pk = self.config.tpe_pks.get(peer)
            return share if pk is not None and tpe.verify_dk_share(pk, share, ct, message) else None

        shares = await self.mint.api.verified(
            f"module_{self.module}_decryption_key_share",
            {"txid": txid, "out_idx": out_idx},
            verify,
            timeout=3600,
            long_poll=True,
        )
        return tpe.aggregate_dk_shares(shares)

    async def _refund(self, row: dict, contract: IncomingContract) -> None:
        op_id = f"lnv2-refund-{row['payment_hash'][:32]}"
        if self.mint.operation(op_id) is None:
            agg = tbs.g1(bytes.fromhex(row["agg_dk"]))
            item = ModuleItem(self.module, incoming_input(row["txid"], row["out_idx"], agg))
            amount = contract.commitment.amount_msat
            self.mint.create_operation(
                op_id, "lnv2_refund", [], external=False,
                foreign=Foreign((item,), (self.key.secret,), (), amount - self.config.fee_msat(amount)),
            )  # fmt: skip
        await self.mint.finish(op_id)

    async def resume(self) -> None:
        """Finish fundings, decryptions and refunds a crash interrupted (the router asks again
        for the HTLC's decision and gets the result)."""
        await self.drive_each(RECEIVE_IN_FLIGHT, self._advance, "LNv2 receive")

    def log_rows(self, since: float, before: float | None, limit: int) -> list[dict]:
        """LNv2 receives whose HTLC came (or swap), as payment-log rows
        (gwcore.payments.payment_row): direction incoming; the fee earned is the invoice less the contract."""
        end = before if before is not None else float("inf")
        return self.payments(
            "state != 'created' AND created >= ? AND created < ? ORDER BY created DESC LIMIT ?",
            (since, end, limit),
        )

    def payments(self, where: str, params: tuple) -> list[dict]:
        return payment_rows(self.rows.select(where, params), self.federation_id)

    def in_flight(self) -> int:
        """Receives whose HTLC came (or swap) and whose contract is being funded, decrypted or
        refunded to us: our e-cash is in the contract until they finish."""
        return self.rows.count_in(RECEIVE_IN_FLIGHT)

    async def verify(self, payment_hash: str) -> dict:
        """LUD-21 verify, as gatewayd's /verify answers it (lnv2_receive_log.py)."""
        return verify_answer(self.row(payment_hash))


def _fund_op(payment_hash: str) -> str:
    return f"lnv2-fund-{payment_hash[:32]}"


def _cancel(reason: str) -> dict:
    return {"action": "cancel", "reason": reason}
