"""Settings of the Lightning extension (env prefix GATEWAY_LNRPC_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from gwcore.constants import ENV_PREFIX_LNRPC


class LnrpcSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX_LNRPC, extra="ignore")

    backend: Literal["sim", "lnd"] = "sim"
    listen: str = "127.0.0.1:8177"
    reflection: bool = False
    tls_cert_path: Path | None = None
    tls_key_path: Path | None = None
    # sim: the regtest world's data dir (regtestd.json) and the node to drive
    sim_regtest_dir: Path = Path(".data/regtest")
    sim_node: str = "gateway"
    # lnd: its gRPC address, TLS certificate and (admin or custom) macaroon
    lnd_host: str = "127.0.0.1:10009"
    lnd_tls_cert: Path = Path("~/.lnd/tls.cert")
    lnd_macaroon: Path = Path("~/.lnd/data/chain/bitcoin/regtest/admin.macaroon")
    log_level: str = "INFO"
