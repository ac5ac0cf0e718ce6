"""The Core Lightning plugin process: what lightningd sees of the extension.

Owns the pyln-client `Plugin`: the `fm-gateway-listen` option (`unix:PATH`, for a gateway
running as lightningd's user on the same host, or `HOST:PORT`, which needs the
`fm-gateway-tls-dir` option: mutual TLS, see `gwcore.extension`), `init` (starts the gRPC server,
with the `ClnBackend`, on a thread and event loop of its own, and waits until it serves; a
listen it cannot use disables the plugin, with the reason, and serves nothing), the
`htlc_accepted` hook (async: answered later, from the gRPC thread, by the backend) and the
`shutdown` notification (stops the server, exits 0). Nothing is written to stdout, lightningd's
JSON-RPC channel: logs go to stderr and `plugin.log`.

Not dynamic (getmanifest `dynamic: false`): what lightningd does with held `htlc_accepted` calls
(lightningd/plugin.c, plugin_hook.c) makes a restart of the plugin alone unsafe. A plugin that
dies while lightningd runs has its pending hook calls answered as `continue` at once: forwards
to the gateway's virtual scids fail (unknown_next_peer), HTLCs of its hold invoices fail
(lightningd has no such invoice); they are not replayed to the next plugin. When lightningd
itself shuts down, pending hook calls are abandoned instead and replayed at its next start. So
the plugin is restarted and upgraded by restarting lightningd (docs/operating.md, section 3).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from typing import TYPE_CHECKING, Any

from pyln.client import Plugin

from gwcore.extension import ExtensionConfigError, ExtensionEndpoint

from .server import ExtensionServer

if TYPE_CHECKING:
    from .cln import ClnBackend

OPTION_LISTEN = "fm-gateway-listen"
OPTION_TLS_DIR = "fm-gateway-tls-dir"


def run(backend_class: type[ClnBackend]) -> None:
    """Set the plugin up (options, init, hook, shutdown) and run it until `shutdown`."""
    # not dynamic: `lightning-cli plugin stop` would make lightningd answer every HTLC we hold
    # `continue` (failed, never replayed; an LNv2 receive whose contract the gateway funded
    # would lose its amount). lightningd refuses to stop or start a non-dynamic plugin while it
    # runs; a restart of lightningd abandons the held hook calls and replays them at its start.
    plugin = Plugin(dynamic=False)
    plugin.add_option(
        OPTION_LISTEN,
        "",
        "where the gateway's GatewayLightning gRPC service listens: unix:PATH (the gateway runs"
        " as this user on this host) or HOST:PORT (mutual TLS: needs fm-gateway-tls-dir)",
    )
    plugin.add_option(
        OPTION_TLS_DIR,
        "",
        "for HOST:PORT: the folder with ca.crt, extension.crt and extension.key"
        " (gateway-cli make-extension-certs)",
    )
    state: dict[str, Any] = {}

    def serve(backend: ClnBackend, listen: ExtensionEndpoint, ready: threading.Event) -> None:
        async def run() -> None:
            try:
                server = ExtensionServer(backend, listen)
            except ExtensionConfigError as exc:
                state["error"] = str(exc)
                ready.set()
                return
            stop = asyncio.Event()
            await server.start()
            state["stop"] = lambda: server_loop.call_soon_threadsafe(stop.set)
            ready.set()
            await stop.wait()
            await server.stop(2.0)

        server_loop = asyncio.new_event_loop()
        try:
            server_loop.run_until_complete(run())
        except Exception as exc:
            plugin.log(f"gRPC server failed: {exc}", level="broken")
            if not ready.is_set():
                state["error"] = f"gRPC server failed: {exc}"
                ready.set()

    @plugin.init()
    def init(options: dict, configuration: dict, plugin: Plugin, **kwargs: Any) -> dict | None:
        try:
            if not plugin.get_option(OPTION_LISTEN):
                raise ExtensionConfigError(
                    f"set {OPTION_LISTEN}: unix:PATH, or HOST:PORT with {OPTION_TLS_DIR}"
                )
            listen = ExtensionEndpoint.parse(
                plugin.get_option(OPTION_LISTEN), plugin.get_option(OPTION_TLS_DIR) or None
            )
        except ExtensionConfigError as exc:
            plugin.log(f"not serving the gateway: {exc}", level="broken")
            return {"disable": str(exc)}
        backend = backend_class(plugin.rpc)
        ready = threading.Event()
        t = threading.Thread(target=serve, args=(backend, listen, ready), name="grpc", daemon=True)
        state["thread"] = t
        t.start()
        ready.wait(30)
        if "error" in state:
            plugin.log(f"not serving the gateway: {state['error']}", level="broken")
            return {"disable": state["error"]}
        state["backend"] = backend
        plugin.log(f"GatewayLightning gRPC on {listen.address}")
        return None

    @plugin.async_hook("htlc_accepted")
    def on_htlc_accepted(
        onion: dict, htlc: dict, request: Any, plugin: Plugin, **kwargs: Any
    ) -> None:
        backend = state.get("backend")
        if backend is None:
            request.set_result({"result": "continue"})
            return
        backend.hook.on_htlc_accepted(onion, htlc, request)

    @plugin.subscribe("shutdown")
    def on_shutdown(plugin: Plugin, **kwargs: Any) -> None:
        if "stop" in state:
            state["stop"]()
            state["thread"].join(10)
        sys.exit(0)

    logging.basicConfig(stream=sys.stderr, level=logging.INFO)
    plugin.run()
