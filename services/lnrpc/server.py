"""The GatewayLightning gRPC server (grpc.aio), its health service and optional reflection.

Where it listens (`gwcore.extension`): a unix socket in a private folder (0700, ours: made so if
missing, refused if open to others; a socket another process still serves is refused too; the
socket itself 0600), or TCP with mutual TLS only. It never opens a plaintext TCP port.

Health: NOT_SERVING until the backend answers `node_info` with synced=true and the HTLCs that
must reach us do (`backend.intercepting()`: LND's interceptor attached when forwards are wanted,
`InterceptForwards`), checked every `health_interval_s`, at once when interception changes, and
again on shutdown. Errors map to status codes: bad input ->
INVALID_ARGUMENT, a second RouteHtlcs or an invoice for a hash in use -> ALREADY_EXISTS, unknown or already completed HTLC ->
NOT_FOUND, node unreachable -> UNAVAILABLE. Deadlines are honoured: PayInvoice answers PENDING
just before the caller's deadline rather than letting it expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
from bolt11 import decode as bolt11_decode
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gwcore.extension import ExtensionConfigError, ExtensionEndpoint
from gwproto import gateway_lnrpc_pb2 as pb
from gwproto import gateway_lnrpc_pb2_grpc as pb_grpc

from .backend import (
    BackendError,
    HtlcAction,
    InvoiceExists,
    LightningBackend,
    PaymentResult,
    PaymentState,
)
from .hub import AlreadySubscribed, HtlcHub, UnknownHtlc
from .payments import PaymentRegistry

log = logging.getLogger(__name__)
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["GatewayLightning"].full_name
STATES = {
    PaymentState.SETTLED: pb.SETTLED,
    PaymentState.FAILED: pb.FAILED,
    PaymentState.PENDING: pb.PENDING,
    PaymentState.UNKNOWN: pb.UNKNOWN,
}
ATTACH_WAIT_S = 3.0  # InterceptForwards waits this long for the node to hand forwards over


class GatewayLightningService(pb_grpc.GatewayLightningServicer):
    def __init__(
        self,
        backend: LightningBackend,
        hub: HtlcHub,
        payments: PaymentRegistry,
        on_interception: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.backend, self.hub, self.payments = backend, hub, payments
        self.on_interception = on_interception  # health re-checked when interception changes

    async def _call(self, context: grpc.aio.ServicerContext, coro):  # type: ignore[no-untyped-def]
        try:
            return await coro
        except InvoiceExists as exc:
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, str(exc))
        except BackendError as exc:
            code = (
                grpc.StatusCode.INVALID_ARGUMENT
                if exc.invalid_input
                else grpc.StatusCode.UNAVAILABLE
            )
            await context.abort(code, str(exc))

    async def GetNodeInfo(
        self, request: pb.GetNodeInfoRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetNodeInfoResponse:
        info = await self._call(context, self.backend.node_info())
        return pb.GetNodeInfoResponse(
            pub_key=info.pub_key,
            alias=info.alias,
            network=info.network,
            block_height=info.block_height,
            synced=info.synced,
        )

    async def GetRouteHints(
        self, request: pb.GetRouteHintsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetRouteHintsResponse:
        hints = await self._call(context, self.backend.route_hints(request.num_route_hints))
        out = pb.GetRouteHintsResponse()
        for hint in hints:
            rh = out.route_hints.add()
            for h in hint:
                rh.hops.add(
                    src_node_id=h.src_node_id,
                    short_channel_id=h.short_channel_id,
                    base_msat=h.base_msat,
                    proportional_millionths=h.proportional_millionths,
                    cltv_expiry_delta=h.cltv_expiry_delta,
                    htlc_minimum_msat=h.htlc_minimum_msat,
                    htlc_maximum_msat=h.htlc_maximum_msat,
                )
        return out

    async def GetBalances(
        self, request: pb.GetBalancesRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetBalancesResponse:
        b = await self._call(context, self.backend.balances())
        return pb.GetBalancesResponse(
            onchain_balance_sat=b.onchain_balance_sat,
            lightning_balance_msat=b.lightning_balance_msat,
            inbound_lightning_liquidity_msat=b.inbound_lightning_liquidity_msat,
            channels=[
                pb.ChannelBalance(
                    peer_id=c.peer_id,
                    short_channel_id=c.short_channel_id,
                    capacity_sat=c.capacity_sat,
                    local_msat=c.local_msat,
                    remote_msat=c.remote_msat,
                    active=c.active,
                )
                for c in b.channels
            ],
        )

    async def PayInvoice(
        self, request: pb.PayInvoiceRequest, context: grpc.aio.ServicerContext
    ) -> pb.PayInvoiceResponse:
        try:
            inv = bolt11_decode(request.invoice)
        except Exception as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"cannot decode invoice: {exc}")
        if len(request.payment_hash) != 32 or request.payment_hash.hex() != inv.payment_hash:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "payment_hash does not match the invoice"
            )
        left = context.time_remaining()
        wait = 3600.0 if left is None else max(0.0, left - 0.25)
        result = await self._call(
            context,
            self.payments.pay(
                request.invoice, request.payment_hash, request.max_delay, request.max_fee_msat, wait
            ),
        )
        if not _preimage_matches(result, request.payment_hash):
            return pb.PayInvoiceResponse(status=pb.UNKNOWN)
        return pb.PayInvoiceResponse(
            status=STATES[result.state],
            preimage=result.preimage,
            fee_msat=result.fee_msat,
            failure_reason=result.failure_reason,
            failure_code=result.failure_code,
        )

    async def LookupPayment(
        self, request: pb.LookupPaymentRequest, context: grpc.aio.ServicerContext
    ) -> pb.LookupPaymentResponse:
        if len(request.payment_hash) != 32:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "payment_hash is 32 bytes")
        result = await self._call(context, self.backend.track(request.payment_hash))
        if result is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "the node never paid this hash")
        if not _preimage_matches(result, request.payment_hash):
            return pb.LookupPaymentResponse(status=pb.UNKNOWN, invoice=result.invoice)
        return pb.LookupPaymentResponse(
            status=STATES[result.state],
            preimage=result.preimage,
            fee_msat=result.fee_msat,
            failure_reason=result.failure_reason,
            invoice=result.invoice,
        )

    async def RouteHtlcs(
        self, request: pb.RouteHtlcsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.InterceptedHtlc]:
        try:
            async for h in self.hub.subscribe():
                yield pb.InterceptedHtlc(
                    payment_hash=h.payment_hash,
                    incoming_amount_msat=h.incoming_amount_msat,
                    outgoing_amount_msat=h.outgoing_amount_msat,
                    incoming_expiry=h.incoming_expiry,
                    short_channel_id=h.short_channel_id,
                    incoming_chan_id=h.incoming_chan_id,
                    htlc_id=h.htlc_id,
                    outgoing_expiry=h.outgoing_expiry,
                    hold_invoice=h.hold_invoice,
                )
        except AlreadySubscribed as exc:
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, str(exc))

    async def CompleteHtlc(
        self, request: pb.CompleteHtlcRequest, context: grpc.aio.ServicerContext
    ) -> pb.CompleteHtlcResponse:
        which = request.WhichOneof("action")
        kwargs: dict = {}
        if which == "settle":
            if len(request.settle.preimage) != 32:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "preimage must be 32 bytes")
            action, kwargs["preimage"] = HtlcAction.SETTLE, request.settle.preimage
        elif which == "cancel":
            action, kwargs["failure_code"] = HtlcAction.FAIL, request.cancel.failure_code or 0x400F
        elif which == "forward":
            action = HtlcAction.FORWARD
        else:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "one of settle, cancel, forward")
        try:
            await self.hub.complete(request.incoming_chan_id, request.htlc_id, action, **kwargs)
        except UnknownHtlc as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        except BackendError as exc:
            code = (
                grpc.StatusCode.INVALID_ARGUMENT
                if exc.invalid_input
                else (grpc.StatusCode.UNAVAILABLE if exc.retryable else grpc.StatusCode.NOT_FOUND)
            )
            await context.abort(code, str(exc))
        return pb.CompleteHtlcResponse()

    async def InterceptForwards(
        self, request: pb.InterceptForwardsRequest, context: grpc.aio.ServicerContext
    ) -> pb.InterceptForwardsResponse:
        before = self.backend.intercepting()
        self.backend.intercept_forwards(request.enabled)
        loop = asyncio.get_running_loop()
        deadline, waited = loop.time() + ATTACH_WAIT_S, False
        while not self.backend.intercepting() and loop.time() < deadline:
            waited = True
            await asyncio.sleep(0.1)
        now = self.backend.intercepting()
        if self.on_interception is not None and (waited or now != before):
            await self.on_interception()  # health now, not at the next watch
        return pb.InterceptForwardsResponse(
            intercepting=now, node_requires=self.backend.node_requires_interceptor()
        )

    async def CreateInvoice(
        self, request: pb.CreateInvoiceRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateInvoiceResponse:
        if len(request.payment_hash) != 32:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "payment_hash must be 32 bytes")
        if request.amount_msat <= 0 or request.expiry_secs <= 0:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "amount_msat and expiry_secs must be positive"
            )
        which = request.WhichOneof("description")
        if which == "description_hash" and len(request.description_hash) != 32:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "description_hash must be 32 bytes"
            )
        invoice = await self._call(
            context,
            self.backend.create_invoice(
                request.payment_hash,
                request.amount_msat,
                request.expiry_secs,
                memo=request.memo if which == "memo" else "",
                description_hash=request.description_hash if which == "description_hash" else b"",
            ),
        )
        return pb.CreateInvoiceResponse(invoice=invoice)


def _private_folder(folder: Path) -> None:
    """The socket's folder: made 0700 if missing; refused if another user's or open to others."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = folder.stat()
    if st.st_uid != os.getuid():
        raise ExtensionConfigError(
            f"socket folder {folder} belongs to uid {st.st_uid}, not to us (uid {os.getuid()})"
        )
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise ExtensionConfigError(
            f"socket folder {folder} is open to other users (mode {stat.S_IMODE(st.st_mode):o}):"
            " it must be 0700"
        )


