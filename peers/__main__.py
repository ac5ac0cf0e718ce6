"""`python -m peers install [--bench]`: install the real peers (what `make peers` runs; --bench:
also gatewayd, what `make bench-peers` runs).
`python -m peers lnd [--dir D]`: btcd and real lnd nodes alice -> gateway -> bob, until Ctrl-C.
`python -m peers federation [--guardians N] [--modules v1|v2] [--dir D]`: a real bitcoind and a real fedimintd
federation on loopback, set up from nothing; prints its invite code, guardians' API URLs and
admin passwords as JSON, and runs until Ctrl-C (then stops every process it started)."""

from __future__ import annotations

import contextlib
import json
import signal
import tempfile
import threading
from pathlib import Path

import click

from .cache import install_all
from .harness.bitcoind import Bitcoind
from .harness.btcd import Btcd
from .harness.fedimintd import DEFAULT_MODULES, V1_MODULES, start_federation
from .harness.lnd import LndWorld


@click.group()
def cli() -> None:
    pass


@cli.command()
@click.option("--bench", is_flag=True, help="also fedimint's own gatewayd, for the benchmarks")
def install(bench: bool) -> None:
    """Build or fetch the pinned peers into the cache (nothing to do when they are there)."""
    install_all(bench)


@cli.command()
@click.option("--guardians", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--dir", "folder", type=click.Path(path_type=Path), help="default: a temp folder")
@click.option("--disable-base-fees", is_flag=True)
@click.option(
    "--modules",
    type=click.Choice(["v2", "v1"]),
    default="v2",
    show_default=True,
    help="v2: fedimintd 0.13's defaults; v1: mint, wallet, ln (+ lnv2), as fedimintd 0.11 set up",
)
def federation(guardians: int, folder: Path | None, disable_base_fees: bool, modules: str) -> None:
    """A bitcoind and a federation of GUARDIANS (1, or 4 and more) until Ctrl-C."""
    folder = folder or Path(tempfile.mkdtemp(prefix="fmgw-federation-"))
    node = Bitcoind.start(folder / "bitcoind")
    try:
        fed = start_federation(
            folder / "federation",
            node,
            guardians,
            disable_base_fees=disable_base_fees,
            modules=V1_MODULES if modules == "v1" else DEFAULT_MODULES,
        )
        try:
            described = fed.describe()
            described["bitcoind"] = {
                "rpc_url": node.url,
                "user": node.user,
                "password": node.password,
            }
            click.echo(json.dumps(described, indent=2))
            click.echo(f"logs in {folder}; Ctrl-C stops everything", err=True)
            done = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: done.set())
            with contextlib.suppress(KeyboardInterrupt):
                done.wait()
        finally:
            fed.stop()
    finally:
        node.stop()


@cli.command("lnd")
@click.option("--dir", "folder", type=click.Path(path_type=Path), help="default: a temp folder")
def lnd_world(folder: Path | None) -> None:
    """A btcd and real lnd nodes alice -> gateway -> bob, until Ctrl-C."""
    folder = folder or Path(tempfile.mkdtemp(prefix="fmgw-lnd-"))
    world = LndWorld.start(folder)
    try:
        described = {
            name: {
                "pubkey": n.pubkey,
                "rpc_host": n.rpc_host,
                "tls_cert": str(n.tls_cert),
                "macaroon": str(n.macaroon),
                "lncli": f"lncli --lnddir={n.folder} --network=regtest --rpcserver={n.rpc_host}",
            }
            for name, n in world.nodes.items()
        }
        chain = world.chain
        assert isinstance(chain, Btcd)
        described["btcd"] = {"rpc_host": chain.rpc_host, "cert": str(chain.cert)}
        click.echo(json.dumps(described, indent=2))
        click.echo(f"logs in {folder}; Ctrl-C stops everything", err=True)
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        with contextlib.suppress(KeyboardInterrupt):
            done.wait()
    finally:
        world.stop()


if __name__ == "__main__":
    cli()
