"""Hold invoices of the LND backend: created, watched and resolved through lnd's own services.

Owns everything `LndBackend` does with hold invoices (lnd's `invoicesrpc.Invoices` and the invoice
calls of `lnrpc.Lightning`):
* create: `AddHoldInvoice` (hash, value_msat, memo or description_hash, expiry; cltv_expiry left
  to lnd's default, its `bitcoin.timelockdelta`). Idempotent per hash: when lnd answers "invoice
  with payment hash already exists", `LookupInvoice` and compare amount, memo, description hash and
  expiry: the same request gets the existing payment_request, another one `InvoiceExists`.
* HTLCs: one `SubscribeSingleInvoice` stream per open hold invoice, opened at creation and, at
  start, for every invoice `ListInvoices(pending_only)` reports without a preimage (lnd leaves
  `r_preimage` empty while a hold invoice's preimage is unknown). lnd sends the current state first,
  so a stream reopened after a drop or a restart redelivers what is still held. An ACCEPTED invoice
  yields one `InterceptedHtlc` per accepted HTLC (`hold_invoice=True`, ref = the payment hash).
  The stream ends at a final state (SETTLED, CANCELED), and so does its watcher.
* complete: `LookupInvoice` first (lnd's SettleInvoice also succeeds on an invoice already
  settled, so whether the HTLC is still held is checked here), then settle ->
  `SettleInvoice(preimage)`, fail / forward -> `CancelInvoice(payment_hash)`. An invoice no longer
  ACCEPTED (lnd canceled it at expiry, another client resolved it) -> BackendError, not retryable:
  "the node no longer holds this HTLC"; except that the same resolution asked again by this
  process (a retry after a lost answer) finds it done and succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import OrderedDict

import grpc

from gwproto import lnd_invoices_pb2 as inv
from gwproto import lnd_invoices_pb2_grpc as inv_grpc
from gwproto import lnd_lightning_pb2 as ln
from gwproto import lnd_lightning_pb2_grpc as ln_grpc

from .backend import BackendError, HtlcAction, InterceptedHtlc, InvoiceExists

log = logging.getLogger(__name__)
DUPLICATE = "invoice with payment hash already exists"  # lnd's invoices.ErrDuplicateInvoice
NOT_FOUND = ("unable to locate invoice", "there are no existing invoices")  # lnd's own words
GONE = "the node no longer holds this HTLC"
FINAL = (ln.Invoice.SETTLED, ln.Invoice.CANCELED)
PAGE = 1000
ASKED_KEPT = 10_000  # resolutions remembered, so a retried complete() is answered rightly
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
# lnd answers a request it refuses (memo too large, expiry past a year, ...) with a plain error
REFUSED = (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE)


def _failed(what: str, exc: grpc.aio.AioRpcError, *, invalid_input: bool = False) -> BackendError:
    return BackendError(
        f"lnd {what}: {exc.code().name}: {exc.details()}",
        retryable=exc.code() in RETRYABLE,
        invalid_input=invalid_input,
    )


def _not_found(exc: grpc.aio.AioRpcError) -> bool:
    return exc.code() == grpc.StatusCode.NOT_FOUND or any(
        words in (exc.details() or "") for words in NOT_FOUND
    )


def accepted_htlcs(invoice: ln.Invoice) -> list[InterceptedHtlc]:
    """The HTLCs an ACCEPTED hold invoice holds, as the hub sees them."""
    if invoice.state != ln.Invoice.ACCEPTED:
        return []
    return [
        InterceptedHtlc(
            payment_hash=invoice.r_hash,
            incoming_amount_msat=h.amt_msat,
            outgoing_amount_msat=0,
            incoming_expiry=h.expiry_height,
            outgoing_expiry=0,
            short_channel_id=0,
            incoming_chan_id=h.chan_id,
            htlc_id=h.htlc_index,
            ref=invoice.r_hash,
            hold_invoice=True,
        )
        for h in invoice.htlcs
        if h.state == ln.ACCEPTED
    ]


class LndHoldInvoices:
    """Hold invoices on one lnd; their held HTLCs are put on `out` as they are accepted."""

    def __init__(
        self,
        lightning: ln_grpc.LightningStub,
        invoices: inv_grpc.InvoicesStub,
        out: asyncio.Queue[InterceptedHtlc],
    ) -> None:
        self.ln, self.inv, self.out = lightning, invoices, out
        self._watchers: dict[bytes, asyncio.Task[None]] = {}
        # what complete() asked lnd to do, per HTLC (the newest ASKED_KEPT)
        self._asked: OrderedDict[tuple[int, int], HtlcAction] = OrderedDict()

    async def close(self) -> None:
        tasks = list(self._watchers.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._watchers.clear()

    # --- creation -----------------------------------------------------------------------------
    async def create(
        self,
        payment_hash: bytes,
        amount_msat: int,
        expiry_secs: int,
        memo: str,
        description_hash: bytes,
    ) -> str:
        req = inv.AddHoldInvoiceRequest(
            hash=payment_hash,
            value_msat=amount_msat,
            expiry=expiry_secs,
            memo=memo,
            description_hash=description_hash,
        )
        try:
            bolt11 = (await self.inv.AddHoldInvoice(req, timeout=10)).payment_request
        except grpc.aio.AioRpcError as exc:
            if DUPLICATE not in (exc.details() or ""):
                raise _failed(
                    "refused the hold invoice", exc, invalid_input=exc.code() in REFUSED
                ) from None
            old = await self.lookup(payment_hash)
            if old is None:  # deleted between the two calls: let the caller try again
                raise BackendError("lnd: the invoice vanished", retryable=True) from None
            pending = old.state not in FINAL
            same = (
                old.value_msat == amount_msat
                and old.expiry == expiry_secs
                and old.memo == memo
                and old.description_hash == description_hash
                and not (pending and old.r_preimage)  # an ordinary invoice is not ours
            )
            if not same:
                raise InvoiceExists() from None
            bolt11 = old.payment_request
        self.watch(payment_hash)
        return bolt11

    async def lookup(self, payment_hash: bytes) -> ln.Invoice | None:
        try:
            return await self.ln.LookupInvoice(ln.PaymentHash(r_hash=payment_hash), timeout=10)
        except grpc.aio.AioRpcError as exc:
            if _not_found(exc):
                return None
            raise _failed("LookupInvoice", exc) from None

    # --- watching -----------------------------------------------------------------------------
    def watch(self, payment_hash: bytes) -> None:
        """Follow one hold invoice until it is settled or canceled (no-op if already followed)."""
        task = self._watchers.get(payment_hash)
        if task is None or task.done():
            self._watchers[payment_hash] = asyncio.create_task(
                self._watch(payment_hash), name=f"lnd-hold-{payment_hash.hex()[:12]}"
            )

    async def resync(self) -> int:
        """Watch every hold invoice lnd has pending (OPEN or ACCEPTED); how many there are."""
        offset, found = 0, 0
        while True:
            req = ln.ListInvoiceRequest(
                pending_only=True, index_offset=offset, num_max_invoices=PAGE
            )
            try:
                page = await self.ln.ListInvoices(req, timeout=30)
            except grpc.aio.AioRpcError as exc:
                raise _failed("ListInvoices", exc) from None
            for invoice in page.invoices:
                if not invoice.r_preimage and not invoice.is_amp and not invoice.is_keysend:
                    self.watch(invoice.r_hash)
                    found += 1
            if len(page.invoices) < PAGE or page.last_index_offset <= offset:
                return found
            offset = page.last_index_offset

    async def resync_until_done(self) -> None:
        """`resync`, retried with backoff until lnd answers (it may still be starting)."""
        delay = 0.1
        while True:
            try:
                found = await self.resync()
            except BackendError as exc:
                log.warning("listing lnd's pending hold invoices: %s; retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            log.info("watching %d pending hold invoice(s) of lnd", found)
            return

    async def _watch(self, payment_hash: bytes) -> None:
        delay = 0.1
        try:
            while True:
                call = self.inv.SubscribeSingleInvoice(
                    inv.SubscribeSingleInvoiceRequest(r_hash=payment_hash)
                )
                try:
                    async for invoice in call:
                        delay = 0.1
                        for htlc in accepted_htlcs(invoice):
                            if htlc.key not in self._asked:
                                self.out.put_nowait(htlc)
                        if invoice.state in FINAL:
                            return
                except grpc.aio.AioRpcError as exc:
                    log.warning(
                        "SubscribeSingleInvoice %s ended: %s %s; resubscribing",
                        payment_hash.hex(),
                        exc.code().name,
                        exc.details(),
                    )
                finally:
                    call.cancel()
                await asyncio.sleep(delay)  # the stream dropped (lnd restarting?): again
                delay = min(delay * 2, 5.0)
        finally:
            if self._watchers.get(payment_hash) is asyncio.current_task():
                del self._watchers[payment_hash]

    # --- resolution ---------------------------------------------------------------------------
    async def complete(self, htlc: InterceptedHtlc, action: HtlcAction, preimage: bytes) -> None:
        payment_hash = htlc.payment_hash
        if action == HtlcAction.SETTLE and hashlib.sha256(preimage).digest() != payment_hash:
            raise BackendError("preimage does not hash to the payment hash", invalid_input=True)
        invoice = await self.lookup(payment_hash)
        if invoice is None:
            raise BackendError(GONE)
        mine = [h for h in invoice.htlcs if (h.chan_id, h.htlc_index) == htlc.key]
        if invoice.state != ln.Invoice.ACCEPTED or not mine or mine[0].state != ln.ACCEPTED:
            settle = action == HtlcAction.SETTLE
            asked = self._asked.get(htlc.key)
            again = asked is not None and (asked == HtlcAction.SETTLE) == settle
            if again and invoice.state == (ln.Invoice.SETTLED if settle else ln.Invoice.CANCELED):
                return  # an earlier attempt of this same resolution went through
            raise BackendError(GONE)
        self._asked[htlc.key] = action
        while len(self._asked) > ASKED_KEPT:
            self._asked.popitem(last=False)
        try:
            if action == HtlcAction.SETTLE:
                await self.inv.SettleInvoice(inv.SettleInvoiceMsg(preimage=preimage), timeout=10)
            else:  # fail, or forward: a hold-invoice HTLC has nowhere else to go
                await self.inv.CancelInvoice(
                    inv.CancelInvoiceMsg(payment_hash=payment_hash), timeout=10
                )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in RETRYABLE:
                raise _failed(action.value, exc) from None
            self._asked.pop(htlc.key, None)
            # e.g. "invoice already canceled": lnd resolved it itself (expiry) meanwhile
            raise BackendError(f"{GONE} ({exc.details()})") from None