def _not_served(path: Path) -> None:
    """A socket left by a process that died may be replaced; one still served may not."""
    if not path.exists():
        return
    if not stat.S_ISSOCK(path.stat().st_mode):
        raise ExtensionConfigError(f"{path} exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return  # stale: nobody listens
    raise ExtensionConfigError(f"another process already listens on {path}")


def listen_on(server: grpc.aio.Server, endpoint: ExtensionEndpoint) -> str:
    """Bind `server` to `endpoint`; the address it listens on (a TCP port 0 made concrete)."""
    if endpoint.is_unix:
        path = endpoint.socket_path
        _private_folder(path.parent)
        _not_served(path)
        try:
            server.add_insecure_port(endpoint.address)
        except RuntimeError as exc:
            raise ExtensionConfigError(f"cannot listen on {endpoint.address}: {exc}") from None
        path.chmod(0o600)
        return endpoint.address
    try:
        port = server.add_secure_port(endpoint.address, endpoint.server_credentials())
    except RuntimeError as exc:
        raise ExtensionConfigError(f"cannot listen on {endpoint.address}: {exc}") from None
    return endpoint.address.rsplit(":", 1)[0] + f":{port}"


class ExtensionServer:
    """The gRPC server with its hub, payments, health and reflection. `start()`, `stop()`.

    `listen` is `unix:PATH` or `HOST:PORT` (then `tls_dir` is required: mutual TLS), or an
    `ExtensionEndpoint`; a bad one raises `ExtensionConfigError`."""

    def __init__(
        self,
        backend: LightningBackend,
        listen: str | ExtensionEndpoint,
        *,
        reflection_enabled: bool = False,
        tls_dir: str | os.PathLike[str] | None = None,
        health_interval_s: float = 2.0,
    ) -> None:
        endpoint = (
            listen
            if isinstance(listen, ExtensionEndpoint)
            else ExtensionEndpoint.parse(listen, tls_dir)
        )
        self.backend = backend
        self.hub = HtlcHub(backend)
        self.payments = PaymentRegistry(backend)
        self.server = grpc.aio.server()
        self.health = (
            health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()
        )
        pb_grpc.add_GatewayLightningServicer_to_server(
            GatewayLightningService(backend, self.hub, self.payments, self._check_node),
            self.server,
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        if reflection_enabled:
            reflection.enable_server_reflection(
                (SERVICE_NAME, reflection.SERVICE_NAME, health.SERVICE_NAME), self.server
            )
        self.endpoint = endpoint
        self.listen = listen_on(self.server, endpoint)
        self.health_interval_s = health_interval_s
        self._watch: asyncio.Task[None] | None = None

    async def _set_health(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", SERVICE_NAME):
            result = self.health.set(name, status)
            if asyncio.iscoroutine(result):
                await result

    async def _check_node(self) -> None:
        try:
            serving = (await self.backend.node_info()).synced and self.backend.intercepting()
        except Exception as exc:
            log.warning("node not reachable: %s", exc)
            serving = False
        await self._set_health(serving)

    async def _watch_node(self) -> None:
        while True:
            await self._check_node()
            await asyncio.sleep(self.health_interval_s)

    async def start(self) -> None:
        await self._set_health(False)
        await self.backend.start()
        self.hub.start()
        await self.server.start()
        self._watch = asyncio.create_task(self._watch_node())
        log.info(
            "lightning extension listening",
            extra={"fields": {"listen": self.listen, "backend": self.backend.name}},
        )

    async def stop(self, grace_s: float = 5.0) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await self._set_health(False)
        await self.server.stop(grace_s)
        await self.hub.stop()
        await self.backend.close()


def _preimage_matches(result: PaymentResult, payment_hash: bytes) -> bool:
    """A settled payment's preimage hashes to its hash (else the backend is not believed: the
    payment is reported UNKNOWN, never settled)."""
    if result.state != PaymentState.SETTLED:
        return True
    if hashlib.sha256(result.preimage).digest() == payment_hash:
        return True
    log.error("backend returned a preimage that does not match: reporting UNKNOWN")
    return False
