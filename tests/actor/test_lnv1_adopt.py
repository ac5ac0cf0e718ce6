"""LNv1 contracts in flight after a lost data folder (services/actor/lnv1_inflight.py
`Lnv1ContractFinder`, lnv1_send.py `Lnv1Sender.adopt`), with the real crates' ln output, real contracts,
invoices and signatures, the guardians, the wallet, the session history and the Lightning node
faked: the scan keeps only the outputs funding an outgoing contract to our redeem key and stops
at the ln module's block-count votes; a contract is taken up from what our node knows of its
hash (settled -> claimed with exactly its amount less the input fee, failed -> cancelled with
a valid signature, in flight -> asked again), nothing when never paid, spent, cancelled, past
its timelock or not ours; a recovered row's preimage is answered only once claimed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import grpc
import pytest
from coincurve import PrivateKey

from fmclient.lnv1 import ContractAccount, IncomingContract, OutgoingContract
from fmclient.lnv1_gateway import PayInvoicePayload
from fmclient.lnv1_tx import contract_output, lightning_input
from fmclient.tx import ModuleItem
from gwcore.errors import GatewayError, InvalidInput, PaymentFailed
from gwproto import gateway_lnrpc_pb2 as lnpb
from services.actor.inflight import MARGIN, find_in_history
from services.actor.lnv1_inflight import Lnv1ContractFinder
from services.actor.lnv1_send import MAX_TIMELOCK_DELTA, Lnv1Sender

from .lnv1_fakes import Claims, FakeApi, FakeLightning, FakeMint, config, invoice
from .test_inflight import History, tx, vote

DATA = Path(__file__).parents[1] / "fmclient" / "data"
V = json.loads((DATA / "lnv1_vectors.json").read_text())
KEY = PrivateKey(bytes.fromhex(V["secret_keys"]["redeem"]))  # the vectors' gateway key
USER = PrivateKey(bytes.fromhex(V["secret_keys"]["user"])).public_key.format()
FEES = {"base_msat": 1000, "proportional_millionths": 2500}
PREIMAGE = bytes([5] * 32)
HASH = hashlib.sha256(PREIMAGE).digest()
INVOICE_MSAT = 250_000_000
AMOUNT = 250_626_000
BOLT11 = invoice(PREIMAGE, INVOICE_MSAT)
FED = config().federation_id
OURS = OutgoingContract(HASH, KEY.public_key.format(), 2000, USER)
CID = OURS.contract_id.hex()


class Node(FakeLightning):
    """The extension: LookupPayment answers `looked` (NOT_FOUND when None)."""

    def __init__(self, looked: lnpb.LookupPaymentResponse | None) -> None:
        super().__init__(lnpb.SETTLED, PREIMAGE)
        self.looked, self.lookups = looked, 0

    async def LookupPayment(self, req: lnpb.LookupPaymentRequest, timeout: float) -> Any:
        self.lookups += 1
        assert req.payment_hash == HASH
        if self.looked is None:
            raise grpc.aio.AioRpcError(grpc.StatusCode.NOT_FOUND, None, None, "never paid")
        return self.looked


def _settled(**kw: Any) -> lnpb.LookupPaymentResponse:
    return lnpb.LookupPaymentResponse(
        status=lnpb.SETTLED, preimage=PREIMAGE, fee_msat=1_234, invoice=BOLT11, **kw
    )


def _sender(
    tmp_path: Path,
    looked: lnpb.LookupPaymentResponse | None,
    contract: OutgoingContract = OURS,
    amount: int = AMOUNT,
    block_count: int = 1000,
) -> tuple[Lnv1Sender, FakeMint, Node, Claims]:
    api = FakeApi({"account": ContractAccount(amount, contract).json(), "block_count": block_count})
    mint, node, claims = FakeMint(tmp_path / "w.sqlite", api), Node(looked), Claims()
    sender = Lnv1Sender(mint, KEY, node, FEES, FED, None, claims)  # type: ignore[arg-type]
    return sender, mint, node, claims


def _ask(auth: bytes = bytes(32)) -> dict:
    """Anyone's /pay_invoice for the contract (the contract id is public)."""
    return PayInvoicePayload(FED, OURS.contract_id, BOLT11, None, auth).json()


