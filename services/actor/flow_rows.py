"""One payment flow's rows in the federation's wallet file: a SQLite table keyed by one column
(a contract id, a payment hash), each row's `state` moved only as the flow's StateMachine allows
(gwcore/states.py) and stamped `updated`. The LNv1 and LNv2 sends and receives keep theirs here.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from fmclient.wallet import MintWallet
from gwcore.states import StateMachine

log = logging.getLogger(__name__)
RESUME_AT_ONCE = 8  # rows resume() drives at a time


class FlowRows:
    def __init__(self, db: sqlite3.Connection, table: str, key: str, machine: StateMachine) -> None:
        self.db, self.table, self.key, self.machine = db, table, key, machine

    def get(self, key: str) -> dict | None:
        row = self.db.execute(f"SELECT * FROM {self.table} WHERE {self.key} = ?", (key,)).fetchone()
        return dict(row) if row else None

    def put(self, key: str, state: str, **fields: Any) -> dict:
        """Move the row to `state` (the table allows it, or IllegalTransition), with `fields`;
        committed before it returns."""
        self.machine.check((self.get(key) or {})["state"], state)
        sets = "".join(f", {k} = ?" for k in fields)
        self.db.execute(
            f"UPDATE {self.table} SET state = ?, updated = ?{sets} WHERE {self.key} = ?",
            (state, time.time(), *fields.values(), key),
        )
        return self.get(key) or {}

    def select(self, where: str, params: tuple) -> list[sqlite3.Row]:
        return self.db.execute(f"SELECT * FROM {self.table} WHERE {where}", params).fetchall()

    def count_in(self, states: tuple[str, ...]) -> int:
        marks = ", ".join("?" * len(states))
        row = self.db.execute(
            f"SELECT COUNT(*) FROM {self.table} WHERE state IN ({marks})", states
        ).fetchone()
        return int(row[0])


class LnFlow:
    """What an LNv1 or LNv2 send or receive is built on: its module's instance id and config,
    the wallet (the e-cash that funds and receives its contracts), our key, the extension, the
    fees, and its rows. A subclass names its module kind, config class, schema, table, key
    column and state table."""

    MODULE: str
    CONFIG: Any  # has from_bytes(module config body)
    SCHEMA: str
    TABLE: str
    KEY: str
    MACHINE: StateMachine

    def __init__(
        self, mint: MintWallet, key: Any, lnrpc: Any, fees: dict, federation_id: str
    ) -> None:
        self.mint, self.key, self.lnrpc, self.fees = mint, key, lnrpc, fees
        self.federation_id = federation_id
        self.module = mint.config.module_id(self.MODULE)
        self.config = self.CONFIG.from_bytes(mint.config.modules[self.module].body)
        self.db = mint.db
        self.db.executescript(self.SCHEMA)
        self.rows = FlowRows(self.db, self.TABLE, self.KEY, self.MACHINE)
        self._locks: dict[str, Any] = {}

    def row(self, key: str) -> dict | None:
        return self.rows.get(key)

    def busy(self, key: str) -> bool:
        """A call is driving this row now (resume() leaves it to that call)."""
        lock = self._locks.get(key)
        return lock is not None and lock.locked()

    async def drive_each(
        self, states: tuple[str, ...], drive: Callable[[str], Awaitable[object]], what: str
    ) -> None:
        """resume()'s work: `drive(key)` under the row's lock for every row in `states`, a few at
        a time; a row a call is driving now is left to it, and one that cannot go on yet (the
        federation or the node away) is logged and driven again by the next pass."""
        marks = ", ".join("?" * len(states))
        keys = [
            r[0]
            for r in self.db.execute(
                f"SELECT {self.KEY} FROM {self.TABLE} WHERE state IN ({marks})", states
            ).fetchall()
        ]
        room = asyncio.Semaphore(RESUME_AT_ONCE)

        async def one(key: str) -> None:
            async with room:
                if self.busy(key):
                    return
                try:
                    async with self._locks.setdefault(key, asyncio.Lock()):
                        await drive(key)
                except Exception as exc:
                    log.warning("%s %s not finished yet: %s", what, key, exc)

        await asyncio.gather(*(one(k) for k in keys))

    def _put(self, key: str, state: str, **fields: Any) -> dict:
        """Move the row to `state` (the table allows it, or IllegalTransition)."""
        return self.rows.put(key, state, **fields)


class Flow(Protocol):
    rows: FlowRows

    def payments(self, where: str, params: tuple) -> list[dict]: ...


def for_stats(
    flows: Iterable[tuple[Flow, tuple[str, ...]]], watermark: float
) -> tuple[list[dict], list[dict]]:
    """For the metrics (stats.PaymentStats), over `(flow, its in-flight states)`: the payments
    that reached a state they never leave after `watermark` (by `updated`), and those still
    under way (as pending)."""
    final: list[dict] = []
    under_way: list[dict] = []
    for flow, in_flight in flows:
        ends = flow.rows.machine.finals()
        final += flow.payments(
            f"state IN ({', '.join('?' * len(ends))}) AND updated > ?", (*ends, watermark)
        )
        under_way += [
            p | {"status": "pending"}
            for p in flow.payments(f"state IN ({', '.join('?' * len(in_flight))})", in_flight)
        ]
    return final, under_way
