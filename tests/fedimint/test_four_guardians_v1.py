"""A real 4-guardian federation with the v1 modules, one guardian stopped (one federation for the
module: its setup, 57 mint tiers' DKG among them, is the costly part): our mint v1 wallet
receives and spends e-cash with a fedimint-cli user, our wallet v1 pegs in and out, and the
whole gateway still serves LNv1 — a user pays through us (`ln-pay`) and receives (`ln-invoice`),
amounts exact on our side, as with one guardian. Then the gateway's data folder is lost, the
guardian still stopped and a user's `ln-pay` through us in flight (our node paid it while the
federation was away): `connect-fed --recover` from the seed words gives back every msat and
claims that contract, found in three guardians' signed session history."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from peers.harness.bitcoind import Bitcoind
from peers.harness.fedimintd import Federation
from tests.e2e.conftest import tree  # noqa: F401 - the fixture

from .conftest import User
from .lnv1_world import (  # noqa: F401 - tree_env: the tree's chain source
    PEG_IN_FEE_MSAT,
    PEG_IN_SAT,
    balance_of,
    credit_for,
    funded_user,
    held_notes,
    lightning_msat,
    open_world,
    paid_for,
    spent_by,
    tree_env,
    user_credit,
    v1_gateway_id,
)
from .recovery_steps import federation_info, lose_data_folder, paid_while_away, recover
from .test_gateway_fedimint import _until
from .test_mintv1 import _both_ways, _funded
from .test_walletv1 import (
    _close,
    _expected,
    _paid_by,
    _settled,
    _spent_notes,
    _txid,
    _wallet,
)

pytestmark = pytest.mark.timeout(900)


def _wallet_rows(tree_: dict, fed: str, query: str) -> list[tuple]:
    path = tree_["data_dir"] / "actors" / fed[:16] / "fedimint.sqlite"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


async def test_ecash_with_one_guardian_of_four_stopped(
    federation4_v1: Federation, bitcoind: Bitcoind, tmp_path: Path
) -> None:
    fed = federation4_v1
    ours = await _funded(fed, bitcoind, tmp_path / "ours4.sqlite", 100_000)
    user = User(tmp_path / "cli4")
    user("join", fed.invite_code)
    g3 = fed.guardians[3]
    g3.stop()
    try:
        await _both_ways(ours, user, 20_000, 5_000)
    finally:
        if g3.proc is None or not g3.proc.alive():
            g3.start()
        await ours.api.close()


async def test_peg_in_and_out_with_one_guardian_of_four_stopped(
    federation4_v1: Federation, bitcoind: Bitcoind, tmp_path: Path
) -> None:
    fed = federation4_v1
    fed.guardians[3].stop()
    wallet = await _wallet(fed, bitcoind, tmp_path / "ours4.sqlite")
    try:
        address = wallet.take_ready()
        txid = bitcoind.send(address, 80_000)
        bitcoind.mine(11)
        [dep] = await _settled(wallet, bitcoind, 1, timeout=300, txid=txid)
        assert dep["state"] == "claimed" and dep["value_sat"] == 80_000
        op_id = wallet.mint.db.execute("SELECT op_id FROM v1_deposits").fetchone()[0]
        assert dep["credit_msat"] == _expected(wallet, op_id, 80_000_000 - PEG_IN_FEE_MSAT)
        assert wallet.mint.balance_msat() == dep["credit_msat"]
        to = bitcoind.new_address("bech32")
        quote = await wallet.quote(to, 20_000)
        before = wallet.mint.balance_msat()
        done = await wallet.withdraw(quote, "w4")
        assert done["state"] == "done"
        change = _expected(wallet, "w4", -quote.total_msat)
        assert wallet.mint.balance_msat() == before - _spent_notes(wallet, "w4") + change
        txid = await _txid(wallet, "w4")
        assert await _paid_by(bitcoind, txid, to, timeout=300) == 20_000  # 3 signatures of 4
        bitcoind.mine(1)
    finally:
        await _close(wallet)


NOTE_FEES = 100 * 40 + 512  # a bound on a fedimint-cli user's note fees in one payment


def test_ln_pay_and_ln_invoice_with_one_guardian_of_four_stopped(
    tree: dict,  # noqa: F811
    federation4_v1: Federation,
    bitcoind: Bitcoind,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    v1 = open_world(tree, federation4_v1, bitcoind)
    gw, fed, world = v1.gw, v1.federation_id, v1.world
    assert v1.deposit["credited_msat"] == credit_for(v1.fed, PEG_IN_SAT * 1000 - PEG_IN_FEE_MSAT)
    user = funded_user(v1, tmp_path_factory.mktemp("v1-user-4"))
    gateway_id = v1_gateway_id(gw, fed)
    federation4_v1.guardians[3].stop()

    bob = world.post("/v1/nodes/bob/invoices", {"amount_msat": 1_000_000})
    before_user, before_gw, before_ln = balance_of(user), gw.balance(fed), lightning_msat(gw)
    out = user("ln-pay", bob["bolt11"], "--gateway-id", gateway_id)
    assert out == {"Success": {"preimage": bob["preimage"]}}, out
    contract = 1_000_000 + 10_000
    assert before_ln - lightning_msat(gw) == 1_000_000
    assert gw.balance(fed) - before_gw == credit_for(v1.fed, contract)
    lost = before_user - balance_of(user)
    assert contract + 100 <= lost <= contract + NOTE_FEES, lost

    before_user, before_gw, before_ln = balance_of(user), gw.balance(fed), lightning_msat(gw)
    held = held_notes(user)
    made = user("module", "ln", "invoice", "400000")  # no gateway named: the client picks us
    assert isinstance(made, dict)
    paid = world.post("/v1/nodes/alice/pay", {"bolt11": made["invoice"], "timeout_s": 90})
    assert paid["status"] == "succeeded", paid
    user("await-invoice", made["operation_id"])
    assert lightning_msat(gw) - before_ln == 400_000
    spent = spent_by(v1.tree, fed, f"lnv1-fund-{paid['payment_hash'][:32]}")
    assert before_gw - gw.balance(fed) == paid_for(v1.fed, spent, 400_000)
    assert balance_of(user) - before_user == user_credit(v1.fed, 400_000, held)

    # the data folder lost with a send in flight: the user's ln-pay of bob's hold invoice,
    # paid by our node while the federation was away (so our claim reached no guardian); the
    # seed words (the tree's words file) give back every msat, and the contract is claimed
    _until("nothing in flight", 60, lambda: federation_info(gw, fed)["in_flight"] == 0)
    balance = gw.balance(fed)
    up = federation4_v1.guardians[:3]
    preimage = paid_while_away(
        world, user, lambda bolt11: ["ln-pay", bolt11, "--gateway-id", gateway_id], up, 1_000_000
    )
    lose_data_folder(tree)
    for g in up:  # three of four again
        g.start()
    assert federation_info(gw, fed) is None
    info = recover(gw, federation4_v1.invite_code, fed)
    assert info["recovery"]["items_done"] == info["recovery"]["items_total"] > 0
    assert info["recovery"]["modules"]["session_history"]["done"]
    _until("the contract in flight claimed", 120, lambda: gw.balance(fed) > balance)
    assert gw.balance(fed) == balance + credit_for(v1.fed, contract)
    sends = _wallet_rows(v1.tree, fed, "SELECT state, preimage FROM lnv1_sends")
    assert sends == [("claimed", preimage)]
