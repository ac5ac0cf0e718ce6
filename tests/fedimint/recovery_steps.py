"""Steps of a lost data folder and its recovery from the seed, shared by the tests that prove it
on real federations (1 guardian: test_recovery.py; 4: test_gateway_fedimint4.py and
test_four_guardians_v1.py)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable

import httpx

from gwcore.constants import PROGRAM_ACTOR_PREFIX, PROGRAM_LNRPC, PROGRAM_ROUTER
from peers.cache import fedimint_bin
from peers.harness.fedimintd import Guardian
from services.router.supervisor import stop_and_wait
from tests.e2e.conftest import World, supervisor_rpc

from .conftest import User
from .test_gateway_fedimint import Gateway, _until

WORLD = ("regtest", "federations")  # the development world's parts of the data folder
PROGRAMS = (PROGRAM_LNRPC, PROGRAM_ROUTER, "gateway-api")  # the gateway's, actors aside
LIVE = ("RUNNING", "STARTING", "BACKOFF")  # supervisord's states of a program not stopped


def lose_data_folder(tree: dict, keep: tuple[str, ...] = ()) -> None:
    """The whole tree stopped, the gateway's data folder (all but the development world's and
    `keep`) and the run folder's actor programs deleted, the tree started again."""
    data = tree["data_dir"]
    gone = [f"data/{p.name}" for p in data.iterdir() if p.name not in (*WORLD, *keep)]
    tree["restart"](wipe=(*gone, "run/conf.d"))


def lose_gateway_disk(tree: dict, keep: tuple[str, ...] = ()) -> None:
    """The gateway's disk lost under a running world: its programs stopped (the local world,
    its Lightning nodes and the HTLCs they hold, runs on, as a node and federations living
    elsewhere do), its data folder deleted (all but the world's and `keep`), its programs
    started again (the router removes the actor programs its new database does not know)."""
    rpc = supervisor_rpc(tree)
    for info in rpc.supervisor.getAllProcessInfo():
        # running, or between two starts (an actor dying in a loop): stopped either way
        if info["name"].startswith(PROGRAM_ACTOR_PREFIX) and info["statename"] in LIVE:
            stop_and_wait(rpc, f"{info['group']}:{info['name']}")
    for name in PROGRAMS:
        stop_and_wait(rpc, name)
    for p in tree["data_dir"].iterdir():
        if p.name not in (*WORLD, *keep):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    for name in PROGRAMS:
        rpc.supervisor.startProcess(name, False)  # not waited in supervisord: it would spin

    def health() -> bool:
        try:
            return httpx.get(tree["api_url"] + "/health", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    _until("the gateway serving again", 60, health)


def federation_info(gw: Gateway, federation_id: str) -> dict | None:
    feds = gw.post("/info", {})["federations"]
    return next((f for f in feds if f["federation_id"] == federation_id), None)


def recover(gw: Gateway, invite_code: str, federation_id: str, timeout: float = 300) -> dict:
    """`connect-fed --recover`, until the federation is served again: its info then."""
    gw.post("/connect-fed", {"invite_code": invite_code, "recover": True})

    def served() -> dict | None:
        info = federation_info(gw, federation_id)
        if info is None or info.get("recovering") or info["state"] != "running":
            return None
        return info

    info = _until("the federation recovered", timeout, served)
    assert info["recovery"]["state"] == "done" and info["recovery"]["error"] is None, info
    return info


def paid_while_away(
    world: World,
    user: User,
    start: Callable[[str], list[str]],
    away: list[Guardian],
    amount_msat: int,
) -> str:
    """A send in flight at a loss: `user` pays a hold invoice of bob's through us (`start`:
    bob's invoice -> the user's fedimint-cli arguments, run until our payment is under way,
    then killed: the user offline); the guardians `away` go down (our claim must reach none of
    them: one kept would be ordered when consensus comes back, leaving nothing to find); bob
    settles: our node has the preimage and no claim was made. The preimage, hex."""
    preimage = os.urandom(32)
    payment_hash = hashlib.sha256(preimage).hexdigest()
    bob = world.post(
        "/v1/nodes/bob/invoices", {"amount_msat": amount_msat, "payment_hash": payment_hash}
    )
    client = subprocess.Popen(
        [str(fedimint_bin("fedimint-cli")), "--data-dir", str(user.data_dir),
         *start(bob["bolt11"])],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "FM_IN_DEVIMINT": "1"},
    )  # fmt: skip
    ours = f"/v1/nodes/gateway/payments/{payment_hash}"
    try:
        _until("our payment held by bob", 120, lambda: world.http.get(ours).status_code == 200)
    finally:
        client.kill()
        client.wait()
    for g in away:
        g.kill()
    world.post(f"/v1/nodes/bob/invoices/{payment_hash}/settle", {"preimage": preimage.hex()})
    _until("our payment settled", 60, lambda: world.get(ours)["status"] == "succeeded")
    return preimage.hex()
