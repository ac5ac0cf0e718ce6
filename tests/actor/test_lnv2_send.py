"""The actor's LNv2 send (services/actor/lnv2_send.py) with a real wallet file, real contracts
and signatures (the real crates' vectors) and a real federation's config, the guardians and
the Lightning node faked: every check refuses with its reason and records nothing; a definite
Lightning failure is answered with a valid forfeit, and asking again pays nothing twice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from coincurve import PrivateKey

from fmclient.config import parse_client_config
from fmclient.lnv2 import OutgoingContract
from fmclient.wallet import MintWallet
from gwcore.errors import GatewayError, InvalidInput
from gwproto import gateway_lnrpc_pb2 as lnpb
from services.actor.lnv2_send import Lnv2Sender

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
        return lnpb.PayInvoiceResponse(status=self.status, failure_reason="no route")


def _sender(tmp_path: Path, lightning: FakeLightning, expiration: Any) -> Lnv2Sender:
    mint = MintWallet(tmp_path / "w.sqlite", CONFIG, FakeApi(expiration))  # type: ignore[arg-type]
    key = PrivateKey(bytes.fromhex(V["secret_keys"]["claim"]))
    return Lnv2Sender(mint, key, lightning, FEES, CONFIG.federation_id)


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
        ({}, [V["outgoing"]["contract_id"], 100], "too soon"),
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
