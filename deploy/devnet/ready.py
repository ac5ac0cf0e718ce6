"""Making the local world ready, idempotently: every step looks first and does only what is
missing, so `make run` on a running or stopped world just brings it back.

1. the chain: bitcoind's `miner` wallet with mature coins;
2. each federation set up (the guardians' setup ceremony, once) and synced to the chain;
3. Lightning: alice -> gateway -> bob, public channels, funded from the miner;
4. the gateway under its supervisord on the gateway's lnd node, connected to each federation
   and added by every guardian (LNv2), with e-cash from a peg-in;
5. a fedimint-cli user per federation, joined and paid e-cash by the gateway.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx

from peers.cache import fedimint_bin
from peers.harness.fedimintd import Federation, federation_of, set_up
from peers.harness.lnd import LndWorld
from peers.harness.procs import PeerFailed
from services.cli.client import ApiError, GatewayApi

from .peers import MODULE_SETS, Peers

T = TypeVar("T")
STARTED = time.monotonic()
GATEWAY_ECASH_SAT = 2_000_000  # the gateway's peg-in into each federation
USER_ECASH_MSAT = 500_000_000  # what the gateway gives each user
USER_MIN_MSAT = 100_000_000  # a user below this is paid again


def say(text: str) -> None:
    """A progress line, with the seconds since `make run` started."""
    print(f"  {time.monotonic() - STARTED:5.0f} s  {text}", flush=True)


def wait(check: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except ApiError as exc:
            if exc.kind == "invalid":  # asked wrongly: waiting will not help
                raise SystemExit(f"make run: {what}: {exc.code}: {exc.message}") from None
            value = None
        except (OSError, httpx.HTTPError, PeerFailed, ValueError, KeyError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"make run: timed out waiting for {what}")
        time.sleep(0.3)


def chain(peers: Peers) -> None:
    node = peers.bitcoind
    node.wait_ready(90)
    wallets = node.rpc("listwallets")
    if "miner" not in wallets:
        try:
            node.rpc("loadwallet", "miner")
        except Exception:
            node.rpc("createwallet", "miner")
    if node.height() < 101:
        node.mine(101 - node.height())  # coinbases mature after 100 blocks


def federations(peers: Peers) -> dict[str, Federation]:
    out = {}
    modules = MODULE_SETS[peers.plan.modules]
    for name, members in peers.guardians.items():
        for g in members:
            g.proc.wait_for(lambda g=g: g.call("setup_status") or True, 120, "its API")  # type: ignore[union-attr]
        if not (members[0].data_dir / "invite-code").is_file():
            say(f"setting up federation {name} ({len(members)} guardian(s))")
            set_up(members, name, False, modules, 180)
        fed = federation_of(members, 180)
        fed.wait_synced(peers.bitcoind, 120)
        out[name] = fed
    return out


def lightning(peers: Peers) -> LndWorld:
    for node in peers.lnd.values():
        node.wait_ready(180)
    world = LndWorld(peers.folder / "lnd", peers.bitcoind, dict(peers.lnd), own_chain=False)
    if world.connect():
        say("opened channels alice -> gateway -> bob")
    return world


def gateway(
    api: GatewayApi, feds: dict[str, Federation], peers: Peers, api_url: str
) -> dict[str, dict]:
    """Connect the gateway to each federation, have every guardian add it, fund it by a peg-in
    where it has no e-cash yet: {name: the gateway's info on it}."""
    wait(
        lambda: httpx.get(api_url + "/openapi.json", timeout=2).status_code == 200,
        90,
        "the gateway API",
    )
    wait(lambda: api.lightning()["node"]["synced"], 120, "the gateway's Lightning node")
    known = {f["federation_id"] for f in api.info()["federations"]}
    for name, fed in feds.items():
        if fed.federation_id not in known:
            say(f"connecting the gateway to {name}")
            wait(lambda fed=fed: _connect(api, fed.invite_code), 180, f"connecting {name}")
    infos = {f["federation_id"]: f for f in api.info()["federations"]}
    pending = []
    for name, fed in feds.items():
        url = infos[fed.federation_id].get("lnv2_gateway_url")
        if url and "lnv2" in fed.module_ids:
            fed.add_gateway(url)  # an admin call per guardian; adding twice changes nothing
        if infos[fed.federation_id]["balance_msat"] == 0:
            dep = api.address_for(fed.federation_id)
            peers.bitcoind.send(dep["address"], GATEWAY_ECASH_SAT)
            pending.append((name, fed, dep))
    if pending:
        say("funding the gateway by peg-in")
        peers.bitcoind.mine(21)  # past walletv2's 7 blocks and wallet v1's finality delay
        for name, fed, dep in pending:
            fed.wait_synced(peers.bitcoind, 120)
            wait(
                lambda fed=fed, dep=dep: api.deposit(fed.federation_id, dep["operation_id"], 30),
                300,
                f"the gateway's peg-in into {name}",
            )
    return {name: infos[fed.federation_id] for name, fed in feds.items()}


def _connect(api: GatewayApi, invite: str) -> dict | None:
    try:
        return api.connect_fed(invite)
    except ApiError as exc:
        if exc.kind == "invalid":
            raise SystemExit(f"make run: connect: {exc.code}: {exc.message}") from None
        return None


def fedimint_cli(data_dir: Path, *args: str, timeout: float = 300) -> object:
    out = subprocess.run(
        [str(fedimint_bin("fedimint-cli")), "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "FM_IN_DEVIMINT": "1"},
    )
    if out.returncode != 0:
        raise SystemExit(f"make run: fedimint-cli {args[0]}: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout)


def users(api: GatewayApi, feds: dict[str, Federation], users_dir: Path) -> dict[str, Path]:
    """A fedimint-cli user per federation (`users_dir/<name>`), paid e-cash by the gateway."""
    out = {}
    for name, fed in feds.items():
        data_dir = users_dir / name
        if not (data_dir / "client.db").exists():
            data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fedimint_cli(data_dir, "join", fed.invite_code)
        balance = int(fedimint_cli(data_dir, "info")["total_amount_msat"])  # type: ignore[index]
        if balance < USER_MIN_MSAT:
            say(f"paying {name}'s user e-cash")
            spent = api.spend_ecash(fed.federation_id, USER_ECASH_MSAT)
            module = "mint" if "mint" in fed.module_ids else "mintv2"
            verb = "reissue" if module == "mint" else "receive"
            fedimint_cli(data_dir, "module", module, verb, spent["notes"])
            fedimint_cli(data_dir, "dev", "wait-complete")  # the new notes in the wallet
        out[name] = data_dir
    return out
