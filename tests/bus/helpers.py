"""Small helpers for bus tests: wait for a condition, a raw DEALER peer for protocol tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import zmq
import zmq.asyncio

from bus.codec import Codec, new_message_id
from gwproto.bus_pb2 import Envelope


async def wait_for(cond: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.01)


class RawPeer:
    """A bare DEALER speaking the bus protocol by hand, to play misbehaving peers."""

    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str, identity: str) -> None:
        self.codec = Codec()
        self.identity = identity
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.IDENTITY, identity.encode())
        self.sock.connect(endpoint)

    def envelope(self) -> Envelope:
        return Envelope(message_id=new_message_id(), sender=self.identity)

    async def send(self, env: Envelope) -> None:
        await self.sock.send_multipart(self.codec.to_dealer_frames(env))

    async def send_raw(self, frames: list[bytes]) -> None:
        await self.sock.send_multipart(frames)

    async def recv(self, timeout: float = 2.0) -> Envelope:
        frames = await asyncio.wait_for(self.sock.recv_multipart(), timeout)
        env = self.codec.from_dealer_frames(frames)
        assert env is not None
        return env

    async def recv_body(self, body: str, timeout: float = 2.0) -> Envelope:
        """Next envelope with this body kind, skipping heartbeats and others."""
        deadline = time.monotonic() + timeout
        while True:
            env = await self.recv(max(0.01, deadline - time.monotonic()))
            if env.WhichOneof("body") == body:
                return env

    def close(self) -> None:
        self.sock.close(linger=0)
