"""Whether the Lightning extension must hand the router forwards to virtual channels.

Only LNv1 (a federation with the `ln` module) routes payments through a virtual channel, an scid the
node has no channel for, which lnd can show us only through its HtlcInterceptor. LNv2 receives (and
the hold invoices of every federation) come without it. So the interceptor is wanted while a served
federation (connecting, running or crashed) has virtual channels, and not otherwise: a routing node
serving LNv2 alone never waits on the gateway for its forwards.

A federation's need is learnt from its config when it is connected (before its actor starts and
registers its scid, so the interceptor is attached before anyone can pay through it), or, after a
router restart, from its actor (`actor.info`: its modules). One not known yet counts as
needing it: the safe side. The router says the answer to the extension (`InterceptForwards`)
each time it checks the extension's health and at once on a connect or leave: level-triggered,
so a restart of either side converges within a second. Owns only this in-memory knowledge;
never writes the registry.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable

import grpc

from bus import Broker
from gwcore.constants import METHOD_ACTOR_INFO
from gwcore.errors import GatewayError
from gwproto import gateway_lnrpc_pb2 as lnpb
from gwproto import gateway_lnrpc_pb2_grpc as lnpb_grpc

from .registry import FederationRegistry

log = logging.getLogger(__name__)
SERVED = ("connecting", "running", "crashed")
ASK_EVERY_S = 10.0  # an actor that did not say its modules is asked again after this long


def needs_forwards(modules: Iterable[str]) -> bool:
    """Does a federation with these modules route payments through a virtual channel? With
    LNv1's `ln` module."""
    return "ln" in set(modules)


class ForwardNeeds:
    """Per federation: does it need forwards to its virtual channel (None: not known yet)."""

    def __init__(self, registry: FederationRegistry, broker: Broker) -> None:
        self.registry, self.broker = registry, broker
        self._known: dict[str, bool] = {}
        self._asked: dict[str, float] = {}  # federation id -> monotonic time last asked

    def learn(self, federation_id: str, modules: Iterable[str]) -> None:
        self._known[federation_id] = needs_forwards(modules)

    def needed(self) -> bool:
        """True while any served federation needs them or is not known not to."""
        return any(
            self._known.get(e.federation_id, True)
            for e in self.registry.active()
            if e.state in SERVED
        )

    async def learn_from_actors(self, timeout_s: float = 5.0) -> None:
        """Ask the actors of served federations whose need is not known (each at most every
        ASK_EVERY_S) for their modules."""
        now = time.monotonic()
        unknown = [
            e.federation_id
            for e in self.registry.active()
            if e.state in SERVED
            and e.federation_id not in self._known
            and now - self._asked.get(e.federation_id, -ASK_EVERY_S) >= ASK_EVERY_S
        ]
        for fed in unknown:
            self._asked[fed] = now
        await asyncio.gather(*(self._ask(fed, timeout_s) for fed in unknown))

    async def _ask(self, federation_id: str, timeout_s: float) -> None:
        try:
            raw = await self.broker.request(
                federation_id, METHOD_ACTOR_INFO, b"{}", timeout=timeout_s
            )
            info = json.loads(raw)
        except (GatewayError, ValueError, TimeoutError) as exc:
            log.info("actor of %s did not say its modules yet: %s", federation_id, exc)
            return
        self.learn(federation_id, info.get("modules") or [])

    async def say(self, stub: lnpb_grpc.GatewayLightningStub) -> bool:
        """Tell the extension whether forwards are needed; whether the HTLCs we need reach us
        now (an extension without the call intercepts as it always did)."""
        try:
            r = await stub.InterceptForwards(
                lnpb.InterceptForwardsRequest(enabled=self.needed()), timeout=10
            )
        except grpc.aio.AioRpcError as exc:
            return exc.code() == grpc.StatusCode.UNIMPLEMENTED
        except grpc.aio.UsageError:  # the stream's channel closed under us
            return False
        return bool(r.intercepting)
