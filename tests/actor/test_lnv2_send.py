"""The actor's LNv2 send (services/actor/lnv2_send.py) with a real wallet file, real contracts
and signatures (the real crates' vectors) and a real federation's config, the guardians and
the Lightning node faked: every check refuses with its reason and records nothing; a definite
Lightning failure is answered with a valid forfeit, and asking again pays nothing twice. A
payment hash is paid once for the whole gateway (the router's real registry of claims): a
second contract for a hash paid or being paid, in this federation or another, is refused with
its forfeit before anything is paid, also after a restart; a definite failure frees the hash."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from coincurve import PrivateKey

from fmclient.config import parse_client_config
from fmclient.lnv2 import OutgoingContract
from fmclient.wallet import MintWallet
from gwcore import summary
from gwcore.constants import DUPLICATE_PAYMENT_REASON
from gwcore.errors import GatewayError, InvalidInput
from gwproto import gateway_lnrpc_pb2 as lnpb
from services.actor.lnv2_send import Lnv2Sender
from services.router.registry import FederationRegistry

DATA = Path(__file__).parents[1] / "fmclient" / "data"
V = json.loads((DATA / "lnv2_vectors.json").read_text())
CONFIG = parse_client_config(
    json.loads((DATA / "fedimintd_4_guardians.json").read_text())["client_config"]
)
CONTRACT = OutgoingContract.from_json(V["outgoing"]["json"])
NOT_OURS = {**V["outgoing"]["json"], "claim_pk": V["outgoing"]["json"]["refund_pk"]}
FEES = {"base_msat": 0, "proportional_millionths": 3000}  # the contract pays 752 sat over


class FakeApi:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    async def current_consensus(self, method: str, params: Any = None, **kw: Any) -> Any:
        assert method.endswith("_outgoing_contract_expiration")
        return self.answer


class FakeLightning:
    def __init__(self, status: int) -> None:
        self.status, self.calls = status, 0

    async def PayInvoice(self, req: lnpb.PayInvoiceRequest, timeout: float) -> Any:
        self.calls += 1
        assert req.max_delay == 1000 - 144 and req.max_fee_msat == 2_000
        return lnpb.PayInvoiceResponse(
            status=self.status, failure_reason="no route", preimage=b"\x01" * 32
        )


class RouterClaims:
    """The actor's claims of payment hashes, straight on the router's registry (what
    `gateway.claim_outgoing_hash` / `release_outgoing_hash` do), for one federation."""

    def __init__(self, registry: FederationRegistry, federation_id: str) -> None:
        self.registry, self.federation_id = registry, federation_id

    async def claim(self, payment_hash: str, contract_id: str) -> bool:
        return self.registry.claim_outgoing(payment_hash, self.federation_id, contract_id)

    async def release(self, payment_hash: str, contract_id: str) -> None:
        self.registry.release_outgoing(payment_hash, self.federation_id, contract_id)


def _sender(
    tmp_path: Path, lightning: FakeLightning, expiration: Any, hashes: Any = None
) -> Lnv2Sender:
    tmp_path.mkdir(parents=True, exist_ok=True)
    mint = MintWallet(tmp_path / "w.sqlite", CONFIG, FakeApi(expiration))  # type: ignore[arg-type]
    key = PrivateKey(bytes.fromhex(V["secret_keys"]["claim"]))
    return Lnv2Sender(mint, key, lightning, FEES, CONFIG.federation_id, hashes=hashes)


def _body(**changes: Any) -> dict:
    return {**V["send_payment_payload"], "federation_id": CONFIG.federation_id, **changes}


async def test_a_definite_failure_is_forfeited_once(tmp_path: Path) -> None:
    ln = FakeLightning(lnpb.FAILED)
    sender = _sender(tmp_path, ln, [V["outgoing"]["contract_id"], 1000])
    answer = await sender.send_payment(_body())
    assert CONTRACT.verify_forfeit(bytes.fromhex(answer["Err"]))
    assert await sender.send_payment(_body()) == answer and ln.calls == 1  # never paid twice


async def test_pending_is_never_forfeited(tmp_path: Path) -> None:
    ln = FakeLightning(lnpb.PENDING)
    sender = _sender(tmp_path, ln, [V["outgoing"]["contract_id"], 1000])
    for _ in range(2):
        with pytest.raises(GatewayError, match="pending"):
            await sender.send_payment(_body())
    assert ln.calls == 2  # asked again (the extension is idempotent per payment hash)


@pytest.mark.parametrize(
    ("changes", "expiration", "why"),
    [
        ({"federation_id": "00" * 32}, None, "not this federation"),
        ({"auth": "00" * 64}, None, "auth signature"),
        ({"invoice": {"Bolt11": "lnbcrt1garbage"}}, None, "auth signature"),
        ({"outpoint": {"txid": "09" * 32}}, None, "out_idx"),
        ({"contract": NOT_OURS}, None, "claim key"),
        ({}, None, "no such contract"),
        ({}, ["00" * 32, 1000], "no such contract"),
    ],
)
async def test_refusals_say_why_and_record_nothing(
    tmp_path: Path, changes: dict, expiration: Any, why: str
) -> None:
    ln = FakeLightning(lnpb.SETTLED)
    sender = _sender(tmp_path, ln, expiration)
    with pytest.raises(InvalidInput, match=why):
        await sender.send_payment(_body(**changes))
    assert ln.calls == 0
    assert sender.db.execute("SELECT COUNT(*) FROM lnv2_sends").fetchone()[0] == 0


async def test_our_fee_must_be_covered(tmp_path: Path) -> None:
    sender = _sender(tmp_path, FakeLightning(lnpb.SETTLED), [V["outgoing"]["contract_id"], 1000])
    sender.fees = {"base_msat": 0, "proportional_millionths": 10_000}
    with pytest.raises(InvalidInput, match="does not cover"):
        await sender.send_payment(_body())


# another user's contract for the same invoice: another expiration, so another contract id; the
# same refund key, so the payer's auth over the invoice verifies as well
OTHER = dataclasses.replace(CONTRACT, expiration=CONTRACT.expiration + 7)
FED_A, FED_B = "aa" * 32, "bb" * 32


def _other(sender: Lnv2Sender) -> dict:
    sender.mint.api.answer = [OTHER.contract_id.hex(), 1000]  # type: ignore[attr-defined]
    return _body(contract=OTHER.json())


def _log(sender: Lnv2Sender, cid: bytes) -> dict:
    return next(p for p in sender.log_rows(0, None, 10) if p["id"] == cid.hex())


async def test_a_hash_paid_for_one_contract_is_refused_to_another_in_any_federation(
    tmp_path: Path,
) -> None:
    registry = FederationRegistry(tmp_path / "router.sqlite")
    ln_a, ln_b = FakeLightning(lnpb.SETTLED), FakeLightning(lnpb.SETTLED)
    cid = V["outgoing"]["contract_id"]
    alice = _sender(tmp_path / "a", ln_a, [cid, 1000], RouterClaims(registry, FED_A))
    paid = await alice.send_payment(_body())
    assert paid == {"Ok": [1] * 32} and ln_a.calls == 1
    # the router restarts: the claim is kept
    registry = FederationRegistry(tmp_path / "router.sqlite")
    # carol, in another federation the gateway serves, pays the same invoice: refused before
    # anything is paid, with our forfeit signature for her contract (she refunds at once)
    carol = _sender(tmp_path / "b", ln_b, None, RouterClaims(registry, FED_B))
    refused = await carol.send_payment(_other(carol))
    assert OTHER.verify_forfeit(bytes.fromhex(refused["Err"])) and ln_b.calls == 0
    assert await carol.send_payment(_other(carol)) == refused and ln_b.calls == 0  # asked again
    # and in alice's own federation, too
    dave = _sender(tmp_path / "c", FakeLightning(lnpb.SETTLED), None, RouterClaims(registry, FED_A))
    assert OTHER.verify_forfeit(bytes.fromhex((await dave.send_payment(_other(dave)))["Err"]))
    # alice's own contract again: her own answer (idempotence, not a second payment)
    alice.hashes = RouterClaims(registry, FED_A)
    assert await alice.send_payment(_body()) == paid and ln_a.calls == 1
    # the payment log and summary: a failed outgoing payment, with the reason
    row = _log(carol, OTHER.contract_id)
    assert row["status"] == "failed" and row["error"] == DUPLICATE_PAYMENT_REASON
    assert row["fee_earned_msat"] == 0 and row["direction"] == "outgoing"
    assert _log(alice, CONTRACT.contract_id)["status"] == "settled"
    part = summary.partial(carol.log_rows(0, None, 10), 0, 2**40, 2**40)
    assert part["directions"]["outgoing"]["failed"] == 1
    assert part["directions"]["outgoing"]["settled"] == 0


async def test_a_hash_being_paid_is_refused_to_another_contract(tmp_path: Path) -> None:
    registry = FederationRegistry(tmp_path / "router.sqlite")
    claims = RouterClaims(registry, FED_A)
    ln = FakeLightning(lnpb.PENDING)
    sender = _sender(tmp_path, ln, [V["outgoing"]["contract_id"], 1000], claims)
    with pytest.raises(GatewayError, match="pending"):
        await sender.send_payment(_body())
    refused = await sender.send_payment(_other(sender))
    assert OTHER.verify_forfeit(bytes.fromhex(refused["Err"])) and ln.calls == 1
    assert sender.in_flight() == 1  # the first still paying
    sender.mint.api.answer = [V["outgoing"]["contract_id"], 1000]  # type: ignore[attr-defined]
    with pytest.raises(GatewayError, match="pending"):  # the first is still asked, not refused
        await sender.send_payment(_body())
    assert ln.calls == 2


async def test_a_definite_failure_frees_the_hash(tmp_path: Path) -> None:
    registry = FederationRegistry(tmp_path / "router.sqlite")
    claims = RouterClaims(registry, FED_A)
    ln = FakeLightning(lnpb.FAILED)
    sender = _sender(tmp_path, ln, [V["outgoing"]["contract_id"], 1000], claims)
    assert CONTRACT.verify_forfeit(bytes.fromhex((await sender.send_payment(_body()))["Err"]))
    assert sender.in_flight() == 0
    ln.status = lnpb.SETTLED  # the user tries again (say, once we have liquidity): paid
    assert await sender.send_payment(_other(sender)) == {"Ok": [1] * 32} and ln.calls == 2
    row = _log(sender, CONTRACT.contract_id)
    assert row["status"] == "failed" and row["error"] == "no route"


async def test_a_send_nobody_asks_for_any_more_is_finished_by_resume(tmp_path: Path) -> None:
    """The payer stopped asking while our node's payment was pending; it settled since. The
    role's periodic resume() (roles.keep_finishing) finishes it, without a restart: the
    preimage is ours to claim with before the contract could expire. A send a call is driving
    now is left to that call."""
    ln = FakeLightning(lnpb.PENDING)
    sender = _sender(tmp_path, ln, [V["outgoing"]["contract_id"], 1000])
    with pytest.raises(GatewayError, match="pending"):
        await sender.send_payment(_body())
    ln.status = lnpb.SETTLED
    cid = CONTRACT.contract_id.hex()
    lock = sender._locks[cid]
    async with lock:  # the payer's ask is driving it: resume() leaves it alone
        await sender.resume()
    assert ln.calls == 1 and sender.row(cid)["state"] == "paying"  # type: ignore[index]
    await sender.resume()  # the claim's federation is faked away: paid, claimed later
    row = sender.row(cid) or {}
    assert ln.calls == 2 and row["state"] == "paid" and row["preimage"] == "01" * 32
    assert sender.in_flight() == 1  # until the claim is taken


async def test_the_roles_resume_again_while_they_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.actor import roles

    stop = asyncio.Event()

    class Flow:
        def __init__(self) -> None:
            self.passes = 0

        async def resume(self) -> None:
            self.passes += 1
            if self.passes == 3:
                stop.set()

    class Role(roles.PairedFlows):
        def __init__(self) -> None:
            self.sender, self.receiver = Flow(), Flow()

    monkeypatch.setattr(roles, "RESUME_EVERY_S", 0.01)
    role = Role()
    await asyncio.wait_for(role.keep_finishing(stop), 5)  # ends at the third pass
    assert role.sender.passes == 3
    assert role.receiver.passes >= 3


async def test_a_contract_too_close_to_its_expiry_is_refused_with_a_forfeit(
    tmp_path: Path,
) -> None:
    """Blocks were mined since the payer funded it: too late to pay over Lightning. A definite
    no (our forfeit: the payer refunds at once), not an error the payer's client would ask
    again with until the contract expires; nothing paid, the hash free for another payer."""
    registry = FederationRegistry(tmp_path / "router.sqlite")
    ln = FakeLightning(lnpb.SETTLED)
    sender = _sender(
        tmp_path, ln, [V["outgoing"]["contract_id"], 144], RouterClaims(registry, FED_A)
    )
    answer = await sender.send_payment(_body())
    assert CONTRACT.verify_forfeit(bytes.fromhex(answer["Err"])) and ln.calls == 0
    assert await sender.send_payment(_body()) == answer  # asked again: the same answer
    row = _log(sender, CONTRACT.contract_id)
    assert row["status"] == "failed" and "too soon" in row["error"]
    assert sender.in_flight() == 0
    assert await sender.send_payment(_other(sender)) == {"Ok": [1] * 32}  # the hash is free


class FakeSwaps:
    """A served federation is the invoice's payee and settles (swaps.Swaps faked)."""

    def __init__(self) -> None:
        self.asked = 0

    async def may_be_ours(self, invoice: str) -> bool:
        return True

    async def decide(self, invoice: str, amount_msat: int, message_id: str) -> dict:
        self.asked += 1
        return {"action": "settle", "preimage": "01" * 32}


@pytest.mark.parametrize(("blocks_left", "paid"), [(100, True), (36, False)])
async def test_a_swap_needs_less_time_than_lightning(
    tmp_path: Path, blocks_left: int, paid: bool
) -> None:
    """A swap is claimed as soon as the payee's federation decides: 100 blocks before the
    expiry are enough for it (not for Lightning), 36 are not."""
    ln, swaps = FakeLightning(lnpb.SETTLED), FakeSwaps()
    sender = _sender(tmp_path, ln, [V["outgoing"]["contract_id"], blocks_left])
    sender.swaps = swaps  # type: ignore[assignment]
    answer = await sender.send_payment(_body())
    assert ("Ok" in answer) is paid and swaps.asked == int(paid) and ln.calls == 0
