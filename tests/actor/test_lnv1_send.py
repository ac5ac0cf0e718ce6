"""The actor's LNv1 send (services/actor/lnv1_send.py) with real contracts, invoices, inputs,
outputs and signatures, the guardians, the wallet and the Lightning node faked: a paid invoice
is claimed with exactly the contract's amount less the module's input fee; a definite failure
is cancelled with a valid signature so the user refunds at once; pending is never cancelled;
nothing is paid twice; the checks refuse (and cancel a contract of ours) as gatewayd does; a
hash held by another contract is refused and cancelled; a claim interrupted is finished by
resume(); swaps settle without Lightning."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from bolt11 import decode as bolt11_decode
from coincurve import PrivateKey

from fmclient.encoding import Reader
from fmclient.lnv1 import ContractAccount, OutgoingContract
from fmclient.lnv1_gateway import PayInvoicePayload
from fmclient.lnv1_tx import cancel_outgoing_output, lightning_input
from fmclient.tx import ModuleItem
from gwcore.constants import DUPLICATE_PAYMENT_REASON
from gwcore.errors import GatewayError, InvalidInput, PaymentFailed
from gwcore.states import IllegalTransition
from gwproto import gateway_lnrpc_pb2 as lnpb
from services.actor.lnv1_send import SEND, Lnv1Sender

from .lnv1_fakes import Claims, FakeApi, FakeLightning, FakeMint, config, invoice

KEY = PrivateKey(bytes([8] * 32))
USER = PrivateKey(bytes([10] * 32)).public_key.format()
FEES = {"base_msat": 1000, "proportional_millionths": 2500}
PREIMAGE = bytes([5] * 32)
HASH = hashlib.sha256(PREIMAGE).digest()
INVOICE_MSAT = 250_000_000
AMOUNT = 250_626_000  # the invoice + 1000 + 250_000_000 / (1_000_000 // 2500)
AUTH = hashlib.sha256(b"auth").digest()
FED = config().federation_id


def _contract(**changes: Any) -> OutgoingContract:
    fields = {
        "hash": HASH,
        "gateway_key": KEY.public_key.format(),
        "timelock": 2000,
        "user_key": USER,
    }
    return OutgoingContract(**{**fields, **changes})


def _setup(
    tmp_path: Path,
    ln: FakeLightning | None = None,
    contract: OutgoingContract | None = None,
    amount: int = AMOUNT,
    block_count: int = 1000,
    claims: Claims | None = None,
    swap: Any = None,
) -> tuple[Lnv1Sender, FakeMint, FakeLightning]:
    contract = contract or _contract()
    account = ContractAccount(amount, contract).json()
    api = FakeApi({"account": account, "block_count": block_count})
    mint = FakeMint(tmp_path / "w.sqlite", api)
    ln = ln or FakeLightning(lnpb.SETTLED, PREIMAGE)
    sender = Lnv1Sender(mint, KEY, ln, FEES, FED, swap, claims)  # type: ignore[arg-type]
    return sender, mint, ln


def _body(
    contract: OutgoingContract | None = None, bolt11: str | None = None, auth: bytes = AUTH
) -> dict:
    cid = (contract or _contract()).contract_id
    return PayInvoicePayload(FED, cid, bolt11 or BOLT11, None, auth).json()


BOLT11 = invoice(PREIMAGE, INVOICE_MSAT)


async def test_paid_claimed_with_the_exact_amount_and_never_paid_twice(tmp_path: Path) -> None:
    claims = Claims()
    sender, mint, ln = _setup(tmp_path, claims=claims)
    cid = _contract().contract_id
    answer = await sender.pay_invoice(_body())
    assert answer == {"preimage": PREIMAGE.hex(), "contract_id": cid.hex()}
    (req,) = ln.paid
    # max_delay = timelock - (block_count - 1) - 10; the fee budget is the contract less the invoice
    assert (req.max_delay, req.max_fee_msat, req.payment_hash) == (991, 626_000, HASH)
    op = mint.ops[f"lnv1-claim-{cid.hex()[:32]}"]
    item = ModuleItem(0, lightning_input(cid, AMOUNT, PREIMAGE))
    assert op["foreign"].inputs == (item,) and op["foreign"].keys == (KEY.secret,)
    assert op["foreign"].net_msat == AMOUNT - 7  # the ln module's contract_input fee
    assert sender.row(cid.hex())["state"] == "claimed"
    assert claims.held == {HASH.hex(): cid.hex()}
    assert await sender.pay_invoice(_body()) == answer and len(ln.paid) == 1
    (row,) = sender.log_rows(0, None, 10)
    assert (row["status"], row["amount_msat"], row["fee_earned_msat"]) == (
        "settled",
        INVOICE_MSAT,
        626_000 - 1_234,  # what the contract paid beyond the invoice and the Lightning fee
    )
    with pytest.raises(InvalidInput, match="another caller"):  # the preimage is theirs only
        await sender.pay_invoice(_body(auth=bytes(32)))


def _cancel_signature(mint: FakeMint, cid: bytes) -> bytes:
    (item,) = mint.ops[f"lnv1-cancel-{cid.hex()[:32]}"]["foreign"].outputs
    r = Reader(item.body)
    _, v0 = r.framed()
    variant, body = v0.framed()
    assert variant == 2 and body.raw(32) == cid
    signature = body.raw(64)
    assert item.body == cancel_outgoing_output(cid, signature)
    return signature


async def test_a_definite_failure_is_cancelled_once(tmp_path: Path) -> None:
    claims = Claims()
    sender, mint, ln = _setup(tmp_path, FakeLightning(lnpb.FAILED), claims=claims)
    cid = _contract().contract_id
    for _ in range(2):
        with pytest.raises(PaymentFailed, match="no route"):
            await sender.pay_invoice(_body())
    assert len(ln.paid) == 1
    op = mint.ops[f"lnv1-cancel-{cid.hex()[:32]}"]
    assert op["foreign"].inputs == () and op["foreign"].net_msat == 0 and op["notes"] == []
    assert _contract().verify_cancel_signature(_cancel_signature(mint, cid))
    assert sender.row(cid.hex())["state"] == "cancelled"
    assert claims.released == [HASH.hex()]  # another contract may pay it now
    assert f"lnv1-claim-{cid.hex()[:32]}" not in mint.ops


async def test_pending_is_never_cancelled(tmp_path: Path) -> None:
    for status in (lnpb.PENDING, lnpb.UNKNOWN):
        sender, mint, ln = _setup(tmp_path / str(status), FakeLightning(status))
        for _ in range(2):
            with pytest.raises(GatewayError, match="pending") as e:
                await sender.pay_invoice(_body())
            assert e.value.retryable
        assert len(ln.paid) == 2 and mint.ops == {}  # asked again, nothing cancelled
        assert sender.row(_contract().contract_id.hex())["state"] == "paying"
        assert sender.in_flight() == 1


@pytest.mark.parametrize(
    ("contract", "amount", "body", "why"),
    [
        (_contract(gateway_key=USER), AMOUNT, None, "another gateway"),
        (_contract(cancelled=True), AMOUNT, None, "cancelled"),
        (_contract(), 0, None, "already spent"),
        (_contract(), AMOUNT, {"federation_id": "00" * 32}, "not this federation"),
        (_contract(), AMOUNT, {"payment_data": {"invoice": "lnbcrt1garbage"}}, "decoded"),
        (_contract(), AMOUNT, {"contract_id": "zz"}, "contract_id"),
    ],
)
async def test_refusals_record_nothing(
    tmp_path: Path, contract: OutgoingContract, amount: int, body: dict | None, why: str
) -> None:
    sender, mint, ln = _setup(tmp_path, contract=contract, amount=amount)
    with pytest.raises(InvalidInput, match=why):
        await sender.pay_invoice({**_body(contract), **(body or {})})
    assert ln.paid == [] and mint.ops == {}
    assert sender.db.execute("SELECT COUNT(*) FROM lnv1_sends").fetchone()[0] == 0


async def test_a_contract_not_there_yet_is_asked_again(tmp_path: Path) -> None:
    sender, mint, ln = _setup(tmp_path)
    mint.api.answers["account"] = None
    with pytest.raises(GatewayError, match="ask again") as e:
        await sender.pay_invoice(_body())
    assert e.value.retryable and ln.paid == []


@pytest.mark.parametrize(
    ("amount", "block_count", "bolt11", "why"),
    [
        (AMOUNT - 1, 1000, None, "our fee of 626000 msat"),
        (AMOUNT, 1991, None, "timelock is too close"),  # 2000 - 1990 - 10 = 0
        (AMOUNT, 1000, invoice(bytes(32), INVOICE_MSAT), "payment hash"),
    ],
)
async def test_a_contract_of_ours_that_fails_the_checks_is_cancelled(
    tmp_path: Path, amount: int, block_count: int, bolt11: str | None, why: str
) -> None:
    sender, mint, ln = _setup(tmp_path, amount=amount, block_count=block_count)
    with pytest.raises(PaymentFailed, match=why):
        await sender.pay_invoice(_body(bolt11=bolt11))
    assert ln.paid == []
    assert _contract().verify_cancel_signature(_cancel_signature(mint, _contract().contract_id))


async def test_a_hash_held_by_another_contract_is_cancelled_unpaid(tmp_path: Path) -> None:
    claims = Claims()
    first, _, ln1 = _setup(tmp_path / "a", claims=claims)
    await first.pay_invoice(_body())
    other = _contract(user_key=PrivateKey().public_key.format())
    second, mint2, ln2 = _setup(tmp_path / "b", contract=other, claims=claims)
    with pytest.raises(PaymentFailed, match=DUPLICATE_PAYMENT_REASON):
        await second.pay_invoice(_body(other))
    assert ln2.paid == [] and len(ln1.paid) == 1
    assert other.verify_cancel_signature(_cancel_signature(mint2, other.contract_id))
    assert claims.held == {HASH.hex(): _contract().contract_id.hex()}  # still the first's


async def test_a_claim_interrupted_is_finished_by_resume(tmp_path: Path) -> None:
    sender, mint, ln = _setup(tmp_path)
    cid = _contract().contract_id.hex()
    finish = mint.finish

    async def away(op_id: str) -> dict:
        raise ConnectionError("guardians away")

    mint.finish = away  # type: ignore[method-assign]
    answer = await sender.pay_invoice(_body())  # the payer gets its preimage anyway
    assert answer["preimage"] == PREIMAGE.hex() and sender.row(cid)["state"] == "paid"
    assert sender.in_flight() == 1
    mint.finish = finish  # type: ignore[method-assign]
    await sender.resume()
    assert sender.row(cid)["state"] == "claimed" and len(ln.paid) == 1
    assert mint.finished == [f"lnv1-claim-{cid[:32]}"]


async def test_a_refused_claim_still_answers_the_preimage(tmp_path: Path) -> None:
    sender, mint, _ = _setup(tmp_path)
    cid = _contract().contract_id.hex()
    mint.refuse.add(f"lnv1-claim-{cid[:32]}")
    assert (await sender.pay_invoice(_body()))["preimage"] == PREIMAGE.hex()
    assert sender.row(cid)["state"] == "claim_refused"


class FakeSwaps:
    """swaps.Swaps as a send sees it: the payee federation's decision, and what was asked."""

    def __init__(self, answer: dict | None) -> None:
        self.answer, self.asked = answer, []

    async def decide(self, invoice: str, amount_msat: int, message_id: str) -> dict | None:
        self.asked.append((bolt11_decode(invoice).payment_hash, amount_msat))
        return self.answer


