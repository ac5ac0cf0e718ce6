"""Claims of paid LNv2 outgoing contracts, several in one transaction.

A send is answered as soon as its preimage is committed (`paid`), as gatewayd answers once its
claim is submitted: the payer's proof does not wait for our e-cash. The claim follows here.
While one claim transaction is with the federation, the contracts paid meanwhile wait; the
next transaction claims them all (up to MAX_BATCH). At low load a claim goes at once, alone;
under load the federation checks and signs one transaction for many payments, and our wallet
makes a note per binary digit of their sum rather than of every amount.

Each claim is a wallet operation created in one SQLite transaction with the rows it claims
(`claim_op`), before anything is sent: after a crash, resume() finds the operation and finishes
it (the wallet's own resume may have done so already). A batch the federation refuses (one of
its contracts expired or spent) is claimed again one contract at a time, so only that one is
`claim_refused`. The contracts we were paid for stay ours until their expiry; resume() drives
any `paid` row again every RESUME_EVERY_S (roles.py), far within it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import Any

from fmclient.lnv2 import OutgoingContract, claim_input
from fmclient.tx import ModuleItem
from fmclient.wallet_operations import Foreign, Rejected

log = logging.getLogger(__name__)
MAX_BATCH = 50  # contracts in one claim transaction


def claim_op_id(cids: list[str]) -> str:
    """One contract: the id claims always had (rows from before batches find theirs); more:
    one id for that set of contracts."""
    if len(cids) == 1:
        return f"lnv2-claim-{cids[0][:32]}"
    return "lnv2-claims-" + hashlib.sha256(",".join(sorted(cids)).encode()).hexdigest()[:32]


class Claims:
    """The claimer of one federation's LNv2 sends. `sender` (lnv2_send.Lnv2Sender) gives the
    wallet, our key, the module's config and its rows; `want(cid)` asks for a paid contract's
    claim and returns at once."""

    def __init__(self, sender: Any) -> None:
        self.sender = sender
        self._wanted: dict[str, None] = {}  # in the order asked
        self._runner: asyncio.Task | None = None
        self.done = asyncio.Event()  # set whenever nothing is wanted nor being claimed

    def want(self, cid: str) -> None:
        self._wanted.setdefault(cid, None)
        self.done.clear()
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name="lnv2-claims")

    async def _run(self) -> None:
        try:
            while self._wanted:
                batch = list(self._wanted)[:MAX_BATCH]
                for cid in batch:
                    del self._wanted[cid]
                try:
                    await self.claim(batch)
                except Exception as exc:  # the federation away: resume() asks again
                    log.warning("LNv2 claim of %d contract(s) not done yet: %s", len(batch), exc)
        finally:
            if not self._wanted:
                self.done.set()

    async def claim(self, cids: list[str]) -> None:
        """Claim these contracts (those still `paid`), each in the operation it already has,
        the rest together in one new one."""
        rows = [r for r in map(self.sender.row, cids) if r and r["state"] == "paid"]
        by_op: dict[str, list[dict]] = {}
        fresh = []
        for r in rows:
            op = r.get("claim_op") or claim_op_id([r["contract_id"]])
            if self.sender.mint.operation(op) is not None:
                by_op.setdefault(op, []).append(r)  # created before a crash or a refusal
            else:
                fresh.append(r)
        if fresh:  # a new operation: no other row names it
            by_op[self._create([r["contract_id"] for r in fresh], fresh)] = fresh
        for op, claimed in by_op.items():
            await self._finish(op, claimed)

    def _create(self, cids: list[str], rows: list[dict]) -> str:
        op_id = claim_op_id(cids)
        s = self.sender
        items, net = [], 0
        for r in rows:
            amount = OutgoingContract.from_json(json.loads(r["contract"])).amount_msat
            preimage = bytes.fromhex(r["preimage"])
            items.append(ModuleItem(s.module, claim_input(r["txid"], r["out_idx"], preimage)))
            net += amount - s.config.fee_msat(amount)
        marks = ", ".join("?" * len(cids))
        s.mint.create_operation(
            op_id, "lnv2_claim", [], external=False,
            foreign=Foreign(tuple(items), (s.key.secret,) * len(items), (), net),
            also=lambda db: db.execute(
                f"UPDATE lnv2_sends SET claim_op = ? WHERE contract_id IN ({marks})",
                (op_id, *cids),
            ),
        )  # fmt: skip
        return op_id

    async def _finish(self, op_id: str, rows: list[dict]) -> None:
        s = self.sender
        try:
            await s.mint.finish(op_id)
        except Rejected as exc:
            if len(rows) == 1 and op_id == claim_op_id([rows[0]["contract_id"]]):
                log.error("LNv2 claim of %s refused: %s", rows[0]["contract_id"], exc)
                s._put(rows[0]["contract_id"], "claim_refused", error=str(exc))
                return
            log.warning("a claim of %d contracts refused (%s): one at a time", len(rows), exc)
            for r in rows:
                s.db.execute(
                    "UPDATE lnv2_sends SET claim_op = NULL WHERE contract_id = ?",
                    (r["contract_id"],),
                )
                await self.claim([r["contract_id"]])
            return
        for r in rows:
            s._put(r["contract_id"], "claimed")
