"""A ZeroMQ socket driven by asyncio reader callbacks: no future, no task per message.

Why not `zmq.asyncio` sockets: they wrap every receive in a Future and several loop turns (plus
enum arithmetic on every event check), which measured ~30 us per hop on this machine, a third of
the bare pyzmq round trip by itself (see docs/architecture.md and bench/bus_rtt.py). This class
keeps the pattern those sockets use inside (the socket's ZMQ_FD registered with the loop), and
nothing more:

* ZMQ_FD is edge-triggered: after *any* operation on the socket, pending input must be drained
  (checked with ZMQ_EVENTS), or the loop may never be woken for it. `_drain` loops until
  ZMQ_EVENTS has no POLLIN; `send` schedules a drain when input is pending after it.
* Received messages are handed to `on_frames`, synchronously, in order. It must not block.
* Sends never block: a full pipe (EAGAIN) is reported to the caller (`send` returns False), or
  waited out in small sleeps by `send_wait`. ROUTER_MANDATORY errors (EHOSTUNREACH) propagate.

It works with any context: an asyncio context is shadowed as a plain one (same libzmq context).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import zmq

log = logging.getLogger(__name__)

_POLLIN = int(zmq.POLLIN)
_EVENTS = int(zmq.EVENTS)
_NOBLOCK = int(zmq.NOBLOCK)


def plain_context(ctx: zmq.Context) -> zmq.Context:
    """A plain (blocking-API) view of `ctx`, sharing its libzmq context."""
    if type(ctx) is zmq.Context:
        return ctx
    return zmq.Context.shadow(ctx.underlying)


class AioSocket:
    """Wraps a plain `zmq.Socket`; call `start()` inside the running loop, `close()` when done."""

    def __init__(self, sock: zmq.Socket, on_frames: Callable[[list[bytes]], None]) -> None:
        self.sock = sock
        self.on_frames = on_frames
        self._fd = sock.getsockopt(zmq.FD)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_scheduled = False
        self.closed = False

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._fd, self._drain)
        self._schedule_drain()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._loop is not None:
            self._loop.remove_reader(self._fd)
        self.sock.close(linger=0)

    # --- receiving ----------------------------------------------------------------------------
    def _schedule_drain(self) -> None:
        if not self._drain_scheduled and self._loop is not None:
            self._drain_scheduled = True
            self._loop.call_soon(self._drain)

    def _drain(self) -> None:
        self._drain_scheduled = False
        sock = self.sock
        while not self.closed:
            try:
                if not sock.getsockopt(_EVENTS) & _POLLIN:
                    return
                frames = sock.recv_multipart(_NOBLOCK)
            except zmq.Again:
                return
            except zmq.ZMQError as exc:
                if not self.closed:
                    log.error("bus socket receive failed: %s", exc)
                return
            try:
                self.on_frames(frames)
            except Exception:  # one bad message must not stop the socket
                log.exception("bus message handler raised")

    # --- sending ------------------------------------------------------------------------------
    def send(self, frames: list[bytes]) -> bool:
        """Send at once; False if the peer's pipe is full. Raises other ZMQErrors."""
        if self.closed:
            return False
        try:
            self.sock.send_multipart(frames, _NOBLOCK)
        except zmq.Again:
            return False
        finally:
            # the send may have consumed the FD's edge while input arrived: look again
            if not self.closed and self.sock.getsockopt(_EVENTS) & _POLLIN:
                self._schedule_drain()
        return True

    async def send_wait(self, frames: list[bytes], timeout: float = 5.0) -> bool:
        """Send, waiting out a full pipe for up to `timeout` seconds; False if it stays full."""
        if self.send(frames):
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = 0.0005
        while loop.time() < deadline and not self.closed:
            await asyncio.sleep(delay)
            if self.send(frames):
                return True
            delay = min(delay * 2, 0.05)
        return False
