"""`make run`, `make stop`, `make status`: see deploy/devnet/__init__.py."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click

from deploy.launch import prepare_env
from gwcore.constants import ENV_DATA_DIR, ENV_DEVNET_DIR, ENV_RUN_DIR
from gwcore.devnet import DEVNET_DIR_NAME, WORLD_FILE
from gwcore.extension import ExtensionConfigError
from gwcore.files import keep_private, private_dir, write_private
from services.cli.client import GatewayApi

from . import ready
from .commands import write_commands
from .peers import Peers, Plan
from .supervisor import Supervisor

REPO = Path(__file__).resolve().parents[2]


def _devnet() -> Path:
    return Path(os.environ.get(ENV_DEVNET_DIR) or REPO / DEVNET_DIR_NAME)


def _gateway(devnet: Path, peers: Peers | None) -> Supervisor:
    """The gateway's supervisord (the repo's supervisord.conf) in <devnet>/run, on the world's
    lnd node `gateway` and bitcoind (the chain source wallet v1 federations need)."""
    env = dict(os.environ)
    env.setdefault(ENV_RUN_DIR, str(devnet / "run"))
    env.setdefault(ENV_DATA_DIR, str(devnet / "data"))
    if peers is None:  # to stop it or list it: its socket is all it takes
        return Supervisor(REPO / "supervisord.conf", Path(env[ENV_RUN_DIR]), env)
    node, chain = peers.lnd["gateway"], peers.bitcoind
    password_file = devnet / "world" / "bitcoind-password"
    write_private(password_file, chain.password)
    env.update(
        GATEWAY_LNRPC_BACKEND="lnd",
        GATEWAY_LNRPC_LND_HOST=node.rpc_host,
        GATEWAY_LNRPC_LND_TLS_CERT=str(node.tls_cert),
        GATEWAY_LNRPC_LND_MACAROON=str(node.macaroon),
        GATEWAY_ROUTER_BITCOIND_URL=chain.url,
        GATEWAY_ROUTER_BITCOIND_USERNAME=chain.user,
        GATEWAY_ROUTER_BITCOIND_PASSWORD_FILE=str(password_file),
    )
    try:
        env = prepare_env(Path(env[ENV_RUN_DIR]), Path(env[ENV_DATA_DIR]), env)
    except ExtensionConfigError as exc:  # e.g. GATEWAY_LNRPC_LISTEN on TCP without TLS
        raise SystemExit(f"make run: {exc}") from None
    return Supervisor(REPO / "supervisord.conf", Path(env[ENV_RUN_DIR]), env)


def _world_supervisor(devnet: Path) -> Supervisor:
    folder = devnet / "world"
    return Supervisor(folder / "supervisord.conf", folder, dict(os.environ))


@click.group()
def cli() -> None:
    keep_private()  # the world's files, its user wallets and supervisord's: 0600, folders 0700


@cli.command()
@click.option("--guardians", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--modules", type=click.Choice(["v2", "v1"]), default="v2", show_default=True)
def run(guardians: int, modules: str) -> None:
    """Start the world under supervisord (in the background) and make it ready."""
    if guardians != 1 and guardians < 4:
        raise SystemExit("make run: a federation has 1 guardian or at least 4 (GUARDIANS=4)")
    started = time.monotonic()
    devnet = _devnet()
    private_dir(devnet, tighten=True)
    plan = Plan.load_or_new(devnet / "world" / "plan.json", guardians, modules)
    peers = Peers(devnet / "world", plan, dict(os.environ))
    was_running = not peers.start()
    print("the world's peers: " + ("running" if was_running else "started"), flush=True)
    ready.chain(peers)
    feds = ready.federations(peers)
    ready.lightning(peers)
    gw = _gateway(devnet, peers)
    gw.start(log=devnet / "gateway.log")  # every gateway program's output
    api_url = f"http://{gw.env['GATEWAY_API_BIND']}"
    password = (gw.run_dir / "admin-password").read_text().strip()
    api = GatewayApi(api_url, password)
    infos = ready.gateway(api, feds, peers, api_url)
    wallets = ready.users(api, feds, devnet / "users")
    world = {
        "gateway": {"api_url": api_url, "password": password},
        "federations": [
            {
                "name": name,
                "federation_id": fed.federation_id,
                "invite_code": fed.invite_code,
                "modules": sorted(fed.module_ids),
                "lnv2_gateway_url": infos[name].get("lnv2_gateway_url"),
                "user_data_dir": str(wallets[name]),
            }
            for name, fed in feds.items()
        ],
    }
    write_private(devnet / WORLD_FILE, json.dumps(world, indent=2))  # holds the admin password
    write_commands(devnet, peers, wallets)
    took = time.monotonic() - started
    print(
        f"\nthe local world is {'already running' if was_running else 'running'} ({took:.0f} s;"
        " make stop stops it, make status lists it)"
    )
    print(f"  dashboard   : {api_url}/ui/   admin password: {password}")
    print(f"  HTTP API    : {api_url}   (OpenAPI at /openapi.json)")
    print(f"  world       : {devnet / WORLD_FILE}")
    print(f"  logs        : {devnet / 'gateway.log'} (the gateway), {devnet / 'world' / 'logs'}")
    print(f"  commands    : source {devnet / 'env'}   (the README's quick start)")


@cli.command()
def stop() -> None:
    """Stop the gateway, then the world's peers."""
    devnet = _devnet()
    gateway_was = _gateway(devnet, None).stop()
    world_was = _world_supervisor(devnet).stop()
    print("the local world is " + ("stopped" if gateway_was or world_was else "not running"))


@cli.command()
def status() -> None:
    """The gateway's programs, then the world's; "not running" (exit 0) when it is not."""
    devnet = _devnet()
    shown = False
    for title, sup in (("gateway", _gateway(devnet, None)), ("world", _world_supervisor(devnet))):
        if not sup.running():
            continue
        shown = True
        print(f"# {title}")
        for p in sup.processes():
            print(f"{p['name']:<40}{p['statename']:<10}{p['description']}")
    if not shown:
        print("the local world is not running (make run starts it)")


if __name__ == "__main__":
    cli(sys.argv[1:])
