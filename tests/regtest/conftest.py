"""Fixtures for the regtest world: an in-process World on a temp dir, and small builders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from devworld.regtest.app import World, create_world
from devworld.regtest.lightning import Channel, Policy
from devworld.regtest.settings import RegtestSettings


def make_world(path: Path) -> World:
    return create_world(RegtestSettings(data_dir=path))


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    w = make_world(tmp_path / "world")
    yield w
    await w.stop()
    w.db.close()


def mature_miner(w: World) -> None:
    if w.chain.balance("miner") == 0:
        w.chain.mine(101, w.chain.new_address("miner"))


def node(w: World, name: str, fund_sat: int = 10_000_000, **kw) -> None:  # type: ignore[no-untyped-def]
    mature_miner(w)
    n = w.net.create_node(name, **kw)
    if fund_sat:
        w.chain.send("miner", [(w.chain.new_address(n.wallet), fund_sat)])
        w.chain.mine(1, w.chain.new_address("miner"))


def channel(
    w: World,
    a: str,
    b: str,
    cap: int = 1_000_000,
    push_msat: int = 0,
    pa: Policy | None = None,
    pb: Policy | None = None,
) -> Channel:  # type: ignore[no-untyped-def]
    return w.net.open_channel(a, b, cap, push_msat=push_msat, policy_opener=pa, policy_peer=pb)


def total_msat(w: World) -> int:
    """Everything on Lightning: channel balances plus HTLCs in flight."""
    in_flight = w.db.one(
        "SELECT COALESCE(SUM(amount_msat), 0) AS s FROM htlcs WHERE state = 'pending'"
    )["s"]
    return sum(c.bal_a_msat + c.bal_b_msat for c in w.net.channels.values()) + in_flight


def capacity_msat(w: World) -> int:
    return sum(c.capacity_sat * 1000 for c in w.net.channels.values())
