"""Builds the router from its settings: the bus broker, the federation registry, the supervisor
control for actors, and HTLC dispatch from the Lightning extension (gateway.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

import zmq.asyncio

from bus import Broker, Codec, CurveKeyPair, CurveServerConfig, HeartbeatPolicy, ipc_endpoint
from bus.endpoints import ensure_run_dir
from gwcore.constants import (
    BACKUP_SERVICE,
    ENV_PREFIX_ACTOR,
    GATEWAY_SERVICE,
    ROUTER_ENDPOINT_NAME,
)
from gwcore.extension import ExtensionEndpoint
from gwcore.seed import GatewaySeed, read_words_file

from .backups import DataBackups
from .gateway import GatewayCore
from .registry import FederationRegistry
from .settings import RouterSettings
from .supervisor import SupervisorControl

log = logging.getLogger(__name__)


class Router:
    """The router process's object graph; `run()` serves until SIGTERM/SIGINT."""

    def __init__(self, settings: RouterSettings, broker: Broker, core: GatewayCore) -> None:
        self.settings = settings
        self.broker = broker
        self.core = core

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await self.broker.start()
        dispatch = asyncio.create_task(self.core.htlcs.run(), name="route-htlcs")
        actors = asyncio.create_task(self.core.federations.restore_actors(), name="restore-actors")
        log.info("router running")
        try:
            await stop.wait()
        finally:
            log.info("router stopping")
            dispatch.cancel()
            actors.cancel()
            await self.broker.stop()


def create_router(settings: RouterSettings, ctx: zmq.asyncio.Context) -> Router:
    """Factory: the router with its broker bound to ipc (and TCP, when configured)."""
    ensure_run_dir(settings.run_dir)
    # the Lightning extension: its unix socket, or TCP with the gateway's certificate (checked
    # now: a missing file stops the router at startup with the reason)
    extension = ExtensionEndpoint.parse(
        settings.lnrpc_address, settings.lnrpc_tls_dir, run_dir=settings.run_dir
    )
    extension.check_client()
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
    registry = FederationRegistry(settings.data_dir / "router.sqlite")
    # the gateway's seed: made now at the first start (or the operator's words taken); actors
    # read it from the data folder, never from their environment
    words = read_words_file(Path(settings.seed_words_file)) if settings.seed_words_file else None
    seed = GatewaySeed.load_or_create(settings.data_dir, words)
    supervisor_url = os.environ.get("SUPERVISOR_SERVER_URL", "")
    supervisor = (
        SupervisorControl(supervisor_url, settings.run_dir / "conf.d")
        if supervisor_url.startswith("unix://")
        else None
    )
    actor_env = {
        f"{ENV_PREFIX_ACTOR}RUN_DIR": str(settings.run_dir.resolve()),
        f"{ENV_PREFIX_ACTOR}DATA_DIR": str(settings.data_dir.resolve()),
        f"{ENV_PREFIX_ACTOR}LNRPC_ADDRESS": extension.address,
        f"{ENV_PREFIX_ACTOR}LNRPC_TLS_DIR": str(extension.tls_dir or ""),
        f"{ENV_PREFIX_ACTOR}PUBLIC_API_URL": settings.public_api_url,
        f"{ENV_PREFIX_ACTOR}BITCOIND_URL": settings.bitcoind_url,
        f"{ENV_PREFIX_ACTOR}BITCOIND_USERNAME": settings.bitcoind_username,
        f"{ENV_PREFIX_ACTOR}BITCOIND_PASSWORD_FILE": settings.bitcoind_password_file,
        f"{ENV_PREFIX_ACTOR}ESPLORA_URL": settings.esplora_url,
    }
    core = GatewayCore(
        broker,
        registry,
        supervisor,
        extension=extension,
        actor_env=actor_env,
        config_timeout_s=settings.connect_config_timeout_s,
        max_connects=settings.max_concurrent_connects,
        seed=seed,
    )
    broker.serve_local(GATEWAY_SERVICE, core.handle)
    broker.serve_local(BACKUP_SERVICE, DataBackups(settings.data_dir, settings.run_dir).handle)
    return Router(settings, broker, core)
