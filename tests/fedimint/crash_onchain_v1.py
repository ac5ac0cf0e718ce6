"""Run by test_walletv1.py in its own process: a wallet v1 step of one wallet, killing itself
(kill -9) at the mint wallet's checkpoint named by argv[4] ("never": run to the end).

    address                 a new peg-in address
    ready                   whether our deposit is on chain and synced by the federation
    claim                   scan and claim deposits
    withdraw ADDRESS        withdraw 10,000 sat to ADDRESS, operation id "w-crash"
    resume                  finish what a crash left, then scan

Prints {balance_msat, deposits, withdrawal, address, ready}."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from fmclient.api import FederationApi
from fmclient.chain import BitcoindChain
from fmclient.config import parse_client_config
from fmclient.onchain_v1 import OnchainWalletV1
from fmclient.wallet import MintWallet


async def main(
    wallet_path: str, fed_json: str, btc_json: str, crash_at: str, action: str, *args: str
) -> None:
    api = FederationApi({int(k): v for k, v in json.loads(fed_json).items()})
    cfg = parse_client_config(await api.current_consensus("client_config"))
    chain = BitcoindChain(*json.loads(btc_json))

    def checkpoint(step: str) -> None:
        if step == crash_at:
            os.kill(os.getpid(), signal.SIGKILL)

    wallet = OnchainWalletV1(MintWallet(Path(wallet_path), cfg, api, checkpoint), chain)
    address, ready = None, None
    if action == "ready":
        found = await chain.unspent(wallet.addresses())
        count = await wallet.block_count()
        ready = bool(found) and all(o.height + 1 <= count for o in found)
    elif action == "address":
        address = wallet.new_address()
    elif action == "claim":
        await wallet.scan()
    elif action == "withdraw":
        await wallet.withdraw(await wallet.quote(args[0], 10_000), "w-crash")
    elif action == "resume":
        await wallet.mint.resume()
        await wallet.scan()
    out = {
        "balance_msat": wallet.mint.balance_msat(),
        "deposits": wallet.deposits(),
        "withdrawal": wallet.withdrawal("w-crash"),
        "address": address,
        "ready": ready,
    }
    print(json.dumps(out))
    await chain.close()
    await api.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
