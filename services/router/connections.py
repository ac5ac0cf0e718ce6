"""The router's first job: connecting and leaving federations, and their actors' programs.

Connect a federation: check the invite code, fetch the federation's config (its id must be the
invite's), allocate the scid, write the actor's conf.d program and add it to supervisord, wait
until the actor says READY (it does so after its first registration), mark it running.
Connecting twice returns the existing federation. The config fetch goes to hosts an invite
names, so it is bounded (a time limit, a few at once) and its failures are one fixed message.
Leaving: refused while the actor has payments in flight (unless forced), then its program is
removed.

At start, every connected federation's actor program is written again from the registry and
started (`restore_actors`: conf.d is a cache; the run folder may be new).

The router's other job, HTLC dispatch, is `htlcs.py`; the bus service over both, `gateway.py`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bus import Broker
from fmclient.config import federation_network, same_network
from fmclient.join import download_config
from gwcore.constants import (
    ENV_PREFIX_ACTOR,
    IN_FLIGHT_KINDS,
    METHOD_ACTOR_INFO,
    PROGRAM_ACTOR_PREFIX,
)
from gwcore.errors import (
    GatewayError,
    InvalidInput,
    NotFound,
    PaymentsInFlight,
    RateLimited,
    ServiceNotReady,
)
from gwcore.invites import Invite, parse_invite

from .htlcs import HtlcDispatch
from .interception import ForwardNeeds
from .registry import SERVED, FederationEntry, FederationRegistry
from .supervisor import SupervisorControl

log = logging.getLogger(__name__)
# a connect whose federation's config could not be had, however (the details are logged only)
UNREACHABLE = "federation unreachable: its guardians did not give its config"


class FederationConnections:
    """Connect, leave and restore federations. `lightning`: the node's info (its network is
    checked against a federation's)."""

    def __init__(
        self,
        broker: Broker,
        registry: FederationRegistry,
        supervisor: SupervisorControl | None,
        *,
        htlcs: HtlcDispatch,
        forwards: ForwardNeeds,
        lightning: Callable[[], Awaitable[dict]],
        actor_env: dict[str, str],
        ready_timeout_s: float = 90.0,
        config_timeout_s: float = 30.0,
        max_connects: int = 4,
    ) -> None:
        self.broker, self.registry, self.supervisor = broker, registry, supervisor
        self.htlcs, self.forwards, self.lightning = htlcs, forwards, lightning
        self.actor_env, self.ready_timeout_s = actor_env, ready_timeout_s
        # how far each connect has got (for the dashboard's progress), by federation id
        self.connecting: dict[str, dict] = {}
        # fetching a federation's config from the hosts an invite names: bounded (see _config)
        self.config_timeout_s, self.max_connects = config_timeout_s, max_connects
        self._fetching = asyncio.Semaphore(max_connects)
        self._leaving = asyncio.Lock()
        # actor programs are written and removed by one task at a time: restore_actors'
        # removal of a stale program never meets a connect starting the same program anew
        self._programs = asyncio.Lock()

    def connect_status(self, federation_id: object) -> dict:
        """{federation_id, step, error, updated} of the newest connect of that federation.
        Steps: checking (the invite; fetching the federation's config) -> starting (its actor's
        program added to supervisor) -> registering (the actor runs; READY comes once it has
        registered with the federation) -> running; or failed, with the error."""
        progress = self.connecting.get(federation_id) if isinstance(federation_id, str) else None
        if progress is None:
            raise NotFound(f"no connect of {federation_id} in progress or done")
        return progress

    def _step(self, fed_id: str, step: str, error: str | None = None) -> None:
        self.connecting[fed_id] = {
            "federation_id": fed_id,
            "step": step,
            "error": error,
            "updated": time.time(),
        }
        if len(self.connecting) > 1000:  # bounded: the oldest are forgotten
            oldest = min(self.connecting.values(), key=lambda p: p["updated"])
            self.connecting.pop(oldest["federation_id"], None)

    async def connect(
        self, invite_code: object, api_urls: object = None, recover: bool = False
    ) -> FederationEntry:
        """Connect the federation of `invite_code` (its progress in `connect_status`).
        `api_urls` ({peer id: ws URL}, Fedimint only): the guardians' websocket APIs, for a
        federation that lists only iroh endpoints. `recover`: a federation this gateway served
        before its data folder was lost: its actor recovers its e-cash and peg-in keys from the
        seed before it serves (refused for a federation this data folder knows)."""
        invite = parse_invite(invite_code, api_urls)  # InvalidInput: nothing started
        fed_id = invite.federation_id
        if recover:
            self._check_recoverable(invite)
        self._step(fed_id, "checking")
        try:
            entry = await self._connect(str(invite_code).strip(), invite, recover)
        except GatewayError as exc:
            self._step(fed_id, "failed", exc.message)
            raise
        except Exception as exc:
            self._step(fed_id, "failed", f"{type(exc).__name__}: {exc}")
            raise
        self._step(fed_id, entry.state if entry.state == "recovering" else "running")
        return entry

    def _check_recoverable(self, invite: Invite) -> None:
        """A recovery is for a Fedimint federation this data folder does not know (neither
        the registry nor an actor's folder), or one whose recovery is under way (asked again:
        it goes on): else refused, nothing changed."""
        fed_id = invite.federation_id
        entry = self.registry.get(fed_id)
        if entry is not None and self.registry.recovery(fed_id) == "recovering":
            return  # this recovery, asked again (a retried request): it goes on
        data_dir = self.actor_env.get(f"{ENV_PREFIX_ACTOR}DATA_DIR")
        home = Path(data_dir) / "actors" / fed_id[:16] if data_dir else None
        if entry is not None or (home is not None and home.exists()):
            known = f"state {entry.state}" if entry is not None else f"its data in {home}"
            raise InvalidInput(
                f"federation {fed_id} is known to this gateway ({known}): nothing to recover;"
                " connect it without --recover"
            )

    async def _connect(self, invite_code: str, invite: Invite, recover: bool) -> FederationEntry:
        fed_id, url, overrides = invite.federation_id, invite.api_url, invite.api_urls
        existing = self.registry.get(fed_id)
        if existing is not None and existing.state in SERVED:
            # connected already: make sure its actor runs (a lost run folder, a removed
            # program), with the guardians' URLs if new ones are given
            if overrides:
                self.registry.set_api_urls(fed_id, overrides)
            if fed_id not in self.broker.live_services():
                await self._start_actor(existing)
            return self.registry.get(fed_id)  # type: ignore[return-value]
        cfg = await self._config(invite_code, invite)
        if cfg.get("federation_id") != fed_id:
            raise InvalidInput("the federation at this URL is not the one the invite names")
        if cfg.get("network"):
            await self._check_network(str(cfg["network"]))
        # before its actor registers its scid: forwards to it reach us from the first payment
        self.forwards.learn(fed_id, cfg.get("modules") or [])
        await self.htlcs.say_interception()
        entry = self.registry.add(
            fed_id, str(cfg.get("name", "")), invite_code, url, PROGRAM_ACTOR_PREFIX + fed_id[:16]
        )
        if entry.state in ("left", "failed"):
            self.registry.set_state(fed_id, "connecting")
        if recover:
            self.registry.start_recovery(fed_id)
        self.registry.set_api_urls(fed_id, overrides)
        await self._start_actor(entry)
        return self.registry.get(fed_id)  # type: ignore[return-value]

    def _write_actor_program(self, entry: FederationEntry) -> None:
        """The actor's conf.d file, from the registry alone (conf.d is a cache of it: a lost run
        folder, or a new install's paths, are written again from here)."""
        assert self.supervisor is not None
        fed_id = entry.federation_id
        env = {
            **self.actor_env,
            f"{ENV_PREFIX_ACTOR}INVITE_CODE": entry.invite_code,
            f"{ENV_PREFIX_ACTOR}SCID": str(entry.scid),
        }
        if self.registry.recovery(fed_id) is not None:
            env[f"{ENV_PREFIX_ACTOR}RECOVER"] = "true"
        if overrides := self.registry.api_urls(fed_id):
            # base64 of the JSON: supervisord's environment= takes no quotes or % in values
            env[f"{ENV_PREFIX_ACTOR}API_URLS"] = base64.urlsafe_b64encode(
                json.dumps(overrides).encode()
            ).decode()
        command = f"{Path(sys.executable).parent / 'gateway-actor'} --federation-id {fed_id}"
        self.supervisor.write_program(entry.program, fed_id, command, env)

    async def _start_actor(self, entry: FederationEntry) -> None:
        """Write and start the federation's actor program, then wait until it answers."""
        if self.supervisor is None:
            raise ServiceNotReady("the router runs without supervisord: cannot start actors")
        fed_id = entry.federation_id
        self._step(fed_id, "starting")
        async with self._programs:
            await asyncio.to_thread(self._write_actor_program, entry)
            await asyncio.to_thread(self.supervisor.add, entry.program)
        self._step(fed_id, "registering")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ready_timeout_s
        while fed_id not in self.broker.live_services():
            if loop.time() > deadline:
                raise GatewayError(
                    f"the actor of {fed_id} did not become ready (is the federation registering us?)",
                    retryable=True,
                )
            await asyncio.sleep(0.1)
        self.registry.set_answering(fed_id)

    async def restore_actors(self, retry_s: float = 1.0) -> None:
        """At start: every connected federation's actor program, written again from the
        registry and started (the run folder may be new: a reboot, a tmpfs); a leave that a
        crash interrupted is finished; an actor program the registry does not serve (a run
        folder kept beside a lost or restored data folder) is removed. Retried until
        supervisord takes them all."""
        if self.supervisor is None:
            return
        while True:
            try:
                async with self._programs:
                    await self._restore_actors()
                return
            except Exception as exc:  # supervisord not answering yet: try again
                log.warning("starting the actors: %s: %s; trying again", type(exc).__name__, exc)
                await asyncio.sleep(retry_s)

    async def _restore_actors(self) -> None:
        """One pass of restore_actors (under the programs lock)."""
        assert self.supervisor is not None
        for entry in self.registry.in_state("leaving"):
            await asyncio.to_thread(self.supervisor.remove, entry.program)
            self.registry.set_state(entry.federation_id, "left")
        served = self.registry.in_state(*SERVED)
        wanted = {entry.program for entry in served}
        for program in await asyncio.to_thread(self.supervisor.actor_programs):
            if program not in wanted:
                log.warning("removing the actor program %s: no such federation", program)
                await asyncio.to_thread(self.supervisor.remove, program)
        for entry in served:
            await asyncio.to_thread(self._write_actor_program, entry)
        for entry in served:
            await asyncio.to_thread(self.supervisor.add, entry.program)
        if served:
            log.info("actors of %d connected federation(s) started", len(served))

    async def _config(self, invite_code: str, invite: Invite) -> dict:
        """The federation's config ({federation_id, name, …}) from the hosts its invite names.
        Bounded: at most `max_connects` fetches at once (one more is refused at once, 429),
        each within `config_timeout_s`. Whatever goes wrong on the way is one fixed message,
        UNREACHABLE, the details only in this log: the answer must not tell refused from
        filtered from "not a federation", or connect-fed would scan ports for its caller."""
        if self._fetching.locked():
            raise RateLimited(
                f"{self.max_connects} federation connects are running: try again when one ends",
                retry_after_s=5,
            )
        async with self._fetching:
            try:
                async with asyncio.timeout(self.config_timeout_s):
                    return await self._fedimint_config(invite_code, invite.api_urls)
            except GatewayError:
                raise
            except Exception as exc:  # refused, reset, timed out, TLS, not a federation, …
                log.warning(
                    "connect %s: no config from its guardians: %s: %s",
                    invite.federation_id,
                    type(exc).__name__,
                    exc,
                )
                raise ServiceNotReady(UNREACHABLE) from None

    @staticmethod
    async def _fedimint_config(invite_code: str, overrides: dict[int, str]) -> dict:
        """A real Fedimint federation's id, name and network, its config agreed by its
        guardians."""
        cfg = await download_config(invite_code.strip(), timeout=20, overrides=overrides)
        return {
            "federation_id": cfg.federation_id,
            "name": cfg.meta.get("federation_name", ""),
            "network": federation_network(cfg),
            "modules": sorted(m.kind for m in cfg.modules.values()),
        }

    async def _check_network(self, network: str) -> None:
        """gatewayd's rule: a federation on another bitcoin network than our node's is refused
        (its contracts and addresses would be of a chain our node does not see)."""
        node = (await self.lightning())["node"]["network"]
        if not same_network(network, str(node)):
            raise InvalidInput(
                f"the federation is on {network} and the Lightning node on {node}: refused"
            )

    async def leave(self, fed_id: object, *, force: bool) -> dict:
        entry = self.registry.get(str(fed_id)) if isinstance(fed_id, str) else None
        if entry is None or entry.state == "left":
            raise NotFound("no such federation")
        if not force and entry.state in ("recovering", "running", "crashed"):
            await self._nothing_in_flight(entry)
        async with self._leaving:  # one leave at a time: a retried request finds it done
            if (now := self.registry.get(entry.federation_id)) is not None and now.state == "left":
                return {"left": entry.federation_id, "forced": force}
            self.registry.set_state(entry.federation_id, "leaving")
            if self.supervisor is not None:
                await asyncio.to_thread(self.supervisor.remove, entry.program)
            self.registry.set_state(entry.federation_id, "left")
        await self.htlcs.say_interception()  # the last LNv1 federation gone: the interceptor too
        return {"left": entry.federation_id, "forced": force}

    async def _nothing_in_flight(self, entry: FederationEntry) -> None:
        """Refuse (409, naming what) while the actor has any payment in flight: LNv2 sends and
        receives, outgoing and incoming payments, swaps, withdrawals, deposits being claimed,
        e-cash operations. An actor that does not answer cannot say: refused too."""
        try:
            raw = await self.broker.request(
                entry.federation_id, METHOD_ACTOR_INFO, b"{}", timeout=10
            )
        except GatewayError as exc:
            raise ServiceNotReady(
                f"the actor of {entry.federation_id} does not answer ({exc.message}): what it"
                " has in flight is unknown; try again, or leave with force"
            ) from None
        info = json.loads(raw)
        kinds = {k: n for k, n in dict(info.get("in_flight_kinds") or {}).items() if n}
        total = int(info.get("in_flight") or 0)
        if total or kinds:
            named = ", ".join(f"{n} {IN_FLIGHT_KINDS.get(k, k)}" for k, n in sorted(kinds.items()))
            raise PaymentsInFlight(
                f"{total} payment(s) in flight ({named or 'unnamed'}): wait, or leave with force"
            )
