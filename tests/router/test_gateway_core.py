"""The router's own rules, its bus and supervisor faked, its registry real: a payment hash is
paid by one contract for the whole gateway (`gateway.claim_outgoing_hash`, kept across a
restart; released only by its holder), and leave is refused (409, naming what) while the actor
has anything in flight, or when the actor cannot say; `force` leaves anyway."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from pathlib import Path

import pytest

from gwcore.constants import METHOD_ACTOR_INFO, METHOD_CLAIM_OUTGOING, METHOD_RELEASE_OUTGOING
from gwcore.errors import GatewayError, InvalidInput, PaymentsInFlight, ServiceNotReady
from gwcore.extension import ExtensionEndpoint
from services.router.gateway import GatewayCore
from services.router.registry import SERVED, FederationRegistry
from services.router.supervisor import SupervisorControl

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

    def live_services(self) -> set[str]:
        return set()  # no actor answers here


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
        await core.federations.leave(FED_A, force=False)
    assert core.registry.get(FED_A).state == "running"  # type: ignore[union-attr]
    # an actor that does not answer (crashed, restarting) cannot say what it holds: refused
    core.registry.set_state(FED_A, "crashed")
    broker.info = GatewayError("deadline exceeded", retryable=True)
    with pytest.raises(ServiceNotReady, match="leave with force"):
        await core.federations.leave(FED_A, force=False)
    assert core.registry.get(FED_A).state == "crashed"  # type: ignore[union-attr]
    assert await core.federations.leave(FED_A, force=True) == {"left": FED_A, "forced": True}
    core.registry.set_state(FED_A, "running")
    broker.info = {"in_flight": 0, "in_flight_kinds": {"lnv2_send": 0}}
    assert await core.federations.leave(FED_A, force=False) == {"left": FED_A, "forced": False}


class FakeSupervisor(SupervisorControl):
    """Writes the real conf.d files; records what supervisord would be asked to do."""

    def __init__(self, conf_dir: Path) -> None:
        super().__init__("unix:///nonexistent", conf_dir)
        self.added: list[str] = []
        self.removed: list[str] = []
        self.down = 0  # the next calls that fail (supervisord not answering yet)

    def add(self, program: str) -> None:
        if self.down:
            self.down -= 1
            raise ConnectionRefusedError("supervisord not answering")
        self.added.append(program)

    def remove(self, program: str) -> None:
        self.removed.append(program)
        self.conf_path(program).unlink(missing_ok=True)

    def actor_programs(self) -> list[str]:
        return sorted(p.stem for p in self.conf_dir.glob("*.conf"))


async def test_the_router_starts_every_connected_federations_actor_from_its_database(
    tmp_path: Path,
) -> None:
    """conf.d is a cache: a router started beside an empty run folder writes each served
    federation's program again (invite, scid, the guardians' URLs given at connect) and starts
    it; a leave a crash interrupted is finished; left and failed federations stay down."""
    core, _ = _core(tmp_path)
    sup = core.federations.supervisor = FakeSupervisor(tmp_path / "run" / "conf.d")
    reg = core.registry
    feds = {
        s: c * 32 for s, c in zip((*SERVED, "leaving", "left", "failed"), "abcdefg", strict=True)
    }
    for state, fed in feds.items():
        reg.add(fed, state, f"fed11{state}", "ws://x", f"gateway-actor-{fed[:16]}")
        reg.set_state(fed, state)
    reg.set_api_urls(feds["running"], {0: "ws://127.0.0.1:1/", 1: "ws://127.0.0.1:2/"})
    stale = "gateway-actor-" + "9" * 16  # a run folder kept beside another data folder
    sup.write_program(stale, "9" * 64, "gateway-actor", {})
    sup.down = 2
    await core.federations.restore_actors(retry_s=0.01)
    served = [f"gateway-actor-{feds[s][:16]}" for s in SERVED]
    assert sup.added == served
    assert sup.removed == [f"gateway-actor-{feds['leaving'][:16]}", stale]
    assert reg.get(feds["leaving"]).state == "left"  # type: ignore[union-attr]
    assert sorted(p.name for p in sup.conf_dir.iterdir()) == sorted(f"{p}.conf" for p in served)
    conf = sup.conf_path(f"gateway-actor-{feds['running'][:16]}").read_text()
    scid = reg.get(feds["running"]).scid  # type: ignore[union-attr]
    assert 'GATEWAY_ACTOR_INVITE_CODE="fed11running"' in conf
    assert f'GATEWAY_ACTOR_SCID="{scid}"' in conf
    urls = re.search(r'GATEWAY_ACTOR_API_URLS="([^"]+)"', conf)
    assert urls and json.loads(base64.urlsafe_b64decode(urls[1])) == {
        "0": "ws://127.0.0.1:1/",
        "1": "ws://127.0.0.1:2/",
    }
    assert "GATEWAY_ACTOR_API_URLS" not in sup.conf_path(served[0]).read_text()


async def test_a_recovering_federation_is_not_running_until_its_actor_says_done(
    tmp_path: Path,
) -> None:
    """`connect-fed --recover`: refused for a federation this data folder knows (the registry,
    or an actor's folder), in one line, unless its recovery is under way (a
    retried request goes on); its actor is started with RECOVER; it is
    `recovering` (READY or not) until the actor's `gateway.recovered`, then `running`."""
    from gwcore.invites import Invite

    core, _ = _core(tmp_path)
    core.federations.actor_env = {"GATEWAY_ACTOR_DATA_DIR": str(tmp_path)}
    invite = Invite(FED_B, {0: "ws://x"})
    core.federations._check_recoverable(invite)  # new here: fine
    (tmp_path / "actors" / FED_B[:16]).mkdir(parents=True)
    with pytest.raises(InvalidInput, match="is known to this gateway"):
        core.federations._check_recoverable(invite)
    core.registry.add(FED_A, "a", "fed11x", "ws://x", "gateway-actor-a")
    with pytest.raises(InvalidInput, match="state connecting"):
        core.federations._check_recoverable(Invite(FED_A, {0: "ws://x"}))
    core.registry.start_recovery(FED_A)
    core.federations._check_recoverable(Invite(FED_A, {0: "ws://x"}))  # asked again: goes on
    core._worker_event("actor-a", FED_A, "ready")
    assert core.registry.get(FED_A).state == "recovering"  # type: ignore[union-attr]
    sup = core.federations.supervisor = FakeSupervisor(tmp_path / "conf.d")
    core.federations._write_actor_program(core.registry.get(FED_A))  # type: ignore[arg-type]
    assert 'GATEWAY_ACTOR_RECOVER="true"' in sup.conf_path("gateway-actor-a").read_text()
    done = json.loads(await core.handle(FakeCall("gateway.recovered", {"federation_id": FED_A})))  # type: ignore[arg-type]
    assert done == {"federation_id": FED_A, "recovered": True}
    assert core.registry.get(FED_A).state == "running"  # type: ignore[union-attr]
    core._worker_event("actor-a", FED_A, "revived")
    assert core.registry.get(FED_A).state == "running"  # type: ignore[union-attr]
    with pytest.raises(InvalidInput, match="state running"):  # recovered: known now
        core.federations._check_recoverable(Invite(FED_A, {0: "ws://x"}))


