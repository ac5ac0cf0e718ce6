"""The Lightning roles of an actor: one per Lightning module its federation has, each behind the
same small interface, built from the federation's modules (`lightning_roles`). The actor only
routes bus methods to the role that declares them; nothing outside a role knows its version.

- `lnv2` (`lnv2_role.Lnv2Role`): routing info, sends, hold-invoice receives, LUD-21 verify.
- `ln` (`lnv1_role.Lnv1Role`): registration, `/pay_invoice`, HTLCs intercepted for the
  federation's scid.

A role's bus methods are keyed by the bus method name; an HTLC is keyed by how it reached us:
`HTLC_HOLD` (an HTLC of one of our hold invoices) or `HTLC_SCID` (addressed to the federation's
short channel id and intercepted).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from gwcore.constants import (
    METHOD_ACTOR_HTLC,
    METHOD_ACTOR_LNV2_INVOICE,
    METHOD_ACTOR_LNV2_SEND,
    METHOD_ACTOR_LNV2_VERIFY,
    METHOD_ACTOR_PAY,
    METHOD_ACTOR_ROUTING_INFO,
)
from gwcore.errors import InvalidInput

from .flow_rows import for_stats
from .inflight import ContractFinder

log = logging.getLogger(__name__)
RESUME_EVERY_S = 30.0  # how often the in-flight payments nobody is driving are driven again
Handler = Callable[[dict], Awaitable[Any]]
HTLC_HOLD = f"{METHOD_ACTOR_HTLC}:hold_invoice"
HTLC_SCID = f"{METHOD_ACTOR_HTLC}:scid"
# what only a Lightning role answers: asked of a federation without it, a clear 404
LIGHTNING_METHODS = frozenset(
    {
        METHOD_ACTOR_HTLC,
        METHOD_ACTOR_PAY,
        METHOD_ACTOR_LNV2_SEND,
        METHOD_ACTOR_LNV2_INVOICE,
        METHOD_ACTOR_LNV2_VERIFY,
        METHOD_ACTOR_ROUTING_INFO,
    }
)


def htlc_route(method: str, body: dict) -> str:
    """The key a bus call is routed by: an HTLC by how it reached us, anything else by name."""
    if method != METHOD_ACTOR_HTLC:
        return method
    return HTLC_HOLD if body.get("hold_invoice") else HTLC_SCID


class LightningRole(Protocol):
    kind: str  # the module it serves: "ln", "lnv2"

    def bus_methods(self) -> dict[str, Handler]: ...

    async def start(self, stop: asyncio.Event) -> None:
        """What must hold before the actor says READY (a first registration); retried until
        it holds or `stop`."""
        ...

    async def run(self, stop: asyncio.Event) -> None:
        """Resume what a crash left, then background work (registration renewals) until stop."""
        ...

    def info(self) -> dict: ...

    def in_flight(self) -> dict[str, int]: ...

    def log_rows(self, since: float, before: float | None, limit: int) -> list[dict]: ...

    def for_stats(self, watermark: float) -> tuple[list[dict], list[dict]]: ...

    def fees_changed(self) -> None:
        """Fees were set: effective at once (re-register where the module registers)."""
        ...

    def contract_finder(self) -> ContractFinder | None:
        """Its part in finding contracts in flight a lost data folder forgot (inflight.py),
        or None when it has none."""
        ...


class Registering:
    """A role that registers with its federation (LNv1): the
    actor is READY only after a first registration (`start`), which is renewed every third of
    its TTL and at once when fees change (`renewals`). A subclass has `register()` and
    `ttl_s`, and calls `_init_registering()`."""

    ttl_s: float
    kind: str

    def _init_registering(self) -> None:
        self._reregister = asyncio.Event()

    async def register(self) -> dict:
        raise NotImplementedError

    async def start(self, stop: asyncio.Event) -> None:
        delay = 0.2
        while not stop.is_set():
            try:
                await self.register()
                return
            except Exception as exc:
                log.warning("first %s registration failed: %s; retrying", self.kind, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def renewals(self, stop: asyncio.Event) -> None:
        delay = 0.2
        while not stop.is_set():
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._reregister.wait(), self.ttl_s / 3)
                self._reregister.clear()
                await self.register()
                delay = 0.2
            except Exception as exc:
                log.warning("%s registration failed: %s; retrying", self.kind, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                self._reregister.set()

    def fees_changed(self) -> None:
        self._reregister.set()


class PairedFlows:
    """A role whose payments are a sender's and a receiver's (flow_rows.LnFlow, each with
    `log_rows`, `payments`, `in_flight`, `resume`), with their in-flight states."""

    sender: Any
    receiver: Any
    SEND_IN_FLIGHT: tuple[str, ...]
    RECEIVE_IN_FLIGHT: tuple[str, ...]

    def log_rows(self, since: float, before: float | None, limit: int) -> list[dict]:
        return self.sender.log_rows(since, before, limit) + self.receiver.log_rows(
            since, before, limit
        )

    def for_stats(self, watermark: float) -> tuple[list[dict], list[dict]]:
        """Payments final since `watermark`, and those under way (flow_rows.for_stats)."""
        return for_stats(
            [(self.sender, self.SEND_IN_FLIGHT), (self.receiver, self.RECEIVE_IN_FLIGHT)],
            watermark,
        )

    async def resume(self) -> None:
        await asyncio.gather(self.sender.resume(), self.receiver.resume())

    async def keep_finishing(self, stop: asyncio.Event) -> None:
        """resume() at the start, and again every RESUME_EVERY_S until `stop`: a payment a
        fault stopped while the actor ran (a claim the federation did not take in time, a
        payer that stopped asking once our node had paid) is finished without waiting for a
        restart, well before its contract could expire."""
        while not stop.is_set():
            await self.resume()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RESUME_EVERY_S)


def contract_id(body: dict) -> str:
    cid = body.get("contract_id")
    if not isinstance(cid, str) or len(cid) != 64:
        raise InvalidInput("contract_id must be 32 bytes of hex")
    return cid
