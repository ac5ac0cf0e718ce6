"""On-chain money through walletv2: peg-in addresses, deposits found and claimed, peg-outs
(fedimint-walletv2-common/-client/-server-0.13.0), kept in the mint wallet's SQLite file.

Peg-in: addresses may be ground ahead of time into `peg_in_ready` (grinding takes seconds),
moved to `peg_in_addresses` when handed out; only those are watched. The federation lists
every output paid to an address that passes its filter (`output_info_slice [start, end)`:
{index, script, value (sat), spent, outpoint}); we claim
ours with `WalletInputV0 {output_index, tweak: PublicKey, fee: bitcoin::Amount}` signed by the
address's tweak key. The fee is at least the consensus `receive_fee`; the input is worth
(value - fee) sat, less the module's own fee (100 sat + ppm) — the rest is new e-cash.

Peg-out: `WalletOutputV0 {destination: StandardScript, value, fee}` with fee at least the
consensus `send_fee`; it costs (value + fee) sat plus the module's fee, paid from our notes.
The federation then signs and broadcasts its own transaction (`transaction_id` of our
output's outpoint gives its txid).

Operations (by id; a claim's id is derived from the output index, so each deposit is claimed
once): the mint wallet's created -> submitted -> done | rejected, and here:

    deposit: `DepositState` below
    withdrawal: the operation's state, and its bitcoin txid once the federation signed it
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from dataclasses import dataclass
from enum import StrEnum

from coincurve import PrivateKey

from gwcore.bitcoin_address import AddressError, parse_address
from gwcore.states import StateMachine

from . import derive
from .derive import DerivableSecret
from .encoding import encode
from .mintv2 import EcashError
from .onchain_common import OnchainCommon, OnchainError
from .tx import ModuleItem, v0
from .wallet import MintWallet
from .wallet_operations import Foreign, Rejected
from .walletv2 import PegInAddress, WalletConfig, derived_peg_in_address, new_peg_in_address

SCHEMA = """
CREATE TABLE IF NOT EXISTS deposits (
    output_index INTEGER PRIMARY KEY, address TEXT NOT NULL, outpoint TEXT,
    value_sat INTEGER NOT NULL, fee_sat INTEGER, credit_msat INTEGER, op_id TEXT,
    state TEXT NOT NULL, updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS withdrawals (
    op_id TEXT PRIMARY KEY, address TEXT NOT NULL, value_sat INTEGER NOT NULL,
    fee_sat INTEGER NOT NULL, federation_fee_msat INTEGER NOT NULL, btc_txid TEXT
);
CREATE TABLE IF NOT EXISTS onchain_cursor (id INTEGER PRIMARY KEY CHECK (id = 0), next INTEGER);
"""
SLICE = 1000
TWEAK_INDEX = "wallet_v2_tweak"  # the next derivation index a seeded address search starts at
RECOVERY_GAP = 4  # seeded addresses watched past the last one paid, after a lost data folder
SEARCH_CHECKPOINT_S = 1.0  # how often an address search commits how far it went
# StandardScript variants and where their program sits in the scriptPubKey
SCRIPT_VARIANT = {"p2pkh": (0, 3, 23), "p2sh": (1, 2, 22), "p2wpkh": (2, 2, 22)}
SCRIPT_VARIANT |= {"p2wsh": (3, 2, 34), "p2tr": (4, 2, 34)}
WALLET_ERRORS = {
    (4, 1): "the deposit was already claimed",
    (4, 3): "the tweak does not match the deposit's script",
    (4, 4): "the federation has no fee rate yet; try again later",
    (4, 5): "the fee is below the federation's; ask for a new quote",
    (5, 1): "the amount is below the federation's dust limit",
    (5, 2): "the federation holds no on-chain funds yet",
    (5, 3): "the federation has no fee rate yet; try again later",
    (5, 4): "the fee is below the federation's; ask for a new quote",
    (5, 5): "the federation's change would be dust",
}


class DepositState(StrEnum):
    """A walletv2 deposit, by the federation's output index (created `seen`, or
    `spent_elsewhere` when the federation lists it spent already):

        seen --claim signed and stored--> claiming --accepted--> claimed
                                          \\--refused--> rejected
        claiming --refused for its fee--> seen (claimed anew at the new fee)
        seen --worth less than the fees--> too_small (left to the federation)
    """

    SEEN = "seen"
    CLAIMING = "claiming"
    CLAIMED = "claimed"
    REJECTED = "rejected"
    TOO_SMALL = "too_small"
    SPENT_ELSEWHERE = "spent_elsewhere"


DEPOSIT = StateMachine(
    DepositState,
    {
        DepositState.SEEN: {DepositState.CLAIMING, DepositState.TOO_SMALL},
        DepositState.CLAIMING: {DepositState.CLAIMED, DepositState.REJECTED, DepositState.SEEN},
    },
)
RETRY = {(4, 4), (4, 5)}  # a claim refused for its fee is claimed again with the new fee


@dataclass(frozen=True)
class WithdrawQuote:
    address: str
    value_sat: int
    fee_sat: int  # the bitcoin miner fee, the federation's `send_fee`
    federation_fee_msat: int  # the wallet module's fee on the output

    @property
    def total_msat(self) -> int:
        """What leaves the e-cash balance, before the mint's fees on the notes spent."""
        return (self.value_sat + self.fee_sat) * 1000 + self.federation_fee_msat


