"""The `htlc_accepted` hook of the CLN backend: which HTLCs are held, the held ones streamed and
completed, and those near their expiry failed back. The hook is called on the plugin's main
thread (`cln_plugin.py`); the rest runs on the gRPC server's event loop.

Next hop one of our channels -> continue; any other short channel id -> hold (the hook answers
later) and stream it. Settle -> `{"result": "resolve", "payment_key"}`; cancel ->
`{"result": "fail", "failure_message"}` with a real BOLT-4 failure message; forward -> continue;
within `HOLD_SAFETY_BLOCKS` of the incoming expiry -> fail (temporary_node_failure).
No next hop (we are the destination): an HTLC of one of the plugin's hold invoices
(`cln_invoices.py`) is checked (else failed at once, incorrect_or_unknown_payment_details), held
and streamed with `hold_invoice` set; settle -> resolve, cancel or forward -> fail with
incorrect_or_unknown_payment_details. Any other final-hop HTLC (lightningd's own invoices) ->
continue.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import struct
import threading
from collections.abc import AsyncIterator
from typing import Any

from .backend import (
    INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS,
    BackendError,
    HtlcAction,
    InterceptedHtlc,
)
from .cln_invoices import Call, HoldInvoices
from .cln_values import msat, scid_to_int

log = logging.getLogger(__name__)
HOLD_SAFETY_BLOCKS = 3


def failure_message(code: int, amount_msat: int, height: int) -> str:
    """A BOLT-4 failure message (hex) as htlc_accepted's "fail" result wants it."""
    if code == 0x400F:  # incorrect_or_unknown_payment_details: htlc_msat, height
        return struct.pack(">HQI", code, amount_msat, height).hex()
    return struct.pack(">H", code).hex()


