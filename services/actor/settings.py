"""Settings of a federation actor (env prefix GATEWAY_ACTOR_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from fmclient.onchain import RECOVERY_GAP
from gwcore.constants import (
    DEFAULT_HEARTBEAT_INTERVAL_S,
    DEFAULT_RUN_DIR,
    ENV_PREFIX_ACTOR,
)


class ActorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX_ACTOR, extra="ignore")

    federation_id: str
    invite_code: str
    # Fedimint: base64url of JSON {peer id: ws URL}, for guardians listed only by iroh
    api_urls: str = ""
    scid: int = Field(ge=1)
    run_dir: Path = Path(DEFAULT_RUN_DIR)
    data_dir: Path = Path(".data")
    # the Lightning extension, as the router passes it (gwcore.extension; "" = the socket in
    # run_dir)
    lnrpc_address: str = ""
    lnrpc_tls_dir: str = ""
    public_api_url: str = "http://127.0.0.1:8175"  # where federation users reach /pay_invoice
    fee_base_msat: int = Field(0, ge=0)
    fee_ppm: int = Field(10_000, ge=0)
    registration_ttl_s: int = Field(600, ge=60, le=600)
    heartbeat_interval_s: float = Field(DEFAULT_HEARTBEAT_INTERVAL_S, gt=0)
    # the chain, for wallet v1 deposits (chain_source.py): bitcoind RPC or Esplora
    bitcoind_url: str = ""
    bitcoind_username: str = ""
    bitcoind_password_file: str = ""  # the RPC password, or bitcoind's .cookie (user:password)
    esplora_url: str = ""
    # connected by `connect-fed --recover`: recover the federation from the seed before serving
    # (only when its actor database is new: recovery.py)
    recover: bool = False
    # mintv2 tweaks kept ground ahead of need (fmclient/tweak_pool.py): about 45 ms of CPU each,
    # a note each; 0 grinds every tweak when its note is made
    tweak_pool_size: int = Field(32, ge=0, le=1024)
    # walletv2 peg-in addresses kept ground ahead, once one was asked for (~4 s of CPU each)
    ready_addresses: int = Field(1, ge=0, le=16)
    # after a lost data folder, walletv2 addresses of the seed watched again past the last one
    # paid (~4 s of CPU each): it must cover the addresses handed out or ground and never paid
    recovery_gap: int = Field(RECOVERY_GAP, ge=1, le=64)
    log_level: str = "INFO"
