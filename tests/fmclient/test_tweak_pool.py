"""The pool of ground mintv2 tweaks: filled in a worker thread while the event loop stays free,
each tweak handed out once (taken and committed before use, also across a reopen), every one
passing the seed's filter; what the pool lacks is ground on the spot."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path

from fmclient import derive
from fmclient.tweak_pool import TweakPool

FILTER = bytes(range(32))


def _pool(path: Path, size: int = 6) -> TweakPool:
    db = sqlite3.connect(path, isolation_level=None)

    @contextmanager
    def transaction():  # type: ignore[no-untyped-def]
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    return TweakPool(db, transaction, FILTER, size=size, first=size, batch=2)


async def test_tweaks_are_ground_ahead_and_handed_out_once(tmp_path: Path) -> None:
    pool = _pool(tmp_path / "w.sqlite")
    stop = asyncio.Event()
    keeper = asyncio.create_task(pool.keep_full(stop))
    ticks, start = 0, time.monotonic()
    while pool.count() < 6:  # the loop keeps turning while the thread grinds
        await asyncio.sleep(0.005)
        ticks += 1
        assert time.monotonic() - start < 60
    assert ticks > 5
    first = pool.take(4)
    assert pool.count() == 2
    again = _pool(tmp_path / "w.sqlite").take(2)  # reopened: the taken ones are gone for good
    assert pool.count() == 0
    more = pool.take(3)  # empty: ground now
    every = first + again + more
    assert len(set(every)) == len(every) == 9
    assert all(len(t) == 16 and derive.mintv2_tweak_passes(t, FILTER) for t in every)
    while pool.count() < 6:  # taking woke the keeper: refilled
        await asyncio.sleep(0.01)
        assert time.monotonic() - start < 60
    assert not set(pool.take(6)) & set(every)
    stop.set()
    await asyncio.wait_for(keeper, 10)


async def _until_holding(pool: TweakPool, n: int, start: float) -> None:
    while pool.count() < n:
        await asyncio.sleep(0.01)
        assert time.monotonic() - start < 60


async def test_the_pool_stays_small_until_the_wallet_issues_notes(tmp_path: Path) -> None:
    db_path = tmp_path / "w.sqlite"
    pool = _pool(db_path)
    pool = TweakPool(pool.db, pool.transaction, FILTER, size=5, first=2, batch=1)
    stop = asyncio.Event()
    keeper = asyncio.create_task(pool.keep_full(stop))
    start = time.monotonic()
    await _until_holding(pool, 2, start)
    await asyncio.sleep(0.3)
    assert pool.count() == 2  # a federation that never issues notes grinds two, not more
    pool.take(1)
    await _until_holding(pool, 5, start)
    stop.set()
    await asyncio.wait_for(keeper, 10)


async def test_the_pool_is_filled_to_its_size_and_no_further(tmp_path: Path) -> None:
    """A batch never grinds past the pool's size (every tweak is ~45 ms of CPU); size 0 grinds
    nothing ahead, every tweak when its note is made."""
    for size, batch in ((3, 2), (0, 8)):
        base = _pool(tmp_path / f"w{size}.sqlite")
        pool = TweakPool(base.db, base.transaction, FILTER, size=size, first=8, batch=batch)
        stop = asyncio.Event()
        keeper = asyncio.create_task(pool.keep_full(stop))
        await _until_holding(pool, size, time.monotonic())
        await asyncio.sleep(0.3)
        assert pool.count() == size
        if size == 0:
            assert derive.mintv2_tweak_passes(pool.take(1)[0], FILTER)  # ground when taken
            await asyncio.sleep(0.3)
            assert pool.count() == 0
        stop.set()
        await asyncio.wait_for(keeper, 10)
