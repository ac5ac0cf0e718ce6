"""The actor's recovery of a federation connected with `connect-fed --recover`: before it serves
anything, its e-cash and peg-in keys are found again from the gateway's seed, module by module,
as fedimint's client recovers them (fmclient/recovery.py), and the notes found are signed and
stored by the wallet's own operations. walletv2 keeps no recovery log: the seed's addresses up
to a few past the last one paid are watched again (`OnchainWallet.recover_addresses`).

Decided once, when the actor's database is made (`begin`): a recovery is asked (the router's
GATEWAY_ACTOR_RECOVER) and the federation is new to this data folder, so its keys are the
seed's; kept in the actor's meta (`recovery`: pending -> done), so a restart mid-recovery
resumes it (the scan's progress is in the wallet's file) and a finished one is never run again.
While it is pending the actor answers `actor.info` (with the progress) and refuses the rest.

Never: run on a federation whose keys are random (nothing to find), or mark it done before
every note found is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from fmclient.history import SessionHistory
from fmclient.recovery import Recovery, ecash_recovery, wallet_v1_recovery

from .fedimint import FedimintFederation
from .inflight import ContractFinder, find_in_history
from .keys import KEY_SOURCE
from .onchain_v1 import WalletV1Onchain
from .onchain_v2 import WalletV2Onchain
from .store import ActorStore

log = logging.getLogger(__name__)
RECOVERY = "recovery"  # meta: "pending" | "done"
PENDING, DONE = "pending", "done"
WALLETV2 = "recovery_walletv2"  # meta: how many seeded walletv2 addresses were watched again
CONTRACTS = "recovery_contracts"  # meta: contracts in flight taken up from the session history
HISTORY = "session_history"  # its name in the progress


def begin(store: ActorStore, asked: bool) -> None:
    """Mark a recovery pending when the router asked for one (`asked`) and the federation is
    new to this data folder: its actor database has no keys yet, and they will be the seed's.
    Called before the key source is decided (keys.py), so a crash in between
    leaves the recovery marked."""
    if not asked or store.meta(RECOVERY) is not None:
        return
    if store.meta(KEY_SOURCE) is None and store.meta("gateway_key") is None:
        store.set_meta(RECOVERY, PENDING)
    else:
        log.warning("a recovery was asked for a federation this data folder knows: not run")


class FederationRecovery:
    """One federation's recovery from the seed, driven to its end (retried while the guardians
    are away), its progress for `actor.info`."""

    def __init__(
        self, store: ActorStore, federation: FedimintFederation, retry_s: float = 5.0
    ) -> None:
        self.store, self.federation, self.retry_s = store, federation, retry_s
        self.recovery = Recovery(federation.mint)
        self.error: str | None = None
        # the Lightning roles' parts in finding contracts in flight (set by the actor's app)
        self.finders: list[ContractFinder] = []
        self.history = {"items_done": 0, "items_total": 0, "done": False}

    @property
    def pending(self) -> bool:
        return self.store.meta(RECOVERY) == PENDING

    def info(self) -> dict:
        """{recovering, recovery: {state, modules: {name: {items_done, items_total, done}},
        items_done, items_total, error}} (the items of the modules begun so far)."""
        modules = self.recovery.progress()
        if self.finders:
            modules[HISTORY] = dict(self.history, done=self.store.meta(CONTRACTS) is not None)
        return {
            "recovering": self.pending,
            "recovery": {
                "state": self.store.meta(RECOVERY),
                "modules": modules,
                "items_done": sum(m["items_done"] for m in modules.values()),
                "items_total": sum(m["items_total"] for m in modules.values()),
                "error": self.error,
            },
        }

    def _parts(self) -> list:
        mint = self.federation.mint
        parts = [ecash_recovery(mint)]
        onchain = self.federation.onchain
        module = mint.keys.module_secret("wallet") if isinstance(onchain, WalletV1Onchain) else None
        if isinstance(onchain, WalletV1Onchain) and module is not None:
            parts.append(wallet_v1_recovery(onchain.wallet, module))
        return [p for p in parts if p is not None]

    async def _once(self) -> None:
        for part in self._parts():
            if not self.recovery.done(part.name):
                log.info("recovering %s from the seed", part.name)
            await self.recovery.run(part)
        onchain = self.federation.onchain
        if isinstance(onchain, WalletV2Onchain) and self.store.meta(WALLETV2) is None:
            # walletv2 has no recovery log: the seed's addresses are watched again (a deposit
            # not yet claimed is claimed by the next scan); idempotent, so done once marked
            watched = await onchain.wallet.recover_addresses(onchain.recovery_gap)
            self.store.set_meta(WALLETV2, str(watched))
        # the notes found: signed and stored by their operations (a crash resumes them)
        await self.federation.mint.resume()
        left = self.federation.mint.db.execute(
            "SELECT COUNT(*) FROM operations WHERE kind = 'recovery'"
            " AND state IN ('created', 'submitted')"
        ).fetchone()[0]
        if left:
            raise RuntimeError(f"{left} recovered note issuance(s) not finished yet")
        if self.finders and self.store.meta(CONTRACTS) is None:
            # contracts in flight (inflight.py); adoption is idempotent, so a crash reads again
            mint = self.federation.mint

            def progress(done: int, total: int) -> None:
                self.history.update(items_done=done, items_total=total)

            taken = await find_in_history(
                SessionHistory(mint.api, mint.config), self.finders, progress
            )
            self.store.set_meta(CONTRACTS, str(taken))

    async def run(self, stop: asyncio.Event) -> bool:
        """Recover until done (True) or `stop` (False); a failure is retried after a pause."""
        while self.pending:
            if stop.is_set():
                return False
            try:
                await self._once()
            except Exception as exc:  # guardians away, a slice refused: try again
                self.error = f"{type(exc).__name__}: {exc}"
                log.warning("recovery incomplete: %s; trying again", self.error)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.retry_s)
                continue
            self.error = None
            self.store.set_meta(RECOVERY, DONE)
            log.info("recovery done: %d msat", self.federation.balance_msat())
        return True