def standard_script(address: str, network: str) -> bytes:
    """The consensus encoding of walletv2's `StandardScript` paying `address`."""
    try:
        parsed = parse_address(address, network)
    except AddressError as exc:
        raise OnchainError(f"bad address: {exc}") from None
    variant, start, end = SCRIPT_VARIANT[parsed.kind]
    return encode(lambda w: w.framed(variant, parsed.script[start:end]))


class OnchainWallet(OnchainCommon):
    ERRORS = WALLET_ERRORS

    def __init__(self, mint: MintWallet) -> None:
        self.mint, self.api, self.db = mint, mint.api, mint.db
        self.module = mint.config.module_id("walletv2")
        self.config = WalletConfig.from_bytes(mint.config.modules[self.module].body)
        self.db.executescript(SCHEMA)
        self._create_book()
        self._searching = asyncio.Lock()
        # set at close: a search in a worker thread stops within milliseconds (the actor's
        # shutdown waits for its threads: supervisord's stop and a leave must not wait seconds)
        self.closing = threading.Event()

    def module_fee_msat(self, amount_msat: int) -> int:
        return self.config.fee_base_msat + amount_msat * self.config.fee_ppm // 1_000_000

    # -- peg-in ----------------------------------------------------------------------------------

    async def grind_address(self) -> PegInAddress:
        """A fresh peg-in address (seconds of CPU, in a thread): at the next valid index of the
        keys derived from the gateway's seed, as the walletv2 client finds its own (the index
        is advanced past it, committed, before it is returned: never handed out twice); for a
        federation joined before the seed, from a random key."""
        module = self.mint.keys.module_secret("walletv2")
        if module is None:
            return await asyncio.to_thread(
                new_peg_in_address, self.config, cancelled=self.closing.is_set
            )
        async with self._searching:  # one search at a time: two would find the same index
            made = await self._seeded_address(module, self.mint.keys.next_index(TWEAK_INDEX))
            self.mint.keys.advance_index(TWEAK_INDEX, made.index + 1)  # type: ignore[operator]
        return made

    async def _seeded_address(self, module: DerivableSecret, start: int) -> PegInAddress:
        """The seed's first valid address at index `start` or after (in a worker thread,
        stopped by `closing`). The indexes searched are committed every second or so, none of
        them valid: a search a crash or a kill stopped goes on from there, never from `start`
        again (seconds of CPU each time, minutes on a busy machine)."""
        passed = [start]
        search = asyncio.ensure_future(
            asyncio.to_thread(
                derived_peg_in_address,
                self.config,
                lambda i: derive.wallet_v2_tweak_secret(module, i),
                start,
                self.closing.is_set,
                lambda i: passed.__setitem__(0, i),
            )
        )
        committed = start
        while not search.done():
            await asyncio.wait({search}, timeout=SEARCH_CHECKPOINT_S)
            if passed[0] > committed and not search.done():
                committed = passed[0]
                self.mint.keys.advance_index(TWEAK_INDEX, committed)
        made = search.result()
        assert made.index is not None
        return made

    async def recover_addresses(self, gap: int = RECOVERY_GAP) -> int:
        """After a lost data folder: the seed's addresses watched again, so a deposit not yet
        claimed is found and claimed by the next scan (one claimed before is listed spent and
        credits nothing). The federation lists every output paid to an address that passes its
        filter; the seed's valid indexes are derived in order until `gap` follow the last one
        paid (the gateway hands out a fresh address per request and grinds one ahead, so an
        unpaid run of a few is expected), then the next search starts past them. Idempotent.
        Returns how many addresses are watched (0: keys are random, nothing to find)."""
        module = self.mint.keys.module_secret("walletv2")
        if module is None:
            return 0
        paid, start = set(), 0
        while outputs := await self._call("output_info_slice", [start, start + SLICE]):
            paid.update(str(o["script"]) for o in outputs)
            start = max(int(o["index"]) for o in outputs) + 1
        found: list[PegInAddress] = []
        last_paid, index = -1, 0
        while len(found) <= last_paid + gap:
            made = await self._seeded_address(module, index)
            found.append(made)
            index = made.index + 1  # type: ignore[operator]
            if made.script_pubkey.hex() in paid:
                last_paid = len(found) - 1
        with self.mint.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO peg_in_addresses VALUES (?, ?, ?, ?)",
                [(m.address, m.script_pubkey.hex(), m.tweak_secret, time.time()) for m in found],
            )
        self.mint.keys.advance_index(TWEAK_INDEX, index)
        return len(found)

    def take_ready(self) -> str | None:
        """Hand out an address ground ahead of time, or None if there is none."""
        return self._take_ready()

    async def receive_fee_sat(self) -> int:
        fee = await self._call("receive_fee")
        if fee is None:
            raise OnchainError("the federation has no fee rate yet; try again later")
        return int(fee)

    async def scan(self) -> list[dict]:
        """Read the outputs the federation listed since the last scan, record ours, claim what
        is unclaimed (and what a crash left mid-claim). Answers every deposit's state."""
        row = self.db.execute("SELECT next FROM onchain_cursor WHERE id = 0").fetchone()
        start = row[0] if row else 0
        scripts = {
            r[0]: r[1] for r in self.db.execute("SELECT script, address FROM peg_in_addresses")
        }
        while True:
            outputs = await self._call("output_info_slice", [start, start + SLICE])
            if not isinstance(outputs, list) or not outputs:
                break
            for o in outputs:
                address = scripts.get(o["script"])
                if address is not None:
                    state = "spent_elsewhere" if o["spent"] else "seen"
                    self.db.execute(
                        "INSERT OR IGNORE INTO deposits (output_index, address, outpoint,"
                        " value_sat, state, updated) VALUES (?, ?, ?, ?, ?, ?)",
                        (o["index"], address, o.get("outpoint"), o["value"], state, time.time()),
                    )
                start = max(start, int(o["index"]) + 1)
            self.db.execute("INSERT OR REPLACE INTO onchain_cursor VALUES (0, ?)", (start,))
        refused = []
        for (index,) in self.db.execute(
            "SELECT output_index FROM deposits WHERE state IN ('seen', 'claiming')"
        ).fetchall():
            try:
                await self._claim(index)
            except OnchainError as exc:  # this one refused (or retried later): the others go on
                refused.append(f"deposit {index}: {exc}")
        if refused:
            raise OnchainError("; ".join(refused))
        return self.deposits()

    def deposits(self) -> list[dict]:
        rows = self.db.execute("SELECT * FROM deposits ORDER BY output_index").fetchall()
        keys = ("output_index", "address", "outpoint", "value_sat", "fee_sat", "credit_msat")
        return [{k: r[k] for k in keys} | {"state": r["state"]} for r in rows]

    async def _claim(self, index: int) -> None:
        dep = self.db.execute("SELECT * FROM deposits WHERE output_index = ?", (index,)).fetchone()
        op_id = dep["op_id"]
        if dep["state"] == "seen":
            tries = self.db.execute(
                "SELECT COUNT(*) FROM operations WHERE id LIKE ?", (f"pegin-{index}-%",)
            ).fetchone()[0]
            op_id = f"pegin-{index}-{tries}"  # a refused claim spent nothing: try anew
            fee = await self.receive_fee_sat()
            net_sat = dep["value_sat"] - fee
            amount_msat = net_sat * 1000
            net_msat = amount_msat - self.module_fee_msat(amount_msat)
            secret = self.tweak_secret(dep["address"])
            tweak = _public_key(secret)
            item = ModuleItem(
                self.module, v0(encode(lambda w: w.varint(index).raw(tweak).varint(fee)))
            )
            if net_sat <= 0:
                self._deposit(index, DepositState.TOO_SMALL, fee)
                return

            def record(db: sqlite3.Connection) -> None:
                db.execute(
                    "UPDATE deposits SET state = ?, fee_sat = ?, op_id = ?, updated = ?"
                    " WHERE output_index = ?",
                    (
                        DEPOSIT.check(dep["state"], DepositState.CLAIMING),
                        fee,
                        op_id,
                        time.time(),
                        index,
                    ),
                )

            try:
                self.mint.create_operation(
                    op_id, "pegin", [], external=False,
                    foreign=Foreign((item,), (secret,), (), net_msat), also=record,
                )  # fmt: skip
            except EcashError:
                self._deposit(index, DepositState.TOO_SMALL, fee)
                return
        try:
            await self.mint.finish(op_id)
        except Rejected as exc:
            cause = exc.cause
            retry = cause is not None and (cause.variant, cause.module_error) in RETRY
            self._deposit(index, DepositState.SEEN if retry else DepositState.REJECTED)
            raise OnchainError(self._reason(exc)) from None
        credit = (self.mint.operation(op_id) or {}).get("amount_msat")
        self._deposit(index, DepositState.CLAIMED)
        self.db.execute(
            "UPDATE deposits SET credit_msat = ? WHERE output_index = ?", (credit, index)
        )

    def _deposit(
        self, index: int, state: DepositState, fee: int | None = None, credit: int | None = None
    ) -> None:
        """Move the deposit to `state` (the table allows it, or IllegalTransition)."""
        old = self.db.execute("SELECT state FROM deposits WHERE output_index = ?", (index,))
        DEPOSIT.check(old.fetchone()[0], state)
        self.db.execute(
            "UPDATE deposits SET state = ?, fee_sat = COALESCE(?, fee_sat),"
            " credit_msat = COALESCE(?, credit_msat), updated = ? WHERE output_index = ?",
            (state, fee, credit, time.time(), index),
        )

    # -- peg-out ---------------------------------------------------------------------------------

    async def quote(self, address: str, value_sat: int) -> WithdrawQuote:
        """What a withdrawal of `value_sat` to `address` costs now (`withdraw --preview`)."""
        if not isinstance(value_sat, int) or isinstance(value_sat, bool) or value_sat <= 0:
            raise OnchainError("the amount is a positive number of sat")
        standard_script(address, self.config.network)
        if value_sat < self.config.dust_limit_sat:
            raise OnchainError(
                f"{value_sat} sat is below the federation's dust limit of "
                f"{self.config.dust_limit_sat} sat"
            )
        fee = await self._call("send_fee")
        if fee is None:
            raise OnchainError("the federation has no fee rate yet; try again later")
        total = (value_sat + int(fee)) * 1000
        return WithdrawQuote(address, value_sat, int(fee), self.module_fee_msat(total))

    async def withdraw(self, quote: WithdrawQuote, op_id: str) -> dict:
        """Pay `quote` out of the e-cash balance (idempotent by `op_id`): the operation is
        stored before it is submitted; answers `withdrawal(op_id)`."""
        if self.withdrawal(op_id) is None:
            destination = standard_script(quote.address, self.config.network)
            body = encode(
                lambda w: w.raw(destination).varint(quote.value_sat).varint(quote.fee_sat)
            )

            def record(db: sqlite3.Connection) -> None:
                db.execute(
                    "INSERT INTO withdrawals VALUES (?, ?, ?, ?, ?, NULL)",
                    (op_id, quote.address, quote.value_sat, quote.fee_sat,
                     quote.federation_fee_msat),
                )  # fmt: skip

            output = ModuleItem(self.module, v0(body))
            self._store_payout(op_id, output, quote.total_msat, record)
        await self._finish(op_id)
        return self.withdrawal(op_id) or {}

    def withdrawal(self, op_id: str) -> dict | None:
        row = self.db.execute("SELECT * FROM withdrawals WHERE op_id = ?", (op_id,)).fetchone()
        if row is None:
            return None
        op = self.mint.operation(op_id)
        state = op["state"] if op else "created"
        keys = ("address", "value_sat", "fee_sat", "federation_fee_msat", "btc_txid")
        return {"operation_id": op_id, "state": state} | {k: row[k] for k in keys}

    def withdrawals(self, since: float, before: float | None, limit: int) -> list[dict]:
        """Withdrawals created in [since, before), newest first, with their operation's
        state, times and error."""
        rows = self._withdrawal_rows(since, before, limit)
        keys = ("address", "value_sat", "fee_sat", "federation_fee_msat", "btc_txid")
        return [
            {"operation_id": r["op_id"], "state": r["op_state"]}
            | {k: r[k] for k in (*keys, "created", "updated", "error")}
            for r in rows
        ]

    async def withdrawal_txid(self, op_id: str) -> str | None:
        """The federation's bitcoin transaction paying the withdrawal, once it signed it."""
        w = self.withdrawal(op_id)
        if w is None or w["state"] != "done":
            return None
        if w["btc_txid"] is None:
            op = self.mint.operation(op_id) or {}
            txid = await self._call("transaction_id", {"txid": op["txid"], "out_idx": 0})
            if isinstance(txid, str):
                self.db.execute(
                    "UPDATE withdrawals SET btc_txid = ? WHERE op_id = ?", (txid, op_id)
                )
            return txid if isinstance(txid, str) else None
        return w["btc_txid"]


def _public_key(secret: bytes) -> bytes:
    return PrivateKey(secret).public_key.format(compressed=True)
