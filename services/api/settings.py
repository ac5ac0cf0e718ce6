"""Settings of the API front (env prefix GATEWAY_API_).

Every bus call of a responder is bounded by one of the timeouts here; gunicorn's worker timeout
(`worker_timeout_s`, used by deploy/gunicorn.conf.py) is derived from the longest, with a
margin, so a slow answer is always the bus's clear 504, never a worker killed mid-request.

A request is read whole by the worker's event loop before any thread sees it (services/api/
worker.py): its headers within `header_timeout_s` of the connection (or of a kept-alive one's next
request), its body within `body_timeout_s` after them, else the connection is cut. Clients are
told apart by address (services/api/clients.py): behind a reverse proxy listed in
`trusted_proxies`, by the right-most address in X-Forwarded-For the proxies did not add."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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
    # per client (all workers together), on the public routes (/pay_invoice, LNv2, e-cash):
    # a bucket of `public_burst` requests refilled at `public_rate_per_s`
    public_rate_per_s: float = Field(20.0, gt=0)
    public_burst: int = Field(40, ge=1)
    # wrong admin passwords per client (all workers together) before 429s, and over what window
    password_max_failures: int = Field(10, ge=1)
    password_window_s: float = Field(300.0, gt=0)
    # reverse proxies whose X-Forwarded-For is believed: IPs or CIDRs, comma separated
    # (e.g. "127.0.0.1,::1" for nginx or Caddy on this host); empty: the peer is the client
    trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list
    )
    # reading a request: its headers, then its body; a slower client is cut (408)
    header_timeout_s: float = Field(10.0, gt=0)
    body_timeout_s: float = Field(20.0, gt=0)
    max_header_bytes: int = Field(32 * 1024, ge=4096)
    workers: int = Field(2, ge=1)
    threads: int = Field(8, ge=1)
    log_level: str = "INFO"

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        if isinstance(value, str):
            value = [v for v in value.replace(",", " ").split() if v]
        if isinstance(value, list):
            return [ip_network(str(v).strip(), strict=False) for v in value]
        return value

    def worker_timeout_s(self) -> int:
        """gunicorn's worker timeout: the longest bus call, the bridge's 5 s, and a minute."""
        return int(max(self.bus_timeout_s, self.pay_timeout_s, self.long_timeout_s) + 5 + 60)
