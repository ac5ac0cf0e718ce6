"""fmclient's walletv2 money against real federations (1 and 4 guardians) and a real bitcoind:
a deposit to our peg-in address is found and claimed once, credited exactly its value less the
federation's fees; a withdrawal pays every standard address type on chain, costs exactly the
quote, and bad withdrawals change nothing."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from fmclient import derive
from fmclient.api import FederationApi
from fmclient.config import parse_client_config
from fmclient.derive import FederationSecrets, bip39_root_secret
from fmclient.onchain import TWEAK_INDEX, OnchainError, OnchainWallet
from fmclient.wallet import MintWallet
from gwcore.bitcoin_address import p2wsh
from peers.harness.bitcoind import Bitcoind
from peers.harness.fedimintd import Federation

from ..crash_onchain import killed_claim_and_withdrawal, received_sat

WORDS = "legal winner thank year wave sausage worth useful legal winner thank yellow"


async def _onchain(fed: Federation, path: Path, seeded: bool = False) -> OnchainWallet:
    """Our walletv2 wallet: with keys from WORDS (`seeded`), or random ones."""
    api = FederationApi(dict(enumerate(fed.api_urls)))
    cfg = parse_client_config(await api.current_consensus("client_config"))
    secrets = FederationSecrets.from_root(bip39_root_secret(WORDS), cfg.federation_id)
    return OnchainWallet(MintWallet(path, cfg, api, secrets=secrets if seeded else None))


async def _claimed(wallet: OnchainWallet, bitcoind: Bitcoind, timeout: float = 90) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deposits = await wallet.scan()
        if deposits and all(d["state"] == "claimed" for d in deposits):
            return deposits
        bitcoind.mine(1)
        await asyncio.sleep(0.5)
    raise AssertionError(f"not claimed in {timeout} s: {wallet.deposits()}")


async def test_bad_withdrawals_change_nothing(
    federation1: Federation, bitcoind: Bitcoind, tmp_path: Path
) -> None:
    wallet = await _onchain(federation1, tmp_path / "ours.sqlite")
    try:
        good = bitcoind.new_address()
        cases = [
            ("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", 10_000, "bad address"),  # mainnet
            ("not an address", 10_000, "bad address"),
            (good, 9_999, "dust limit"),
            (good, 0, "positive"),
        ]
        for to, value, why in cases:
            with pytest.raises(OnchainError, match=why):
                await wallet.quote(to, value)
        quote = await wallet.quote(good, 10_000)
        with pytest.raises(OnchainError, match="does not cover"):
            await wallet.withdraw(quote, "nothing-held")  # an empty wallet
        assert wallet.withdrawal("nothing-held") is None and wallet.mint.balance_msat() == 0
    finally:
        await wallet.mint.api.close()


@pytest.mark.parametrize("crash_at", ["created", "sent", "submitted"])
def test_kill_9_during_a_claim_and_a_withdrawal_loses_and_duplicates_nothing(
    federation1: Federation, bitcoind: Bitcoind, tmp_path: Path, crash_at: str
) -> None:
    """The process is killed after each committed step of a peg-in claim and of a withdrawal
    (and between the federation's acceptance and our record of it); the next process finishes
    each once: credited once, paid once, on chain once."""
    # walletv2 lists an output once the tip is 7 blocks past it
    killed_claim_and_withdrawal(
        federation1, bitcoind, tmp_path / "crash.sqlite", crash_at, False, 21
    )


@pytest.mark.parametrize("which", ["federation1", "federation4"])
async def test_peg_in_then_withdraw_to_every_address_type(
    which: str, bitcoind: Bitcoind, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    fed: Federation = request.getfixturevalue(which)
    seeded = which == "federation1"  # the other: a wallet made before the gateway had a seed
    wallet = await _onchain(fed, tmp_path / "ours.sqlite", seeded)
    mint = wallet.mint
    try:
        made = await wallet.grind_address()
        if seeded:  # the walletv2 client's first valid index of the words' keys
            module = mint.keys.module_secret("walletv2")
            assert module is not None and made.index is not None
            assert made.tweak_secret == derive.wallet_v2_tweak_secret(module, made.index)
            assert mint.keys.next_index(TWEAK_INDEX) == made.index + 1
        address = wallet.store_address(made)
        assert wallet.addresses() == [address]
        bitcoind.send(address, 200_000)
        bitcoind.mine(21)  # walletv2 records an output once the tip is 7 blocks past it
        [dep] = await _claimed(wallet, bitcoind)
        assert dep["value_sat"] == 200_000 and dep["address"] == address
        # exactly the value less the claim's bitcoin fee, the wallet module's fee (100 sat
        # + ppm) and the mint's 100 msat per new note; below 512 msat cannot be issued
        net = (200_000 - dep["fee_sat"]) * 1000
        net -= wallet.module_fee_msat(net)
        notes = mint.db.execute("SELECT COUNT(*) FROM notes").fetchone()[0]
        assert mint.balance_msat() == dep["credit_msat"]
        assert 0 <= net - dep["credit_msat"] - 100 * notes < 512
        # scanning again claims nothing more
        assert await wallet.scan() == [dep] and mint.balance_msat() == dep["credit_msat"]

        # withdrawals to every standard type; bitcoind's own wallet knows the first four
        targets = {t: bitcoind.new_address(t) for t in ("legacy", "p2sh-segwit", "bech32")}
        targets["bech32m"] = bitcoind.new_address("bech32m")
        # <16 random bytes> OP_DROP OP_TRUE: anyone can spend, fine here, and an address of this
        # run alone (a fixed script's address also holds the other federation's withdrawal)
        targets["p2wsh"] = p2wsh(bytes([16]) + os.urandom(16) + b"\x75\x51", "regtest")
        for kind, to in targets.items():
            before = mint.balance_msat()
            quote = await wallet.quote(to, 10_000)
            done = await wallet.withdraw(quote, f"w-{kind}")
            assert done["state"] == "done" and done["value_sat"] == 10_000, done
            again = await wallet.withdraw(quote, f"w-{kind}")  # idempotent by id
            assert again["state"] == "done"
            spent = before - mint.balance_msat()
            # the quote plus the mint's fees on the notes in and the change out, and the
            # change's sub-512 msat remainder
            assert quote.total_msat <= spent < quote.total_msat + 100 * 40 + 512, (kind, spent)
        deadline = time.monotonic() + 120
        txids: dict[str, str | None] = {}
        while time.monotonic() < deadline:
            txids = {k: await wallet.withdrawal_txid(f"w-{k}") for k in targets}
            bitcoind.mine(1)
            if all(txids.values()) and all(received_sat(bitcoind, a) for a in targets.values()):
                break
            await asyncio.sleep(0.5)
        assert {k: received_sat(bitcoind, a) for k, a in targets.items()} == dict.fromkeys(
            targets, 10_000
        ), txids
    finally:
        await mint.api.close()
