"""bench/_lnv2_users.py, the benches' user-side LNv2 send, against the vectors printed by the real
fedimint-lnv2-common 0.13.0 (tests/fmclient/data/lnv2_vectors.json): the contract it builds and
its fee, the `/send_payment` body and its auth, the gateway answers it accepts; and its own
rules, as fedimint-lnv2-client 0.13.0 states them (terms, limits, the refund key, URLs)."""

from __future__ import annotations

import json
from dataclasses import replace
from hashlib import sha256
from pathlib import Path

import pytest
from bolt11 import decode as bolt11_decode
from coincurve import PrivateKey

from bench._lnv2_users import (
    SEND_FEE_LIMIT,
    Fee,
    PaymentFailed,
    RoutingInfo,
    gateway_answer,
    outgoing_contract,
    refund_key,
    route,
    send_payment_body,
)
from fmclient.lnv2 import OutgoingContract, PaymentImage, invoice_hash

V = json.loads((Path(__file__).parents[1] / "fmclient" / "data" / "lnv2_vectors.json").read_text())
PAYLOAD = V["send_payment_payload"]
CONTRACT = OutgoingContract.from_json(PAYLOAD["contract"])
BOLT11 = PAYLOAD["invoice"]["Bolt11"]
INVOICE = bolt11_decode(BOLT11)
STATIC = PrivateKey(bytes([7]) * 32)
# gatewayd's default transaction fee (PaymentFee::TRANSACTION_FEE_DEFAULT: 2 sat + 3,000 ppm),
# the fee the vector's contract carries over its 250,000 sat invoice
GATEWAYD_FEE = Fee(2_000, 3_000)


def routing(**changes: object) -> RoutingInfo:
    fields = {
        "lightning_public_key": "03" + "11" * 32,
        "module_public_key": bytes.fromhex(PAYLOAD["contract"]["claim_pk"]),
        "send_fee_default": GATEWAYD_FEE,
        "send_fee_minimum": Fee(0, 0),
        "expiration_delta_default": 132,
        "expiration_delta_minimum": 20,
    }
    return RoutingInfo(**{**fields, **changes})  # type: ignore[arg-type]


def contract_for(info: RoutingInfo, network: str = "regtest") -> tuple[OutgoingContract, bytes]:
    pk = STATIC.public_key.format(compressed=True)
    return outgoing_contract(BOLT11, info, 1_000_000, pk, network, now=INVOICE.date)


def test_the_contract_is_the_crates_but_for_the_payers_fresh_keys() -> None:
    contract, secret = contract_for(routing())
    assert contract.amount_msat == CONTRACT.amount_msat == 250_752_000  # invoice + 2 sat + 0.3 %
    assert contract.expiration == CONTRACT.expiration == 1_000_000 + 132 + 12
    assert contract.payment_image == CONTRACT.payment_image
    assert contract.claim_pk == CONTRACT.claim_pk
    assert contract.refund_pk == PrivateKey(secret).public_key.format(compressed=True)
    # the refund key is the ECDH tweak the payer's static key recovers from the ephemeral key
    assert STATIC.ecdh(contract.ephemeral_pk) == secret


def test_the_send_payment_body_is_the_crates_and_its_auth_verifies() -> None:
    refund = bytes.fromhex(V["secret_keys"]["refund"])
    assert PrivateKey(refund).public_key.format(compressed=True) == CONTRACT.refund_pk
    o = PAYLOAD["outpoint"]
    body = send_payment_body(
        PAYLOAD["federation_id"], o["txid"], o["out_idx"], CONTRACT, BOLT11, refund
    )
    assert {k: v for k, v in body.items() if k != "auth"} == {
        k: v for k, v in PAYLOAD.items() if k != "auth"
    }
    assert invoice_hash(BOLT11).hex() == V["invoice"]["hash"]
    for auth in (body["auth"], PAYLOAD["auth"]):  # BIP340 with fresh aux: ours differs, both verify
        assert CONTRACT.verify_invoice_auth(invoice_hash(BOLT11), bytes.fromhex(auth))


