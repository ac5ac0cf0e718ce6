"""A real Fedimint federation (fedimintd 0.13) as the actor's `Federation` (see federation.py),
through `fmclient`: mintv2 e-cash (`MintWallet`) and walletv2 on-chain money (`OnchainWallet`),
both in `<actor home>/fedimint.sqlite`; the client config, agreed by the guardians when joining,
in `<actor home>/fedimint-config.json` (a restart needs no guardian to start).

Deposits are found by a background scan of the federation's listed outputs (every
`scan_interval_s`) and claimed at once; `deposit` scans now and answers the deposit asked for.
Lightning (LNv2) is not served yet: those calls are refused with a clear error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from fmclient.api import ApiError, FederationApi, NoConsensus, PeerUnreachable
from fmclient.config import ClientConfig, parse_client_config
from fmclient.join import JoinError, check_overrides, download_config, guardian_urls
from fmclient.mintv2 import EcashError
from fmclient.onchain import OnchainError, OnchainWallet, WithdrawQuote
from fmclient.wallet import MintWallet
from fmclient.walletv2 import new_peg_in_address
from gwcore.errors import (
    DepositPending,
    GatewayError,
    InvalidAddress,
    InvalidInput,
    NotFound,
    ServiceNotReady,
)
from gwcore.files import write_private
from gwcore.values import is_hex

from .flows import crash_point
from .pegouts import withdrawal_row

log = logging.getLogger(__name__)
READY_ADDRESSES = 2  # peg-in addresses ground ahead (about 3 s of CPU each on 4 guardians)
STATUS_OF = {"done": "settled", "rejected": "failed", "created": "pending", "submitted": "pending"}


@contextlib.contextmanager
def gateway_errors() -> Iterator[None]:
    """fmclient's refusals as the gateway's errors: bad input 400, guardians away 503."""
    try:
        yield
    except OnchainError as exc:
        if str(exc).startswith("bad address"):
            raise InvalidAddress(f"invalid address: {str(exc)[len('bad address: ') :]}") from None
        raise InvalidInput(str(exc)) from None
    except EcashError as exc:
        raise InvalidInput(str(exc)) from None
    except (NoConsensus, PeerUnreachable, TimeoutError, JoinError) as exc:
        raise ServiceNotReady(f"federation unreachable: {exc}") from None
    except ApiError as exc:
        raise GatewayError(f"the federation answered an error: {exc}", retryable=True) from None


class FedimintFederation:
    kind = "fedimint"

    def __init__(
        self, home: Path, config: ClientConfig, api: FederationApi, scan_interval_s: float = 2.0
    ) -> None:
        self.federation_id = config.federation_id
        self.config = config
        # crash tests kill the actor between a wallet operation's steps (inert otherwise)
        self.mint = MintWallet(
            home / "fedimint.sqlite", config, api, lambda step: crash_point(f"ecash-{step}")
        )
        self.onchain = OnchainWallet(self.mint)
        self.scan_interval_s = scan_interval_s
        self.wake = asyncio.Event()

    @classmethod
    async def open(
        cls, home: Path, invite_code: str, federation_id: str, api_urls: dict | None = None
    ) -> FedimintFederation:
        """Join by invite (the config agreed by the guardians), or reopen what was joined.
        `api_urls`: the guardians' ws URLs by peer id, instead of the config's (iroh) ones."""
        overrides = check_overrides(api_urls)
        config = _saved_config(home)
        if config is None:
            with gateway_errors():
                config = await download_config(invite_code, overrides=overrides)
            _save_config(home, config)
        if config.federation_id != federation_id:
            raise SystemExit("the invite code names another federation")
        endpoints = {p: url for p, (url, _) in config.api_endpoints.items()}
        api = FederationApi(guardian_urls(endpoints, overrides))
        return cls(home, config, api)

    @property
    def name(self) -> str:
        return self.config.meta.get("federation_name", "")

    def balance_msat(self) -> int:
        return self.mint.balance_msat()

    async def resume(self) -> list[str]:
        unfinished = self.mint.db.execute(
            "SELECT id FROM operations WHERE state IN ('created', 'submitted')"
        ).fetchall()
        await self.mint.resume()
        return [r[0] for r in unfinished]

    async def run(self, stop: asyncio.Event) -> None:
        """Find and claim deposits, finish what a crash left unfinished, until `stop`."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(self.mint.resume(), 60)
            except Exception as exc:  # guardians away: resumed again later
                log.warning("wallet resume incomplete: %s", exc)
            try:
                await self._keep_an_address_ready()
            except Exception as exc:  # never expected; the next address is ground on demand
                log.warning("no peg-in address ground ahead: %s", exc)
            if self.onchain.addresses():
                try:
                    await asyncio.wait_for(self.onchain.scan(), 60)
                except Exception as exc:  # guardians away: scanned again later
                    log.warning("deposit scan incomplete: %s", exc)
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.scan_interval_s)

    async def close(self) -> None:
        await self.mint.api.close()

    # -- on chain --------------------------------------------------------------------------------

    async def address(self) -> dict:
        """A fresh peg-in address: one ground ahead of time, else ground now (seconds of CPU,
        in a thread). The background loop keeps READY_ADDRESSES ready."""
        address = self.onchain.take_ready()
        if address is None:
            made = await asyncio.to_thread(new_peg_in_address, self.onchain.config)
            address = self.onchain.store_address(made)
        self.wake.set()
        return {"operation_id": address, "address": address}

    async def _keep_an_address_ready(self) -> None:
        if self.onchain.ready_count() < READY_ADDRESSES:
            self.onchain.add_ready(await asyncio.to_thread(new_peg_in_address, self.onchain.config))

    async def deposit(self, body: dict) -> dict:
        """Scan now; answer the deposit of `txid` (else the newest), once claimed:
        {txid, credited_msat, already_credited, balance_msat}. Not listed by the federation
        yet (it waits for confirmations) or being claimed: 409 deposit_pending."""
        txid = body.get("txid")
        if txid is not None and (not isinstance(txid, str) or len(txid) != 64 or not is_hex(txid)):
            raise InvalidInput("txid must be 32 bytes of hex")
        if not self.onchain.addresses():
            raise InvalidInput("no peg-in address: ask for one first")
        before = {d["output_index"]: d["state"] for d in self.onchain.deposits()}
        with gateway_errors():
            deposits = await self.onchain.scan()
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
            "balance_msat": self.balance_msat(),
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
                    "balance_msat": self.balance_msat(),
                }
            done = await self.onchain.withdraw(quote, op_id)
            txid = await self.onchain.withdrawal_txid(op_id)
        return {
            "operation_id": op_id,
            "status": "sent" if txid else "pending",
            "txid": txid,
            "address": done["address"],
            "amount_sat": done["value_sat"],
            "fee_sat": done["fee_sat"],
            "federation_fee_msat": done["federation_fee_msat"],
            "balance_msat": self.balance_msat(),
        }

    async def _quote(self, address: str, amount: int | str) -> WithdrawQuote:
        if amount != "all":
            return await self.onchain.quote(address, int(amount))
        probe = await self.onchain.quote(address, self.onchain.config.dust_limit_sat)
        available = sum(
            n - self.mint.mint.fee(n.bit_length() - 1) for n in self.mint.note_amounts()
        )
        # the largest value whose output and its fee fit in what the notes bring
        value = (available - self.onchain.config.fee_base_msat) * 1_000_000 // (
            1_000_000 + self.onchain.config.fee_ppm
        ) // 1000 - probe.fee_sat
        while value > 0:
            quote = await self.onchain.quote(address, value)
            if quote.total_msat <= available:
                return quote
            value -= 1
        raise InvalidInput("the balance does not cover a withdrawal above the dust limit")

    def in_flight(self) -> dict[str, int]:
        """Withdrawals and other e-cash operations whose transaction is not final yet, deposits
        listed by the federation and not yet claimed. The LNv2 operations (funding, claims,
        refunds) are counted by the LNv2 role, by its payments."""
        ops = dict(
            self.mint.db.execute(
                "SELECT kind, COUNT(*) FROM operations WHERE state IN ('created', 'submitted')"
                " AND kind NOT LIKE 'lnv2%' GROUP BY kind"
            ).fetchall()
        )
        deposits = self.mint.db.execute(
            "SELECT COUNT(*) FROM deposits WHERE state IN ('seen', 'claiming')"
        ).fetchone()[0]
        withdrawals = ops.pop("pegout", 0)
        ops.pop("pegin", None)  # a deposit being claimed: counted by its deposit row
        return {
            "withdrawal": int(withdrawals),
            "deposit": int(deposits),
            "ecash": int(sum(ops.values())),
        }

    def log_rows(self, since: float, before: float | None, limit: int) -> list[dict]:
        return [
            withdrawal_row(
                w["operation_id"],
                self.federation_id,
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
            for w in self.onchain.withdrawals(since, before, limit)
        ]

    # -- e-cash ----------------------------------------------------------------------------------

    async def receive_ecash(self, notes: str) -> dict:
        with gateway_errors():
            got = await self.mint.receive(notes)
        return {
            "operation_id": got["id"],
            "amount_msat": got["amount_msat"],
            "balance_msat": self.balance_msat(),
        }

    async def spend_ecash(self, amount_msat: int, operation_id: str) -> dict:
        with gateway_errors():
            spent = await self.mint.spend(amount_msat, operation_id)
        return {
            "operation_id": operation_id,
            "notes": spent["ecash"],
            "amount_msat": spent["amount_msat"],
            "balance_msat": self.balance_msat(),
        }

    # -- not yet ---------------------------------------------------------------------------------

    @staticmethod
    def not_served(what: str) -> GatewayError:
        return NotFound(f"{what} is not served for Fedimint federations yet (LNv2 comes next)")


def _saved_config(home: Path) -> ClientConfig | None:
    saved = home / "fedimint-config.json"
    return parse_client_config(json.loads(saved.read_text())) if saved.exists() else None


def _save_config(home: Path, config: ClientConfig) -> None:
    write_private(home / "fedimint-config.json", json.dumps(config.raw))
