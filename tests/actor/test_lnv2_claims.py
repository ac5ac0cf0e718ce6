"""Claims of paid LNv2 contracts (services/actor/lnv2_claims.py) with the real sender, a real
wallet file and real contracts and signatures; the federation's answer to a claim is faked
(`finish`). A send is answered before its claim; contracts paid while a claim is with the
federation go together in the next one; a refused batch is claimed one contract at a time, so
only the bad one is refused; after a crash, resume() finishes the operations already created,
and creates none twice."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from fmclient.wallet_operations import Rejected
from gwproto import gateway_lnrpc_pb2 as lnpb
from services.actor.lnv2_claims import claim_op_id
from services.actor.lnv2_send import Lnv2Sender

from .test_lnv2_send import CONTRACT, FakeLightning, _body, _sender

# three payers' contracts for one invoice: another expiration each, so another contract id
C1, C2, C3 = (dataclasses.replace(CONTRACT, expiration=CONTRACT.expiration + i) for i in range(3))


class Federation:
    """`mint.finish` faked: records the operations it is asked to finish; the first waits for
    `gate`; those named in `refuse` are refused."""

    def __init__(self, sender: Lnv2Sender, refuse: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.sender, self.refuse, self.asked = sender, refuse, []
        self.gate = asyncio.Event()
        sender.mint.finish = self.finish  # type: ignore[method-assign]

    async def finish(self, op_id: str) -> dict:
        self.asked.append(op_id)
        if len(self.asked) == 1:
            await self.gate.wait()
        if op_id in self.refuse or (op_id.startswith("lnv2-claims-") and "batch" in self.refuse):
            raise Rejected("rejected: the contract is spent")
        return {}


async def _pay(sender: Lnv2Sender, contract) -> dict:  # type: ignore[no-untyped-def]
    sender.mint.api.answer = [contract.contract_id.hex(), 1000]  # type: ignore[attr-defined]
    return await sender.send_payment(_body(contract=contract.json()))


def _state(sender: Lnv2Sender, contract) -> str:  # type: ignore[no-untyped-def]
    return (sender.row(contract.contract_id.hex()) or {})["state"]


async def test_claims_wait_for_the_one_in_flight_then_go_together(tmp_path: Path) -> None:
    sender = _sender(tmp_path, FakeLightning(lnpb.SETTLED), None)
    fed = Federation(sender)
    assert await _pay(sender, C1) == {"Ok": [1] * 32}  # answered, the claim not yet taken
    await asyncio.sleep(0)
    assert _state(sender, C1) == "paid" and len(fed.asked) == 1
    for c in (C2, C3):  # paid while the first claim is with the federation
        assert await _pay(sender, c) == {"Ok": [1] * 32}
    fed.gate.set()
    await asyncio.wait_for(sender.claims.done.wait(), 5)
    together = claim_op_id([C2.contract_id.hex(), C3.contract_id.hex()])
    assert fed.asked == [claim_op_id([C1.contract_id.hex()]), together]
    assert {_state(sender, c) for c in (C1, C2, C3)} == {"claimed"}
    assert sender.in_flight() == 0
    op = sender.mint.operation(together) or {}
    assert op["kind"] == "lnv2_claim"


async def test_a_refused_batch_is_claimed_one_contract_at_a_time(tmp_path: Path) -> None:
    sender = _sender(tmp_path, FakeLightning(lnpb.SETTLED), None)
    fed = Federation(sender, refuse={"batch", claim_op_id([C3.contract_id.hex()])})
    await _pay(sender, C1)
    await _pay(sender, C2)
    await _pay(sender, C3)
    fed.gate.set()
    await asyncio.wait_for(sender.claims.done.wait(), 5)
    assert fed.asked[2:] == [claim_op_id([c.contract_id.hex()]) for c in (C2, C3)]
    assert [_state(sender, c) for c in (C1, C2, C3)] == ["claimed", "claimed", "claim_refused"]


async def test_after_a_crash_the_claims_created_are_finished_not_made_again(
    tmp_path: Path,
) -> None:
    sender = _sender(tmp_path, FakeLightning(lnpb.SETTLED), None)
    fed = Federation(sender)  # never answers
    for c in (C1, C2, C3):  # all paid before the claimer runs: one claim for the three
        await _pay(sender, c)
    await asyncio.sleep(0)
    together = claim_op_id([c.contract_id.hex() for c in (C1, C2, C3)])
    assert fed.asked == [together]
    assert {(sender.row(c.contract_id.hex()) or {})["claim_op"] for c in (C1, C2, C3)} == {together}
    sender.claims._runner.cancel()  # type: ignore[union-attr]  # the crash
    again = _sender(tmp_path, FakeLightning(lnpb.SETTLED), None)  # the same wallet file
    fed2 = Federation(again)
    fed2.gate.set()
    await again.resume()
    await asyncio.wait_for(again.claims.done.wait(), 5)
    assert fed2.asked == [together]  # the operation created before: finished, no other
    assert {_state(again, c) for c in (C1, C2, C3)} == {"claimed"}
    assert again.in_flight() == 0
