"""The Core Lightning backend (`ClnBackend`): lightningd's JSON-RPC and its `htlc_accepted` hook
behind the port. It runs inside a plugin (pyln-client) that lightningd starts, with the gRPC
server in a thread of its own (`cln_plugin.py`; console script `gateway-cln-extension`, `main`
below); hold invoices are `cln_invoices.py`'s.

Attach it with `plugin=/path/to/gateway-cln-extension` and `fm-gateway-listen=unix:PATH` (or
`HOST:PORT` with `fm-gateway-tls-dir=DIR`: mutual TLS) in lightningd's config, or `lightning-cli
plugin start /path/to/gateway-cln-extension fm-gateway-listen=...` (see
docs/lightning-backends.md). It never writes to stdout
(that is lightningd's JSON-RPC channel): logs go to lightningd through `plugin.log`.

`htlc_accepted`: next hop one of our channels -> continue; any other short channel id -> hold
(the hook answers later) and stream it. Settle -> `{"result": "resolve", "payment_key"}`; cancel
-> `{"result": "fail", "failure_message"}` with a real BOLT-4 failure message; forward ->
continue; within `HOLD_SAFETY_BLOCKS` of the incoming expiry -> fail (temporary_node_failure).
No next hop (we are the destination): an HTLC of one of the plugin's hold invoices
(`cln_invoices.py`) is checked (else failed at once, incorrect_or_unknown_payment_details), held
and streamed with `hold_invoice` set; settle -> resolve, cancel or forward -> fail with
incorrect_or_unknown_payment_details. Any other final-hop HTLC (lightningd's own invoices) ->
continue.

Payment status mapping (pay / listpays -> PaymentState), the only place it is decided:
    pay ok / listpays "complete" -> SETTLED
    listpays "failed" (all parts), or a pay error with nothing sent (listpays empty) whose code
      is in DEFINITE_FAILURES -> FAILED
    listpays "pending" -> PENDING;  anything else (socket errors, unknown codes) -> UNKNOWN
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

from pyln.client import RpcError

from gwcore.files import keep_private

from .backend import (
    INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS,
    BackendError,
    Balances,
    ChannelBalance,
    HintHop,
    HtlcAction,
    InterceptedHtlc,
    LightningBackend,
    NodeInfo,
    PaymentResult,
    PaymentState,
)
from .cln_invoices import HoldInvoices

log = logging.getLogger(__name__)
HOLD_SAFETY_BLOCKS = 3
# CLN pay error codes after which no part of the payment can still settle
DEFINITE_FAILURES = {
    203: "destination_permanent_failure",
    205: "route_not_found",
    206: "route_too_expensive",
    207: "invoice_expired",
    210: "payment_timeout",
}


def scid_to_int(value: str | int) -> int:
    if isinstance(value, int):
        return value
    block, tx, out = (int(x) for x in value.split("x"))
    return (block << 40) | (tx << 16) | out


def msat(value: Any) -> int:
    """CLN amounts: an integer of msat, or (older) a string "1234msat"."""
    if isinstance(value, int):
        return value
    return int(str(value).removesuffix("msat"))


def failure_message(code: int, amount_msat: int, height: int) -> str:
    """A BOLT-4 failure message (hex) as htlc_accepted's "fail" result wants it."""
    if code == 0x400F:  # incorrect_or_unknown_payment_details: htlc_msat, height
        return struct.pack(">HQI", code, amount_msat, height).hex()
    return struct.pack(">H", code).hex()


