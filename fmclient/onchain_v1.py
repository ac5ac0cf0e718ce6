"""On-chain money through wallet v1 ("wallet", fedimint-wallet-client/-server-0.13.0):
peg-in addresses, deposits found on chain and claimed with a proof, peg-outs; kept in the mint
wallet's SQLite file, beside (never in) walletv2's tables. The same public methods and answers
as `onchain.OnchainWallet` (walletv2), so the actor holds either behind one interface.

Peg-in: an address is the federation's descriptor tweaked by a random key of ours (no grinding;
stored before it is handed out). The federation does not list v1 deposits: the chain source
(`chain.py`, the operator's bitcoind or Esplora) finds the confirmed outputs paying our
addresses. A deposit in block h is claimed once the federation's agreed block count (`block_count`,
the chain tip less `finality_delay`) is past h, as the client crate waits: with input V1
{outpoint, tweak key, tx_out} when the federation already tracks the output (`utxo_confirmed`),
else V0, the peg-in proof (txout proof and transaction, checked against the blocks it synced),
signed by the tweak key. It is worth its value less `fee_consensus.peg_in_abs`; the crate does
not claim a deposit worth no more than that. Each deposit is claimed once, ever: one row per
outpoint, one claim operation at a time, a new one only after the last was refused.

Peg-out: `peg_out_fees (address, sats)` gives the fee rate and the weight of the transaction the
federation would build now; the output `PegOut {recipient, amount, fees}` costs amount + fee
(sat) plus `peg_out_abs`, paid from our notes. The federation refuses a stale quote (its
transaction's weight or fee rate changed): quote again. Its outcome (`await_output_outcome`)
is the txid of the federation's bitcoin transaction.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import dataclass
from enum import StrEnum

from coincurve import PrivateKey

from gwcore.bitcoin_address import DUST_SAT, AddressError, parse_address
from gwcore.states import StateMachine

from .chain import ChainError, ChainOutput, ChainSource
from .derive import DerivableSecret, wallet_v1_tweak_secret
from .ecash import EcashError
from .encoding import Reader
from .onchain_common import OnchainCommon, OnchainError
from .tx import ModuleItem, from_serde
from .wallet import MintWallet
from .wallet_operations import Foreign, Rejected
from .walletv1 import (
    RETRY_CLAIM,
    WALLET_ERRORS,
    PegInProof,
    PegOutFees,
    WalletV1Config,
    WalletV1Error,
    claim_input_v0,
    claim_input_v1,
    new_peg_in_address,
    peg_out_outcome_txid,
    peg_out_output,
)

MAX_CLAIMS = 10  # claims of one deposit refused for a passing reason before it is given up


class DepositState(StrEnum):
    """A deposit to one of our peg-in addresses, by outpoint (seen on chain, confirmed):

    seen --claim stored--> claiming --accepted--> claimed
                           \\--refused for now (block not synced yet)--> seen
                           \\--refused--> rejected
    seen --worth no more than the federation's fee--> too_small
    """

    SEEN = "seen"
    CLAIMING = "claiming"
    CLAIMED = "claimed"
    REJECTED = "rejected"
    TOO_SMALL = "too_small"


DEPOSIT = StateMachine(
    DepositState,
    {
        DepositState.SEEN: {DepositState.CLAIMING, DepositState.TOO_SMALL},
        DepositState.CLAIMING: {DepositState.CLAIMED, DepositState.SEEN, DepositState.REJECTED},
    },
)


class WithdrawalState(StrEnum):
    """A peg-out, by operation id: its e-cash operation's state, mirrored when looked at (so a
    look may see several steps at once). Its bitcoin txid is read once it is done.

    created --submitted--> submitted --accepted--> done
                           \\--refused--> rejected
    created --accepted (seen after the fact)--> done
    created --refused--> rejected
    """

    CREATED = "created"
    SUBMITTED = "submitted"
    DONE = "done"
    REJECTED = "rejected"


WITHDRAWAL = StateMachine(
    WithdrawalState,
    {
        WithdrawalState.CREATED: {
            WithdrawalState.SUBMITTED, WithdrawalState.DONE, WithdrawalState.REJECTED
        },
        WithdrawalState.SUBMITTED: {WithdrawalState.DONE, WithdrawalState.REJECTED},
    },
)  # fmt: skip

SCHEMA = """
CREATE TABLE IF NOT EXISTS v1_deposits (
    id INTEGER PRIMARY KEY AUTOINCREMENT, outpoint TEXT NOT NULL UNIQUE, address TEXT NOT NULL,
    value_sat INTEGER NOT NULL, height INTEGER NOT NULL, block_hash TEXT NOT NULL,
    fee_sat INTEGER, credit_msat INTEGER, op_id TEXT, claims INTEGER NOT NULL DEFAULT 0,
    error TEXT, state TEXT NOT NULL, updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS v1_recovered_claims (outpoint TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS v1_withdrawals (
    op_id TEXT PRIMARY KEY, address TEXT NOT NULL, value_sat INTEGER NOT NULL,
    fee_sat INTEGER NOT NULL, federation_fee_msat INTEGER NOT NULL, sats_per_kvb INTEGER NOT NULL,
    total_weight INTEGER NOT NULL, btc_txid TEXT, state TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class WithdrawQuoteV1:
    address: str
    value_sat: int
    fee_sat: int  # the bitcoin miner fee of the federation's transaction (`peg_out_fees`)
    federation_fee_msat: int  # fee_consensus.peg_out_abs
    sats_per_kvb: int
    total_weight: int

    @property
    def total_msat(self) -> int:
        """What leaves the e-cash balance, before the mint's fees on the notes spent."""
        return (self.value_sat + self.fee_sat) * 1000 + self.federation_fee_msat

    @property
    def fees(self) -> PegOutFees:
        return PegOutFees(self.sats_per_kvb, self.total_weight)


# the wallet's key_indexes row of the next peg-in tweak index
TWEAK_INDEX = "wallet_v1_tweak"


class OnchainWalletV1(OnchainCommon):
    ADDRESSES, READY, WITHDRAWALS = "v1_peg_in_addresses", "v1_peg_in_ready", "v1_withdrawals"
    ERRORS = WALLET_ERRORS

    def __init__(self, mint: MintWallet, chain: ChainSource, proof_only: bool = False) -> None:
        """`proof_only`: always claim with the peg-in proof (input V0), never V1."""
        self.mint, self.api, self.db, self.chain = mint, mint.api, mint.db, chain
        self.proof_only = proof_only
        self.module = mint.config.module_id("wallet")
        self.config = WalletV1Config.from_bytes(mint.config.modules[self.module].body)
        self.db.executescript(SCHEMA)
        self._create_book()
        self._scanning = asyncio.Lock()

    # -- peg-in addresses ------------------------------------------------------------------------

    def new_address(self) -> str:
        """A fresh peg-in address, its tweak key stored before it is handed out: derived from
        the seed at the next tweak index (advanced first, as the wallet client's
        NextPegInTweakIndex), or random for a federation joined before the seed."""
        module = self.mint.keys.module_secret("wallet")
        secret = None
        if module is not None:
            secret = wallet_v1_tweak_secret(module, self.mint.keys.allocate_index(TWEAK_INDEX))
        return self.store_address(new_peg_in_address(self.config, secret))

    def take_ready(self) -> str:
        """An address made ahead of time, else a new one (v1 addresses cost nothing to make)."""
        return self._take_ready() or self.new_address()

    # -- deposits --------------------------------------------------------------------------------

    async def block_count(self) -> int:
        """The federation's agreed block count: blocks below it are synced by every guardian."""
        return int(await self._call("block_count"))  # type: ignore[call-overload]

    async def scan(self) -> list[dict]:
        """Record the confirmed outputs paying our addresses, claim each one the federation
        has synced (and finish what a crash left mid-claim). Answers every deposit."""
        async with self._scanning:
            try:
                found = await self.chain.unspent(self.addresses())
            except ChainError as exc:
                raise OnchainError(f"cannot read the chain: {exc}") from None
            for out in found:
                self._record(out)
            todo = self.db.execute(
                "SELECT outpoint, state, height FROM v1_deposits WHERE state IN (?, ?) ORDER BY id",
                DEPOSIT.in_states(DepositState.SEEN, DepositState.CLAIMING),
            ).fetchall()
            count = await self.block_count() if todo else 0
            refused = []
            for row in todo:
                if row["state"] == DepositState.SEEN and row["height"] + 1 > count:
                    continue  # not yet synced by the federation: claimed on a later scan
                try:
                    await self._claim(row["outpoint"])
                except OnchainError as exc:  # this one refused (or retried later): go on
                    refused.append(f"deposit {row['outpoint']}: {exc}")
            if refused:
                raise OnchainError("; ".join(refused))
            return self.deposits()

    def _record(self, out: ChainOutput) -> None:
        """A deposit seen on chain, once; not one a recovery found claimed already (by us,
        before the data folder was lost: `v1_recovered_claims`)."""
        self.db.execute(
            "INSERT OR IGNORE INTO v1_deposits (outpoint, address, value_sat, height, block_hash,"
            " state, updated) SELECT ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS"
            " (SELECT 1 FROM v1_recovered_claims WHERE outpoint = ?)",
            (out.outpoint, out.address, out.value_sat, out.height, out.block_hash,
             DepositState.SEEN.value, time.time(), out.outpoint),
        )  # fmt: skip

    def recovered(
        self, db: sqlite3.Connection, module: DerivableSecret, next_index: int, claimed: list[str]
    ) -> None:
        """What a recovery found (fmclient/recovery.py), in its SQLite transaction: the peg-in
        addresses of tweak indexes 0..next_index watched again (deposits not yet claimed are
        found on chain and claimed), the outpoints claimed before never claimed again, and the
        next tweak index past them (as the wallet client's recovery sets NextPegInTweakIndex)."""
        for index in range(next_index):
            made = new_peg_in_address(self.config, wallet_v1_tweak_secret(module, index))
            db.execute(
                f"INSERT OR IGNORE INTO {self.ADDRESSES} VALUES (?, ?, ?, ?)",
                (made.address, made.script_pubkey.hex(), made.tweak_secret, time.time()),
            )
        db.executemany(
            "INSERT OR IGNORE INTO v1_recovered_claims VALUES (?)", [(o,) for o in claimed]
        )
        db.execute(
            "INSERT INTO key_indexes VALUES (?, ?) ON CONFLICT(name) DO UPDATE"
            " SET next = MAX(next, excluded.next)",
            (TWEAK_INDEX, next_index),
        )

    def deposits(self) -> list[dict]:
        """Every deposit, oldest first; `output_index` is our own sequence number of it (v1
        federations number nothing), `fee_sat` the federation's peg-in fee."""
        rows = self.db.execute("SELECT * FROM v1_deposits ORDER BY id").fetchall()
        keys = ("address", "outpoint", "value_sat", "fee_sat", "credit_msat", "height", "state")
        return [{"output_index": r["id"]} | {k: r[k] for k in keys} for r in rows]

    def pending_deposits(self) -> int:
        """Deposits seen on chain and not claimed yet (waiting for blocks, or being claimed)."""
        return int(
            self.db.execute(
                "SELECT COUNT(*) FROM v1_deposits WHERE state IN (?, ?)",
                DEPOSIT.in_states(DepositState.SEEN, DepositState.CLAIMING),
            ).fetchone()[0]
        )

    def _move(
        self, db: sqlite3.Connection, outpoint: str, old: DepositState, new: DepositState, **cols
    ) -> None:
        DEPOSIT.check(old, new)
        sets = "".join(f", {k} = ?" for k in cols)
        changed = db.execute(
            f"UPDATE v1_deposits SET state = ?, updated = ?{sets} WHERE outpoint = ? AND state = ?",
            (new.value, time.time(), *cols.values(), outpoint, old.value),
        ).rowcount
        if changed != 1:
            raise OnchainError(f"deposit {outpoint} is no longer {old.value}")

    async def _claim(self, outpoint: str) -> None:
        dep = self.db.execute(
            "SELECT * FROM v1_deposits WHERE outpoint = ?", (outpoint,)
        ).fetchone()
        fee_sat = -(-self.config.peg_in_fee_msat // 1000)
        if dep["state"] == DepositState.SEEN:
            if dep["value_sat"] * 1000 <= self.config.peg_in_fee_msat:
                self._move(self.db, outpoint, DepositState.SEEN, DepositState.TOO_SMALL,
                           fee_sat=fee_sat)  # fmt: skip
                return
            op_id = f"pegin-{outpoint}-{dep['claims']}"
            item, secret = await self._claim_input(dep)

            def record(db: sqlite3.Connection) -> None:
                self._move(db, outpoint, DepositState.SEEN, DepositState.CLAIMING,
                           fee_sat=fee_sat, op_id=op_id, claims=dep["claims"] + 1)  # fmt: skip

            net_msat = dep["value_sat"] * 1000 - self.config.peg_in_fee_msat
            try:
                self.mint.create_operation(
                    op_id, "pegin", [], external=False,
                    foreign=Foreign((item,), (secret,), (), net_msat), also=record,
                )  # fmt: skip
            except EcashError:  # worth less than the mint's fees on the smallest note
                self._move(self.db, outpoint, DepositState.SEEN, DepositState.TOO_SMALL,
                           fee_sat=fee_sat)  # fmt: skip
                return
            dep = self.db.execute(
                "SELECT * FROM v1_deposits WHERE outpoint = ?", (outpoint,)
            ).fetchone()
        try:
            await self.mint.finish(dep["op_id"])
        except Rejected as exc:
            cause = exc.cause
            why = self._reason(exc)
            passing = cause is None or (cause.variant, cause.module_error) in RETRY_CLAIM
            again = passing and dep["claims"] < MAX_CLAIMS
            new = DepositState.SEEN if again else DepositState.REJECTED
            self._move(self.db, outpoint, DepositState.CLAIMING, new, error=why)
            raise OnchainError(why) from None
        credit = (self.mint.operation(dep["op_id"]) or {}).get("amount_msat")
        self._move(self.db, outpoint, DepositState.CLAIMING, DepositState.CLAIMED,
                   credit_msat=credit, error=None)  # fmt: skip

    async def _claim_input(self, dep: sqlite3.Row) -> tuple[ModuleItem, bytes]:
        """The signed claim's input (V1 if the federation tracks the output, else the proof)
        and the tweak key's secret that signs it."""
        txid, vout = dep["outpoint"].split(":")
        secret = self.tweak_secret(dep["address"])
        tweak_key = PrivateKey(secret).public_key.format(compressed=True)
        try:
            raw_tx = await self.chain.transaction(txid, dep["block_hash"])
            raw_proof = await self.chain.txout_proof(txid, dep["block_hash"])
            proof = PegInProof.make(raw_proof, raw_tx, int(vout), tweak_key)
        except (ChainError, WalletV1Error) as exc:
            raise OnchainError(f"no peg-in proof: {exc}") from None
        if proof.tx_out() != (dep["value_sat"], self.config.peg_in_script(tweak_key)):
            raise OnchainError("the chain source's transaction does not pay our address")
        known = not self.proof_only and await self._call("utxo_confirmed", dep["outpoint"])
        body = claim_input_v1(proof) if known is True else claim_input_v0(proof)
        return ModuleItem(self.module, body), secret

    # -- peg-out ---------------------------------------------------------------------------------

    async def quote(self, address: str, value_sat: int) -> WithdrawQuoteV1:
        """What a withdrawal of `value_sat` to `address` costs now (`withdraw --preview`)."""
        if not isinstance(value_sat, int) or isinstance(value_sat, bool) or value_sat <= 0:
            raise OnchainError("the amount is a positive number of sat")
        try:
            parsed = parse_address(address, self.config.network)
        except AddressError as exc:
            raise OnchainError(f"bad address: {exc}") from None
        if value_sat < DUST_SAT[parsed.kind]:
            raise OnchainError(
                f"{value_sat} sat is below the dust limit of {DUST_SAT[parsed.kind]} sat"
                f" for a {parsed.kind} address"
            )
        answer = await self._call("peg_out_fees", [parsed.text, value_sat])
        if answer is None:
            raise OnchainError(
                "the federation cannot pay this out now: it holds too little on chain"
                " or has no fee rate yet"
            )
        try:
            fees = PegOutFees.from_json(answer)
        except WalletV1Error as exc:
            raise OnchainError(str(exc)) from None
        return WithdrawQuoteV1(
            parsed.text, value_sat, fees.amount_sat, self.config.peg_out_fee_msat,
            fees.sats_per_kvb, fees.total_weight,
        )  # fmt: skip

    async def withdraw(self, quote: WithdrawQuoteV1, op_id: str) -> dict:
        """Pay `quote` out of the e-cash balance (idempotent by `op_id`): the operation is
        stored before it is submitted; answers `withdrawal(op_id)`."""
        if self.withdrawal(op_id) is None:
            body = peg_out_output(quote.address, self.config.network, quote.value_sat, quote.fees)

            def record(db: sqlite3.Connection) -> None:
                db.execute(
                    "INSERT INTO v1_withdrawals VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                    (op_id, quote.address, quote.value_sat, quote.fee_sat,
                     quote.federation_fee_msat, quote.sats_per_kvb, quote.total_weight,
                     WithdrawalState.CREATED.value),
                )  # fmt: skip

            self._store_payout(op_id, ModuleItem(self.module, body), quote.total_msat, record)
        try:
            await self._finish(op_id)
        finally:
            self.withdrawal(op_id)  # mirrors the operation's state
        return self.withdrawal(op_id) or {}

    def withdrawal(self, op_id: str) -> dict | None:
        """{operation_id, state, address, value_sat, fee_sat, federation_fee_msat, btc_txid}."""
        row = self.db.execute("SELECT * FROM v1_withdrawals WHERE op_id = ?", (op_id,)).fetchone()
        if row is None:
            return None
        state = self._mirror(op_id, row["state"])
        keys = ("address", "value_sat", "fee_sat", "federation_fee_msat", "btc_txid")
        return {"operation_id": op_id, "state": state} | {k: row[k] for k in keys}

    def _mirror(self, op_id: str, old: str) -> str:
        """The withdrawal's state moved to its operation's, through the table."""
        op = self.mint.operation(op_id)
        new = op["state"] if op else old
        if new != old:
            WITHDRAWAL.check(old, new)
            self.db.execute(
                "UPDATE v1_withdrawals SET state = ? WHERE op_id = ? AND state = ?",
                (new, op_id, old),
            )
        return new

    def withdrawals(self, since: float, before: float | None, limit: int) -> list[dict]:
        """Withdrawals created in [since, before), newest first, with their state, times and
        error."""
        rows = self._withdrawal_rows(since, before, limit)
        keys = ("address", "value_sat", "fee_sat", "federation_fee_msat", "btc_txid")
        return [
            {"operation_id": r["op_id"], "state": self._mirror(r["op_id"], r["state"])}
            | {k: r[k] for k in (*keys, "created", "updated", "error")}
            for r in rows
        ]

    async def withdrawal_txid(self, op_id: str) -> str | None:
        """The federation's bitcoin transaction paying the withdrawal, once accepted."""
        w = self.withdrawal(op_id)
        if w is None or w["state"] != WithdrawalState.DONE:
            return None
        if w["btc_txid"] is None:
            op = self.mint.operation(op_id) or {}
            answer = await self.api.current_consensus(
                "await_output_outcome", {"txid": op["txid"], "out_idx": 0}, long_poll=True
            )
            try:
                r = Reader(from_serde(answer), "output outcome")
                module_id, body = r.framed()
                r.done()
                if module_id != self.module:
                    raise WalletV1Error(f"the outcome is module {module_id}'s")
                txid = peg_out_outcome_txid(body.raw(body.remaining()))
            except ValueError as exc:
                raise OnchainError(
                    f"the federation's answer is not a peg-out outcome: {exc}"
                ) from None
            self.db.execute("UPDATE v1_withdrawals SET btc_txid = ? WHERE op_id = ?", (txid, op_id))
            return txid
        return str(w["btc_txid"])
