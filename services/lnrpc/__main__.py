"""`gateway-lnrpc-extension --backend sim|lnd`: the GatewayLightning gRPC server beside a node."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from gwcore.constants import PROGRAM_LNRPC
from gwcore.extension import ExtensionConfigError, ExtensionEndpoint
from gwcore.files import keep_private
from gwcore.lifetime import die_with_parent
from gwcore.logging import configure_logging

from .backend import LightningBackend
from .server import ExtensionServer
from .settings import LnrpcSettings


def create_backend(settings: LnrpcSettings) -> LightningBackend:
    if settings.backend == "sim":
        from .sim import SimBackend

        return SimBackend.from_data_dir(settings.sim_regtest_dir, settings.sim_node)
    from .lnd import LndBackend

    return LndBackend.from_files(
        settings.lnd_host, settings.lnd_tls_cert.expanduser(), settings.lnd_macaroon.expanduser()
    )


def endpoint(settings: LnrpcSettings) -> ExtensionEndpoint:
    """Where to listen: the unix socket in the run dir unless told; TCP only with mutual TLS."""
    return ExtensionEndpoint.parse(settings.listen, settings.tls_dir, run_dir=settings.run_dir)


def create_server(settings: LnrpcSettings) -> ExtensionServer:
    return ExtensionServer(
        create_backend(settings), endpoint(settings), reflection_enabled=settings.reflection
    )


async def _wait_for_world(settings: LnrpcSettings) -> None:
    """Processes start in any order: wait for the regtest world's endpoints file."""
    info = settings.sim_regtest_dir / "regtestd.json"
    while settings.backend == "sim" and not info.exists():  # noqa: ASYNC110 - polling a file
        await asyncio.sleep(0.2)


def main(argv: list[str] | None = None) -> None:
    keep_private()  # files and sockets it makes: 0600, folders 0700
    parser = argparse.ArgumentParser(prog=PROGRAM_LNRPC, description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sim", "lnd"])
    parser.add_argument(
        "--listen",
        help="unix:PATH (default: unix:<run dir>/lnrpc/extension.sock) or HOST:PORT (needs --tls-dir)",
    )
    parser.add_argument("--run-dir", type=Path)
    parser.add_argument(
        "--tls-dir", help="TCP: the folder of `gateway-cli make-extension-certs` (mutual TLS)"
    )
    parser.add_argument("--sim-regtest-dir", type=Path)
    parser.add_argument("--sim-node")
    parser.add_argument("--lnd-host")
    parser.add_argument("--lnd-tls-cert", type=Path)
    parser.add_argument("--lnd-macaroon", type=Path)
    parser.add_argument("--reflection", action="store_true", default=None)
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if v is not None}
    settings = LnrpcSettings(**overrides)
    configure_logging(PROGRAM_LNRPC, settings.log_level)
    die_with_parent()  # supervisord killed outright: we end too (gwcore/lifetime.py)
    try:
        endpoint(settings)
    except ExtensionConfigError as exc:
        print(f"{PROGRAM_LNRPC}: {exc}", file=sys.stderr)
        sys.exit(2)

    async def run() -> None:
        await _wait_for_world(settings)
        try:
            server = create_server(settings)
        except ExtensionConfigError as exc:
            print(f"{PROGRAM_LNRPC}: {exc}", file=sys.stderr)
            sys.exit(2)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await server.start()
        await stop.wait()
        await server.stop()

    asyncio.run(run())


if __name__ == "__main__":
    main()
