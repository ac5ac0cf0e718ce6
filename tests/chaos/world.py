"""The chaos run's world: one regtest bitcoind (Knots); three real fedimintd federations: "four"
(v2 modules, 4 guardians: one may be down at a time), "one" (v2 modules, 1 guardian: swaps) and
"v1" (the v1 modules mint, wallet and ln, with lnv2; 1 guardian); real lnd nodes alice ->
gateway -> bob; our gateway deployed on the gateway node as an operator deploys it (`python -m
deploy.gateway`, supervisord; bitcoind its chain source, for wallet v1), joined to the three,
fees 0, listed by every guardian (LNv2) and registered (LNv1), funded in e-cash by the users
(and in "v1" by a peg-in); fedimint-cli users: "a" and "b" of "four", "c" of "one", "d" of
"v1" (funded with our notes: fedimint-cli's wallet v1 reads the chain only through Esplora)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.lnd_gateway import deploy_gateway
from bench.side_by_side import listed_everywhere
from peers.harness.bitcoind import Bitcoind
from peers.harness.fedimintd import V1_MODULES, Federation, start_federation
from peers.harness.lnd import LndWorld
from tests.fedimint.conftest import User, funded_user
from tests.fedimint.lnv1_world import chain_env

# what a restarting process answers: none of these is an answer about the request itself
RETRY_STATUS = frozenset({500, 502, 503, 504})
USER_FED = {"a": "four", "b": "four", "c": "one", "d": "v1"}
PEG_IN_SAT = {"four": 1_200_000, "one": 600_000, "v1": 800_000}  # "v1": the gateway's own
GIVE_B_MSAT = 400_000_000  # a's e-cash to b
GATEWAY_FUNDS_MSAT = {"four": 300_000_000, "one": 200_000_000}  # users' e-cash to the gateway
GIVE_D_MSAT = 300_000_000  # our v1 notes to d


class Gateway:
    """Our gateway's API as the chaos driver calls it. A call that meets a process killed or
    restarting (connection refused or reset, a timeout, 500/502/503/504) is sent again, the
    same body: every money-moving call made here is idempotent (/receive_ecash by its notes,
    /spend_ecash and /withdraw by their idempotency key, /deposit by the deposit)."""

    def __init__(self, url: str, password: str) -> None:
        self.url = url
        self.admin = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {password}"}, timeout=120
        )
        self.public = httpx.Client(base_url=url, timeout=120)
        self.retries = 0

    def post(
        self, path: str, body: dict, admin: bool = True, patience: float = 300
    ) -> httpx.Response:
        deadline = time.monotonic() + patience
        while True:
            try:
                r = (self.admin if admin else self.public).post(path, json=body)
                if r.status_code not in RETRY_STATUS:
                    return r
                why = f"{r.status_code} {r.text[:200]}"
            except httpx.TransportError as exc:
                why = repr(exc)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path}: no answer within {patience:.0f} s (last: {why})")
            self.retries += 1
            time.sleep(0.5)

    def ok(self, path: str, body: dict, admin: bool = True) -> dict:
        r = self.post(path, body, admin)
        assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
        return r.json()

    def balances(self) -> dict[str, int]:
        """Federation id -> e-cash balance (msat), as the gateway's books say."""
        info = self.ok("/info", {})["federations"]
        return {f["federation_id"]: int(f["balance_msat"]) for f in info}

    def close(self) -> None:
        self.admin.close()
        self.public.close()


@dataclass
class ChaosWorld:
    base: Path
    bitcoind: Bitcoind
    lnd: LndWorld
    feds: dict[str, Federation]
    users: dict[str, User]
    gateway: Gateway
    lnv2_url: dict[str, str]  # federation key -> our LNv2 URL for it
    leader: int  # our gateway's session (its supervisord and every program under it)
    lnv1_gateway_id: str  # ours in "v1" (fedimint-cli's --gateway-id)
    keep: bool = False  # keep the folder (its logs) at the end: the run found a problem

    def fed_of(self, user: str) -> Federation:
        return self.feds[USER_FED[user]]


def _join(gw: Gateway, fed: Federation, payer: User, msat: int) -> str:
    """Our gateway joins `fed` at fees 0, takes `msat` of the payer's e-cash, and is listed by
    every guardian: its LNv2 URL."""
    gw.ok("/connect-fed", {"invite_code": fed.invite_code})
    fees = {"federation_id": fed.federation_id, "base_msat": 0, "proportional_millionths": 0}
    gw.ok("/set_fees", fees)
    notes = str(payer("module", "mintv2", "send", str(msat)))
    gw.ok("/receive_ecash", {"notes": notes}, admin=False)
    info = gw.ok("/info", {})["federations"]
    url = next(f for f in info if f["federation_id"] == fed.federation_id)["lnv2_gateway_url"]
    fed.add_gateway(url)
    listed_everywhere(fed, payer, url)
    return str(url)


