"""The actor's LNv1 receive (services/actor/lnv1_receive.py) with the real crates' offer,
contract and answers, the guardians, the wallet and the node faked: an HTLC for our scid buys
the offer's preimage by funding exactly the offer (plus the module's output fee) and settles
with it; a failed decryption takes the contract back (exactly its amount less the input fee)
and cancels; every refusal of gatewayd's cancels and funds nothing; a redelivered HTLC gets the
same decision and funds nothing twice; a second HTLC of the hash is cancelled; a crash between
steps is finished by resume()."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest
from coincurve import PrivateKey

from fmclient.lnv1 import IncomingContract, IncomingContractOffer
from fmclient.lnv1_tx import contract_output, lightning_input
from fmclient.tx import ModuleItem
from gwcore.states import IllegalTransition
from services.actor.lnv1_receive import RECEIVE, Lnv1Receiver

from .lnv1_fakes import FakeApi, FakeLightning, FakeMint, V, config

KEY = PrivateKey(bytes([8] * 32))
OFFER = IncomingContractOffer.from_json(V["incoming"]["offer_json"])
PH = V["incoming"]["payment_hash"]
PREIMAGE = V["incoming"]["preimage"]
FUND_OP = f"lnv1-fund-{PH[:32]}"
HTLC = {
    "payment_hash": PH,
    "incoming_amount_msat": 100_000,
    "outgoing_amount_msat": 100_000,
    "incoming_expiry": 1_100,
    "short_channel_id": 7,
    "incoming_chan_id": 5,
    "htlc_id": 9,
}


def _setup(
    tmp_path: Path, decrypted: str = "some", balance: int = 10**9, **answers: Any
) -> tuple[Lnv1Receiver, FakeMint]:
    api = FakeApi(
        {
            "offer": V["answers"]["offer"],
            "account": None,
            "await_preimage_decryption": V["answers"][f"await_preimage_decryption_{decrypted}"],
            **answers,
        }
    )
    mint = FakeMint(tmp_path / "w.sqlite", api, balance)
    return Lnv1Receiver(mint, KEY, FakeLightning(height=1_000), {}, config().federation_id), mint  # type: ignore[arg-type]


async def test_an_htlc_buys_the_preimage_once(tmp_path: Path) -> None:
    receiver, mint = _setup(tmp_path)
    decision = await receiver.handle_htlc(HTLC)
    assert decision == {"action": "settle", "preimage": PREIMAGE}
    op = mint.ops[FUND_OP]
    funding = IncomingContract.funding(OFFER, KEY.public_key.format())
    assert op["foreign"].outputs == (ModuleItem(0, contract_output(99_000, funding)),)
    assert op["foreign"].net_msat == -(99_000 + 1_300)  # the offer and the ln output fee
    assert op["notes"] == ["notes for 100300"] and op["foreign"].inputs == ()
    assert receiver.row(PH)["state"] == "decrypted"
    # redelivered (the router asks again until the node acknowledges): the same, nothing more
    assert await receiver.handle_htlc(HTLC) == decision and list(mint.ops) == [FUND_OP]
    other = await receiver.handle_htlc({**HTLC, "htlc_id": 10})  # the invoice paid again
    assert other["action"] == "cancel" and list(mint.ops) == [FUND_OP]
    (row,) = receiver.log_rows(0, None, 10)
    assert (row["status"], row["amount_msat"], row["fee_earned_msat"]) == ("settled", 99_000, 1_000)
    assert receiver.in_flight() == 0


async def test_a_failed_decryption_is_refunded_and_cancelled(tmp_path: Path) -> None:
    receiver, mint = _setup(tmp_path, decrypted="invalid")
    decision = await receiver.handle_htlc(HTLC)
    assert decision["action"] == "cancel" and "did not decrypt" in decision["reason"]
    op = mint.ops[f"lnv1-refund-{PH[:32]}"]
    item = ModuleItem(0, lightning_input(bytes.fromhex(PH), 99_000, None))
    assert op["foreign"].inputs == (item,) and op["foreign"].keys == (KEY.secret,)
    assert op["foreign"].net_msat == 99_000 - 7  # the contract less the ln input fee
    assert receiver.row(PH)["state"] == "refunded"
    assert await receiver.handle_htlc(HTLC) == decision  # and nothing refunded twice


def _offer(**changes: Any) -> dict:
    offer = copy.deepcopy(V["answers"]["offer"])
    offer.update(changes)
    return offer


@pytest.mark.parametrize(
    ("htlc", "answers", "balance", "why"),
    [
        ({}, {"offer": None}, 10**9, "no offer"),
        ({"incoming_amount_msat": 98_999}, {}, 10**9, "more than the HTLC brings"),
        ({"outgoing_amount_msat": 98_999}, {}, 10**9, "more than the HTLC brings"),
        ({}, {"offer": _offer(expiry_time=int(time.time()) - 1)}, 10**9, "expired"),
        ({}, {"offer": _offer(hash="00" * 32)}, 10**9, "another payment hash"),
        ({"incoming_expiry": 1_030}, {}, 10**9, "expires too soon"),  # 30 blocks: not more
        ({}, {"account": V["accounts"]["incoming_json"]}, 10**9, "exists already"),
        ({}, {}, 100_299, "cannot fund"),
    ],
)
async def test_refusals_cancel_and_fund_nothing(
    tmp_path: Path, htlc: dict, answers: dict, balance: int, why: str
) -> None:
    receiver, mint = _setup(tmp_path, balance=balance, **answers)
    decision = await receiver.handle_htlc({**HTLC, **htlc})
    assert decision["action"] == "cancel" and why in decision["reason"]
    assert mint.ops == {} and receiver.row(PH)["state"] == "rejected"


async def test_a_swap_has_no_deadline(tmp_path: Path) -> None:
    receiver, _mint = _setup(tmp_path)
    swap = {**HTLC, "incoming_expiry": 0, "swap": True, "incoming_chan_id": 0}
    assert (await receiver.handle_htlc(swap))["action"] == "settle"
    assert receiver.row(PH)["htlc"] == "swap"
    # what the payer's contract brings beyond the offer is the payer's side's send fee
    (row,) = receiver.log_rows(0, None, 10)
    assert (row["status"], row["amount_msat"], row["fee_earned_msat"]) == ("settled", 99_000, 0)


async def test_a_refused_funding_cancels(tmp_path: Path) -> None:
    receiver, mint = _setup(tmp_path)
    mint.refuse.add(FUND_OP)
    assert (await receiver.handle_htlc(HTLC))["action"] == "cancel"
    assert receiver.row(PH)["state"] == "funding_refused"
    assert "await_preimage_decryption" not in [name for name, _ in mint.api.calls]


async def test_the_federation_away_then_back(tmp_path: Path) -> None:
    receiver, mint = _setup(tmp_path, offer=ConnectionError("guardians away"))
    with pytest.raises(ConnectionError):
        await receiver.handle_htlc(HTLC)
    assert receiver.row(PH)["state"] == "received" and mint.ops == {}
    mint.api.answers["offer"] = V["answers"]["offer"]
    assert (await receiver.handle_htlc(HTLC))["action"] == "settle"


async def test_a_crash_between_steps_is_finished_by_resume(tmp_path: Path) -> None:
    receiver, mint = _setup(tmp_path)
    finish = mint.finish

    async def away(op_id: str) -> dict:
        raise ConnectionError("guardians away")

    mint.finish = away  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await receiver.handle_htlc(HTLC)
    assert receiver.row(PH)["state"] == "funding" and receiver.in_flight() == 1
    mint.finish = finish  # type: ignore[method-assign]
    await receiver.resume()
    assert receiver.row(PH)["state"] == "decrypted" and list(mint.ops) == [FUND_OP]
    assert await receiver.handle_htlc(HTLC) == {"action": "settle", "preimage": PREIMAGE}


def test_the_table_refuses_illegal_moves() -> None:
    for old, new in (
        ("decrypted", "refunding"),
        ("received", "decrypting"),
        ("rejected", "funding"),
    ):
        with pytest.raises(IllegalTransition):
            RECEIVE.check(old, new)


async def test_the_role_swaps_within_its_federation_without_lightning(tmp_path: Path) -> None:
    """An invoice whose route hint ends at our node on this federation's scid: the role's swap
    buys the preimage from this federation's receiver, as for an HTLC."""
    from bolt11 import decode

    from services.actor.lnv1_role import Lnv1Role
    from services.actor.swaps import Swaps

    from .lnv1_fakes import NODE, invoice

    _receiver, mint = _setup(tmp_path)
    fed = config().federation_id
    swaps = Swaps(
        None, fed, 7, FakeLightning(), lambda route, htlc: role.bus_methods()[route](htlc)
    )
    role = Lnv1Role(
        mint, KEY, FakeLightning(), {"base_msat": 0, "proportional_millionths": 0},  # type: ignore[arg-type]
        fed, None, None, scid=7, public_api_url="http://127.0.0.1:8175", swaps=swaps,  # type: ignore[arg-type]
    )  # fmt: skip
    assert set(role.bus_methods()) == {"actor.pay_invoice", "actor.htlc:scid"}
    paid = invoice(bytes.fromhex(PREIMAGE), 100_000, hint_scid=7)
    assert decode(paid).route_hints[0].routes[-1].public_key == NODE
    decision = await swaps.decide(paid, 100_000, "lnv1-swap-" + "ab" * 32)
    assert decision == {"action": "settle", "preimage": PREIMAGE}
    assert role.receiver.row(PH)["htlc"] == "swap"
    assert await swaps.decide(invoice(bytes(32), 1_000), 1_000, "x") is None  # not ours
