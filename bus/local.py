"""Services the broker's own process answers instead of forwarding (`Broker.serve_local`): the
built-in "bus" service (the liveness report: `liveness_report`), and the router's "gateway"
service. Each call runs as its own task; a
retry of a call still being served (the same message id) joins it and gets its answer, so a
non-idempotent call (a connect) runs once, however slow."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from gwcore.errors import GatewayError
from gwproto.bus_pb2 import Envelope, LivenessReport

from .calls import Call, Handler
from .forwards import WorkerEntry
from .stats import BusStats

log = logging.getLogger(__name__)


class LocalServices:
    """`answer_to(request)`: an empty answer envelope; `deliver(client, answer)`: send it
    (client None: the broker's own call); `spawn(coroutine)`: run it as a task."""

    def __init__(
        self,
        stats: BusStats,
        answer_to: Callable[[Envelope], Envelope],
        deliver: Callable[[bytes | None, Envelope], None],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        self.stats, self._answer_to, self._deliver, self._spawn = stats, answer_to, deliver, spawn
        self._handlers: dict[str, Handler] = {}
        self._waiting: dict[str, list[bytes | None]] = {}  # message id -> its clients

    def add(self, service: str, handler: Handler) -> None:
        self._handlers[service] = handler

    def take(self, client: bytes | None, env: Envelope) -> bool:
        """Serve the request here if its service is local (True), or say it is not (False)."""
        handler = self._handlers.get(env.request.service)
        if handler is None:
            return False
        waiting = self._waiting.get(env.message_id)
        if waiting is not None:  # a retry of a call still being served: it waits for its answer
            if client not in waiting:
                waiting.append(client)
            self.stats.incr("joined_duplicates")
            return True
        self._waiting[env.message_id] = [client]
        self._spawn(self._serve(handler, env))
        return True

    async def _serve(self, handler: Handler, env: Envelope) -> None:
        answer = self._answer_to(env)
        try:
            answer.reply.payload = await handler(Call.from_envelope(env))
        except GatewayError as exc:
            answer.error.code, answer.error.message = exc.code, exc.message
            answer.error.retryable = exc.retryable
        except Exception as exc:
            log.exception("broker-local handler of %s raised", env.request.method)
            answer.error.code, answer.error.message = "internal", f"{type(exc).__name__}: {exc}"
        for client in self._waiting.pop(env.message_id, []):
            self._deliver(client, answer)


def liveness_report(
    workers: Iterable[WorkerEntry], stats: BusStats, started_ms: int, now: float
) -> LivenessReport:
    """The bus service's liveness report: every worker (by service, then identity) and the
    broker's counters; `now` on the event loop's clock (the workers' `last_seen`)."""
    report = LivenessReport(broker_started_unix_ms=started_ms)
    for w in sorted(workers, key=lambda w: (w.service, w.identity)):
        report.workers.add(
            identity=w.identity.decode(errors="replace"),
            service=w.service,
            state=w.state,
            incarnation=w.incarnation,
            last_seen_age_s=round(now - w.last_seen, 3),
            ready_since_unix_ms=w.ready_since_ms,
            in_flight=len(w.in_flight),
            requests_forwarded=w.forwarded,
        )
    for name, value in stats.snapshot().items():
        report.counters[name] = value
    return report
