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
    log_level: str = "INFO"
