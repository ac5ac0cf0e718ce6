"""On-chain money through a federation's `walletv2` module, as the actor's on-chain part
(`onchain.Onchain`): peg-in addresses (ground ahead of time), deposits found by a scan of the
federation's listed outputs and claimed at once, peg-outs quoted and sent. The wallet itself
(`fmclient.onchain.OnchainWallet`) keeps its rows in the e-cash wallet's SQLite file.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from fmclient.onchain import RECOVERY_GAP, OnchainWallet, WithdrawQuote
from fmclient.wallet import MintWallet

from .onchain import WalletOnchain

log = logging.getLogger(__name__)


class WalletV2Onchain(WalletOnchain):
    kind = "walletv2"
    operation_kinds = ("pegout", "pegin")  # its e-cash operations: counted by its own rows

    def __init__(
        self,
        mint: MintWallet,
        wake: Callable[[], None],
        ready: int = 1,
        recovery_gap: int = RECOVERY_GAP,
    ) -> None:
        """`ready`: peg-in addresses kept ground ahead (seconds of CPU each: ~65,536 seeded keys
        tried), once the operator has asked for one: a federation never asked costs nothing.
        `recovery_gap`: seeded addresses watched again past the last one paid, after a lost
        data folder (`OnchainWallet.recover_addresses`)."""
        super().__init__(mint, OnchainWallet(mint), wake)
        self.ready, self.recovery_gap = ready, recovery_gap
        self._search: asyncio.Future | None = None  # the search /address asks for, if any
        self._ahead: asyncio.Future | None = None  # the search that keeps `ready` ready

    async def run_once(self) -> None:
        """Find and claim deposits to ours; keep an address ready, ground beside the scan, not
        before it (seconds of CPU, minutes on a busy machine: a deposit never waits for it)."""
        if self._ahead is None or self._ahead.done():
            self._ahead = asyncio.ensure_future(self._keep_ready())
        if self.wallet.addresses():
            await asyncio.wait_for(self.wallet.scan(), 60)

    async def _keep_ready(self) -> None:
        try:
            await self._keep_an_address_ready()
        except Exception as exc:  # never expected; the next address is ground on demand
            log.warning("no peg-in address ground ahead: %s", exc)

    def in_flight(self) -> dict[str, int]:
        """Withdrawals not yet final, deposits listed by the federation and not yet claimed."""
        deposits = self.mint.db.execute(
            "SELECT COUNT(*) FROM deposits WHERE state IN ('seen', 'claiming')"
        ).fetchone()[0]
        return {"withdrawal": self._pending_withdrawals(), "deposit": int(deposits)}

    async def address(self) -> dict:
        """A fresh peg-in address: one ground ahead of time, else ground now (seconds of CPU,
        in a thread; minutes on a busy machine). A search outlives the request that began it:
        a request that timed out and its retry wait for the same search, and what it finds is
        kept ready for whoever asks next. The background loop keeps `ready` ready."""
        while (address := self.wallet.take_ready()) is None:
            if self._search is None or self._search.done():
                self._search = asyncio.ensure_future(self._grind_one())
            await asyncio.shield(self._search)
        self.wake()
        return {"operation_id": address, "address": address}

    async def _grind_one(self) -> None:
        self.wallet.add_ready(await self.wallet.grind_address())

    async def _keep_an_address_ready(self) -> None:
        if self.wallet.addresses() and self.wallet.ready_count() < self.ready:
            await self._grind_one()

    async def _quote_all(self, address: str) -> WithdrawQuote:
        probe = await self.wallet.quote(address, self.wallet.config.dust_limit_sat)
        # the largest value whose output and its fee fit in what the notes bring
        value = (self._available_msat() - self.wallet.config.fee_base_msat) * 1_000_000 // (
            1_000_000 + self.wallet.config.fee_ppm
        ) // 1000 - probe.fee_sat
        return await self._largest(address, value)
