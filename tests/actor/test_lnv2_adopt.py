"""An LNv2 outgoing contract to us that a lost data folder forgot, found again in the session
history (services/actor/inflight.py) and taken up by `Lnv2Sender.adopt` from what our node
knows of its payment hash (services/actor/lnv2_send.py): settled -> `paid` with the preimage
(the hash claimed gateway-wide); failed -> `forfeited` with a forfeit that verifies; in flight
-> `paying`, or a retryable error while the node keeps no invoice; never paid, spent, expired,
a point image, or already known -> nothing written. And `Lnv2ContractFinder.output` keeps only
outgoing contracts to our claim key. The real crates' contract vectors; node and guardians
faked."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import grpc
import pytest
from coincurve import PrivateKey

from fmclient.config import parse_client_config
from fmclient.lnv2 import (
    IncomingContract,
    OutgoingContract,
    PaymentImage,
    incoming_output,
    outgoing_output,
)
from fmclient.wallet import MintWallet
from gwcore.errors import GatewayError
from gwproto import gateway_lnrpc_pb2 as lnpb
from services.actor.lnv2_inflight import Lnv2ContractFinder
from services.actor.lnv2_send import Lnv2Sender

DATA = Path(__file__).parents[1] / "fmclient" / "data"
V = json.loads((DATA / "lnv2_vectors.json").read_text())
CONFIG = parse_client_config(
    json.loads((DATA / "fedimintd_4_guardians.json").read_text())["client_config"]
)
CONTRACT = OutgoingContract.from_json(V["outgoing"]["json"])
CID = V["outgoing"]["contract_id"]
HASH = V["outgoing"]["json"]["payment_image"]["Hash"]
INVOICE = V["send_payment_payload"]["invoice"]["Bolt11"]  # pays HASH, 250,000 sat
FEES = {"base_msat": 0, "proportional_millionths": 3000}  # the contract pays 752 sat over
TXID = "ab" * 32
PREIMAGE = b"\x07" * 32


class FakeApi:
    """The guardians: the contract's expiration (or None when spent), and the block count."""

    def __init__(self, expiration: Any) -> None:
        self.expiration, self.asked = expiration, []

    async def current_consensus(self, method: str, params: Any = None, **kw: Any) -> Any:
        if method.endswith("_consensus_block_count"):
            return 1234
        assert method.endswith("_outgoing_contract_expiration")
        self.asked.append(params)
        return self.expiration


class NotFound(grpc.aio.AioRpcError):
    def __init__(self) -> None:
        super().__init__(grpc.StatusCode.NOT_FOUND, None, None, "never paid")


class FakeNode:
    """The extension's LookupPayment: an answer, or an error to raise."""

    def __init__(self, answer: lnpb.LookupPaymentResponse | Exception) -> None:
        self.answer, self.asked = answer, []

    async def LookupPayment(self, req: lnpb.LookupPaymentRequest, timeout: float) -> Any:
        self.asked.append(req.payment_hash.hex())
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    async def PayInvoice(self, req: Any, timeout: float) -> Any:
        raise AssertionError("adopt never pays")


class Claims:
    def __init__(self) -> None:
        self.claimed: list[tuple[str, str]] = []

    async def claim(self, payment_hash: str, contract_id: str) -> bool:
        self.claimed.append((payment_hash, contract_id))
        return True

    async def release(self, payment_hash: str, contract_id: str) -> None:
        raise AssertionError("nothing to release")


LIVE = [CID, 500]  # unspent, 500 blocks to go


def _sender(tmp_path: Path, node: FakeNode, expiration: Any = LIVE) -> Lnv2Sender:
    mint = MintWallet(tmp_path / "w.sqlite", CONFIG, FakeApi(expiration))  # type: ignore[arg-type]
    key = PrivateKey(bytes.fromhex(V["secret_keys"]["claim"]))
    return Lnv2Sender(mint, key, node, FEES, CONFIG.federation_id, hashes=Claims())


def _rows(sender: Lnv2Sender) -> list[dict]:
    cur = sender.db.execute("SELECT * FROM lnv2_sends")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _answer(status: int, invoice: str = INVOICE, **kw: Any) -> lnpb.LookupPaymentResponse:
    return lnpb.LookupPaymentResponse(status=status, invoice=invoice, **kw)


async def test_settled_is_adopted_paid_with_the_preimage_and_the_hash_claimed(
    tmp_path: Path,
) -> None:
    node = FakeNode(_answer(lnpb.SETTLED, preimage=PREIMAGE, fee_msat=1_500))
    sender = _sender(tmp_path, node)
    assert await sender.adopt(TXID, 3, CONTRACT) is True
    assert node.asked == [HASH]
    assert sender.mint.api.asked == [{"txid": TXID, "out_idx": 3}]  # type: ignore[attr-defined]
    (row,) = _rows(sender)
    assert (row["contract_id"], row["txid"], row["out_idx"]) == (CID, TXID, 3)
    assert row["state"] == "paid" and row["preimage"] == PREIMAGE.hex()
    assert row["ln_fee_msat"] == 1_500 and row["invoice"] == INVOICE
    assert row["invoice_msat"] == 250_000_000 and row["max_fee_msat"] == 2_000
    assert OutgoingContract.from_json(json.loads(row["contract"])) == CONTRACT
    assert sender.hashes.claimed == [(HASH, CID)]  # type: ignore[union-attr]


