"""On-chain money through a federation's wallet v1 module (`wallet`), as the actor's on-chain
part (`onchain.Onchain`): peg-in addresses (the federation's descriptor tweaked by a key of ours:
made at once), deposits found on chain by the operator's chain source (bitcoind RPC or Esplora,
`chain.py`; the federation does not list v1 deposits) and claimed once the federation has
synced their block, peg-outs quoted (`peg_out_fees`) and sent. The wallet itself
(`fmclient.onchain_v1.OnchainWalletV1`) keeps its rows in the e-cash wallet's SQLite file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fmclient.chain import ChainSource
from fmclient.onchain_v1 import OnchainWalletV1, WithdrawQuoteV1
from fmclient.wallet import MintWallet
from gwcore.bitcoin_address import DUST_SAT, AddressError, parse_address
from gwcore.errors import InvalidAddress

from .onchain import WalletOnchain


class WalletV1Onchain(WalletOnchain):
    kind = "wallet"
    operation_kinds = ("pegout", "pegin")  # its e-cash operations: counted by its own rows

    def __init__(self, mint: MintWallet, wake: Callable[[], None], chain: ChainSource) -> None:
        super().__init__(mint, OnchainWalletV1(mint, chain), wake)

    async def address(self) -> dict:
        """A fresh peg-in address (its tweak key stored first); watched from now on."""
        address = self.wallet.take_ready()
        self.wake()
        return {"operation_id": address, "address": address}

    async def run_once(self) -> None:
        """Find deposits to our addresses on chain and claim those the federation has synced."""
        if self.wallet.addresses():
            await asyncio.wait_for(self.wallet.scan(), 60)

    def in_flight(self) -> dict[str, int]:
        """Withdrawals not yet final, deposits seen on chain and not yet claimed."""
        return {
            "withdrawal": self._pending_withdrawals(),
            "deposit": self.wallet.pending_deposits(),
        }

    async def _quote_all(self, address: str) -> WithdrawQuoteV1:
        try:
            kind = parse_address(address, self.wallet.config.network).kind
        except AddressError as exc:
            raise InvalidAddress(f"invalid address: {exc}") from None
        probe = await self.wallet.quote(address, DUST_SAT[kind])
        # the largest value whose output, its fee and the federation's flat fee fit
        value = (self._available_msat() - self.wallet.config.peg_out_fee_msat) // 1000
        return await self._largest(address, value - probe.fee_sat)
