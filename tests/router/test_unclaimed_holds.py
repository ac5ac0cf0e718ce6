"""A hold-invoice HTLC whose payment hash no federation claims (services/router/htlcs.py): held
while a recovery from the seed may still claim it, sent to the claiming federation when one
does, cancelled only near its expiry; the extension away is asked again, never a verdict. An
HTLC for a virtual scid no federation has is held the same way by a new registry (the lost
folder's federation comes back with the scid derived from its id) and forwarded by an old one
or when the scid is a real channel's."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from gwproto import gateway_lnrpc_pb2 as lnpb
from services.router.htlcs import UNCLAIMED_HOLD_MARGIN, HtlcDispatch
from services.router.registry import FederationEntry, FederationRegistry, virtual_scid

HASH = bytes.fromhex("ab" * 32)
ENTRY = FederationEntry("ef" * 32, 7, "fed", "fed11", "ws://g", "actor-ef", "running")


class Registry:
    def __init__(self, claimed_after: int | None) -> None:
        self.looks, self.claimed_after = 0, claimed_after

    def by_payment_hash(self, payment_hash: str) -> FederationEntry | None:
        assert payment_hash == HASH.hex()
        self.looks += 1
        if self.claimed_after is not None and self.looks > self.claimed_after:
            return ENTRY
        return None


class Unavailable(grpc.aio.AioRpcError):
    def __init__(self) -> None:
        super().__init__(grpc.StatusCode.UNAVAILABLE, None, None, "the extension is away")


class Stub:
    """GetNodeInfo: the heights given, one per call (an exception is raised), the last kept."""

    def __init__(self, *heights: int | Exception) -> None:
        self.heights, self.calls = list(heights), 0

    async def GetNodeInfo(self, request: lnpb.GetNodeInfoRequest, timeout: float) -> object:
        self.calls += 1
        height = self.heights.pop(0) if len(self.heights) > 1 else self.heights[0]
        if isinstance(height, Exception):
            raise height
        return lnpb.GetNodeInfoResponse(block_height=height)


def _dispatch(registry: Registry) -> HtlcDispatch:
    d = HtlcDispatch.__new__(HtlcDispatch)  # only what _claimed_later uses
    d.registry, d.unclaimed_poll_s = registry, 0.0
    return d


def _by_hash(registry: Registry) -> Callable[[], FederationEntry | None]:
    return lambda: registry.by_payment_hash(HASH.hex())


def _htlc(expiry: int) -> lnpb.InterceptedHtlc:
    return lnpb.InterceptedHtlc(
        payment_hash=HASH, incoming_chan_id=1, htlc_id=2, incoming_expiry=expiry, hold_invoice=True
    )


async def test_held_until_a_recovery_claims_its_hash() -> None:
    registry = Registry(claimed_after=3)
    stub = Stub(100, Unavailable(), 101, 101)
    got = await _dispatch(registry)._claimed_later(stub, _htlc(expiry=200), _by_hash(registry), "x")  # type: ignore[arg-type]
    assert got == ENTRY and registry.looks == 4 and stub.calls == 4


async def test_cancelled_near_its_expiry_when_nobody_claims_it() -> None:
    registry = Registry(claimed_after=None)
    stub = Stub(150, 170, 200 - UNCLAIMED_HOLD_MARGIN - 1, 200 - UNCLAIMED_HOLD_MARGIN)
    got = await _dispatch(registry)._claimed_later(stub, _htlc(expiry=200), _by_hash(registry), "x")  # type: ignore[arg-type]
    assert got is None and stub.calls == 4 and registry.looks == 3


@pytest.mark.parametrize("height", [200 - UNCLAIMED_HOLD_MARGIN, 250])
async def test_already_near_its_expiry_is_not_held(height: int) -> None:
    registry = Registry(claimed_after=0)
    got = await _dispatch(registry)._claimed_later(
        Stub(height), _htlc(expiry=200), _by_hash(registry), "x"
    )  # type: ignore[arg-type]
    assert got is None and registry.looks == 0


class Broker:
    """The actor's answer to an HTLC: settle with a preimage."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, dict]] = []

    async def request(self, service: str, method: str, body: bytes, **kw: Any) -> bytes:
        self.asked.append((service, json.loads(body)))
        return json.dumps({"action": "settle", "preimage": "11" * 32}).encode()


