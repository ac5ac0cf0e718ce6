"""The chaos run's world: one regtest bitcoind (Knots); two real fedimintd federations with the
v2 modules, "four" (4 guardians: one may be down at a time) and "one" (1 guardian, for swaps);
real lnd nodes alice -> gateway -> bob; our gateway deployed on the gateway node as an operator
deploys it (`python -m deploy.gateway`, supervisord), joined to both federations, listed by every
guardian, fees 0, funded with e-cash by the users; fedimint-cli users: "a" and "b" of "four",
"c" of "one"."""

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
from peers.harness.fedimintd import Federation, start_federation
from peers.harness.lnd import LndWorld
from tests.fedimint.conftest import User, funded_user

# what a restarting process answers: none of these is an answer about the request itself
RETRY_STATUS = frozenset({500, 502, 503, 504})
USER_FED = {"a": "four", "b": "four", "c": "one"}
PEG_IN_SAT = {"four": 1_200_000, "one": 600_000}  # the first user of each federation's
GIVE_B_MSAT = 400_000_000  # a's e-cash to b
GATEWAY_FUNDS_MSAT = {"four": 300_000_000, "one": 200_000_000}  # users' e-cash to the gateway


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
    done = False
    try:
        if lnd is None:
            lnd = LndWorld.start(base / "lnd")
        feds["four"] = start_federation(base / "fed4", node, guardians=4)
        feds["one"] = start_federation(base / "fed1", node, guardians=1)
        users = {
            "a": funded_user(feds["four"], node, base / "user-a", sat=PEG_IN_SAT["four"]),
            "c": funded_user(feds["one"], node, base / "user-c", sat=PEG_IN_SAT["one"]),
            "b": User(base / "user-b"),
        }
        users["b"]("join", feds["four"].invite_code)
        users["b"](
            "module",
            "mintv2",
            "receive",
            str(users["a"]("module", "mintv2", "send", str(GIVE_B_MSAT))),
        )
        proc, url, password = deploy_gateway(base / "ours", lnd.node("gateway"))
        gw = Gateway(url, password)
        lnv2 = {
            "four": _join(gw, feds["four"], users["a"], GATEWAY_FUNDS_MSAT["four"]),
            "one": _join(gw, feds["one"], users["c"], GATEWAY_FUNDS_MSAT["one"]),
        }
        for u in users.values():
            u("dev", "wait-complete")
        yield ChaosWorld(base, node, lnd, feds, users, gw, lnv2, proc.pid)
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
        if done:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"chaos: failed, the logs stay in {base}", flush=True)
