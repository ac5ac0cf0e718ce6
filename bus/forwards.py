"""What the broker keeps per worker and per request in flight (the tables of bus/liveness.py
and bus/routing.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from gwproto.bus_pb2 import Envelope, WorkerStatus

State = WorkerStatus.State


@dataclass
class WorkerEntry:
    identity: bytes
    service: str
    incarnation: str
    state: int = State.ALIVE
    last_seen: float = 0.0
    last_sent: float = 0.0
    ready_since_ms: int = 0
    in_flight: set[str] = field(default_factory=set)
    forwarded: int = 0


@dataclass(eq=False)
class Forward:
    """A request the broker passed on; `client` is None for the broker's own calls."""

    client: bytes | None
    env: Envelope
    raw: bytes
    deadline: float  # loop time
    worker: bytes | None = None
    timer: asyncio.TimerHandle | None = None  # while queued: answers service_unavailable
    # other clients that sent the very same request (same id, service, method, payload) while
    # this one was in flight: they wait for its answer instead of displacing it
    also: list[bytes | None] = field(default_factory=list)

    def clients(self) -> list[bytes | None]:
        return [self.client, *self.also]

    def same_request(self, env: Envelope) -> bool:
        r, o = self.env.request, env.request
        return (r.service, r.method, r.payload) == (o.service, o.method, o.payload)
