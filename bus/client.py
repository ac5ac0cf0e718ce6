"""The caller side of the bus: a DEALER that sends requests through the broker.

Used by the API front (one client per gunicorn worker, created lazily after fork) and by any
process that calls a service it does not host. The socket is created on first use, never at
construction or import, so a client built before `fork()` is safe.
"""

from __future__ import annotations

import logging
import os
import uuid

import zmq

from gwcore.logging import current_context
from gwproto.bus_pb2 import Envelope

from .aiosocket import AioSocket, plain_context
from .calls import PendingCalls
from .codec import Codec, new_message_id
from .endpoints import configure_socket, endpoint_kind
from .security import CurveClientConfig, apply_client

log = logging.getLogger(__name__)


class BusClient:
    """Request/reply through the broker at `endpoint`."""

    def __init__(
        self,
        endpoint: str,
        *,
        identity: str | None = None,
        ctx: zmq.Context | None = None,
        codec: Codec | None = None,
        curve: CurveClientConfig | None = None,
    ) -> None:
        endpoint_kind(endpoint)
        self.endpoint = endpoint
        self.identity = identity or f"client-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._ctx = plain_context(ctx) if ctx is not None else None
        self.codec = codec or Codec()
        self.stats = self.codec.stats
        self.curve = curve
        self._calls = PendingCalls(self.stats)
        self._sock: AioSocket | None = None
        self._pid = 0

    def _ensure_socket(self) -> AioSocket:
        if self._sock is not None and self._pid == os.getpid():
            return self._sock
        if self._ctx is None or self._pid not in (0, os.getpid()):
            self._ctx = zmq.Context()  # first use, or first use after a fork
        sock = self._ctx.socket(zmq.DEALER)
        configure_socket(sock, max_frame_bytes=self.codec.max_frame_bytes)
        sock.setsockopt(zmq.IDENTITY, self.identity.encode())
        if self.curve is not None:
            apply_client(sock, self.curve)
        sock.connect(self.endpoint)
        self._sock, self._pid = AioSocket(sock, self._on_frames), os.getpid()
        self._sock.start()
        return self._sock

    async def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _on_frames(self, frames: list[bytes]) -> None:
        env = self.codec.from_dealer_frames(frames)
        if env is None:
            return
        if env.WhichOneof("body") in ("reply", "error"):
            self._calls.resolve(env)
        else:
            self.stats.incr("unexpected_bodies")

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
        """Call `method` of `service`; return the reply payload or raise its GatewayError.

        `timeout` bounds the whole call including retries; each attempt waits at most
        `attempt_timeout` (default: timeout / (retries + 1)). Every retry reuses the message id,
        so a non-idempotent request runs at most once. Tracing fields default to the current
        log context.
        """
        sock = self._ensure_socket()
        ctx = current_context()
        env = Envelope(
            message_id=message_id or new_message_id(),
            sender=self.identity,
            federation_id=federation_id or ctx.get("federation_id", ""),
            request_id=request_id or ctx.get("request_id", ""),
            payment_hash=payment_hash or ctx.get("payment_hash", ""),
        )
        env.request.service = service
        env.request.method = method
        env.request.payload = payload
        env.request.idempotent = idempotent

        async def send(e: Envelope) -> None:
            if not await sock.send_wait(self.codec.to_dealer_frames(e), timeout):
                self.stats.incr("send_dropped")  # the attempt will time out and retry

        return await self._calls.call(
            env, send, timeout=timeout, retries=retries, attempt_timeout=attempt_timeout
        )