def test_the_gateway_answers_it_accepts() -> None:
    preimage = bytes(V["send_payment_ok"]["Ok"])  # the JSON form's vector, of another hash
    paid = replace(CONTRACT, payment_image=PaymentImage("Hash", sha256(preimage).digest()))
    assert gateway_answer(paid, V["send_payment_ok"]) == ("preimage", preimage)
    assert gateway_answer(CONTRACT, V["send_payment_ok"]) is None
    forfeit = bytes.fromhex(V["send_payment_err"]["Err"])
    assert gateway_answer(CONTRACT, V["send_payment_err"]) == ("forfeit", forfeit)
    wrong_sig = PrivateKey(bytes([3]) * 32).sign_schnorr(CONTRACT.contract_id, bytes(32))
    for bad in (
        {"Ok": [0] * 32},  # not the preimage
        {"Ok": [1] * 31},
        {"Err": wrong_sig.hex()},  # not the claim key's
        {"Err": "zz"},
        {"Ok": list(preimage), "Err": forfeit.hex()},
        None,
        "Ok",
    ):
        assert gateway_answer(paid, bad) is None, bad


def test_terms_follow_the_payee_and_the_limits() -> None:
    own_node = routing(lightning_public_key=INVOICE.payee)
    contract, _ = contract_for(own_node)  # the gateway's own invoice: the minimum terms
    assert contract.amount_msat == INVOICE.amount_msat
    assert contract.expiration == 1_000_000 + 20 + 12
    assert Fee(1_000, 10_000).of(1_000_000) == 11_000
    assert SEND_FEE_LIMIT.within(SEND_FEE_LIMIT)
    for info, why in (
        (routing(send_fee_default=Fee(100_001, 0)), "fee exceeds"),
        (routing(send_fee_default=Fee(0, 15_001)), "fee exceeds"),
        (routing(expiration_delta_default=1441), "expiration delta"),
    ):
        with pytest.raises(PaymentFailed, match=why):
            contract_for(info)
    with pytest.raises(PaymentFailed, match="bcrt, the federation of bitcoin"):
        contract_for(routing(), network="bitcoin")
    with pytest.raises(PaymentFailed, match="expired"):
        pk = STATIC.public_key.format(compressed=True)
        outgoing_contract(BOLT11, routing(), 1, pk, "regtest", now=INVOICE.date + 3601)


def test_refund_keys_are_fresh_and_recoverable() -> None:
    pk = STATIC.public_key.format(compressed=True)
    (a, ea), (b, eb) = refund_key(pk), refund_key(pk)
    assert a != b and ea != eb
    assert STATIC.ecdh(ea) == a and STATIC.ecdh(eb) == b
    fixed = refund_key(pk, bytes([9]) * 32)
    assert fixed == (
        PrivateKey(bytes([9]) * 32).ecdh(pk),
        PrivateKey(bytes([9]) * 32).public_key.format(),
    )


def test_routes_drop_the_gateway_urls_path() -> None:
    assert route("http://127.0.0.1:8175/", "/send_payment") == "http://127.0.0.1:8175/send_payment"
    assert route("http://gw.example/v1/x/", "/routing_info") == "http://gw.example/routing_info"


def test_bobs_invoice_is_read_from_lnds_answer() -> None:
    """side_by_side_load reads AddInvoiceResponse {r_hash = 1, payment_request = 2, add_index =
    16, payment_addr = 17} from protobuf's wire format (the project's stubs leave it out)."""
    from bench.side_by_side_load import payment_request

    answer = (
        b"\x0a\x20" + bytes(32)  # r_hash
        + b"\x80\x01\x07"  # add_index 7 (field 16: a two-byte tag)
        + b"\x8a\x01\x20" + bytes(32)  # payment_addr
        + b"\x12" + bytes([len(BOLT11) & 0x7F | 0x80, len(BOLT11) >> 7]) + BOLT11.encode()
    )  # fmt: skip
    assert payment_request(answer) == BOLT11
    with pytest.raises(ValueError, match="without a payment_request"):
        payment_request(answer[:34])
