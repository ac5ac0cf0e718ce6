"""An LNv1 receive in flight after a lost data folder (services/actor/lnv1_inflight.py,
lnv1_receive.py `Lnv1Receiver.adopt`), with the real crates' contract and answers, the
guardians, the wallet and the node faked: the scan keeps the incoming contracts we funded (not
a user's, not an outgoing one); an adopted contract is decrypted again and the first HTLC for
its hash (our node's, intercepted again) is settled with the preimage, funding nothing; one
that did not decrypt is refunded to us, exactly its amount less the input fee; nothing is taken
up when the hash is known, the contract is not ours, or it did not decrypt and is spent."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from coincurve import PrivateKey

from fmclient.lnv1 import INVALID, ContractAccount, IncomingContract, OutgoingContract
from fmclient.lnv1_tx import contract_output, lightning_input
from fmclient.tx import ModuleItem
from services.actor.lnv1_inflight import Lnv1ContractFinder
from services.actor.lnv1_receive import Lnv1Receiver
from services.actor.lnv1_send import Lnv1Sender

from .lnv1_fakes import FakeApi, FakeLightning, FakeMint, V, config
from .test_lnv1_receive import HTLC, KEY, OFFER, PH, PREIMAGE

OURS = IncomingContract.funding(OFFER, KEY.public_key.format())
TXID = "ab" * 32
FED = config().federation_id


def _setup(
    tmp_path: Path, account: Any, decrypted: str = "some"
) -> tuple[Lnv1ContractFinder, Lnv1Receiver, FakeMint]:
    api = FakeApi(
        {
            "account": account,
            "await_preimage_decryption": V["answers"][f"await_preimage_decryption_{decrypted}"],
        }
    )
    mint, node = FakeMint(tmp_path / "w.sqlite", api), FakeLightning(height=1_000)
    receiver = Lnv1Receiver(mint, KEY, node, {}, FED)  # type: ignore[arg-type]
    sender = Lnv1Sender(mint, KEY, node, {}, FED, None, None)  # type: ignore[arg-type]
    return Lnv1ContractFinder(sender, 100, receiver), receiver, mint


def _account(amount: int = 99_000, contract: IncomingContract = OURS) -> dict:
    return ContractAccount(amount, contract, (TXID, 0)).json()


def test_the_finder_keeps_the_incoming_contracts_we_funded(tmp_path: Path) -> None:
    finder, *_ = _setup(tmp_path, _account())
    theirs = IncomingContract.funding(OFFER, PrivateKey(bytes([9] * 32)).public_key.format())
    vector = {x["name"]: bytes.fromhex(x["encoding"]) for x in V["outputs"]}
    for txid, body in (
        (TXID, contract_output(99_000, OURS)),
        ("cd" * 32, contract_output(99_000, OURS)),  # read later (older): the first one kept
        (TXID, contract_output(99_000, theirs)),
        (TXID, vector["offer"]),
        (TXID, vector["contract_outgoing"]),  # an outgoing one to our key: the sender's
        (TXID, b"\x00\x05garbage"),
    ):
        finder.output(txid, 0, body)
    assert finder.incoming == {OURS.contract_id: (TXID, 99_000, OURS)}
    assert list(finder.kept.values()) == [OutgoingContract.from_json(V["outgoing"]["json"])]


async def test_adopted_it_is_decrypted_and_the_first_htlc_settled(tmp_path: Path) -> None:
    finder, receiver, mint = _setup(tmp_path, _account(0))  # spent: the user claimed it
    finder.output(TXID, 0, contract_output(99_000, OURS))
    assert await finder.adopt() == 1
    row = receiver.row(PH)
    assert (row["state"], row["htlc"], row["amount_msat"], row["txid"]) == (
        "decrypting",
        "",
        99_000,
        TXID,
    )
    assert receiver.in_flight() == 1
    await receiver.resume()  # after the recovery, as the role's run does
    assert receiver.row(PH)["state"] == "decrypted" and receiver.in_flight() == 0
    # our node offers the HTLC again (intercepted for our scid): settled, nothing funded
    assert await receiver.handle_htlc(HTLC) == {"action": "settle", "preimage": PREIMAGE}
    row = receiver.row(PH)
    assert (row["htlc"], row["incoming_msat"], row["incoming_expiry"]) == ("5:9", 100_000, 1_100)
    assert await receiver.handle_htlc(HTLC) == {"action": "settle", "preimage": PREIMAGE}
    other = await receiver.handle_htlc({**HTLC, "htlc_id": 10})  # the invoice paid again
    assert other["action"] == "cancel" and mint.ops == {}
    (logged,) = receiver.log_rows(0, None, 10)
    assert (logged["status"], logged["amount_msat"], logged["fee_earned_msat"]) == (
        "settled",
        99_000,
        1_000,
    )
    # a second scan (a crash before the recovery was marked done) takes nothing up twice
    assert await finder.adopt() == 0


async def test_one_that_did_not_decrypt_is_refunded_to_us(tmp_path: Path) -> None:
    invalid = replace(OURS, decrypted_preimage=INVALID)
    finder, receiver, mint = _setup(tmp_path, _account(99_000, invalid), decrypted="invalid")
    finder.output(TXID, 0, contract_output(99_000, OURS))
    assert await finder.adopt() == 1
    await receiver.resume()
    op = mint.ops[f"lnv1-refund-{PH[:32]}"]
    item = ModuleItem(0, lightning_input(bytes.fromhex(PH), 99_000, None))
    assert op["foreign"].inputs == (item,) and op["foreign"].keys == (KEY.secret,)
    assert op["foreign"].net_msat == 99_000 - 7  # the contract less the ln input fee
    assert receiver.row(PH)["state"] == "refunded"
    decision = await receiver.handle_htlc(HTLC)
    assert decision["action"] == "cancel" and "did not decrypt" in decision["reason"]


async def test_nothing_is_taken_up_that_is_not_ours_to_finish(tmp_path: Path) -> None:
    theirs = IncomingContract.funding(OFFER, PrivateKey(bytes([9] * 32)).public_key.format())
    refunded = replace(OURS, decrypted_preimage=INVALID)
    for n, account in enumerate((None, _account(99_000, theirs), _account(0, refunded))):
        _, receiver, mint = _setup(tmp_path / str(n), account)
        assert await receiver.adopt(OURS, TXID, 99_000) is False
        assert receiver.row(PH) is None and mint.ops == {}
    # a hash this folder knows (the receive under way before): left as it is
    _, receiver, _ = _setup(tmp_path / "known", _account())
    receiver.db.execute(
        "INSERT INTO lnv1_receives (payment_hash, htlc, incoming_msat, outgoing_msat,"
        " incoming_expiry, swap, state, created, updated)"
        " VALUES (?, '5:9', 1, 1, 1, 0, 'received', 0, 0)",
        (PH,),
    )
    assert await receiver.adopt(OURS, TXID, 99_000) is False
    assert receiver.row(PH)["state"] == "received"
