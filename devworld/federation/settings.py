"""Settings of guardiand (env prefix FED_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from gwcore.constants import ENV_PREFIX_FEDERATION


class FederationSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX_FEDERATION, extra="ignore")

    data_dir: Path
    name: str = "dev federation"
    # bitcoind-compatible JSON-RPC with credentials: http://user:password@127.0.0.1:18443
    chain_rpc: SecretStr
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535)  # 0: keep the port chosen on first start
    deposit_confirmations: int = Field(1, ge=0)
    input_fee_msat: int = Field(0, ge=0)
    output_fee_msat: int = Field(0, ge=0)
    max_body_bytes: int = Field(1 << 20, ge=1024)
    threads: int = Field(16, ge=2, le=256)
    log_level: str = "INFO"
