"""Builds and runs one federation actor: its Fedimint federation (e-cash, on-chain), one
Lightning role per Lightning module (roles.py), its bus worker (service = the federation id).

The actor says READY on the bus only once every role may be (LNv1: its first registration with
the federation), so the router marks it running only then.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from pathlib import Path

import zmq.asyncio
from coincurve import PrivateKey

from bus import BusClient, Call, HeartbeatPolicy, ReplyStore, Worker, ipc_endpoint
from fmclient import derive
from fmclient.derive import FederationSecrets
from gwcore import summary
from gwcore.constants import (
    GATEWAY_SERVICE,
    METHOD_ACTOR_ADDRESS,
    METHOD_ACTOR_DEPOSIT,
    METHOD_ACTOR_INFO,
    METHOD_ACTOR_METRICS,
    METHOD_ACTOR_PAYMENT_LOG,
    METHOD_ACTOR_PAYMENT_SUMMARY,
    METHOD_ACTOR_RECEIVE_ECASH,
    METHOD_ACTOR_SET_FEES,
    METHOD_ACTOR_SPEND_ECASH,
    METHOD_ACTOR_WITHDRAW,
    METHOD_RECOVERED,
    ROUTER_ENDPOINT_NAME,
)
from gwcore.errors import InvalidInput, NotFound, ServiceNotReady, UnknownMethod
from gwcore.extension import ExtensionEndpoint
from gwcore.logging import log_context
from gwcore.values import fees as checked_fees
from gwproto import gateway_lnrpc_pb2_grpc as lnpb_grpc

from .federation import Federation
from .fedimint import FedimintFederation
from .lnv1_role import Lnv1Role
from .lnv2_role import Lnv2Role
from .outgoing import RouterPaymentHashClaims
from .recovery import FederationRecovery
from .roles import LIGHTNING_METHODS, LightningRole, htlc_route
from .settings import ActorSettings
from .stats import PaymentStats
from .store import ActorStore
from .swaps import Swaps

log = logging.getLogger(__name__)


def actor_home(settings: ActorSettings) -> Path:
    return settings.data_dir / "actors" / settings.federation_id[:16]


class Actor:
    """One federation's actor: `federation` (federation.py) and its Lightning roles."""

    def __init__(
        self,
        settings: ActorSettings,
        ctx: zmq.asyncio.Context,
        federation: Federation,
        secrets: FederationSecrets | None = None,
        store: ActorStore | None = None,
        recovery: FederationRecovery | None = None,
    ) -> None:
        """`secrets`: the federation's secrets from the gateway's seed (keys.py); None: the
        random gateway key kept in the actor's database (federations joined before the seed).
        `recovery`: the federation's recovery from the seed (recovery.py), run before anything
        is served while it is pending."""
        self.settings = settings
        self.federation = federation
        self.recovery = recovery
        home = actor_home(settings)
        self.store = store or ActorStore(home / "actor.sqlite")
        self.stats = PaymentStats(settings.federation_id, self._payments_for_stats)
        # each Lightning module's gateway key, derived as gatewayd's client modules derive
        # theirs (LNv2: the module secret; LNv1: its redeem key, module/0)
        self.role_keys = self._derived_keys(secrets)
        derived = self.role_keys.get("lnv2") or self.role_keys.get("ln")
        secret = self.store.meta("gateway_key")
        if derived is None and secret is None:
            secret = PrivateKey().secret.hex()
            self.store.set_meta("gateway_key", secret)
        self.key = derived or PrivateKey(bytes.fromhex(secret or ""))
        fees = self.store.meta("fees")
        self.fees = (
            json.loads(fees)
            if fees
            else {"base_msat": settings.fee_base_msat, "proportional_millionths": settings.fee_ppm}
        )
        self.channel = ExtensionEndpoint.parse(
            settings.lnrpc_address, settings.lnrpc_tls_dir, run_dir=settings.run_dir
        ).channel()
        self.lnrpc = lnpb_grpc.GatewayLightningStub(self.channel)
        self.bus = BusClient(
            ipc_endpoint(settings.run_dir, ROUTER_ENDPOINT_NAME),
            identity=f"actor-client-{settings.federation_id[:16]}",
        )
        self.swaps = Swaps(
            self.bus, settings.federation_id, settings.scid, self.lnrpc, self._local_htlc
        )
        self.roles = self._lightning_roles()
        if recovery is not None:  # contracts in flight, sought once the notes are back
            recovery.finders = [f for r in self.roles if (f := r.contract_finder()) is not None]
        # each bus method (an HTLC: by how it reached us) to the one role that serves it
        self.routes = {m: h for role in self.roles for m, h in role.bus_methods().items()}
        self.worker = Worker(
            endpoint=ipc_endpoint(settings.run_dir, ROUTER_ENDPOINT_NAME),
            service=settings.federation_id,
            handler=self.handle,
            ctx=ctx,
            identity=f"actor-{settings.federation_id[:16]}",
            heartbeat=HeartbeatPolicy(settings.heartbeat_interval_s),
            store=ReplyStore(home / "bus-replies.sqlite"),
        )

    def _derived_keys(self, secrets: FederationSecrets | None) -> dict[str, PrivateKey]:
        if secrets is None or not isinstance(self.federation, FedimintFederation):
            return {}
        config = self.federation.config
        keys = {}
        if "lnv2" in self.federation.modules:
            module = secrets.module(config.module_id("lnv2"))
            keys["lnv2"] = PrivateKey(derive.lnv2_gateway_secret(module))
        if "ln" in self.federation.modules:
            keys["ln"] = PrivateKey(
                derive.lnv1_redeem_secret(secrets.module(config.module_id("ln")))
            )
        return keys

    def _lightning_roles(self) -> list[LightningRole]:
        """One role per Lightning module of the federation (roles.py)."""
        # one contract per payment hash, for the whole gateway (outgoing.py)
        hashes = RouterPaymentHashClaims(self.bus, self.settings.federation_id)
        federation = self.federation
        assert isinstance(federation, FedimintFederation)
        roles: list[LightningRole] = []
        if "lnv2" in federation.modules:
            roles.append(
                Lnv2Role(
                    federation.mint,
                    self.role_keys.get("lnv2", self.key),
                    self.lnrpc,
                    self.fees,
                    self.settings.federation_id,
                    self.bus,
                    hashes,
                    self.settings.public_api_url,
                    self.swaps,
                )
            )
        if "ln" in federation.modules:
            roles.append(
                Lnv1Role(
                    federation.mint,
                    self.role_keys.get("ln", self.key),
                    self.lnrpc,
                    self.fees,
                    self.settings.federation_id,
                    self.bus,
                    hashes,
                    self.settings.scid,
                    self.settings.public_api_url,
                    self.settings.registration_ttl_s,
                    self.swaps,
                )
            )
        return roles

    def _payments_for_stats(self, watermark: float) -> tuple[list[dict], list[dict]]:
        """The metrics' payments (stats.Sources): each role's, and the federation's own
        (withdrawals: few, read whole), as the payment log shows them."""
        final: list[dict] = []
        under_way: list[dict] = []
        for role in self.roles:
            f, u = role.for_stats(watermark)
            final += f
            under_way += u
        for p in self.federation.log_rows(0.0, None, 1_000_000):
            if p["status"] == "pending":
                under_way.append(p)
            elif p["finished"] is not None and p["finished"] > watermark:
                final.append(p)
        return final, under_way

    # --- bus --------------------------------------------------------------------------------------
    async def handle(self, call: Call) -> bytes:
        try:
            body = json.loads(call.payload or b"{}")
        except ValueError:
            raise InvalidInput("payload must be JSON") from None
        with log_context(federation_id=self.settings.federation_id):
            recovering = self.recovery is not None and self.recovery.pending
            if recovering and call.method != METHOD_ACTOR_INFO:
                progress = self.recovery.info()["recovery"]  # type: ignore[union-attr]
                raise ServiceNotReady(
                    f"recovering the federation from the seed ({progress['items_done']} of"
                    f" {progress['items_total']} items): {call.method} waits for its end"
                )
            route = htlc_route(call.method, body)
            if route in self.routes:
                with log_context(payment_hash=body.get("payment_hash")):
                    result = await self.routes[route](body)
            elif call.method == METHOD_ACTOR_INFO:
                result = await self.info()
            elif call.method in LIGHTNING_METHODS:
                raise NotFound(
                    f"{call.method}: not served for this federation (its Lightning modules:"
                    f" {', '.join(r.kind for r in self.roles) or 'none'})"
                )
            elif call.method == METHOD_ACTOR_SET_FEES:
                result = self.set_fees(body)
            elif call.method == METHOD_ACTOR_ADDRESS:
                result = await self.federation.address()
            elif call.method == METHOD_ACTOR_DEPOSIT:
                result = await self.federation.deposit(body)
            elif call.method == METHOD_ACTOR_WITHDRAW:
                result = await self.federation.withdraw(body)
            elif call.method == METHOD_ACTOR_RECEIVE_ECASH:
                result = await self.receive_ecash(body)
            elif call.method == METHOD_ACTOR_SPEND_ECASH:
                result = await self.spend_ecash(body)
            elif call.method == METHOD_ACTOR_PAYMENT_LOG:
                result = self.payment_log(body)
            elif call.method == METHOD_ACTOR_PAYMENT_SUMMARY:
                result = await asyncio.to_thread(self.payment_summary, body)
            elif call.method == METHOD_ACTOR_METRICS:
                result = {
                    **await asyncio.to_thread(self.stats.snapshot),  # off the event loop
                    "federation_id": self.settings.federation_id,
                    "balance_msat": self.federation.balance_msat(),
                }
            else:
                raise UnknownMethod(f"actors have no method {call.method!r}")
        return json.dumps(result).encode()

    async def _local_htlc(self, route: str, htlc: dict) -> dict:
        """A swap whose payee is of this federation: the role that takes such HTLCs decides."""
        if route not in self.routes:
            return {"action": "cancel", "reason": "this federation does not receive that way"}
        return dict(await self.routes[route](htlc))

    def in_flight(self) -> dict[str, int]:
        """Everything in flight, by kind (gwcore.constants.IN_FLIGHT_KINDS): the federation's
        own (withdrawals, deposits being claimed, e-cash operations) and the Lightning role's
        (outgoing, incoming, swaps; LNv2 sends and receives)."""
        kinds = dict(self.federation.in_flight())
        if self.recovery is not None and self.recovery.pending:
            kinds["recovery"] = 1
        for role in self.roles:
            for kind, n in role.in_flight().items():
                kinds[kind] = kinds.get(kind, 0) + n
        return kinds

    async def info(self) -> dict:
        kinds = self.in_flight()
        info = {
            "in_flight": sum(kinds.values()),  # leave is refused while it is not 0
            "in_flight_kinds": kinds,
            "federation_id": self.settings.federation_id,
            "kind": self.federation.kind,
            "modules": self.federation.modules,
            "name": self.federation.name,
            "scid": self.settings.scid,
            "balance_msat": self.federation.balance_msat(),
            "fees": self.fees,
            "gateway_key": self.key.public_key.format()[1:].hex(),  # x-only
            "registration": None,
            "lnv2_gateway_url": None,
        }
        for role in self.roles:
            info.update(role.info())
        info.update(self.recovery.info() if self.recovery is not None else {"recovering": False})
        return info

    async def receive_ecash(self, body: dict) -> dict:
        """{notes} -> {operation_id, amount_msat (credited), balance_msat}; the same notes
        again credit nothing and answer the same."""
        notes = body.get("notes")
        if not isinstance(notes, str) or not notes or len(notes) > 1_000_000:
            raise InvalidInput("notes must be an e-cash string")
        return await self.federation.receive_ecash(notes.strip())

    async def spend_ecash(self, body: dict) -> dict:
        """{amount_msat, operation_id?} -> {operation_id, notes, amount_msat, balance_msat}:
        our notes for someone else, out of band; by operation id, once."""
        amount, op_id = body.get("amount_msat"), body.get("operation_id")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise InvalidInput("amount_msat must be a positive integer")
        if op_id is None:
            op_id = os.urandom(16).hex()
        if not isinstance(op_id, str) or not 1 <= len(op_id) <= 64:
            raise InvalidInput("operation_id must be a string of 1..64 characters")
        return await self.federation.spend_ecash(amount, op_id)

    def payment_log(self, body: dict) -> dict:
        """Payments of this federation, newest first: {payments: [gwcore.payments rows]}."""
        limit, since, before = body.get("limit", 100), body.get("since", 0), body.get("before")
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise InvalidInput("limit must be 1..1000")
        for v, name in ((since, "since"), (before, "before")):
            if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0):
                raise InvalidInput(f"{name} must be a Unix time")
        since, before = float(since or 0), float(before) if before is not None else None
        rows = self._payments(since, before, limit)
        rows.sort(key=lambda r: -r["created"])
        return {"payments": rows[:limit]}

    def _payments(self, since: float, before: float | None, limit: int) -> list[dict]:
        """The payments created in [since, before) (at most `limit` of each kind): the
        federation's own (withdrawals) and each Lightning role's."""
        rows = self.federation.log_rows(since, before, limit)
        for role in self.roles:
            rows += role.log_rows(since, before, limit)
        return rows

    def payment_summary(self, body: dict) -> dict:
        """{start, end, bucket_s} -> this federation's partial summary (gwcore.summary)."""
        start, end, bucket = body.get("start"), body.get("end"), body.get("bucket_s")
        for v, name in ((start, "start"), (end, "end"), (bucket, "bucket_s")):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                raise InvalidInput(f"{name} must be a non-negative number")
        if bucket < 60 or summary.buckets(start, end, int(bucket)) > 500:
            raise InvalidInput("bucket_s: at least 60, at most 500 buckets")
        payments = self._payments(float(start), float(end), 10_000_000)
        return summary.partial(payments, float(start), float(end), int(bucket))

    def set_fees(self, body: dict) -> dict:
        self.fees.update(checked_fees(body.get("base_msat"), body.get("proportional_millionths")))
        self.store.set_meta("fees", json.dumps(self.fees))
        for role in self.roles:
            role.fees_changed()  # effective at once, and re-registered
        return {"fees": self.fees}

    async def _report_recovered(self, stop: asyncio.Event) -> None:
        """Tell the router the recovery is done (at every start after it: a lost answer is
        told again), until it has heard."""
        body = json.dumps({"federation_id": self.settings.federation_id}).encode()
        while not stop.is_set():
            try:
                await self.bus.request(GATEWAY_SERVICE, METHOD_RECOVERED, body, timeout=15)
                return
            except Exception as exc:  # the router away: told again
                log.warning("the router has not heard that the recovery is done: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 5)

    # --- life -------------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        tasks: list[asyncio.Task] = []
        serving = False
        try:
            if self.recovery is not None and self.recovery.pending:
                # a recovery from the seed first: actor.info answers its progress, the rest
                # waits (the router keeps the federation `recovering` until it is told)
                await self.worker.start()
                serving = True
                if not await self.recovery.run(stop):
                    return
            for role in self.roles:  # READY only once every role may be (a first registration)
                await role.start(stop)
            # the wallet first: transactions a crash left submitted are taken in (their notes
            # are ours), reservations of ones never submitted released; then the payment flows
            try:
                resumed = await asyncio.wait_for(self.federation.resume(), 30)
                if resumed:
                    log.info("wallet operations resumed: %s", ", ".join(resumed))
            except Exception as exc:  # the federation unreachable: they resume on the next start
                log.warning("wallet resume incomplete: %s", exc)
            tasks = [asyncio.create_task(self.federation.run(stop))]
            tasks += [asyncio.create_task(role.run(stop)) for role in self.roles]
            if self.recovery is not None:  # done: the router may call the federation running
                tasks.append(asyncio.create_task(self._report_recovered(stop)))
            if not serving:
                await self.worker.start()
            await stop.wait()
        finally:
            await self.worker.stop()
            for t in tasks:
                t.cancel()
            await self.channel.close()
            await self.federation.close()
