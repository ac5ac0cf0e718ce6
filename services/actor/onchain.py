"""What the actor needs of a federation's on-chain module, whatever its version: one
implementation per wallet module (`onchain_v2.WalletV2Onchain` for walletv2,
`onchain_v1.WalletV1Onchain` for wallet v1, both on `WalletOnchain` below),
picked from the federation's config by `fedimint.ONCHAIN`. Answers are the API's bodies; errors
are GatewayErrors; every money-moving call is idempotent by the id it is given or derives.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol

from fmclient.wallet import MintWallet
from gwcore.errors import DepositPending, InvalidAddress, InvalidInput, NotFound
from gwcore.payments import payment_row
from gwcore.values import amount_text, is_hex

from .ecash_errors import gateway_errors

STATUS_OF = {"done": "settled", "rejected": "failed", "created": "pending", "submitted": "pending"}


class Onchain(Protocol):
    kind: str
    # the e-cash operation kinds it makes (counted in flight by its own rows, not as e-cash)
    operation_kinds: tuple[str, ...]

    async def address(self) -> dict:
        """A fresh peg-in address: {address, operation_id}."""
        ...

    async def deposit(self, body: dict) -> dict:
        """{txid?, operation_id?} -> the deposit once claimed: {operation_id, txid,
        credited_msat, already_credited, balance_msat}; 409 deposit_pending before."""
        ...

    async def withdraw(self, body: dict) -> dict:
        """{amount_sat | "all", address, preview?, operation_id?} -> the quote, or the peg-out."""
        ...

    async def run_once(self) -> None:
        """One round of background work: find and claim deposits, finish peg-outs."""
        ...

    def in_flight(self) -> dict[str, int]:
        """{"withdrawal": n, "deposit": n}: withdrawals not final, deposits seen not claimed."""
        ...

    def log_rows(self, since: float, before: float | None, limit: int) -> list[dict]:
        """Withdrawals as payment-log rows, newest first."""
        ...

    def closing(self) -> None:
        """The actor stops: work in worker threads (an address search) ends now."""
        ...


class NoOnchain:
    """A federation without a wallet module: on-chain calls are refused, clearly."""

    kind = "none"
    operation_kinds: tuple[str, ...] = ()

    def __init__(self, modules: list[str], why: str | None = None) -> None:
        self.why = why or (
            f"the federation has no on-chain module (its modules: {', '.join(modules)})"
        )

    async def address(self) -> dict:
        raise NotFound(self.why)

    async def deposit(self, body: dict) -> dict:
        raise NotFound(self.why)

    async def withdraw(self, body: dict) -> dict:
        raise NotFound(self.why)

    async def run_once(self) -> None:
        return None

    def in_flight(self) -> dict[str, int]:
        return {"withdrawal": 0, "deposit": 0}

    def log_rows(self, since: float, before: float | None, limit: int) -> list[dict]:
        return []

    def closing(self) -> None:
        return None


class WalletOnchain:
    """What every wallet module version's on-chain part does alike, over its fmclient wallet
    (`OnchainWallet` for walletv2, `OnchainWalletV1` for wallet v1: the same methods and
    answers): claim a deposit, quote and send a withdrawal, log withdrawals. A version adds
    its addresses, background work, in-flight counts and the largest withdrawal ("all")."""

    kind = "?"
    operation_kinds: tuple[str, ...] = ()

    def __init__(self, mint: MintWallet, wallet: Any, wake: Callable[[], None]) -> None:
        self.mint, self.wallet, self.wake = mint, wallet, wake

    def closing(self) -> None:
        if (event := getattr(self.wallet, "closing", None)) is not None:
            event.set()  # walletv2's address search (fmclient/onchain.py)

    def _pending_withdrawals(self) -> int:
        """Peg-outs whose e-cash operation is not final yet (both versions' op kind)."""
        row = self.mint.db.execute(
            "SELECT COUNT(*) FROM operations WHERE state IN ('created', 'submitted')"
            " AND kind = 'pegout'"
        ).fetchone()
        return int(row[0])

    def _available_msat(self) -> int:
        """What our notes bring as inputs, after their own fees."""
        return sum(n - self.mint.mint.fee(n.bit_length() - 1) for n in self.mint.note_amounts())

    async def _quote_all(self, address: str) -> Any:
        """The quote of the largest withdrawal the balance pays for."""
        raise NotImplementedError

    async def deposit(self, body: dict) -> dict:
        """Scan now; answer the deposit of `txid` (else the newest), once claimed:
        {txid, credited_msat, already_credited, balance_msat}. Not listed by the federation
        yet (it waits for confirmations) or being claimed: 409 deposit_pending."""
        txid = body.get("txid")
        if txid is not None and (not isinstance(txid, str) or len(txid) != 64 or not is_hex(txid)):
            raise InvalidInput("txid must be 32 bytes of hex")
        if not self.wallet.addresses():
            raise InvalidInput("no peg-in address: ask for one first")
        before = {d["output_index"]: d["state"] for d in self.wallet.deposits()}
        with gateway_errors():
            deposits = await self.wallet.scan()
        if txid is not None:
            deposits = [d for d in deposits if (d["outpoint"] or "").startswith(txid.lower())]
        if isinstance(body.get("operation_id"), str):  # an address from `address`
            deposits = [d for d in deposits if d["address"] == body["operation_id"]]
        if not deposits:
            raise DepositPending(
                "the federation lists no such deposit yet: it needs confirmations first"
                if txid
                else "the federation lists no deposit to our addresses yet"
            )
        dep = deposits[-1]
        if dep["state"] == "too_small":
            raise InvalidInput(f"the deposit of {dep['value_sat']} sat does not cover the fees")
        if dep["state"] != "claimed":
            raise DepositPending(f"the deposit is {dep['state']}")
        return {
            "operation_id": dep["address"],
            "txid": (dep["outpoint"] or ":").split(":")[0],
            "credited_msat": dep["credit_msat"],
            "already_credited": before.get(dep["output_index"]) == "claimed",
            "balance_msat": self.mint.balance_msat(),
        }

    async def withdraw(self, body: dict) -> dict:
        """{amount_sat | "all", address, preview?, operation_id?} -> with `preview` the quote,
        else the peg-out, accepted by the federation (`status` pending until the federation
        has signed its transaction, then sent with its `txid`)."""
        address, amount = body.get("address"), body.get("amount_sat")
        if not isinstance(address, str):
            raise InvalidAddress("invalid address: an address is a string")
        if amount != "all" and (
            not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0
        ):
            raise InvalidInput('amount_sat must be a positive integer or "all"')
        op_id = body.get("operation_id") or os.urandom(16).hex()
        if not isinstance(op_id, str) or not 1 <= len(op_id) <= 64:
            raise InvalidInput("operation_id must be a string of 1..64 characters")
        with gateway_errors():
            # asked again by its id: the one peg-out, never quoted again (the federation may
            # have nothing left to quote from until the first one confirms)
            done = None if body.get("preview") else await self.wallet.finish_withdrawal(op_id)
            if done is None:
                quote = await self._quote(address, amount)
                # refused at the quote, the preview included: never a quote that cannot be paid
                if quote.total_msat > (available := self._available_msat()):
                    raise InvalidInput(
                        f"the balance does not cover this withdrawal: it costs"
                        f" {amount_text(quote.total_msat)} with fees, the notes bring"
                        f" {amount_text(available)} after theirs"
                    )
                if body.get("preview"):
                    return {
                        "preview": True,
                        "address": quote.address,
                        "amount_sat": quote.value_sat,
                        "fee_sat": quote.fee_sat,
                        "federation_fee_msat": quote.federation_fee_msat,
                        "total_msat": quote.total_msat,
                        "balance_msat": self.mint.balance_msat(),
                    }
                done = await self.wallet.withdraw(quote, op_id)
            txid = await self.wallet.withdrawal_txid(op_id)
        return {
            "operation_id": op_id,
            "status": "sent" if txid else "pending",
            "txid": txid,
            "address": done["address"],
            "amount_sat": done["value_sat"],
            "fee_sat": done["fee_sat"],
            "federation_fee_msat": done["federation_fee_msat"],
            "balance_msat": self.mint.balance_msat(),
        }

    async def _quote(self, address: str, amount: int | str) -> Any:
        if amount == "all":
            return await self._quote_all(address)
        return await self.wallet.quote(address, int(amount))

    async def _largest(self, address: str, first_guess_sat: int) -> Any:
        """Down from `first_guess_sat`, the first value whose quote the balance pays."""
        available, value = self._available_msat(), first_guess_sat
        while value > 0:
            quote = await self.wallet.quote(address, value)
            if quote.total_msat <= available:
                return quote
            value -= 1
        raise InvalidInput("the balance does not cover a withdrawal above the dust limit")

    def log_rows(self, since: float, before: float | None, limit: int) -> list[dict]:
        return [
            payment_row(
                w["operation_id"],
                self.mint.config.federation_id,
                "withdrawal",
                STATUS_OF[w["state"]],
                w["value_sat"] * 1000,
                w["created"],
                w["updated"],
                address=w["address"],
                txid=w["btc_txid"],
                onchain_fee_sat=w["fee_sat"],
                error=w["error"],
                refunded_msat=0,
            )
            for w in self.wallet.withdrawals(since, before, limit)
        ]
