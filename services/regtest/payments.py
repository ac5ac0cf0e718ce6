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
import hashlib
import heapq
import itertools
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from bolt11 import decode as bolt11_decode
from bolt11.exceptions import Bolt11Exception

from .chain import Chain
from .errors import LnError
from .lightning import Channel, Network, Node, Policy, parse_scid, scid_str

log = logging.getLogger(__name__)

BADONION, PERM, NODE, UPDATE = 0x8000, 0x4000, 0x2000, 0x1000
FAILURES = {
    PERM | 15: "incorrect_or_unknown_payment_details",
    PERM | 10: "unknown_next_peer",
    UPDATE | 7: "temporary_channel_failure",
    UPDATE | 11: "amount_below_minimum",
    UPDATE | 12: "fee_insufficient",
    UPDATE | 13: "incorrect_cltv_expiry",
    UPDATE | 14: "expiry_too_soon",
    UPDATE | 20: "channel_disabled",
    NODE | 2: "temporary_node_failure",
    PERM | NODE | 2: "permanent_node_failure",
    PERM | 8: "permanent_channel_failure",
    21: "expiry_too_far",
    18: "final_incorrect_cltv_expiry",
    19: "final_incorrect_htlc_amount",
}
CODES = {name: code for code, name in FAILURES.items()}
HOLD_SAFETY_BLOCKS = 2
MAX_CLTV_EXPIRY_DELTA = 2016
MAX_ATTEMPTS = 10


class HtlcFailure(Exception):
    def __init__(self, code: int, node: str, scid: int | None = None) -> None:
        super().__init__(FAILURES.get(code, hex(code)))
        self.code, self.node, self.scid = code, node, scid

    @property
    def name(self) -> str:
        return FAILURES.get(self.code, f"unknown_failure_{self.code:#06x}")


@dataclass
class Hop:
    src: str  # pubkey of the node forwarding over `scid`
    scid: int
    dst: str  # pubkey of the node receiving it
    amount_msat: int  # what `dst` receives
    expiry: int  # absolute CLTV expiry of the HTLC to `dst`


@dataclass
class Htlc:
    id: int
    scid: int
    sender: str
    amount_msat: int
    expiry: int


@dataclass
class HeldHtlc:
    """An HTLC a node holds for its interceptor."""

    id: int
    node: str
    payment_hash: str
    incoming_scid: int
    incoming_htlc_id: int
    incoming_amount_msat: int
    outgoing_amount_msat: int
    incoming_expiry: int
    outgoing_expiry: int
    next_scid: int
    decided: asyncio.Future[tuple[str, bytes | int | None]] = field(repr=False)

    def info(self) -> dict:
        return {
            "id": self.id,
            "node": self.node,
            "payment_hash": self.payment_hash,
            "incoming_chan_id": self.incoming_scid,
            "incoming_scid": scid_str(self.incoming_scid),
            "incoming_htlc_id": self.incoming_htlc_id,
            "incoming_amount_msat": self.incoming_amount_msat,
            "outgoing_amount_msat": self.outgoing_amount_msat,
            "incoming_expiry": self.incoming_expiry,
            "outgoing_expiry": self.outgoing_expiry,
            "short_channel_id": self.next_scid,
            "short_channel_id_str": scid_str(self.next_scid),
        }


