"""The broker side of the bus: one ROUTER socket that workers and callers connect to.

It lives in the router process. It keeps a table of workers by service (a federation id, for
actors), forwards each request to a live worker of its service and routes the reply back by
correlation id. It can also call workers itself (`request`), which is how the router dispatches
intercepted HTLCs to actors, and it serves broker-local services (`serve_local`), such as the
built-in "bus" service that reports the liveness table.

This module is the socket and its loop: binding (CURVE, ROUTER_MANDATORY, ROUTER_HANDOVER),
reading each message and dispatching it by its body, the heartbeat tick, and sending. The rooms
it wires: the workers and their states (liveness.py: READY, expiry, revival, loss), the requests
in flight and queued (routing.py: forwarding, joining duplicates, `worker_lost`,
`service_unavailable`), broker-local services (local.py) and the broker's own calls (calls.py).

When a worker expires, disconnects or restarts, every request in flight to it is answered with a
retryable `worker_lost` error, so callers retry at once (de-duplicated by message id) rather
than wait for their timeout. Requests for a service with no live worker wait in a queue until one
says READY or their deadline passes (then `service_unavailable`): processes start in any order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import zmq
import zmq.asyncio

from gwcore.constants import (
    BUS_SERVICE,
    METHOD_BUS_LIVENESS,
    METHOD_BUS_PING,
    ROUTER_IDENTITY,
)
from gwcore.errors import GatewayError, UnknownMethod
from gwcore.logging import fields
from gwproto.bus_pb2 import Envelope, LivenessReport

from .aiosocket import AioSocket, plain_context
from .calls import Call, Handler, PendingCalls
from .codec import Codec, new_message_id
from .endpoints import HeartbeatPolicy, configure_socket, endpoint_kind
from .forwards import WorkerEntry
from .liveness import State, WorkerEvent, WorkerTable
from .local import LocalServices, liveness_report
from .routing import RequestRouting
from .security import CurveServerConfig, apply_server, start_authenticator

log = logging.getLogger(__name__)


class Broker:
    """ROUTER-side of the bus. Create, `await start()`, and `await stop()` when done."""

    def __init__(
        self,
        *,
        endpoints: list[str],
        ctx: zmq.Context,
        identity: str = ROUTER_IDENTITY,
        codec: Codec | None = None,
        heartbeat: HeartbeatPolicy | None = None,
        curve: CurveServerConfig | None = None,
        max_queued: int = 10_000,
        default_deadline_s: float = 30.0,
        on_worker_event: WorkerEvent | None = None,
    ) -> None:
        for ep in endpoints:
            endpoint_kind(ep)
        self.endpoints = endpoints
        self.ctx = ctx
        self.identity = identity
        self.codec = codec or Codec()
        self.stats = self.codec.stats
        self.heartbeat = heartbeat or HeartbeatPolicy()
        self.curve = curve
        self.on_worker_event = on_worker_event
        self.started_ms = int(time.time() * 1000)
        self._workers = WorkerTable(self._event, self._requests_lost)
        self._local = LocalServices(self.stats, self._answer_to, self._deliver, self._spawn)
        self._local.add(BUS_SERVICE, self._bus_service)
        self._calls = PendingCalls(self.stats)
        self._routing = RequestRouting(
            self._workers,
            self._local,
            self.stats,
            self._send,
            self._answer_error,
            self._calls.resolve,
            max_queued=max_queued,
            default_deadline_s=default_deadline_s,
        )
        self._sock: AioSocket | None = None
        self._auth = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []

    # --- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        if self.curve is not None and self.curve.allowed_clients:
            actx = self.ctx
            if not isinstance(actx, zmq.asyncio.Context):
                actx = zmq.asyncio.Context.shadow(self.ctx.underlying)
            self._auth = start_authenticator(actx, self.curve)
        sock = plain_context(self.ctx).socket(zmq.ROUTER)
        configure_socket(sock, max_frame_bytes=self.codec.max_frame_bytes)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # unroutable sends fail loudly, not silently
        sock.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a restarted worker takes over its identity
        if self.curve is not None:
            apply_server(sock, self.curve)
        for ep in self.endpoints:
            sock.bind(ep)
        self._sock = AioSocket(sock, self._on_frames)
        self._sock.start()
        self._loops = [asyncio.create_task(self._tick_loop(), name="broker:tick")]
        log.info("broker listening", extra=fields(endpoints=self.endpoints))

    async def stop(self) -> None:
        for task in (*self._loops, *self._tasks):
            task.cancel()
        for task in (*self._loops, *self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._auth is not None:
            self._auth.stop()

    @property
    def bound_endpoints(self) -> list[str]:
        """Endpoints as bound (tcp://127.0.0.1:0 resolved to its real port)."""
        assert self._sock is not None
        last = self._sock.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        return [*self.endpoints[:-1], last]

    def serve_local(self, service: str, handler: Handler) -> None:
        """Answer requests for `service` in this process instead of forwarding them."""
        self._local.add(service, handler)

    # --- the broker's own calls ---------------------------------------------------------------
    async def request(
        self,
        service: str,
        method: str,
        payload: bytes = b"",
        *,
        timeout: float,
        retries: int = 2,
        attempt_timeout: float | None = None,
        idempotent: bool = True,
        federation_id: str = "",
        request_id: str = "",
        payment_hash: str = "",
        message_id: str | None = None,
    ) -> bytes:
        """Call a worker of `service` from the broker's process; return its reply payload."""
        env = Envelope(
            message_id=message_id or new_message_id(),
            sender=self.identity,
            federation_id=federation_id,
            request_id=request_id,
            payment_hash=payment_hash,
        )
        env.request.service = service
        env.request.method = method
        env.request.payload = payload
        env.request.idempotent = idempotent

        async def send(e: Envelope) -> None:
            self._routing.route(None, e, self.codec.encode(e))

        return await self._calls.call(
            env, send, timeout=timeout, retries=retries, attempt_timeout=attempt_timeout
        )

    # --- liveness -----------------------------------------------------------------------------
    def liveness(self) -> LivenessReport:
        now = asyncio.get_running_loop().time()
        return liveness_report(self._workers.values(), self.stats, self.started_ms, now)

    def live_services(self) -> set[str]:
        return self._workers.live_services()

    async def _bus_service(self, call: Call) -> bytes:
        if call.method == METHOD_BUS_LIVENESS:
            return self.liveness().SerializeToString()
        if call.method == METHOD_BUS_PING:
            return call.payload
        raise UnknownMethod(f"the bus service has no method {call.method!r}")

    # --- receiving ----------------------------------------------------------------------------
    def _on_frames(self, frames: list[bytes]) -> None:
        decoded = self.codec.from_router_frames(frames)
        if decoded is None:
            return
        peer, env, raw = decoded
        try:
            self._dispatch(peer, env, raw, asyncio.get_running_loop().time())
        except Exception:  # a bug must not stop the broker
            log.exception("broker failed to dispatch a message")
            self.stats.incr("dispatch_failures")

    def _dispatch(self, peer: bytes, env: Envelope, raw: bytes, now: float) -> None:
        body = env.WhichOneof("body")
        worker = self._workers.get(peer)
        if worker is not None and body != "request" and self._workers.heard(worker, now):
            self._routing.drain(worker.service)  # it was expired: revived
        if body == "request":
            self._routing.route(peer, env, raw)
        elif body in ("reply", "error"):
            self._routing.answer(peer, env, raw)
        elif body == "ready":
            self._workers.ready(peer, env.ready.service, env.ready.incarnation, now)
            self._send(peer, self._control(heartbeat=True))
            self._routing.drain(env.ready.service)
        elif body == "heartbeat":
            if worker is None or worker.state == State.DISCONNECTED:
                self._send_disconnect(peer, "unknown worker: send READY")
        elif body == "disconnect" and worker is not None:
            self._workers.lose(worker, State.DISCONNECTED, "disconnected: " + env.disconnect.reason)

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.heartbeat.interval_s / 2)
            now = loop.time()
            for worker in self._workers.values():
                if worker.state == State.DISCONNECTED:
                    continue
                if worker.state == State.ALIVE and now - worker.last_seen > self.heartbeat.expiry_s:
                    self._workers.lose(worker, State.EXPIRED, "heartbeat expired")
                if now - worker.last_sent >= self.heartbeat.interval_s:
                    self._send(worker.identity, self._control(heartbeat=True))
            self._routing.sweep(now, self.heartbeat.expiry_s)

    # --- sending ------------------------------------------------------------------------------
    def _answer_to(self, req: Envelope) -> Envelope:
        return Envelope(
            message_id=new_message_id(),
            correlation_id=req.message_id,
            sender=self.identity,
            federation_id=req.federation_id,
            request_id=req.request_id,
            payment_hash=req.payment_hash,
        )

    def _answer_error(self, client: bytes | None, req: Envelope, err: GatewayError) -> None:
        answer = self._answer_to(req)
        answer.error.code, answer.error.message = err.code, err.message
        answer.error.retryable = err.retryable
        self._deliver(client, answer)

    def _deliver(self, client: bytes | None, answer: Envelope) -> None:
        if client is None:
            self._calls.resolve(answer)
        else:
            self._send(client, self.codec.encode(answer))

    def _control(self, *, heartbeat: bool = False, reason: str = "") -> bytes:
        env = Envelope(message_id=new_message_id(), sender=self.identity)
        if heartbeat:
            env.heartbeat.SetInParent()
        else:
            env.disconnect.reason = reason
        return self.codec.encode(env)

    def _send_disconnect(self, peer: bytes, reason: str) -> None:
        self._send(peer, self._control(reason=reason))

    def _send(self, peer: bytes, raw: bytes) -> bool:
        """Send one envelope to `peer` without blocking; False if it cannot be delivered."""
        assert self._sock is not None
        try:
            sent = self._sock.send([peer, b"", raw])
        except zmq.ZMQError as exc:
            self.stats.incr("unroutable" if exc.errno == zmq.EHOSTUNREACH else "send_failed")
            worker = self._workers.get(peer)
            gone = exc.errno == zmq.EHOSTUNREACH
            if gone and worker is not None and worker.state != State.DISCONNECTED:
                self._workers.lose(worker, State.DISCONNECTED, "unroutable")
            return False
        if not sent:  # the peer's pipe is full: backpressure, not death
            self.stats.incr("send_full")
            return False
        worker = self._workers.get(peer)
        if worker is not None:
            worker.last_sent = asyncio.get_running_loop().time()
        return True

    def _spawn(self, coro) -> None:  # type: ignore[no-untyped-def]
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _requests_lost(self, worker: WorkerEntry, lost: set[str], why: str) -> None:
        self._routing.worker_lost(worker, lost, why)  # liveness.py -> routing.py

    def _event(self, worker: WorkerEntry, event: str) -> None:
        if self.on_worker_event is not None:
            try:
                self.on_worker_event(
                    worker.identity.decode(errors="replace"), worker.service, event
                )
            except Exception:
                log.exception("worker event listener failed")
