"""The LND backend's hold invoices beyond the shared contract, against the LND stand-in: the HTLC
of a hold invoice paid while the extension was down comes out of a restarted backend (found with
ListInvoices(pending_only)); idempotency compares amount, memo, description hash and expiry; an
invoice lnd resolved by itself is no longer held; and the stand-in answers as lnd does.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest

from gwproto import lnd_invoices_pb2 as inv
from gwproto import lnd_lightning_pb2 as ln
from services.lnrpc.backend import BackendError, HtlcAction, InvoiceExists
from services.lnrpc.lnd import LndBackend
from tests.contract.lnd_standin import LndStandIn


class Lnd:
    """A world node behind the stand-in, a payer with a channel into it, and backends on it."""

    def __init__(self, info: dict, node: str) -> None:
        self.node, self.payer = node, f"alice{node}"
        self.http = httpx.AsyncClient(
            base_url=info["api_url"],
            headers={"Authorization": f"Bearer {info['api_token']}"},
            timeout=60,
        )
        self.standin = LndStandIn(info, node)
        self.host = ""
        self.backends: list[LndBackend] = []

    async def post(self, path: str, body: dict) -> dict:
        r = await self.http.post(path, json=body)
        assert r.status_code < 400, r.text
        return r.json()

    async def backend(self) -> LndBackend:
        b = LndBackend(
            self.host.replace("127.0.0.1", "localhost"), self.standin.cert, self.standin.macaroon
        )
        await b.start()
        self.backends.append(b)
        return b

    def pay(self, bolt11: str) -> asyncio.Task:  # type: ignore[type-arg]
        return asyncio.create_task(
            self.post(f"/v1/nodes/{self.payer}/pay", {"bolt11": bolt11, "timeout_s": 60})
        )

    async def state(self, payment_hash: bytes) -> str:
        r = await self.http.get(f"/v1/nodes/{self.node}/invoices/{payment_hash.hex()}")
        return str(r.json()["state"])

    async def until(self, payment_hash: bytes, state: str) -> None:
        for _ in range(500):
            if await self.state(payment_hash) == state:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"invoice never {state}")


@pytest.fixture
async def lnd(regtestd) -> AsyncIterator[Lnd]:  # type: ignore[no-untyped-def]
    node = f"gw{os.urandom(3).hex()}"
    w = Lnd(regtestd.info, node)
    await w.post("/v1/nodes", {"name": node, "hold_unknown_scids": True})
    await w.post("/v1/nodes", {"name": w.payer})
    await w.post(f"/v1/nodes/{w.payer}/fund", {"amount_sat": 3_000_000})
    await w.post("/v1/channels", {"from": w.payer, "to": node, "capacity_sat": 2_000_000})
    w.host = await w.standin.start()
    try:
        yield w
    finally:
        for b in w.backends:
            await b.close()
        await w.standin.stop()
        await w.http.aclose()


async def test_lnd_hold_htlc_comes_out_of_a_restarted_backend(lnd: Lnd) -> None:
    first = await lnd.backend()
    pre = os.urandom(32)
    ph = hashlib.sha256(pre).digest()
    bolt11 = await first.create_invoice(ph, 30_000, 600, memo="restart")
    await first.close()  # the extension goes away; the HTLC arrives while it is down
    pay = lnd.pay(bolt11)
    await lnd.until(ph, "accepted")

    second = await lnd.backend()
    htlcs = second.intercepted()
    htlc = await asyncio.wait_for(htlcs.__anext__(), 10)
    assert htlc.hold_invoice and htlc.payment_hash == ph and htlc.short_channel_id == 0
    assert htlc.incoming_amount_msat == 30_000 and htlc.outgoing_amount_msat == 0
    assert not pay.done()
    await second.complete(htlc, HtlcAction.SETTLE, preimage=pre)
    assert (await asyncio.wait_for(pay, 10))["preimage"] == pre.hex()
    # the same resolution again (a retry after a lost answer) is done; another one is refused
    await second.complete(htlc, HtlcAction.SETTLE, preimage=pre)
    with pytest.raises(BackendError, match="no longer holds") as again:
        await second.complete(htlc, HtlcAction.FAIL)
    assert not again.value.retryable and not again.value.invalid_input
    await htlcs.aclose()


async def test_lnd_hold_invoice_idempotency_and_lnd_resolving_it_itself(lnd: Lnd) -> None:
    b = await lnd.backend()
    pre = os.urandom(32)
    ph = hashlib.sha256(pre).digest()
    bolt11 = await b.create_invoice(ph, 20_000, 600, memo="m")
    assert await b.create_invoice(ph, 20_000, 600, memo="m") == bolt11
    for other in (
        {"amount_msat": 20_001, "expiry_secs": 600, "memo": "m"},
        {"amount_msat": 20_000, "expiry_secs": 601, "memo": "m"},
        {"amount_msat": 20_000, "expiry_secs": 600, "memo": "n"},
        {"amount_msat": 20_000, "expiry_secs": 600, "description_hash": b"\x01" * 32},
    ):
        with pytest.raises(InvoiceExists):
            await b.create_invoice(ph, **other)  # type: ignore[arg-type]
    ordinary = await lnd.post(f"/v1/nodes/{lnd.node}/invoices", {"amount_msat": 1000})
    with pytest.raises(InvoiceExists):  # an ordinary invoice (preimage known) is not a hold one
        await b.create_invoice(bytes.fromhex(ordinary["payment_hash"]), 1000, 3600)

    htlcs = b.intercepted()
    pay = lnd.pay(bolt11)
    htlc = await asyncio.wait_for(htlcs.__anext__(), 10)
    assert b.holds is not None
    await b.holds.inv.CancelInvoice(inv.CancelInvoiceMsg(payment_hash=ph), timeout=10)
    assert (await asyncio.wait_for(pay, 10))["status"] == "failed"
    with pytest.raises(BackendError, match="does not hash") as wrong:
        await b.complete(htlc, HtlcAction.SETTLE, preimage=os.urandom(32))
    assert wrong.value.invalid_input  # a wrong preimage is refused before lnd is asked
    for action in (HtlcAction.SETTLE, HtlcAction.FAIL):
        with pytest.raises(BackendError, match="no longer holds") as gone:
            await b.complete(htlc, action, preimage=pre)
        assert not gone.value.retryable and not gone.value.invalid_input
    await htlcs.aclose()


async def test_lnd_standin_answers_as_lnd(lnd: Lnd) -> None:
    b = await lnd.backend()
    assert b.holds is not None
    invoices, lightning = b.holds.inv, b.ln
    ph = os.urandom(32)
    req = inv.AddHoldInvoiceRequest(hash=ph, value_msat=5_000, memo="s", expiry=300)
    added = await invoices.AddHoldInvoice(req, timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as dup:
        await invoices.AddHoldInvoice(req, timeout=10)
    assert dup.value.code() == grpc.StatusCode.UNKNOWN
    assert dup.value.details() == "invoice with payment hash already exists"
    with pytest.raises(grpc.aio.AioRpcError) as both:
        await invoices.AddHoldInvoice(
            inv.AddHoldInvoiceRequest(hash=os.urandom(32), value=5, value_msat=5_000), timeout=10
        )
    assert both.value.details() == "sat and msat arguments are mutually exclusive"

    found = await lightning.LookupInvoice(ln.PaymentHash(r_hash=ph), timeout=10)
    assert found.payment_request == added.payment_request and found.state == ln.Invoice.OPEN
    assert not found.r_preimage and found.value_msat == 5_000 and found.cltv_expiry == 80
    assert found.add_index == added.add_index > 0
    ordinary = await lnd.post(f"/v1/nodes/{lnd.node}/invoices", {"amount_msat": 1000})
    pending = await lightning.ListInvoices(ln.ListInvoiceRequest(pending_only=True), timeout=10)
    by_hash = {i.r_hash: i for i in pending.invoices}
    assert not by_hash[ph].r_preimage
    assert by_hash[bytes.fromhex(ordinary["payment_hash"])].r_preimage.hex() == ordinary["preimage"]

    updates = invoices.SubscribeSingleInvoice(inv.SubscribeSingleInvoiceRequest(r_hash=ph))
    assert (await asyncio.wait_for(updates.read(), 10)).state == ln.Invoice.OPEN  # current first
    with pytest.raises(grpc.aio.AioRpcError) as still_open:
        await invoices.SettleInvoice(inv.SettleInvoiceMsg(preimage=os.urandom(32)), timeout=10)
    assert still_open.value.details() == "unable to locate invoice"
    await invoices.CancelInvoice(inv.CancelInvoiceMsg(payment_hash=ph), timeout=10)
    await invoices.CancelInvoice(inv.CancelInvoiceMsg(payment_hash=ph), timeout=10)  # again: ok
    assert (await asyncio.wait_for(updates.read(), 10)).state == ln.Invoice.CANCELED
    assert await asyncio.wait_for(updates.read(), 10) is grpc.aio.EOF  # a final state ends it
    pending = await lightning.ListInvoices(ln.ListInvoiceRequest(pending_only=True), timeout=10)
    assert ph not in {i.r_hash for i in pending.invoices}
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await lightning.LookupInvoice(ln.PaymentHash(r_hash=os.urandom(32)), timeout=10)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND

    pre = os.urandom(32)
    open_ph = hashlib.sha256(pre).digest()
    await invoices.AddHoldInvoice(inv.AddHoldInvoiceRequest(hash=open_ph, value=1), timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as not_accepted:
        await invoices.SettleInvoice(inv.SettleInvoiceMsg(preimage=pre), timeout=10)
    assert not_accepted.value.details() == "invoice still open"
    first = await lightning.ListInvoices(ln.ListInvoiceRequest(num_max_invoices=1), timeout=10)
    rest = await lightning.ListInvoices(
        ln.ListInvoiceRequest(index_offset=first.last_index_offset), timeout=10
    )
    assert len(first.invoices) == 1 and len(rest.invoices) == 2
    assert rest.first_index_offset == first.last_index_offset + 1
