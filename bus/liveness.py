"""The broker's table of workers and their liveness (bus/broker.py): who said READY for which
service and incarnation, when each was last heard from and last sent to, and the worker state
machine. It owns every move of a worker's state and nothing else: it sends nothing and answers
no request; a worker lost hands its requests in flight to `on_lost` (the broker answers them).

Worker states (see `WorkerStatus.State` in proto/bus.proto):

    (unknown) --READY--> ALIVE --silent for liveness*interval--> EXPIRED --any message--> ALIVE
                           |  \\--DISCONNECT / unroutable--> DISCONNECTED --READY--> ALIVE
                           +--READY with a new incarnation: requests in flight are lost-->ALIVE

Moves: `ready` (READY), `heard` (any other message from it: EXPIRED -> ALIVE), `lose` (to
EXPIRED or DISCONNECTED, by the broker: heartbeat expired, DISCONNECT, unroutable).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from gwcore.logging import fields
from gwproto.bus_pb2 import WorkerStatus

from .forwards import WorkerEntry

log = logging.getLogger(__name__)

State = WorkerStatus.State
WorkerEvent = Callable[[str, str, str], None]  # (identity, service, event)


class WorkerTable:
    """Workers by identity. `event(worker, what)`: tell the broker's listener of a move;
    `on_lost(worker, message ids, why)`: the requests in flight to a worker just lost."""

    def __init__(
        self,
        event: Callable[[WorkerEntry, str], None],
        on_lost: Callable[[WorkerEntry, set[str], str], None],
    ) -> None:
        self._workers: dict[bytes, WorkerEntry] = {}
        self._event, self._on_lost = event, on_lost

    def get(self, peer: bytes) -> WorkerEntry | None:
        return self._workers.get(peer)

    def values(self) -> list[WorkerEntry]:
        return list(self._workers.values())

    def alive(self, service: str) -> list[WorkerEntry]:
        """The live workers of `service`."""
        return [
            w for w in self._workers.values() if w.service == service and w.state == State.ALIVE
        ]

    def live_services(self) -> set[str]:
        return {w.service for w in self._workers.values() if w.state == State.ALIVE}

    def ready(self, peer: bytes, service: str, incarnation: str, now: float) -> None:
        """READY from `peer`: a new worker, one back after a disconnect, or a restarted one
        (another incarnation or service: its requests in flight are lost)."""
        worker = self._workers.get(peer)
        if worker is not None and (worker.incarnation != incarnation or worker.service != service):
            self.lose(worker, State.DISCONNECTED, "restarted")
            worker = None
        if worker is None or worker.state == State.DISCONNECTED:
            worker = WorkerEntry(peer, service, incarnation, ready_since_ms=int(time.time() * 1000))
            self._workers[peer] = worker
            self._event(worker, "ready")
            log.info(
                "worker ready", extra=fields(worker=peer.decode(errors="replace"), service=service)
            )
        worker.state = State.ALIVE
        worker.last_seen = now

    def heard(self, worker: WorkerEntry, now: float) -> bool:
        """Any message from the worker but a request: it lives. True if it was expired (revived:
        its service's queue may drain)."""
        worker.last_seen = now
        if worker.state == State.EXPIRED:
            worker.state = State.ALIVE
            self._event(worker, "revived")
            return True
        return False

    def lose(self, worker: WorkerEntry, state: int, why: str) -> None:
        """Move the worker to EXPIRED or DISCONNECTED; its requests in flight go to `on_lost`."""
        worker.state = state
        self._event(worker, why)
        log.warning(
            "worker lost",
            extra=fields(worker=worker.identity.decode(errors="replace"), service=worker.service,
                         why=why, in_flight=len(worker.in_flight)),
        )  # fmt: skip
        lost, worker.in_flight = worker.in_flight, set()
        self._on_lost(worker, lost, why)
