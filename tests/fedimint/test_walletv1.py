"""fmclient's wallet v1 money against real fedimintd 0.13 federations with the v1 modules (1 and
4 guardians) and a real bitcoind read over its RPC: deposits claimed with both input versions
(V1 and the peg-in proof), credited exactly their value less the federation's and the mint's
fees, never twice; withdrawals to every standard address type costing exactly the quote plus the
mint's note fees, the federation's transaction paying the address the amount; bad withdrawals
changing nothing; a 4-guardian federation with one guardian stopped still taking both."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from fmclient.api import FederationApi
from fmclient.chain import BitcoindChain
from fmclient.config import parse_client_config
from fmclient.onchain import OnchainError
from fmclient.onchain_v1 import OnchainWalletV1
from fmclient.wallet import MintWallet
from gwcore.bitcoin_address import p2wsh, parse_address
from peers.harness.bitcoind import Bitcoind, RpcError
from peers.harness.fedimintd import Federation

from .crash_onchain import killed_claim_and_withdrawal

PEG_IN_FEE_MSAT = 1_000_000  # the wallet module's default fee_consensus.peg_in_abs


async def _wallet(
    fed: Federation, bitcoind: Bitcoind, path: Path, proof_only: bool = False
) -> OnchainWalletV1:
    api = FederationApi(dict(enumerate(fed.api_urls)))
    cfg = parse_client_config(await api.current_consensus("client_config"))
    chain = BitcoindChain(bitcoind.url, bitcoind.user, bitcoind.password)
    return OnchainWalletV1(MintWallet(path, cfg, api), chain, proof_only=proof_only)


async def _close(*wallets: OnchainWalletV1) -> None:
    for w in wallets:
        await w.chain.close()
        await w.api.close()


async def _settled(  # type: ignore[no-untyped-def]
    wallet: OnchainWalletV1, bitcoind: Bitcoind, n: int, timeout: float = 180, txid: str = ""
):
    """Scan until `n` deposits are claimed or left as too small, mining as the federation
    needs blocks past theirs. `txid`: a deposit's, described if none is seen in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deposits = await wallet.scan()
        done = [d for d in deposits if d["state"] in ("claimed", "too_small")]
        if len(done) >= n:
            return deposits
        bitcoind.mine(1)
        await asyncio.sleep(0.5)
    raise AssertionError(
        f"not claimed in {timeout} s: {wallet.deposits()}; {_chain_view(wallet, bitcoind, txid)}"
    )


def _chain_view(wallet: OnchainWalletV1, bitcoind: Bitcoind, txid: str) -> str:
    """What bitcoind says of the deposit and our addresses (a failure's message)."""
    out = [f"{len(wallet.addresses())} address(es) watched"]
    if txid:
        tx = bitcoind.rpc("gettransaction", txid, wallet="miner")
        out.append(f"tx {txid}: {tx.get('confirmations')} confirmation(s)")
        paid = [d.get("address") for d in tx.get("details", []) if d.get("category") == "send"]
        out.append(f"paying {paid}, watched: {[a in wallet.addresses() for a in paid]}")
    found = bitcoind.rpc("scantxoutset", "start", [f"addr({a})" for a in wallet.addresses()])
    out.append(f"scantxoutset: {len(found.get('unspents', []))} unspent")
    return "; ".join(out)


def _expected(wallet: OnchainWalletV1, op_id: str, brings_msat: int) -> int:
    """What an operation leaves in the balance by the fee rules, from what it `brings` (a
    claim: value less the peg-in fee; a peg-out: minus the quote's total) and the notes it
    spent (less their fee each): the most that new notes of at least 512 msat can hold once
    each new note's fee is paid (the rest goes to the federation)."""
    mint = wallet.mint
    rows = mint.db.execute("SELECT denomination FROM notes WHERE op_id = ?", (op_id,))
    spent = [r[0] for r in rows.fetchall()]
    available = sum((1 << d) - mint.mint.fee(d) for d in spent) + brings_msat
    credit = available // 512 * 512
    while credit > 0:
        new = [d for d in range(9, 64) if credit >> d & 1]
        if credit + sum(mint.mint.fee(d) for d in new) <= available:
            return credit
        credit -= 512
    return 0


