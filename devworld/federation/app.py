"""Builds the guardian from its settings and serves it with gunicorn (`guardiand`).

Start-up (in the gunicorn master): open the database (creating the federation's keys on first
start), keep the API port chosen on first start (the invite code carries the URL), create or
load the federation's wallet on the chain backend (waiting for it: processes start in any
order), write `DIR/federation.json`. Then gunicorn forks one worker (threads serve requests and
long-polls), which builds the engine again from the same database and runs the peg-out sender.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from pathlib import Path

import falcon
import gunicorn.app.base

from devworld.fedlib.tx import encode_invite
from gwcore.constants import FEDERATION_INFO_FILE

from .api import create_api
from .chain import ChainError, ChainRpc
from .engine import Federation
from .settings import FederationSettings
from .store import FedDB

log = logging.getLogger(__name__)


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def build_federation(settings: FederationSettings, *, wait_for_chain: bool = True) -> Federation:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = FedDB(settings.data_dir / "federation.sqlite")
    port = settings.port or int(db.meta("port") or 0) or _free_port(settings.host)
    db.set_meta("port", str(port))
    wallet = db.meta("wallet")
    fed = Federation(
        db,
        ChainRpc(settings.chain_rpc.get_secret_value(), wallet or "pending"),
        name=settings.name,
        api_url=f"http://{settings.host}:{port}",
        deposit_confirmations=settings.deposit_confirmations,
        input_fee_msat=settings.input_fee_msat,
        output_fee_msat=settings.output_fee_msat,
    )
    if wallet is None:
        wallet = f"fed-{fed.federation_id[:16]}"
        db.set_meta("wallet", wallet)
    fed.chain.wallet = wallet
    delay = 0.2
    while True:
        try:
            fed.chain.ensure_wallet()
            break
        except ChainError as exc:
            if not wait_for_chain:
                raise
            log.warning("chain backend not ready: %s", exc.message)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
    return fed


def write_info(fed: Federation, data_dir: Path) -> dict:
    info = {
        "federation_id": fed.federation_id,
        "name": fed.name,
        "api_url": fed.config["api_url"],
        "invite_code": encode_invite(fed.federation_id, fed.config["api_url"]),
        "pid": os.getpid(),
    }
    tmp = data_dir / (FEDERATION_INFO_FILE + ".tmp")
    tmp.write_text(json.dumps(info, indent=2))
    os.replace(tmp, data_dir / FEDERATION_INFO_FILE)
    return info


def run_pegout_sender(
    fed: Federation, stop: threading.Event, interval_s: float = 0.5
) -> threading.Thread:
    def loop() -> None:
        while not stop.wait(interval_s):
            try:
                fed.send_pending_pegouts()
            except Exception:
                log.exception("peg-out sender failed")

    t = threading.Thread(target=loop, name="pegout-sender", daemon=True)
    t.start()
    return t


def create_app(settings: FederationSettings) -> falcon.App:
    """The WSGI app for one gunicorn worker, with its engine and peg-out sender."""
    fed = build_federation(settings)
    run_pegout_sender(fed, threading.Event())
    return create_api(fed, max_body_bytes=settings.max_body_bytes)


class GuardianServer(gunicorn.app.base.BaseApplication):
    def __init__(self, settings: FederationSettings, port: int) -> None:
        self.settings = settings
        self.port = port
        super().__init__()

    def load_config(self) -> None:
        self.cfg.set("bind", f"{self.settings.host}:{self.port}")
        self.cfg.set("workers", 1)
        self.cfg.set("worker_class", "gthread")
        self.cfg.set("threads", self.settings.threads)
        self.cfg.set("timeout", 120)  # long-polls wait up to 60 s
        self.cfg.set("graceful_timeout", 10)
        self.cfg.set("accesslog", None)
        self.cfg.set("errorlog", "-")
        self.cfg.set("loglevel", self.settings.log_level.lower())
        self.cfg.set("proc_name", f"guardiand {self.settings.name}")
        self.cfg.set("control_socket_disable", True)  # one per federation would collide

    def load(self) -> falcon.App:
        return create_app(self.settings)
