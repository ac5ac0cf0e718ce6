"""The world's SQLite database: one file, WAL, every money-moving step in one transaction.

Tables are grouped by owner: chain (blocks, txs, txouts, wallets, addresses) and Lightning
(ln_nodes, channels, htlcs, invoices, payments). Only `chain.py` writes chain tables and only
`lightning.py`/`payments.py` write Lightning tables.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY, hash TEXT UNIQUE NOT NULL, prev TEXT NOT NULL,
    time INTEGER NOT NULL, header BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS txs (
    txid TEXT PRIMARY KEY, raw BLOB NOT NULL, height INTEGER, pos INTEGER,
    time INTEGER NOT NULL, fee_sat INTEGER NOT NULL, coinbase INTEGER NOT NULL,
    from_wallet TEXT);
CREATE INDEX IF NOT EXISTS txs_height ON txs(height);
CREATE TABLE IF NOT EXISTS txouts (
    txid TEXT NOT NULL, n INTEGER NOT NULL, address TEXT, script BLOB NOT NULL,
    amount_sat INTEGER NOT NULL, spent_by TEXT, PRIMARY KEY (txid, n));
CREATE INDEX IF NOT EXISTS txouts_address ON txouts(address);
CREATE TABLE IF NOT EXISTS txins (
    txid TEXT NOT NULL, n INTEGER NOT NULL, prev_txid TEXT NOT NULL, prev_n INTEGER NOT NULL,
    PRIMARY KEY (txid, n));
CREATE TABLE IF NOT EXISTS wallets (name TEXT PRIMARY KEY, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS addresses (
    address TEXT PRIMARY KEY, wallet TEXT NOT NULL, privkey TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '', change INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS addresses_wallet ON addresses(wallet);

CREATE TABLE IF NOT EXISTS ln_nodes (
    name TEXT PRIMARY KEY, alias TEXT NOT NULL, privkey TEXT NOT NULL, pubkey TEXT UNIQUE NOT NULL,
    wallet TEXT NOT NULL, hold_unknown_scids INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS channels (
    scid INTEGER PRIMARY KEY, funding_txid TEXT NOT NULL, funding_n INTEGER NOT NULL,
    node_a TEXT NOT NULL, node_b TEXT NOT NULL, capacity_sat INTEGER NOT NULL,
    bal_a_msat INTEGER NOT NULL, bal_b_msat INTEGER NOT NULL,
    policy_a TEXT NOT NULL, policy_b TEXT NOT NULL, state TEXT NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS htlcs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, scid INTEGER NOT NULL, sender TEXT NOT NULL,
    amount_msat INTEGER NOT NULL, payment_hash TEXT NOT NULL, expiry INTEGER NOT NULL,
    state TEXT NOT NULL, created INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS htlcs_state ON htlcs(state);
CREATE TABLE IF NOT EXISTS invoices (
    node TEXT NOT NULL, payment_hash TEXT NOT NULL, bolt11 TEXT NOT NULL, preimage TEXT,
    payment_secret TEXT NOT NULL, amount_msat INTEGER, description TEXT NOT NULL,
    created INTEGER NOT NULL, expiry INTEGER NOT NULL, min_final_cltv INTEGER NOT NULL,
    state TEXT NOT NULL, hold INTEGER NOT NULL, amount_received_msat INTEGER NOT NULL DEFAULT 0,
    settled_at INTEGER, htlc_chan INTEGER, htlc_id INTEGER, htlc_expiry INTEGER,
    PRIMARY KEY (node, payment_hash));
CREATE TABLE IF NOT EXISTS payments (
    payer TEXT NOT NULL, payment_hash TEXT NOT NULL, bolt11 TEXT NOT NULL, status TEXT NOT NULL,
    amount_msat INTEGER NOT NULL, fee_msat INTEGER NOT NULL DEFAULT 0, preimage TEXT,
    failure_code INTEGER, failure_node TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL, completed INTEGER, PRIMARY KEY (payer, payment_hash));
"""


class WorldDB:
    """The connection and its transaction helper. Used from the event loop thread only."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a committed transaction survives a crash of the process (what the
        # simulation must survive); only a power cut may lose the last few.
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.executescript(SCHEMA)
        columns = {r[1] for r in self.conn.execute("PRAGMA table_info(invoices)")}
        for col in ("htlc_chan", "htlc_id", "htlc_expiry"):  # worlds made before hold HTLC info
            if col not in columns:
                self.conn.execute(f"ALTER TABLE invoices ADD COLUMN {col} INTEGER")
        self._depth = 0

    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """All-or-nothing block; nested uses join the outer transaction."""
        if self._depth:
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")
        finally:
            self._depth = 0

    def one(self, sql: str, *args: object) -> sqlite3.Row | None:
        return self.conn.execute(sql, args).fetchone()

    def all(self, sql: str, *args: object) -> list[sqlite3.Row]:
        return self.conn.execute(sql, args).fetchall()

    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self.one("SELECT value FROM meta WHERE key = ?", key)
        return row["value"] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        self.conn.close()
