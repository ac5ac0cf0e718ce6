"""A hold-invoice HTLC whose payment hash no federation claims (services/router/htlcs.py): held
while a recovery from the seed may still claim it, sent to the claiming federation when one
does, cancelled only near its expiry; the extension away is asked again, never a verdict."""

from __future__ import annotations

import grpc
import pytest

from gwproto import gateway_lnrpc_pb2 as lnpb
from services.router.htlcs import UNCLAIMED_HOLD_MARGIN, HtlcDispatch
from services.router.registry import FederationEntry

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


def _htlc(expiry: int) -> lnpb.InterceptedHtlc:
    return lnpb.InterceptedHtlc(
        payment_hash=HASH, incoming_chan_id=1, htlc_id=2, incoming_expiry=expiry, hold_invoice=True
    )


async def test_held_until_a_recovery_claims_its_hash() -> None:
    registry = Registry(claimed_after=3)
    stub = Stub(100, Unavailable(), 101, 101)
    got = await _dispatch(registry)._claimed_later(stub, _htlc(expiry=200))  # type: ignore[arg-type]
    assert got == ENTRY and registry.looks == 4 and stub.calls == 4


async def test_cancelled_near_its_expiry_when_nobody_claims_it() -> None:
    registry = Registry(claimed_after=None)
    stub = Stub(150, 170, 200 - UNCLAIMED_HOLD_MARGIN - 1, 200 - UNCLAIMED_HOLD_MARGIN)
    got = await _dispatch(registry)._claimed_later(stub, _htlc(expiry=200))  # type: ignore[arg-type]
    assert got is None and stub.calls == 4 and registry.looks == 3


@pytest.mark.parametrize("height", [200 - UNCLAIMED_HOLD_MARGIN, 250])
async def test_already_near_its_expiry_is_not_held(height: int) -> None:
    registry = Registry(claimed_after=0)
    got = await _dispatch(registry)._claimed_later(Stub(height), _htlc(expiry=200))  # type: ignore[arg-type]
    assert got is None and registry.looks == 0
