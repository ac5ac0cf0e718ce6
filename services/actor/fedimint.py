"""A real Fedimint federation (fedimintd 0.13) as the actor's `Federation` (see federation.py),
through `fmclient`, built from the modules the federation has:

- e-cash: `fmclient.wallet.MintWallet`, which serves the federation's e-cash module (its
  version is the wallet's own concern), in `<actor home>/fedimint.sqlite`;
- on chain: one part per wallet module version (`ONCHAIN`), behind `onchain.Onchain`;
- Lightning: the roles (roles.py) the actor builds beside it, one per Lightning module.

The client config, agreed by the guardians when joining, is kept in
`<actor home>/fedimint-config.json` (a restart needs no guardian to start). A background loop
finishes what a crash left and lets the on-chain part find and claim deposits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fmclient.api import FederationApi
from fmclient.chain import ChainSource
from fmclient.config import ClientConfig, parse_client_config
from fmclient.derive import FederationSecrets
from fmclient.join import check_overrides, download_config, guardian_urls
from fmclient.onchain import RECOVERY_GAP
from fmclient.wallet import MintWallet
from gwcore.files import write_private

from .crash import crash_point
from .ecash_errors import gateway_errors
from .onchain import NoOnchain, Onchain
from .onchain_v1 import WalletV1Onchain
from .onchain_v2 import WalletV2Onchain

log = logging.getLogger(__name__)
NO_CHAIN = (
    "wallet v1 reads deposits from the chain: set the gateway's chain source"
    " (GATEWAY_ROUTER_BITCOIND_URL with _USERNAME and _PASSWORD_FILE, or GATEWAY_ROUTER_ESPLORA_URL)"
)


@dataclass(frozen=True)
class Ahead:
    """Work done ahead of need while the actor idles, so that a request does not wait for it
    (GATEWAY_ACTOR_TWEAK_POOL_SIZE, _READY_ADDRESSES): mintv2 tweaks (~45 ms of CPU each, one
    a note: fmclient/tweak_pool.py) and walletv2 peg-in addresses (~4 s each: onchain_v2.py);
    and how far past the last address paid a recovery looks again (_RECOVERY_GAP: the
    addresses handed out or ground ahead and never paid)."""

    tweak_pool_size: int = 32
    ready_addresses: int = 1
    recovery_gap: int = RECOVERY_GAP


def _wallet_v1(
    mint: MintWallet, wake: Callable[[], None], chain: ChainSource | None, ahead: Ahead
) -> Onchain:
    if chain is None:
        return NoOnchain(["wallet"], NO_CHAIN)
    return WalletV1Onchain(mint, wake, chain)


# the on-chain part for each wallet module version: (mint, wake, chain source, ahead) -> part
ONCHAIN: dict[
    str, Callable[[MintWallet, Callable[[], None], ChainSource | None, Ahead], Onchain]
] = {
    "walletv2": lambda mint, wake, chain, ahead: WalletV2Onchain(
        mint, wake, ahead.ready_addresses, ahead.recovery_gap
    ),
    "wallet": _wallet_v1,
}


class FedimintFederation:
    kind = "fedimint"

    def __init__(
        self,
        home: Path,
        config: ClientConfig,
        api: FederationApi,
        scan_interval_s: float = 2.0,
        chain: ChainSource | None = None,
        secrets: FederationSecrets | None = None,
        ahead: Ahead = Ahead(),
    ) -> None:
        """`chain`: the operator's chain source (wallet v1 needs it). `secrets`: the
        federation's secrets from the gateway's seed (notes and peg-in keys derived from
        them; None: random). `ahead`: what is made ahead of need."""
        self.federation_id = config.federation_id
        self.config = config
        # crash tests kill the actor between a wallet operation's steps (inert otherwise)
        self.mint = MintWallet(
            home / "fedimint.sqlite",
            config,
            api,
            lambda step: crash_point(f"ecash-{step}"),
            secrets,
            ahead.tweak_pool_size,
        )
        self.scan_interval_s = scan_interval_s
        self.wake = asyncio.Event()
        self.modules = sorted(m.kind for m in config.modules.values())
        wallet = next((k for k in self.modules if k in ONCHAIN), None)
        self.onchain: Onchain = (
            ONCHAIN[wallet](self.mint, self.wake.set, chain, ahead)
            if wallet
            else NoOnchain(self.modules)
        )
        self.chain = chain

    @classmethod
    async def open(
        cls,
        home: Path,
        invite_code: str,
        federation_id: str,
        api_urls: dict | None = None,
        chain: ChainSource | None = None,
        secrets: FederationSecrets | None = None,
        ahead: Ahead = Ahead(),
    ) -> FedimintFederation:
        """Join by invite (the config agreed by the guardians), or reopen what was joined.
        `api_urls`: the guardians' ws URLs by peer id, instead of the config's (iroh) ones."""
        overrides = check_overrides(api_urls)
        config = _saved_config(home)
        if config is None:
            with gateway_errors():
                config = await download_config(invite_code, overrides=overrides)
            _save_config(home, config)
        if config.federation_id != federation_id:
            raise SystemExit("the invite code names another federation")
        endpoints = {p: url for p, (url, _) in config.api_endpoints.items()}
        api = FederationApi(guardian_urls(endpoints, overrides))
        return cls(home, config, api, chain=chain, secrets=secrets, ahead=ahead)

    @property
    def name(self) -> str:
        return self.config.meta.get("federation_name", "")

    def balance_msat(self) -> int:
        return self.mint.balance_msat()

    async def resume(self) -> list[str]:
        unfinished = self.mint.db.execute(
            "SELECT id FROM operations WHERE state IN ('created', 'submitted')"
        ).fetchall()
        await self.mint.resume()
        return [r[0] for r in unfinished]

    async def run(self, stop: asyncio.Event) -> None:
        """Find and claim deposits, finish what a crash left unfinished, until `stop`."""
        ready = asyncio.create_task(self.mint.keys.keep_ready(stop), name="wallet-keep-ready")
        try:
            await self._scan(stop)
        finally:
            ready.cancel()

    async def _scan(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(self.mint.resume(), 60)
            except Exception as exc:  # guardians away: resumed again later
                log.warning("wallet resume incomplete: %s", exc)
            try:
                await self.onchain.run_once()
            except Exception as exc:  # guardians away: scanned again later
                log.warning("deposit scan incomplete: %s", exc)
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.scan_interval_s)

    async def close(self) -> None:
        self.onchain.closing()  # an address search in a worker thread stops
        await self.mint.api.close()
        if self.chain is not None:
            await self.chain.close()

    # -- on chain: the wallet module's part -------------------------------------------------

    async def address(self) -> dict:
        return await self.onchain.address()

    async def deposit(self, body: dict) -> dict:
        return await self.onchain.deposit(body)

    async def withdraw(self, body: dict) -> dict:
        return await self.onchain.withdraw(body)

    def in_flight(self) -> dict[str, int]:
        """The on-chain part's (withdrawals, deposits being claimed) and the other e-cash
        operations whose transaction is not final yet. The Lightning roles count their own
        (their operations' kinds start with their module's: lnv1_…, lnv2_…)."""
        kinds = set(self.onchain.operation_kinds)
        ops = self.mint.db.execute(
            "SELECT kind FROM operations WHERE state IN ('created', 'submitted')"
        ).fetchall()
        ecash = sum(
            1 for (kind,) in ops if kind not in kinds and not kind.startswith(("lnv1", "lnv2"))
        )
        return {**self.onchain.in_flight(), "ecash": ecash}

    def log_rows(self, since: float, before: float | None, limit: int) -> list[dict]:
        return self.onchain.log_rows(since, before, limit)

    # -- e-cash ----------------------------------------------------------------------------------

    async def receive_ecash(self, notes: str) -> dict:
        with gateway_errors():
            got = await self.mint.receive(notes)
        return {
            "operation_id": got["id"],
            "amount_msat": got["amount_msat"],
            "balance_msat": self.balance_msat(),
        }

    async def spend_ecash(self, amount_msat: int, operation_id: str) -> dict:
        with gateway_errors():
            spent = await self.mint.spend(amount_msat, operation_id)
        return {
            "operation_id": operation_id,
            "notes": spent["ecash"],
            "amount_msat": spent["amount_msat"],
            "balance_msat": self.balance_msat(),
        }


def _saved_config(home: Path) -> ClientConfig | None:
    saved = home / "fedimint-config.json"
    return parse_client_config(json.loads(saved.read_text())) if saved.exists() else None


def _save_config(home: Path, config: ClientConfig) -> None:
    write_private(home / "fedimint-config.json", json.dumps(config.raw))
