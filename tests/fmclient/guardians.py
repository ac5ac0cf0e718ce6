"""Guardians for API tests on loopback: a lying proxy in front of a real guardian (it forwards
every request and corrupts the answers), and scripted JSON-RPC websocket guardians for unit
tests (answers as jsonrpsee gives them: `result`, or `error {code, message}`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, ServerConnection, serve


@contextlib.asynccontextmanager
async def serving(handler: Callable[[ServerConnection], Any]) -> AsyncIterator[str]:
    server: Server = await serve(handler, "127.0.0.1", 0)
    port = next(iter(server.sockets)).getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}/"
    finally:
        server.close()
        await server.wait_closed()


def lying_proxy(upstream: str, corrupt: Callable[[str, Any], Any]) -> Callable:
    """A handler forwarding to `upstream`, passing each result through `corrupt(method, r)`."""

    async def handler(client: ServerConnection) -> None:
        async with connect(upstream, max_size=2**26) as guardian:
            methods: dict[int, str] = {}

            async def up() -> None:
                async for message in client:
                    request = json.loads(message)
                    methods[request["id"]] = request["method"]
                    await guardian.send(message)

            async def down() -> None:
                async for message in guardian:
                    answer = json.loads(message)
                    if "result" in answer:
                        answer["result"] = corrupt(methods.get(answer["id"], ""), answer["result"])
                    await client.send(json.dumps(answer))

            tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in tasks:
                t.cancel()

    return handler


def scripted(answer: Callable[[str, Any, int], Any]) -> Callable:
    """A guardian whose `answer(method, params, n)` (n: how many times asked) gives a result,
    raises `Rpc(code, message)` for a JSON-RPC error, or is a coroutine (a slow guardian)."""
    asked: dict[str, int] = {}

    async def handler(ws: ServerConnection) -> None:
        async def one(request: dict) -> None:
            method = request["method"]
            asked[method] = asked.get(method, 0) + 1
            reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request["id"]}
            try:
                result = answer(method, request["params"][0]["params"], asked[method])
                if asyncio.iscoroutine(result):
                    result = await result
                reply["result"] = result
            except Rpc as exc:
                reply["error"] = {"code": exc.code, "message": exc.message}
            with contextlib.suppress(Exception):
                await ws.send(json.dumps(reply))

        running: set[asyncio.Task] = set()
        async for message in ws:
            task = asyncio.create_task(one(json.loads(message)))
            running.add(task)
            task.add_done_callback(running.discard)

    return handler


class Rpc(Exception):
    def __init__(self, code: int, message: str) -> None:
        self.code, self.message = code, message
