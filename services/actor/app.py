"""Builds and runs one federation actor: its federation client (gateway role), registration
loop, bus worker (service = the federation id) and payment flows.

The actor says READY on the bus only after its first successful registration with the
federation, so the router marks it running only then. Registration is renewed every third of
its TTL, and at once when fees or route hints change.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import signal

import grpc
import zmq.asyncio
from coincurve import PrivateKey
from embit.transaction import Transaction

from bus import BusClient, Call, HeartbeatPolicy, ReplyStore, Worker, ipc_endpoint
from fedlib import crypto
from fedlib.client import FederationClient
from fedlib.wallet import WalletError
from gwcore import summary
from gwcore.bitcoin_address import AddressError, parse_address
from gwcore.constants import (
    GATEWAY_SERVICE,
    METHOD_ACTOR_ADDRESS,
    METHOD_ACTOR_BACKUP,
    METHOD_ACTOR_DEPOSIT,
    METHOD_ACTOR_HTLC,
    METHOD_ACTOR_INFO,
    METHOD_ACTOR_METRICS,
    METHOD_ACTOR_PAY,
    METHOD_ACTOR_PAYMENT_LOG,
    METHOD_ACTOR_PAYMENT_SUMMARY,
    METHOD_ACTOR_RECOVERY_KEY,
    METHOD_ACTOR_RESTORE,
    METHOD_ACTOR_SET_FEES,
    METHOD_ACTOR_WITHDRAW,
    METHOD_LIST_FEDS,
    ROUTER_ENDPOINT_NAME,
)
from gwcore.errors import (
    DepositPending,
    GatewayError,
    InvalidInput,
    NotFound,
    ServiceNotReady,
    UnknownMethod,
)
from gwcore.logging import log_context
from gwcore.values import fees as checked_fees
from gwcore.values import is_hex
from gwproto import gateway_lnrpc_pb2 as lnpb
from gwproto import gateway_lnrpc_pb2_grpc as lnpb_grpc

from .flows import IN_FINAL, OUT_FINAL, FlowRunner
from .pegouts import Withdrawals
from .settings import ActorSettings
from .stats import PaymentStats, classify
from .store import ActorStore

log = logging.getLogger(__name__)


def _wallet_error(exc: WalletError) -> GatewayError:
    """A wallet refusal as the gateway's error: unreachable -> 503, unknown -> 404, else 400."""
    if exc.code in ("federation_unreachable", "unreachable"):
        return ServiceNotReady(f"federation unreachable: {exc.message}")
    if exc.code in ("unknown_operation", "unknown_address", "unknown_backup"):
        return NotFound(f"{exc.code}: {exc.message}")
    return InvalidInput(f"{exc.code}: {exc.message}")


