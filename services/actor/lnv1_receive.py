"""LNv1 incoming payments for a real Fedimint federation: an HTLC our node intercepted because
its next hop is this federation's scid (the last hop of its users' invoices' route hints), or a
direct swap from a payer of a federation we serve. A user put an offer up for sale (the
preimage, threshold-encrypted, for `offer.amount`); we buy it by funding an incoming contract
from our e-cash, the guardians decrypt it in consensus, and the preimage settles the HTLC; a
failed decryption lets us take the contract back (input without witness, signed by our key)
and the HTLC is cancelled. Reference: fedimint-0.13.md §5.3; gatewayd's fedimint-gw-client
`gateway_handle_intercepted_htlc` and fedimint-ln-client `create_incoming_contract_output`.

One row per payment hash (an incoming contract's id is its hash: it is funded once), keyed to
the HTLC that started it; each step committed before the next, the funding transaction stored
with the `funding` state in one SQLite transaction; `resume()` finishes what a crash left.
Another HTLC of a hash already handled is cancelled: the invoice is paid once.

Checks before funding (gatewayd's): the offer exists and is for this hash, it asks no more
than the HTLC brings (`offer.amount <= incoming and outgoing msat`: the outgoing amount is the
sender's to write), it has not expired, no contract for the hash exists yet, and the HTLC
leaves more than 30 blocks before its expiry (LNV1_INCOMING_HTLC_EXPIRY_SAFETY_MARGIN).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from enum import StrEnum

from fmclient.ecash import EcashError
from fmclient.lnv1 import INVALID, PENDING, IncomingContract, IncomingContractOffer, Lnv1Config
from fmclient.lnv1_tx import (
    contract_output,
    gateway_account,
    lightning_input,
    parse_account,
    parse_decryption,
    parse_offer,
)
from fmclient.tx import ModuleItem
from fmclient.wallet_operations import Foreign, Rejected
from gwcore.payments import payment_row
from gwcore.states import StateMachine
from gwproto import gateway_lnrpc_pb2 as lnpb

from .crash import crash_point
from .flow_rows import LnFlow

log = logging.getLogger(__name__)
EXPIRY_SAFETY_MARGIN = 30  # blocks an HTLC must leave, more than (gatewayd's)
# lnd's max-cltv-expiry and lightningd's max-locktime-blocks: no HTLC reaches us expiring later
MAX_HTLC_CLTV = 2016
RECOVERED = ""  # the htlc of a row adopted from the session history: none seen yet
SCHEMA = """
CREATE TABLE IF NOT EXISTS lnv1_receives (
    payment_hash TEXT PRIMARY KEY, htlc TEXT NOT NULL, incoming_msat INTEGER NOT NULL,
    outgoing_msat INTEGER NOT NULL, incoming_expiry INTEGER NOT NULL, swap INTEGER NOT NULL,
    state TEXT NOT NULL, offer TEXT, amount_msat INTEGER, txid TEXT, preimage TEXT,
    error TEXT, created REAL NOT NULL, updated REAL NOT NULL
);
"""


class Lnv1ReceiveState(StrEnum):
    """An LNv1 receive, by payment hash, from the HTLC (or swap) that started it:

    received --offer checked, funding stored--> funding --funding accepted--> decrypting
    decrypting (also where a funded contract found after a recovery is taken up: adopt)
    received --no offer, too little, expired, too late, no funds--> rejected
    funding --funding refused--> funding_refused
    decrypting --preimage--> decrypted
               \\--decryption invalid--> refunding --refund accepted--> refunded
    """

    RECEIVED = "received"
    REJECTED = "rejected"
    FUNDING = "funding"
    FUNDING_REFUSED = "funding_refused"
    DECRYPTING = "decrypting"
    DECRYPTED = "decrypted"
    REFUNDING = "refunding"
    REFUNDED = "refunded"


R = Lnv1ReceiveState
RECEIVE = StateMachine(
    R,
    {
        R.RECEIVED: {R.FUNDING, R.REJECTED},
        R.FUNDING: {R.DECRYPTING, R.FUNDING_REFUSED},
        R.DECRYPTING: {R.DECRYPTED, R.REFUNDING},
        R.REFUNDING: {R.REFUNDED},
    },
)
RECEIVE_STATUS = {"decrypted": "settled", "refunded": "failed", "funding_refused": "failed"}
RECEIVE_STATUS |= {"rejected": "failed"}
RECEIVE_IN_FLIGHT = RECEIVE.in_states(R.RECEIVED, R.FUNDING, R.DECRYPTING, R.REFUNDING)


class Lnv1Receiver(LnFlow):
    MODULE, CONFIG, SCHEMA = "ln", Lnv1Config, SCHEMA
    TABLE, KEY, MACHINE = "lnv1_receives", "payment_hash", RECEIVE

    async def handle_htlc(self, htlc: dict) -> dict:
        """An intercepted HTLC (or a swap: `swap: true`, no deadline) -> {action: settle,
        preimage} | {action: cancel, reason}. Idempotent: a redelivered HTLC resumes where it
        stopped and gets the same decision."""
        ph = str(htlc.get("payment_hash", "")).lower()
        if len(ph) != 64:
            return _cancel("no payment hash")
        swap = bool(htlc.get("swap"))
        key = "swap" if swap else f"{htlc.get('incoming_chan_id')}:{htlc.get('htlc_id')}"
        async with self._locks.setdefault(ph, asyncio.Lock()):
            row = self.row(ph)
            if row is None:
                now = time.time()
                self.db.execute(
                    "INSERT OR IGNORE INTO lnv1_receives (payment_hash, htlc, incoming_msat,"
                    " outgoing_msat, incoming_expiry, swap, state, created, updated)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        ph, key, int(htlc.get("incoming_amount_msat", 0)),
                        int(htlc.get("outgoing_amount_msat", htlc.get("incoming_amount_msat", 0))),
                        int(htlc.get("incoming_expiry", 0)), int(swap), R.RECEIVED, now, now,
                    ),
                )  # fmt: skip
                row = self.row(ph) or {}
            elif row["htlc"] == RECOVERED:  # adopted: the first HTLC for the hash settles it
                self.db.execute(
                    "UPDATE lnv1_receives SET htlc = ?, incoming_msat = ?, outgoing_msat = ?,"
                    " incoming_expiry = ?, swap = ?, updated = ? WHERE payment_hash = ?",
                    (
                        key, int(htlc.get("incoming_amount_msat", 0)),
                        int(htlc.get("outgoing_amount_msat", htlc.get("incoming_amount_msat", 0))),
                        int(htlc.get("incoming_expiry", 0)), int(swap), time.time(), ph,
                    ),
                )  # fmt: skip
                row = self.row(ph) or {}
            elif row["htlc"] != key:
                return _cancel("this payment hash is already being paid or was paid")
            if row["state"] == R.RECEIVED:
                row = await self._start_funding(row)
                crash_point("lnv1-receive-funding")  # the funding stored, not yet submitted
            return await self._advance(ph)

    async def _start_funding(self, row: dict) -> dict:
        ph = row["payment_hash"]
        api = self.mint.api
        offer = parse_offer(await api.current_consensus(f"module_{self.module}_offer", ph))
        refusal = self._refusal(offer, row)
        if refusal is None and not row["swap"]:
            info = await self.lnrpc.GetNodeInfo(lnpb.GetNodeInfoRequest(), timeout=10)
            if row["incoming_expiry"] - info.block_height <= EXPIRY_SAFETY_MARGIN:
                refusal = "the HTLC expires too soon"
        if refusal is None:
            existing = await api.current_consensus(f"module_{self.module}_account", ph)
            if parse_account(existing) is not None:
                refusal = "an incoming contract for this payment hash exists already"
        if refusal is not None or offer is None:
            return self._put(ph, R.REJECTED, error=refusal)
        contract = IncomingContract.funding(offer, self.key.public_key.format(compressed=True))
        cost = offer.amount_msat + self.config.contract_output_fee_msat
        item = ModuleItem(self.module, contract_output(offer.amount_msat, contract))
        RECEIVE.check(row["state"], R.FUNDING)
        try:
            notes = self.mint.choose(cost)
            self.mint.create_operation(
                _fund_op(ph), "lnv1_fund", notes, external=False,
                foreign=Foreign((), (), (item,), -cost),
                also=lambda db: db.execute(
                    "UPDATE lnv1_receives SET state = ?, offer = ?, amount_msat = ?, updated = ?"
                    " WHERE payment_hash = ?",
                    (R.FUNDING, json.dumps(offer.json()), offer.amount_msat, time.time(), ph),
                ),
            )  # fmt: skip
        except EcashError as exc:
            log.warning("LNv1 receive %s not funded: %s", ph, exc)
            return self._put(ph, R.REJECTED, error="the gateway cannot fund this contract now")
        return self.row(ph) or {}

    @staticmethod
    def _refusal(offer: IncomingContractOffer | None, row: dict) -> str | None:
        if offer is None:
            return "no offer for this payment hash"
        if offer.hash.hex() != row["payment_hash"]:
            return "the offer is for another payment hash"
        if offer.amount_msat > min(row["incoming_msat"], row["outgoing_msat"]):
            return f"the offer asks {offer.amount_msat} msat, more than the HTLC brings"
        if offer.expiry_time is not None and offer.expiry_time <= time.time():
            return "the offer has expired"
        return None

    async def _advance(self, ph: str) -> dict:
        row = self.row(ph) or {}
        if row["state"] == R.FUNDING:
            try:
                await self.mint.finish(_fund_op(ph))
            except Rejected as exc:
                log.error("LNv1 funding of %s refused: %s", ph, exc)
                row = self._put(ph, R.FUNDING_REFUSED, error=str(exc))
            else:
                txid = (self.mint.operation(_fund_op(ph)) or {})["txid"]
                row = self._put(ph, R.DECRYPTING, txid=txid)
                crash_point("lnv1-receive-funded")  # the contract funded, not yet decrypted
        if row["state"] == R.DECRYPTING:
            answer = await self.mint.api.current_consensus(
                f"module_{self.module}_await_preimage_decryption", ph, timeout=3600, long_poll=True
            )
            _, preimage = parse_decryption(answer)
            if isinstance(preimage, bytes) and hashlib.sha256(preimage).hexdigest() == ph:
                row = self._put(ph, R.DECRYPTED, preimage=preimage.hex())
            elif preimage == PENDING:  # never answered by the long poll; asked again
                raise TimeoutError("the decryption is still pending")
            else:
                log.error("LNv1 contract %s did not decrypt (%s): refunding", ph, preimage)
                row = self._put(ph, R.REFUNDING, error="the offer's preimage did not decrypt")
        if row["state"] == R.REFUNDING:
            await self._refund(row)
            row = self._put(ph, R.REFUNDED)
        if row["state"] == R.DECRYPTED:
            crash_point("lnv1-receive-decrypted")  # the preimage known, the HTLC not settled
            return {"action": "settle", "preimage": row["preimage"]}
        return _cancel(row["error"] or f"the incoming contract was {row['state']}")

    async def _refund(self, row: dict) -> None:
        """Take back a contract whose decryption failed: no witness, signed by our key."""
        ph = row["payment_hash"]
        op_id = f"lnv1-refund-{ph[:32]}"
        if self.mint.operation(op_id) is None:
            amount = int(row["amount_msat"])
            item = ModuleItem(self.module, lightning_input(bytes.fromhex(ph), amount, None))
            net = amount - self.config.contract_input_fee_msat
            self.mint.create_operation(
                op_id, "lnv1_refund", [], external=False,
                foreign=Foreign((item,), (self.key.secret,), (), net),
            )  # fmt: skip
        await self.mint.finish(op_id)

    async def adopt(self, contract: IncomingContract, txid: str, amount_msat: int) -> bool:
        """An incoming contract we funded that a lost data folder forgot (found in the session
        history after a recovery, inflight.py): taken up at `decrypting` with no HTLC yet, so
        resume() reads its decryption: the preimage -> `decrypted`, and the HTLC our node still
        holds, intercepted again for our scid, is settled with it; invalid -> refunded to us.
        Nothing when the hash is known here, the contract is not ours, or it did not decrypt
        and is spent (our own refund, done before the loss). True if taken."""
        ph = contract.hash.hex()
        if self.row(ph) is not None:
            return False
        ours = self.key.public_key.format(compressed=True)
        account = await gateway_account(self.mint.api, self.module, ph, IncomingContract, ours)
        if account is None:
            return False
        if account.contract.decrypted_preimage == INVALID and account.amount_msat == 0:  # type: ignore[union-attr]
            return False
        now = time.time()
        self.db.execute(
            "INSERT OR IGNORE INTO lnv1_receives (payment_hash, htlc, incoming_msat,"
            " outgoing_msat, incoming_expiry, swap, state, amount_msat, txid, created, updated)"
            " VALUES (?, ?, 0, 0, 0, 0, ?, ?, ?, ?, ?)",
            (ph, RECOVERED, R.DECRYPTING, amount_msat, txid, now, now),
        )
        log.info("LNv1 receive %s recovered from the session history: decrypting", ph)
        return True

    async def resume(self) -> None:
        """Finish fundings, decryptions and refunds a crash interrupted (the router asks again
        for the HTLC's decision and gets the result)."""
        await self.drive_each(
            tuple(s for s in RECEIVE_IN_FLIGHT if s != R.RECEIVED), self._advance, "LNv1 receive"
        )

    def log_rows(self, since: float, before: float | None, limit: int) -> list[dict]:
        """LNv1 receives as payment-log rows (gwcore.payments.payment_row): direction incoming; the
        fee earned is what the HTLC brought beyond the offer we bought."""
        end = before if before is not None else float("inf")
        return self.payments(
            "created >= ? AND created < ? ORDER BY created DESC LIMIT ?", (since, end, limit)
        )

    def payments(self, where: str, params: tuple) -> list[dict]:
        out = []
        for r in self.rows.select(where, params):
            status = RECEIVE_STATUS.get(r["state"], "pending")
            earned = r["incoming_msat"] - (r["amount_msat"] or 0)
            if r["swap"]:  # what the payer's contract brings beyond the offer is our send fee,
                earned = 0  # earned (and logged) by the payer's side of the swap
            out.append(
                payment_row(
                    r["payment_hash"],
                    self.federation_id,
                    "incoming",
                    status,
                    r["amount_msat"] or r["incoming_msat"],
                    r["created"],
                    r["updated"],
                    fee_earned_msat=earned,
                    payment_hash=r["payment_hash"],
                    error=r["error"],
                )
            )
        return out

    def in_flight(self) -> int:
        """Receives being decided, funded, decrypted or refunded to us."""
        return self.rows.count_in(RECEIVE_IN_FLIGHT)


def _fund_op(payment_hash: str) -> str:
    return f"lnv1-fund-{payment_hash[:32]}"


def _cancel(reason: str) -> dict:
    return {"action": "cancel", "reason": reason}