class SlowRemoval(FakeSupervisor):
    """Removing a program takes a while (supervisord stopping it)."""

    def remove(self, program: str) -> None:
        time.sleep(0.3)
        super().remove(program)


async def test_a_stale_program_removed_at_start_never_takes_a_new_connects_program(
    tmp_path: Path,
) -> None:
    """After a lost data folder the run folder still has the old actor's program; the router
    removes it at start while the operator connects that federation again (`--recover`): the
    same program name. The connect's program is written and added after the removal, so the
    new actor runs."""
    core, _ = _core(tmp_path)
    sup = core.federations.supervisor = SlowRemoval(tmp_path / "run" / "conf.d")
    program = f"gateway-actor-{FED_A[:16]}"
    sup.write_program(program, FED_A, "gateway-actor", {})  # the lost folder's
    core.federations.ready_timeout_s = 0.5  # no actor answers here: the connect's wait ends
    restoring = asyncio.create_task(core.federations.restore_actors(retry_s=0.01))
    await asyncio.sleep(0.05)  # the removal under way
    entry = core.registry.add(FED_A, "a", "fed11x", "ws://x", program)
    with pytest.raises(GatewayError, match="did not become ready"):
        await core.federations._start_actor(entry)
    await restoring
    assert sup.removed == [program] and sup.added == [program]
    assert sup.conf_path(program).exists()  # the new one, written after the removal