class Actor:
    def __init__(self, settings: ActorSettings, ctx: zmq.asyncio.Context) -> None:
        self.settings = settings
        home = settings.data_dir / "actors" / settings.federation_id[:16]
        self.store = ActorStore(home / "actor.sqlite")
        self.stats = PaymentStats(self.store, settings.federation_id)
        secret = self.store.meta("gateway_key")
        if secret is None:
            secret = PrivateKey().secret.hex()
            self.store.set_meta("gateway_key", secret)
        self.key = PrivateKey(bytes.fromhex(secret))
        # e-cash backups are encrypted and signed with a key of their own, derived from the
        # gateway key: showing it (the recovery key) never gives away the key that claims
        # contracts and signs registrations
        self.backup_key = PrivateKey(
            hashlib.sha256(b"fmgw-ecash-backup:" + self.key.secret).digest()
        )
        fees = self.store.meta("fees")
        self.fees = (
            json.loads(fees)
            if fees
            else {"base_msat": settings.fee_base_msat, "proportional_millionths": settings.fee_ppm}
        )
        self.client = FederationClient.join(home / "wallet.sqlite", settings.invite_code)
        if self.client.federation_id != settings.federation_id:
            raise SystemExit("the invite code names another federation")
        self.channel = grpc.aio.insecure_channel(settings.lnrpc_address)
        self.lnrpc = lnpb_grpc.GatewayLightningStub(self.channel)
        self.bus = BusClient(
            ipc_endpoint(settings.run_dir, ROUTER_ENDPOINT_NAME),
            identity=f"actor-client-{settings.federation_id[:16]}",
        )
        self.flows = FlowRunner(
            self.client,
            self.store,
            self.key,
            self.lnrpc,
            self.fees,
            swap=self.swap,
            node_pubkey=lambda: (self.registration or {}).get("node_pubkey"),
        )
        self.withdrawals = Withdrawals(self.client, settings.federation_id)
        self.worker = Worker(
            endpoint=ipc_endpoint(settings.run_dir, ROUTER_ENDPOINT_NAME),
            service=settings.federation_id,
            handler=self.handle,
            ctx=ctx,
            identity=f"actor-{settings.federation_id[:16]}",
            heartbeat=HeartbeatPolicy(settings.heartbeat_interval_s),
            store=ReplyStore(home / "bus-replies.sqlite"),
        )
        self.registration: dict | None = None
        self._reregister = asyncio.Event()

    # --- registration ---------------------------------------------------------------------------
    async def register(self) -> dict:
        info = await self.lnrpc.GetNodeInfo(lnpb.GetNodeInfoRequest(), timeout=10)
        hints = (
            await self.lnrpc.GetRouteHints(lnpb.GetRouteHintsRequest(num_route_hints=3), timeout=10)
        ).route_hints
        route_hints = [
            [
                {
                    "pubkey": h.src_node_id.hex(),
                    "scid": h.short_channel_id,
                    "base_msat": h.base_msat,
                    "ppm": h.proportional_millionths,
                    "cltv_delta": h.cltv_expiry_delta,
                }
                for h in hint.hops
            ]
            for hint in hints
        ]
        reg = await asyncio.to_thread(
            self.client.register_gateway,
            self.key,
            scid=self.settings.scid,
            node_pubkey=info.pub_key.hex(),
            api_url=self.settings.public_api_url,
            fees=dict(self.fees),
            route_hints=route_hints,
            ttl_s=self.settings.registration_ttl_s,
        )
        self.registration = {**reg, "node_pubkey": info.pub_key.hex(), "route_hints": route_hints}
        log.info(
            "registered with the federation", extra={"fields": {"valid_until": reg["valid_until"]}}
        )
        return reg

    async def registration_loop(self) -> None:
        delay = 0.2
        while True:
            try:
                await self.register()
                delay = 0.2
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._reregister.wait(), self.settings.registration_ttl_s / 3
                    )
                self._reregister.clear()
            except Exception as exc:
                log.warning("registration failed: %s; retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    # --- bus --------------------------------------------------------------------------------------
    async def handle(self, call: Call) -> bytes:
        try:
            body = json.loads(call.payload or b"{}")
        except ValueError:
            raise InvalidInput("payload must be JSON") from None
        with log_context(federation_id=self.settings.federation_id):
            if call.method == METHOD_ACTOR_INFO:
                result = await self.info()
            elif call.method == METHOD_ACTOR_HTLC:
                result = await self.flows.handle_htlc(body)
            elif call.method == METHOD_ACTOR_PAY:
                cid = body.get("contract_id")
                if not isinstance(cid, str) or len(cid) != 64:
                    raise InvalidInput("contract_id must be 32 bytes of hex")
                with log_context(payment_hash=None):
                    result = await self.flows.pay_invoice(cid)
            elif call.method == METHOD_ACTOR_SET_FEES:
                result = self.set_fees(body)
            elif call.method == METHOD_ACTOR_ADDRESS:
                op, address = await asyncio.to_thread(self.client.deposit_address)
                result = {"operation_id": op, "address": address}
            elif call.method == METHOD_ACTOR_DEPOSIT:
                result = await self.deposit(body)
            elif call.method == METHOD_ACTOR_WITHDRAW:
                result = await self.withdrawals.withdraw(body)
            elif call.method == METHOD_ACTOR_PAYMENT_LOG:
                result = self.payment_log(body)
            elif call.method == METHOD_ACTOR_PAYMENT_SUMMARY:
                result = await asyncio.to_thread(self.payment_summary, body)
            elif call.method == METHOD_ACTOR_METRICS:
                result = {
                    **await asyncio.to_thread(self.stats.snapshot),  # off the event loop
                    "federation_id": self.settings.federation_id,
                    "balance_msat": self.client.balance(),
                }
            elif call.method == METHOD_ACTOR_BACKUP:
                result = await asyncio.to_thread(self.client.backup, self.backup_key)
            elif call.method == METHOD_ACTOR_RESTORE:
                result = await self.restore(body)
            elif call.method == METHOD_ACTOR_RECOVERY_KEY:
                # the secret that reads this federation's e-cash backups: admin routes only
                result = {
                    "federation_id": self.settings.federation_id,
                    "recovery_key": self.backup_key.secret.hex(),
                }
            else:
                raise UnknownMethod(f"actors have no method {call.method!r}")
        return json.dumps(result).encode()

    async def swap(self, scid: int, payload: dict, message_id: str) -> dict | None:
        """Ask the actor of the federation with `scid` to buy the preimage (a swap between two
        federations we serve); None if no running federation has that scid."""
        feds = json.loads(
            await self.bus.request(GATEWAY_SERVICE, METHOD_LIST_FEDS, b"{}", timeout=10)
        )["federations"]
        target = next((f for f in feds if f["scid"] == scid and f["state"] == "running"), None)
        if target is None:
            return None
        if (
            target["federation_id"] == self.settings.federation_id
        ):  # payer and payee in our federation
            return await self.flows.handle_htlc(payload)
        raw = await self.bus.request(
            target["federation_id"],
            METHOD_ACTOR_HTLC,
            json.dumps(payload).encode(),
            timeout=60,
            retries=3,
            idempotent=False,
            message_id=message_id,
        )
        return json.loads(raw)

    async def info(self) -> dict:
        return {
            "in_flight": len(self.store.unfinished("outgoing", OUT_FINAL))
            + len(self.store.unfinished("incoming", IN_FINAL)),
            "federation_id": self.settings.federation_id,
            "name": self.client.cfg["name"],
            "scid": self.settings.scid,
            "balance_msat": self.client.balance(),
            "fees": self.fees,
            "gateway_key": crypto.xonly(self.key),
            "registration": self.registration,
        }

    async def deposit(self, body: dict) -> dict:
        """Claim a confirmed deposit to one of our peg-in addresses, named by
        `txid`, by the raw `transaction` (the 2023 form; its `txout_proof` is not needed: the
        federation checks confirmations on its own chain), by the address's `operation_id`, or
        else the newest address's. Asking twice for a transaction credits it once."""
        txid, op = body.get("txid"), body.get("operation_id")
        if body.get("transaction") is not None:
            txid, op = self._match_raw_transaction(body["transaction"])
        elif txid is not None:
            if not isinstance(txid, str) or len(txid) != 64 or not is_hex(txid):
                raise InvalidInput("txid must be 32 bytes of hex")
            txid = txid.lower()
            try:
                op = await asyncio.to_thread(self.client.find_deposit, txid)
            except WalletError as exc:
                raise _wallet_error(exc) from None
            if op is None:
                raise NotFound(
                    f"no confirmed transaction {txid} pays a peg-in address of this gateway"
                )
        elif op is None:
            ops = [o for o in self.client.operations_of("pegin", 100) if o["state"] == "waiting"]
            if not ops:
                raise InvalidInput("no peg-in address: ask for one first")
            op = ops[0]["id"]
        timeout = body.get("timeout_s", 10)
        if (
            not isinstance(timeout, (int, float))
            or isinstance(timeout, bool)
            or not 0 <= timeout <= 50
        ):
            raise InvalidInput("timeout_s must be 0..50")
        try:
            credited = await asyncio.to_thread(self.client.await_deposit, op, float(timeout), txid)
            already = False
        except WalletError as exc:
            if exc.code == "already_claimed" and txid is not None:
                credited, already = self.client.credited_by(txid), True
            elif exc.code == "pending":
                raise DepositPending(exc.message) from None
            else:
                raise _wallet_error(exc) from None
        return {
            "operation_id": op,
            "txid": txid,
            "credited_msat": credited,
            "already_credited": already,
            "balance_msat": self.client.balance(),
        }

    def _match_raw_transaction(self, raw: object) -> tuple[str, str]:
        """(txid, peg-in operation) of a raw transaction paying one of our addresses."""
        try:
            data = bytes.fromhex(raw)  # type: ignore[arg-type]
            tx = Transaction.parse(data)
            if tx.serialize() != data:  # trailing or missing bytes
                raise ValueError("not canonical")
        except Exception:
            raise InvalidInput("transaction must be a raw Bitcoin transaction in hex") from None
        scripts = {out.script_pubkey.data: i for i, out in enumerate(tx.vout)}
        for address, op in self.client.pegin_addresses().items():
            try:
                script = parse_address(address, self.client.cfg.get("network", "regtest")).script
            except AddressError:
                continue
            if script in scripts:
                return tx.txid().hex(), op
        raise InvalidInput("the transaction pays no peg-in address of this gateway")

    async def restore(self, body: dict) -> dict:
        """Take back the still-unspent notes of a backup: ours, or the one made with
        `recovery_key` (another gateway's key for this federation, e.g. a lost data directory's)."""
        key = self.backup_key
        if body.get("recovery_key") is not None:
            raw = body["recovery_key"]
            if not isinstance(raw, str) or len(raw) != 64 or not is_hex(raw):
                raise InvalidInput("recovery_key must be 32 bytes of hex")
            try:
                key = PrivateKey(bytes.fromhex(raw))
            except ValueError:
                raise InvalidInput("recovery_key is not a valid secp256k1 secret") from None
        try:
            restored = await asyncio.to_thread(self.client.restore, key)
        except WalletError as exc:
            raise _wallet_error(exc) from None
        return {"restored_msat": restored, "balance_msat": self.client.balance()}

    def payment_log(self, body: dict) -> dict:
        """Payments of this federation, newest first: {payments: [see stats.classify]}."""
        limit, since, before = body.get("limit", 100), body.get("since", 0), body.get("before")
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise InvalidInput("limit must be 1..1000")
        for v, name in ((since, "since"), (before, "before")):
            if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0):
                raise InvalidInput(f"{name} must be a Unix time")
        since, before = float(since or 0), float(before) if before is not None else None
        rows = [
            classify(r, self.settings.federation_id) for r in self.store.log(since, before, limit)
        ]
        rows += self.withdrawals.log_rows(since, before, limit)
        rows.sort(key=lambda r: -r["created"])
        return {"payments": rows[:limit]}

    def payment_summary(self, body: dict) -> dict:
        """{start, end, bucket_s} -> this federation's partial summary (gwcore.summary)."""
        start, end, bucket = body.get("start"), body.get("end"), body.get("bucket_s")
        for v, name in ((start, "start"), (end, "end"), (bucket, "bucket_s")):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                raise InvalidInput(f"{name} must be a non-negative number")
        if bucket < 60 or summary.buckets(start, end, int(bucket)) > 500:
            raise InvalidInput("bucket_s: at least 60, at most 500 buckets")
        rows = self.store.log(float(start), float(end), limit=10_000_000)
        payments = [classify(r, self.settings.federation_id) for r in rows]
        payments += self.withdrawals.log_rows(float(start), float(end), 10_000_000)
        return summary.partial(payments, float(start), float(end), int(bucket))

    def set_fees(self, body: dict) -> dict:
        self.fees.update(checked_fees(body.get("base_msat"), body.get("proportional_millionths")))
        self.store.set_meta("fees", json.dumps(self.fees))
        self._reregister.set()  # effective at once, and re-registered
        return {"fees": self.fees}

    # --- life -------------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        delay = 0.2
        while not stop.is_set():  # READY only once registered
            try:
                await self.register()
                break
            except Exception as exc:
                log.warning("first registration failed: %s; retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        # the wallet first: transactions a crash left submitted are taken in (their notes are
        # ours), reservations of ones never submitted released; then the payment flows
        try:
            resumed = await asyncio.to_thread(self.client.resume)
            if resumed:
                log.info("wallet operations resumed: %s", ", ".join(resumed))
        except Exception as exc:  # the federation unreachable: they resume on the next start
            log.warning("wallet resume incomplete: %s", exc)
        tasks = [
            asyncio.create_task(self.registration_loop()),
            asyncio.create_task(self.flows.resume()),
            asyncio.create_task(self.withdrawals.run(stop)),
        ]
        await self.worker.start()
        try:
            await stop.wait()
        finally:
            await self.worker.stop()
            for t in tasks:
                t.cancel()
            await self.channel.close()
