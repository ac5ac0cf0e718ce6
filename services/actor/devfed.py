"""The development federation as the actor's `Federation` (see federation.py): fedlib's wallet
and client, the peg-outs loop (pegouts.py), deposits by txid / raw transaction / address,
e-cash in and out, backups."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from coincurve import PrivateKey
from embit.transaction import Transaction

from devworld.fedlib.client import FederationClient
from devworld.fedlib.wallet import WalletError
from gwcore.bitcoin_address import AddressError, parse_address
from gwcore.errors import (
    DepositPending,
    GatewayError,
    InvalidInput,
    NotFound,
    ServiceNotReady,
)
from gwcore.values import is_hex

from .pegouts import Withdrawals


def wallet_error(exc: WalletError) -> GatewayError:
    """A wallet refusal as the gateway's error: unreachable -> 503, unknown -> 404, else 400."""
    if exc.code in ("federation_unreachable", "unreachable"):
        return ServiceNotReady(f"federation unreachable: {exc.message}")
    if exc.code in ("unknown_operation", "unknown_address", "unknown_backup"):
        return NotFound(f"{exc.code}: {exc.message}")
    return InvalidInput(f"{exc.code}: {exc.message}")


class DevFederation:
    kind = "devfed"
    modules = ["devfed"]  # its own mint, wallet and LNv1-like module, in one

    def __init__(self, client: FederationClient, federation_id: str) -> None:
        self.client = client
        self.federation_id = federation_id
        self.withdrawals = Withdrawals(client, federation_id)

    @classmethod
    def open(cls, home: Path, invite_code: str, federation_id: str) -> DevFederation:
        client = FederationClient.join(home / "wallet.sqlite", invite_code)
        if client.federation_id != federation_id:
            raise SystemExit("the invite code names another federation")
        return cls(client, federation_id)

    @property
    def name(self) -> str:
        return str(self.client.cfg.get("name", ""))

    def balance_msat(self) -> int:
        return self.client.balance()

    async def resume(self) -> list[str]:
        return await asyncio.to_thread(self.client.resume)

    async def run(self, stop: asyncio.Event) -> None:
        await self.withdrawals.run(stop)

    async def close(self) -> None:
        return None

    # -- on chain --------------------------------------------------------------------------------

    async def address(self) -> dict:
        op, address = await asyncio.to_thread(self.client.deposit_address)
        return {"operation_id": op, "address": address}

    async def withdraw(self, body: dict) -> dict:
        return await self.withdrawals.withdraw(body)

    def log_rows(self, since: float, before: float | None, limit: int) -> list[dict]:
        return self.withdrawals.log_rows(since, before, limit)

    def in_flight(self) -> dict[str, int]:
        """Peg-outs not yet sent on chain or refunded, deposit claims and e-cash operations
        with a transaction in flight (the gateway role's own operations are counted by the
        payment flows, by their payments)."""
        ops = dict(
            self.client.db.execute(
                "SELECT kind, COUNT(*) FROM operations WHERE state IN ('created', 'submitted')"
                " AND kind IN ('pegin-claim', 'reissue', 'split', 'spend') GROUP BY kind"
            ).fetchall()
        )
        deposits = ops.pop("pegin-claim", 0)
        return {
            "withdrawal": self.withdrawals.in_flight(),
            "deposit": int(deposits),
            "ecash": int(sum(ops.values())),
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
                raise wallet_error(exc) from None
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
                raise wallet_error(exc) from None
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

    # -- e-cash ----------------------------------------------------------------------------------

    async def receive_ecash(self, notes: str) -> dict:
        """The same notes twice: the operation's id is their hash, so the second answers the
        first's amount and credits nothing."""
        op_id = "ecash-" + hashlib.sha256(notes.encode()).hexdigest()[:32]
        try:
            credited = await asyncio.to_thread(self.client.reissue, notes, op_id)
        except WalletError as exc:
            raise wallet_error(exc) from None
        return {"operation_id": op_id, "amount_msat": credited, "balance_msat": self.balance_msat()}

    async def spend_ecash(self, amount_msat: int, operation_id: str) -> dict:
        try:
            notes = await asyncio.to_thread(self.client.spend, amount_msat, operation_id)
        except WalletError as exc:
            raise wallet_error(exc) from None
        return {
            "operation_id": operation_id,
            "notes": notes,
            "amount_msat": amount_msat,
            "balance_msat": self.balance_msat(),
        }

    # -- backups ---------------------------------------------------------------------------------

    async def backup(self, key: PrivateKey) -> dict:
        return await asyncio.to_thread(self.client.backup, key)

    async def restore(self, key: PrivateKey) -> dict:
        try:
            restored = await asyncio.to_thread(self.client.restore, key)
        except WalletError as exc:
            raise wallet_error(exc) from None
        return {"restored_msat": restored, "balance_msat": self.client.balance()}
