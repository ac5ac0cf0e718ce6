"""Run by test_onchain.py in its own process: a walletv2 step of one wallet, killing itself
(kill -9) at the mint wallet's checkpoint named by argv[3] ("never": run to the end).

    address                 a new peg-in address
    listed                  whether the federation lists a deposit to our addresses yet
    claim                   scan and claim deposits
    withdraw ADDRESS        withdraw 10,000 sat to ADDRESS, operation id "w-crash"
    resume                  finish what a crash left, then scan

Prints {balance_msat, deposits, withdrawal, address}."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from fmclient.api import FederationApi
from fmclient.config import parse_client_config
from fmclient.onchain import OnchainWallet
from fmclient.wallet import MintWallet


async def main(wallet_path: str, fed_json: str, crash_at: str, action: str, *args: str) -> None:
    api = FederationApi({int(k): v for k, v in json.loads(fed_json).items()})
    cfg = parse_client_config(await api.current_consensus("client_config"))

    def checkpoint(step: str) -> None:
        if step == crash_at:
            os.kill(os.getpid(), signal.SIGKILL)

    wallet = OnchainWallet(MintWallet(Path(wallet_path), cfg, api, checkpoint))
    address, listed = None, None
    if action == "listed":
        outputs = await api.current_consensus(
            f"module_{wallet.module}_output_info_slice", [0, 100_000]
        )
        ours = {wallet.script_of(a) for a in wallet.addresses()}
        listed = any(o["script"] in ours for o in outputs)
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
        "listed": listed,
    }
    print(json.dumps(out))
    await api.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
