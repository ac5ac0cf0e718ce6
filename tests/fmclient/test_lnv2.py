"""fmclient.lnv2 against vectors printed by the real fedimint-lnv2-common 0.13.0 (make vectors)
and the client config of a real 4-guardian federation: contracts (encoding, ids, JSON both
ways), the invoice's encoding and the payer's auth, forfeit signatures, inputs and outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from coincurve import PrivateKey

from fmclient import lnv2, tpe
from fmclient.config import parse_client_config
from fmclient.tbs import g1

DATA = Path(__file__).parent / "data"
V = json.loads((DATA / "lnv2_vectors.json").read_text())


def test_outgoing_contract_bytes_id_and_json_are_the_real_crates() -> None:
    out = V["outgoing"]
    contract = lnv2.OutgoingContract.from_json(out["json"])
    assert contract.to_bytes().hex() == out["encoding"]
    assert lnv2.OutgoingContract.from_bytes(contract.to_bytes()) == contract
    assert contract.contract_id.hex() == out["contract_id"]
    assert contract.json() == out["json"]
    assert lnv2.outgoing_output(contract).hex() == out["output"]
    # the gateway's forfeit (claim key over the contract id) and the payer's auth (refund key
    # over the invoice's hash), each checked against the crates' own signature
    assert contract.verify_forfeit(bytes.fromhex(out["forfeit_signature"]))
    claim = bytes.fromhex(V["secret_keys"]["claim"])
    assert contract.verify_forfeit(contract.forfeit_signature(claim))
    assert not contract.verify_forfeit(contract.forfeit_signature(bytes.fromhex("11" * 32)))
    inv = V["invoice"]
    assert lnv2.invoice_encoding(inv["bolt11"]).hex() == inv["encoding"]
    assert lnv2.invoice_hash(inv["bolt11"]).hex() == inv["hash"]
    assert contract.verify_invoice_auth(bytes.fromhex(inv["hash"]), bytes.fromhex(inv["auth"]))
    assert not contract.verify_invoice_auth(bytes(32), bytes.fromhex(inv["auth"]))


def test_incoming_contract_is_the_real_crates_and_decrypts() -> None:
    inc = V["incoming"]
    contract = lnv2.IncomingContract.from_json(inc["json"])
    assert contract.to_bytes().hex() == inc["encoding"]
    assert lnv2.IncomingContract.from_bytes(contract.to_bytes()) == contract
    assert contract.commitment.hash.hex() == inc["commitment_hash"]
    assert contract.contract_id.hex() == inc["contract_id"]
    assert contract.json() == inc["json"]
    assert lnv2.incoming_output(contract).hex() == inc["output"]
    assert contract.verify()
    # the aggregate decryption key is agg_pk · esk; with it the preimage comes out
    esk = tpe.ephemeral_sk(bytes.fromhex(inc["encryption_seed"]))
    agg_dk = g1(bytes.fromhex(inc["aggregate_public_key"])).scalar_mul(esk)
    assert contract.decrypt(agg_dk) == bytes.fromhex(inc["preimage"])
    assert contract.decrypt(g1(bytes.fromhex(V["aggregate_decryption_key"]))) is None
    tampered = json.loads(json.dumps(inc["json"]))
    tampered["commitment"]["amount"] += 1  # the ciphertext is bound to the commitment
    assert not lnv2.IncomingContract.from_json(tampered).verify()


def test_inputs_are_the_real_crates() -> None:
    txid, idx = "09" * 32, 1
    preimage = bytes.fromhex(V["incoming"]["preimage"])
    forfeit = bytes.fromhex(V["outgoing"]["forfeit_signature"])
    made = {
        "outgoing_claim": lnv2.claim_input(txid, idx, preimage),
        "outgoing_refund": lnv2.refund_input(txid, idx),
        "outgoing_cancel": lnv2.cancel_input(txid, idx, forfeit),
        "incoming": lnv2.incoming_input(
            txid, idx, g1(bytes.fromhex(V["aggregate_decryption_key"]))
        ),
    }
    assert {i["name"]: i["encoding"] for i in V["inputs"]} == {k: v.hex() for k, v in made.items()}


def test_gateway_api_bodies_parse() -> None:
    send = V["send_payment_payload"]
    assert lnv2.OutgoingContract.from_json(send["contract"]).json() == send["contract"]
    assert send["invoice"] == {"Bolt11": V["invoice"]["bolt11"]}
    assert set(send["outpoint"]) == {"txid", "out_idx"}
    assert len(V["send_payment_ok"]["Ok"]) == 32 and len(V["send_payment_err"]["Err"]) == 128
    create = V["create_bolt11_invoice_payload"]
    assert lnv2.IncomingContract.from_json(create["contract"]).verify()
    assert create["description"] == {"Direct": "coffee"} and create["amount"] == 100_000


def test_the_config_of_a_real_federation() -> None:
    doc = json.loads((DATA / "fedimintd_4_guardians.json").read_text())["client_config"]
    cfg = parse_client_config(doc)
    lncfg = lnv2.Lnv2Config.from_bytes(cfg.modules[cfg.module_id("lnv2")].body)
    assert sorted(lncfg.tpe_pks) == [0, 1, 2, 3] and lncfg.network == "regtest"
    assert lncfg.fee_msat(0) in (0, 1000)  # 1 sat base, or none when base fees are off


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {**V["outgoing"]["json"], "amount": -1},
        {**V["outgoing"]["json"], "claim_pk": "00" * 33},
        {**V["outgoing"]["json"], "payment_image": {"Hash": "ab"}},
        {**V["outgoing"]["json"], "payment_image": {"Sha": "ab" * 32}},
    ],
)
def test_bad_contracts_say_why(bad: dict) -> None:
    with pytest.raises(lnv2.Lnv2Error):
        lnv2.OutgoingContract.from_json(bad)


def test_point_payment_images() -> None:
    secret = bytes.fromhex("22" * 32)
    image = lnv2.PaymentImage("Point", PrivateKey(secret).public_key.format())
    assert image.verify_preimage(secret) and not image.verify_preimage(bytes(32))
