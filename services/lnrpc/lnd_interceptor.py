"""Forwards to the gateway's virtual channels through lnd's `routerrpc.Router/HtlcInterceptor`:
when to be attached, the stream kept open, forwards sorted, the held ones completed.

Only while it is needed. The `HtlcInterceptor` stream is open while a served federation has
virtual channels (LNv1; the router says so with `intercept_forwards`) or while lnd runs with
`requireinterceptor` (then lnd fails every forward while no interceptor is attached, so we stay
attached always). Which of the two lnd runs with is read once at start from `GetDebugInfo` (its
flattened config); a macaroon that may not call it counts as requireinterceptor (the old,
always-attached behaviour) and is logged. While attached, forwards for the node's own channels
are resumed at once, the others (the gateway's virtual scids) are held and streamed; the stream
is reopened with backoff when it drops and lnd redelivers what it still holds. Detached, lnd
handles forwards alone: one to an unknown scid fails with unknown_next_peer.

`LndBackend` owns one `LndInterceptor`, puts what it holds on the queue it shares with the hold
invoices (`lnd_invoices.py`) and hands it the forwards to complete; hold-invoice HTLCs never
come here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator

import grpc

from gwproto import lnd_lightning_pb2 as ln
from gwproto import lnd_lightning_pb2_grpc as ln_grpc
from gwproto import lnd_router_pb2 as router
from gwproto import lnd_router_pb2_grpc as router_grpc

from .backend import BackendError, HtlcAction, InterceptedHtlc
from .lnd_connection import rpc, why

log = logging.getLogger(__name__)
# outgoing_requested_chan_id of a node-addressed (blinded) forward: never one of ours
NODE_ID_FORWARD_SCID = 2**64 - 1
ATTACH_GRACE_S = 0.5
OWN_REFRESH_S = 1.0


class LndInterceptor:
    """The `HtlcInterceptor` side of one `LndBackend`: attached while needed, the forwards it
    holds keyed by their incoming circuit, completed one response at a time."""

    def __init__(self, out: asyncio.Queue[InterceptedHtlc]) -> None:
        self.out = out  # the held forwards go here, in order
        self._call: grpc.aio.StreamStreamCall | None = None
        self._write_lock = asyncio.Lock()
        self._attached = False
        self._held: dict[tuple[int, int], InterceptedHtlc] = {}
        self._own: set[int] = set()
        self._own_at = 0.0  # monotonic time of the last listing
        self._wanted = False  # a served federation has virtual channels (intercept_forwards)
        self._required: bool | None = None  # lnd's requireinterceptor; None until read
        self._pump: asyncio.Task[None] | None = None  # the HtlcInterceptor loop, while attached

    def connect(self, ln_stub: ln_grpc.LightningStub, router_stub: router_grpc.RouterStub) -> None:
        """The stubs of the backend's channel, once it is open (`LndBackend.start`)."""
        self.ln, self.router = ln_stub, router_stub

    def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()

    def set_own(self, scids: set[int]) -> None:
        """The node's own channels as the backend just listed them (its route hints)."""
        self._own = scids

    # --- when to intercept ------------------------------------------------------------------
    async def read_requirement(self) -> None:
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
                    why(exc),
                )
                self._required = True
        log.info(
            "lnd requireinterceptor=%s: intercepting %s",
            self._required,
            "always" if self._required else "while a federation has virtual channels",
        )
        self._apply()

    def detach(self) -> None:
        """Nobody streams the HTLCs any more: detach, and read `requireinterceptor` again
        (`read_requirement`) before attaching next time."""
        self._required = None
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

    # --- the stream ---------------------------------------------------------------------------
    async def _pump_forwards(self) -> None:
        while True:
            try:
                async for htlc in self._forwards():
                    self.out.put_nowait(htlc)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the HtlcInterceptor loop failed; restarting it")
                await asyncio.sleep(1.0)

    async def _refresh_own(self) -> None:
        """The scids of the node's own channels (aliases included): forwards to them are not
        ours to judge. Asked at every (re)connect and whenever an unknown scid comes."""
        chans = (await rpc(self.ln.ListChannels(ln.ListChannelsRequest(), timeout=10))).channels
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
                log.warning("HtlcInterceptor stream ended: %s; reconnecting", why(exc))
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
                    f"the interceptor stream is down: {why(exc)}", retryable=True
                ) from None

    # --- completing a held forward --------------------------------------------------------
    async def complete(self, htlc: InterceptedHtlc, action: HtlcAction, preimage: bytes) -> None:
        """Settle, fail (as TEMPORARY_CHANNEL_FAILURE: see below) or resume one held forward."""
        if htlc.key not in self._held:
            raise BackendError("lnd no longer holds this HTLC")
        if self._call is None:
            raise BackendError("the interceptor stream is down", retryable=True)
        if htlc.ref and (await self._block_height()) >= int(htlc.ref):  # type: ignore[call-overload]
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

    async def _block_height(self) -> int:
        return int((await rpc(self.ln.GetInfo(ln.GetInfoRequest(), timeout=10))).block_height)
