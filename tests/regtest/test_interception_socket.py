"""The interception websocket of a node: a client gone during the handshake leaves the node's one
interceptor slot free (it held it for ever: every later interceptor got 409, seen as the lnd
stand-in's stream never coming back under load)."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from devworld.regtest.app import World

from .conftest import node


async def test_a_handshake_that_fails_frees_the_interceptor_slot(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    node(world, "gw", fund_sat=0)
    client = TestClient(TestServer(world.api.app()))
    await client.start_server()
    headers = {"Authorization": f"Bearer {world.api_token}"}
    url = "/v1/nodes/gw/htlcs/intercept"
    real_prepare = web.WebSocketResponse.prepare

    async def reset(self, request):  # type: ignore[no-untyped-def]
        raise ConnectionResetError("the client went away during the handshake")

    try:
        monkeypatch.setattr(web.WebSocketResponse, "prepare", reset)
        with pytest.raises(Exception):  # noqa: B017 - whatever the client sees of a reset
            await client.ws_connect(url, headers=headers)
        monkeypatch.setattr(web.WebSocketResponse, "prepare", real_prepare)
        ws = await client.ws_connect(url, headers=headers)  # was: 409, for ever
        await ws.close()
        again = await client.ws_connect(url, headers=headers)  # and freed on close, as before
        await again.close()
    finally:
        await client.close()
