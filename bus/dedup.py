"""Replies to non-idempotent requests, stored by message id and replayed for duplicates.

A worker that receives a non-idempotent request first looks its message id up here. If a reply
is stored, it is sent again (marked `replayed`) and the work is not repeated. Otherwise the work
runs, and its reply (or its definite error) is committed here *before* it is sent, so a caller
that retries after a lost reply, a timeout or a worker crash gets exactly one execution.

A crash between the work's own commit and this one is the handler's to make safe (its state
machine is idempotent by id, see the actor); the bus promises only that a stored reply is final.

Storage: one SQLite file (WAL) per worker, table `bus_replies`. Old rows are pruned after
`retention_s` (default 7 days), far beyond any caller's retry window.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from gwcore.files import private_file
from gwcore.schema import Schema, upgrade

# a worker's stored replies: its schema's version and migrations (gwcore/schema.py)
REPLIES_DB = Schema("bus-replies.sqlite")
SCHEMA = """
CREATE TABLE IF NOT EXISTS bus_replies (
    message_id   TEXT PRIMARY KEY,
    method       TEXT NOT NULL,
    is_error     INTEGER NOT NULL,
    payload      BLOB NOT NULL,      -- Reply.payload, or utf-8 error message
    error_code   TEXT NOT NULL DEFAULT '',
    created_ms   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS bus_replies_created ON bus_replies(created_ms);
"""


@dataclass(frozen=True)
class StoredReply:
    message_id: str
    method: str
    is_error: bool
    payload: bytes
    error_code: str


class ReplyStore:
    """SQLite-backed reply store. Calls are short local writes, made on the worker's loop."""

    def __init__(self, path: str | Path, *, retention_s: float = 7 * 24 * 3600) -> None:
        self.path = Path(path)
        self.retention_s = retention_s
        self._db = sqlite3.connect(
            private_file(self.path), isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        upgrade(self._db, self.path, REPLIES_DB)
        self._db.executescript(SCHEMA)
        self.prune()

    def get(self, message_id: str) -> StoredReply | None:
        row = self._db.execute(
            "SELECT message_id, method, is_error, payload, error_code FROM bus_replies"
            " WHERE message_id = ?",
            (message_id,),
        ).fetchone()
        if row is None:
            return None
        return StoredReply(row[0], row[1], bool(row[2]), bytes(row[3]), row[4])

    def put(self, reply: StoredReply) -> StoredReply:
        """Store `reply` unless one is already stored; return the one that is stored."""
        self._db.execute(
            "INSERT OR IGNORE INTO bus_replies"
            " (message_id, method, is_error, payload, error_code, created_ms)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                reply.message_id,
                reply.method,
                int(reply.is_error),
                reply.payload,
                reply.error_code,
                int(time.time() * 1000),
            ),
        )
        stored = self.get(reply.message_id)
        assert stored is not None
        return stored

    def prune(self) -> int:
        cutoff = int((time.time() - self.retention_s) * 1000)
        cur = self._db.execute("DELETE FROM bus_replies WHERE created_ms < ?", (cutoff,))
        return cur.rowcount

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM bus_replies").fetchone()[0])

    def close(self) -> None:
        self._db.close()
