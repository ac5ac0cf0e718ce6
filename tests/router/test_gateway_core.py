"""The router's own rules, its bus and supervisor faked, its registry real: a payment hash is
paid by one contract for the whole gateway (`gateway.claim_outgoing_hash`, kept across a
restart; released only by its holder), and leave is refused (409, naming what) while the actor
has anything in flight, or when the actor cannot say; `force` leaves anyway."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gwcore.constants import METHOD_ACTOR_INFO, METHOD_CLAIM_OUTGOING, METHOD_RELEASE_OUTGOING
from gwcore.errors import GatewayError, InvalidInput, PaymentsInFlight, ServiceNotReady
from gwcore.extension import ExtensionEndpoint
from services.router.gateway import GatewayCore
from services.router.registry import FederationRegistry

FED_A, FED_B = "aa" * 32, "bb" * 32
HASH, C1, C2 = "11" * 32, "c1" * 32, "c2" * 32


class FakeBroker:
    def __init__(self) -> None:
        self.on_worker_event = None
        self.info: dict | Exception = {"in_flight": 0, "in_flight_kinds": {}}

    async def request(self, service: str, method: str, payload: bytes, **kw: object) -> bytes:
        assert method == METHOD_ACTOR_INFO
        if isinstance(self.info, Exception):
            raise self.info
        return json.dumps(self.info).encode()


class FakeCall:
    def __init__(self, method: str, body: dict) -> None:
        self.method, self.payload = method, json.dumps(body).encode()


def _core(path: Path) -> tuple[GatewayCore, FakeBroker]:
    broker = FakeBroker()
    registry = FederationRegistry(path / "router.sqlite")
    core = GatewayCore(
        broker,
        registry,
        None,
        extension=ExtensionEndpoint.parse("unix:/tmp/fmgw-none/extension.sock"),
        actor_env={},
    )  # type: ignore[arg-type]
    return core, broker


async def _claim(core: GatewayCore, method: str, fed: str, cid: str) -> dict:
    body = {"payment_hash": HASH, "federation_id": fed, "contract_id": cid}
    return json.loads(await core.handle(FakeCall(method, body)))  # type: ignore[arg-type]


async def test_a_payment_hash_is_paid_by_one_contract_for_the_whole_gateway(
    tmp_path: Path,
) -> None:
    core, _ = _core(tmp_path)
    assert await _claim(core, METHOD_CLAIM_OUTGOING, FED_A, C1) == {"claimed": True}
    assert await _claim(core, METHOD_CLAIM_OUTGOING, FED_A, C1) == {"claimed": True}  # again
    core, _ = _core(tmp_path)  # the router restarted: the claim is kept
    assert await _claim(core, METHOD_CLAIM_OUTGOING, FED_B, C2) == {"claimed": False}
    assert await _claim(core, METHOD_CLAIM_OUTGOING, FED_A, C2) == {"claimed": False}
    # only the holder releases (its contract failed definitely); then another may pay
    assert await _claim(core, METHOD_RELEASE_OUTGOING, FED_B, C2) == {"released": False}
    assert await _claim(core, METHOD_CLAIM_OUTGOING, FED_B, C2) == {"claimed": False}
    assert await _claim(core, METHOD_RELEASE_OUTGOING, FED_A, C1) == {"released": True}
    assert await _claim(core, METHOD_CLAIM_OUTGOING, FED_B, C2) == {"claimed": True}
    assert await _claim(core, METHOD_CLAIM_OUTGOING, FED_A, C1) == {"claimed": False}
    with pytest.raises(InvalidInput, match="contract_id"):
        await _claim(core, METHOD_CLAIM_OUTGOING, FED_A, "zz")


async def test_leave_is_refused_while_anything_is_in_flight(tmp_path: Path) -> None:
    core, broker = _core(tmp_path)
    core.registry.add(FED_A, "a", "fed11x", "ws://x", "gateway-actor-a")
    core.registry.set_state(FED_A, "running")
    broker.info = {"in_flight": 2, "in_flight_kinds": {"lnv2_receive": 1, "withdrawal": 1}}
    with pytest.raises(PaymentsInFlight, match=r"1 LNv2 receive, 1 withdrawal"):
        await core.leave(FED_A, force=False)
    assert core.registry.get(FED_A).state == "running"  # type: ignore[union-attr]
    # an actor that does not answer (crashed, restarting) cannot say what it holds: refused
    core.registry.set_state(FED_A, "crashed")
    broker.info = GatewayError("deadline exceeded", retryable=True)
    with pytest.raises(ServiceNotReady, match="leave with force"):
        await core.leave(FED_A, force=False)
    assert core.registry.get(FED_A).state == "crashed"  # type: ignore[union-attr]
    assert await core.leave(FED_A, force=True) == {"left": FED_A, "forced": True}
    core.registry.set_state(FED_A, "running")
    broker.info = {"in_flight": 0, "in_flight_kinds": {"lnv2_send": 0}}
    assert await core.leave(FED_A, force=False) == {"left": FED_A, "forced": False}
