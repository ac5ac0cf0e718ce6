"""An LNv2 receive we funded, forgotten by a lost data folder and found again in the session
history (`Lnv2Receiver.adopt`, `Lnv2ContractFinder` for incoming contracts), on the real crates'
vectors (tests/fmclient/data/lnv2_vectors.json): decrypted -> `decrypted` with no HTLC yet and
the hash claimed at the router, then the HTLC our node held settled with the preimage (a second
HTLC cancelled); not decrypted -> `refunding`; spent with the preimage in its spend -> the
preimage from there; spent without (our refund) or known already -> nothing."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from coincurve import PrivateKey

from fmclient import tbs, tpe
from fmclient.config import parse_client_config
from fmclient.lnv2 import (
    IncomingContract,
    OutgoingContract,
    incoming_contract_in,
    incoming_output,
    incoming_spend_in,
    outgoing_output,
)
from fmclient.wallet import MintWallet
from services.actor.lnv2_inflight import Lnv2ContractFinder
from services.actor.lnv2_receive import Lnv2Receiver
from services.actor.lnv2_send import Lnv2Sender

DATA = Path(__file__).parents[1] / "fmclient" / "data"
V = json.loads((DATA / "lnv2_vectors.json").read_text())
CONFIG = parse_client_config(
    json.loads((DATA / "fedimintd_4_guardians.json").read_text())["client_config"]
)
INCOMING = IncomingContract.from_json(V["incoming"]["json"])
HASH = V["incoming"]["json"]["commitment"]["payment_image"]["Hash"]
# the key that opens the vector's contract (agg_pk · esk, as test_lnv2.py derives it), and one
# that does not (the vectors' other aggregate key, also the one their incoming spend carries)
AGG = tbs.to_bytes(
    tbs.g1(bytes.fromhex(V["incoming"]["aggregate_public_key"])).scalar_mul(
        tpe.ephemeral_sk(bytes.fromhex(V["incoming"]["encryption_seed"]))
    )
)
WRONG = bytes.fromhex(V["aggregate_decryption_key"])
REFUND = PrivateKey(bytes.fromhex(V["secret_keys"]["refund"]))
OURS = dataclasses.replace(
    INCOMING,
    commitment=dataclasses.replace(
        INCOMING.commitment, refund_pk=REFUND.public_key.format(compressed=True)
    ),
)
TXID = "cd" * 32


class Api:
    async def current_consensus(self, method: str, params: Any = None, **kw: Any) -> Any:
        raise AssertionError(f"not asked: {method}")


def _receiver(tmp_path: Path, key: PrivateKey = REFUND) -> tuple[Lnv2Receiver, list[str]]:
    claimed: list[str] = []

    async def claim_hash(payment_hash: str) -> None:
        claimed.append(payment_hash)

    mint = MintWallet(tmp_path / "w.sqlite", CONFIG, Api())  # type: ignore[arg-type]
    fees = {"base_msat": 0, "proportional_millionths": 0}
    return Lnv2Receiver(mint, key, None, fees, CONFIG.federation_id, claim_hash), claimed


def _row(receiver: Lnv2Receiver) -> dict | None:
    return receiver.row(HASH)


def test_the_encodings_read_back() -> None:
    assert incoming_contract_in(incoming_output(INCOMING)) == INCOMING
    assert incoming_contract_in(bytes.fromhex(V["incoming"]["output"])) == INCOMING
    (spend,) = [i for i in V["inputs"] if i["name"] == "incoming"]
    txid, out_idx, key = incoming_spend_in(bytes.fromhex(spend["encoding"]))  # type: ignore[misc]
    assert (txid, out_idx, key) == ("09" * 32, 1, WRONG)
    assert incoming_spend_in(bytes.fromhex(V["inputs"][0]["encoding"])) is None  # a claim


async def test_spent_with_the_preimage_is_decrypted_and_its_htlc_settled(
    tmp_path: Path,
) -> None:
    receiver, claimed = _receiver(tmp_path)
    assert await receiver.adopt(TXID, 0, INCOMING, AGG) is True
    row = _row(receiver)
    assert row is not None and row["state"] == "decrypted" and row["htlc"] is None
    assert row["preimage"] == V["incoming"]["preimage"] and row["txid"] == TXID
    assert claimed == [HASH]
    htlc = {"payment_hash": HASH, "incoming_chan_id": 5, "htlc_id": 9, "incoming_amount_msat": 1}
    assert await receiver.on_htlc(htlc) == {"action": "settle", "preimage": row["preimage"]}
    assert await receiver.on_htlc(htlc) == {"action": "settle", "preimage": row["preimage"]}
    other = await receiver.on_htlc(htlc | {"htlc_id": 10})
    assert other["action"] == "cancel" and "already paid" in other["reason"]
    assert await receiver.adopt(TXID, 0, INCOMING, AGG) is False  # known: nothing again


async def test_unspent_is_decrypted_from_the_guardians_shares(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver, claimed = _receiver(tmp_path)
    asked = []

    async def aggregate(contract: IncomingContract, txid: str, out_idx: int) -> Any:
        asked.append((txid, out_idx))
        return tbs.g1(AGG)

    monkeypatch.setattr(receiver, "_aggregate_key", aggregate)
    assert await receiver.adopt(TXID, 2, INCOMING, None) is True
    assert asked == [(TXID, 2)] and claimed == [HASH]
    assert (_row(receiver) or {})["state"] == "decrypted"


async def test_unspent_that_does_not_decrypt_is_refunded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver, claimed = _receiver(tmp_path)

    async def aggregate(contract: IncomingContract, txid: str, out_idx: int) -> Any:
        return tbs.g1(WRONG)

    monkeypatch.setattr(receiver, "_aggregate_key", aggregate)
    assert await receiver.adopt(TXID, 0, INCOMING, None) is True
    row = _row(receiver) or {}
    assert row["state"] == "refunding" and row["preimage"] is None
    assert row["agg_dk"] == WRONG.hex() and claimed == [HASH]


async def test_spent_without_the_preimage_was_our_refund(tmp_path: Path) -> None:
    receiver, claimed = _receiver(tmp_path)
    assert await receiver.adopt(TXID, 0, INCOMING, WRONG) is False
    assert _row(receiver) is None and claimed == []


def test_the_finder_keeps_incoming_contracts_refunded_to_us_and_their_spends(
    tmp_path: Path,
) -> None:
    receiver, _ = _receiver(tmp_path)
    mint = receiver.mint
    sender = Lnv2Sender(mint, REFUND, None, {}, CONFIG.federation_id)
    finder = Lnv2ContractFinder(sender, 2000, receiver)
    finder.output(TXID, 0, incoming_output(OURS))
    finder.output(TXID, 3, incoming_output(INCOMING))  # refunded to another gateway
    theirs = Lnv2ContractFinder(
        Lnv2Sender(mint, PrivateKey(), None, {}, CONFIG.federation_id), 2000, receiver
    )
    theirs.output(TXID, 0, incoming_output(OURS))
    finder.output(TXID, 1, b"\x00garbage")
    (spend,) = [i for i in V["inputs"] if i["name"] == "incoming"]
    finder.input("ef" * 32, 0, bytes.fromhex(spend["encoding"]))
    finder.input("ef" * 32, 1, bytes.fromhex(V["inputs"][0]["encoding"]))  # an outgoing claim
    assert finder.incoming == {(TXID, 0): OURS} and theirs.incoming == {}
    assert finder.spent == {("09" * 32, 1): WRONG}
    finder.output(TXID, 2, outgoing_output(OutgoingContract.from_json(V["outgoing"]["json"])))
    assert len(finder.incoming) == 1  # an outgoing contract is the sender's side
