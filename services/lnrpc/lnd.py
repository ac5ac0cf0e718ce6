"""The LND backend: LND's own gRPC services (lnrpc.Lightning, routerrpc.Router) over one
long-lived TLS channel with the macaroon as call credentials (`lnd_connection.py`).

Status mapping (lnrpc.Payment.PaymentStatus -> PaymentState), the only place it is decided:
    SUCCEEDED -> SETTLED    FAILED -> FAILED    IN_FLIGHT, INITIATED -> PENDING    UNKNOWN -> UNKNOWN
Interception: only while it is needed, through the `HtlcInterceptor` stream
(`lnd_interceptor.LndInterceptor`: when it is attached, which forwards it holds).
Hold invoices (invoicesrpc.Invoices: AddHoldInvoice, SubscribeSingleInvoice, SettleInvoice,
CancelInvoice) are `lnd_invoices.LndHoldInvoices`; their accepted HTLCs join the intercepted ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

from gwproto import lnd_invoices_pb2_grpc as inv_grpc
from gwproto import lnd_lightning_pb2 as ln
from gwproto import lnd_lightning_pb2_grpc as ln_grpc
from gwproto import lnd_router_pb2 as router
from gwproto import lnd_router_pb2_grpc as router_grpc

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
from .lnd_connection import rpc, secure_channel
from .lnd_interceptor import LndInterceptor
from .lnd_invoices import LndHoldInvoices

LND_STATUS = {
    ln.Payment.SUCCEEDED: PaymentState.SETTLED,
    ln.Payment.FAILED: PaymentState.FAILED,
    ln.Payment.IN_FLIGHT: PaymentState.PENDING,
    ln.Payment.INITIATED: PaymentState.PENDING,
    ln.Payment.UNKNOWN: PaymentState.UNKNOWN,
}


class LndBackend(LightningBackend):
    name = "lnd"

    def __init__(self, host: str, tls_cert: bytes, macaroon: bytes) -> None:
        self.host, self.tls_cert, self.macaroon_hex = host, tls_cert, macaroon.hex()
        self.channel: grpc.aio.Channel | None = None
        self._htlcs: asyncio.Queue[InterceptedHtlc] = asyncio.Queue()  # both kinds, in order
        self.holds: LndHoldInvoices | None = None
        self.interceptor = LndInterceptor(out=self._htlcs)

    @classmethod
    def from_files(cls, host: str, tls_cert_path: Path, macaroon_path: Path) -> LndBackend:
        return cls(host, tls_cert_path.read_bytes(), macaroon_path.read_bytes())

    async def start(self) -> None:
        self.channel = secure_channel(self.host, self.tls_cert, self.macaroon_hex)
        self.ln = ln_grpc.LightningStub(self.channel)
        self.router = router_grpc.RouterStub(self.channel)
        self.interceptor.connect(self.ln, self.router)
        self.holds = LndHoldInvoices(self.ln, inv_grpc.InvoicesStub(self.channel), out=self._htlcs)

    async def close(self) -> None:
        self.interceptor.close()
        if self.holds is not None:
            await self.holds.close()
        if self.channel is not None:
            await self.channel.close()

    async def node_info(self) -> NodeInfo:
        r = await rpc(self.ln.GetInfo(ln.GetInfoRequest(), timeout=10))
        network = r.chains[0].network if r.chains else "bitcoin"
        return NodeInfo(
            bytes.fromhex(r.identity_pubkey),
            r.alias,
            network,
            r.block_height,
            r.synced_to_chain and r.synced_to_graph,
        )

    async def balances(self) -> Balances:
        """WalletBalance (confirmed) and ListChannels (LND reports channel balances in sat)."""
        wallet = await rpc(self.ln.WalletBalance(ln.WalletBalanceRequest(), timeout=10))
        chans = (await rpc(self.ln.ListChannels(ln.ListChannelsRequest(), timeout=10))).channels
        return Balances(
            wallet.confirmed_balance,
            tuple(
                ChannelBalance(
                    peer_id=bytes.fromhex(c.remote_pubkey),
                    short_channel_id=c.chan_id,
                    capacity_sat=c.capacity,
                    local_msat=c.local_balance * 1000,
                    remote_msat=c.remote_balance * 1000,
                    active=c.active,
                )
                for c in chans
            ),
        )

    async def route_hints(self, num: int) -> list[list[HintHop]]:
        chans = (
            await rpc(self.ln.ListChannels(ln.ListChannelsRequest(active_only=True), timeout=10))
        ).channels
        self.interceptor.set_own({c.chan_id for c in chans})
        hints = []
        for c in sorted(chans, key=lambda c: -c.remote_balance)[: num or None]:
            edge = await rpc(self.ln.GetChanInfo(ln.ChanInfoRequest(chan_id=c.chan_id), timeout=10))
            pol = edge.node1_policy if edge.node1_pub == c.remote_pubkey else edge.node2_policy
            if pol.disabled:
                continue
            hints.append(
                [
                    HintHop(
                        bytes.fromhex(c.remote_pubkey),
                        c.chan_id,
                        pol.fee_base_msat,
                        pol.fee_rate_milli_msat,
                        pol.time_lock_delta,
                        pol.min_htlc,
                        pol.max_htlc_msat or c.capacity * 1000,
                    )
                ]
            )
        return hints

    @staticmethod
    def _result(p: ln.Payment) -> PaymentResult:
        state = LND_STATUS.get(p.status, PaymentState.UNKNOWN)
        if state == PaymentState.SETTLED:
            return PaymentResult(
                state, bytes.fromhex(p.payment_preimage), p.fee_msat, invoice=p.payment_request
            )
        if state == PaymentState.FAILED:
            reason = (
                ln.PaymentFailureReason.Name(p.failure_reason)
                .removeprefix("FAILURE_REASON_")
                .lower()
            )
            code = 0x400F if p.failure_reason == ln.FAILURE_REASON_INCORRECT_PAYMENT_DETAILS else 0
            if code:
                reason = "incorrect_or_unknown_payment_details"
            return PaymentResult(
                state, failure_reason=reason, failure_code=code, invoice=p.payment_request
            )
        return PaymentResult(state, invoice=p.payment_request)

    async def pay(
        self, invoice: str, payment_hash: bytes, max_delay: int, max_fee_msat: int
    ) -> PaymentResult:
        req = router.SendPaymentRequest(
            payment_request=invoice,
            fee_limit_msat=max_fee_msat,
            cltv_limit=max_delay,
            timeout_seconds=60,
            no_inflight_updates=True,
        )
        last = None
        try:
            async for p in self.router.SendPaymentV2(req):
                last = p
                if LND_STATUS.get(p.status) in (PaymentState.SETTLED, PaymentState.FAILED):
                    break
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.INVALID_ARGUMENT,):
                raise BackendError(f"lnd: {exc.details()}", invalid_input=True) from None
            known = await self.track(payment_hash)  # already paid / in flight: ask, never pay again
            return known if known is not None else PaymentResult(PaymentState.UNKNOWN)
        return self._result(last) if last is not None else PaymentResult(PaymentState.UNKNOWN)

    async def track(self, payment_hash: bytes) -> PaymentResult | None:
        call = self.router.TrackPaymentV2(
            router.TrackPaymentRequest(payment_hash=payment_hash, no_inflight_updates=True)
        )
        try:
            p = await asyncio.wait_for(call.read(), 5)
        except TimeoutError:
            call.cancel()
            return PaymentResult(PaymentState.PENDING)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND or "not initiated" in (exc.details() or ""):
                return None
            return PaymentResult(PaymentState.UNKNOWN)
        call.cancel()
        if p is grpc.aio.EOF:
            return None
        return self._result(p)

    async def intercepted(self) -> AsyncIterator[InterceptedHtlc]:
        """Forwards held by the HtlcInterceptor, and the HTLCs of our accepted hold invoices
        (those pending at start are found and watched again first)."""
        assert self.holds is not None
        tasks = [
            asyncio.create_task(self.interceptor.read_requirement(), name="lnd-requireinterceptor"),
            asyncio.create_task(self.holds.resync_until_done(), name="lnd-hold-resync"),
        ]
        try:
            while True:
                yield await self._htlcs.get()
        finally:
            for task in tasks:
                task.cancel()
            self.interceptor.detach()

    def intercept_forwards(self, wanted: bool) -> None:
        self.interceptor.intercept_forwards(wanted)

    def node_requires_interceptor(self) -> bool:
        return self.interceptor.node_requires_interceptor()

    def intercepting(self) -> bool:
        return self.interceptor.intercepting()

    async def complete(
        self,
        htlc: InterceptedHtlc,
        action: HtlcAction,
        *,
        preimage: bytes = b"",
        failure_code: int = 0x400F,
    ) -> None:
        if htlc.hold_invoice:
            assert self.holds is not None
            await self.holds.complete(htlc, action, preimage)
            return
        await self.interceptor.complete(htlc, action, preimage)

    async def create_invoice(
        self,
        payment_hash: bytes,
        amount_msat: int,
        expiry_secs: int,
        *,
        memo: str = "",
        description_hash: bytes = b"",
    ) -> str:
        assert self.holds is not None
        return await self.holds.create(
            payment_hash, amount_msat, expiry_secs, memo, description_hash
        )
