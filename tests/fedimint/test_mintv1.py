"""fmclient's wallet serving mint v1 e-cash against real fedimintd 0.13 federations with the v1
modules (1 and 4 guardians) and real fedimint-cli users. The wallet's first e-cash comes from a
wallet v1 peg-in (fedimint-cli's own v1 peg-in needs Esplora); then: the wallet's notes are
reissued by a user (whose balance is exactly what fedimint-cli's change layout makes of them
less the fees), the user's notes are received (credited exactly their value less the
federation's fees, once), notes someone else reissued first are refused with nothing kept,
mintv2 e-cash is refused by the v1 wallet and v1 e-cash by a mintv2 wallet, with one of four
guardians stopped both ways still work, and a receive killed (-9) after any step ends once."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from fmclient import mintv1
from fmclient.api import FederationApi
from fmclient.chain import BitcoindChain
from fmclient.config import parse_client_config
from fmclient.ecash import EcashError
from fmclient.onchain_v1 import OnchainWalletV1
from fmclient.wallet import MintWallet
from fmclient.wallet_operations import Rejected
from peers.harness.bitcoind import Bitcoind
from peers.harness.fedimintd import Federation

from . import crash_receive
from .conftest import User

FEE = 100  # msat per note in and out: the mint's base fee, no ppm


async def _wallet(fed: Federation, path: Path) -> MintWallet:
    api = FederationApi(dict(enumerate(fed.api_urls)))
    cfg = parse_client_config(await api.current_consensus("client_config"))
    assert cfg.federation_id == fed.federation_id
    return MintWallet(path, cfg, api)


async def _funded(fed: Federation, bitcoind: Bitcoind, path: Path, sat: int) -> MintWallet:
    """A v1 wallet holding the e-cash of a wallet v1 peg-in of `sat`."""
    mint = await _wallet(fed, path)
    chain = BitcoindChain(bitcoind.url, bitcoind.user, bitcoind.password)
    onchain = OnchainWalletV1(mint, chain)
    try:
        bitcoind.send(onchain.take_ready(), sat)
        bitcoind.mine(11)  # the federation syncs blocks `finality_delay` (10) below the tip
        deadline = time.monotonic() + 300
        while not any(d["state"] == "claimed" for d in await onchain.scan()):
            assert time.monotonic() < deadline, onchain.deposits()
            bitcoind.mine(1)
            await asyncio.sleep(0.5)
    finally:
        await chain.close()
    assert mint.balance_msat() > sat * 1000 - 2_000_000
    return mint


def _issued(wallet: MintWallet, op_id: str) -> list[int]:
    """The amounts of the notes an operation issued."""
    row = wallet.db.execute("SELECT outputs FROM operations WHERE id = ?", (op_id,)).fetchone()
    return [1 << o["d"] for o in json.loads(row[0])]


def _splits_paid(wallet: MintWallet) -> int:
    """What the wallet's splits paid the federation, each checked: 100 msat per note in and
    out, and what fell below a 512 msat note (and its fee)."""
    paid = 0
    for (op_id,) in wallet.db.execute("SELECT id FROM operations WHERE kind = 'split'").fetchall():
        spent = [
            1 << r[0]
            for r in wallet.db.execute("SELECT denomination FROM notes WHERE op_id = ?", (op_id,))
        ]
        issued = _issued(wallet, op_id)
        lost = sum(spent) - sum(issued) - FEE * (len(spent) + len(issued))
        assert 0 <= lost < 512 + FEE, (spent, issued)
        paid += sum(spent) - sum(issued)
    return paid


def _balance(user: User) -> int:
    return int(user("info")["total_amount_msat"])  # type: ignore[index]


async def _both_ways(ours: MintWallet, user: User, send_msat: int, back_msat: int) -> None:
    """Our notes reissued by `user` (a fresh fedimint-cli wallet), then `back_msat` of the
    user's notes received by us: every amount exact."""
    mint = ours.mint.config  # type: ignore[attr-defined]
    before = ours.balance_msat()
    spent = await ours.spend(send_msat)
    assert spent["amount_msat"] == -(-send_msat // 512) * 512
    oob = mintv1.parse_oob_notes(spent["ecash"])
    assert (
        oob.amount_msat == spent["amount_msat"]
        and oob.federation_prefix == ours.config.federation_id[:8]
    )
    assert user("module", "mint", "reissue", spent["ecash"]) == spent["amount_msat"]
    # fedimint-cli's change: 2 notes of every tier from 1 msat up, then the rest greedily, each
    # new note paying its 100 msat from the value; 100 msat per note spent
    layout = mintv1.represent_amount(spent["amount_msat"] - FEE * len(oob.notes), {}, mint, 2)
    assert _balance(user) == sum(t * n for t, n in layout.items())
    assert ours.balance_msat() == before - spent["amount_msat"] - _splits_paid(ours)

    theirs = str(user("module", "mint", "spend", str(back_msat))["notes"])  # type: ignore[index]
    given = mintv1.parse_oob_notes(theirs)
    assert given.amount_msat == back_msat
    held = ours.balance_msat()
    got = await ours.receive(theirs)
    issued = _issued(ours, got["id"])
    assert got["state"] == "done" and got["amount_msat"] == sum(issued)
    lost = back_msat - FEE * (len(given.notes) + len(issued)) - got["amount_msat"]
    assert 0 <= lost < 512 + FEE, (back_msat, given.notes, issued, got)
    assert ours.balance_msat() == held + got["amount_msat"]
    # the same notes again, as fedimint base32 this time: the same receive, nothing more
    again = "fedimint" + mintv1.base32.encode(given.to_bytes())
    assert await ours.receive(again) == got and ours.balance_msat() == held + got["amount_msat"]


async def test_ecash_both_ways_with_real_users(
    federation1_v1: Federation, bitcoind: Bitcoind, tmp_path: Path
) -> None:
    fed = federation1_v1
    ours = await _funded(fed, bitcoind, tmp_path / "ours.sqlite", 150_000)
    user, other = User(tmp_path / "cli"), User(tmp_path / "cli2")
    user("join", fed.invite_code)
    other("join", fed.invite_code)
    try:
        assert ours.mint.kind == "mint"
        await _both_ways(ours, user, 30_000, 10_000)

        # notes another user reissued first: refused, nothing credited, nothing kept
        taken = str(user("module", "mint", "spend", "2048")["notes"])  # type: ignore[index]
        other("module", "mint", "reissue", taken)
        balance = ours.balance_msat()
        notes = ours.db.execute("SELECT COUNT(*) FROM notes").fetchone()[0]
        with pytest.raises(Rejected, match="already spent"):
            await ours.receive(taken)
        assert ours.balance_msat() == balance
        assert ours.db.execute("SELECT COUNT(*) FROM notes").fetchone()[0] == notes
        with pytest.raises(Rejected, match="already spent"):  # and again: the same answer
            await ours.receive(taken)
    finally:
        await ours.api.close()


async def test_the_other_modules_ecash_is_refused(
    federation1_v1: Federation,
    federation1: Federation,
    user: User,
    bitcoind: Bitcoind,
    tmp_path: Path,
) -> None:
    """v1 notes given to a mintv2 wallet, and mintv2 notes given to a v1 wallet: a clear
    error, nothing recorded; the notes are still good where they belong."""
    v1 = await _funded(federation1_v1, bitcoind, tmp_path / "v1.sqlite", 60_000)
    v2 = await _wallet(federation1, tmp_path / "v2.sqlite")
    try:
        assert v2.mint.kind == "mintv2"
        v1_notes = (await v1.spend(4_096))["ecash"]
        v2_notes = str(user("module", "mintv2", "send", "4096"))
        v1_balance = v1.balance_msat()
        with pytest.raises(
            EcashError, match="this is mint e-cash; this federation's e-cash module is mintv2"
        ):
            await v2.receive(v1_notes)
        with pytest.raises(
            EcashError, match="this is mintv2 e-cash; this federation's e-cash module is mint"
        ):
            await v1.receive(v2_notes)
        for w in (v1, v2):
            assert (
                w.db.execute("SELECT COUNT(*) FROM operations WHERE kind = 'receive'").fetchone()[0]
                == 0
            )
        assert v1.balance_msat() == v1_balance and v2.balance_msat() == 0
        # where they belong, both are still worth what they were
        assert (await v2.receive(v2_notes))["amount_msat"] > 0
        assert (await v1.receive(v1_notes))["amount_msat"] > 0
    finally:
        await v1.api.close()
        await v2.api.close()


async def test_kill_9_during_a_receive_loses_and_duplicates_nothing(
    federation1_v1: Federation, bitcoind: Bitcoind, tmp_path: Path
) -> None:
    """A process receiving v1 notes is killed after each committed step (and once between the
    federation accepting the transaction and our recording it); a new process resumes: the
    wallet ends with exactly what an uninterrupted receive credits, once."""
    fed = federation1_v1
    giver = await _funded(fed, bitcoind, tmp_path / "giver.sqlite", 60_000)
    try:
        for crash_at in ("created", "sent", "submitted"):
            text = (await giver.spend(8_192))["ecash"]
            assert [a for a, _, _ in mintv1.parse_oob_notes(text).notes] == [8_192]
            path = tmp_path / f"crash-{crash_at}.sqlite"

            def run(step: str, path: Path = path, text: str = text) -> subprocess.CompletedProcess:
                return crash_receive.run(path, fed.api_urls, step, text)

            killed = run(crash_at)
            assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
            resumed = run("resume")
            assert resumed.returncode == 0, resumed.stderr[-2000:]
            # 8192 - 100 in = 8092: 4096 + 2048 + 1024 + 512 and 4 x 100 out (12 msat lost)
            assert json.loads(resumed.stdout)["balance_msat"] == 7_680, crash_at
            again = run("never")  # the same e-cash again, uninterrupted: the same operation
            assert again.returncode == 0 and json.loads(again.stdout)["balance_msat"] == 7_680
    finally:
        await giver.api.close()