class Payments:
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
            route = self.find_route(
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
    def find_route(
        self,
        payer: Node,
        dest: str,
        amount: int,
        final_expiry: int,
        hints: list[list[tuple[str, int, Policy]]],
        excluded: set[tuple[str, int]],
        max_fee: int | None,
        max_delay: int | None,
    ) -> list[Hop] | None:
        """Cheapest route by fees (Dijkstra from the destination back to the payer).

        Remote channels are judged by capacity and policy, as real nodes must; the payer's own
        channels by their real balance."""
        height = self.chain.height()
        edges: dict[
            str, list[tuple[str, int, Policy, int]]
        ] = {}  # to -> [(from, scid, policy, max_msat)]
        for hint in hints:  # first: on a tie, the payee's fresher view wins
            for i, (pk, scid, pol) in enumerate(hint):
                nxt = hint[i + 1][0] if i + 1 < len(hint) else dest
                edges.setdefault(nxt, []).append((pk, scid, pol, 2**62))
        for ch in self.net.channels.values():
            if ch.state != "active":
                continue
            for src in (ch.node_a, ch.node_b):
                pol = ch.policy_of(src)
                if not pol.enabled:
                    continue
                s, d = self.net.nodes[src].pubkey, self.net.nodes[ch.peer_of(src)].pubkey
                cap = (
                    ch.balance_of(src)
                    if src == payer.name
                    else min(ch.max_htlc(src), ch.capacity_sat * 1000)
                )
                edges.setdefault(d, []).append((s, ch.scid, pol, cap))
        # state: (amount arriving at node, expiry arriving at node, hops count, node, path)
        best: dict[str, int] = {dest: amount}
        tie = itertools.count()
        heap: list[tuple[int, int, int, int, str, list[Hop]]] = [
            (amount, final_expiry, 0, next(tie), dest, [])
        ]
        while heap:
            amt, exp, n, _, node, path = heapq.heappop(heap)
            if node == payer.pubkey:
                fee = path[0].amount_msat - amount if path else 0
                if (max_fee is None or fee <= max_fee) and (
                    max_delay is None or path[0].expiry - height <= max_delay
                ):
                    return path
                continue
            if amt > best.get(node, 2**63) or n >= 20:
                continue
            for src, scid, pol, cap in edges.get(node, []):
                if (src, scid) in excluded or amt < pol.htlc_min_msat or amt > cap:
                    continue
                hop = Hop(src, scid, node, amt, exp)
                if src == payer.pubkey:
                    nxt_amt, nxt_exp = amt, exp
                else:
                    nxt_amt, nxt_exp = amt + pol.fee(amt), exp + pol.cltv_delta
                if nxt_exp - height > MAX_CLTV_EXPIRY_DELTA:
                    continue
                if nxt_amt < best.get(src, 2**63) or src == payer.pubkey:
                    best[src] = min(nxt_amt, best.get(src, 2**63))
                    heapq.heappush(heap, (nxt_amt, nxt_exp, n + 1, next(tie), src, [hop, *path]))
        return None

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

    async def _hold(self, dest: Node, row, htlc: Htlc) -> bytes:  # type: ignore[no-untyped-def]
        key = (dest.name, row["payment_hash"])
        fut: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._hold_decisions[key] = fut
        self._hold_expiry[key] = htlc.expiry
        with self.db.tx() as c:
            c.execute(
                "UPDATE invoices SET state = 'accepted', amount_received_msat = ? WHERE node = ? AND payment_hash = ?",
                (htlc.amount_msat, *key),
            )
        self._publish_invoice(*key)
        try:
            preimage = await fut
        finally:
            self._hold_decisions.pop(key, None)
            self._hold_expiry.pop(key, None)
        if preimage is None:
            with self.db.tx() as c:
                c.execute(
                    "UPDATE invoices SET state = 'canceled' WHERE node = ? AND payment_hash = ?",
                    key,
                )
            self._publish_invoice(*key)
            raise HtlcFailure(PERM | 15, dest.pubkey)
        return preimage

    def settle_hold(self, node: str, payment_hash: str, preimage_hex: str) -> dict:
        inv = self.net.invoice(node, payment_hash)
        try:
            preimage = bytes.fromhex(preimage_hex)
        except (ValueError, TypeError):
            raise LnError("invalid_input", "preimage must be hex") from None
        if hashlib.sha256(preimage).hexdigest() != payment_hash:
            raise LnError("invalid_preimage", "preimage does not hash to the payment hash")
        fut = self._hold_decisions.get((node, payment_hash))
        if fut is None or fut.done():
            raise LnError("not_accepted", f"invoice is {inv['state']}, not accepted", 409)
        fut.set_result(preimage)
        return inv

    def cancel_invoice(self, node: str, payment_hash: str) -> dict:
        inv = self.net.invoice(node, payment_hash)
        if inv["state"] == "settled":
            raise LnError("already_settled", "a settled invoice cannot be canceled", 409)
        fut = self._hold_decisions.get((node, payment_hash))
        if fut is not None and not fut.done():
            fut.set_result(None)
        else:
            with self.db.tx() as c:
                c.execute(
                    "UPDATE invoices SET state = 'canceled' WHERE node = ? AND payment_hash = ?",
                    (node, payment_hash),
                )
            self._publish_invoice(node, payment_hash)
        return self.net.invoice(node, payment_hash)

    # --- interception -------------------------------------------------------------------------
    async def _intercept(self, node: Node, incoming: Htlc, hop: Hop, payment_hash: str) -> bytes:
        queue = self.subscribers.get(node.name)
        if queue is None and not node.hold_unknown_scids:
            raise HtlcFailure(PERM | 10, node.pubkey, hop.scid)
        held = HeldHtlc(
            next(self._ids),
            node.name,
            payment_hash,
            incoming.scid,
            incoming.id,
            incoming.amount_msat,
            hop.amount_msat,
            incoming.expiry,
            hop.expiry,
            hop.scid,
            asyncio.get_running_loop().create_future(),
        )
        self.held.setdefault(node.name, {})[held.id] = held
        if queue is not None:
            queue.put_nowait(held.info())
        try:
            action, value = await held.decided
        finally:
            self.held[node.name].pop(held.id, None)
        if action == "settle":
            assert isinstance(value, bytes)
            return value
        if action == "fail":
            raise HtlcFailure(int(value or (NODE | 2)), node.pubkey, hop.scid)
        raise HtlcFailure(
            PERM | 10, node.pubkey, hop.scid
        )  # forward to a channel that does not exist

    def subscribe_htlcs(self, node_name: str) -> asyncio.Queue[dict]:
        """The interceptor stream of a node: one subscriber at a time; held HTLCs first."""
        self.net.node(node_name)
        if node_name in self.subscribers:
            raise LnError("already_subscribed", f"{node_name} already has an interceptor", 409)
        queue: asyncio.Queue[dict] = asyncio.Queue()
        for held in self.held.get(node_name, {}).values():
            queue.put_nowait(held.info())
        self.subscribers[node_name] = queue
        return queue

    def unsubscribe_htlcs(self, node_name: str, queue: asyncio.Queue[dict]) -> None:
        if self.subscribers.get(node_name) is queue:
            del self.subscribers[node_name]
        node = self.net.nodes.get(node_name)
        if node is not None and not node.hold_unknown_scids:  # nobody to decide: fail them back
            for held in list(self.held.get(node_name, {}).values()):
                if not held.decided.done():
                    held.decided.set_result(("fail", NODE | 2))

    def resolve_htlc(
        self,
        node_name: str,
        htlc_id: int,
        action: str,
        *,
        preimage: str | None = None,
        failure_code: int | None = None,
    ) -> dict:
        held = self.held.get(node_name, {}).get(htlc_id)
        if held is None or held.decided.done():
            raise LnError("unknown_htlc", f"{node_name} holds no HTLC {htlc_id}", 404)
        if action == "settle":
            try:
                raw = bytes.fromhex(preimage or "")
            except ValueError:
                raise LnError("invalid_input", "preimage must be hex") from None
            if len(raw) != 32 or hashlib.sha256(raw).hexdigest() != held.payment_hash:
                raise LnError("invalid_preimage", "preimage does not hash to the payment hash")
            held.decided.set_result(("settle", raw))
        elif action == "fail":
            code = failure_code if failure_code is not None else PERM | 15
            if not isinstance(code, int) or not 0 < code < 0x10000:
                raise LnError("invalid_input", "failure_code must be a 16-bit BOLT-4 code")
            held.decided.set_result(("fail", code))
        elif action == "forward":
            held.decided.set_result(("forward", None))
        else:
            raise LnError("invalid_input", "action must be settle, fail or forward")
        return {"id": htlc_id, "action": action}

    # --- blocks and invoice events ------------------------------------------------------------
    def _on_block(self, height: int) -> None:
        for node_held in self.held.values():
            for held in list(node_held.values()):
                if height >= held.incoming_expiry - HOLD_SAFETY_BLOCKS and not held.decided.done():
                    held.decided.set_result(("fail", NODE | 2))
        for key, expiry in list(self._hold_expiry.items()):
            fut = self._hold_decisions.get(key)
            if fut is not None and not fut.done() and height >= expiry - HOLD_SAFETY_BLOCKS:
                fut.set_result(None)

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
