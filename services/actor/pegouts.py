"""The actor's peg-outs (`actor.withdraw`): the quote, the send, and a background loop that
finishes every peg-out still pending: sent on chain, or refused by the chain and refunded
(fedlib.pegout). Peg-outs are shown in the payment log as direction `withdrawal`.

The address is checked on the federation's network before the quote is asked for, so a bad one
is a 400 `invalid_address` and nothing is reserved. Never re-sends a peg-out by itself: the
wallet's operation is the only record, and it is finished, never repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from devworld.fedlib.api import FedApiError
from devworld.fedlib.client import FederationClient
from devworld.fedlib.wallet import WalletError
from gwcore.errors import (
    GatewayError,
    InvalidAddress,
    InvalidInput,
    PegOutFailed,
    ServiceNotReady,
)

log = logging.getLogger(__name__)
STATUS_OF = {"sent": "settled", "failed": "failed", "pending": "pending"}  # payment-log words


class Withdrawals:
    def __init__(self, client: FederationClient, federation_id: str) -> None:
        self.client = client
        self.federation_id = federation_id
        self.wake = asyncio.Event()

    async def withdraw(self, body: dict) -> dict:
        """{amount_sat | "all", address, preview?} -> {operation_id, status (sent | pending),
        txid, fee_sat, amount_sat, address} (pending: accepted by the federation, not on chain
        yet; it goes out by itself); with `preview` only the quote, nothing sent. A refusal by
        the chain is PegOutFailed, its e-cash already back."""
        address, amount = body.get("address"), body.get("amount_sat")
        if amount != "all" and (
            not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0
        ):
            raise InvalidInput('amount_sat must be a positive integer or "all"')
        try:
            address = self.client.pegout_address(address)
        except WalletError as exc:
            raise InvalidAddress(f"invalid address: {exc.message}") from None
        try:
            fee = (
                await asyncio.to_thread(
                    self.client.api.pegout_fees, address, 1000 if amount == "all" else amount
                )
            )["fee_sat"]
        except FedApiError as exc:
            if exc.unreachable:
                raise ServiceNotReady(f"federation unreachable: {exc.message}") from None
            raise InvalidInput(f"{exc.code}: {exc.message}") from None
        if amount == "all":
            amount = self.client.balance() // 1000 - fee
            if amount <= 0:
                raise InvalidInput(f"the balance does not cover the peg-out fee of {fee} sat")
        if body.get("preview"):
            return {
                "preview": True,
                "address": address,
                "amount_sat": amount,
                "fee_sat": fee,
                "total_sat": amount + fee,
                "balance_msat": self.client.balance(),
            }
        try:
            return await asyncio.to_thread(self.client.withdraw, amount, address)
        except WalletError as exc:
            raise self._error(exc, fee) from None
        finally:
            self.wake.set()

    def _error(self, exc: WalletError, fee: int) -> GatewayError:
        if exc.code == "pegout_failed":
            return PegOutFailed(exc.message)
        if exc.code == "federation_unreachable":  # persisted: resumes, must not be re-sent
            return ServiceNotReady(
                f"{exc.message}; the peg-out is saved and resumes by itself: do not send it again",
                retryable=False,
            )
        if exc.code == "invalid_address":
            return InvalidAddress(f"invalid address: {exc.message}")
        return InvalidInput(f"{exc.code}: {exc.message}")

    async def run(self, stop: asyncio.Event, interval_s: float = 2.0) -> None:
        """Finish pending peg-outs (sent, or refunded when the chain refused them) until
        `stop`; woken at once after a withdrawal."""
        while not stop.is_set():
            try:
                for status in await asyncio.to_thread(self.client.settle_pegouts):
                    log.info(
                        "peg-out %s %s%s",
                        status["operation_id"],
                        status["status"],
                        f": {status['error']}; {status['refunded_msat']} msat back"
                        if status["status"] == "failed"
                        else f" in {status['txid']}",
                    )
            except Exception as exc:  # the federation unreachable: tried again later
                log.warning("pending peg-outs not settled yet: %s", exc)
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), interval_s)

    def in_flight(self) -> int:
        """Peg-outs still pending: not yet sent on chain, nor refused and refunded."""
        return sum(
            1
            for op in self.client.operations_of("pegout", 100_000)
            if op["state"] != "failed"
            and self.client.pegout_status(op["id"])["status"] == "pending"
        )

    def log_rows(self, since: float, before: float | None, limit: int) -> list[dict]:
        """Peg-outs as payment-log rows (direction `withdrawal`), newest first."""
        rows = []
        for op in self.client.operations_of("pegout", limit if before is None else 100_000):
            if op["state"] == "created" or not since <= op["created"]:
                continue
            if before is not None and op["created"] >= before:
                continue
            s = self.client.pegout_status(op["id"])
            if op["state"] == "failed" and s["status"] == "failed" and not s["refunded_msat"]:
                continue  # refused by the federation before anything was taken: no payment
            rows.append(
                withdrawal_row(
                    op["id"],
                    self.federation_id,
                    STATUS_OF[s["status"]],
                    (s["amount_sat"] or 0) * 1000,
                    op["created"],
                    op["updated"] if s["status"] != "pending" else None,
                    address=s["address"],
                    txid=s["txid"],
                    onchain_fee_sat=s["fee_sat"],
                    error=s["error"],
                    refunded_msat=s["refunded_msat"],
                )
            )
        return rows[:limit]


def withdrawal_row(
    op_id: str,
    federation_id: str,
    status: str,
    amount_msat: int,
    created: float,
    finished: float | None,
    **onchain: Any,
) -> dict:
    """A peg-out as a payment-log row (direction `withdrawal`), whichever federation made it;
    `onchain`: address, txid, onchain_fee_sat, error, refunded_msat."""
    return {
        "id": op_id,
        "federation_id": federation_id,
        "direction": "withdrawal",
        "status": status,
        "amount_msat": amount_msat,
        "fee_earned_msat": 0,
        "created": created,
        "finished": finished,
        "latency_s": round(finished - created, 3) if finished is not None else None,
        **onchain,
    }