class ClnBackend(LightningBackend):
    name = "cln"

    def __init__(self, rpc: Any) -> None:
        self.rpc = rpc  # pyln.client.LightningRpc (thread-safe: a socket per call)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.queue: asyncio.Queue[InterceptedHtlc] | None = None
        self._held: dict[tuple[int, int], InterceptedHtlc] = {}
        self._lock = threading.Lock()
        self._own_scids: set[int] = set()
        self._expiry_task: asyncio.Task[None] | None = None
        self.invoices = HoldInvoices(self._call)

    async def start(self) -> None:
        await self.invoices.load()
        await self._refresh_scids()
        self.queue = asyncio.Queue()
        self.loop = asyncio.get_running_loop()  # from now on the hook holds HTLCs
        self._expiry_task = asyncio.create_task(self._fail_expiring())

    async def close(self) -> None:
        if self._expiry_task is not None:
            self._expiry_task.cancel()

    async def _call(self, method: str, **params: Any) -> Any:
        try:
            return await asyncio.to_thread(self.rpc.call, method, params)
        except OSError as exc:
            raise BackendError(f"lightningd RPC unreachable: {exc}", retryable=True) from None
        except RpcError as exc:
            raise BackendError(f"lightningd {method}: {exc.error}") from None

    async def _refresh_scids(self) -> None:
        chans = (await self._call("listpeerchannels")).get("channels", [])
        self._own_scids = {
            scid_to_int(c["short_channel_id"]) for c in chans if c.get("short_channel_id")
        }

    # --- the hook (called on the plugin's main thread) -----------------------------------------
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

    async def create_invoice(
        self,
        payment_hash: bytes,
        amount_msat: int,
        expiry_secs: int,
        *,
        memo: str = "",
        description_hash: bytes = b"",
    ) -> str:
        return await self.invoices.create(
            payment_hash, amount_msat, expiry_secs, memo, description_hash
        )

    async def intercepted(self) -> AsyncIterator[InterceptedHtlc]:
        assert self.queue is not None
        while True:
            yield await self.queue.get()

    async def complete(
        self,
        htlc: InterceptedHtlc,
        action: HtlcAction,
        *,
        preimage: bytes = b"",
        failure_code: int = 0x400F,
    ) -> None:
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
                    await self.complete(h, HtlcAction.FAIL, failure_code=0x2002)

    # --- node ---------------------------------------------------------------------------------
    async def node_info(self) -> NodeInfo:
        info = await self._call("getinfo")
        synced = "warning_bitcoind_sync" not in info and "warning_lightningd_sync" not in info
        return NodeInfo(
            bytes.fromhex(info["id"]),
            info.get("alias", ""),
            info.get("network", "bitcoin"),
            int(info["blockheight"]),
            synced,
        )

    async def balances(self) -> Balances:
        """listfunds: confirmed, unreserved outputs; each channel's our_amount_msat of its
        amount_msat (active = CHANNELD_NORMAL with the peer connected)."""
        funds = await self._call("listfunds")
        onchain = sum(
            msat(o.get("amount_msat", 0))
            for o in funds.get("outputs", [])
            if o.get("status") == "confirmed" and not o.get("reserved")
        )
        chans = []
        for c in funds.get("channels", []):
            total, ours = msat(c.get("amount_msat", 0)), msat(c.get("our_amount_msat", 0))
            chans.append(
                ChannelBalance(
                    peer_id=bytes.fromhex(c["peer_id"]),
                    short_channel_id=scid_to_int(c["short_channel_id"])
                    if c.get("short_channel_id")
                    else 0,
                    capacity_sat=total // 1000,
                    local_msat=ours,
                    remote_msat=total - ours,
                    active=c.get("state") == "CHANNELD_NORMAL" and bool(c.get("connected")),
                )
            )
        return Balances(onchain // 1000, tuple(chans))

    async def route_hints(self, num: int) -> list[list[HintHop]]:
        await self._refresh_scids()
        chans = [
            c
            for c in (await self._call("listpeerchannels")).get("channels", [])
            if c.get("state") == "CHANNELD_NORMAL" and c.get("short_channel_id")
        ]
        chans.sort(key=lambda c: -msat(c.get("receivable_msat", 0)))
        hints = []
        for c in chans[: num or None]:
            remote = (c.get("updates") or {}).get("remote")
            if remote is None:  # older lightningd: the peer's half of listchannels
                halves = (
                    await self._call("listchannels", short_channel_id=c["short_channel_id"])
                ).get("channels", [])
                half = next((h for h in halves if h["source"] == c["peer_id"]), None)
                if half is None:
                    continue
                remote = {
                    "fee_base_msat": half["base_fee_millisatoshi"],
                    "fee_proportional_millionths": half["fee_per_millionth"],
                    "cltv_expiry_delta": half["delay"],
                    "htlc_minimum_msat": half["htlc_minimum_msat"],
                    "htlc_maximum_msat": half["htlc_maximum_msat"],
                }
            hints.append(
                [
                    HintHop(
                        bytes.fromhex(c["peer_id"]),
                        scid_to_int(c["short_channel_id"]),
                        msat(remote["fee_base_msat"]),
                        int(remote["fee_proportional_millionths"]),
                        int(remote["cltv_expiry_delta"]),
                        msat(remote["htlc_minimum_msat"]),
                        msat(remote["htlc_maximum_msat"]),
                    )
                ]
            )
        return hints

    # --- payments -----------------------------------------------------------------------------
    async def pay(
        self, invoice: str, payment_hash: bytes, max_delay: int, max_fee_msat: int
    ) -> PaymentResult:
        params: dict[str, Any] = {"bolt11": invoice, "maxfee": max_fee_msat}
        if max_delay:
            params["maxdelay"] = max_delay
        try:
            r = await asyncio.to_thread(self.rpc.call, "pay", params)
        except OSError:
            return PaymentResult(PaymentState.UNKNOWN)
        except Exception as exc:  # pyln RpcError: {code, message}
            err = getattr(exc, "error", None) or {}
            code = err.get("code") if isinstance(err, dict) else None
            data = err.get("data") if isinstance(err.get("data"), dict) else {}
            failcode = int(data.get("failcode") or 0)
            reason = str(data.get("failcodename", "")).lower().removeprefix(
                "wire_"
            ) or DEFINITE_FAILURES.get(code, "failed")
            known = await self.track(payment_hash)
            if known is not None:
                if known.state == PaymentState.FAILED:
                    return PaymentResult(
                        PaymentState.FAILED, failure_reason=reason, failure_code=failcode
                    )
                return known
            if code in DEFINITE_FAILURES:
                return PaymentResult(
                    PaymentState.FAILED, failure_reason=reason, failure_code=failcode
                )
            return PaymentResult(PaymentState.UNKNOWN)
        if r.get("status") == "complete":
            return PaymentResult(
                PaymentState.SETTLED,
                bytes.fromhex(r["payment_preimage"]),
                msat(r.get("amount_sent_msat", 0)) - msat(r.get("amount_msat", 0)),
            )
        return PaymentResult(PaymentState.PENDING)

    async def track(self, payment_hash: bytes) -> PaymentResult | None:
        pays = (await self._call("listpays", payment_hash=payment_hash.hex())).get("pays", [])
        if not pays:
            return None
        invoice = next((p["bolt11"] for p in pays if p.get("bolt11")), "")
        done = [p for p in pays if p.get("status") == "complete"]
        if done:
            p = done[0]
            return PaymentResult(
                PaymentState.SETTLED,
                bytes.fromhex(p["preimage"]),
                msat(p.get("amount_sent_msat", 0)) - msat(p.get("amount_msat", 0)),
                invoice=invoice,
            )
        if any(p.get("status") == "pending" for p in pays):
            return PaymentResult(PaymentState.PENDING, invoice=invoice)
        return PaymentResult(PaymentState.FAILED, failure_reason="failed", invoice=invoice)


def main() -> None:
    """The plugin executable lightningd runs (console script `gateway-cln-extension`)."""
    keep_private()  # lightningd's umask is not ours to trust
    from .cln_plugin import run

    run(ClnBackend)


if __name__ == "__main__":
    main()
