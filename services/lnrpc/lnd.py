"""The LND backend: LND's own gRPC services (lnrpc.Lightning, routerrpc.Router) over one
long-lived TLS channel with the macaroon as call credentials.

Status mapping (lnrpc.Payment.PaymentStatus -> PaymentState), the only place it is decided:
    SUCCEEDED -> SETTLED    FAILED -> FAILED    IN_FLIGHT, INITIATED -> PENDING    UNKNOWN -> UNKNOWN
Interception: only while it is needed. The `HtlcInterceptor` stream is open while a served
federation has virtual channels (LNv1; the router says so with `intercept_forwards`) or while
lnd runs with `requireinterceptor` (then lnd fails every forward while no interceptor is
attached, so we stay attached always). Which of the two lnd runs with is read once at start from
`GetDebugInfo` (its flattened config); a macaroon that may not call it counts as
requireinterceptor (the old, always-attached behaviour) and is logged. While attached, forwards
for the node's own channels are resumed at once, the others (the gateway's virtual scids) are
held and streamed; the stream is reopened with backoff when it drops and lnd redelivers what it
still holds. Detached, lnd handles forwards alone: one to an unknown scid fails with
unknown_next_peer.
Hold invoices (invoicesrpc.Invoices: AddHoldInvoice, SubscribeSingleInvoice, SettleInvoice,
CancelInvoice) are `lnd_invoices.LndHoldInvoices`; their accepted HTLCs join the intercepted ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
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
from .lnd_invoices import LndHoldInvoices

log = logging.getLogger(__name__)
LND_STATUS = {
    ln.Payment.SUCCEEDED: PaymentState.SETTLED,
    ln.Payment.FAILED: PaymentState.FAILED,
    ln.Payment.IN_FLIGHT: PaymentState.PENDING,
    ln.Payment.INITIATED: PaymentState.PENDING,
    ln.Payment.UNKNOWN: PaymentState.UNKNOWN,
}
# outgoing_requested_chan_id of a node-addressed (blinded) forward: never one of ours
NODE_ID_FORWARD_SCID = 2**64 - 1
ATTACH_GRACE_S = 0.5
OWN_REFRESH_S = 1.0


def _why(exc: Exception) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name} {exc.details()}"
    return str(exc)


class _Macaroon(grpc.AuthMetadataPlugin):
    def __init__(self, macaroon_hex: str) -> None:
        self.macaroon_hex = macaroon_hex

    def __call__(
        self, context: grpc.AuthMetadataContext, callback: grpc.AuthMetadataPluginCallback
    ) -> None:
        callback((("macaroon", self.macaroon_hex),), None)


class LndBackend(LightningBackend):
    name = "lnd"

    def __init__(self, host: str, tls_cert: bytes, macaroon: bytes) -> None:
        self.host, self.tls_cert, self.macaroon_hex = host, tls_cert, macaroon.hex()
        self.channel: grpc.aio.Channel | None = None
        self._call: grpc.aio.StreamStreamCall | None = None
        self._write_lock = asyncio.Lock()
        self._attached = False
        self._held: dict[tuple[int, int], InterceptedHtlc] = {}
        self._own: set[int] = set()
        self._own_at = 0.0  # monotonic time of the last listing
        self._htlcs: asyncio.Queue[InterceptedHtlc] = asyncio.Queue()  # both kinds, in order
        self.holds: LndHoldInvoices | None = None
        self._wanted = False  # a served federation has virtual channels (intercept_forwards)
        self._required: bool | None = None  # lnd's requireinterceptor; None until read
        self._pump: asyncio.Task[None] | None = None  # the HtlcInterceptor loop, while attached

    @classmethod
    def from_files(cls, host: str, tls_cert_path: Path, macaroon_path: Path) -> LndBackend:
        return cls(host, tls_cert_path.read_bytes(), macaroon_path.read_bytes())

    async def start(self) -> None:
        creds = grpc.composite_channel_credentials(
            grpc.ssl_channel_credentials(root_certificates=self.tls_cert),
            grpc.metadata_call_credentials(_Macaroon(self.macaroon_hex)),
        )
        self.channel = grpc.aio.secure_channel(
            self.host, creds, options=[("grpc.max_receive_message_length", 50 << 20)]
        )
        self.ln = ln_grpc.LightningStub(self.channel)
        self.router = router_grpc.RouterStub(self.channel)
        self.holds = LndHoldInvoices(self.ln, inv_grpc.InvoicesStub(self.channel), out=self._htlcs)

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
        if self.holds is not None:
            await self.holds.close()
        if self.channel is not None:
            await self.channel.close()

    async def _rpc(self, coro):  # type: ignore[no-untyped-def]
        try:
            return await coro
        except grpc.aio.AioRpcError as exc:
            raise BackendError(
                f"lnd: {exc.code().name}: {exc.details()}",
                retryable=exc.code() == grpc.StatusCode.UNAVAILABLE,
            ) from None

    async def node_info(self) -> NodeInfo:
        r = await self._rpc(self.ln.GetInfo(ln.GetInfoRequest(), timeout=10))
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
        wallet = await self._rpc(self.ln.WalletBalance(ln.WalletBalanceRequest(), timeout=10))
        chans = (
            await self._rpc(self.ln.ListChannels(ln.ListChannelsRequest(), timeout=10))
        ).channels
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
            await self._rpc(
                self.ln.ListChannels(ln.ListChannelsRequest(active_only=True), timeout=10)
            )
        ).channels
        self._own = {c.chan_id for c in chans}
        hints = []
        for c in sorted(chans, key=lambda c: -c.remote_balance)[: num or None]:
            edge = await self._rpc(
                self.ln.GetChanInfo(ln.ChanInfoRequest(chan_id=c.chan_id), timeout=10)
            )
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
            asyncio.create_task(self._read_requirement(), name="lnd-requireinterceptor"),
            asyncio.create_task(self.holds.resync_until_done(), name="lnd-hold-resync"),
        ]
        try:
            while True:
                yield await self._htlcs.get()
        finally:
            for task in tasks:
                task.cancel()
            self._required = None
            self._apply()

    # --- when to intercept ------------------------------------------------------------------
    async def _read_requirement(self) -> None:
        """lnd's `requireinterceptor`, from GetDebugInfo's config, once (retried while lnd is
        unreachable); then attach if needed."""
        delay = 0.5
        while self._required is None:
            try:
                r = await self.ln.GetDebugInfo(ln.GetDebugInfoRequest(), timeout=10)
                self._required = r.config.get("requireinterceptor", "false") == "true"
            except grpc.aio.AioRpcError as exc:
                if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                log.warning(
                    "cannot read lnd's requireinterceptor (%s: the macaroon needs info:read,"
                    " offchain:read, onchain:read and peers:read): intercepting always",
                    _why(exc),
                )
                self._required = True
        log.info(
            "lnd requireinterceptor=%s: intercepting %s",
            self._required,
            "always" if self._required else "while a federation has virtual channels",
        )
        self._apply()

    def intercept_forwards(self, wanted: bool) -> None:
        if wanted != self._wanted:
            log.info("forwards to virtual channels %s", "wanted" if wanted else "not wanted")
        self._wanted = wanted
        self._apply()

    def node_requires_interceptor(self) -> bool:
        return bool(self._required)

    def _apply(self) -> None:
        """Attach the HtlcInterceptor when needed, detach it when not (lnd then resolves what
        it held for us itself: an unknown scid fails with unknown_next_peer)."""
        need = self._required is not None and (self._wanted or self._required)
        running = self._pump is not None and not self._pump.done()
        if need and not running:
            self._pump = asyncio.create_task(self._pump_forwards(), name="lnd-interceptor")
        elif not need and running:
            assert self._pump is not None
            self._pump.cancel()
            self._pump = None
            self._attached = False
            self._held.clear()  # lnd takes them back: completing one now is NOT_FOUND

    def intercepting(self) -> bool:
        if self._required is None:
            return False  # not known yet whether forwards reach us
        return self._attached if (self._wanted or self._required) else True

    async def _pump_forwards(self) -> None:
        while True:
            try:
                async for htlc in self._forwards():
                    self._htlcs.put_nowait(htlc)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the HtlcInterceptor loop failed; restarting it")
                await asyncio.sleep(1.0)

    async def _refresh_own(self) -> None:
        """The scids of the node's own channels (aliases included): forwards to them are not
        ours to judge. Asked at every (re)connect and whenever an unknown scid comes."""
        chans = (
            await self._rpc(self.ln.ListChannels(ln.ListChannelsRequest(), timeout=10))
        ).channels
        own = set()
        for c in chans:
            own.add(c.chan_id)
            own.update(c.alias_scids)
            if c.zero_conf_confirmed_scid:
                own.add(c.zero_conf_confirmed_scid)
        self._own, self._own_at = own, time.monotonic()

    async def _is_own(self, scid: int) -> bool:
        """Ours to resume at once? An scid we do not know is looked up again (a channel opened
        since), at most once a second: under a flood of the gateway's own HTLCs the node is
        not asked each time, and a forward held by mistake is resumed by the gateway anyway."""
        if scid == NODE_ID_FORWARD_SCID or scid in self._own:
            return True
        if time.monotonic() - self._own_at < OWN_REFRESH_S:
            return False
        try:
            await self._refresh_own()
        except BackendError as exc:  # unsure: hold it; the gateway forwards what is not its own
            log.warning("cannot list channels (%s): holding HTLC for scid %d", exc, scid)
            return False
        return scid in self._own

    async def _forwards(self) -> AsyncIterator[InterceptedHtlc]:
        """One HtlcInterceptor stream after another. Responses are written on the stream by
        `complete` (one at a time); lnd ends the stream when it refuses one (an unsupported
        failure code, an HTLC it no longer holds) and offers every HTLC it still holds again
        on the next stream."""
        delay = 0.1
        while True:
            call = self.router.HtlcInterceptor()
            attach = asyncio.create_task(self._mark_attached(call))
            try:
                with contextlib.suppress(BackendError):
                    await self._refresh_own()
                self._call = call
                while True:
                    req = await call.read()
                    self._attached = True
                    if req is grpc.aio.EOF:
                        log.warning("HtlcInterceptor stream closed by lnd; reconnecting")
                        break
                    delay = 0.1
                    key = req.incoming_circuit_key
                    if await self._is_own(req.outgoing_requested_chan_id):
                        await self._write(
                            router.ForwardHtlcInterceptResponse(
                                incoming_circuit_key=key, action=router.RESUME
                            )
                        )
                        continue
                    h = InterceptedHtlc(
                        req.payment_hash,
                        req.incoming_amount_msat,
                        req.outgoing_amount_msat,
                        req.incoming_expiry,
                        req.outgoing_expiry,
                        req.outgoing_requested_chan_id,
                        key.chan_id,
                        key.htlc_id,
                        ref=req.auto_fail_height,
                    )
                    self._held[h.key] = h
                    yield h
            except (grpc.aio.AioRpcError, BackendError) as exc:
                log.warning("HtlcInterceptor stream ended: %s; reconnecting", _why(exc))
            finally:
                self._call, self._attached = None, False
                attach.cancel()
                call.cancel()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _mark_attached(self, call: grpc.aio.StreamStreamCall) -> None:
        """lnd sends nothing when an interceptor attaches (and ends the stream at once when
        one is already attached): a stream still open after a moment is attached."""
        await asyncio.sleep(ATTACH_GRACE_S)
        if not call.done():
            self._attached = True

    async def _write(self, resp: router.ForwardHtlcInterceptResponse) -> None:
        call = self._call
        if call is None:
            raise BackendError("the interceptor stream is down", retryable=True)
        async with self._write_lock:
            try:
                await call.write(resp)
            except (grpc.aio.AioRpcError, grpc.aio.UsageError) as exc:
                raise BackendError(
                    f"the interceptor stream is down: {_why(exc)}", retryable=True
                ) from None

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
        if htlc.key not in self._held:
            raise BackendError("lnd no longer holds this HTLC")
        if self._call is None:
            raise BackendError("the interceptor stream is down", retryable=True)
        if htlc.ref and (await self.node_info()).block_height >= int(htlc.ref):  # type: ignore[call-overload]
            del self._held[htlc.key]  # lnd failed it back itself at auto_fail_height
            raise BackendError("lnd failed this HTLC back at its auto-fail height")
        key = router.CircuitKey(chan_id=htlc.incoming_chan_id, htlc_id=htlc.htlc_id)
        if action == HtlcAction.SETTLE:
            if hashlib.sha256(preimage).digest() != htlc.payment_hash:
                raise BackendError("preimage does not hash to the payment hash", invalid_input=True)
            resp = router.ForwardHtlcInterceptResponse(
                incoming_circuit_key=key, action=router.SETTLE, preimage=preimage
            )
        elif action == HtlcAction.FAIL:
            # lnd fails an intercepted HTLC with TEMPORARY_CHANNEL_FAILURE only (or an onion
            # error, or a failure message encrypted with the onion's shared secret, which lnd
            # does not give us): any other code ends the whole stream. The payer sees a
            # temporary_channel_failure from our node whatever the reason.
            resp = router.ForwardHtlcInterceptResponse(
                incoming_circuit_key=key,
                action=router.FAIL,
                failure_code=ln.Failure.TEMPORARY_CHANNEL_FAILURE,
            )
        else:
            resp = router.ForwardHtlcInterceptResponse(
                incoming_circuit_key=key, action=router.RESUME
            )
        await self._write(resp)
        del self._held[htlc.key]

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
