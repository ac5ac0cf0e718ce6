"""fmclient.walletv1 against vectors printed by the real fedimint-wallet-common 0.13.0
(make vectors): the client config both ways, peg-in addresses (the descriptor tweaked by a
tweak key), the txout proof and the peg-in proof, both claim inputs and a claim's txid, peg-outs
to every standard address type, peg-out fees and the output outcome."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmclient import walletv1
from fmclient.tx import ModuleItem, Transaction
from fmclient.walletv1 import PegInProof, PegOutFees, WalletV1Config, WalletV1Error

DATA = Path(__file__).parent / "data"
V = json.loads((DATA / "walletv1_vectors.json").read_text())


@pytest.mark.parametrize("case", V["peg_in"], ids=lambda c: f"{c['guardians']}-guardians")
def test_config_and_peg_in_address_are_the_real_crates(case: dict) -> None:
    config = WalletV1Config.from_bytes(bytes.fromhex(case["config"]))
    assert config.to_bytes().hex() == case["config"]
    assert str(config.descriptor) == case["descriptor"]
    assert (config.network, config.finality_delay) == ("regtest", 10)
    assert (config.peg_in_fee_msat, config.peg_out_fee_msat) == (1_000_000, 0)
    assert (config.rpc_kind, config.rpc_url) == ("esplora", "http://127.0.0.1:50002/")
    tweak = bytes.fromhex(case["tweak_key"])
    assert config.peg_in_script(tweak).hex() == case["script_pubkey"]
    assert config.peg_in_address(tweak) == case["address"]
    # another tweak key, another address
    assert (
        config.peg_in_address(bytes.fromhex(V["peg_in"][0]["descriptor"][5:71]))
        != (case["address"])
    )


@pytest.mark.parametrize("case", V["peg_in"], ids=lambda c: f"{c['guardians']}-guardians")
def test_peg_in_proof_inputs_and_claim_txid_are_the_real_crates(case: dict) -> None:
    tweak = bytes.fromhex(case["tweak_key"])
    proof = PegInProof.make(
        bytes.fromhex(case["txout_proof_bitcoin"]), bytes.fromhex(case["transaction"]), 1, tweak
    )
    assert proof.txout_proof.raw.hex() == case["txout_proof"]  # bitcoind's bytes are the crate's
    assert proof.txout_proof.block_hash == case["block_hash"]
    assert proof.txid == case["txid"]
    assert proof.tx_out() == (150_000, bytes.fromhex(case["script_pubkey"]))
    assert proof.to_bytes().hex() == case["peg_in_proof"]
    v0, v1 = walletv1.claim_input_v0(proof), walletv1.claim_input_v1(proof)
    assert v0.hex() == case["input_v0"] and v1.hex() == case["input_v1"]
    for body, txid in ((v0, case["claim_txid_v0"]), (v1, case["claim_txid_v1"])):
        tx = Transaction([ModuleItem(V["module"], body)], [], bytes([7] * 8))
        assert tx.txid == txid


def test_a_proof_that_does_not_hold_the_output_is_refused() -> None:
    case = V["peg_in"][0]
    raw, tx = bytes.fromhex(case["txout_proof_bitcoin"]), bytes.fromhex(case["transaction"])
    tweak = bytes.fromhex(case["tweak_key"])
    with pytest.raises(WalletV1Error, match="no output 2"):
        PegInProof.make(raw, tx, 2, tweak)
    other = bytes.fromhex(V["peg_in"][1]["transaction"])
    with pytest.raises(WalletV1Error, match="does not hold the transaction"):
        PegInProof.make(raw, other, 1, tweak)
    broken = bytearray(raw)
    broken[90] ^= 1  # a hash in the tree: the root is no longer the header's
    with pytest.raises(WalletV1Error, match="does not belong to the block header"):
        PegInProof.make(bytes(broken), tx, 1, tweak)
    with pytest.raises(WalletV1Error):
        PegInProof.make(raw[:-1], tx, 1, tweak)


@pytest.mark.parametrize("kind", sorted(V["peg_outs"]))
def test_peg_out_to_every_address_type_is_the_real_crates(kind: str) -> None:
    fees = PegOutFees.from_json(V["peg_out_fees"]["json"])
    assert fees.amount_sat == V["peg_out_fees"]["amount_sat"]
    case = V["peg_outs"][kind]
    body = walletv1.peg_out_output(case["address"], "regtest", 25_000, fees)
    assert body.hex() == case["output"]
    assert ModuleItem(V["module"], body).body.hex() == case["output"]


def test_peg_out_fees_round_up_to_whole_vbytes() -> None:
    assert PegOutFees(1000, 4000).amount_sat == 1000  # `PegOutFees::from_amount`'s identity
    assert PegOutFees(1000, 4001).amount_sat == 1001
    assert PegOutFees(2500, 1234).amount_sat == 309 * 2500 // 1000
    with pytest.raises(WalletV1Error):
        PegOutFees.from_json({"fee_rate": {"sats_per_kvb": -1}, "total_weight": 4})
    with pytest.raises(WalletV1Error):
        PegOutFees.from_json(None)


def test_outcome_is_the_federations_bitcoin_txid() -> None:
    out = V["outcome"]
    assert walletv1.peg_out_outcome_txid(bytes.fromhex(out["encoding"])) == out["btc_txid"]
    with pytest.raises(WalletV1Error):
        walletv1.peg_out_outcome_txid(bytes.fromhex("01" + out["encoding"][2:]))


def test_a_bad_descriptor_is_refused() -> None:
    good = V["peg_in"][0]["descriptor"]
    with pytest.raises(WalletV1Error, match="checksum"):
        walletv1.PegInDescriptor.parse(good[:-1] + ("a" if good[-1] != "a" else "b"))
    with pytest.raises(WalletV1Error, match="unsupported"):
        walletv1.PegInDescriptor.parse("tr(" + good[5:71] + ")")
    assert str(walletv1.PegInDescriptor.parse(good.split("#")[0])) == good


def test_a_transaction_that_is_not_one_is_refused() -> None:
    case = V["peg_in"][0]
    raw, tweak = bytes.fromhex(case["txout_proof_bitcoin"]), bytes.fromhex(case["tweak_key"])
    with pytest.raises(WalletV1Error, match="not a bitcoin transaction"):
        PegInProof.make(raw, b"\x02\x00", 0, tweak)