def _spent_notes(wallet: OnchainWalletV1, op_id: str) -> int:
    rows = wallet.mint.db.execute("SELECT denomination FROM notes WHERE op_id = ?", (op_id,))
    return sum(1 << r[0] for r in rows.fetchall())


def _find_tx(bitcoind: Bitcoind, txid: str) -> dict | None:
    """The bitcoin transaction `txid` from the mempool or the last blocks (no txindex)."""
    try:
        return dict(bitcoind.rpc("getrawtransaction", txid, True))
    except RpcError:
        pass
    tip = int(bitcoind.rpc("getblockcount"))
    for height in range(tip, max(tip - 20, 0), -1):
        try:
            block = bitcoind.rpc("getblockhash", height)
            return dict(bitcoind.rpc("getrawtransaction", txid, True, block))
        except RpcError:
            continue
    return None


async def _paid_by(bitcoind: Bitcoind, txid: str, address: str, timeout: float = 120) -> int:
    """Sat the federation's bitcoin transaction `txid` pays `address`, once it is broadcast
    (the federation broadcasts once its guardians' signatures are in)."""
    script = parse_address(address, "regtest").script.hex()
    deadline = time.monotonic() + timeout
    while (tx := _find_tx(bitcoind, txid)) is None:
        assert time.monotonic() < deadline, f"the federation's transaction {txid} is not on chain"
        await asyncio.sleep(0.5)
    return sum(
        round(o["value"] * 100_000_000) for o in tx["vout"] if o["scriptPubKey"]["hex"] == script
    )


async def _txid(wallet: OnchainWalletV1, op_id: str) -> str:
    for _ in range(120):
        txid = await wallet.withdrawal_txid(op_id)
        if txid:
            return txid
        await asyncio.sleep(0.5)
    raise AssertionError(f"no bitcoin txid for {op_id}")


