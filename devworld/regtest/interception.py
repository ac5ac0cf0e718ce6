"""Hold invoices and HTLC interception of the simulated nodes (mixed into `Payments`).

A payee's hold invoice keeps the HTLC until `settle_hold` (with the preimage) or
`cancel_invoice`; an HTLC for an unknown next-hop scid is offered to the node's interceptor
(`subscribe_htlcs`, as CLN's htlc_accepted hook or LND's HtlcInterceptor would) and waits for
`resolve_htlc`. Both are failed back when the chain comes within HOLD_SAFETY_BLOCKS of their
expiry (`_on_block`).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import LnError
from .htlcs import HOLD_SAFETY_BLOCKS, NODE, PERM, Htlc, HtlcFailure
from .lightning import scid_str

if TYPE_CHECKING:
    from .chain import Chain
    from .lightning import Network, Node
    from .routing import Hop


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


class HoldsAndInterception:
    """The hold/interception half of `Payments`, which sets these attributes in its init."""

    net: Network
    chain: Chain
    db: Any
    held: dict[str, dict[int, HeldHtlc]]
    subscribers: dict[str, asyncio.Queue[dict]]
    _hold_decisions: dict[tuple[str, str], asyncio.Future[bytes | None]]
    _hold_expiry: dict[tuple[str, str], int]

    async def _hold(self, dest: Node, row, htlc: Htlc) -> bytes:  # type: ignore[no-untyped-def]
        key = (dest.name, row["payment_hash"])
        fut: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._hold_decisions[key] = fut
        self._hold_expiry[key] = htlc.expiry
        with self.db.tx() as c:
            c.execute(
                "UPDATE invoices SET state = 'accepted', amount_received_msat = ?, htlc_chan = ?,"
                " htlc_id = ?, htlc_expiry = ? WHERE node = ? AND payment_hash = ?",
                (htlc.amount_msat, htlc.scid, htlc.id, htlc.expiry, *key),
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