def peg_in(gw: Gateway, node: Bitcoind, federation_id: str, sat: int, txid: bool) -> dict:
    """`sat` from bitcoind to a fresh peg-in address of ours, blocks mined until /deposit
    answers it claimed (`txid`: name the transaction, as wallet v1 wants)."""
    address = gw.ok("/address", {"federation_id": federation_id})["address"]
    sent = node.send(address, sat)
    node.mine(21)  # walletv2 records an output once the tip is 7 blocks past it
    body = {"federation_id": federation_id, **({"txid": sent} if txid else {})}
    deadline = time.monotonic() + 300
    while (r := gw.post("/deposit", body)).status_code == 409:
        assert time.monotonic() < deadline, f"the peg-in was not claimed: {r.text}"
        node.mine(1)
        time.sleep(0.5)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _join_v1(gw: Gateway, fed: Federation, node: Bitcoind, user: User) -> str:
    """Our gateway joins the v1 federation at fees 0, pegs in, gives `user` GIVE_D_MSAT of our
    notes; our LNv1 gateway id, once the user's client lists us."""
    gw.ok("/connect-fed", {"invite_code": fed.invite_code})
    fees = {"federation_id": fed.federation_id, "base_msat": 0, "proportional_millionths": 0}
    gw.ok("/set_fees", fees)
    peg_in(gw, node, fed.federation_id, PEG_IN_SAT["v1"], txid=True)
    spent = gw.ok("/spend_ecash", {"federation_id": fed.federation_id, "amount_msat": GIVE_D_MSAT})
    user("join", fed.invite_code)
    assert user("module", "mint", "reissue", spent["notes"]) == spent["amount_msat"]
    info = next(
        f for f in gw.ok("/info", {})["federations"] if f["federation_id"] == fed.federation_id
    )
    gateway_id = str(info["registration"]["gateway_id"])
    listed = user("list-gateways")
    assert isinstance(listed, list) and gateway_id in [g["info"]["gateway_id"] for g in listed]
    return gateway_id


@contextmanager
def chaos_world(base: Path, lnd: LndWorld | None = None) -> Iterator[ChaosWorld]:
    """The world, ready; everything stopped at the end (its folder removed unless the body
    failed: the logs stay). `lnd`: nodes to use (else its own are started on a btcd)."""
    base.mkdir(parents=True, exist_ok=True)
    node = Bitcoind.start(base / "bitcoind")
    own_lnd = lnd is None
    feds: dict[str, Federation] = {}
    proc: subprocess.Popen[bytes] | None = None
    gw: Gateway | None = None
    world: ChaosWorld | None = None
    done = False
    try:
        if lnd is None:
            lnd = LndWorld.start(base / "lnd")
        feds["four"] = start_federation(base / "fed4", node, guardians=4)
        feds["one"] = start_federation(base / "fed1", node, guardians=1)
        feds["v1"] = start_federation(base / "fedv1", node, guardians=1, modules=V1_MODULES)
        users = {
            "a": funded_user(feds["four"], node, base / "user-a", sat=PEG_IN_SAT["four"]),
            "c": funded_user(feds["one"], node, base / "user-c", sat=PEG_IN_SAT["one"]),
            "b": User(base / "user-b"),
            "d": User(base / "user-d"),
        }
        users["b"]("join", feds["four"].invite_code)
        users["b"](
            "module",
            "mintv2",
            "receive",
            str(users["a"]("module", "mintv2", "send", str(GIVE_B_MSAT))),
        )
        settings = {
            **chain_env(base, node),  # the router's chain source, for wallet v1
            # an actor lives seconds here (the killer): what it makes ahead of need (ground mintv2
            # tweaks, a peg-in address) would mostly be thrown away with it
            "GATEWAY_ACTOR_TWEAK_POOL_SIZE": "8",
            "GATEWAY_ACTOR_READY_ADDRESSES": "0",
        }
        proc, url, password = deploy_gateway(base / "ours", lnd.node("gateway"), settings)
        gw = Gateway(url, password)
        lnv2 = {
            "four": _join(gw, feds["four"], users["a"], GATEWAY_FUNDS_MSAT["four"]),
            "one": _join(gw, feds["one"], users["c"], GATEWAY_FUNDS_MSAT["one"]),
        }
        lnv1_id = _join_v1(gw, feds["v1"], node, users["d"])
        for u in users.values():
            u("dev", "wait-complete")
        world = ChaosWorld(base, node, lnd, feds, users, gw, lnv2, proc.pid, lnv1_id)
        yield world
        done = True
    finally:
        if gw is not None:
            gw.close()
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(90)
        for fed in feds.values():
            fed.stop()
        if own_lnd and lnd is not None:
            lnd.stop()
        node.stop()
        if done and not (world is not None and world.keep):
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"chaos: failed, the logs stay in {base}", flush=True)