def test_the_finder_keeps_only_outgoing_contracts_to_our_key(tmp_path: Path) -> None:
    sender, *_ = _sender(tmp_path, _settled())
    finder = Lnv1ContractFinder(sender, 100)
    theirs = OutgoingContract(HASH, USER, 2000, USER)
    vector = {x["name"]: bytes.fromhex(x["encoding"]) for x in V["outputs"]}
    for body in (
        vector["contract_outgoing"],  # the real crates' output: to the vectors' gateway key
        vector["contract_outgoing"],  # the same output twice: kept once
        contract_output(AMOUNT, OURS),
        contract_output(AMOUNT, theirs),
        vector["contract_incoming"],
        vector["offer"],
        vector["cancel_outgoing"],
        b"\x00\x05garbage",
    ):
        finder.output("00" * 32, 0, body)
    real = OutgoingContract.from_json(V["outgoing"]["json"])
    assert finder.kept == {real.contract_id: real, OURS.contract_id: OURS}
    assert (finder.module, finder.vote_variant) == (0, 1)  # LightningConsensusItem::BlockCount


async def test_the_scan_stops_at_the_ln_block_count_votes(tmp_path: Path) -> None:
    later = OutgoingContract(HASH, KEY.public_key.format(), 11_000, USER)
    sender, _, _, claims = _sender(tmp_path, _settled(), later, block_count=10_000)
    finder = Lnv1ContractFinder(sender, MAX_TIMELOCK_DELTA + MARGIN)
    too_old = 10_000 - MAX_TIMELOCK_DELTA - MARGIN - 1
    incoming = IncomingContract.from_json(V["incoming"]["json"])
    _, ours = tx((0, contract_output(AMOUNT, later)))
    _, theirs = tx((0, contract_output(99_000, incoming)))
    sessions = [
        [],  # never read: older than any contract still claimable
        [vote(0, 0, too_old, variant=1)],  # the guardian's vote: nothing earlier claimable
        [ours, vote(0, 0, too_old + 5, variant=1)],
        [theirs, vote(0, 0, 1, variant=0)],  # variant 0 (DecryptPreimage) is no vote: read on
        [],  # open at the start of the scan: awaited and read too
    ]
    history = History(sessions, threshold=1)
    taken = await find_in_history(history, [finder])  # type: ignore[arg-type]
    assert taken == 1 and history.read == [4, 3, 2, 1]
    cid = later.contract_id.hex()
    row = sender.row(cid)
    assert (row["state"], row["preimage"], row["preimage_auth"]) == ("paid", PREIMAGE.hex(), "")
    assert claims.held == {HASH.hex(): cid}  # the hash is paid: no second payer
    # a second scan (a crash before the recovery was marked done) takes nothing up twice
    assert await find_in_history(History(sessions, threshold=1), [finder]) == 0  # type: ignore[arg-type]


async def test_settled_is_claimed_and_answered_only_once_claimed(tmp_path: Path) -> None:
    sender, mint, node, _ = _sender(tmp_path, _settled())
    away = mint.finish

    async def federation_away(op_id: str) -> dict:
        raise ConnectionError("guardians away")

    mint.finish = federation_away  # type: ignore[method-assign]
    assert await sender.adopt(OURS) and not await sender.adopt(OURS)  # idempotent
    with pytest.raises(GatewayError, match="not claimed yet") as e:  # no preimage before
        await sender.pay_invoice(_ask())
    assert e.value.retryable and sender.row(CID)["state"] == "paid"
    mint.finish = away  # type: ignore[method-assign]
    await sender.resume()
    op = mint.ops[f"lnv1-claim-{CID[:32]}"]
    assert op["foreign"].inputs == (
        ModuleItem(0, lightning_input(OURS.contract_id, AMOUNT, PREIMAGE)),
    )
    assert op["foreign"].net_msat == AMOUNT - 7  # the ln module's contract_input fee
    assert sender.row(CID)["state"] == "claimed" and node.paid == []  # never paid again
    # claimed: the preimage is on chain in our claim's input, so anyone asking gets it
    answer = await sender.pay_invoice(_ask(bytes([3] * 32)))
    assert answer == {"preimage": PREIMAGE.hex(), "contract_id": CID}
    (row,) = sender.log_rows(0, None, 10)
    assert (row["status"], row["amount_msat"], row["fee_earned_msat"]) == (
        "settled",
        INVOICE_MSAT,
        AMOUNT - INVOICE_MSAT - 1_234,
    )


