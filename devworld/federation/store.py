"""The guardian's SQLite database (WAL). Every accepted transaction is applied in one
`BEGIN IMMEDIATE` transaction under the engine's lock: all of it or nothing."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS txs (txid TEXT PRIMARY KEY, tx TEXT NOT NULL, outcome TEXT NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS spent_notes (nonce TEXT PRIMARY KEY, amount INTEGER NOT NULL, txid TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS issued_notes (
    txid TEXT NOT NULL, idx INTEGER NOT NULL, amount INTEGER NOT NULL, PRIMARY KEY (txid, idx));
CREATE TABLE IF NOT EXISTS outgoing (
    contract_id TEXT PRIMARY KEY, amount INTEGER NOT NULL, payment_hash TEXT NOT NULL, gateway_key TEXT NOT NULL,
    user_key TEXT NOT NULL, timelock INTEGER NOT NULL, invoice TEXT NOT NULL, cancelled INTEGER NOT NULL DEFAULT 0,
    preimage TEXT, spent_by TEXT, txid TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS offers (
    payment_hash TEXT PRIMARY KEY, amount INTEGER NOT NULL, encrypted_preimage TEXT NOT NULL, expiry INTEGER NOT NULL,
    funded_by TEXT, txid TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS incoming (
    contract_id TEXT PRIMARY KEY, amount INTEGER NOT NULL, payment_hash TEXT NOT NULL, gateway_key TEXT NOT NULL,
    preimage TEXT, valid INTEGER NOT NULL, spent_by TEXT, txid TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pegin_addresses (address TEXT PRIMARY KEY, user_key TEXT NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pegins (txid TEXT NOT NULL, vout INTEGER NOT NULL, amount_sat INTEGER NOT NULL,
    claimed_by TEXT NOT NULL, PRIMARY KEY (txid, vout));
CREATE TABLE IF NOT EXISTS pegouts (
    id TEXT PRIMARY KEY, address TEXT NOT NULL, amount_sat INTEGER NOT NULL, fee_sat INTEGER NOT NULL,
    state TEXT NOT NULL, btc_txid TEXT, created INTEGER NOT NULL, refund_key TEXT, error TEXT, spent_by TEXT);
CREATE TABLE IF NOT EXISTS gateways (gateway_key TEXT PRIMARY KEY, registration TEXT NOT NULL, valid_until INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS backups (user_key TEXT PRIMARY KEY, data TEXT NOT NULL, updated INTEGER NOT NULL);
"""


class FedDB:
    """One connection shared by the server's threads, serialized by `lock`."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(SCHEMA)
        self._migrate()
        self.lock = threading.RLock()

    def _migrate(self) -> None:
        """Columns added since a database was made (a world from an older version)."""
        have = {r["name"] for r in self.conn.execute("PRAGMA table_info(pegouts)")}
        for column in ("refund_key", "error", "spent_by"):
            if column not in have:
                self.conn.execute(f"ALTER TABLE pegouts ADD COLUMN {column} TEXT")

    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def one(self, sql: str, *args: object) -> sqlite3.Row | None:
        with self.lock:
            return self.conn.execute(sql, args).fetchone()

    def all(self, sql: str, *args: object) -> list[sqlite3.Row]:
        with self.lock:
            return self.conn.execute(sql, args).fetchall()

    def meta(self, key: str) -> str | None:
        row = self.one("SELECT value FROM meta WHERE key = ?", key)
        return row["value"] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.lock:
            self.conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value)
            )

    def close(self) -> None:
        self.conn.close()
