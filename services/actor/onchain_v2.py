"""On-chain money through a federation's `walletv2` module, as the actor's on-chain part
(`onchain.Onchain`): peg-in addresses (ground ahead of time), deposits found by a scan of the
federation's listed outputs and claimed at once, peg-outs quoted and sent. The wallet itself
(`fmclient.onchain.OnchainWallet`) keeps its rows in the e-cash wallet's SQLite file.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

from fmclient.onchain import OnchainWallet, WithdrawQuote
from fmclient.wallet import MintWallet
from fmclient.walletv2 import new_peg_in_address
from gwcore.errors import DepositPending, InvalidAddress, InvalidInput
from gwcore.values import is_hex

from .ecash_errors import gateway_errors
from .pegouts import withdrawal_row

log = logging.getLogger(__name__)
READY_ADDRESSES = 2  # peg-in addresses ground ahead (about 3 s of CPU each on 4 guardians)
STATUS_OF = {"done": "settled", "rejected": "failed", "created": "pending", "submitted": "pending"}


class WalletV2Onchain:
    kind = "walletv2"
    operation_kinds = ("pegout", "pegin")  # its e-cash operations: counted by its own rows

    def __init__(self, mint: MintWallet, wake: Callable[[], None]) -> None:
        self.mint, self.wake = mint, wake
        self.wallet = OnchainWallet(mint)

    async def run_once(self) -> None:
        """Keep an address ready; find and claim deposits to ours."""
        try:
            await self._keep_an_address_ready()
        except Exception as exc:  # never expected; the next address is ground on demand
            log.warning("no peg-in address ground ahead: %s", exc)
        if self.wallet.addresses():
            await asyncio.wait_for(self.wallet.scan(), 60)

    def in_flight(self) -> dict[str, int]:
        """Withdrawals not yet final, deposits listed by the federation and not yet claimed."""
        withdrawals = self.mint.db.execute(
            "SELECT COUNT(*) FROM operations WHERE state IN ('created', 'submitted')"
            " AND kind = 'pegout'"
        ).fetchone()[0]
        deposits = self.mint.db.execute(
            "SELECT COUNT(*) FROM deposits WHERE state IN ('seen', 'claiming')"
        ).fetchone()[0]
        return {"withdrawal": int(withdrawals), "deposit": int(deposits)}

    async def address(self) -> dict:
        """A fresh peg-in address: one ground ahead of time, else ground now (seconds of CPU,
        in a thread). The background loop keeps READY_ADDRESSES ready."""
        address = self.wallet.take_ready()
        if address is None:
            made = await asyncio.to_thread(new_peg_in_address, self.wallet.config)
            address = self.wallet.store_address(made)
        self.wake()
        return {"operation_id": address, "address": address}

    async def _keep_an_address_ready(self) -> None:
        if self.wallet.ready_count() < READY_ADDRESSES:
            self.wallet.add_ready(await asyncio.to_thread(new_peg_in_address, self.wallet.config))

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
            quote = await self._quote(address, amount)
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

    async def _quote(self, address: str, amount: int | str) -> WithdrawQuote:
        if amount != "all":
            return await self.wallet.quote(address, int(amount))
        probe = await self.wallet.quote(address, self.wallet.config.dust_limit_sat)
        available = sum(
            n - self.mint.mint.fee(n.bit_length() - 1) for n in self.mint.note_amounts()
        )
        # the largest value whose output and its fee fit in what the notes bring
        value = (available - self.wallet.config.fee_base_msat) * 1_000_000 // (
            1_000_000 + self.wallet.config.fee_ppm
        ) // 1000 - probe.fee_sat
        while value > 0:
            quote = await self.wallet.quote(address, value)
            if quote.total_msat <= available:
                return quote
            value -= 1
        raise InvalidInput("the balance does not cover a withdrawal above the dust limit")

    def log_rows(self, since: float, before: float | None, limit: int) -> list[dict]:
        return [
            withdrawal_row(
                w["operation_id"],
                self.mint.config.federation_id,
                STATUS_OF[w["state"]],
                w["value_sat"] * 1000,
                w["created"],
                w["updated"] if w["state"] in ("done", "rejected") else None,
                address=w["address"],
                txid=w["btc_txid"],
                onchain_fee_sat=w["fee_sat"],
                error=w["error"],
                refunded_msat=0,
            )
            for w in self.wallet.withdrawals(since, before, limit)
        ]
