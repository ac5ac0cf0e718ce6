"""Fixtures for the development federation: a real regtestd process (the chain backend), the
guardian engine in-process with its Falcon API reached through httpx's WSGI transport, and
wallets joined to it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devworld.federation.api import create_api
from devworld.federation.app import build_federation, run_pegout_sender
from devworld.federation.engine import Federation
from devworld.federation.settings import FederationSettings
from devworld.fedlib.api import FederationApi
from devworld.fedlib.client import FederationClient
from devworld.fedlib.tx import encode_invite

BIN = Path(sys.executable).parent


class Regtest:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.proc = subprocess.Popen([str(BIN / "regtestd"), "--data-dir", str(data_dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 20
        while True:
            try:
                self.info = json.loads((data_dir / "regtestd.json").read_text())
                if self.info["pid"] == self.proc.pid:
                    break
            except (OSError, ValueError, KeyError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("regtestd did not start")
            time.sleep(0.05)
        host = self.info["rpc_url"].removeprefix("http://")
        self.rpc_url = f"http://{self.info['rpc_user']}:{self.info['rpc_password']}@{host}"
        self.http = httpx.Client(timeout=30)
        self.miner = self.rpc("getnewaddress", wallet="miner")
        self.rpc("generatetoaddress", 101, self.miner)

    def rpc(self, method: str, *params: Any, wallet: str | None = None) -> Any:
        url = self.info["rpc_url"] + (f"/wallet/{wallet}" if wallet else "/")
        r = self.http.post(url, json={"method": method, "params": list(params), "id": 1},
                           auth=(self.info["rpc_user"], self.info["rpc_password"]))  # fmt: skip
        data = r.json()
        if data.get("error"):
            raise RuntimeError(data["error"])
        return data["result"]

    def mine(self, n: int = 1) -> None:
        self.rpc("generatetoaddress", n, self.miner)

    def send(self, address: str, btc: str) -> str:
        return self.rpc("sendtoaddress", address, btc, wallet="miner")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def regtest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Regtest]:
    r = Regtest(tmp_path_factory.mktemp("regtest") / "rt")
    yield r
    r.stop()


def make_fed(regtest: Regtest, tmp_path: Path, **kw: Any) -> Federation:
    settings = FederationSettings(data_dir=tmp_path / f"fed-{uuid.uuid4().hex[:6]}", chain_rpc=regtest.rpc_url,
                                  name=f"test-{uuid.uuid4().hex[:6]}", **kw)  # fmt: skip
    return build_federation(settings, wait_for_chain=False)


@pytest.fixture
def fed(regtest: Regtest, tmp_path: Path) -> Iterator[Federation]:
    f = make_fed(regtest, tmp_path)
    stop = threading.Event()
    run_pegout_sender(f, stop, interval_s=0.1)
    yield f
    stop.set()
    time.sleep(0.15)
    f.db.close()


def wsgi_api(fed: Federation) -> FederationApi:
    return FederationApi(fed.config["api_url"], http=httpx.Client(transport=httpx.WSGITransport(app=create_api(fed)),
                                                                    base_url=fed.config["api_url"], timeout=30))  # fmt: skip


def join(fed: Federation, path: Path) -> FederationClient:
    return FederationClient.join(
        path, encode_invite(fed.federation_id, fed.config["api_url"]), api=wsgi_api(fed)
    )


def fund(regtest: Regtest, wallet: FederationClient, sats: int) -> int:
    op, address = wallet.deposit_address()
    regtest.send(address, f"{sats / 1e8:.8f}")
    regtest.mine(1)
    return wallet.await_deposit(op, timeout=10)


@pytest.fixture
def alice(fed: Federation, tmp_path: Path) -> FederationClient:
    return join(fed, tmp_path / "alice" / "wallet.sqlite")


@pytest.fixture
def bob(fed: Federation, tmp_path: Path) -> FederationClient:
    return join(fed, tmp_path / "bob" / "wallet.sqlite")
