"""The broker's requests (bus/broker.py): each request served locally, forwarded to a live worker
of its service, or queued until one says READY; each answer routed back to its callers by
correlation id. It owns the table of requests in flight (`forwards`, by message id) and the
queues of services with no live worker (`queues`), and nothing of the socket or the workers'
states (bus/liveness.py).

A request's life: arrived after its deadline -> `deadline_exceeded`; for a broker-local service
-> served here (bus/local.py); else forwarded to the live worker with the fewest requests in
flight, or queued and answered `service_unavailable` just before its deadline if no worker comes.
Its answer goes to its client and to every other client that sent the very same request (same
id, service, method, payload) meanwhile; another request under an id in flight is refused; a
retry by its own client replaces the old copy. A worker lost answers its requests `worker_lost`
(retryable, so callers retry at once rather than wait for their timeout).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from gwcore.errors import (
    DeadlineExceeded,
    GatewayError,
    InvalidInput,
    ServiceUnavailable,
    WorkerLost,
)
from gwproto.bus_pb2 import Envelope

from .forwards import Forward, WorkerEntry
from .liveness import WorkerTable
from .local import LocalServices
from .stats import BusStats

Send = Callable[[bytes, bytes], bool]  # (peer, envelope bytes) -> sent
AnswerError = Callable[[bytes | None, Envelope, GatewayError], None]  # (client, request, error)


class RequestRouting:
    """`send(peer, raw)`: one envelope to a peer, False if it cannot be delivered;
    `answer_error(client, request, error)`; `resolve(answer)`: an answer to the broker's own
    call (client None)."""

    def __init__(
        self,
        workers: WorkerTable,
        local: LocalServices,
        stats: BusStats,
        send: Send,
        answer_error: AnswerError,
        resolve: Callable[[Envelope], None],
        *,
        max_queued: int,
        default_deadline_s: float,
    ) -> None:
        self._workers, self._local, self.stats = workers, local, stats
        self._send, self._answer_error, self._resolve = send, answer_error, resolve
        self.max_queued = max_queued
        self.default_deadline_s = default_deadline_s
        self.forwards: dict[str, Forward] = {}
        self.queues: dict[str, deque[Forward]] = {}

    def route(self, client: bytes | None, env: Envelope, raw: bytes) -> None:
        """Serve locally, forward to a live worker, or queue until one is ready."""
        loop = asyncio.get_running_loop()
        service = env.request.service
        if env.deadline_unix_ms:
            left = env.deadline_unix_ms / 1000 - time.time()
        else:
            left = self.default_deadline_s
        if left <= 0:
            self.stats.incr("expired_requests")
            self._answer_error(client, env, DeadlineExceeded("request arrived after its deadline"))
            return
        if self._local.take(client, env):  # a broker-local service (local.py)
            return
        fwd = Forward(client, env, raw, loop.time() + left)
        previous = self.forwards.get(env.message_id)
        if previous is not None and not previous.same_request(env):
            # another request under an id in flight: refused, it never displaces the first
            self.stats.incr("conflicting_ids")
            self._answer_error(
                client, env, InvalidInput("message id already in use by another request")
            )
            return
        if previous is not None and previous.client != client:
            # the same request from another client: it waits for the answer of the first, for
            # as long as the longest-waiting of them
            if client not in previous.also:
                previous.also.append(client)
            if fwd.deadline > previous.deadline:
                previous.deadline = fwd.deadline
                if previous.timer is not None:  # still queued: answer before the new deadline
                    previous.timer.cancel()
                    margin = min(0.05, left * 0.1)
                    previous.timer = loop.call_later(
                        max(0.0, left - margin), self._expire_queued, previous
                    )
            self.stats.incr("joined_duplicates")
            return
        if previous is not None:  # a retry by its own client: forget the old copy
            fwd.also = previous.also
            fwd.deadline = max(fwd.deadline, previous.deadline)
            if previous.timer is not None:  # it was queued: out of the queue with its timer
                previous.timer.cancel()
                queue = self.queues.get(service)
                if queue is not None and previous in queue:
                    queue.remove(previous)
            old = self._workers.get(previous.worker) if previous.worker is not None else None
            if old is not None:
                old.in_flight.discard(env.message_id)
        self.forwards[env.message_id] = fwd
        if not self._forward(fwd):
            queue = self.queues.setdefault(service, deque())
            if len(queue) >= self.max_queued:
                del self.forwards[env.message_id]
                self.stats.incr("queue_overflow")
                for waiting in fwd.clients():
                    self._answer_error(waiting, env, ServiceUnavailable(f"{service}: queue full"))
                return
            queue.append(fwd)
            # Answer just before the caller's deadline, so it learns why rather than timing out.
            left = fwd.deadline - loop.time()  # a retry keeps the longest wait of its clients
            margin = min(0.05, left * 0.1)
            fwd.timer = loop.call_later(max(0.0, left - margin), self._expire_queued, fwd)
            self.stats.incr("queued")

    def answer(self, peer: bytes, env: Envelope, raw: bytes) -> None:
        """A reply or error from worker `peer`: to every client of its request."""
        fwd = self.forwards.get(env.correlation_id)
        if fwd is None or fwd.worker != peer:
            self.stats.incr("late_replies")
            return
        del self.forwards[env.correlation_id]
        worker = self._workers.get(peer)
        if worker is not None:
            worker.in_flight.discard(env.correlation_id)
        for client in fwd.clients():
            if client is None:
                self._resolve(env)
            else:
                self._send(client, raw)
                self.stats.incr("replies_forwarded")

    def _forward(self, fwd: Forward) -> bool:
        """Send to the live worker of the service with the fewest requests in flight."""
        candidates = self._workers.alive(fwd.env.request.service)
        while candidates:
            worker = min(candidates, key=lambda w: len(w.in_flight))
            fwd.worker = worker.identity
            if self._send(worker.identity, fwd.raw):
                worker.in_flight.add(fwd.env.message_id)
                worker.forwarded += 1
                self.stats.incr("requests_forwarded")
                return True
            candidates.remove(worker)
        fwd.worker = None
        return False

    def drain(self, service: str) -> None:
        """Forward the service's queued requests while a live worker takes them."""
        queue = self.queues.get(service)
        while queue:
            fwd = queue[0]
            if self.forwards.get(fwd.env.message_id) is not fwd:  # superseded by a retry
                queue.popleft()
                continue
            if not self._forward(fwd):
                return
            queue.popleft()
            if fwd.timer is not None:
                fwd.timer.cancel()
                fwd.timer = None  # not queued any more

    # --- losing workers, expiring requests ----------------------------------------------------
    def worker_lost(self, worker: WorkerEntry, lost: set[str], why: str) -> None:
        """Answer the requests that were in flight to a lost worker `worker_lost`."""
        for mid in lost:
            fwd = self.forwards.pop(mid, None)
            if fwd is not None:
                self.stats.incr("requests_lost")
                for client in fwd.clients():
                    self._answer_error(client, fwd.env, WorkerLost(f"{worker.service}: {why}"))

    def _expire_queued(self, fwd: Forward) -> None:
        service = fwd.env.request.service
        queue = self.queues.get(service)
        if queue is not None and fwd in queue:
            queue.remove(fwd)
        if self.forwards.get(fwd.env.message_id) is fwd and fwd.worker is None:
            del self.forwards[fwd.env.message_id]
            self.stats.incr("unavailable")
            for client in fwd.clients():
                self._answer_error(
                    client, fwd.env, ServiceUnavailable(f"no live worker for {service}")
                )

    def sweep(self, now: float, grace_s: float) -> None:
        """Forget forwarded requests whose callers gave up `grace_s` ago (no answer came)."""
        for mid, fwd in list(self.forwards.items()):
            if fwd.worker is not None and fwd.deadline + grace_s < now:
                del self.forwards[mid]  # its caller gave up long ago
                w = self._workers.get(fwd.worker)
                if w is not None:
                    w.in_flight.discard(mid)
                self.stats.incr("forwards_expired")
