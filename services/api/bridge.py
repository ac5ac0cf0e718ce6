"""The bus from gunicorn's threads: a private event loop in one thread per worker process,
started on first use (after fork), running one BusClient. Responders call `call(...)`, which
blocks their thread until the reply or the timeout."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

from bus import BusClient
from gwcore.errors import BusTimeout


class BusBridge:
    def __init__(self, endpoint: str, *, identity_prefix: str = "api") -> None:
        self.endpoint = endpoint
        self.identity_prefix = identity_prefix
        self._lock = threading.Lock()
        self._pid = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: BusClient | None = None

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="bus-bridge", daemon=True).start()
                self._loop, self._pid = loop, os.getpid()
                self._client = BusClient(
                    self.endpoint, identity=f"{self.identity_prefix}-{os.getpid()}"
                )
            return self._loop

    def call(
        self, service: str, method: str, payload: bytes, *, timeout: float, **kwargs: Any
    ) -> bytes:
        loop = self._ensure()
        assert self._client is not None
        fut = asyncio.run_coroutine_threadsafe(
            self._client.request(service, method, payload, timeout=timeout, **kwargs), loop
        )
        try:
            return fut.result(timeout + 5)
        except TimeoutError:  # the bus's own timeout should have come first: the loop is stuck
            fut.cancel()
            raise BusTimeout(f"{service}: no answer within {timeout + 5:.0f} s") from None
