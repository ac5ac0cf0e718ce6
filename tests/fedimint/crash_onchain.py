"""The kill -9 test of on-chain money, for walletv2 (shared/test_onchain.py) and wallet v1
(test_walletv1.py) alike: `killed_claim_and_withdrawal` drives one wallet through a peg-in claim
and a withdrawal, each in processes killed at a mint wallet checkpoint, then finished by a
fresh process.

Run as a script, a step of one wallet, killing itself (kill -9) at the mint wallet's checkpoint
named by argv[4] ("never": run to the end). argv[3] is the bitcoind's [url, user, password] as
JSON for wallet v1 (it reads the chain), `null` for walletv2.

    address                 a new peg-in address
    ready                   whether our deposit can be claimed (walletv2: the federation lists
                            it; wallet v1: it is on chain in a block the federation synced)
    claim                   scan and claim deposits
    withdraw ADDRESS        withdraw 10,000 sat to ADDRESS, operation id "w-crash"
    resume                  finish what a crash left, then scan

Prints {balance_msat, deposits, withdrawal, address, ready}."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from fmclient.api import FederationApi
from fmclient.chain import BitcoindChain
from fmclient.config import parse_client_config
from fmclient.onchain import OnchainWallet
from fmclient.onchain_v1 import OnchainWalletV1
from fmclient.wallet import MintWallet
from peers.harness.bitcoind import Bitcoind
from peers.harness.fedimintd import Federation


async def main(
    wallet_path: str, fed_json: str, chain_json: str, crash_at: str, action: str, *args: str
) -> None:
    print(json.dumps(await step(wallet_path, fed_json, chain_json, crash_at, action, *args)))


async def step(
    wallet_path: str, fed_json: str, chain_json: str, crash_at: str, action: str, *args: str
) -> dict:
    """One step of the wallet (the script's, or `ready` in the test's own process)."""
    api = FederationApi({int(k): v for k, v in json.loads(fed_json).items()})
    cfg = parse_client_config(await api.current_consensus("client_config"))

    def checkpoint(step: str) -> None:
        if step == crash_at:
            os.kill(os.getpid(), signal.SIGKILL)

    mint = MintWallet(Path(wallet_path), cfg, api, checkpoint)
    node = json.loads(chain_json)
    chain = BitcoindChain(*node) if node else None
    wallet = OnchainWalletV1(mint, chain) if chain else OnchainWallet(mint)
    address, ready = None, None
    if action == "ready" and isinstance(wallet, OnchainWalletV1):
        found = await wallet.chain.unspent(wallet.addresses())
        count = await wallet.block_count()
        ready = bool(found) and all(o.height + 1 <= count for o in found)
    elif action == "ready":
        outputs = await api.current_consensus(
            f"module_{wallet.module}_output_info_slice", [0, 100_000]
        )
        ours = {wallet.script_of(a) for a in wallet.addresses()}
        ready = any(o["script"] in ours for o in outputs)
    elif action == "address" and isinstance(wallet, OnchainWalletV1):
        address = wallet.new_address()
    elif action == "address":
        address = wallet.store_address(await wallet.grind_address())
    elif action == "claim":
        await wallet.scan()
    elif action == "withdraw":
        await wallet.withdraw(await wallet.quote(args[0], 10_000), "w-crash")  # type: ignore[arg-type]
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
    if chain is not None:
        await chain.close()
    await api.close()
    return out


def received_sat(bitcoind: Bitcoind, address: str) -> int:
    """Sat paid to `address` in the UTXO set (any address, in the wallet or not)."""
    found = bitcoind.rpc("scantxoutset", "start", [f"addr({address})"])
    return round(found["total_amount"] * 100_000_000)


def _runner(path: Path, fed: Federation, node: list | None) -> Callable[..., dict | None]:
    peers = json.dumps(dict(enumerate(fed.api_urls)))

    def run(action: str, *args: str, crash: str = "never") -> dict | None:
        script = [sys.executable, "-m", "tests.fedimint.crash_onchain"]
        done = subprocess.run(
            [*script, str(path), peers, json.dumps(node), crash, action, *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=Path(__file__).resolve().parents[2],
        )
        if crash != "never":
            assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
            return None
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout)

    return run


def _ready(path: Path, fed: Federation, node: list | None) -> bool:
    """Whether the deposit can be claimed, asked in this process (a poll every half second:
    a process each would cost more CPU than the rest of the test)."""
    peers = json.dumps(dict(enumerate(fed.api_urls)))
    return bool(asyncio.run(step(str(path), peers, json.dumps(node), "never", "ready"))["ready"])


def killed_claim_and_withdrawal(
    fed: Federation, bitcoind: Bitcoind, path: Path, crash_at: str, v1: bool, blocks: int
) -> None:
    """Kill the process after the `crash_at` step of a claim, then of a withdrawal; the next
    process finishes each once: credited once, paid once (the quote and the e-cash fees), on
    chain once. `blocks`: mined after the deposit, before the federation can take it."""
    node = [bitcoind.url, bitcoind.user, bitcoind.password] if v1 else None
    run = _runner(path, fed, node)
    address = run("address")["address"]  # type: ignore[index]
    bitcoind.send(address, 100_000)
    bitcoind.mine(blocks)
    deadline = time.monotonic() + 90
    while not _ready(path, fed, node):
        assert time.monotonic() < deadline, "the federation never took the deposit's block"
        bitcoind.mine(1)
        time.sleep(0.5)
    assert run("claim", crash=crash_at) is None
    after = run("resume")
    [dep] = after["deposits"]  # type: ignore[index]
    assert dep["state"] == "claimed" and after["balance_msat"] == dep["credit_msat"] > 0  # type: ignore[index]
    assert run("claim")["balance_msat"] == dep["credit_msat"]  # type: ignore[index]

    to = bitcoind.new_address()
    if v1:  # a peg-out spends the federation's synced coins: an earlier test's change too
        bitcoind.mine(11)
        fed.wait_synced(bitcoind)
    assert run("withdraw", to, crash=crash_at) is None
    done = run("withdraw", to)  # the same operation id: finished, never made anew
    w = done["withdrawal"]  # type: ignore[index]
    assert w["state"] == "done" and w["value_sat"] == 10_000
    paid = dep["credit_msat"] - done["balance_msat"]  # type: ignore[index]
    total = (10_000 + w["fee_sat"]) * 1000 + w["federation_fee_msat"]
    assert total <= paid < total + 100 * 64 + 512  # once: the quote, the notes' fees, the rest
    assert run("resume")["balance_msat"] == done["balance_msat"]  # type: ignore[index]
    deadline = time.monotonic() + 90
    while received_sat(bitcoind, to) == 0 and time.monotonic() < deadline:
        bitcoind.mine(1)
        time.sleep(0.5)
    assert received_sat(bitcoind, to) == 10_000


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
