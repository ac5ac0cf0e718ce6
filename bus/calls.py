"""Request/reply bookkeeping shared by every caller (the API's client, the broker itself).

A call sends a request envelope, waits for the reply whose correlation id is its message id, and
retries with the *same* message id (so workers can de-duplicate) until it gets an answer, its
retries run out, or its overall deadline passes. Replies nobody waits for (late, unknown, or
extra copies) are dropped and counted as ``late_replies``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gwcore.errors import BusTimeout, InvalidInput, error_from_code
from gwproto.bus_pb2 import Envelope

from .stats import BusStats

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Call:
    """A request as the handler of a worker (or a broker-local service) sees it."""

    message_id: str
    method: str
    payload: bytes
    service: str
    sender: str
    federation_id: str
    request_id: str
    payment_hash: str
    deadline_unix_ms: int
    attempt: int
    idempotent: bool

    @classmethod
    def from_envelope(cls, env: Envelope) -> Call:
        r = env.request
        return cls(
            message_id=env.message_id,
            method=r.method,
            payload=r.payload,
            service=r.service,
            sender=env.sender,
            federation_id=env.federation_id,
            request_id=env.request_id,
            payment_hash=env.payment_hash,
            deadline_unix_ms=env.deadline_unix_ms,
            attempt=r.attempt,
            idempotent=r.idempotent,
        )

    def seconds_left(self) -> float | None:
        if not self.deadline_unix_ms:
            return None
        return self.deadline_unix_ms / 1000 - time.time()


Handler = Callable[[Call], Awaitable[bytes]]


def _expire(fut: asyncio.Future[Envelope]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


class PendingCalls:
    """Futures of calls in flight, keyed by message id. Several calls of one process may wait
    on one message id (two requests for the same payment): one reply answers them all."""

    def __init__(self, stats: BusStats) -> None:
        self.stats = stats
        self._futures: dict[str, list[asyncio.Future[Envelope]]] = {}
        # message id -> (what the calls under it ask, how many such calls run)
        self._active: dict[str, tuple[tuple[str, str, bytes], int]] = {}

    def __len__(self) -> int:
        return sum(len(w) for w in self._futures.values())

    def resolve(self, env: Envelope) -> bool:
        """Hand a reply/error envelope to its waiting calls; False if nobody waits for it."""
        waiting = [f for f in self._futures.get(env.correlation_id, ()) if not f.done()]
        if not waiting:
            self.stats.incr("late_replies")
            return False
        for fut in waiting:
            fut.set_result(env)
        return True

    def _wait(self, mid: str, fut: asyncio.Future[Envelope]) -> None:
        self._futures.setdefault(mid, []).append(fut)

    def _unwait(self, mid: str, fut: asyncio.Future[Envelope]) -> None:
        waiting = self._futures.get(mid)
        if waiting is not None and fut in waiting:
            waiting.remove(fut)
            if not waiting:
                del self._futures[mid]

    async def call(
        self,
        env: Envelope,
        send: Callable[[Envelope], Awaitable[None]],
        *,
        timeout: float,
        retries: int,
        attempt_timeout: float | None = None,
    ) -> bytes:
        """Send `env` (a request) and return the reply payload; raise the remote error."""
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if not env.deadline_unix_ms:
            env.deadline_unix_ms = int((time.time() + timeout) * 1000)
        per_attempt = attempt_timeout or timeout / (retries + 1)
        mid = env.message_id
        asks = (env.request.service, env.request.method, env.request.payload)
        running = self._active.get(mid)
        if running is not None and running[0] != asks:
            # another request under an id in use here: refused before it is sent, so that the
            # broker's refusal (addressed to the id) cannot reach the call already waiting on it
            raise InvalidInput("message id already in use by another request")
        self._active[mid] = (asks, (running[1] if running else 0) + 1)
        try:
            return await self._attempts(env, send, timeout, retries, per_attempt, deadline)
        finally:
            asks, count = self._active[mid]
            if count == 1:
                del self._active[mid]
            else:
                self._active[mid] = (asks, count - 1)

    async def _attempts(
        self,
        env: Envelope,
        send: Callable[[Envelope], Awaitable[None]],
        timeout: float,
        retries: int,
        per_attempt: float,
        deadline: float,
    ) -> bytes:
        loop = asyncio.get_running_loop()
        mid = env.message_id
        attempt = 0
        while attempt <= retries:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            attempt += 1
            env.request.attempt = attempt
            fut: asyncio.Future[Envelope] = loop.create_future()
            self._wait(mid, fut)
            # A bare timer rather than asyncio.wait_for: this is the hot path of every call.
            timer = loop.call_later(min(per_attempt, remaining), _expire, fut)
            try:
                await send(env)
                self.stats.incr("requests_sent")
                reply = await fut
            except TimeoutError:
                self.stats.incr("attempt_timeouts")
                log.debug("bus attempt %d of %s timed out", attempt, env.request.method)
                continue
            finally:
                timer.cancel()
                self._unwait(mid, fut)
            body = reply.WhichOneof("body")
            if body == "reply":
                return reply.reply.payload
            # the sender's own verdict travels with the error: a "not yet, ask again" that
            # outlasts our attempts must reach the caller still retryable, not as a refusal
            err = error_from_code(
                reply.error.code, reply.error.message, retryable=reply.error.retryable
            )
            if reply.error.retryable and attempt <= retries and deadline - loop.time() > 0:
                self.stats.incr("retried_errors")
                await asyncio.sleep(min(0.05 * attempt, max(0.0, deadline - loop.time())))
                continue
            raise err
        raise BusTimeout(
            f"no reply to {env.request.method} for {env.request.service} after {attempt} "
            f"attempt(s) within {timeout:.3g}s"
        )
