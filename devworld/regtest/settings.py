"""Settings of regtestd (env prefix REGTEST_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from gwcore.constants import ENV_PREFIX_REGTEST


class RegtestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX_REGTEST, extra="ignore")

    data_dir: Path
    host: str = "127.0.0.1"
    # 0 = reuse the port of the last run if free, else any free port
    rpc_port: int = Field(0, ge=0, le=65535)
    api_port: int = Field(0, ge=0, le=65535)
    rpc_user: str = "regtest"
    # empty = generated on first start and kept in the database
    rpc_password: SecretStr = SecretStr("")
    api_token: SecretStr = SecretStr("")
    # mine a block every N seconds (0 = only on demand)
    block_interval_s: float = Field(0.0, ge=0)
    fee_rate_sat_vb: int = Field(2, ge=1)
    log_level: str = "INFO"
