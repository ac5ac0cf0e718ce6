"""Intercepted HTLCs between the node and the gateway: buffered, delivered, completed once.

    node --intercepted()--> HtlcHub --RouteHtlcs stream--> the gateway (one subscriber at a time)
    the gateway --CompleteHtlc--> HtlcHub --backend.complete()--> node

HTLC states here:  held --(sent on the stream)--> offered --CompleteHtlc--> completed
A held or offered HTLC that is not completed is offered again to the next subscriber (the
gateway must not lose one when its stream drops). The buffer is bounded; an HTLC that arrives
when it is full, or whose incoming expiry is too near, is failed back at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from .backend import BackendError, HtlcAction, InterceptedHtlc, LightningBackend

log = logging.getLogger(__name__)


class AlreadySubscribed(Exception):
    pass


class UnknownHtlc(Exception):
    pass


class HtlcHub:
    def __init__(self, backend: LightningBackend, *, max_held: int = 10_000) -> None:
        self.backend = backend
        self.max_held = max_held
        self._held: dict[tuple[int, int], InterceptedHtlc] = {}
        self._completing: set[tuple[int, int]] = set()
        self._queue: asyncio.Queue[InterceptedHtlc] | None = None
        self._pump: asyncio.Task[None] | None = None
        self.completed = 0

    def start(self) -> None:
        self._pump = asyncio.create_task(self._run(), name="htlc-hub")

    async def stop(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump

    async def _run(self) -> None:
        async for htlc in self.backend.intercepted():
            if htlc.key in self._held:
                continue  # redelivered by the node after a reconnect: we have it
            if len(self._held) >= self.max_held:
                log.warning("interception buffer full: failing an HTLC back")
                with contextlib.suppress(BackendError):
                    await self.backend.complete(htlc, HtlcAction.FAIL, failure_code=0x2002)
                continue
            self._held[htlc.key] = htlc
            if self._queue is not None:
                self._queue.put_nowait(htlc)

    def held(self) -> list[InterceptedHtlc]:
        return list(self._held.values())

    async def subscribe(self) -> AsyncIterator[InterceptedHtlc]:
        """The RouteHtlcs stream: every HTLC held now, then each new one."""
        if self._queue is not None:
            raise AlreadySubscribed("RouteHtlcs already has a subscriber")
        queue: asyncio.Queue[InterceptedHtlc] = asyncio.Queue()
        for htlc in self._held.values():
            queue.put_nowait(htlc)
        self._queue = queue
        try:
            while True:
                htlc = await queue.get()
                if htlc.key in self._held:
                    yield htlc
        finally:
            self._queue = None

    async def complete(
        self,
        chan_id: int,
        htlc_id: int,
        action: HtlcAction,
        *,
        preimage: bytes = b"",
        failure_code: int = 0x400F,
    ) -> None:
        key = (chan_id, htlc_id)
        htlc = self._held.get(key)
        if htlc is None or key in self._completing:
            raise UnknownHtlc(f"no HTLC {chan_id}/{htlc_id} awaits completion")
        self._completing.add(key)
        try:
            await self.backend.complete(htlc, action, preimage=preimage, failure_code=failure_code)
        except BackendError as exc:
            if (
                not exc.retryable and not exc.invalid_input
            ):  # the node no longer holds it: forget it
                self._held.pop(key, None)
            raise
        finally:
            self._completing.discard(key)
        self._held.pop(key, None)
        self.completed += 1
