"""What an actor makes ahead of need is as much as its settings say: peg-in addresses
(GATEWAY_ACTOR_READY_ADDRESSES; the test trees keep none) and the defaults an operator gets
(with GATEWAY_ACTOR_RECOVERY_GAP, how far past the last paid address a recovery looks)."""

from __future__ import annotations

import asyncio

import pytest

from services.actor.fedimint import Ahead
from services.actor.onchain_v2 import WalletV2Onchain
from services.actor.settings import ActorSettings


class _Wallet:
    """The part of fmclient's OnchainWallet the ready-address loop uses."""

    def __init__(self, asked: bool) -> None:
        self.asked, self.ready, self.ground = asked, [], 0

    def addresses(self) -> list[str]:
        return ["bcrt1-asked"] if self.asked else []

    def ready_count(self) -> int:
        return len(self.ready)

    async def grind_address(self) -> str:
        self.ground += 1
        return f"bcrt1-{self.ground}"

    def add_ready(self, address: str) -> None:
        self.ready.append(address)


async def _ground(ready: int, asked: bool = True, rounds: int = 3) -> int:
    onchain = WalletV2Onchain.__new__(WalletV2Onchain)  # no federation: only the loop's step
    onchain.wallet, onchain.ready = _Wallet(asked), ready  # type: ignore[assignment]
    for _ in range(rounds):
        await onchain._keep_an_address_ready()
    return onchain.wallet.ground  # type: ignore[attr-defined]


async def test_addresses_ground_ahead_are_as_many_as_set() -> None:
    assert await _ground(1) == 1  # one kept ready, not one a round
    assert await _ground(2) == 2
    assert await _ground(0) == 0  # the test trees: each address ground when asked for
    assert await _ground(1, asked=False) == 0  # never asked for one: nothing ground


def test_the_defaults_an_operator_gets(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("GATEWAY_ACTOR_READY_ADDRESSES", raising=False)
    monkeypatch.delenv("GATEWAY_ACTOR_TWEAK_POOL_SIZE", raising=False)
    monkeypatch.delenv("GATEWAY_ACTOR_RECOVERY_GAP", raising=False)
    settings = ActorSettings(federation_id="f", invite_code="fed11x", scid=1)
    ahead = Ahead(settings.tweak_pool_size, settings.ready_addresses, settings.recovery_gap)
    assert ahead == Ahead(32, 1, 4) == Ahead()
    monkeypatch.setenv("GATEWAY_ACTOR_READY_ADDRESSES", "0")
    monkeypatch.setenv("GATEWAY_ACTOR_TWEAK_POOL_SIZE", "8")
    monkeypatch.setenv("GATEWAY_ACTOR_RECOVERY_GAP", "1")
    settings = ActorSettings(federation_id="f", invite_code="fed11x", scid=1)
    assert (settings.tweak_pool_size, settings.ready_addresses, settings.recovery_gap) == (8, 0, 1)


class _SlowWallet(_Wallet):
    """A search that takes a while (`go`), and addresses handed out from `ready`."""

    def __init__(self) -> None:
        super().__init__(asked=True)
        self.go = asyncio.Event()

    async def grind_address(self) -> str:
        await self.go.wait()
        return await super().grind_address()

    def take_ready(self) -> str | None:
        return self.ready.pop(0) if self.ready else None


async def test_a_request_that_timed_out_leaves_its_search_to_the_next() -> None:
    """/address with none ready: the request times out (cancelled) while the search runs; its
    retry waits for the same search, not a second one, and gets what it finds."""
    onchain = WalletV2Onchain.__new__(WalletV2Onchain)
    onchain.wallet, onchain._search = _SlowWallet(), None  # type: ignore[assignment]
    onchain.wake = lambda: None  # type: ignore[method-assign]
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(onchain.address(), 0.05)
    retry = asyncio.create_task(onchain.address())
    await asyncio.sleep(0.01)
    onchain.wallet.go.set()  # type: ignore[attr-defined]
    assert (await retry)["address"] == "bcrt1-1"
    assert onchain.wallet.ground == 1  # type: ignore[attr-defined]


async def test_deposits_are_scanned_while_an_address_is_ground_ahead() -> None:
    """The background loop's step scans for deposits at once: the address it keeps ready is
    ground beside (seconds of CPU; minutes on a busy machine), never before the scan."""
    scanned = []
    wallet = _SlowWallet()
    wallet.scan = lambda: asyncio.sleep(0, scanned.append(1))  # type: ignore[attr-defined]
    onchain = WalletV2Onchain.__new__(WalletV2Onchain)
    onchain.wallet, onchain.ready, onchain._ahead = wallet, 1, None  # type: ignore[assignment]
    await asyncio.wait_for(onchain.run_once(), 1)
    await asyncio.wait_for(onchain.run_once(), 1)  # the search still on: not a second one
    assert scanned == [1, 1] and wallet.ground == 0 and not onchain._ahead.done()  # type: ignore[union-attr]
    wallet.go.set()
    await asyncio.wait_for(onchain._ahead, 1)  # type: ignore[arg-type]
    assert wallet.ready == ["bcrt1-1"]