async def test_deposits_are_credited_exactly_once_and_withdrawals_pay_every_address_type(
    federation1_v1: Federation, bitcoind: Bitcoind, tmp_path: Path
) -> None:
    fed = federation1_v1
    wallet = await _wallet(fed, bitcoind, tmp_path / "ours.sqlite")
    # the same e-cash wallet, claiming with the peg-in proof (input V0) whatever the federation
    # tracks: both claim versions meet the real federation
    proving = OnchainWalletV1(wallet.mint, wallet.chain, proof_only=True)
    mint = wallet.mint
    try:
        values = [60_000, 61_000, 62_000, 63_000]
        addresses = [wallet.take_ready() for _ in values]
        for address, value in zip(addresses, values, strict=True):
            bitcoind.send(address, value)
        small = wallet.new_address()
        bitcoind.send(small, 1_000)  # worth the federation's fee exactly: never claimed
        bitcoind.mine(11)  # the federation syncs blocks `finality_delay` (10) below the tip
        await _settled(wallet, bitcoind, 5)
        by_address = {d["address"]: d for d in wallet.deposits()}
        assert by_address[small]["state"] == "too_small"
        late = proving.new_address()  # claimed by the proof
        bitcoind.send(late, 64_000)
        bitcoind.mine(11)
        await _settled(proving, bitcoind, 6)
        deposits = {d["address"]: d for d in wallet.deposits()}
        claimed = [d for d in deposits.values() if d["state"] == "claimed"]
        assert sorted(d["value_sat"] for d in claimed) == [*values, 64_000]
        ops = mint.db.execute("SELECT id FROM operations WHERE kind = 'pegin'").fetchall()
        assert len(ops) == 5  # one claim each, none for the small one
        for d in claimed:  # value less the peg-in fee less the mint's 100 msat per new note
            op_id = mint.db.execute(
                "SELECT op_id FROM v1_deposits WHERE outpoint = ?", (d["outpoint"],)
            ).fetchone()[0]
            assert d["fee_sat"] == 1000
            net = d["value_sat"] * 1000 - PEG_IN_FEE_MSAT
            assert d["credit_msat"] == _expected(wallet, op_id, net)
        balance = mint.balance_msat()
        assert balance == sum(d["credit_msat"] for d in claimed)
        # scanning again claims nothing more
        assert await wallet.scan() == wallet.deposits() and mint.balance_msat() == balance
        # a second wallet holding the same tweak key (a restored copy) cannot claim it again
        twin = await _wallet(fed, bitcoind, tmp_path / "twin.sqlite")
        row = mint.db.execute(
            "SELECT * FROM v1_peg_in_addresses WHERE address = ?", (addresses[0],)
        ).fetchone()
        twin.db.execute(
            "INSERT INTO v1_peg_in_addresses VALUES (?, ?, ?, ?)",
            (row["address"], row["script"], row["tweak_secret"], row["created"]),
        )
        with pytest.raises(OnchainError, match="already claimed"):
            await twin.scan()
        assert [d["state"] for d in twin.deposits()] == ["rejected"]
        assert twin.mint.balance_msat() == 0
        await _close(twin)

        # withdrawals to every standard type, one federation UTXO each (no wait for change)
        targets = {t: bitcoind.new_address(t) for t in ("legacy", "p2sh-segwit", "bech32")}
        targets["bech32m"] = bitcoind.new_address("bech32m")
        targets["p2wsh"] = p2wsh(bytes([16]) + os.urandom(16) + b"\x75\x51", "regtest")
        # more than the balance: refused before anything is stored
        quote = await wallet.quote(targets["bech32"], 10_000)
        too_much = replace(quote, value_sat=balance // 1000)
        with pytest.raises(OnchainError, match="does not cover"):
            await wallet.withdraw(too_much, "too-much")
        assert wallet.withdrawal("too-much") is None and mint.balance_msat() == balance
        assert mint.operation("too-much") is None
        for kind, to in targets.items():
            before = mint.balance_msat()
            quote = await wallet.quote(to, 10_000)
            assert quote.fee_sat > 0 and quote.federation_fee_msat == 0
            done = await wallet.withdraw(quote, f"w-{kind}")
            assert done["state"] == "done" and done["value_sat"] == 10_000, done
            assert await wallet.withdraw(quote, f"w-{kind}") == done  # idempotent by id
            change = _expected(wallet, f"w-{kind}", -quote.total_msat)
            assert mint.balance_msat() == before - _spent_notes(wallet, f"w-{kind}") + change, kind
            txid = await _txid(wallet, f"w-{kind}")
            assert await _paid_by(bitcoind, txid, to) == 10_000, kind
        bitcoind.mine(1)
        rows = wallet.withdrawals(0, None, 10)
        assert {r["operation_id"] for r in rows} == {f"w-{k}" for k in targets}
        assert all(r["state"] == "done" and r["btc_txid"] for r in rows)
    finally:
        await _close(wallet)


async def test_bad_withdrawals_are_refused_before_anything_is_stored(
    federation1_v1: Federation, bitcoind: Bitcoind, tmp_path: Path
) -> None:
    wallet = await _wallet(federation1_v1, bitcoind, tmp_path / "poor.sqlite")
    try:
        good = bitcoind.new_address()
        cases = [
            ("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", 10_000, "bad address"),  # mainnet
            ("not an address", 10_000, "bad address"),
            (bitcoind.new_address("legacy"), 545, "below the dust limit of 546 sat"),
            (good, 293, "below the dust limit of 294 sat"),
            (good, 0, "positive"),
        ]
        for to, value, why in cases:
            with pytest.raises(OnchainError, match=why):
                await wallet.quote(to, value)
        assert wallet.mint.db.execute("SELECT COUNT(*) FROM operations").fetchone()[0] == 0
    finally:
        await _close(wallet)


@pytest.mark.parametrize("crash_at", ["created", "sent", "submitted"])
def test_kill_9_during_a_claim_and_a_withdrawal_loses_and_duplicates_nothing(
    federation1_v1: Federation, bitcoind: Bitcoind, tmp_path: Path, crash_at: str
) -> None:
    """The process is killed after each committed step of a claim and of a withdrawal (and
    between the federation's acceptance and our record of it); the next process finishes each
    once: credited once, paid once, on chain once."""
    path = tmp_path / "crash.sqlite"
    killed_claim_and_withdrawal(federation1_v1, bitcoind, path, crash_at, True, 11)
