"""Settings of the Lightning extension (env prefix GATEWAY_LNRPC_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from gwcore.constants import DEFAULT_RUN_DIR, ENV_PREFIX_LNRPC


class LnrpcSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX_LNRPC, extra="ignore")

    backend: Literal["sim", "lnd"] = "sim"
    # unix:PATH, or HOST:PORT (mutual TLS: tls_dir); "" = unix:<run_dir>/lnrpc/extension.sock
    listen: str = ""
    run_dir: Path = Path(DEFAULT_RUN_DIR)
    # TCP only: the folder of `gateway-cli make-extension-certs` (ca.crt, extension.crt/.key)
    tls_dir: str = ""
    reflection: bool = False
    # sim: the regtest world's data dir (regtestd.json) and the node to drive
    sim_regtest_dir: Path = Path(".data/regtest")
    sim_node: str = "gateway"
    # lnd: its gRPC address, TLS certificate and (admin or custom) macaroon
    lnd_host: str = "127.0.0.1:10009"
    lnd_tls_cert: Path = Path("~/.lnd/tls.cert")
    lnd_macaroon: Path = Path("~/.lnd/data/chain/bitcoin/regtest/admin.macaroon")
    log_level: str = "INFO"
