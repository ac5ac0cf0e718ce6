"""When the router wants forwards to virtual channels (services/router/interception.py): only
while a served federation has them (LNv1's `ln` module), one whose
modules are not known yet counting as having them; learnt at connect or from the actor after a
restart; the wish said to the extension (`InterceptForwards`), its answer believed."""

from __future__ import annotations

import json
from pathlib import Path

import grpc

from gwcore.constants import METHOD_ACTOR_INFO
from gwcore.errors import GatewayError
from gwproto import gateway_lnrpc_pb2 as lnpb
from services.router.interception import ForwardNeeds, needs_forwards
from services.router.registry import FederationRegistry

V1, V2, V3 = "11" * 32, "22" * 32, "33" * 32
FEDIMINT_INVITE = "fed11qgqzygrfwdusamw"


class Actors:
    """The bus: each federation's actor answers actor.info with its kind and modules."""

    def __init__(self, infos: dict[str, dict]) -> None:
        self.infos, self.asked = infos, []

    async def request(self, service: str, method: str, payload: bytes, **kw: object) -> bytes:
        assert method == METHOD_ACTOR_INFO
        self.asked.append(service)
        if service not in self.infos:
            raise GatewayError("no worker", retryable=True)
        return json.dumps(self.infos[service]).encode()


def _registry(path: Path, *feds: str) -> FederationRegistry:
    reg = FederationRegistry(path / "router.sqlite")
    for fed in feds:
        reg.add(fed, "", FEDIMINT_INVITE, "ws://x", "p-" + fed[:4])
        reg.set_state(fed, "running")
    return reg


def test_which_federations_need_forwards() -> None:
    assert needs_forwards(["ln", "lnv2", "mint", "wallet"])
    assert not needs_forwards(["lnv2", "mint", "walletv2"])
    assert not needs_forwards([])


async def test_learnt_from_the_actors_after_a_restart(tmp_path: Path) -> None:
    reg = _registry(tmp_path, V2)
    actors = Actors({})
    needs = ForwardNeeds(reg, actors)  # type: ignore[arg-type]
    assert needs.needed()  # not known yet: the safe side
    await needs.learn_from_actors()
    assert needs.needed() and actors.asked == [V2]  # the actor did not answer
    await needs.learn_from_actors()
    assert actors.asked == [V2]  # asked again only after ASK_EVERY_S
    actors.infos[V2] = {"kind": "fedimint", "modules": ["lnv2", "mint", "walletv2"]}
    needs._asked.clear()
    await needs.learn_from_actors()
    assert not needs.needed()
    # an LNv1 federation connected (its config says `ln`): wanted until it leaves
    reg.add(V1, "", FEDIMINT_INVITE, "ws://x", "p-v1")
    needs.learn(V1, ["ln", "lnv2", "mint", "wallet"])
    assert needs.needed()
    reg.set_state(V1, "leaving")
    assert not needs.needed()
    reg.set_state(V1, "left")
    assert not needs.needed()
    # one that crashed still counts: its HTLCs wait for its actor
    reg.add(V3, "", FEDIMINT_INVITE, "ws://x", "p-v3")
    reg.set_state(V3, "crashed")
    needs.learn(V3, ["ln", "mint", "wallet"])
    assert needs.needed()


class Extension:
    def __init__(self, answer: lnpb.InterceptForwardsResponse | grpc.StatusCode) -> None:
        self.answer = answer
        self.said: list[bool] = []

    async def InterceptForwards(self, req: lnpb.InterceptForwardsRequest, timeout: float):
        self.said.append(req.enabled)
        if isinstance(self.answer, grpc.StatusCode):
            raise grpc.aio.AioRpcError(self.answer, None, None, "no")
        return self.answer


async def test_the_wish_said_and_the_answer_believed(tmp_path: Path) -> None:
    reg = _registry(tmp_path, V2)
    needs = ForwardNeeds(reg, Actors({}))  # type: ignore[arg-type]
    needs.learn(V2, ["lnv2"])
    ext = Extension(lnpb.InterceptForwardsResponse(intercepting=True))
    assert await needs.say(ext) is True  # type: ignore[arg-type]
    needs.learn(V1, ["ln"])
    reg.add(V1, "", FEDIMINT_INVITE, "ws://x", "p-v1")
    ext.answer = lnpb.InterceptForwardsResponse(intercepting=False)  # not attached (yet)
    assert await needs.say(ext) is False  # type: ignore[arg-type]
    assert ext.said == [False, True]
    assert await needs.say(Extension(grpc.StatusCode.UNAVAILABLE)) is False  # type: ignore[arg-type]
    assert await needs.say(Extension(grpc.StatusCode.UNIMPLEMENTED)) is True  # type: ignore[arg-type]
