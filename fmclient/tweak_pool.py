"""Ground mintv2 tweaks, made ahead of need.

A seeded gateway's mintv2 note carries a 16-byte tweak that passes the module's filter
(SHA-256(tweak ‖ filter) starts with two zero bytes, `derive.mintv2_tweak_passes`): that is
what lets a recovery from the seed find the note again. Finding one takes about 65,536 hashes,
some 40 ms of CPU here; an operation makes up to a few dozen notes, so grinding them when the
operation is built would hold the actor's event loop for a second. Instead the wallet keeps a
pool of ground tweaks in its database, refilled in a worker thread while the actor idles, and
an operation takes what it needs from it (grinding inline only what the pool lacks).

A tweak is taken in its own committed transaction before any note is made from it, so a crash
can lose tweaks from the pool but never hand one out twice (two notes of one denomination with
one tweak would share a nonce, and the federation would refuse the second).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager

from . import derive

SCHEMA = "CREATE TABLE IF NOT EXISTS tweak_pool (tweak BLOB PRIMARY KEY);"


class TweakPool:
    def __init__(
        self,
        db: sqlite3.Connection,
        transaction: Callable[[], AbstractContextManager[sqlite3.Connection]],
        tweak_filter: bytes,
        *,
        size: int = 32,
        first: int = 8,
        batch: int = 8,
    ) -> None:
        """`db`: the wallet's connection (used from the event loop's thread only; the worker
        thread only hashes); `transaction()`: the wallet's BEGIN IMMEDIATE context. The pool
        is kept at `first` tweaks until the wallet first takes some, then at `size` (a
        federation that never issues notes costs a few hundred ms of CPU, not seconds)."""
        self.db, self.transaction, self.filter = db, transaction, tweak_filter
        self.size, self.batch, self.target = size, batch, min(first, size)
        self.db.executescript(SCHEMA)
        self.wanted = asyncio.Event()

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM tweak_pool").fetchone()[0])

    def take(self, n: int) -> list[bytes]:
        """`n` tweaks passing the filter, each handed out once: from the pool first (removed and
        committed before they are returned), the rest ground now."""
        with self.transaction() as db:
            rows = db.execute("SELECT tweak FROM tweak_pool LIMIT ?", (n,)).fetchall()
            db.executemany("DELETE FROM tweak_pool WHERE tweak = ?", [(r[0],) for r in rows])
        tweaks = [bytes(r[0]) for r in rows]
        tweaks += [self.grind() for _ in range(n - len(tweaks))]
        self.target = self.size
        self.wanted.set()
        return tweaks

    def grind(self) -> bytes:
        return derive.mintv2_grind_tweak(self.filter, os.urandom)

    async def keep_full(self, stop: asyncio.Event) -> None:
        """Refill the pool to its target, a batch at a time in a worker thread, whenever it
        runs low; until `stop`."""
        while not stop.is_set():
            while (missing := self.target - self.count()) > 0 and not stop.is_set():
                n = min(missing, self.batch)
                ground = await asyncio.to_thread(lambda n=n: [self.grind() for _ in range(n)])
                with self.transaction() as db:
                    db.executemany(
                        "INSERT OR IGNORE INTO tweak_pool VALUES (?)", [(t,) for t in ground]
                    )
            self.wanted.clear()
            waits = [asyncio.create_task(self.wanted.wait()), asyncio.create_task(stop.wait())]
            _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
