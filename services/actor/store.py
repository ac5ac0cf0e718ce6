"""The actor's own SQLite database: its keys' and fees' settings (`meta`). Its payments live in
the federation's wallet file beside the notes that pay them (flow_rows.py)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from gwcore.files import private_file
from gwcore.schema import Schema, upgrade

# an actor's own database: its schema's version and migrations (gwcore/schema.py). Files made
# by gateways that served the development federation also hold its tables `outgoing` and
# `incoming`; nothing reads them.
ACTOR_DB = Schema("actor.sqlite")
SCHEMA = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"


class ActorStore:
    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(private_file(path), isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        upgrade(self.db, path, ACTOR_DB)
        self.db.executescript(SCHEMA)
        self.lock = threading.Lock()

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.lock:
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
