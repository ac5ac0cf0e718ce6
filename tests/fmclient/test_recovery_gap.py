"""walletv2's recovery after a lost data folder (`OnchainWallet.recover_addresses`): the seed's
valid addresses are derived in order until `gap` follow the last one the federation lists as
paid; all of them are watched again and the next search starts past them. With fakes for the
federation's list and the address search (seconds of CPU each for real: the real federations'
side is tests/fedimint/test_recovery.py, whose trees use a gap of 1)."""

from __future__ import annotations

import contextlib
import sqlite3

import pytest

from fmclient.onchain import RECOVERY_GAP, TWEAK_INDEX, OnchainWallet
from fmclient.walletv2 import PegInAddress


class _Keys:
    def __init__(self) -> None:
        self.advanced: list[int] = []

    def module_secret(self, name: str) -> object:
        return object()  # seeded

    def advance_index(self, name: str, index: int) -> None:
        assert name == TWEAK_INDEX
        self.advanced.append(index)


class _Mint:
    def __init__(self) -> None:
        self.keys = _Keys()
        self.db = sqlite3.connect(":memory:")
        self.db.execute("CREATE TABLE peg_in_addresses (address, script, secret, at)")

    @contextlib.contextmanager
    def transaction(self):  # type: ignore[no-untyped-def]
        with self.db:
            yield self.db


def _wallet(paid_at: set[int], step: int = 3) -> tuple[OnchainWallet, list[int]]:
    """A wallet whose seed's valid indexes are 0, 3, 6, … (`step` apart) and whose federation
    lists the addresses at positions `paid_at` (0: the first valid one) as paid."""
    wallet = OnchainWallet.__new__(OnchainWallet)  # no federation: the fakes below
    wallet.mint = _Mint()  # type: ignore[assignment]
    searched: list[int] = []

    def spk(position: int) -> bytes:
        return b"\x00\x20" + position.to_bytes(32, "big")

    async def seeded(module: object, start: int) -> PegInAddress:
        searched.append(start)
        index = -(-start // step) * step  # the first valid index at or after `start`
        position = index // step
        return PegInAddress(f"bcrt1-{position}", b"k", spk(position), index)

    outputs = [{"index": i, "script": spk(p).hex()} for i, p in enumerate(sorted(paid_at))]

    async def call(endpoint: str, params: list[int]) -> list[dict]:
        assert endpoint == "output_info_slice"
        return [o for o in outputs if params[0] <= o["index"] < params[1]]

    wallet._seeded_address = seeded  # type: ignore[method-assign]
    wallet._call = call  # type: ignore[method-assign,assignment]
    return wallet, searched


def _watched(wallet: OnchainWallet) -> list[str]:
    return [r[0] for r in wallet.mint.db.execute("SELECT address FROM peg_in_addresses")]


@pytest.mark.parametrize(
    ("paid_at", "gap", "watched"),
    [
        (set(), 1, 1),  # nothing paid: the gap alone
        (set(), RECOVERY_GAP, RECOVERY_GAP),
        ({0}, 1, 2),  # the test trees: each address asked for is paid
        ({0, 1}, 1, 3),
        ({0, 2}, 2, 5),  # an unpaid one between two paid ones is watched too
        ({0, 1}, RECOVERY_GAP, 6),  # an operator's default
        ({3}, RECOVERY_GAP, 8),  # paid within the gap: found, and each find moves it on
    ],
)
async def test_addresses_are_watched_up_to_the_gap_past_the_last_paid(
    paid_at: set[int], gap: int, watched: int
) -> None:
    wallet, searched = _wallet(paid_at)
    assert await wallet.recover_addresses(gap) == watched
    assert _watched(wallet) == [f"bcrt1-{p}" for p in range(watched)]
    assert searched == [0] + [3 * p + 1 for p in range(watched - 1)]  # each past the last
    assert wallet.mint.keys.advanced == [3 * (watched - 1) + 1]  # the next search starts past


async def test_a_paid_address_beyond_the_gap_is_not_found() -> None:
    """The rule's price: a gap of 1 misses a deposit behind an unpaid address (so an operator's
    default is 4: addresses handed out or ground ahead and never paid)."""
    wallet, _ = _wallet({1})
    assert await wallet.recover_addresses(1) == 1
    assert _watched(wallet) == ["bcrt1-0"]
