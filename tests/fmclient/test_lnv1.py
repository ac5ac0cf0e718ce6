"""fmclient.lnv1, fmclient.lnv1_tx and fmclient.lnv1_gateway against vectors printed by the real
fedimint-ln-common 0.13.0 (make vectors): the client config, the gateway registration (encoding,
signed message, announcement JSON), contracts (encoding, ids, JSON both ways), the cancellation
message, inputs, outputs, outcomes, the guardians' answers and the `/pay_invoice` body."""

from __future__ import annotations

import copy
import hashlib
import json
import time
from pathlib import Path

import pytest
from coincurve import PrivateKey

from fmclient import lnv1_checks, lnv1_tx
from fmclient.encoding import encode
from fmclient.lnv1 import (
    INVALID,
    PENDING,
    ContractAccount,
    IncomingContract,
    IncomingContractOffer,
    Lnv1Config,
    OutgoingContract,
)
from fmclient.lnv1_checks import Lnv1Error
from fmclient.lnv1_gateway import (
    Announcement,
    LightningGateway,
    PayInvoicePayload,
    PrunedInvoice,
    lnv1_fee_msat,
    normalize_url,
    parse_gateways,
    registration_message,
)

DATA = Path(__file__).parent / "data"
V = json.loads((DATA / "lnv1_vectors.json").read_text())
KEYS = {k: bytes.fromhex(v) for k, v in V["secret_keys"].items()}


def test_client_config_both_ways() -> None:
    c = V["config"]
    config = Lnv1Config.from_bytes(bytes.fromhex(c["encoding"]))
    assert config == Lnv1Config(bytes.fromhex(c["threshold_pub_key"]), 7, 1300, "regtest")
    assert config.to_bytes().hex() == c["encoding"]
    assert c["json"]["fee_consensus"] == {"contract_input": 7, "contract_output": 1300}
    with pytest.raises(Lnv1Error, match="magic"):
        Lnv1Config.from_bytes(bytes.fromhex(c["encoding"][:-8] + "01020304"))


def test_gateway_registration_is_the_real_crates() -> None:
    g = V["gateway"]
    info = LightningGateway.from_json(g["json"])
    assert info.json() == g["json"]
    assert info.to_bytes().hex() == g["encoding"]
    assert lnv1_checks.decode(bytes.fromhex(g["encoding"]), LightningGateway.get, "gateway") == info
    tpk = bytes.fromhex(V["config"]["threshold_pub_key"])
    assert registration_message(tpk, g["nonce"], info).hex() == g["registration_message"]
    # the crate's announcement (its signature included) parses, verifies and comes back whole
    theirs = Announcement.from_json(g["announcement"])
    assert theirs.json() == g["announcement"]
    assert theirs.verify(tpk)
    assert not theirs.verify(bytes(48))  # bound to the federation's key
    ours = Announcement.signed(info, 600, KEYS["gateway_id"], tpk, nonce=g["nonce"])
    assert ours.verify(tpk)
    assert ours.json()["info"] == g["announcement"]["info"]
    assert ours.json()["ttl"] == g["announcement"]["ttl"] == {"secs": 600, "nanos": 0}
    assert not Announcement.signed(info, 600, KEYS["node"], tpk, nonce=1).verify(tpk)
    unsigned = Announcement.from_json(g["announcement_unsigned"])
    assert unsigned.json() == g["announcement_unsigned"] and unsigned.verify(tpk)
    listed = parse_gateways(V["answers"]["list_gateways"])
    assert [a.json() for a in listed] == V["answers"]["list_gateways"]


def test_registration_nonce_is_unix_millis() -> None:
    info = LightningGateway.from_json(V["gateway"]["json"])
    a = Announcement.signed(info, 600, KEYS["gateway_id"], bytes(48))
    assert abs(a.nonce - time.time() * 1000) < 5_000


def test_fees_are_lnv1s_truncated_divisor() -> None:
    for case in V["fees"]:
        got = lnv1_fee_msat(case["base_msat"], case["proportional_millionths"], case["amount_msat"])
        assert got == case["fee_msat"], case
    assert lnv1_fee_msat(0, 3_000, 1_000_000) == 3_003  # not 3_000


def test_urls_are_written_as_safeurl_writes_them() -> None:
    assert normalize_url("http://127.0.0.1:8175") == "http://127.0.0.1:8175/"
    assert normalize_url("HTTPS://GW.example:443/v1") == "https://gw.example/v1"
    assert normalize_url("http://[::1]:80/") == "http://[::1]/"
    with pytest.raises(Lnv1Error):
        normalize_url("ftp://x/")


