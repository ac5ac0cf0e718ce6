"""A seeded walletv2 address search (fmclient/onchain.py) commits how far it went while it runs,
so one a kill stopped goes on from there: on a busy machine a search takes minutes of wall
time, and an actor killed more often than that would otherwise never hand out an address. A
real federation's config (the 4-guardian vectors' client config) and the real search."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from fmclient import onchain
from fmclient.config import parse_client_config
from fmclient.derive import FederationSecrets, bip39_root_secret
from fmclient.onchain import TWEAK_INDEX, OnchainWallet
from fmclient.wallet import MintWallet
from fmclient.walletv2 import GrindCancelled

DATA = Path(__file__).parent / "data"
CONFIG = parse_client_config(
    json.loads((DATA / "fedimintd_4_guardians.json").read_text())["client_config"]
)
WORDS = "legal winner thank year wave sausage worth useful legal winner thank yellow"


def _wallet(path: Path) -> OnchainWallet:
    secrets = FederationSecrets.from_root(bip39_root_secret(WORDS), CONFIG.federation_id)
    return OnchainWallet(MintWallet(path, CONFIG, None, secrets=secrets))  # type: ignore[arg-type]


async def test_a_killed_search_goes_on_from_where_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(onchain, "SEARCH_CHECKPOINT_S", 0.02)
    whole = await _wallet(tmp_path / "whole.sqlite").grind_address()  # the address to find
    wallet = _wallet(tmp_path / "w.sqlite")
    checkpoint, advance = asyncio.Event(), wallet.mint.keys.advance_index

    def advanced(name: str, to: int) -> None:
        advance(name, to)
        checkpoint.set()

    monkeypatch.setattr(wallet.mint.keys, "advance_index", advanced)
    search = asyncio.create_task(wallet.grind_address())
    await asyncio.wait_for(checkpoint.wait(), 30)  # a checkpoint committed midway
    search.cancel()  # the kill (the thread is stopped as at a close)
    wallet.closing.set()
    with pytest.raises((asyncio.CancelledError, GrindCancelled)):
        await search
    went = wallet.mint.keys.next_index(TWEAK_INDEX)
    assert 0 < went <= whole.index  # type: ignore[operator]
    again = await _wallet(tmp_path / "w.sqlite").grind_address()  # the next start
    assert again.index == whole.index and again.address == whole.address
