"""What the on-chain wallets of both module versions (walletv2 `onchain.py`, wallet v1
`onchain_v1.py`) do alike, in the mint wallet's SQLite file: the book of peg-in addresses with
the secrets of their tweak keys, the payment of a peg-out out of our notes (stored with the
caller's own record in one SQLite transaction before anything is sent), and the federation's
refusals as one-line reasons. Each version names its own tables and its module's errors.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from .ecash import EcashError
from .tx import ModuleItem
from .wallet import MintWallet
from .wallet_operations import Foreign, Rejected
from .walletv2 import PegInAddress


class OnchainError(ValueError):
    """A withdrawal or deposit that cannot be made; one line saying why. Nothing changed."""


class OnchainCommon:
    ADDRESSES = "peg_in_addresses"  # handed out: watched for deposits
    READY = "peg_in_ready"  # made ahead of time, not handed out yet
    WITHDRAWALS = "withdrawals"  # one row per peg-out operation (`op_id`)
    ERRORS: dict[tuple[int, int], str] = {}  # (input 4 | output 5, the module's error) -> why

    mint: MintWallet
    db: sqlite3.Connection
    module: int

    def _create_book(self) -> None:
        self.db.executescript(
            f"CREATE TABLE IF NOT EXISTS {self.ADDRESSES} (address TEXT PRIMARY KEY,"
            " script TEXT NOT NULL UNIQUE, tweak_secret BLOB NOT NULL, created REAL NOT NULL);"
            f"CREATE TABLE IF NOT EXISTS {self.READY} (address TEXT PRIMARY KEY,"
            " script TEXT NOT NULL, tweak_secret BLOB NOT NULL);"
        )

    async def _call(self, endpoint: str, params: object = None) -> object:
        return await self.mint.api.current_consensus(f"module_{self.module}_{endpoint}", params)

    # -- peg-in addresses ------------------------------------------------------------------------

    def store_address(self, made: PegInAddress) -> str:
        """Keep an address made elsewhere (e.g. in a thread) before handing it out."""
        self.db.execute(
            f"INSERT INTO {self.ADDRESSES} VALUES (?, ?, ?, ?)",
            (made.address, made.script_pubkey.hex(), made.tweak_secret, time.time()),
        )
        return made.address

    def ready_count(self) -> int:
        return int(self.db.execute(f"SELECT COUNT(*) FROM {self.READY}").fetchone()[0])

    def add_ready(self, made: PegInAddress) -> None:
        """An address made ahead of time, not handed out yet."""
        self.db.execute(
            f"INSERT INTO {self.READY} VALUES (?, ?, ?)",
            (made.address, made.script_pubkey.hex(), made.tweak_secret),
        )

    def _take_ready(self) -> str | None:
        with self.mint.transaction() as db:
            row = db.execute(f"SELECT * FROM {self.READY} LIMIT 1").fetchone()
            if row is None:
                return None
            db.execute(f"DELETE FROM {self.READY} WHERE address = ?", (row["address"],))
            db.execute(
                f"INSERT INTO {self.ADDRESSES} VALUES (?, ?, ?, ?)",
                (row["address"], row["script"], row["tweak_secret"], time.time()),
            )
            return str(row["address"])

    def script_of(self, address: str) -> str | None:
        """The scriptPubKey (hex) of one of our peg-in addresses."""
        row = self.db.execute(
            f"SELECT script FROM {self.ADDRESSES} WHERE address = ?", (address,)
        ).fetchone()
        return row[0] if row else None

    def tweak_secret(self, address: str) -> bytes:
        row = self.db.execute(
            f"SELECT tweak_secret FROM {self.ADDRESSES} WHERE address = ?", (address,)
        ).fetchone()
        return bytes(row[0])

    def addresses(self) -> list[str]:
        rows = self.db.execute(f"SELECT address FROM {self.ADDRESSES} ORDER BY created")
        return [r[0] for r in rows.fetchall()]

    # -- peg-out ---------------------------------------------------------------------------------

    def _store_payout(
        self,
        op_id: str,
        output: ModuleItem,
        cost_msat: int,
        record: Callable[[sqlite3.Connection], object],
    ) -> None:
        """The peg-out's e-cash operation, paying `cost_msat` out of our notes, stored with the
        caller's `record` before anything is sent."""
        try:
            notes = self.mint.choose(cost_msat)
            self.mint.create_operation(
                op_id, "pegout", notes, external=False,
                foreign=Foreign((), (), (output,), -cost_msat), also=record,
            )  # fmt: skip
        except EcashError as exc:
            raise OnchainError(str(exc)) from None

    def withdrawal(self, op_id: str) -> dict | None:
        """The withdrawal stored as `op_id` (each version's rows), or None."""
        raise NotImplementedError

    async def finish_withdrawal(self, op_id: str) -> dict | None:
        """A withdrawal asked for again by its id (after a crash, or a lost answer): finished
        from where it is, never quoted nor paid again; None when `op_id` names none. A peg-out
        the federation accepted leaves it nothing to quote another from until it confirms."""
        if self.withdrawal(op_id) is None:
            return None
        try:
            await self._finish(op_id)
        finally:
            self.withdrawal(op_id)  # mirrors the operation's state
        return self.withdrawal(op_id)

    async def _finish(self, op_id: str) -> None:
        """Submit or follow the operation until the federation accepted or refused it."""
        op = self.mint.operation(op_id)
        if op is not None and op["state"] in ("created", "submitted"):
            try:
                await self.mint.finish(op_id)
            except Rejected as exc:
                raise OnchainError(self._reason(exc)) from None

    def _withdrawal_rows(self, since: float, before: float | None, limit: int) -> list[sqlite3.Row]:
        """Withdrawals created in [since, before), newest first, with their operation's
        `op_state`, times and error."""
        return self.db.execute(
            f"SELECT w.*, o.state AS op_state, o.created, o.updated, o.error"
            f" FROM {self.WITHDRAWALS} w JOIN operations o ON o.id = w.op_id"
            " WHERE o.created >= ? AND o.created < ? ORDER BY o.created DESC LIMIT ?",
            (since, before if before is not None else float("inf"), limit),
        ).fetchall()

    def _reason(self, exc: Rejected) -> str:
        cause = exc.cause
        if cause is not None and cause.module == self.module:
            return self.ERRORS.get((cause.variant, cause.module_error), str(exc))
        return str(exc)