def test_outgoing_contract_id_cancellation_and_json() -> None:
    o = V["outgoing"]
    c = OutgoingContract.from_json(o["json"])
    assert encode(c.put).hex() == o["encoding"]
    assert lnv1_checks.decode(bytes.fromhex(o["encoding"]), OutgoingContract.get, "contract") == c
    assert c.contract_id.hex() == o["contract_id"]
    cancelled = OutgoingContract.from_json(o["cancelled_json"])
    assert cancelled.cancelled and cancelled.contract_id == c.contract_id  # not in the id
    assert c.json() == o["json"]
    assert c.cancellation_message.hex() == o["cancellation_message"]
    assert c.verify_cancel_signature(bytes.fromhex(o["cancel_signature"]))
    assert c.verify_cancel_signature(c.cancel_signature(KEYS["redeem"]))
    assert not c.verify_cancel_signature(c.cancel_signature(KEYS["user"]))


def test_incoming_offer_and_contract() -> None:
    i = V["incoming"]
    offer = IncomingContractOffer.from_json(i["offer_json"])
    assert offer.json() == i["offer_json"]
    assert encode(offer.put).hex() == i["offer_encoding"]
    assert offer.encrypted_preimage.data.hex() == i["ciphertext"]
    assert offer.hash.hex() == i["payment_hash"]
    # the Lightning preimage is SHA-256 of the 33-byte preimage key; its hash is the offer's
    key = bytes.fromhex(i["preimage_key"])
    assert hashlib.sha256(key).hexdigest() == i["preimage"]
    assert hashlib.sha256(bytes.fromhex(i["preimage"])).hexdigest() == i["payment_hash"]
    redeem = bytes.fromhex(V["gateway"]["json"]["gateway_redeem_key"])
    contract = IncomingContract.funding(offer, redeem)
    assert contract.json() == i["json"]
    assert encode(contract.put).hex() == i["encoding"]
    assert contract.contract_id.hex() == i["contract_id"] == i["payment_hash"]
    for name, state in (("some", key), ("invalid", INVALID)):
        c = IncomingContract.from_json(i[f"{name}_json"])
        assert c.decrypted_preimage == state and c.json() == i[f"{name}_json"]
        assert encode(c.put).hex() == i[f"{name}_encoding"]
        assert (
            lnv1_checks.decode(bytes.fromhex(i[f"{name}_encoding"]), IncomingContract.get, "c") == c
        )


def test_contract_accounts_both_ways() -> None:
    a = V["accounts"]
    for kind in ("outgoing", "incoming"):
        account = ContractAccount.from_json(a[f"{kind}_json"])
        assert account.json() == a[f"{kind}_json"]
        assert encode(account.put).hex() == a[f"{kind}_encoding"]
        assert (
            lnv1_checks.decode(bytes.fromhex(a[f"{kind}_encoding"]), ContractAccount.get, "a")
            == account
        )
    incoming = ContractAccount.from_json(a["incoming_json"])
    assert incoming.out_point == ("09" * 32, 1) and incoming.amount_msat == 99_000
    assert lnv1_tx.parse_account(a["account_none"]) is None
    some = lnv1_tx.parse_account(a["account_some"])
    assert some is not None and some.amount_msat == V["outgoing"]["amount_msat"] == 250_626_000
    assert some.contract_id.hex() == V["outgoing"]["contract_id"]


def test_inputs_outputs_and_outcomes_are_the_real_crates() -> None:
    o, i = V["outgoing"], V["incoming"]
    contract = OutgoingContract.from_json(o["json"])
    incoming = IncomingContract.from_json(i["json"])
    offer = IncomingContractOffer.from_json(i["offer_json"])
    inputs = {
        "claim": lnv1_tx.lightning_input(contract.contract_id, o["amount_msat"], bytes([42] * 32)),
        "refund": lnv1_tx.lightning_input(incoming.contract_id, 99_000, None),
    }
    assert {x["name"]: x["encoding"] for x in V["inputs"]} == {
        k: v.hex() for k, v in inputs.items()
    }
    sig = bytes.fromhex(o["cancel_signature"])
    outputs = {
        "contract_outgoing": lnv1_tx.contract_output(o["amount_msat"], contract),
        "contract_incoming": lnv1_tx.contract_output(99_000, incoming),
        "offer": lnv1_tx.offer_output(offer),
        "cancel_outgoing": lnv1_tx.cancel_outgoing_output(contract.contract_id, sig),
    }
    assert {x["name"]: x["encoding"] for x in V["outputs"]} == {
        k: v.hex() for k, v in outputs.items()
    }
    # read back (the recovery's scan of the session history): the outgoing contract only
    found = {
        x["name"]: lnv1_tx.outgoing_contract_in(bytes.fromhex(x["encoding"])) for x in V["outputs"]
    }
    assert found == {
        "contract_outgoing": (o["amount_msat"], contract),
        "contract_incoming": None,
        "offer": None,
        "cancel_outgoing": None,
    }
    whole = bytes.fromhex(V["outputs"][0]["encoding"])
    for bad in (whole[:-1], whole + b"\x00", b""):
        with pytest.raises(lnv1_checks.Lnv1Error):
            lnv1_tx.outgoing_contract_in(bad)
    assert lnv1_tx.outgoing_contract_in(bytes.fromhex("0100")) is None  # a version to come
    # an incoming contract a gateway funded, read back the same way
    found_in = {
        x["name"]: lnv1_tx.incoming_contract_in(bytes.fromhex(x["encoding"])) for x in V["outputs"]
    }
    assert found_in == {
        "contract_outgoing": None,
        "contract_incoming": (99_000, incoming),
        "offer": None,
        "cancel_outgoing": None,
    }
    with pytest.raises(lnv1_checks.Lnv1Error):
        lnv1_tx.contract_in(bytes.fromhex(V["outputs"][1]["encoding"])[:-1])
    want = {
        "contract_incoming_pending": ("contract", incoming.contract_id, PENDING),
        "contract_incoming_some": (
            "contract",
            incoming.contract_id,
            bytes.fromhex(i["preimage_key"]),
        ),
        "contract_incoming_invalid": ("contract", incoming.contract_id, INVALID),
        "contract_outgoing": ("contract", contract.contract_id, None),
        "offer": ("offer", offer.hash, None),
        "cancel_outgoing": ("cancel_outgoing", contract.contract_id, None),
    }
    for x in V["outcomes"]:
        got = lnv1_tx.OutputOutcome.from_bytes(bytes.fromhex(x["encoding"]))
        assert (got.kind, got.id, got.decrypted) == want[x["name"]]