async def test_swaps_settle_or_cancel_without_lightning(tmp_path: Path) -> None:
    settle = FakeSwaps({"action": "settle", "preimage": PREIMAGE.hex()})
    sender, _mint, ln = _setup(tmp_path / "a", swap=settle)
    assert (await sender.pay_invoice(_body()))["preimage"] == PREIMAGE.hex()
    assert ln.paid == [] and settle.asked == [(HASH.hex(), AMOUNT)]
    (row,) = sender.log_rows(0, None, 10)
    assert (row["direction"], row["fee_earned_msat"]) == ("swap", 626_000)

    refuse = FakeSwaps({"action": "cancel", "reason": "no offer"})
    sender, _, ln = _setup(tmp_path / "b", swap=refuse)
    with pytest.raises(PaymentFailed, match="swap refused: no offer"):
        await sender.pay_invoice(_body())
    assert ln.paid == [] and sender.row(_contract().contract_id.hex())["state"] == "cancelled"

    wrong = FakeSwaps({"action": "settle", "preimage": "00" * 32})  # not the hash's: unpaid
    sender, _, ln = _setup(tmp_path / "c", FakeLightning(lnpb.FAILED), swap=wrong)
    with pytest.raises(PaymentFailed):
        await sender.pay_invoice(_body())


def test_the_table_refuses_illegal_moves() -> None:
    for old, new in (("claimed", "paying"), ("cancelled", "paid"), ("paying", "claimed")):
        with pytest.raises(IllegalTransition):
            SEND.check(old, new)
