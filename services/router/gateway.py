"""The router's `gateway` bus service: its methods over the router's two jobs, connecting and
leaving federations (`connections.py`) and HTLC dispatch (`htlcs.py`), the registry's payment
hash claims, the gateway's seed, and the Lightning node's info.
"""

from __future__ import annotations

import asyncio
import json
import logging

import grpc

from bus import Broker, Call
from gwcore.constants import (
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
)
from gwcore.errors import (
    InvalidInput,
    NotFound,
    ServiceNotReady,
    UnknownMethod,
)
from gwcore.extension import ExtensionEndpoint
from gwcore.seed import GatewaySeed
from gwcore.values import flag, hex32
from gwproto import gateway_lnrpc_pb2 as lnpb
from gwproto import gateway_lnrpc_pb2_grpc as lnpb_grpc

from .connections import FederationConnections
from .htlcs import HtlcDispatch
from .interception import ForwardNeeds
from .registry import FederationRegistry
from .supervisor import SupervisorControl

log = logging.getLogger(__name__)


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
        self.broker, self.registry, self.seed, self.extension = broker, registry, seed, extension
        forwards = ForwardNeeds(registry, broker)  # LNv1 / dev virtual channels served?
        self.htlcs = HtlcDispatch(broker, registry, extension, forwards)
        self.federations = FederationConnections(
            broker,
            registry,
            supervisor,
            htlcs=self.htlcs,
            forwards=forwards,
            lightning=self.lightning,
            actor_env=actor_env,
            ready_timeout_s=ready_timeout_s,
            config_timeout_s=config_timeout_s,
            max_connects=max_connects,
        )
        self._unary: grpc.aio.Channel | None = None  # for the extension's unary calls, lazily
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
            entry = await self.federations.connect(
                body.get("invite_code"), body.get("api_urls"), recover
            )
            result = entry.json()
        elif call.method == METHOD_RECOVERED:
            fed = hex32(body.get("federation_id"), "federation_id")
            result = {"federation_id": fed, "recovered": self.registry.finish_recovery(fed)}
        elif call.method == METHOD_LIST_FEDS:
            programs = []
            if (supervisor := self.federations.supervisor) is not None:
                try:
                    programs = await asyncio.to_thread(supervisor.programs)
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
            result = await self.federations.leave(
                body.get("federation_id"), force=flag(body.get("force"), "force")
            )
        elif call.method == METHOD_LIGHTNING:
            result = await self.lightning()
        elif call.method == METHOD_SEED:
            if self.seed is None:
                raise NotFound("this gateway has no seed")
            result = {"words": self.seed.words}
        elif call.method == METHOD_CONNECT_STATUS:
            result = self.federations.connect_status(body.get("federation_id"))
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
