"""Builds and runs the regtest world from its settings (the `regtestd` process)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
from pathlib import Path

from aiohttp import web

from gwcore.constants import REGTESTD_INFO_FILE

from .api import MINER_WALLET, LightningApi, build_rpc_app
from .chain import Chain
from .lightning import Network
from .payments import Payments
from .rpc import BitcoindRpc
from .settings import RegtestSettings
from .store import WorldDB

log = logging.getLogger(__name__)


class World:
    """The chain, the network, the payment engine and their two HTTP servers."""

    def __init__(self, settings: RegtestSettings, db: WorldDB) -> None:
        self.settings = settings
        self.db = db
        self.chain = Chain(db, fee_rate_sat_vb=settings.fee_rate_sat_vb)
        self.net = Network(db, self.chain)
        self.payments = Payments(self.net, self.chain)
        self.rpc_password = self._secret("rpc_password", settings.rpc_password.get_secret_value())
        self.api_token = self._secret("api_token", settings.api_token.get_secret_value())
        self.rpc = BitcoindRpc(self.chain, settings.rpc_user, self.rpc_password)
        self.api = LightningApi(self.chain, self.net, self.payments, self.api_token)
        self._runners: list[web.AppRunner] = []
        self.rpc_url = self.api_url = ""
        if not self.chain.wallet_exists(MINER_WALLET):
            self.chain.create_wallet(MINER_WALLET)

    def _secret(self, key: str, given: str) -> str:
        if given:
            return given
        stored = self.db.meta(key)
        if stored is None:
            stored = secrets.token_hex(16)
            with self.db.tx():
                self.db.set_meta(key, stored)
        return stored

    @property
    def info_path(self) -> Path:
        return self.settings.data_dir / REGTESTD_INFO_FILE

    def _previous_port(self, key: str) -> int:
        try:
            url = json.loads(self.info_path.read_text())[key]
            return int(url.rsplit(":", 1)[1])
        except (OSError, ValueError, KeyError, IndexError):
            return 0

    async def _serve(self, app: web.Application, port: int, key: str) -> str:
        runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=1.0
        )  # websockets: do not wait
        await runner.setup()
        self._runners.append(runner)
        for candidate in [port] if port else [self._previous_port(key), 0]:
            try:
                site = web.TCPSite(runner, self.settings.host, candidate)
                await site.start()
                break
            except OSError:
                if port or candidate == 0:
                    raise
        host, real_port = runner.addresses[-1][:2]
        return f"http://{host}:{real_port}"

    async def start(self) -> None:
        self.rpc_url = await self._serve(build_rpc_app(self.rpc), self.settings.rpc_port, "rpc_url")
        self.api_url = await self._serve(self.api.app(), self.settings.api_port, "api_url")
        self._write_info()
        log.info(
            "regtestd serving", extra={"fields": {"rpc_url": self.rpc_url, "api_url": self.api_url}}
        )

    def _write_info(self) -> None:
        info = {
            "network": "regtest",
            "pid": os.getpid(),
            "data_dir": str(self.settings.data_dir),
            "rpc_url": self.rpc_url,
            "rpc_user": self.settings.rpc_user,
            "rpc_password": self.rpc_password,
            "api_url": self.api_url,
            "api_token": self.api_token,
            "miner_wallet": MINER_WALLET,
        }
        tmp = self.info_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(info, f, indent=2)
        os.replace(tmp, self.info_path)

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await self.start()
        miner = None
        if self.settings.block_interval_s > 0:
            miner = asyncio.create_task(self._mine_on_timer())
        try:
            await stop.wait()
        finally:
            if miner is not None:
                miner.cancel()
            await self.stop()
            running = list(self.payments._running.values())
            for task in running:  # HTLCs in flight are failed back before the database closes
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            self.db.close()

    async def _mine_on_timer(self) -> None:
        while True:
            await asyncio.sleep(self.settings.block_interval_s)
            self.chain.mine(1, self.chain.new_address(MINER_WALLET))


def create_world(settings: RegtestSettings) -> World:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return World(settings, WorldDB(settings.data_dir / "world.sqlite"))
