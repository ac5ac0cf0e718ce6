"""Settings of the API front (env prefix GATEWAY_API_).

Every bus call of a responder is bounded by one of the timeouts here; gunicorn's worker timeout
(`worker_timeout_s`, used by deploy/gunicorn.conf.py) is derived from the longest, with a
margin, so a slow answer is always the bus's clear 504, never a worker killed mid-request."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from gwcore.constants import DEFAULT_RUN_DIR, ENV_PREFIX_API


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX_API, extra="ignore")

    bind: str = "127.0.0.1:8175"
    run_dir: Path = Path(DEFAULT_RUN_DIR)
    # bcrypt hash of the admin password (`gateway-cli create-password-hash` makes one)
    password_hash: SecretStr = SecretStr("")
    # signs the dashboard's session cookies; the same in every worker (`make run` makes one)
    session_secret: SecretStr = SecretStr("")
    # mark the dashboard's cookies Secure always (they are anyway when a request comes over HTTPS
    # or through a proxy that forwards `X-Forwarded-Proto: https`)
    secure_cookies: bool = False
    # what Prometheus sends as `Authorization: Bearer ...` for /metrics (the admin password works too)
    metrics_token: SecretStr = SecretStr("")
    metrics_cache_s: float = Field(1.0, ge=0)  # actors are asked at most this often per worker
    bus_timeout_s: float = Field(25.0, gt=0)  # well under gunicorn's worker timeout
    pay_timeout_s: float = Field(100.0, gt=0)
    # connecting a federation (its actor starts and registers) and restoring a backup
    long_timeout_s: float = Field(120.0, gt=0)
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    public_rate_per_s: float = Field(20.0, gt=0)  # per client address, on /pay_invoice
    workers: int = Field(2, ge=1)
    threads: int = Field(8, ge=1)
    log_level: str = "INFO"

    def worker_timeout_s(self) -> int:
        """gunicorn's worker timeout: the longest bus call, the bridge's 5 s, and a minute."""
        return int(max(self.bus_timeout_s, self.pay_timeout_s, self.long_timeout_s) + 5 + 60)
