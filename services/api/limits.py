"""Counts every gunicorn worker shares: the public routes' token buckets and the wrong
passwords, per client, in one small SQLite file in the run directory (`api-limits.sqlite`,
emptied when gunicorn starts). One count per client whichever worker answers, so N workers do
not mean N times the limit.

Each check is one write transaction (`BEGIN IMMEDIATE`: read, decide, write under the file's
lock), so concurrent workers and threads can never both take the last token. Times are
`time.monotonic()`, the same clock in every process of the machine; a stored time ahead of now
(the machine rebooted under a kept file) counts as long ago. Nothing here is durable (it is
rebuilt from nothing at any moment without harm): `synchronous=OFF`.

Never: keep a count in process memory (that is one count per worker again).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LIMITS_FILE = "api-limits.sqlite"  # in the run directory
PRUNE_EVERY_S = 10.0


class SharedLimits:
    def __init__(self, path: Path | None) -> None:
        """`path` None: a private in-memory database (one process; tests)."""
        self.path = path
        self._local = threading.local()  # one connection per thread, opened once
        self._lock = threading.Lock()  # this process's threads take turns; processes: SQLite's
        self._memory: sqlite3.Connection | None = None
        self._pruned = 0.0
        if path is None:
            self._memory = sqlite3.connect(":memory:", check_same_thread=False)
            self._memory.isolation_level = None
        db = self._db()
        if path is not None:
            db.execute("PRAGMA journal_mode=WAL")
        db.executescript(
            """
            CREATE TABLE IF NOT EXISTS buckets (
                client TEXT PRIMARY KEY, tokens REAL NOT NULL, at REAL NOT NULL);
            CREATE INDEX IF NOT EXISTS buckets_at ON buckets (at);
            CREATE TABLE IF NOT EXISTS failures (client TEXT NOT NULL, at REAL NOT NULL);
            CREATE INDEX IF NOT EXISTS failures_client ON failures (client, at);
            CREATE INDEX IF NOT EXISTS failures_at ON failures (at);
            """
        )

    def _db(self) -> sqlite3.Connection:
        if self._memory is not None:
            return self._memory
        db = getattr(self._local, "db", None)
        if db is None:
            assert self.path is not None
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            db.execute("PRAGMA synchronous=OFF")
            self._local.db = db
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, under this process's lock and the file's."""
        with self._lock:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def take(self, client: str, rate_per_s: float, burst: float) -> float:
        """Take one token of `client`'s bucket (`burst` tokens, refilled at `rate_per_s`): 0 if
        taken, else the seconds until one is there (nothing taken)."""
        with self._transaction() as db:
            now = time.monotonic()  # under the lock: no stored time is later than this
            row = db.execute(
                "SELECT tokens, at FROM buckets WHERE client = ?", (client,)
            ).fetchone()
            tokens = float(burst)
            if row is not None and row[1] <= now + 1:
                tokens = min(burst, row[0] + max(0.0, now - row[1]) * rate_per_s)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / rate_per_s
            if not wait:
                tokens -= 1
            db.execute(
                "INSERT INTO buckets VALUES (?, ?, ?) ON CONFLICT (client) DO UPDATE SET "
                "tokens = excluded.tokens, at = excluded.at",
                (client, tokens, now),
            )
            if now - self._pruned > PRUNE_EVERY_S:  # full buckets are as good as none
                self._pruned = now
                db.execute(
                    "DELETE FROM buckets WHERE at < ? OR at > ?",
                    (now - burst / rate_per_s, now + 1),
                )
        return wait

    def try_password(
        self, client: str, max_failures: int, window_s: float
    ) -> tuple[int | None, float]:
        """Before checking a password of `client`: counts the try as a failure at once (so
        concurrent tries cannot all slip under the limit): (its id, for `right`, 0). If `client`
        has had `max_failures` failures in the last `window_s` seconds: (None, the seconds until
        the oldest leaves the window), nothing counted."""
        with self._transaction() as db:
            now = time.monotonic()
            db.execute("DELETE FROM failures WHERE at < ? OR at > ?", (now - window_s, now + 1))
            rows = db.execute(
                "SELECT at FROM failures WHERE client = ? ORDER BY at DESC LIMIT ?",
                (client, max_failures),
            ).fetchall()
            if len(rows) >= max_failures:
                return None, max(0.001, rows[-1][0] + window_s - now)
            rowid = db.execute("INSERT INTO failures VALUES (?, ?)", (client, now)).lastrowid
        return rowid, 0.0

    def right(self, try_id: int) -> None:
        """The try `try_id` had the right password: not a failure."""
        with self._transaction() as db:
            db.execute("DELETE FROM failures WHERE rowid = ?", (try_id,))
