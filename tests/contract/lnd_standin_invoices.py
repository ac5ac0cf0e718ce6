"""The invoice side of the LND stand-in: `invoicesrpc.Invoices` (hold invoices) and the invoice
calls of `lnrpc.Lightning` (LookupInvoice, ListInvoices), a mixin of `LndStandIn` answering from
the regtest node's invoices (a world invoice made with `payment_hash` and no preimage is a hold
invoice: the node holds its HTLC until `/settle` or `/cancel`).

Taken from lnd's sources (lnrpc/invoicesrpc/invoices_server.go, addinvoice.go and utils.go;
invoices/invoiceregistry.go and errors.go; lnrpc/marshall_utils.go; rpcserver.go), where the real
lnd is the reference:
* errors are lnd's words; lnd returns most of them as plain Go errors, i.e. gRPC UNKNOWN
  (LookupInvoice's "unable to locate invoice" is NOT_FOUND).
* AddHoldInvoice: hash of 32 bytes ("invalid hash length of N, want 32"); value and value_msat
  mutually exclusive and not negative; memo at most 1024 bytes; description_hash empty or 32
  bytes; the memo is the BOLT11 description unless a description hash is given (it is still the
  invoice's memo); expiry 0 -> 86400 s (DefaultInvoiceExpiry), at most a year; cltv_expiry 0 ->
  the node's default 80 (bitcoin.timelockdelta), else 18..65535; a hash that has an invoice
  (whatever its state) -> "invoice with payment hash already exists".
* Invoice: r_preimage empty while the preimage is unknown; state OPEN, ACCEPTED, SETTLED,
  CANCELED; htlcs with chan_id (the incoming scid), htlc_index, amt_msat, expiry_height, state.
* LookupInvoice: r_hash (or the deprecated r_hash_str) of 32 bytes.
* ListInvoices: pending_only = not settled and not canceled (OPEN or ACCEPTED); num_max_invoices
  0 -> 100; index_offset / reversed page by add_index; first/last_index_offset.
* SubscribeSingleInvoice: the current state first (nothing while the invoice does not exist),
  then each change; the stream ends after a final state (SETTLED or CANCELED).
* SettleInvoice: ACCEPTED -> settled (the call returns once it is); already SETTLED -> success;
  OPEN -> "invoice still open"; CANCELED -> "invoice already canceled"; no invoice -> "unable to
  locate invoice". CancelInvoice: already CANCELED -> success; SETTLED -> "invoice already
  settled"; else canceled (an ACCEPTED invoice's HTLC failed back).
Not modelled (the world differs): AMP and keysend invoices, route hints and private channels,
lnd's expiry watcher (an OPEN invoice past its expiry stays OPEN here, though the world refuses to
pay it; an ACCEPTED one is canceled 2 blocks before its HTLC expires, not lnd's
invoices.holdexpirydelta, 12 by default), the world's min_final_cltv range (9..2016), add_index (the invoice's position in the
node's list here, not a stored counter), amt_paid of an invoice paid by several HTLCs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator

import aiohttp
import grpc
import httpx
from bolt11 import decode as bolt11_decode

from gwproto import lnd_invoices_pb2 as inv
from gwproto import lnd_invoices_pb2_grpc as inv_grpc
from gwproto import lnd_lightning_pb2 as ln

STATE = {
    "open": ln.Invoice.OPEN,
    "accepted": ln.Invoice.ACCEPTED,
    "settled": ln.Invoice.SETTLED,
    "canceled": ln.Invoice.CANCELED,
}
# the world keeps the held HTLC on the invoice; after a world restart an accepted invoice is open
# again with its HTLC failed back
HTLC_STATE = {
    "accepted": ln.ACCEPTED,
    "settled": ln.SETTLED,
    "canceled": ln.CANCELED,
    "open": ln.CANCELED,
}
FINAL = ("settled", "canceled")
DEFAULT_EXPIRY_S = 86_400  # invoicesrpc.DefaultInvoiceExpiry
MAX_EXPIRY_S = 365 * 24 * 3600
DEFAULT_CLTV = 80  # chainreg.DefaultBitcoinTimeLockDelta
MIN_CLTV, MAX_CLTV = 18, 65_535  # routing.MinCLTVDelta, routing.MaxCLTVDelta
MAX_MEMO = 1024  # invoices.MaxMemoSize


class InvoicesStandIn(inv_grpc.InvoicesServicer):
    """Mixed into `LndStandIn`, which sets these."""

    info: dict
    node: str
    headers: dict[str, str]
    http: httpx.AsyncClient

    # --- the world's invoices as lnd's -------------------------------------------------------
    async def _world_invoices(self) -> list[dict]:
        return list((await self.http.get(f"/v1/nodes/{self.node}/invoices")).json())

    async def _world_invoice(self, payment_hash_hex: str) -> dict | None:
        r = await self.http.get(f"/v1/nodes/{self.node}/invoices/{payment_hash_hex}")
        return r.json() if r.status_code == 200 else None

    async def _add_index(self, payment_hash_hex: str) -> int:
        listed = await self._world_invoices()
        return next(
            (i for i, j in enumerate(listed, 1) if j["payment_hash"] == payment_hash_hex), 0
        )

    @staticmethod
    def _invoice(j: dict, add_index: int) -> ln.Invoice:
        decoded = bolt11_decode(j["bolt11"])
        amount = j["amount_msat"] or 0
        paid = j["amount_received_msat"] if j["state"] in ("accepted", "settled") else 0
        out = ln.Invoice(
            memo=j["description"] or "",
            r_preimage=bytes.fromhex(j["preimage"]) if j["preimage"] else b"",
            r_hash=bytes.fromhex(j["payment_hash"]),
            value=amount // 1000,
            value_msat=amount,
            creation_date=j["created"],
            settle_date=j["settled_at"] or 0,
            payment_request=j["bolt11"],
            description_hash=bytes.fromhex(decoded.description_hash or ""),
            expiry=j["expiry"],
            cltv_expiry=j["min_final_cltv"],
            add_index=add_index,
            amt_paid_sat=paid // 1000,
            amt_paid_msat=paid,
            state=STATE[j["state"]],
            payment_addr=bytes.fromhex(decoded.payment_secret or ""),
        )
        if j["htlc"]:
            out.htlcs.add(
                chan_id=j["htlc"]["incoming_chan_id"],
                htlc_index=j["htlc"]["incoming_htlc_id"],
                amt_msat=j["amount_received_msat"],
                expiry_height=j["htlc"]["incoming_expiry"],
                state=HTLC_STATE[j["state"]],
            )
        return out

    async def _settles_to(self, payment_hash_hex: str, states: tuple[str, ...]) -> dict | None:
        """The world resolves a held HTLC asynchronously; lnd's calls return once it is done."""
        for _ in range(250):
            j = await self._world_invoice(payment_hash_hex)
            if j is None or j["state"] in states:
                return j
            await asyncio.sleep(0.02)
        return await self._world_invoice(payment_hash_hex)

    # --- lnrpc.Lightning ----------------------------------------------------------------------
    async def LookupInvoice(self, request, context):  # type: ignore[no-untyped-def]
        r_hash = bytes.fromhex(request.r_hash_str) if request.r_hash_str else request.r_hash
        if len(r_hash) not in (0, 32):
            await context.abort(
                grpc.StatusCode.UNKNOWN,
                f"payment hash must be exactly 32 bytes, is instead {len(r_hash)}",
            )
        j = await self._world_invoice(r_hash.hex() or "00" * 32)
        if j is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "unable to locate invoice")
        return self._invoice(j, await self._add_index(j["payment_hash"]))

    async def ListInvoices(self, request, context):  # type: ignore[no-untyped-def]
        limit = request.num_max_invoices or 100
        found = [
            (i, j)
            for i, j in enumerate(await self._world_invoices(), 1)
            if (not request.pending_only or j["state"] in ("open", "accepted"))
            and (not request.creation_date_start or j["created"] >= request.creation_date_start)
            and (not request.creation_date_end or j["created"] <= request.creation_date_end)
        ]
        if request.reversed:
            offset = request.index_offset
            found = [(i, j) for i, j in found if not offset or i < offset][-limit:]
        else:
            found = [(i, j) for i, j in found if i > request.index_offset][:limit]
        return ln.ListInvoiceResponse(
            invoices=[self._invoice(j, i) for i, j in found],
            first_index_offset=found[0][0] if found else 0,
            last_index_offset=found[-1][0] if found else 0,
        )

    # --- invoicesrpc.Invoices -----------------------------------------------------------------
    async def AddHoldInvoice(self, request, context):  # type: ignore[no-untyped-def]
        async def refuse(message: str) -> None:
            await context.abort(grpc.StatusCode.UNKNOWN, message)

        if len(request.hash) != 32:
            await refuse(f"invalid hash length of {len(request.hash)}, want 32")
        if request.value and request.value_msat:
            await refuse("sat and msat arguments are mutually exclusive")
        if request.value < 0 or request.value_msat < 0:
            await refuse("amount cannot be negative")
        if len(request.memo.encode()) > MAX_MEMO:
            await refuse(f"memo too large: {len(request.memo.encode())} bytes (maxsize={MAX_MEMO})")
        if request.description_hash and len(request.description_hash) != 32:
            await refuse(f"description hash is {len(request.description_hash)} bytes, must be 32")
        if request.expiry > MAX_EXPIRY_S:
            await refuse(
                f"expiry of {float(request.expiry):g} seconds greater than max expiry of "
                f"{float(MAX_EXPIRY_S):g} seconds"
            )
        if request.cltv_expiry > MAX_CLTV:
            await refuse(
                f"CLTV delta of {request.cltv_expiry} is too large, max accepted is: {MAX_CLTV}"
            )
        if request.cltv_expiry and request.cltv_expiry < MIN_CLTV:
            await refuse(
                f"CLTV delta of {request.cltv_expiry} must be greater than minimum of {MIN_CLTV}"
            )
        body: dict = {
            "payment_hash": request.hash.hex(),
            "amount_msat": request.value * 1000 or request.value_msat or None,
            "description": request.memo,
            "expiry": request.expiry or DEFAULT_EXPIRY_S,
            "min_final_cltv": request.cltv_expiry or DEFAULT_CLTV,
        }
        if request.description_hash:
            body["description_hash"] = request.description_hash.hex()
        r = await self.http.post(f"/v1/nodes/{self.node}/invoices", json=body)
        if r.status_code == 409:
            await refuse("invoice with payment hash already exists")
        if r.status_code >= 400:
            await refuse(r.json()["error"])
        j = r.json()
        return inv.AddHoldInvoiceResp(
            payment_request=j["bolt11"],
            add_index=await self._add_index(j["payment_hash"]),
            payment_addr=bytes.fromhex(bolt11_decode(j["bolt11"]).payment_secret or ""),
        )

    async def SubscribeSingleInvoice(self, request, context) -> AsyncIterator[ln.Invoice]:  # type: ignore[no-untyped-def]
        if len(request.r_hash) != 32:
            await context.abort(
                grpc.StatusCode.UNKNOWN, f"invalid hash length of {len(request.r_hash)}, want 32"
            )
        wanted = request.r_hash.hex()
        url = self.info["api_url"] + f"/v1/nodes/{self.node}/invoices/subscribe"
        async with (
            aiohttp.ClientSession(headers=self.headers) as session,
            session.ws_connect(url) as ws,  # before the first look: no change is missed
        ):
            last = None
            j = await self._world_invoice(wanted)
            if j is not None:
                last = (j["state"], json.dumps(j["htlc"]))
                yield self._invoice(j, await self._add_index(wanted))
                if j["state"] in FINAL:
                    return
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                j = json.loads(msg.data)
                if j.get("payment_hash") != wanted:
                    continue
                seen = (j["state"], json.dumps(j["htlc"]))
                if seen == last:
                    continue
                last = seen
                yield self._invoice(j, await self._add_index(wanted))
                if j["state"] in FINAL:
                    return

    async def SettleInvoice(self, request, context):  # type: ignore[no-untyped-def]
        async def refuse(message: str) -> None:
            await context.abort(grpc.StatusCode.UNKNOWN, message)

        if len(request.preimage) != 32:
            await refuse(f"invalid preimage length of {len(request.preimage)}, want 32")
        payment_hash = hashlib.sha256(request.preimage).hexdigest()
        j = await self._world_invoice(payment_hash)
        if j is not None and j["state"] == "accepted":
            await self.http.post(
                f"/v1/nodes/{self.node}/invoices/{payment_hash}/settle",
                json={"preimage": request.preimage.hex()},
            )
            j = await self._settles_to(payment_hash, FINAL)
        if j is None:
            await refuse("unable to locate invoice")
        elif j["state"] == "open":
            await refuse("invoice still open")
        elif j["state"] == "canceled":
            await refuse("invoice already canceled")
        return inv.SettleInvoiceResp()  # settled now, or already: lnd answers success for both

    async def CancelInvoice(self, request, context):  # type: ignore[no-untyped-def]
        if len(request.payment_hash) != 32:
            await context.abort(
                grpc.StatusCode.UNKNOWN,
                f"invalid hash length of {len(request.payment_hash)}, want 32",
            )
        payment_hash = request.payment_hash.hex()
        j = await self._world_invoice(payment_hash)
        if j is not None and j["state"] in ("open", "accepted"):
            await self.http.post(f"/v1/nodes/{self.node}/invoices/{payment_hash}/cancel", json={})
            j = await self._settles_to(payment_hash, FINAL)
        if j is None:
            await context.abort(grpc.StatusCode.UNKNOWN, "unable to locate invoice")
        elif j["state"] == "settled":
            await context.abort(grpc.StatusCode.UNKNOWN, "invoice already settled")
        return inv.CancelInvoiceResp()  # canceled now, or already: lnd answers success for both
