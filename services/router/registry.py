"""The router's registry of federations: federation id <-> virtual short channel id <-> program
<-> state, in the router's own SQLite database.

A federation's short channel id is derived from its id (`virtual_scid`: block height 0, which no
real channel has), persisted, and never reused (a federation that leaves keeps its row, in state
`left`, for audit): the same federation gets the same scid after a lost data folder, so the
route hints of its users' LNv1 invoices stay ours (registries made before this keep 1, 2, …).
Payment hashes of the actors' hold invoices (LNv2 receives) map to their federation the same
way: claimed once, by one federation.

Payment hashes this gateway pays (outgoing contracts of every federation, LNv1-style and LNv2,
Lightning or swap) are claimed by one contract before anything is paid, so a hash is paid once
for the whole gateway: a contract of another user, in any federation, for a hash held by
another contract is refused. The claim is released only when its contract failed definitely
(it will never pay): then another contract may take the hash.

    (free) --claim by contract C--> held by C --C failed definitely--> released --claim by D--> held by D

Federation states:

    connecting --actor READY and registered--> running --actor lost--> crashed --READY--> running
         \\                                        \\--leave--> leaving --stopped--> left
          \\--connect failed--> failed
    connecting (--recover) --actor READY--> recovering --the actor's recovery done--> running

A federation connected with `connect-fed --recover` is kept in `recoveries` (its actor is always
started with GATEWAY_ACTOR_RECOVER; the actor alone decides whether there is anything to
recover) until its actor says the recovery is done; meanwhile it is `recovering` (or `crashed`).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from gwcore.files import private_file
from gwcore.invites import FEDIMINT
from gwcore.schema import Migration, Schema, upgrade

# the router's registry: its schema's version and migrations (gwcore/schema.py)
ROUTER_DB = Schema(
    "router.sqlite",
    (
        Migration(
            2,
            "federations keep the order they were added in (scids no longer follow it)",
            (
                "ALTER TABLE federations ADD COLUMN position INTEGER NOT NULL DEFAULT 0",
                "UPDATE federations SET position = scid",
            ),
        ),
    ),
)
SCHEMA = """
CREATE TABLE IF NOT EXISTS federations (
    scid INTEGER PRIMARY KEY AUTOINCREMENT, federation_id TEXT UNIQUE NOT NULL, name TEXT NOT NULL,
    invite_code TEXT NOT NULL, api_url TEXT NOT NULL, program TEXT NOT NULL, state TEXT NOT NULL,
    created INTEGER NOT NULL, updated INTEGER NOT NULL, position INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS payment_hashes (
    payment_hash TEXT PRIMARY KEY, federation_id TEXT NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS federation_api_urls (
    federation_id TEXT PRIMARY KEY, api_urls TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS recoveries (
    federation_id TEXT PRIMARY KEY, done INTEGER NOT NULL DEFAULT 0, updated INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outgoing_hashes (
    payment_hash TEXT PRIMARY KEY, federation_id TEXT NOT NULL, contract_id TEXT NOT NULL,
    state TEXT NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL);
"""
STATES = ("connecting", "recovering", "running", "crashed", "leaving", "left", "failed")
# the federations whose actor must run: the router (re)starts their programs from this table
SERVED = ("connecting", "recovering", "running", "crashed")
VIRTUAL_SCIDS = 1 << 40  # scids below this are at block height 0: never a real channel's


def virtual_scid(federation_id: str, attempt: int = 0) -> int:
    """The scid a federation gets here: 40 bits of SHA-256 of its id (another `attempt` only
    if that one is taken), so at block height 0."""
    digest = hashlib.sha256(f"fmgw-scid:{federation_id}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:5], "big") or 1


@dataclass(frozen=True)
class FederationEntry:
    federation_id: str
    scid: int
    name: str
    invite_code: str
    api_url: str
    program: str
    state: str

    def json(self) -> dict:
        return {
            "federation_id": self.federation_id,
            "scid": self.scid,
            "name": self.name,
            "api_url": self.api_url,
            "program": self.program,
            "state": self.state,
            "invite_code": self.invite_code,
            "kind": FEDIMINT,
        }


class FederationRegistry:
    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(private_file(path), isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        upgrade(self.db, path, ROUTER_DB)
        self.db.executescript(SCHEMA)
        self.lock = threading.Lock()

    @staticmethod
    def _entry(row: sqlite3.Row) -> FederationEntry:
        return FederationEntry(
            row["federation_id"],
            row["scid"],
            row["name"],
            row["invite_code"],
            row["api_url"],
            row["program"],
            row["state"],
        )

    def add(
        self, federation_id: str, name: str, invite_code: str, api_url: str, program: str
    ) -> FederationEntry:
        """Register a federation (or return it if known); allocates its scid once, forever."""
        now = int(time.time())
        with self.lock:
            row = self.db.execute(
                "SELECT * FROM federations WHERE federation_id = ?", (federation_id,)
            ).fetchone()
            if row is None:
                scid, attempt = virtual_scid(federation_id), 0
                while self.by_scid(scid) is not None:  # taken (40 bits: almost never)
                    attempt += 1
                    scid = virtual_scid(federation_id, attempt)
                self.db.execute(
                    "INSERT INTO federations (scid, federation_id, name, invite_code, api_url,"
                    " program, state, created, updated, position) VALUES (?, ?, ?, ?, ?, ?,"
                    " 'connecting', ?, ?, (SELECT COALESCE(MAX(position), 0) + 1 FROM federations))",
                    (scid, federation_id, name, invite_code, api_url, program, now, now),
                )  # fmt: skip
                row = self.db.execute(
                    "SELECT * FROM federations WHERE federation_id = ?", (federation_id,)
                ).fetchone()
            return self._entry(row)

    def set_api_urls(self, federation_id: str, api_urls: dict[int, str]) -> None:
        """The guardians' websocket URLs given at connect (a federation whose invite lists only
        iroh endpoints): kept, so its actor can be started again from this database alone."""
        with self.lock:
            self.db.execute(
                "INSERT OR REPLACE INTO federation_api_urls VALUES (?, ?)",
                (federation_id, json.dumps({str(k): v for k, v in sorted(api_urls.items())})),
            )

    def api_urls(self, federation_id: str) -> dict[int, str]:
        row = self.db.execute(
            "SELECT api_urls FROM federation_api_urls WHERE federation_id = ?", (federation_id,)
        ).fetchone()
        return {int(k): v for k, v in json.loads(row["api_urls"]).items()} if row else {}

    def set_state(self, federation_id: str, state: str) -> None:
        assert state in STATES
        with self.lock:
            self.db.execute(
                "UPDATE federations SET state = ?, updated = ? WHERE federation_id = ?",
                (state, int(time.time()), federation_id),
            )

    def start_recovery(self, federation_id: str) -> None:
        """The federation is connected by `connect-fed --recover` (kept until it is done)."""
        with self.lock:
            self.db.execute(
                "INSERT OR IGNORE INTO recoveries VALUES (?, 0, ?)",
                (federation_id, int(time.time())),
            )

    def recovery(self, federation_id: str) -> str | None:
        """None (connected without --recover), "recovering" or "recovered"."""
        row = self.db.execute(
            "SELECT done FROM recoveries WHERE federation_id = ?", (federation_id,)
        ).fetchone()
        return None if row is None else "recovered" if row["done"] else "recovering"

    def set_answering(self, federation_id: str) -> None:
        """Its actor answers: `running`, or `recovering` while a recovery it was asked is not
        done yet."""
        recovering = self.recovery(federation_id) == "recovering"
        self.set_state(federation_id, "recovering" if recovering else "running")

    def finish_recovery(self, federation_id: str) -> bool:
        """Its actor's recovery is done: `running` from now (False: no recovery was asked)."""
        with self.lock:
            done = self.db.execute(
                "UPDATE recoveries SET done = 1, updated = ? WHERE federation_id = ?",
                (int(time.time()), federation_id),
            ).rowcount
            self.db.execute(
                "UPDATE federations SET state = 'running', updated = ?"
                " WHERE federation_id = ? AND state = 'recovering'",
                (int(time.time()), federation_id),
            )
        return bool(done)

    def get(self, federation_id: str) -> FederationEntry | None:
        row = self.db.execute(
            "SELECT * FROM federations WHERE federation_id = ?", (federation_id,)
        ).fetchone()
        return self._entry(row) if row else None

    def by_scid(self, scid: int) -> FederationEntry | None:
        row = self.db.execute("SELECT * FROM federations WHERE scid = ?", (scid,)).fetchone()
        return self._entry(row) if row else None

    def younger_than(self, seconds: float) -> bool:
        """No federation here yet, or the first was added less than `seconds` ago: a new data
        folder (perhaps one that replaced a lost folder, whose federations come back)."""
        first = self.db.execute("SELECT MIN(created) FROM federations").fetchone()[0]
        return first is None or time.time() - first < seconds

    def claim_payment_hash(self, payment_hash: str, federation_id: str) -> bool:
        """HTLCs of the hold invoice for this hash go to this federation's actor. False when
        another federation has claimed the hash (the same one again is fine)."""
        with self.lock:
            self.db.execute(
                "INSERT OR IGNORE INTO payment_hashes VALUES (?, ?, ?)",
                (payment_hash, federation_id, int(time.time())),
            )
            row = self.db.execute(
                "SELECT federation_id FROM payment_hashes WHERE payment_hash = ?", (payment_hash,)
            ).fetchone()
        return bool(row["federation_id"] == federation_id)

    def by_payment_hash(self, payment_hash: str) -> FederationEntry | None:
        row = self.db.execute(
            "SELECT f.* FROM payment_hashes p JOIN federations f USING (federation_id)"
            " WHERE p.payment_hash = ?",
            (payment_hash,),
        ).fetchone()
        return self._entry(row) if row else None

    def claim_outgoing(self, payment_hash: str, federation_id: str, contract_id: str) -> bool:
        """May this contract pay this hash? True when the hash is free, released, or already
        this contract's (asked again: the same answer); False while another contract holds it.
        Committed (synchronous=FULL) before it answers, so a restart keeps every claim."""
        me = (federation_id, contract_id)
        now = int(time.time())
        with self.lock:
            row = self.db.execute(
                "SELECT * FROM outgoing_hashes WHERE payment_hash = ?", (payment_hash,)
            ).fetchone()
            if row is not None and (row["federation_id"], row["contract_id"]) == me:
                return True
            if row is not None and row["state"] == "held":
                return False
            self.db.execute(
                "INSERT OR REPLACE INTO outgoing_hashes VALUES (?, ?, ?, 'held', ?, ?)",
                (payment_hash, federation_id, contract_id, now, now),
            )
        return True

    def release_outgoing(self, payment_hash: str, federation_id: str, contract_id: str) -> bool:
        """The holding contract failed definitely: the hash may be claimed again. Only its
        holder can release it; False otherwise (nothing changes)."""
        with self.lock:
            done = self.db.execute(
                "UPDATE outgoing_hashes SET state = 'released', updated = ?"
                " WHERE payment_hash = ? AND federation_id = ? AND contract_id = ?",
                (int(time.time()), payment_hash, federation_id, contract_id),
            ).rowcount
        return bool(done)

    def active(self) -> list[FederationEntry]:
        rows = self.db.execute(
            "SELECT * FROM federations WHERE state NOT IN ('left', 'failed') ORDER BY position"
        ).fetchall()
        return [self._entry(r) for r in rows]

    def in_state(self, *states: str) -> list[FederationEntry]:
        marks = ", ".join("?" * len(states))
        rows = self.db.execute(
            f"SELECT * FROM federations WHERE state IN ({marks}) ORDER BY position", states
        ).fetchall()
        return [self._entry(r) for r in rows]

    def all(self) -> list[FederationEntry]:
        return [
            self._entry(r)
            for r in self.db.execute("SELECT * FROM federations ORDER BY position").fetchall()
        ]
