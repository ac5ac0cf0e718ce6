"""The worker side of the bus: a DEALER that serves one service (for actors, a federation id).

Life of a worker:

    connect -> READY(service, incarnation) -> serve requests, heartbeat when idle
       ^                                           |
       +---- backoff <- close socket <- broker silent for liveness * interval

Each request runs as its own task (bounded by `max_concurrency`). Non-idempotent requests go
through the `ReplyStore`: a stored reply is replayed instead of running the work again, a
duplicate of a request still running waits for that run, and a fresh reply is committed before
it is sent. Handlers raise `GatewayError`s for definite failures; any other exception becomes an
`internal` error with the exception text (the bus is internal; public APIs redact).

The worker never touches raw frames itself: `bus.codec` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
import uuid

import zmq

from gwcore.constants import METHOD_BUS_PING
from gwcore.errors import DeadlineExceeded, GatewayError
from gwcore.logging import fields, log_context
from gwproto.bus_pb2 import Envelope

from .aiosocket import AioSocket, plain_context
from .calls import Call, Handler
from .codec import Codec, new_message_id
from .dedup import ReplyStore, StoredReply
from .endpoints import HeartbeatPolicy, ReconnectPolicy, configure_socket, endpoint_kind
from .security import CurveClientConfig, apply_client

log = logging.getLogger(__name__)


class Worker:
    """Serves `service` on the broker at `endpoint` with `handler`."""

    def __init__(
        self,
        *,
        endpoint: str,
        service: str,
        handler: Handler,
        ctx: zmq.Context,
        identity: str | None = None,
        codec: Codec | None = None,
        heartbeat: HeartbeatPolicy | None = None,
        reconnect: ReconnectPolicy | None = None,
        store: ReplyStore | None = None,
        curve: CurveClientConfig | None = None,
        max_concurrency: int = 256,
    ) -> None:
        endpoint_kind(endpoint)
        self.endpoint = endpoint
        self.service = service
        self.handler = handler
        self.ctx = plain_context(ctx)
        self.identity = identity or service
        self.codec = codec or Codec()
        self.stats = self.codec.stats
        self.heartbeat = heartbeat or HeartbeatPolicy()
        self.reconnect = reconnect or ReconnectPolicy()
        self.store = store
        self.curve = curve
        self.incarnation = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._slots = asyncio.Semaphore(max_concurrency)
        self._sock: AioSocket | None = None
        self._last_recv = 0.0
        self._last_send = 0.0
        self._inflight: dict[str, asyncio.Future[Envelope]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._main: asyncio.Task[None] | None = None
        self._stopping = False
        self.connections = 0  # how many times we (re)connected

    # --- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        self._main = asyncio.create_task(self._supervise(), name=f"worker:{self.identity}")

    async def stop(self, *, drain_s: float = 5.0) -> None:
        """Say DISCONNECT, let running requests finish (up to `drain_s`), close the socket."""
        self._stopping = True
        if self._sock is not None:
            with contextlib.suppress(zmq.ZMQError, GatewayError):
                self._send_now(self._envelope(disconnect_reason="shutdown"))
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=drain_s)
        for task in (self._main, *self._tasks):
            if task is not None:
                task.cancel()
        if self._main is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._main
        self._close_socket()

    # --- connection ---------------------------------------------------------------------------
    def _open_socket(self) -> None:
        sock = self.ctx.socket(zmq.DEALER)
        configure_socket(sock, max_frame_bytes=self.codec.max_frame_bytes)
        sock.setsockopt(zmq.IDENTITY, self.identity.encode())
        if self.curve is not None:
            apply_client(sock, self.curve)
        sock.connect(self.endpoint)
        self._sock = AioSocket(sock, self._on_frames)
        self._sock.start()
        self.connections += 1

    def _close_socket(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    async def _supervise(self) -> None:
        backoff = self.reconnect.initial_s
        loop = asyncio.get_running_loop()
        while not self._stopping:
            self._open_socket()
            self._last_recv = loop.time()
            self._send_now(self._ready())
            log.info("worker connected", extra=fields(service=self.service, endpoint=self.endpoint))
            while not self._stopping:
                await asyncio.sleep(self.heartbeat.interval_s / 2)
                now = loop.time()
                if now - self._last_recv > self.heartbeat.expiry_s:
                    break
                if now - self._last_recv < self.heartbeat.interval_s:
                    backoff = self.reconnect.initial_s  # healthy: reset the backoff
                if now - self._last_send >= self.heartbeat.interval_s:
                    self._send_now(self._envelope(heartbeat=True))
            if self._stopping:
                return
            self.stats.incr("reconnects")
            log.warning(
                "broker silent, reconnecting",
                extra=fields(
                    service=self.service, silent_s=round(loop.time() - self._last_recv, 2)
                ),
            )
            self._close_socket()
            await asyncio.sleep(backoff * (0.5 + random.random() / 2))
            backoff = min(backoff * 2, self.reconnect.max_s)

    def _on_frames(self, frames: list[bytes]) -> None:
        env = self.codec.from_dealer_frames(frames)
        if env is None:
            return
        self._last_recv = asyncio.get_running_loop().time()
        body = env.WhichOneof("body")
        if body == "request":
            task = asyncio.create_task(self._serve(env))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif body == "disconnect":
            # The broker does not know us (it restarted, or expired us): introduce ourselves.
            self._send_now(self._ready())
        elif body != "heartbeat":
            self.stats.incr("unexpected_bodies")

    def _send_now(self, env: Envelope) -> bool:
        """Send a control message at once; dropped (and counted) if the pipe is full."""
        if self._sock is None or not self._sock.send(self.codec.to_dealer_frames(env)):
            self.stats.incr("send_dropped")
            return False
        self._last_send = asyncio.get_running_loop().time()
        return True

    async def _send(self, env: Envelope) -> None:
        """Send a reply, waiting out a full pipe; a reply lost here is recovered by a retry."""
        sock = self._sock
        if sock is None or not await sock.send_wait(self.codec.to_dealer_frames(env)):
            self.stats.incr("send_dropped")
            return
        self._last_send = asyncio.get_running_loop().time()

    # --- envelopes ----------------------------------------------------------------------------
    def _envelope(self, *, heartbeat: bool = False, disconnect_reason: str = "") -> Envelope:
        env = Envelope(message_id=new_message_id(), sender=self.identity)
        if heartbeat:
            env.heartbeat.SetInParent()
        else:
            env.disconnect.reason = disconnect_reason
        return env

    def _ready(self) -> Envelope:
        env = Envelope(message_id=new_message_id(), sender=self.identity)
        env.ready.service = self.service
        env.ready.incarnation = self.incarnation
        return env

    def _answer(self, req: Envelope) -> Envelope:
        return Envelope(
            message_id=new_message_id(),
            correlation_id=req.message_id,
            sender=self.identity,
            federation_id=req.federation_id,
            request_id=req.request_id,
            payment_hash=req.payment_hash,
        )

    # --- serving ------------------------------------------------------------------------------
    async def _serve(self, req: Envelope) -> None:
        with log_context(
            federation_id=req.federation_id,
            request_id=req.request_id,
            payment_hash=req.payment_hash,
        ):
            try:
                if req.request.idempotent:
                    reply = await self._execute(req)
                else:
                    reply = await self._execute_once(req)
            except Exception:
                log.exception("bus worker failed to answer %s", req.request.method)
                return
            await self._send(reply)

    async def _execute_once(self, req: Envelope) -> Envelope:
        """Run a non-idempotent request; a duplicate arriving meanwhile joins this run."""
        mid = req.message_id
        existing = self._inflight.get(mid)
        if existing is not None:  # a retry of a request we are still working on
            self.stats.incr("duplicates_joined")
            return await asyncio.shield(existing)
        fut: asyncio.Future[Envelope] = asyncio.get_running_loop().create_future()
        self._inflight[mid] = fut
        try:
            reply = await self._execute(req)
            fut.set_result(reply)
            return reply
        except BaseException:
            fut.cancel()
            raise
        finally:
            del self._inflight[mid]

    async def _execute(self, req: Envelope) -> Envelope:
        reply = self._answer(req)
        dedup = self.store is not None and not req.request.idempotent
        if dedup:
            stored = self.store.get(req.message_id)
            if stored is not None:
                self.stats.incr("replayed")
                return self._from_stored(reply, stored)
        if req.deadline_unix_ms and req.deadline_unix_ms < time.time() * 1000:
            self.stats.incr("expired_requests")
            err = DeadlineExceeded(f"{req.request.method} arrived after its deadline")
            reply.error.code, reply.error.message = err.code, err.message
            return reply
        if req.request.method == METHOD_BUS_PING:  # liveness probe: answered by the bus itself
            reply.reply.payload = req.request.payload
            return reply
        call = Call.from_envelope(req)
        async with self._slots:
            try:
                reply.reply.payload = await self.handler(call)
                self.stats.incr("handled")
            except GatewayError as exc:
                reply.error.code, reply.error.message = exc.code, exc.message
                reply.error.retryable = exc.retryable
                self.stats.incr("handled_errors")
            except Exception as exc:
                log.exception("handler of %s raised", call.method)
                reply.error.code, reply.error.message = "internal", f"{type(exc).__name__}: {exc}"
                self.stats.incr("handler_crashes")
        if dedup and not (reply.HasField("error") and reply.error.retryable):
            ours = self._to_stored(req, reply)
            stored = self.store.put(ours)
            if stored != ours:  # another run stored first: its reply is the final one
                reply = self._from_stored(self._answer(req), stored)
        return reply

    @staticmethod
    def _to_stored(req: Envelope, reply: Envelope) -> StoredReply:
        if reply.HasField("error"):
            return StoredReply(
                req.message_id, req.request.method, True, reply.error.message.encode(),
                reply.error.code,
            )  # fmt: skip
        return StoredReply(req.message_id, req.request.method, False, reply.reply.payload, "")

    @staticmethod
    def _from_stored(reply: Envelope, stored: StoredReply) -> Envelope:
        if stored.is_error:
            reply.error.code = stored.error_code
            reply.error.message = stored.payload.decode(errors="replace")
            reply.error.replayed = True
        else:
            reply.reply.payload = stored.payload
            reply.reply.replayed = True
        return reply
