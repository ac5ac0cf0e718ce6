"""Payments over the simulated network: path finding, HTLCs hop by hop, interception, holds.

HTLC life (each one a row in `htlcs`, balances moved in the same transaction):

    pending --(preimage comes back)--> settled    sender's side -> receiver's side
       \\------(failure comes back)---> failed     sender's side refunded

A payment (`payments` row, persisted before the first HTLC) tries routes one after another:

    pending --preimage--> succeeded
       \\--definite failure / no more routes--> failed

At each hop the forwarding node checks what a real node checks (channel, liquidity, htlc
min/max, its fee and CLTV delta, expiry too soon/far) and fails with the BOLT-4 code. An HTLC
whose next hop is an unknown short channel id is offered to the node's interceptor (as a CLN
`htlc_accepted` hook or LND's HtlcInterceptor would): it settles with a preimage, fails, or
forwards (-> unknown_next_peer). Without an interceptor the node fails it at once, unless the
node holds unknown scids (`hold_unknown_scids`), in which case it waits for one. Held HTLCs and
accepted hold-invoice HTLCs are failed back when the chain gets within
`HOLD_SAFETY_BLOCKS` of their expiry. On restart, HTLCs in flight are failed back (refunded).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import OrderedDict
from typing import Any

from bolt11 import decode as bolt11_decode
from bolt11.exceptions import Bolt11Exception

from .chain import Chain
from .errors import LnError
from .htlcs import FAILURES, NODE, PERM, UPDATE, Htlc, HtlcFailure
from .interception import HeldHtlc, HoldsAndInterception
from .lightning import Channel, Network, Node, Policy, parse_scid
from .routing import MAX_CLTV_EXPIRY_DELTA, Hop, find_route

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10


class Payments(HoldsAndInterception):
    """Routes and executes payments; holds intercepted HTLCs and hold-invoice HTLCs."""

    def __init__(self, net: Network, chain: Chain) -> None:
        self.net, self.chain, self.db = net, chain, net.db
        self._running: dict[tuple[str, str], asyncio.Task[dict]] = {}
        self.held: dict[str, dict[int, HeldHtlc]] = {}
        self.subscribers: dict[str, asyncio.Queue[dict]] = {}
        self.invoice_watchers: dict[str, set[asyncio.Queue[dict]]] = {}
        self._hold_decisions: dict[tuple[str, str], asyncio.Future[bytes | None]] = {}
        self._hold_expiry: dict[tuple[str, str], int] = {}
        self._ids = itertools.count(int(time.time() * 1000))
        self._decoded: OrderedDict[str, Any] = OrderedDict()
        self._recover()
        chain.on_block(self._on_block)

    # --- restart ------------------------------------------------------------------------------
    def _recover(self) -> None:
        """Fail back HTLCs left in flight by a crash; mark their payments failed."""
        with self.db.tx() as c:
            for r in self.db.all("SELECT * FROM htlcs WHERE state = 'pending'"):
                ch = self.net.channels[r["scid"]]
                self._credit(ch, r["sender"], r["amount_msat"])
                c.execute("UPDATE htlcs SET state = 'failed' WHERE id = ?", (r["id"],))
            c.execute(
                "UPDATE payments SET status = 'failed', failure_code = ?, completed = ? WHERE status = 'pending'",
                (NODE | 2, int(time.time() * 1000)),
            )
            c.execute("UPDATE invoices SET state = 'open' WHERE state = 'accepted'")

    # --- paying -------------------------------------------------------------------------------
    async def pay(
        self,
        payer: str,
        bolt11: str,
        *,
        max_fee_msat: int | None = None,
        max_cltv_delay: int | None = None,
        amount_msat: int | None = None,
        timeout_s: float = 60.0,
    ) -> dict:
        """Pay `bolt11` from `payer`. Idempotent per (payer, payment hash): a repeat waits for or
        returns the first attempt; a payment that failed may be tried again."""
        node = self.net.node(payer)
        inv = self.decode(bolt11)
        if not inv.is_regtest():
            raise LnError(
                "invalid_invoice", f"invoice is for network {inv.currency!r}, not regtest"
            )
        amount = inv.amount_msat or amount_msat
        if not amount or amount <= 0:
            raise LnError("invalid_invoice", "invoice has no amount: give amount_msat")
        if inv.amount_msat and amount_msat and amount_msat != inv.amount_msat:
            raise LnError("invalid_input", "amount_msat differs from the invoice's amount")
        if inv.payee == node.pubkey:
            raise LnError("invalid_invoice", "a node cannot pay its own invoice")
        for v, what in ((max_fee_msat, "max_fee_msat"), (max_cltv_delay, "max_cltv_delay")):
            if v is not None and (not isinstance(v, int) or v < 0):
                raise LnError("invalid_input", f"{what} must be a non-negative integer")
        key = (payer, inv.payment_hash)
        task = self._running.get(key)
        if task is None:
            row = self.db.one("SELECT * FROM payments WHERE payer = ? AND payment_hash = ?", *key)
            if row is not None and row["status"] == "succeeded":
                return self.payment_json(row)
            if inv.has_expired():
                raise LnError("invoice_expired", "invoice has expired", 409)
            with self.db.tx() as c:  # persist the attempt before the first HTLC leaves
                c.execute(
                    "INSERT OR REPLACE INTO payments (payer, payment_hash, bolt11, status, amount_msat, created)"
                    " VALUES (?, ?, ?, 'pending', ?, ?)",
                    (payer, inv.payment_hash, bolt11, amount, int(time.time() * 1000)),
                )
            task = asyncio.create_task(self._run(node, inv, amount, max_fee_msat, max_cltv_delay))
            self._running[key] = task
            task.add_done_callback(lambda _t: self._running.pop(key, None))
        try:
            return await asyncio.wait_for(asyncio.shield(task), timeout_s)
        except TimeoutError:
            return self.payment(payer, inv.payment_hash)

    def decode(self, bolt11: str):  # type: ignore[no-untyped-def]
        """Decode (and check the signature of) an invoice, once: the pure-Python decoder costs
        milliseconds, so decoded invoices are kept (LRU) and this world's own are decoded when
        they are made (`remember`)."""
        inv = self._decoded.get(bolt11)
        if inv is not None:
            self._decoded.move_to_end(bolt11)
            return inv
        try:
            inv = bolt11_decode(bolt11)
        except (Bolt11Exception, ValueError, TypeError, KeyError, IndexError) as exc:
            raise LnError("invalid_invoice", f"cannot decode invoice: {exc}") from None
        self._decoded[bolt11] = inv
        if len(self._decoded) > 20_000:
            self._decoded.popitem(last=False)
        return inv

    def remember(self, invoice: dict) -> dict:
        self.decode(invoice["bolt11"])
        return invoice

    def payment(self, payer: str, payment_hash: str) -> dict:
        row = self.db.one(
            "SELECT * FROM payments WHERE payer = ? AND payment_hash = ?", payer, payment_hash
        )
        if row is None:
            raise LnError("unknown_payment", "no such payment", 404)
        return self.payment_json(row)

    def payment_json(self, row) -> dict:  # type: ignore[no-untyped-def]
        node = self.net.by_pubkey.get(row["failure_node"] or "")
        return {
            "payer": row["payer"],
            "payment_hash": row["payment_hash"],
            "status": row["status"],
            "amount_msat": row["amount_msat"],
            "fee_msat": row["fee_msat"],
            "preimage": row["preimage"],
            "failure_code": row["failure_code"],
            "failure": FAILURES.get(row["failure_code"])
            if row["failure_code"] is not None
            else ("route_not_found" if row["status"] == "failed" else None),
            "failure_node": node.name if node else row["failure_node"],
            "attempts": row["attempts"],
            "created": row["created"],
            "completed": row["completed"],
        }

    async def _run(
        self, node: Node, inv, amount: int, max_fee: int | None, max_delay: int | None
    ) -> dict:  # type: ignore[no-untyped-def]
        hints = [
            [
                (
                    r.public_key,
                    parse_scid(r.short_channel_id),
                    Policy(r.base_fee, r.ppm_fee, r.cltv_expiry_delta),
                )
                for r in h.routes
            ]
            for h in inv.route_hints or []
        ]
        excluded: set[tuple[str, int]] = set()
        failure: HtlcFailure | None = None
        attempts = 0
        while attempts < MAX_ATTEMPTS:
            height = self.chain.height()
            route = find_route(
                self.net,
                height,
                node,
                inv.payee,
                amount,
                height + inv.min_final_cltv_expiry,
                hints,
                excluded,
                max_fee,
                max_delay,
            )
            if route is None:
                break  # failure None and no attempt: route_not_found
            attempts += 1
            try:
                await self._attempt(node, route, inv, amount, attempts)
            except HtlcFailure as exc:
                failure = exc
                log.info(
                    "payment attempt failed",
                    extra={"fields": {"failure": exc.name, "at": exc.node}},
                )
                if exc.code & PERM and exc.node == inv.payee:
                    break  # the recipient said no: final
                if exc.scid is None:
                    break
                excluded.add((exc.node, exc.scid))
                continue
            return self.payment(node.name, inv.payment_hash)  # recorded by _attempt
        with self.db.tx() as c:
            c.execute(
                "UPDATE payments SET status = 'failed', failure_code = ?, failure_node = ?, attempts = ?,"
                " completed = ? WHERE payer = ? AND payment_hash = ?",
                (
                    failure.code if failure else None,
                    failure.node if failure else None,
                    attempts,
                    int(time.time() * 1000),
                    node.name,
                    inv.payment_hash,
                ),
            )
        return self.payment(node.name, inv.payment_hash)

    # --- path finding -------------------------------------------------------------------------
    # --- one attempt --------------------------------------------------------------------------
    async def _attempt(
        self, payer: Node, route: list[Hop], inv, amount: int, attempts: int
    ) -> bytes:  # type: ignore[no-untyped-def]
        """Lock HTLCs hop by hop; on success settle them, the invoice and the payment in one
        transaction (a crash leaves either all or none of it); on failure refund them."""
        locked: list[Htlc] = []
        try:
            preimage, receipt = await self._forward(payer, route, inv, amount, locked)
        except BaseException:
            self._resolve(locked, settled=False)
            raise
        with self.db.tx() as c:
            self._resolve(locked, settled=True)
            if receipt is not None:
                dest, received = receipt
                c.execute(
                    "UPDATE invoices SET state = 'settled', preimage = ?, amount_received_msat = ?, settled_at = ?"
                    " WHERE node = ? AND payment_hash = ?",
                    (preimage.hex(), received, int(time.time()), dest, inv.payment_hash),
                )
            c.execute(
                "UPDATE payments SET status = 'succeeded', preimage = ?, fee_msat = ?, failure_code = NULL,"
                " failure_node = NULL, attempts = ?, completed = ? WHERE payer = ? AND payment_hash = ?",
                (
                    preimage.hex(),
                    route[0].amount_msat - amount,
                    attempts,
                    int(time.time() * 1000),
                    payer.name,
                    inv.payment_hash,
                ),
            )
        if receipt is not None:
            self._publish_invoice(receipt[0], inv.payment_hash)
        return preimage

    async def _forward(
        self, payer: Node, route: list[Hop], inv, amount: int, locked: list[Htlc]
    ) -> tuple[bytes, tuple[str, int] | None]:  # type: ignore[no-untyped-def]
        height = self.chain.height()
        incoming: Htlc | None = None
        for hop in route:
            src = self.net.by_pubkey[hop.src]
            ch = self.net.channels.get(hop.scid)
            if ch is None or not ch.has(src.name):
                if incoming is None:
                    raise HtlcFailure(PERM | 10, src.pubkey, hop.scid)
                return await self._intercept(src, incoming, hop, inv.payment_hash), None
            pol = ch.policy_of(src.name)
            if ch.state != "active" or not pol.enabled:
                raise HtlcFailure(UPDATE | 20, src.pubkey, hop.scid)
            if incoming is not None:
                if incoming.amount_msat < hop.amount_msat + pol.fee(hop.amount_msat):
                    raise HtlcFailure(UPDATE | 12, src.pubkey, hop.scid)
                if incoming.expiry - hop.expiry < pol.cltv_delta:
                    raise HtlcFailure(UPDATE | 13, src.pubkey, hop.scid)
            if hop.expiry <= height + 2:
                raise HtlcFailure(UPDATE | 14, src.pubkey, hop.scid)
            if hop.expiry > height + MAX_CLTV_EXPIRY_DELTA:
                raise HtlcFailure(21, src.pubkey, hop.scid)
            if hop.amount_msat < pol.htlc_min_msat:
                raise HtlcFailure(UPDATE | 11, src.pubkey, hop.scid)
            if hop.amount_msat > ch.max_htlc(src.name) or hop.amount_msat > ch.balance_of(src.name):
                raise HtlcFailure(UPDATE | 7, src.pubkey, hop.scid)
            incoming = self._add_htlc(ch, src.name, hop.amount_msat, inv.payment_hash, hop.expiry)
            locked.append(incoming)
            await asyncio.sleep(0)  # other payments interleave here, as on a real network
        dest = self.net.by_pubkey.get(route[-1].dst)
        assert incoming is not None and dest is not None
        return await self._receive(dest, incoming, inv), (dest.name, incoming.amount_msat)

    def _add_htlc(
        self, ch: Channel, sender: str, amount: int, payment_hash: str, expiry: int
    ) -> Htlc:
        with self.db.tx() as c:
            self._debit(ch, sender, amount)
            cur = c.execute(
                "INSERT INTO htlcs (scid, sender, amount_msat, payment_hash, expiry, state, created)"
                " VALUES (?, ?, ?, ?, ?, 'pending', ?)",
                (ch.scid, sender, amount, payment_hash, expiry, int(time.time() * 1000)),
            )
        return Htlc(int(cur.lastrowid or 0), ch.scid, sender, amount, expiry)

    def _debit(self, ch: Channel, node: str, amount: int) -> None:
        if node == ch.node_a:
            ch.bal_a_msat -= amount
        else:
            ch.bal_b_msat -= amount
        self.net.save_balances(ch)

    def _credit(self, ch: Channel, node: str, amount: int) -> None:
        self._debit(ch, node, -amount)

    def _resolve(self, locked: list[Htlc], *, settled: bool) -> None:
        """Settle (move to receivers) or fail (refund senders) every HTLC of an attempt, atomically."""
        if not locked:
            return
        with self.db.tx() as c:
            for h in reversed(locked):
                ch = self.net.channels[h.scid]
                self._credit(ch, ch.peer_of(h.sender) if settled else h.sender, h.amount_msat)
                c.execute(
                    "UPDATE htlcs SET state = ? WHERE id = ?",
                    ("settled" if settled else "failed", h.id),
                )
        locked.clear()

    # --- the recipient ------------------------------------------------------------------------
    async def _receive(self, dest: Node, htlc: Htlc, inv) -> bytes:  # type: ignore[no-untyped-def]
        row = self.db.one(
            "SELECT * FROM invoices WHERE node = ? AND payment_hash = ?",
            dest.name,
            inv.payment_hash,
        )
        fail = HtlcFailure(PERM | 15, dest.pubkey)
        if row is None or row["state"] in ("settled", "canceled", "accepted"):
            raise fail
        if (
            row["created"] + row["expiry"] < time.time()
            or row["payment_secret"] != inv.payment_secret
        ):
            raise fail
        if (
            row["amount_msat"] is not None
            and not row["amount_msat"] <= htlc.amount_msat <= 2 * row["amount_msat"]
        ):
            raise fail
        if htlc.expiry < self.chain.height() + row["min_final_cltv"]:
            raise fail
        if row["hold"]:
            return await self._hold(dest, row, htlc)
        return bytes.fromhex(row["preimage"])

    def watch_invoices(self, node_name: str) -> asyncio.Queue[dict]:
        self.net.node(node_name)
        queue: asyncio.Queue[dict] = asyncio.Queue()
        self.invoice_watchers.setdefault(node_name, set()).add(queue)
        return queue

    def unwatch_invoices(self, node_name: str, queue: asyncio.Queue[dict]) -> None:
        self.invoice_watchers.get(node_name, set()).discard(queue)

    def _publish_invoice(self, node_name: str, payment_hash: str) -> None:
        watchers = self.invoice_watchers.get(node_name)
        if watchers:
            inv = self.net.invoice(node_name, payment_hash)
            for q in watchers:
                q.put_nowait(inv)

    def publish_new_invoice(self, inv: dict) -> None:
        for q in self.invoice_watchers.get(inv["node"], set()):
            q.put_nowait(inv)

    def in_flight_msat(self, scid: int) -> int:
        row = self.db.one(
            "SELECT COALESCE(SUM(amount_msat), 0) AS s FROM htlcs WHERE scid = ? AND state = 'pending'",
            scid,
        )
        return int(row["s"])
