"""What the actor needs of a federation's on-chain module, whatever its version: one
implementation per wallet module (`onchain_v2.WalletV2Onchain` for walletv2; wallet v1 next),
picked from the federation's config by `fedimint.ONCHAIN`. Answers are the API's bodies; errors
are GatewayErrors; every money-moving call is idempotent by the id it is given or derives.
"""

from __future__ import annotations

from typing import Protocol

from gwcore.errors import NotFound


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


class NoOnchain:
    """A federation without a wallet module: on-chain calls are refused, clearly."""

    kind = "none"
    operation_kinds: tuple[str, ...] = ()

    def __init__(self, modules: list[str]) -> None:
        self.why = f"the federation has no on-chain module (its modules: {', '.join(modules)})"

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
