"""A mint wallet's operations: `WalletOperations`, the part of `MintWallet` (fmclient/wallet.py)
that builds, stores, submits and settles the wallet's transactions, and issues their new notes
from the guardians' threshold signature shares. Other modules' inputs and outputs join these
transactions as `Foreign` parts; a transaction the federation refuses is `Rejected`.

Operations, by id, each step committed before the next (a crash anywhere resumes from the
last committed step, `resume()`):

    receive (reissue of someone's notes into ours) / split (ours into the denominations a
    spend needs): `OperationState` (fmclient/wallet_states.py): created (tx signed, output
    secrets stored) -> submitted -> done (notes stored) | rejected (the federation refused:
    nothing spent, nothing credited)
    spend:  done at once (notes marked exported, the e-cash string stored)

Notes: `NoteState`: unspent -> spending (an operation's input) -> spent, or -> exported.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from coincurve import PrivateKey

from . import tbs
from .api import FederationApi
from .ecash import Dialect, EcashError, Note, note_valid
from .tx import ModuleItem, Transaction, TxRejected, submission_outcome, to_serde
from .wallet_keys import WalletKeys
from .wallet_states import NOTE, OPERATION, NoteState, OperationState

log = logging.getLogger(__name__)


class Rejected(EcashError):
    """The federation refused the operation's transaction: nothing was spent or credited.
    `cause` (when known): the TxRejected, with the module and its error variant."""

    def __init__(self, message: str, cause: TxRejected | None = None) -> None:
        super().__init__(message)
        self.cause = cause


@dataclass(frozen=True)
class Foreign:
    """Another module's part of a transaction the wallet builds: its inputs (with the keys
    that sign them) and outputs, and what they bring net of that module's fees (negative:
    what they cost)."""

    inputs: tuple[ModuleItem, ...] = ()
    keys: tuple[bytes, ...] = ()
    outputs: tuple[ModuleItem, ...] = ()
    net_msat: int = 0


class WalletOperations:
    """The operations of a wallet whose SQLite file, federation and keys `MintWallet.__init__`
    sets up (the attributes below)."""

    db: sqlite3.Connection
    api: FederationApi
    mint: Dialect
    module: int
    keys: WalletKeys
    _checkpoint: Callable[[str], None]
    _locks: dict[str, tuple[asyncio.Lock, int]]  # op id -> (lock, users)

    @contextmanager
    def transaction(self):  # type: ignore[no-untyped-def]
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def operation(self, op_id: str) -> dict | None:
        row = self.db.execute("SELECT * FROM operations WHERE id = ?", (op_id,)).fetchone()
        return (
            None
            if row is None
            else {k: row[k] for k in ("id", "kind", "state", "txid", "amount_msat", "error")}
        )

    def _outputs_for(self, available_msat: int) -> list[int]:
        """Denominations of new notes for `available_msat` after every output's fee: the
        largest amount (a note per binary digit) whose notes and their fees fit; what is
        below the smallest note we issue (512 msat when fees are charged) goes to the
        federation. Fewer notes are not always more: both the notes' count (base fee) and
        value (ppm) cost, so the amount is searched down a smallest note at a time, from a
        bound no answer exceeds: c + fees(c) <= available and fees(c) >= c·ppm - one msat
        per note (each note's ppm part is rounded down)."""
        ds_all = self.mint.denominations
        lo, hi = ds_all[0], ds_all[-1]
        span = (1 << hi) - (1 << lo)
        # the fees' ppm from below (a rounded-down difference over a span of >= 2^20 msat)
        ppm = (self.mint.fee(hi) - self.mint.fee(lo)) * 1_000_000 // span if span >> 20 else 0
        credit = (available_msat + len(ds_all)) * 1_000_000 // (1_000_000 + ppm) >> lo << lo
        while credit >= 1 << lo:
            ds = [d for d in ds_all if credit >> d & 1]
            if sum((1 << d) + self.mint.fee(d) for d in ds) <= available_msat:
                return ds
            credit -= 1 << lo
        return []

    def create_operation(
        self,
        op_id: str,
        kind: str,
        notes: list[Note],
        external: bool,
        wanted: list[int] | None = None,
        foreign: Foreign | None = None,
        also: Callable[[sqlite3.Connection], object] | None = None,
    ) -> None:
        """Sign and store the transaction spending `notes` (with its output secrets) before
        anything is sent. `wanted`: denominations to make first (a split), the rest change.
        `foreign`: another module's inputs and outputs (a peg-in claim, a peg-out), first in
        their lists, their value net of that module's fees. `also(db)` runs in the same SQLite
        transaction (the caller's own record of the operation)."""
        foreign = foreign or Foreign()
        available = sum(n.amount_msat - self.mint.fee(n.denomination) for n in notes)
        available += foreign.net_msat
        denominations = list(wanted or [])
        available -= sum((1 << d) + self.mint.fee(d) for d in denominations)
        if available < 0:
            raise EcashError("the notes do not cover the amount and the federation's fees")
        denominations += self._outputs_for(available)
        if not denominations and not foreign.outputs:
            raise EcashError("the e-cash is worth less than the fees of reissuing it")
        outputs, items = [], list(foreign.outputs)
        for d, (secret, r, tweak, index) in zip(
            denominations, self.keys.note_keys(denominations), strict=True
        ):
            nonce = PrivateKey(secret).public_key.format(compressed=True)
            blinded = tbs.blind(self.mint.message(nonce), r)
            output = {
                "d": d,
                "secret": secret.hex(),
                "r": tbs.scalar_to_le(r).hex(),
                "blinded": tbs.to_bytes(blinded).hex(),
                "idx": len(items),
            }
            if tweak is not None:
                output["tweak"] = tweak.hex()
            if index is not None:
                output["note_index"] = index
            outputs.append(output)
            items.append(ModuleItem(self.module, self.mint.output(d, blinded, tweak)))
        inputs = list(foreign.inputs) + [ModuleItem(self.module, self.mint.input(n)) for n in notes]
        tx = Transaction(inputs, items).sign(list(foreign.keys) + [n.secret for n in notes])
        now = time.time()
        credit = sum(1 << d for d in denominations)
        with self.transaction() as db:
            db.execute(
                "INSERT INTO operations (id, kind, state, tx, txid, outputs, amount_msat, created, updated)"
                " VALUES (?, ?, 'created', ?, ?, ?, ?, ?, ?)",
                (op_id, kind, tx.to_bytes(), tx.txid, json.dumps(outputs), credit, now, now),
            )
            for n in notes:
                if external:
                    db.execute(
                        "INSERT OR IGNORE INTO notes VALUES (?, ?, ?, ?, 'spending', ?)",
                        (n.nonce.hex(), n.denomination, n.secret, n.signature, op_id),
                    )
                elif not self._move_note(
                    db, n.nonce.hex(), NoteState.UNSPENT, NoteState.SPENDING, op_id
                ):
                    raise EcashError("a note was taken by another operation; try again")
            if also is not None:
                also(db)
        self._checkpoint("created")

    async def finish(self, op_id: str) -> dict:
        """Take the operation from its committed step to its end; one run per operation at a
        time (a resume and a caller never both submit or settle it)."""
        lock, users = self._locks.get(op_id, (asyncio.Lock(), 0))
        self._locks[op_id] = (lock, users + 1)
        try:
            async with lock:
                return await self._finish(op_id)
        finally:
            lock, users = self._locks[op_id]
            if users == 1:
                del self._locks[op_id]
            else:
                self._locks[op_id] = (lock, users - 1)

    async def _finish(self, op_id: str) -> dict:
        row = self.db.execute("SELECT * FROM operations WHERE id = ?", (op_id,)).fetchone()
        if row["state"] == OperationState.CREATED:
            try:
                outcome = await self.api.current_consensus(
                    "submit_transaction", to_serde(bytes(row["tx"]))
                )
                submission_outcome(outcome)
            except TxRejected as exc:
                spent = exc.module == self.module and exc.module_error == self.mint.spent_coin
                why = "the notes are already spent" if spent else str(exc)
                self._settle(op_id, why)  # asked again, the operation answers the same
                raise Rejected(f"rejected: {why}", exc) from None
            self._checkpoint("sent")  # accepted, not yet recorded as such
            self._checkpoint(f"{row['kind']}-sent")  # the same, for one kind of operation
            with self.transaction() as db:
                self._move(db, op_id, OperationState.CREATED, OperationState.SUBMITTED)
            self._checkpoint("submitted")
            self._checkpoint(f"{row['kind']}-submitted")
            row = self.db.execute("SELECT * FROM operations WHERE id = ?", (op_id,)).fetchone()
        if row["state"] == OperationState.SUBMITTED:
            if row["txid"] is not None:  # a recovered note's issuance names no transaction
                await self.api.current_consensus("await_transaction", row["txid"], long_poll=True)
            await self._issue(row)
            self._checkpoint("done")
        elif row["state"] == OperationState.REJECTED:
            raise Rejected(f"rejected: {row['error']}")
        return self.operation(op_id) or {}

    async def _issue(self, row: sqlite3.Row) -> None:
        """Collect threshold signature shares per output, combine, unblind, verify, store the
        notes; the operation is done in the same SQLite transaction.

        Shares are combined first and only the notes checked (one pairing check a note): a
        wrong share makes its note's signature fail, with overwhelming probability. Only then
        is every share checked on its own (one pairing check a share and guardian), so a
        guardian answering garbage is left out and threshold honest ones are found."""
        outputs = json.loads(row["outputs"])
        if not outputs:
            notes: list[Note] = []
        else:
            notes = await self._signed_notes(row, outputs, check_shares=False)
            if not notes:
                log.warning(
                    "operation %s: a combined signature failed; checking each share", row["id"]
                )
                notes = await self._signed_notes(row, outputs, check_shares=True)
                if not notes:
                    raise EcashError("the combined signatures of verified shares do not verify")
        with self.transaction() as db:
            for n in notes:
                db.execute(
                    "INSERT OR IGNORE INTO notes VALUES (?, ?, ?, ?, 'unspent', NULL)",
                    (n.nonce.hex(), n.denomination, n.secret, n.signature),
                )
            self._move_inputs(db, row["id"], NoteState.SPENT)
            self._move(db, row["id"], OperationState.SUBMITTED, OperationState.DONE)

    async def _signed_notes(
        self, row: sqlite3.Row, outputs: list[dict], check_shares: bool
    ) -> list[Note]:
        """The outputs' notes from threshold guardians' shares (each share checked against its
        guardian's key when `check_shares`), or [] when a combined signature does not verify."""
        blinded = [tbs.g1(bytes.fromhex(o["blinded"])) for o in outputs]

        def verify(peer: int, answer: Any) -> list | None:
            shares = self.mint.decode_shares(answer, len(outputs))
            if shares is None or not check_shares:
                return shares
            try:
                ok = all(
                    tbs.verify_share(b, s, self.mint.share_key(o["d"], peer))
                    for b, s, o in zip(blinded, shares, outputs, strict=True)
                )
            except (KeyError, tbs.TbsError):  # a guardian or tier the config has no key for
                return None
            return shares if ok else None

        first = outputs[0].get("idx", 0)  # other modules' outputs come first
        if row["txid"] is None:  # recovered mintv2 notes: their shares by blinded message
            method, params = self.mint.recovery_shares_request([o["blinded"] for o in outputs])
        else:
            method, params = self.mint.shares_request(row["txid"], first, first + len(outputs))
        got = await self.api.verified(method, params, verify, long_poll=True)
        notes = []
        for i, o in enumerate(outputs):
            combined = tbs.combine({peer: shares[i] for peer, shares in got.items()})
            sig = tbs.unblind(combined, tbs.scalar_from_le(bytes.fromhex(o["r"])))
            note = Note(o["d"], bytes.fromhex(o["secret"]), tbs.to_bytes(sig))
            if not note_valid(self.mint, note):
                return []
            notes.append(note)
        return notes

    def record_issuance(
        self, db: sqlite3.Connection, op_id: str, txid: str | None, outputs: list[dict]
    ) -> None:
        """Notes of ours the federation issued earlier (found by a recovery), to be signed and
        stored by `finish`: an operation `recovery`, already submitted, in the caller's SQLite
        transaction. `txid` None: their shares are asked by blinded message (mintv2)."""
        now = time.time()
        db.execute(
            "INSERT OR IGNORE INTO operations (id, kind, state, txid, outputs, amount_msat,"
            " created, updated) VALUES (?, 'recovery', ?, ?, ?, ?, ?, ?)",
            (op_id, OperationState.SUBMITTED, txid, json.dumps(outputs),
             sum(1 << o["d"] for o in outputs), now, now),
        )  # fmt: skip

    def _move(
        self, db: sqlite3.Connection, op_id: str, old: OperationState, new: OperationState
    ) -> None:
        """The operation from `old` to `new`, if the table allows it and it is still `old`."""
        OPERATION.check(old, new)
        db.execute(
            "UPDATE operations SET state = ?, updated = ? WHERE id = ? AND state = ?",
            (new, time.time(), op_id, old),
        )

    def _move_note(
        self, db: sqlite3.Connection, nonce: str, old: NoteState, new: NoteState, op_id: str | None
    ) -> bool:
        """One note from `old` to `new` (its operation `op_id`); False if it was not `old`."""
        NOTE.check(old, new)
        return (
            db.execute(
                "UPDATE notes SET state = ?, op_id = ? WHERE nonce = ? AND state = ?",
                (new, op_id, nonce, old),
            ).rowcount
            == 1
        )

    def _move_inputs(self, db: sqlite3.Connection, op_id: str, new: NoteState) -> None:
        """An operation's input notes, `spending`, to `new` (spent; or unspent again, freed)."""
        NOTE.check(NoteState.SPENDING, new)
        db.execute(
            "UPDATE notes SET state = ?, op_id = CASE WHEN ? = 'unspent' THEN NULL ELSE op_id END"
            " WHERE op_id = ? AND state = ?",
            (new, new, op_id, NoteState.SPENDING),
        )

    def _settle(self, op_id: str, error: str) -> None:
        """A refused reissue: our own notes (a split's) are unspent again; someone else's
        (a receive's) were never ours and are forgotten."""
        with self.transaction() as db:
            kind = db.execute("SELECT kind FROM operations WHERE id = ?", (op_id,)).fetchone()[0]
            self._move(db, op_id, OperationState.CREATED, OperationState.REJECTED)
            db.execute(
                "UPDATE operations SET error = ?, amount_msat = 0 WHERE id = ?", (error, op_id)
            )
            if kind == "receive":
                db.execute("DELETE FROM notes WHERE op_id = ? AND state = 'spending'", (op_id,))
            else:
                self._move_inputs(db, op_id, NoteState.UNSPENT)

    async def resume(self) -> None:
        """Finish every operation a crash left between steps."""
        for row in self.db.execute(
            "SELECT id FROM operations WHERE state IN ('created', 'submitted')"
        ).fetchall():
            with suppress(EcashError):
                await self.finish(row["id"])