def test_decryption_answers() -> None:
    ans, preimage = V["answers"], bytes.fromhex(V["incoming"]["preimage"])
    for name, want in (
        ("await_preimage_decryption_some", preimage),
        ("await_preimage_decryption_invalid", INVALID),
        ("status_pending", PENDING),
        ("status_some", preimage),
        ("status_invalid", INVALID),
    ):
        account, status = lnv1_tx.parse_decryption(ans[name])
        assert status == want, name
        assert (
            account.amount_msat == 99_000
            and account.contract_id.hex() == V["incoming"]["payment_hash"]
        )
    offer = lnv1_tx.parse_offer(ans["offer"])
    assert offer is not None and offer.amount_msat == 99_000
    assert lnv1_tx.parse_offer(None) is None
    with pytest.raises(Lnv1Error):
        lnv1_tx.parse_decryption([ans["status_some"][0], [1, 2, 3]])


def test_pay_invoice_payload_both_forms() -> None:
    whole = PayInvoicePayload.from_json(V["pay_invoice_payload"])
    assert whole.invoice == V["invoice"]["bolt11"] and whole.pruned is None
    assert whole.contract_id.hex() == V["outgoing"]["contract_id"]
    assert whole.json() == V["pay_invoice_payload"]
    pruned = PayInvoicePayload.from_json(V["pay_invoice_payload_pruned"])
    assert pruned.invoice is None and pruned.pruned is not None
    assert pruned.json() == V["pay_invoice_payload_pruned"]
    assert pruned.pruned.payment_hash.hex() == V["outgoing"]["json"]["hash"]
    assert encode(pruned.pruned.put).hex() == V["invoice"]["pruned_encoding"]
    assert PrunedInvoice.from_json(V["invoice"]["pruned"]) == pruned.pruned
    # the CamelCase spelling of earlier documents is read too
    camel = copy.deepcopy(V["pay_invoice_payload"])
    camel["payment_data"] = {"Invoice": V["invoice"]["bolt11"]}
    assert PayInvoicePayload.from_json(camel) == whole


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("preimage_auth"),
        lambda d: d.update(contract_id="zz"),
        lambda d: d.update(payment_data={"invoice": 5}),
        lambda d: d.update(payment_data={"bolt12": "x"}),
        lambda d: d.update(federation_id="00"),
    ],
)
def test_bad_pay_invoice_bodies_are_one_line_errors(mutate) -> None:  # type: ignore[no-untyped-def]
    body = copy.deepcopy(V["pay_invoice_payload"])
    mutate(body)
    with pytest.raises(Lnv1Error) as e:
        PayInvoicePayload.from_json(body)
    assert "\n" not in str(e.value)


def test_decoders_refuse_garbage() -> None:
    enc = bytes.fromhex(V["outgoing"]["encoding"])
    with pytest.raises(Lnv1Error):
        lnv1_checks.decode(enc + b"\x00", OutgoingContract.get, "contract")
    with pytest.raises(Lnv1Error):
        lnv1_checks.decode(enc[:-1], OutgoingContract.get, "contract")
    bad = copy.deepcopy(V["outgoing"]["json"])
    bad["gateway_key"] = "04" + "00" * 32
    with pytest.raises(Lnv1Error, match="gateway_key"):
        OutgoingContract.from_json(bad)
    with pytest.raises(Lnv1Error):
        lnv1_tx.OutputOutcome.from_bytes(bytes.fromhex("0003050100"))
    assert (
        PrivateKey(KEYS["redeem"]).public_key.format().hex() == V["outgoing"]["json"]["gateway_key"]
    )
