"""Settings of the router process (env prefix GATEWAY_ROUTER_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from gwcore.constants import (
    DEFAULT_HEARTBEAT_INTERVAL_S,
    DEFAULT_HEARTBEAT_LIVENESS,
    DEFAULT_MAX_FRAME_BYTES,
    DEFAULT_RUN_DIR,
    ENV_PREFIX_ROUTER,
)


class RouterSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX_ROUTER, extra="ignore")

    run_dir: Path = Field(Path(DEFAULT_RUN_DIR), description="private dir for bus sockets")
    # Extra TCP endpoint for actors on other hosts, e.g. tcp://0.0.0.0:8176 ("" = none).
    tcp_endpoint: str = ""
    # CURVE keys (Z85) for the TCP endpoint; required when tcp_endpoint is not loopback.
    curve_public_key: str = ""
    curve_secret_key: SecretStr = SecretStr("")
    curve_allowed_clients: list[str] = Field(default_factory=list)
    heartbeat_interval_s: float = Field(DEFAULT_HEARTBEAT_INTERVAL_S, gt=0)
    heartbeat_liveness: int = Field(DEFAULT_HEARTBEAT_LIVENESS, ge=2)
    max_frame_bytes: int = Field(DEFAULT_MAX_FRAME_BYTES, ge=1024)
    # where databases live (the registry: <data_dir>/router.sqlite; actors: <data_dir>/actors/)
    data_dir: Path = Path(".data")
    # the Lightning extension (gwcore.extension): unix:PATH, or HOST:PORT with lnrpc_tls_dir
    # (mutual TLS); "" = unix:<run_dir>/lnrpc/extension.sock
    lnrpc_address: str = ""
    lnrpc_tls_dir: str = ""
    public_api_url: str = "http://127.0.0.1:8175"
    # connecting a federation: its config fetched from the hosts the invite names within this,
    # at most this many at once (one more is refused, 429)
    connect_config_timeout_s: float = Field(30.0, gt=0)
    max_concurrent_connects: int = Field(4, ge=1)
    # the operator's chain source, passed to every actor (wallet v1 deposits are read from it):
    # bitcoind's RPC URL with its user and a file holding the password (or bitcoind's .cookie),
    # or an Esplora API URL
    bitcoind_url: str = ""
    bitcoind_username: str = ""
    bitcoind_password_file: str = ""
    esplora_url: str = ""
    log_level: str = "INFO"
    # a file with 12 BIP-39 words (e.g. gatewayd's) to take as the gateway's seed at the first
    # start (ENV_ROUTER_SEED_WORDS_FILE); "" = new words. Words that differ from the seed the
    # data folder already has stop the router.
    seed_words_file: str = ""
