"""The actor's own SQLite database: its gateway key, fees, and every payment and HTLC it
handles, each row a persisted state machine (see flows.py)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from gwcore.files import private_file
from gwcore.schema import Schema, upgrade

# an actor's own database: its schema's version and migrations (gwcore/schema.py)
ACTOR_DB = Schema("actor.sqlite")
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outgoing (
    contract_id TEXT PRIMARY KEY, state TEXT NOT NULL, data TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS incoming (
    htlc_key TEXT PRIMARY KEY, payment_hash TEXT NOT NULL, state TEXT NOT NULL, data TEXT NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL);
CREATE INDEX IF NOT EXISTS outgoing_updated ON outgoing (updated);
CREATE INDEX IF NOT EXISTS incoming_updated ON incoming (updated);
CREATE INDEX IF NOT EXISTS outgoing_created ON outgoing (created);
CREATE INDEX IF NOT EXISTS incoming_created ON incoming (created);
"""


class ActorStore:
    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(private_file(path), isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        upgrade(self.db, path, ACTOR_DB)
        self.db.executescript(SCHEMA)
        self.lock = threading.Lock()  # writes (and reads that must not miss a write)
        # reports read through their own connection, from worker threads, beside the writer
        self._reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._reader.row_factory = sqlite3.Row
        self._read_lock = threading.Lock()
        self._last = max(
            self.db.execute(f"SELECT COALESCE(MAX(updated), 0) FROM {t}").fetchone()[0]
            for t in ("outgoing", "incoming")
        )

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.lock:
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def get(self, table: str, key: str) -> dict | None:
        col = "contract_id" if table == "outgoing" else "htlc_key"
        row = self.db.execute(f"SELECT * FROM {table} WHERE {col} = ?", (key,)).fetchone()
        return None if row is None else {"state": row["state"], **json.loads(row["data"])}

    def put(self, table: str, key: str, state: str, **data: Any) -> dict:
        """Insert or move a row to `state`, merging `data`; committed before returning."""
        col = "contract_id" if table == "outgoing" else "htlc_key"
        with self.lock:  # `updated` strictly grows in commit order, even if the clock steps back
            now = self._last = max(time.time(), self._last + 1e-6)
            row = self.db.execute(f"SELECT data FROM {table} WHERE {col} = ?", (key,)).fetchone()
            merged = {**(json.loads(row["data"]) if row else {}), **data}
            if row is None:
                extra = ("payment_hash",) if table == "incoming" else ()
                cols = [col, *extra, "state", "data", "created", "updated"]
                vals = [
                    key,
                    *(merged.get(e, "") for e in extra),
                    state,
                    json.dumps(merged),
                    now,
                    now,
                ]
                self.db.execute(
                    f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    vals,
                )
            else:
                self.db.execute(
                    f"UPDATE {table} SET state = ?, data = ?, updated = ? WHERE {col} = ?",
                    (state, json.dumps(merged), now, key),
                )
        return {"state": state, **merged}

    def log(self, since: float = 0.0, before: float | None = None, limit: int = 1000) -> list[dict]:
        """Every payment, newest first: outgoing (user -> Lightning or swap) and incoming."""
        rows = []
        for table, col in (("outgoing", "contract_id"), ("incoming", "htlc_key")):
            q = (
                f"SELECT * FROM {table} WHERE created >= ?"
                + (" AND created < ?" if before is not None else "")
                + " ORDER BY created DESC LIMIT ?"
            )
            args = (since, before, limit) if before is not None else (since, limit)
            with self._read_lock:
                found = self._reader.execute(q, args).fetchall()
            for r in found:
                rows.append(_payment_row(table, col, r))
        rows.sort(key=lambda r: -r["created"])
        return rows[:limit]

    def finished_since(
        self, watermark: float, final: dict[str, tuple[str, ...]]
    ) -> tuple[list[dict], float]:
        """Rows in a final state (`final`: table -> states) updated after `watermark`, and the
        new watermark. Read under the write lock, so no row can later appear behind it."""
        rows, new = [], watermark
        with self.lock, self._read_lock:
            for table, col in (("outgoing", "contract_id"), ("incoming", "htlc_key")):
                states = final[table]
                for r in self._reader.execute(
                    f"SELECT * FROM {table} WHERE updated > ? AND state IN"
                    f" ({', '.join('?' * len(states))})",
                    (watermark, *states),
                ).fetchall():
                    rows.append(_payment_row(table, col, r))
                    new = max(new, r["updated"])
        return rows, new

    def unfinished(self, table: str, final: tuple[str, ...]) -> list[tuple[str, dict]]:
        col = "contract_id" if table == "outgoing" else "htlc_key"
        with self._read_lock:
            rows = self._reader.execute(
                f"SELECT * FROM {table} WHERE state NOT IN ({', '.join('?' * len(final))})", final
            ).fetchall()
        return [(r[col], {"state": r["state"], **json.loads(r["data"])}) for r in rows]


def _payment_row(table: str, key_column: str, r: sqlite3.Row) -> dict:
    """A stored flow as the log and the stats read it: its table, id, state, times and data."""
    return {
        "table": table,
        "id": r[key_column],
        "state": r["state"],
        "created": r["created"],
        "updated": r["updated"],
        **json.loads(r["data"]),
    }
