"""An e-cash wallet in one SQLite file: receive (reissue) and spend out-of-band e-cash of the
federation's e-cash module, mint v1 (`mint`) or `mintv2`, spoken by its version's dialect
(fmclient/ecash_dialects.py). `MintWallet` opens the file (`WALLET_DB`, `SCHEMA`) and holds the
notes; it is built on `WalletOperations` (fmclient/wallet_operations.py), the operations that
carry its transactions (and other modules' parts in them), their states and their resumption.

    receive: a reissue of someone's notes into ours (an operation `receive`)
    spend:   the e-cash string of exact notes, after a `split` of ours into the denominations
             the spend needs when no exact set is held

A receive's id is derived from the e-cash it takes, so taking the same e-cash twice is one
operation: the second call answers the first's result and credits nothing more.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from gwcore.files import private_file
from gwcore.schema import Schema, upgrade

from .api import FederationApi
from .config import ClientConfig
from .derive import FederationSecrets
from .ecash import EcashError, Note, note_valid, parse_for
from .ecash_dialects import DIALECTS, dialect_for
from .wallet_keys import WalletKeys
from .wallet_operations import WalletOperations
from .wallet_states import NoteState

# a Fedimint client's wallet (notes, operations, and the tables its modules and the actor's flows
# add): its schema's version and migrations (gwcore/schema.py)
WALLET_DB = Schema("fedimint.sqlite")
SCHEMA = """
CREATE TABLE IF NOT EXISTS notes (
    nonce TEXT PRIMARY KEY, denomination INTEGER NOT NULL, secret BLOB NOT NULL,
    signature BLOB NOT NULL, state TEXT NOT NULL, op_id TEXT
);
CREATE TABLE IF NOT EXISTS key_indexes (name TEXT PRIMARY KEY, next INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS operations (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL, tx BLOB, txid TEXT,
    outputs TEXT, amount_msat INTEGER NOT NULL DEFAULT 0, ecash TEXT, error TEXT,
    created REAL NOT NULL, updated REAL NOT NULL
);
"""


class MintWallet(WalletOperations):
    def __init__(
        self,
        path: Path,
        config: ClientConfig,
        api: FederationApi,
        checkpoint: Callable[[str], None] | None = None,
        secrets: FederationSecrets | None = None,
        tweak_pool_size: int = 32,
    ) -> None:
        """`checkpoint(step)` is called after each committed step ("created", "submitted",
        "done"; "sent": accepted by the federation, not yet recorded) and, for "sent" and
        "submitted", again as "<kind>-<step>" (e.g. "pegout-submitted"): crash tests kill the
        process there. `secrets`: the federation's secrets from the gateway's seed (new notes
        and peg-in keys derived as fedimint's client modules derive theirs, so a recovery from
        the seed finds them); None: random ones (a federation joined before the seed).
        `tweak_pool_size`: mintv2 tweaks kept ground ahead of need (tweak_pool.py)."""
        self.config, self.api = config, api
        self.secrets = secrets
        self._checkpoint = checkpoint or (lambda step: None)
        self.mint = dialect_for(config)  # fee(denomination), keys, items, e-cash strings
        self.module = self.mint.module
        self.db = sqlite3.connect(private_file(path), isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        upgrade(self.db, path, WALLET_DB)
        self.db.executescript(SCHEMA)
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}  # op id -> (lock, users)
        self.keys = WalletKeys(
            self.db, self.transaction, config, self.mint, secrets, tweak_pool_size
        )

    def balance_msat(self) -> int:
        row = self.db.execute(
            "SELECT COALESCE(SUM(1 << denomination), 0) FROM notes WHERE state = 'unspent'"
        ).fetchone()
        return int(row[0])

    def note_amounts(self) -> list[int]:
        """The amounts (msat) of our unspent notes."""
        rows = self.db.execute("SELECT denomination FROM notes WHERE state = 'unspent'")
        return [1 << r[0] for r in rows.fetchall()]

    # -- receive -------------------------------------------------------------------------------

    async def receive(self, text: str) -> dict:
        """Reissue e-cash into this wallet: the operation {id, kind, state, txid, amount_msat
        (credited, after the federation's fees), error}. Bad or foreign e-cash is EcashError and records nothing;
        e-cash already spent is EcashError `rejected` (nothing credited)."""
        ecash = parse_for(self.mint, DIALECTS, text)
        fed = ecash.federation
        if not fed or not self.config.federation_id.startswith(fed):
            raise EcashError(f"the e-cash is of federation {fed}, not {self.config.federation_id}")
        op_id = hashlib.sha256(ecash.key).hexdigest()[:32]
        if self.operation(op_id) is None:
            bad = [i for i, n in enumerate(ecash.notes) if not note_valid(self.mint, n)]
            if bad:
                raise EcashError(f"notes {bad} do not carry the federation's signature")
            self.create_operation(op_id, "receive", list(ecash.notes), external=True)
        return await self.finish(op_id)

    # -- spend ---------------------------------------------------------------------------------

    async def spend(self, amount_msat: int, op_id: str | None = None) -> dict:
        """Notes worth `amount_msat` rounded up to the smallest note we issue (512 msat when
        fees are charged), as the module's e-cash string: {operation_id, amount_msat, ecash}.
        Splits notes first when no exact set is held."""
        if not isinstance(amount_msat, int) or isinstance(amount_msat, bool) or amount_msat <= 0:
            raise EcashError("the amount is a positive number of msat")
        op_id = op_id or os.urandom(16).hex()
        done = self.db.execute(
            "SELECT * FROM operations WHERE id = ? AND kind = 'spend'", (op_id,)
        ).fetchone()
        if done is not None:
            return {
                "operation_id": op_id,
                "amount_msat": done["amount_msat"],
                "ecash": done["ecash"],
            }
        unit = 1 << self.mint.denominations[0]
        target = -(-amount_msat // unit) * unit
        wanted = [d for d in self.mint.denominations if target >> d & 1]
        if self._exact(wanted) is None:
            await self._split(wanted, target)
        exact = self._exact(wanted)
        if exact is None:
            raise EcashError("could not make the exact notes")
        ecash = self.mint.format(self.config.federation_id, exact)
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO operations (id, kind, state, amount_msat, ecash, created, updated)"
                " VALUES (?, 'spend', 'done', ?, ?, ?, ?)",
                (op_id, target, ecash, now, now),
            )
            for n in exact:
                if not self._move_note(
                    db, n.nonce.hex(), NoteState.UNSPENT, NoteState.EXPORTED, op_id
                ):
                    raise EcashError("a note was taken by another operation; try again")
        return {"operation_id": op_id, "amount_msat": target, "ecash": ecash}

    def _exact(self, wanted: list[int]) -> list[Note] | None:
        out = []
        for d in wanted:
            row = self.db.execute(
                "SELECT * FROM notes WHERE state = 'unspent' AND denomination = ? LIMIT 1", (d,)
            ).fetchone()
            if row is None:
                return None
            out.append(Note(d, bytes(row["secret"]), bytes(row["signature"])))
        return out

    def choose(self, need_msat: int) -> list[Note]:
        """Our unspent notes, largest first, until they cover `need_msat` after their own input
        fees and a change output's; EcashError when the balance does not."""
        rows = self.db.execute(
            "SELECT * FROM notes WHERE state = 'unspent' ORDER BY denomination DESC"
        ).fetchall()
        chosen, value = [], 0
        for row in rows:
            if value >= need_msat + self.mint.fee(row["denomination"]) * (len(chosen) + 1):
                break
            chosen.append(Note(row["denomination"], bytes(row["secret"]), bytes(row["signature"])))
            value += (1 << row["denomination"]) - self.mint.fee(row["denomination"])
        if value < need_msat:
            raise EcashError(
                f"the balance {self.balance_msat()} msat does not cover {need_msat} msat and fees"
            )
        return chosen

    async def _split(self, wanted: list[int], target: int) -> None:
        chosen = self.choose(target + sum(self.mint.fee(d) for d in wanted))
        op_id = os.urandom(16).hex()
        self.create_operation(op_id, "split", chosen, external=False, wanted=wanted)
        await self.finish(op_id)
