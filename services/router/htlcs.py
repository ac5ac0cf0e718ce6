"""HTLC dispatch: one RouteHtlcs stream from the Lightning extension (reopened on any drop), and
the wish for forwards to virtual channels said to it every second (`interception.py`: only while
a served federation has LNv1 or development virtual channels); each HTLC's next-hop scid names a
federation, whose actor decides (settle / cancel); unknown scids are forwarded, except a
virtual one (block height 0) in a registry younger than `HOLD_AGE_S`, held like an unclaimed
hold HTLC below (a federation recovered from the seed gets its scid back). An HTLC of a hold
invoice (LNv2 receive) goes to the federation whose actor claimed its payment hash
(`gateway.claim_payment_hash`, before the invoice was made); one of a federation left is
cancelled. One whose hash nobody claimed (only our own hold invoices reach us: the data folder
that knew it was lost) is held, looked up again every few seconds, until a federation's
recovery from the seed claims it (an incoming contract we funded before the loss: settled
with its preimage) or it comes within `UNCLAIMED_HOLD_MARGIN` blocks of its expiry (cancelled).
The completion is retried until acknowledged (NOT_FOUND means the node no longer holds it:
expired).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bus import Broker
from gwcore.constants import METHOD_ACTOR_HTLC
from gwcore.errors import GatewayError
from gwcore.extension import ExtensionEndpoint
from gwproto import gateway_lnrpc_pb2 as lnpb
from gwproto import gateway_lnrpc_pb2_grpc as lnpb_grpc

from .interception import ForwardNeeds
from .registry import VIRTUAL_SCIDS, FederationEntry, FederationRegistry

log = logging.getLogger(__name__)
LNRPC_SERVICE = lnpb.DESCRIPTOR.services_by_name["GatewayLightning"].full_name
UNCLAIMED_HOLD_MARGIN = 12  # blocks before its expiry an unclaimed hold HTLC is cancelled
UNCLAIMED_POLL_S = 5.0
# a registry younger than this holds an HTLC for an unknown virtual scid as it holds an unclaimed
# hold HTLC (a lost folder's federation comes back with its scid); an older one forwards it (it
# fails): anyone may route to any scid, and an old gateway has no federation to wait for
HOLD_AGE_S = 24 * 3600
# errors of an actor asked about an HTLC that are faults, not its decision: the router asks
# again rather than cancel (the actor may have funded a contract for it already)
NOT_A_VERDICT = frozenset({"internal", "deadline_exceeded", "malformed_message"})


class HtlcDispatch:
    def __init__(
        self,
        broker: Broker,
        registry: FederationRegistry,
        extension: ExtensionEndpoint,
        forwards: ForwardNeeds,
    ) -> None:
        self.broker, self.registry, self.extension, self.forwards = (
            broker,
            registry,
            extension,
            forwards,
        )
        self.stream_open = False  # RouteHtlcs is open
        self.serving = False  # its health SERVING and the forwards we need ours
        self.stub: lnpb_grpc.GatewayLightningStub | None = None  # on the open stream's channel
        self.completed = 0
        self.unclaimed_poll_s = UNCLAIMED_POLL_S
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def connected(self) -> bool:
        """HTLCs reach us: the RouteHtlcs stream is open, the extension says SERVING (its node
        is synced) and the forwards we need are intercepted (lnd's interceptor attached while a
        served federation has virtual channels; not required otherwise)."""
        return self.stream_open and self.serving

    async def run(self) -> None:
        """Serve the RouteHtlcs stream until cancelled, reopening it on any drop."""
        delay = 0.2
        while True:
            try:
                async with self.extension.channel() as channel:
                    stub = lnpb_grpc.GatewayLightningStub(channel)
                    stream = stub.RouteHtlcs(lnpb.RouteHtlcsRequest())
                    self.stream_open, self.stub = True, stub
                    watch = asyncio.create_task(self._watch_extension(channel))
                    try:
                        async for htlc in stream:
                            delay = 0.2
                            task = asyncio.create_task(self._dispatch(stub, htlc))
                            self._tasks.add(task)
                            task.add_done_callback(self._tasks.discard)
                    finally:
                        watch.cancel()
            except grpc.aio.AioRpcError as exc:
                log.warning("RouteHtlcs stream: %s; reconnecting", exc.code().name)
            finally:
                self.stream_open = self.serving = False
                self.stub = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def say_interception(self) -> bool:
        """Tell the extension whether we need forwards to virtual channels (interception.py);
        whether the HTLCs we need reach us now."""
        return self.stub is not None and await self.forwards.say(self.stub)

    async def _watch_extension(self, channel: grpc.aio.Channel, every_s: float = 1.0) -> None:
        health = health_pb2_grpc.HealthStub(channel)
        req = health_pb2.HealthCheckRequest(service=LNRPC_SERVICE)
        while True:
            learn = asyncio.create_task(self.forwards.learn_from_actors())
            try:
                intercepting = await self.say_interception()
                status = (await health.Check(req, timeout=5)).status
                serving = intercepting and status == health_pb2.HealthCheckResponse.SERVING
            except grpc.aio.AioRpcError:
                serving = False
            finally:
                await learn
            if serving != self.serving:
                log.info("Lightning extension %s", "serving" if serving else "NOT serving")
            self.serving = serving
            await asyncio.sleep(every_s)

    async def _claimed_later(
        self,
        stub: lnpb_grpc.GatewayLightningStub,
        htlc: lnpb.InterceptedHtlc,
        lookup: Callable[[], FederationEntry | None],
        what: str,
    ) -> FederationEntry | None:
        """The entry `lookup` finds while this HTLC is held (a federation recovered from the
        seed claims its hash, or comes back with its scid), or None once it is near its expiry.
        `what`: the HTLC's unknown destination, for the log."""
        log.warning(
            "HTLC %s/%s %s: held until a recovery claims it or %d blocks before its expiry",
            htlc.incoming_chan_id,
            htlc.htlc_id,
            what,
            UNCLAIMED_HOLD_MARGIN,
        )
        while True:
            try:
                height = (
                    await stub.GetNodeInfo(lnpb.GetNodeInfoRequest(), timeout=10)
                ).block_height
            except grpc.aio.AioRpcError:
                height = None  # the extension away: ask again
            if height is not None and htlc.incoming_expiry - height <= UNCLAIMED_HOLD_MARGIN:
                return None
            await asyncio.sleep(self.unclaimed_poll_s)
            entry = lookup()
            if entry is not None:
                log.info(
                    "HTLC %s/%s claimed by %s",
                    htlc.incoming_chan_id,
                    htlc.htlc_id,
                    entry.federation_id,
                )
                return entry

    async def _dispatch(
        self, stub: lnpb_grpc.GatewayLightningStub, htlc: lnpb.InterceptedHtlc
    ) -> None:
        req = lnpb.CompleteHtlcRequest(incoming_chan_id=htlc.incoming_chan_id, htlc_id=htlc.htlc_id)
        ph, scid = htlc.payment_hash.hex(), htlc.short_channel_id
        if htlc.hold_invoice:
            entry = self.registry.by_payment_hash(ph)
            if entry is None:
                what = "pays a hold invoice whose hash no federation claims"
                entry = await self._claimed_later(
                    stub, htlc, lambda: self.registry.by_payment_hash(ph), what
                )
        else:
            entry = self.registry.by_scid(scid)
            if entry is None and scid < VIRTUAL_SCIDS and self.registry.younger_than(HOLD_AGE_S):
                what = f"is for virtual channel {scid}, of no federation served here"
                entry = await self._claimed_later(
                    stub, htlc, lambda: self.registry.by_scid(scid), what
                )
        if htlc.hold_invoice and (entry is None or entry.state in ("left", "failed")):
            req.cancel.reason = "no federation served here expects this payment"
        elif entry is None or entry.state in ("left", "failed"):
            req.forward.SetInParent()
        else:
            payload = {
                "payment_hash": htlc.payment_hash.hex(),
                "incoming_amount_msat": htlc.incoming_amount_msat,
                "outgoing_amount_msat": htlc.outgoing_amount_msat,
                "incoming_expiry": htlc.incoming_expiry,
                "short_channel_id": htlc.short_channel_id,
                "incoming_chan_id": htlc.incoming_chan_id,
                "htlc_id": htlc.htlc_id,
                "hold_invoice": htlc.hold_invoice,
            }
            decision = None
            while decision is None:  # the actor may be restarting: keep asking (same message id)
                try:
                    raw = await self.broker.request(
                        entry.federation_id,
                        METHOD_ACTOR_HTLC,
                        json.dumps(payload).encode(),
                        timeout=60,
                        retries=5,
                        idempotent=False,
                        message_id=f"htlc-{htlc.incoming_chan_id}-{htlc.htlc_id}",
                        payment_hash=htlc.payment_hash.hex(),
                    )
                    decision = json.loads(raw)
                except GatewayError as exc:
                    if not exc.retryable and exc.code not in NOT_A_VERDICT:
                        decision = {"action": "cancel", "reason": exc.message}
                    elif not exc.retryable:  # a fault, not a verdict: never cancel on it
                        log.error(
                            "actor of %s failed on an HTLC: %s; asking again",
                            entry.federation_id,
                            exc.message,
                        )
                        await asyncio.sleep(5.0)
                    else:
                        log.warning(
                            "actor of %s did not decide yet: %s", entry.federation_id, exc.message
                        )
                        await asyncio.sleep(1.0)
            if decision["action"] == "settle":
                req.settle.preimage = bytes.fromhex(decision["preimage"])
            else:
                req.cancel.reason = decision.get("reason", "")
        delay = 0.2
        while True:  # complete until acknowledged or the node no longer holds it
            try:
                await stub.CompleteHtlc(req, timeout=30)
                self.completed += 1
                return
            except grpc.aio.UsageError:  # the stream's channel closed: it comes again
                log.warning(
                    "HTLC %s/%s: the extension went away; it will offer it again",
                    htlc.incoming_chan_id,
                    htlc.htlc_id,
                )
                return
            except grpc.aio.AioRpcError as exc:
                if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                    log.error(
                        "HTLC %s/%s could not be completed: %s",
                        htlc.incoming_chan_id,
                        htlc.htlc_id,
                        exc.details(),
                    )
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
