"""A mint wallet's key material: the derivation indexes it hands out, the secrets of its new
notes, and the ground mintv2 tweaks it keeps ready.

With the gateway's seed (`secrets`: the federation's secrets, fmclient/derive.py) every key is
derived exactly as fedimint's client modules derive theirs, so a recovery from the seed finds
them again: mint v1 notes at `module/0/index/amount` with an index per amount, mintv2 notes at
`module/denomination` tweaked by a tweak that passes the module's filter, peg-in keys by index.
Every index is advanced and committed before anything uses it: a crash leaves a gap, never a
reuse. Without a seed (a federation joined before the gateway had one) keys are random.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager

from coincurve import PrivateKey

from . import derive, mintv1, tbs
from .config import ClientConfig
from .derive import DerivableSecret, FederationSecrets
from .ecash import Dialect
from .tweak_pool import TweakPool

# key_indexes (the wallet's table): the next mint v1 note index of an amount is f"{NOTE_INDEX}{amount_msat}"
NOTE_INDEX = "mint_v1_note:"


class WalletKeys:
    def __init__(
        self,
        db: sqlite3.Connection,
        transaction: Callable[[], AbstractContextManager[sqlite3.Connection]],
        config: ClientConfig,
        mint: Dialect,
        secrets: FederationSecrets | None,
        tweak_pool_size: int = 32,
    ) -> None:
        self.db, self.transaction, self.config, self.mint = db, transaction, config, mint
        self.secrets = secrets
        module = None if secrets is None else secrets.module(mint.module)
        # a seeded mintv2 wallet's notes need ground tweaks: kept ready (tweak_pool.py)
        self.tweaks = (
            TweakPool(db, transaction, derive.mintv2_tweak_filter(module), size=tweak_pool_size)
            if module is not None and mint.kind != mintv1.Dialect.kind
            else None
        )

    async def keep_ready(self, stop: asyncio.Event) -> None:
        """Background work until `stop`: the pool of ground mintv2 tweaks kept full."""
        if self.tweaks is not None:
            await self.tweaks.keep_full(stop)

    def allocate_index(self, name: str, count: int = 1) -> int:
        """The first of `count` unused indexes of the derivation `name` (a mint v1 note amount,
        peg-in tweaks), advanced and committed before anything uses them: a crash leaves a gap,
        never a reuse (the mint client's NextECashNoteIndex, the wallet's NextPegInTweakIndex)."""
        with self.transaction() as db:
            row = db.execute("SELECT next FROM key_indexes WHERE name = ?", (name,)).fetchone()
            first = int(row[0]) if row else 0
            db.execute(
                "INSERT INTO key_indexes VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET next = ?",
                (name, first + count, first + count),
            )
        return first

    def next_index(self, name: str) -> int:
        row = self.db.execute("SELECT next FROM key_indexes WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def advance_index(self, name: str, to: int) -> None:
        """Indexes of `name` below `to` are used (committed): never handed out again."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO key_indexes VALUES (?, ?)"
                " ON CONFLICT(name) DO UPDATE SET next = MAX(next, excluded.next)",
                (name, to),
            )

    def module_secret(self, kind: str) -> DerivableSecret | None:
        """The root secret of the federation's module `kind` (None: keys are random)."""
        if self.secrets is None:
            return None
        return self.secrets.module(self.config.module_id(kind))

    def note_keys(
        self, denominations: list[int]
    ) -> list[tuple[bytes, int, bytes | None, int | None]]:
        """(spend secret, blinding scalar, mintv2 tweak, mint v1 index) of new notes: derived
        as the federation's mint client module derives its notes, or random."""
        module = None if self.secrets is None else self.secrets.module(self.mint.module)
        if module is None:
            return [
                (PrivateKey().secret, tbs.new_blinding_key(), None, None) for _ in denominations
            ]
        out: list[tuple[bytes, int, bytes | None, int | None]] = []
        if self.mint.kind == mintv1.Dialect.kind:
            for d in denominations:
                index = self.allocate_index(f"{NOTE_INDEX}{1 << d}")
                spend, r = derive.mint_v1_note_keys(
                    derive.mint_v1_note_secret(module, 1 << d, index)
                )
                out.append((spend, r, None, index))
            return out
        assert self.tweaks is not None
        for d, tweak in zip(denominations, self.tweaks.take(len(denominations)), strict=True):
            spend, r = derive.mintv2_note_keys(module, d, tweak)
            out.append((spend, r, tweak, None))
        return out