async def test_failed_is_adopted_forfeited_with_a_valid_forfeit(tmp_path: Path) -> None:
    node = FakeNode(_answer(lnpb.FAILED, failure_reason="no route"))
    sender = _sender(tmp_path, node)
    assert await sender.adopt(TXID, 0, CONTRACT) is True
    (row,) = _rows(sender)
    assert row["state"] == "forfeited" and row["error"] == "no route"
    assert CONTRACT.verify_forfeit(bytes.fromhex(row["forfeit"]))
    assert row["preimage"] is None
    assert sender.hashes.claimed == []  # type: ignore[union-attr]


async def test_pending_with_an_invoice_is_adopted_paying(tmp_path: Path) -> None:
    sender = _sender(tmp_path, FakeNode(_answer(lnpb.PENDING)))
    assert await sender.adopt(TXID, 0, CONTRACT) is True
    (row,) = _rows(sender)
    assert row["state"] == "paying" and row["invoice"] == INVOICE
    assert row["preimage"] is None and row["forfeit"] is None
    assert sender.hashes.claimed == []  # type: ignore[union-attr]


async def test_pending_without_an_invoice_is_asked_again_later(tmp_path: Path) -> None:
    sender = _sender(tmp_path, FakeNode(_answer(lnpb.PENDING, invoice="")))
    with pytest.raises(GatewayError) as err:
        await sender.adopt(TXID, 0, CONTRACT)
    assert err.value.retryable
    assert _rows(sender) == []


@pytest.mark.parametrize(
    ("answer", "expiration", "contract", "why"),
    [
        (NotFound(), LIVE, CONTRACT, "the node never paid the hash"),
        (None, None, CONTRACT, "spent: the module no longer knows it"),
        (None, ["00" * 32, 500], CONTRACT, "another contract at that outpoint"),
        (None, [CID, 0], CONTRACT, "expired: the payer's to refund"),
        (
            None,
            "point",
            dataclasses.replace(CONTRACT, payment_image=PaymentImage("Point", b"\x02" * 33)),
            "a point image",
        ),
    ],
)
async def test_nothing_is_adopted(
    tmp_path: Path, answer: Any, expiration: Any, contract: OutgoingContract, why: str
) -> None:
    node = FakeNode(answer if answer is not None else _answer(lnpb.SETTLED, preimage=PREIMAGE))
    if expiration == "point":  # unspent: only its image refuses it
        expiration = [contract.contract_id.hex(), 500]
    sender = _sender(tmp_path, node, expiration)
    assert await sender.adopt(TXID, 0, contract) is False, why
    assert _rows(sender) == []
    assert sender.hashes.claimed == []  # type: ignore[union-attr]
    if answer is None:  # refused before the node was asked
        assert node.asked == []


async def test_a_second_adopt_of_the_same_contract_changes_nothing(tmp_path: Path) -> None:
    node = FakeNode(_answer(lnpb.PENDING))
    sender = _sender(tmp_path, node)
    assert await sender.adopt(TXID, 0, CONTRACT) is True
    before = _rows(sender)
    node.answer = _answer(lnpb.SETTLED, preimage=PREIMAGE)
    assert await sender.adopt(TXID, 0, CONTRACT) is False
    assert _rows(sender) == before and len(node.asked) == 1


def _incoming() -> IncomingContract:
    return IncomingContract.from_json(V["incoming"]["json"])


async def test_the_finder_keeps_only_outgoing_contracts_to_our_claim_key(tmp_path: Path) -> None:
    node = FakeNode(_answer(lnpb.FAILED, failure_reason="gone"))
    sender = _sender(tmp_path, node)
    finder = Lnv2ContractFinder(sender, window=2000)
    assert finder.module == sender.module and finder.window == 2000
    not_ours = dataclasses.replace(CONTRACT, claim_pk=CONTRACT.refund_pk)
    finder.output("01" * 32, 0, outgoing_output(not_ours))
    finder.output("02" * 32, 0, incoming_output(_incoming()))
    finder.output("03" * 32, 0, b"\x00\x01\xff")  # not an lnv2 output at all
    finder.output("04" * 32, 0, b"")
    finder.output(TXID, 2, outgoing_output(CONTRACT))
    finder.output("05" * 32, 1, outgoing_output(CONTRACT))  # the same contract again: first kept
    assert finder.kept == {CONTRACT.contract_id: (TXID, 2, CONTRACT)}
    assert await finder.block_count() == 1234
    assert await finder.adopt() == 1
    (row,) = _rows(sender)
    assert (row["txid"], row["out_idx"], row["state"]) == (TXID, 2, "forfeited")
    assert await finder.adopt() == 0  # known now