class Node(Stub):
    """GetNodeInfo at height 100; after `add_after` calls `add()` runs (a federation comes
    back); CompleteHtlc recorded."""

    def __init__(self, add_after: int, add: Callable[[], object]) -> None:
        super().__init__(100)
        self.add_after, self.add, self.completed = add_after, add, []

    async def GetNodeInfo(self, request: lnpb.GetNodeInfoRequest, timeout: float) -> object:
        if self.calls == self.add_after:
            self.add()
        return await super().GetNodeInfo(request, timeout)

    async def CompleteHtlc(self, request: lnpb.CompleteHtlcRequest, timeout: float) -> object:
        self.completed.append(request)
        return lnpb.CompleteHtlcResponse()


FED = "ef" * 32


def _scid_dispatch(tmp_path: Path) -> tuple[HtlcDispatch, FederationRegistry, Broker]:
    d = HtlcDispatch.__new__(HtlcDispatch)
    registry, broker = FederationRegistry(tmp_path / "router.sqlite"), Broker()
    d.registry, d.broker, d.unclaimed_poll_s, d.completed = registry, broker, 0.0, 0
    return d, registry, broker


def _forward(scid: int) -> lnpb.InterceptedHtlc:
    return lnpb.InterceptedHtlc(
        payment_hash=HASH, incoming_chan_id=1, htlc_id=2, incoming_expiry=200, short_channel_id=scid
    )


def test_a_federations_scid_is_derived_from_its_id(tmp_path: Path) -> None:
    registry = FederationRegistry(tmp_path / "a.sqlite")
    entry = registry.add(FED, "fed", "fed11", "ws://g", "actor-ef")
    assert entry.scid == virtual_scid(FED) < 1 << 40  # block height 0
    again = FederationRegistry(tmp_path / "b.sqlite")  # a new data folder: the same scid
    assert again.add(FED, "fed", "fed11", "ws://g", "actor-ef").scid == entry.scid
    # another federation whose derived scid is taken gets the next attempt's
    taken = FederationRegistry(tmp_path / "c.sqlite")
    taken.db.execute(
        "INSERT INTO federations VALUES (?, 'other', 'o', 'fed11', 'ws://o', 'p', 'left', 0, 0, 1)",
        (virtual_scid(FED),),
    )
    assert taken.add(FED, "fed", "fed11", "ws://g", "actor-ef").scid == virtual_scid(FED, 1)


async def test_a_virtual_scid_is_held_until_its_federation_comes_back(tmp_path: Path) -> None:
    d, registry, broker = _scid_dispatch(tmp_path)
    scid = virtual_scid(FED)
    node = Node(3, lambda: registry.add(FED, "fed", "fed11", "ws://g", "actor-ef"))
    await d._dispatch(node, _forward(scid))  # type: ignore[arg-type]
    assert node.calls == 4 and [s for s, _ in broker.asked] == [FED]
    assert broker.asked[0][1]["short_channel_id"] == scid
    (done,) = node.completed
    assert done.WhichOneof("action") == "settle" and done.settle.preimage == bytes([0x11] * 32)


@pytest.mark.parametrize("old", [False, True])
async def test_forwarded_when_real_or_the_registry_is_old(tmp_path: Path, old: bool) -> None:
    d, registry, broker = _scid_dispatch(tmp_path)
    scid = virtual_scid(FED)
    if old:  # a gateway serving a federation for two days: no lost folder to wait for
        registry.add("aa" * 32, "other", "fed11", "ws://o", "actor-aa")
        registry.db.execute("UPDATE federations SET created = ?", (int(time.time()) - 2 * 86400,))
    else:
        scid = (700_000 << 40) | (5 << 16) | 1  # a real channel's scid
    node = Node(99, lambda: None)
    await d._dispatch(node, _forward(scid))  # type: ignore[arg-type]
    (done,) = node.completed
    assert done.WhichOneof("action") == "forward" and node.calls == 0 and broker.asked == []
