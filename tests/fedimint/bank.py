"""E-cash for the tests' fedimint-cli users, from one peg-in by fmclient's own walletv2 wallet in
the test process: its address from a random key (2-3 s of CPU, one guardian or four), where
fedimint-cli's `module walletv2 receive` searches the seed's indexes (4 s with one guardian, up
to 18 s with four: every index tweaks every guardian's key) and its `await-receive` searches
again. The notes are then spent to the user, who receives them with `module mintv2 receive`.
A real fedimint-cli user's own peg-in is kept in shared/test_walletv2.py."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from fmclient.api import FederationApi
from fmclient.config import parse_client_config
from fmclient.onchain import OnchainWallet
from fmclient.wallet import MintWallet
from peers.harness.bitcoind import Bitcoind
from peers.harness.fedimintd import Federation


def peg_in_ecash(fed: Federation, bitcoind: Bitcoind, wallet_path: Path, sat: int) -> str:
    """A peg-in of `sat` claimed by a new wallet of ours, almost all of it spent as one e-cash
    string (the rest pays the split's fees)."""
    return asyncio.run(_peg_in_ecash(fed, bitcoind, wallet_path, sat))


async def _peg_in_ecash(fed: Federation, bitcoind: Bitcoind, wallet_path: Path, sat: int) -> str:
    api = FederationApi(dict(enumerate(fed.api_urls)))
    try:
        cfg = parse_client_config(await api.current_consensus("client_config"))
        wallet = OnchainWallet(MintWallet(wallet_path, cfg, api))
        address = wallet.store_address(await wallet.grind_address())
        bitcoind.send(address, sat)
        bitcoind.mine(21)  # walletv2 records an output once the tip is 7 blocks past it
        deadline = time.monotonic() + 300
        while not any(d["state"] == "claimed" for d in await wallet.scan()):
            assert time.monotonic() < deadline, f"our peg-in was not claimed: {wallet.deposits()}"
            bitcoind.mine(1)
            await asyncio.sleep(0.5)
        balance = wallet.mint.balance_msat()
        return str((await wallet.mint.spend(balance - balance // 50))["ecash"])
    finally:
        await api.close()
