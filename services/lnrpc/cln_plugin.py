"""The Core Lightning plugin process: what lightningd sees of the extension.

Owns the pyln-client `Plugin`: the `fm-gateway-listen` option, `init` (starts the gRPC server,
with the `ClnBackend`, on a thread and event loop of its own, and waits until it serves), the
`htlc_accepted` hook (async: answered later, from the gRPC thread, by the backend) and the
`shutdown` notification (stops the server, exits 0). Nothing is written to stdout, lightningd's
JSON-RPC channel: logs go to stderr and `plugin.log`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from typing import TYPE_CHECKING, Any

from pyln.client import Plugin

from .server import ExtensionServer

if TYPE_CHECKING:
    from .cln import ClnBackend

OPTION_LISTEN = "fm-gateway-listen"


def run(backend_class: type[ClnBackend]) -> None:
    """Set the plugin up (option, init, hook, shutdown) and run it until `shutdown`."""
    plugin = Plugin()
    plugin.add_option(
        OPTION_LISTEN, "127.0.0.1:8177", "HOST:PORT for the gateway's GatewayLightning gRPC service"
    )
    state: dict[str, Any] = {}

    def serve(backend: ClnBackend, listen: str, ready: threading.Event) -> None:
        async def run() -> None:
            server = ExtensionServer(backend, listen)
            stop = asyncio.Event()
            state["stop"] = lambda: server_loop.call_soon_threadsafe(stop.set)
            await server.start()
            ready.set()
            await stop.wait()
            await server.stop(2.0)

        server_loop = asyncio.new_event_loop()
        try:
            server_loop.run_until_complete(run())
        except Exception as exc:
            plugin.log(f"gRPC server failed: {exc}", level="broken")
            ready.set()

    @plugin.init()
    def init(options: dict, configuration: dict, plugin: Plugin, **kwargs: Any) -> None:
        backend = backend_class(plugin.rpc)
        state["backend"] = backend
        ready = threading.Event()
        t = threading.Thread(
            target=serve,
            args=(backend, plugin.get_option(OPTION_LISTEN), ready),
            name="grpc",
            daemon=True,
        )
        t.start()
        state["thread"] = t
        ready.wait(30)
        plugin.log(f"GatewayLightning gRPC on {plugin.get_option(OPTION_LISTEN)}")

    @plugin.async_hook("htlc_accepted")
    def on_htlc_accepted(
        onion: dict, htlc: dict, request: Any, plugin: Plugin, **kwargs: Any
    ) -> None:
        backend = state.get("backend")
        if backend is None:
            request.set_result({"result": "continue"})
            return
        backend.on_htlc_accepted(onion, htlc, request)

    @plugin.subscribe("shutdown")
    def on_shutdown(plugin: Plugin, **kwargs: Any) -> None:
        if "stop" in state:
            state["stop"]()
            state["thread"].join(10)
        sys.exit(0)

    logging.basicConfig(stream=sys.stderr, level=logging.INFO)
    plugin.run()
