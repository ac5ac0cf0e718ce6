"""The router's own work: the federation registry behind connect/leave, the actors' programs,
and the Lightning node (HTLC dispatch itself is `htlcs.py`).

Connect a federation: check the invite code, fetch the federation's config (its id must be the
invite's), allocate the scid, write the actor's conf.d program and add it to supervisord, wait
until the actor says READY (it does so after its first registration), mark it running.
Connecting twice returns the existing federation. The config fetch goes to hosts an invite
names, so it is bounded (a time limit, a few at once) and its failures are one fixed message.

At start, every connected federation's actor program is written again from the registry and
started (`restore_actors`: conf.d is a cache; the run folder may be new).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import sys
import time
from pathlib import Path

import grpc

from bus import Broker, Call
from devworld.fedlib.api import FederationApi
from fmclient.config import federation_network, same_network
from fmclient.join import download_config
from gwcore.constants import (
    ENV_PREFIX_ACTOR,
    IN_FLIGHT_KINDS,
    METHOD_ACTOR_INFO,
    METHOD_CLAIM_OUTGOING,
    METHOD_CLAIM_PAYMENT_HASH,
    METHOD_CONNECT_FED,
    METHOD_CONNECT_STATUS,
    METHOD_LEAVE_FED,
    METHOD_LIGHTNING,
    METHOD_LIST_FEDS,
    METHOD_PAYMENT_HASH_OWNER,
    METHOD_RECOVERED,
    METHOD_RELEASE_OUTGOING,
    METHOD_SEED,
    PROGRAM_ACTOR_PREFIX,
)
from gwcore.errors import (
    GatewayError,
    InvalidInput,
    NotFound,
    PaymentsInFlight,
    RateLimited,
    ServiceNotReady,
    UnknownMethod,
)
from gwcore.extension import ExtensionEndpoint
from gwcore.invites import FEDIMINT, Invite, parse_invite
from gwcore.seed import GatewaySeed
from gwcore.values import flag, hex32
from gwproto import gateway_lnrpc_pb2 as lnpb
from gwproto import gateway_lnrpc_pb2_grpc as lnpb_grpc

from .htlcs import HtlcDispatch
from .interception import ForwardNeeds
from .registry import SERVED, FederationEntry, FederationRegistry
from .supervisor import SupervisorControl

log = logging.getLogger(__name__)
# a connect whose federation's config could not be had, however (the details are logged only)
UNREACHABLE = "federation unreachable: its guardians did not give its config"


class GatewayCore:
    def __init__(
        self,
        broker: Broker,
        registry: FederationRegistry,
        supervisor: SupervisorControl | None,
        *,
        extension: ExtensionEndpoint,
        actor_env: dict[str, str],
        ready_timeout_s: float = 90.0,
        config_timeout_s: float = 30.0,
        max_connects: int = 4,
        seed: GatewaySeed | None = None,
    ) -> None:
        """`seed`: the gateway's seed (its words are shown to admins only: METHOD_SEED)."""
        self.broker, self.registry, self.supervisor = broker, registry, supervisor
        self.seed = seed
        self.extension, self.actor_env, self.ready_timeout_s = (
            extension,
            actor_env,
            ready_timeout_s,
        )
        self.forwards = ForwardNeeds(registry, broker)  # LNv1 / dev virtual channels served?
        self.htlcs = HtlcDispatch(broker, registry, extension, self.forwards)
        self._unary: grpc.aio.Channel | None = None  # for the extension's unary calls, lazily
        # how far each connect has got (for the dashboard's progress), by federation id
        self.connecting: dict[str, dict] = {}
        # fetching a federation's config from the hosts an invite names: bounded (see _config)
        self.config_timeout_s, self.max_connects = config_timeout_s, max_connects
        self._fetching = asyncio.Semaphore(max_connects)
        self._leaving = asyncio.Lock()
        # actor programs are written and removed by one task at a time: restore_actors'
        # removal of a stale program never meets a connect starting the same program anew
        self._programs = asyncio.Lock()
        broker.on_worker_event = self._worker_event

    @property
    def extension_connected(self) -> bool:
        """HTLCs reach us (htlcs.HtlcDispatch.connected)."""
        return self.htlcs.connected

    def _worker_event(self, identity: str, service: str, event: str) -> None:
        entry = self.registry.get(service)
        if entry is None or entry.state in ("leaving", "left"):
            return
        if event in ("ready", "revived"):
            self.registry.set_answering(service)
        elif event != "ready":
            self.registry.set_state(service, "crashed")

    # --- the gateway service (bus) ----------------------------------------------------------------
    async def handle(self, call: Call) -> bytes:
        try:
            body = json.loads(call.payload or b"{}")
        except ValueError:
            raise InvalidInput("payload must be JSON") from None
        if call.method == METHOD_CONNECT_FED:
            recover = flag(body.get("recover"), "recover")
            entry = await self.connect(body.get("invite_code"), body.get("api_urls"), recover)
            result = entry.json()
        elif call.method == METHOD_RECOVERED:
            fed = hex32(body.get("federation_id"), "federation_id")
            result = {"federation_id": fed, "recovered": self.registry.finish_recovery(fed)}
        elif call.method == METHOD_LIST_FEDS:
            programs = []
            if self.supervisor is not None:
                try:
                    programs = await asyncio.to_thread(self.supervisor.programs)
                except Exception as exc:  # supervisor unreachable: report, do not fail the listing
                    programs = [
                        {"name": "supervisord", "state": "UNREACHABLE", "description": str(exc)}
                    ]
            live = self.broker.live_services()
            result = {
                "federations": [
                    e.json() | {"actor_answers": e.federation_id in live}
                    for e in self.registry.active()
                ],
                "extension_connected": self.extension_connected,
                "programs": programs,
            }
        elif call.method == METHOD_LEAVE_FED:
            result = await self.leave(
                body.get("federation_id"), force=flag(body.get("force"), "force")
            )
        elif call.method == METHOD_LIGHTNING:
            result = await self.lightning()
        elif call.method == METHOD_SEED:
            if self.seed is None:
                raise NotFound("this gateway has no seed")
            result = {"words": self.seed.words}
        elif call.method == METHOD_CONNECT_STATUS:
            result = self.connect_status(body.get("federation_id"))
        elif call.method == METHOD_CLAIM_PAYMENT_HASH:
            result = self.claim_payment_hash(body)
        elif call.method in (METHOD_CLAIM_OUTGOING, METHOD_RELEASE_OUTGOING):
            result = self.outgoing_hash(call.method, body)
        elif call.method == METHOD_PAYMENT_HASH_OWNER:
            entry = self.registry.by_payment_hash(hex32(body.get("payment_hash"), "payment_hash"))
            if entry is None or entry.state in ("left", "failed"):
                raise NotFound("no federation served here has an invoice for this payment hash")
            result = {"federation_id": entry.federation_id}
        else:
            raise UnknownMethod(f"the gateway service has no method {call.method!r}")
        return json.dumps(result).encode()

    def claim_payment_hash(self, body: dict) -> dict:
        """{payment_hash, federation_id} -> {claimed}: HTLCs of that hash go to that actor."""
        ph = hex32(body.get("payment_hash"), "payment_hash")
        fed = hex32(body.get("federation_id"), "federation_id")
        if self.registry.get(fed) is None:
            raise NotFound(f"no federation {fed}")
        if not self.registry.claim_payment_hash(ph, fed):
            raise InvalidInput("another federation has an invoice for this payment hash")
        return {"claimed": ph}

    def outgoing_hash(self, method: str, body: dict) -> dict:
        """{payment_hash, federation_id, contract_id} -> claim: {claimed: bool} (False: another
        contract holds the hash; refuse this one); release: {released: bool}. The rule that a
        payment hash is paid once for the whole gateway (registry.py)."""
        ph = hex32(body.get("payment_hash"), "payment_hash")
        fed = hex32(body.get("federation_id"), "federation_id")
        cid = hex32(body.get("contract_id"), "contract_id")
        if method == METHOD_CLAIM_OUTGOING:
            return {"claimed": self.registry.claim_outgoing(ph, fed, cid)}
        return {"released": self.registry.release_outgoing(ph, fed, cid)}

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
        if invite.kind != FEDIMINT:
            raise InvalidInput("--recover is for Fedimint federations (fed11… invites)")
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
        self.forwards.learn(fed_id, invite.kind, cfg.get("modules") or [])
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
                    if invite.kind == FEDIMINT:
                        return await self._fedimint_config(invite_code, invite.api_urls)
                    return await asyncio.to_thread(
                        FederationApi(
                            invite.api_url, timeout=min(10.0, self.config_timeout_s)
                        ).config
                    )
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

    async def lightning(self) -> dict:
        """The node behind the extension: {node: {pub_key, alias, network, block_height,
        synced}, balances: {onchain_balance_sat, lightning_balance_msat,
        inbound_lightning_liquidity_msat, channels: [...]}}."""
        if self._unary is None:
            self._unary = self.extension.channel()
        stub = lnpb_grpc.GatewayLightningStub(self._unary)
        try:
            info, bal = await asyncio.gather(
                # wait_for_ready: a channel that first tried before the extension listened
                # is in reconnect backoff; without it the call fails at once with that old
                # error instead of waiting the moment the extension needs
                stub.GetNodeInfo(lnpb.GetNodeInfoRequest(), timeout=5, wait_for_ready=True),
                stub.GetBalances(lnpb.GetBalancesRequest(), timeout=5, wait_for_ready=True),
            )
        except grpc.aio.AioRpcError as exc:
            raise ServiceNotReady(
                f"Lightning extension: {exc.code().name}: {exc.details()}"
            ) from None
        return {
            "node": {
                "pub_key": info.pub_key.hex(),
                "alias": info.alias,
                "network": info.network,
                "block_height": info.block_height,
                "synced": info.synced,
            },
            "balances": {
                "onchain_balance_sat": bal.onchain_balance_sat,
                "lightning_balance_msat": bal.lightning_balance_msat,
                "inbound_lightning_liquidity_msat": bal.inbound_lightning_liquidity_msat,
                "channels": [
                    {
                        "peer_id": c.peer_id.hex(),
                        "short_channel_id": c.short_channel_id,
                        "capacity_sat": c.capacity_sat,
                        "local_msat": c.local_msat,
                        "remote_msat": c.remote_msat,
                        "active": c.active,
                    }
                    for c in bal.channels
                ],
            },
        }