class HtlcHook:
    """The HTLCs lightningd offers the plugin: those to hold kept by their incoming channel and
    id (under a lock: the hook and the event loop both touch them), each completed once."""

    def __init__(self, call: Call, invoices: HoldInvoices) -> None:
        self._call = call  # lightningd's JSON-RPC: await call(method, **params)
        self.invoices = invoices
        self.loop: asyncio.AbstractEventLoop | None = None
        self.queue: asyncio.Queue[InterceptedHtlc] | None = None
        self._held: dict[tuple[int, int], InterceptedHtlc] = {}
        self._lock = threading.Lock()
        self._own_scids: set[int] = set()
        self._expiry_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.refresh_scids()
        self.queue = asyncio.Queue()
        self.loop = asyncio.get_running_loop()  # from now on the hook holds HTLCs
        self._expiry_task = asyncio.create_task(self._fail_expiring())

    def close(self) -> None:
        if self._expiry_task is not None:
            self._expiry_task.cancel()

    async def refresh_scids(self) -> None:
        """The node's own channels: HTLCs to them are lightningd's to forward."""
        chans = (await self._call("listpeerchannels")).get("channels", [])
        self._own_scids = {
            scid_to_int(c["short_channel_id"]) for c in chans if c.get("short_channel_id")
        }

    # --- the hook (called on the plugin's main thread) ---------------------------------------
    def on_htlc_accepted(self, onion: dict, htlc: dict, request: Any) -> None:
        scid = onion.get("short_channel_id")
        if self.loop is None or self.queue is None:
            request.set_result({"result": "continue"})  # not ready
            return
        if scid is None:
            self._on_final_hop(onion, htlc, request)
            return
        next_scid = scid_to_int(scid)
        if next_scid in self._own_scids:
            request.set_result({"result": "continue"})
            return
        h = InterceptedHtlc(
            payment_hash=bytes.fromhex(htlc["payment_hash"]),
            incoming_amount_msat=msat(htlc.get("amount_msat", htlc.get("amount"))),
            outgoing_amount_msat=msat(onion.get("forward_msat", onion.get("forward_amount"))),
            incoming_expiry=int(htlc["cltv_expiry"]),
            outgoing_expiry=int(onion.get("outgoing_cltv_value", 0)),
            short_channel_id=next_scid,
            incoming_chan_id=scid_to_int(htlc["short_channel_id"]),
            htlc_id=int(htlc["id"]),
            ref=request,
        )
        self._hold(h)

    def _hold(self, h: InterceptedHtlc) -> None:
        assert self.loop is not None and self.queue is not None
        with self._lock:
            self._held[h.key] = h
        self.loop.call_soon_threadsafe(self.queue.put_nowait, h)

    def _on_final_hop(self, onion: dict, htlc: dict, request: Any) -> None:
        """We are the destination: hold an HTLC of one of our hold invoices, if it pays it."""
        inv = self.invoices.get(htlc["payment_hash"])
        if inv is None:  # one of lightningd's own invoices (or none): lightningd decides
            request.set_result({"result": "continue"})
            return
        amount = msat(htlc.get("amount_msat", htlc.get("amount")))
        expiry = int(htlc["cltv_expiry"])
        relative = int(htlc.get("cltv_expiry_relative", 0))
        key = (scid_to_int(htlc["short_channel_id"]), int(htlc["id"]))
        if inv.state == "settled" and inv.preimage:  # replayed after a restart: settled already
            request.set_result({"result": "resolve", "payment_key": inv.preimage})
            return
        reason = inv.refusal(onion, amount, relative)
        with self._lock:
            if any(
                h.hold_invoice and h.payment_hash.hex() == inv.payment_hash and k != key
                for k, h in self._held.items()
            ):
                reason = reason or "another HTLC already pays this invoice"
        if reason:
            log.info("failing an HTLC of hold invoice %s: %s", inv.payment_hash, reason)
            msg = failure_message(INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS, amount, expiry - relative)
            request.set_result({"result": "fail", "failure_message": msg})
            return
        self._hold(
            InterceptedHtlc(
                payment_hash=bytes.fromhex(inv.payment_hash),
                incoming_amount_msat=amount,
                outgoing_amount_msat=0,
                incoming_expiry=expiry,
                outgoing_expiry=0,
                short_channel_id=0,
                incoming_chan_id=key[0],
                htlc_id=key[1],
                ref=request,
                hold_invoice=True,
            )
        )
        if inv.state == "open":
            assert self.loop is not None
            asyncio.run_coroutine_threadsafe(self._mark(inv.payment_hash, "accepted"), self.loop)

    async def _mark(self, payment_hash: str, state: str, preimage: str = "") -> None:
        try:
            await self.invoices.update(payment_hash, state, preimage)
        except BackendError as exc:
            log.warning("hold invoice %s not marked %s: %s", payment_hash, state, exc)

    async def intercepted(self) -> AsyncIterator[InterceptedHtlc]:
        assert self.queue is not None
        while True:
            yield await self.queue.get()

    async def complete(
        self, htlc: InterceptedHtlc, action: HtlcAction, preimage: bytes, failure_code: int
    ) -> None:
        """Answer the hook call of one held HTLC, once (`LightningBackend.complete`)."""
        with self._lock:
            held = self._held.pop(htlc.key, None)
        if held is None:
            raise BackendError("lightningd no longer holds this HTLC")
        try:
            height = (await self._call("getinfo"))["blockheight"]
        except BackendError:
            with self._lock:
                self._held[htlc.key] = held
            raise
        if held.hold_invoice:
            await self._complete_hold(held, action, preimage, height)
            return
        if action != HtlcAction.FAIL and height >= held.incoming_expiry - HOLD_SAFETY_BLOCKS:
            held.ref.set_result(
                {
                    "result": "fail",
                    "failure_message": failure_message(0x2002, held.incoming_amount_msat, height),
                }
            )
            raise BackendError("the HTLC was too close to its expiry and has been failed back")
        if action == HtlcAction.SETTLE:
            if hashlib.sha256(preimage).digest() != held.payment_hash:
                with self._lock:
                    self._held[htlc.key] = held
                raise BackendError("preimage does not hash to the payment hash", invalid_input=True)
            result = {"result": "resolve", "payment_key": preimage.hex()}
        elif action == HtlcAction.FAIL:
            result = {
                "result": "fail",
                "failure_message": failure_message(failure_code, held.incoming_amount_msat, height),
            }
        else:
            result = {"result": "continue"}
        held.ref.set_result(result)

    async def _complete_hold(
        self, held: InterceptedHtlc, action: HtlcAction, preimage: bytes, height: int
    ) -> None:
        """Settle -> resolve (the preimage kept first, for a replay); fail or forward (nowhere
        to forward to) -> fail with incorrect_or_unknown_payment_details, the invoice canceled."""
        ph = held.payment_hash.hex()
        late = height >= held.incoming_expiry - HOLD_SAFETY_BLOCKS
        if action == HtlcAction.SETTLE and not late:
            if hashlib.sha256(preimage).digest() != held.payment_hash:
                with self._lock:
                    self._held[held.key] = held
                raise BackendError("preimage does not hash to the payment hash", invalid_input=True)
            await self._mark(ph, "settled", preimage.hex())
            held.ref.set_result({"result": "resolve", "payment_key": preimage.hex()})
            return
        await self._mark(ph, "canceled")
        msg = failure_message(
            INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS, held.incoming_amount_msat, height
        )
        held.ref.set_result({"result": "fail", "failure_message": msg})
        if action == HtlcAction.SETTLE:
            raise BackendError("the HTLC was too close to its expiry and has been failed back")

    async def _fail_expiring(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            try:
                height = (await self._call("getinfo"))["blockheight"]
            except BackendError:
                continue
            with self._lock:
                late = [
                    h
                    for h in self._held.values()
                    if height >= h.incoming_expiry - HOLD_SAFETY_BLOCKS
                ]
            for h in late:
                with contextlib.suppress(BackendError):
                    await self.complete(h, HtlcAction.FAIL, b"", 0x2002)
