"""The guardians' API on scripted websocket guardians: agreement by threshold, outvoted liars,
waiting below the threshold, long polls re-issued after the server's timeout, verified answers,
reconnects. (Against real guardians: tests/fedimint/shared/test_api.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from fmclient.api import ApiError, FederationApi, NoConsensus, PeerUnreachable

from .guardians import Rpc, scripted, serving

FAST = {"retry_delay": (0.02, 0.2)}


@contextlib.asynccontextmanager
async def guardians(*answers):  # type: ignore[no-untyped-def]
    async with contextlib.AsyncExitStack() as stack:
        urls = [await stack.enter_async_context(serving(scripted(a))) for a in answers]
        api = FederationApi(dict(enumerate(urls)), **FAST)
        try:
            yield api
        finally:
            await api.close()


def honest(method, params, n):  # type: ignore[no-untyped-def]
    return {"method": method, "params": params}


def liar(method, params, n):  # type: ignore[no-untyped-def]
    return {"method": method, "params": "lies"}


def failing(method, params, n):  # type: ignore[no-untyped-def]
    raise Rpc(500, "internal error")


async def test_threshold_and_liars() -> None:
    async with guardians(honest, honest, liar, honest) as api:
        assert (api.threshold, api.max_evil, api.one_honest) == (3, 1, 2)
        assert await api.current_consensus("m", [1]) == {"method": "m", "params": [1]}
    async with guardians(honest, liar, liar, honest) as api:  # two liars: no agreement
        with pytest.raises(NoConsensus, match="fewer than 3"):
            await api.current_consensus("m", 1, timeout=0.5)
    async with guardians(honest) as api:  # one guardian: its word
        assert api.threshold == 1 and await api.current_consensus("m") == honest("m", None, 1)


async def test_below_the_threshold_it_waits_and_completes_when_guardians_return() -> None:
    back = time.monotonic() + 0.6

    def returns(method, params, n):  # type: ignore[no-untyped-def]
        if time.monotonic() < back:
            raise Rpc(500, "not yet")
        return honest(method, params, n)

    async with guardians(honest, failing, returns, honest) as api:
        started = time.monotonic()
        assert await api.current_consensus("m", timeout=10) == honest("m", None, 1)
        assert time.monotonic() - started >= 0.5


async def test_a_down_guardian_is_unreachable_and_outvoted() -> None:
    async with guardians(honest, honest, honest) as api:
        api.peers[3] = type(api.peers[0])(3, "ws://127.0.0.1:9/", backoff=(0.02, 0.2))
        api.threshold = 3
        assert await api.current_consensus("m") == honest("m", None, 1)
        with pytest.raises(PeerUnreachable):
            await api.request_peer(3, "m")


async def test_long_polls_are_reissued_after_the_server_timeout() -> None:
    def slow(method, params, n):  # type: ignore[no-untyped-def]
        if n < 3:
            raise Rpc(-32000, "Request timeout")
        return "accepted"

    async with guardians(slow) as api:
        with pytest.raises(ApiError) as err:
            await api.request_peer(0, "await_transaction")
        assert err.value.code == -32000
        assert await api.request_peer(0, "await_transaction", long_poll=True) == "accepted"


async def test_verified_answers_and_a_slow_guardian() -> None:
    async def slow(method, params, n):  # type: ignore[no-untyped-def]
        await asyncio.sleep(5)
        return 4

    def share(value):  # type: ignore[no-untyped-def]
        return lambda method, params, n: value

    async with guardians(share(1), share(-2), slow, share(3)) as api:
        got = await api.verified("shares", None, lambda peer, v: v if v > 0 else None, want=2)
        assert got == {0: 1, 3: 3}
        first = await api.first_verified("shares", None, lambda peer, v: v if v > 2 else None)
        assert first == 3


async def test_a_dropped_connection_is_reconnected() -> None:
    async with guardians(honest) as api:
        assert await api.request_peer(0, "a") == honest("a", None, 1)
        ws = api.peers[0]._ws
        assert ws is not None
        await ws.close()
        await asyncio.sleep(0.05)
        assert await api.request_peer(0, "b") == honest("b", None, 1)
