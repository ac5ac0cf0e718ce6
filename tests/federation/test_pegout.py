"""Peg-outs: every standard address type paid on the regtest chain; a bad address costs nothing;
a peg-out the chain refuses ends failed and its e-cash comes back exactly once, across a crash."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from coincurve import PrivateKey

from devworld.federation.app import run_pegout_sender
from devworld.federation.engine import Federation, FedError
from devworld.fedlib import crypto
from devworld.fedlib.api import FedApiError
from devworld.fedlib.client import FederationClient
from devworld.fedlib.tx import txid
from devworld.fedlib.wallet import WalletError
from gwcore.bitcoin_address import DUST_SAT, parse_address

from .conftest import Regtest, fund, join, make_fed

P2WSH = "bcrt1qan8gntac7z7me2ejt4hpru42ad2f759fmy0m3ejvs98656znv7eqga4uhv"  # Bitcoin Core's vector


def _conserved(audit: dict) -> bool:
    return audit["pegin_msat"] - audit["pegout_msat"] - audit["fees_msat"] == (
        audit["notes_outstanding_msat"]
        + audit["outgoing_open_msat"]
        + audit["incoming_open_msat"]
        + audit["pegout_failed_open_msat"]
    )


def test_every_standard_address_type_is_paid_and_shown_like_bitcoind(
    regtest: Regtest, fed: Federation, alice: FederationClient
) -> None:
    fund(regtest, alice, 200_000)
    kinds = {
        "legacy": "pubkeyhash",
        "p2sh-segwit": "scripthash",
        "bech32": "witness_v0_keyhash",
        "bech32m": "witness_v1_taproot",
    }
    targets = {regtest.rpc("getnewaddress", "", t, wallet="miner"): kinds[t] for t in kinds}
    targets[P2WSH] = "witness_v0_scripthash"
    assert {parse_address(a).kind for a in targets} == set(DUST_SAT)  # all five types
    for address, script_type in targets.items():
        out = alice.withdraw(1_000, address)
        raw = regtest.rpc("getrawtransaction", out["txid"], True)
        paid = [o for o in raw["vout"] if o["scriptPubKey"].get("address") == address]
        assert len(paid) == 1 and paid[0]["value"] == pytest.approx(0.00001)
        assert paid[0]["scriptPubKey"]["type"] == script_type
        if address != P2WSH:  # the miner's wallet owns the others: it lists the coin
            coins = regtest.rpc("listunspent", 0, 9_999_999, [address], wallet="miner")
            assert [c["txid"] for c in coins] == [out["txid"]]
            assert coins[0]["scriptPubKey"] == paid[0]["scriptPubKey"]["hex"]
    # an upper-case bech32 address (QR codes) is the same address
    upper = regtest.rpc("getnewaddress", wallet="miner").upper()
    assert alice.withdraw(1_000, upper)["txid"]
    assert _conserved(fed.audit())


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("bcrt1qzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", "checksum"),
        ("bc1qvyq0cc6rahyvsazfdje0twl7ez82ndmuac2lhv", "wrong network"),
        ("1FsSia9rv4NeEwvJ2GvXrX7LyxYspbN2mo", "wrong network"),
        ("bcrt1sjsrw6nun4h502cr97xmnyyuhkr22q0s6efrgtu", "bech32"),
        ("2MygHQjE1U33q3LSC53p69YqFjP8PihumJAF", "base58"),
        ("", "empty"),
    ],
)
def test_a_bad_address_is_refused_before_anything_moves(
    regtest: Regtest, fed: Federation, alice: FederationClient, address: str, reason: str
) -> None:
    fund(regtest, alice, 50_000)
    before, audit, ops = alice.balance(), fed.audit(), len(alice.operations())
    with pytest.raises(WalletError, match=reason) as err:
        alice.withdraw(20_000, address)
    assert err.value.code == "invalid_address"
    assert alice.balance() == before and fed.audit() == audit and len(alice.operations()) == ops
    with pytest.raises(FedApiError) as quote:  # the federation refuses it as well
        alice.api.pegout_fees(address, 20_000)
    assert quote.value.code == "invalid_address"


def test_the_federation_refuses_a_bad_address_in_a_transaction(
    fed: Federation, regtest: Regtest, alice: FederationClient
) -> None:
    fund(regtest, alice, 50_000)
    notes = alice.db.execute("SELECT * FROM notes WHERE state = 'unspent'").fetchall()
    inputs, signers = alice._note_inputs(notes)
    total = sum(n["amount"] for n in notes)
    out = {"kind": "pegout", "amount_sat": 1000, "fee_sat": total // 1000 - 1000}
    refund = crypto.xonly(PrivateKey())
    for bad, code in (
        ({"address": "bcrt1qzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", "refund_key": refund}, "invalid_address"),
        ({"address": regtest.miner}, "invalid_input"),  # no refund key
    ):  # fmt: skip
        tx = {"inputs": inputs, "outputs": [{**out, **bad}], "signatures": []}
        tx["signatures"] = [crypto.schnorr_sign(k, bytes.fromhex(txid(tx))) for k in signers]
        before = fed.audit()
        with pytest.raises(FedError) as err:
            fed.submit(tx)
        assert err.value.code == code and fed.audit() == before


def _refused_pegout(
    regtest: Regtest, tmp_path: Path, **fees: int
) -> tuple[Federation, FederationClient, str]:
    """A federation whose sender is stopped; a peg-out accepted; then its wallet emptied, so the
    chain refuses the payment (insufficient funds) once the sender runs."""
    fed = make_fed(regtest, tmp_path, **fees)
    alice = join(fed, tmp_path / "alice.sqlite")
    fund(regtest, alice, 100_000)
    pending = alice.withdraw(30_000, regtest.miner, timeout=0.3)
    assert pending["status"] == "pending" and pending["txid"] is None
    op = pending["operation_id"]
    assert alice.pegout_status(op) == {k: v for k, v in pending.items() if k != "detail"}
    all_of_it = regtest.rpc("getbalance", wallet=fed.chain.wallet)
    regtest.rpc("sendtoaddress", regtest.miner, all_of_it, "", "", True, wallet=fed.chain.wallet)
    assert fed.send_pending_pegouts() == 1
    return fed, alice, op


def test_a_peg_out_the_chain_refuses_fails_and_its_ecash_comes_back_once(
    regtest: Regtest, tmp_path: Path
) -> None:
    fed, alice, op = _refused_pegout(regtest, tmp_path)
    before_refund = alice.balance()
    assert fed.db.one("SELECT state, error FROM pegouts")["state"] == "failed"
    assert (
        fed.audit()["pegout_failed_open_msat"]
        == (30_000 + alice.operation(op)["data"]["fee_sat"]) * 1000
    )
    [status] = alice.settle_pegouts()
    assert status["status"] == "failed" and "Insufficient funds" in status["error"]
    value = (30_000 + status["fee_sat"]) * 1000
    assert status["refunded_msat"] == value and alice.balance() == before_refund + value
    assert alice.balance() == 100_000_000  # no fees here: every msat is back
    assert alice.settle_pegouts() == [] and alice.balance() == 100_000_000  # never twice
    # a second refund of the same peg-out, by hand, is a double spend
    pid = fed.db.one("SELECT id FROM pegouts")["id"]
    key = PrivateKey(bytes.fromhex(alice.operation(op)["data"]["refund_key"]))
    b, _ = crypto.blind(bytes.fromhex(crypto.xonly(PrivateKey())))
    tx = {"inputs": [{"kind": "pegout_refund", "pegout_id": pid}],
          "outputs": [{"kind": "note", "amount": 1 << 10, "blinded": b.format().hex()}], "signatures": []}  # fmt: skip
    tx["signatures"] = [crypto.schnorr_sign(key, bytes.fromhex(txid(tx)))]
    with pytest.raises(FedError) as again:
        fed.submit(tx)
    assert again.value.code == "double_spend"
    audit = fed.audit()
    assert audit["pegout_failed_open_msat"] == 0 and _conserved(audit)
    assert alice.pegout_status(op)["status"] == "failed"


def test_a_refused_peg_out_with_fees_comes_back_less_only_the_federations_fees(
    regtest: Regtest, tmp_path: Path
) -> None:
    fed, alice, _ = _refused_pegout(regtest, tmp_path, input_fee_msat=100, output_fee_msat=50)
    [status] = alice.settle_pegouts()
    assert status["status"] == "failed"
    # alice made every transaction: all she is short of her peg-in is the federation's fees
    assert alice.balance() == 100_000_000 - fed.audit()["fees_msat"]
    assert _conserved(fed.audit())


def test_a_refund_interrupted_by_a_crash_is_finished_by_the_next_start(
    regtest: Regtest, tmp_path: Path
) -> None:
    fed, alice, op = _refused_pegout(regtest, tmp_path)
    real_submit = alice.api.submit

    def unreachable(tx: dict) -> dict:
        raise FedApiError("federation_unreachable", "connection refused", 0)

    alice.api.submit = unreachable  # type: ignore[method-assign]
    assert alice.settle_pegouts() == []  # the refund is persisted, not sent
    assert alice.operation(op)["state"] == "submitted"
    alice.api.submit = real_submit  # type: ignore[method-assign]
    reopened = FederationClient(alice.path, alice.api)  # the process restarted
    reopened.resume()
    [status] = reopened.settle_pegouts()
    assert status["status"] == "failed" and reopened.balance() == 100_000_000
    assert reopened.settle_pegouts() == [] and reopened.balance() == 100_000_000
    assert _conserved(fed.audit())


def test_a_peg_out_sent_after_a_timeout_is_finished_in_the_background(
    regtest: Regtest, tmp_path: Path
) -> None:
    fed = make_fed(regtest, tmp_path)
    alice = join(fed, tmp_path / "alice.sqlite")
    fund(regtest, alice, 100_000)
    assert alice.withdraw(30_000, regtest.miner, timeout=0.3)["status"] == "pending"
    stop = threading.Event()
    run_pegout_sender(fed, stop, interval_s=0.1)
    try:
        deadline = time.monotonic() + 10
        while not (done := alice.settle_pegouts()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert done and done[0]["status"] == "sent" and done[0]["txid"]
        assert regtest.rpc("getrawtransaction", done[0]["txid"], True)["txid"] == done[0]["txid"]
    finally:
        stop.set()
