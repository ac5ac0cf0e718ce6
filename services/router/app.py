"""Builds the router from its settings. So far it is the bus broker; the registry, the Lightning
extension connection and HTLC dispatch arrive with the issue on gatewayd's core."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import zmq.asyncio

from bus import Broker, Codec, CurveKeyPair, CurveServerConfig, HeartbeatPolicy, ipc_endpoint
from bus.endpoints import ensure_run_dir
from gwcore.constants import ROUTER_ENDPOINT_NAME

from .settings import RouterSettings

log = logging.getLogger(__name__)


class Router:
    """The router process's object graph; `run()` serves until SIGTERM/SIGINT."""

    def __init__(self, settings: RouterSettings, broker: Broker) -> None:
        self.settings = settings
        self.broker = broker

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await self.broker.start()
        log.info("router running")
        try:
            await stop.wait()
        finally:
            log.info("router stopping")
            await self.broker.stop()


def create_router(settings: RouterSettings, ctx: zmq.asyncio.Context) -> Router:
    """Factory: the router with its broker bound to ipc (and TCP, when configured)."""
    ensure_run_dir(settings.run_dir)
    endpoints = [ipc_endpoint(settings.run_dir, ROUTER_ENDPOINT_NAME)]
    curve = None
    if settings.tcp_endpoint:
        endpoints.append(settings.tcp_endpoint)
        secret = settings.curve_secret_key.get_secret_value()
        if secret:
            curve = CurveServerConfig(
                CurveKeyPair(settings.curve_public_key, secret),
                frozenset(settings.curve_allowed_clients),
            )
        elif not settings.tcp_endpoint.startswith(("tcp://127.", "tcp://localhost")):
            raise ValueError("a non-loopback tcp_endpoint needs curve_public/secret_key")
    broker = Broker(
        endpoints=endpoints,
        ctx=ctx,
        codec=Codec(max_frame_bytes=settings.max_frame_bytes),
        heartbeat=HeartbeatPolicy(settings.heartbeat_interval_s, settings.heartbeat_liveness),
        curve=curve,
    )
    return Router(settings, broker)
