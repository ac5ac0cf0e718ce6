"""The Core Lightning backend (`ClnBackend`): lightningd's JSON-RPC and its `htlc_accepted` hook
behind the port. It runs inside a plugin (pyln-client) that lightningd starts, with the gRPC
server in a thread of its own (`cln_plugin.py`; console script `gateway-cln-extension`, `main`
below); hold invoices are `cln_invoices.py`'s, the hook and the HTLCs it holds `cln_hook.py`'s.

Attach it with `plugin=/path/to/gateway-cln-extension` and `fm-gateway-listen=unix:PATH` (or
`HOST:PORT` with `fm-gateway-tls-dir=DIR`: mutual TLS) in lightningd's config, or `lightning-cli
plugin start /path/to/gateway-cln-extension fm-gateway-listen=...` (see
docs/lightning-backends.md). It never writes to stdout
(that is lightningd's JSON-RPC channel): logs go to lightningd through `plugin.log`.

Payment status mapping (pay / listpays -> PaymentState), the only place it is decided:
    pay ok / listpays "complete" -> SETTLED
    listpays "failed" (all parts), or a pay error with nothing sent (listpays empty) whose code
      is in DEFINITE_FAILURES -> FAILED
    listpays "pending" -> PENDING;  anything else (socket errors, unknown codes) -> UNKNOWN
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from pyln.client import RpcError

from gwcore.files import keep_private

from .backend import (
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
from .cln_hook import HtlcHook
from .cln_invoices import HoldInvoices
from .cln_values import msat, scid_to_int

# CLN pay error codes after which no part of the payment can still settle
DEFINITE_FAILURES = {
    203: "destination_permanent_failure",
    205: "route_not_found",
    206: "route_too_expensive",
    207: "invoice_expired",
    210: "payment_timeout",
}


class ClnBackend(LightningBackend):
    name = "cln"

    def __init__(self, rpc: Any) -> None:
        self.rpc = rpc  # pyln.client.LightningRpc (thread-safe: a socket per call)
        self.invoices = HoldInvoices(self._call)
        self.hook = HtlcHook(self._call, self.invoices)

    async def start(self) -> None:
        await self.invoices.load()
        await self.hook.start()

    async def close(self) -> None:
        self.hook.close()

    async def _call(self, method: str, **params: Any) -> Any:
        try:
            return await asyncio.to_thread(self.rpc.call, method, params)
        except OSError as exc:
            raise BackendError(f"lightningd RPC unreachable: {exc}", retryable=True) from None
        except RpcError as exc:
            raise BackendError(f"lightningd {method}: {exc.error}") from None

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

    def intercepted(self) -> AsyncIterator[InterceptedHtlc]:
        return self.hook.intercepted()

    async def complete(
        self,
        htlc: InterceptedHtlc,
        action: HtlcAction,
        *,
        preimage: bytes = b"",
        failure_code: int = 0x400F,
    ) -> None:
        await self.hook.complete(htlc, action, preimage, failure_code)

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
        await self.hook.refresh_scids()
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