async def test_a_refused_claim_never_answers_the_preimage(tmp_path: Path) -> None:
    sender, mint, *_ = _sender(tmp_path, _settled())
    mint.refuse.add(f"lnv1-claim-{CID[:32]}")
    assert await sender.adopt(OURS)
    with pytest.raises(InvalidInput, match="only once it is claimed"):
        await sender.pay_invoice(_ask())
    assert sender.row(CID)["state"] == "claim_refused"


async def test_failed_is_cancelled_so_the_payer_refunds_at_once(tmp_path: Path) -> None:
    failed = lnpb.LookupPaymentResponse(status=lnpb.FAILED, failure_reason="no route")
    sender, mint, node, claims = _sender(tmp_path, failed)
    assert await sender.adopt(OURS)
    assert sender.row(CID)["state"] == "cancelling" and claims.held == {}
    await sender.resume()
    (item,) = mint.ops[f"lnv1-cancel-{CID[:32]}"]["foreign"].outputs
    assert OURS.verify_cancel_signature(item.body[-64:])
    assert sender.row(CID)["state"] == "cancelled" and node.paid == []
    with pytest.raises(PaymentFailed, match="no route"):  # anyone may hear it failed
        await sender.pay_invoice(_ask())


async def test_in_flight_is_asked_again_with_the_invoice_the_node_kept(tmp_path: Path) -> None:
    pending = lnpb.LookupPaymentResponse(status=lnpb.PENDING, invoice=BOLT11)
    sender, _, node, claims = _sender(tmp_path, pending)
    assert await sender.adopt(OURS) and sender.row(CID)["state"] == "paying"
    await sender.resume()
    (req,) = node.paid  # PayInvoice again: the extension answers the payment under way
    assert (req.invoice, req.payment_hash) == (BOLT11, HASH)
    assert (req.max_delay, req.max_fee_msat) == (2000 - 999 - 10, AMOUNT - INVOICE_MSAT)
    assert sender.row(CID)["state"] == "claimed" and claims.held == {HASH.hex(): CID}
    # without the invoice there is nothing to ask again with: the recovery retries later
    sender, *_ = _sender(tmp_path / "b", lnpb.LookupPaymentResponse(status=lnpb.PENDING))
    with pytest.raises(GatewayError, match="in flight") as e:
        await sender.adopt(OURS)
    assert e.value.retryable and sender.row(CID) is None


@pytest.mark.parametrize(
    ("contract", "amount", "block_count", "looked_up"),
    [
        (OURS, AMOUNT, 1000, True),  # our node never paid the hash (NOT_FOUND)
        (OURS, 0, 1000, False),  # spent: claimed or refunded
        (OutgoingContract(HASH, KEY.public_key.format(), 2000, USER, True), AMOUNT, 1000, False),
        (OURS, AMOUNT, 2001, False),  # past the timelock: the payer's to refund
        (OutgoingContract(HASH, USER, 2000, USER), AMOUNT, 1000, False),  # not ours
    ],
)
async def test_nothing_is_adopted(
    tmp_path: Path, contract: OutgoingContract, amount: int, block_count: int, looked_up: bool
) -> None:
    sender, mint, node, claims = _sender(tmp_path, None, contract, amount, block_count)
    assert not await sender.adopt(contract)
    assert node.lookups == looked_up and sender.row(contract.contract_id.hex()) is None
    assert mint.ops == {} and claims.held == {}


async def test_the_last_claimable_block_is_adopted(tmp_path: Path) -> None:
    sender, *_ = _sender(tmp_path, _settled(), block_count=2000)  # timelock + 1 > count
    assert await sender.adopt(OURS) and sender.row(CID)["max_delay"] == 0
