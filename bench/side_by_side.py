"""LNv2 payments through fedimint's own gateway (gatewayd 0.13.0, LND mode) and through ours,
side by side in one world, made by the same real fedimint-cli user.

The world: one regtest bitcoind (Bitcoin Knots) every peer shares; a real 1-guardian fedimintd
0.13 federation (v2 modules); lnd nodes alice (payer), bob (payee) and one gateway node per
gateway (lnd serves one HTLC interceptor per node): alice -> gateway -> bob for ours
(`--requireinterceptor`, as deployed) and alice -> gatewayd -> bob for theirs, public channels
of the same size. Our gateway runs as an operator deploys it (`python -m deploy.gateway`, see
bench/lnd_gateway.py); gatewayd as devimint runs it (peers/harness/gatewayd.py). Each joins the
federation, is listed by every guardian (checked with `fedimint-cli module lnv2 gateways list
--peer N`), and is funded in e-cash: gatewayd by its own peg-in (`gateway-cli ecash pegin`) and
a few of the user's notes (`gateway-cli ecash receive`), ours by the user's notes. Fees: none
on either (gatewayd's routing and transaction fees 0,0; ours set to 0 msat + 0 ppm), so the
user pays the same on both.

  send:     the user pays bob's invoice through the gateway: `module lnv2 send <invoice>
            --gateway URL` + `await-send`, start to Success;
  receive:  the user receives through the gateway: `module lnv2 receive <msat> --gateway URL`,
            alice pays it (`lncli payinvoice`), `await-receive` says Claimed; start to Claimed;
  alice_pays: alice's payment of that invoice alone (HTLC held -> contract funded -> shares
            combined -> settled): the gateway's part of a receive, the same clock for both.

Most of a send or receive is fedimint-cli's (a new client process per command, as devimint's
latency tests run it), the same for both gateways. Beside them, "own p50": each gateway's own
figure from its own summary, warm-up included, on its own clock: gatewayd's `payment-summary`
median_latency (its event log's Started to Succeeded), ours `/payment_summary` latency_p50_s
(a payment record's creation to its end: for a receive that starts when the invoice is made,
so it holds the user's and alice's commands too: compare alice_pays instead).

Each round does both directions on both gateways, the gateway going first alternating; the
first round warms up. Every payment must succeed: a failure ends the run.

    python bench/side_by_side.py [--rounds 5] [--gateways gatewayd,ours] [--msat 1000000]
                                 [--guardians 1|4]

Also each gateway's CPU seconds over the measured rounds (all of its processes: gatewayd
alone; ours its supervisord, router, actor, API front and extension), a round being one send
and one receive.

`--gateways gatewayd --rounds 1` is the quick proof that gatewayd serves the world (about 2
min). Needs gatewayd (`make bench-peers`). Prints a table and, last, one JSON line
{"bench": "side_by_side", ...}. Stops everything and removes its folder.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.lnd_gateway import deploy_gateway, p90, pay
from peers.harness.bitcoind import Bitcoind
from peers.harness.fedimintd import Federation, start_federation
from peers.harness.gatewayd import ROUTING_FEES, TRANSACTION_FEES, Gatewayd
from peers.harness.lnd import Lnd, LndWorld
from tests.fedimint.conftest import User, funded_user

GATEWAYD_PEGIN_SAT = 1_000_000
OURS_ECASH_MSAT = 900_000_000
DIRECTIONS = ("send", "receive", "alice_pays")


def say(text: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')}  {text}", flush=True)


def listed_everywhere(fed: Federation, user: User, url: str) -> None:
    """Every guardian lists `url` as an LNv2 gateway (asked by the user's fedimint-cli)."""
    for g in fed.guardians:
        listed = user("module", "lnv2", "gateways", "list", "--peer", str(g.peer_id))
        assert isinstance(listed, list), listed
        assert url.rstrip("/") in (u.rstrip("/") for u in listed), (g.name, listed)


def send(user: User, bob_invoice: str, url: str) -> float:
    """The user pays bob's invoice through the gateway at `url`: seconds to Success."""
    t = time.perf_counter()
    op = str(user("module", "lnv2", "send", bob_invoice, "--gateway", url))
    outcome = user("module", "lnv2", "await-send", op)
    took = time.perf_counter() - t
    assert isinstance(outcome, dict) and "Success" in outcome, outcome
    return took


def receive(user: User, alice: Lnd, url: str, msat: int) -> tuple[float, float]:
    """The user receives `msat` through the gateway at `url`, alice paying: (seconds to
    Claimed, seconds of alice's payment alone: the gateway's part, on the same clock for
    both gateways)."""
    t = time.perf_counter()
    invoice, op = user("module", "lnv2", "receive", str(msat), "--gateway", url)  # type: ignore[misc]
    htlc = pay(alice, str(invoice))
    outcome = user("module", "lnv2", "await-receive", str(op))
    took = time.perf_counter() - t
    assert outcome == "Claimed", outcome
    return took, htlc


def start_gatewayd(
    base: Path, world: LndWorld, node: Bitcoind, fed: Federation, user: User
) -> tuple[Gatewayd, str]:
    """gatewayd on the lnd node `gatewayd`, joined, listed by every guardian, pegged in."""
    gw = Gatewayd.start(base / "gatewayd", world.node("gatewayd"), node)
    try:
        fid = gw.connect_fed(fed)
        say(f"gatewayd {gw.url}: joined {fid[:16]}…, state {gw.info()['gateway_state']}")
        fed.add_gateway(gw.url)
        listed_everywhere(fed, user, gw.url)
        credited = gw.pegin(fid, node, GATEWAYD_PEGIN_SAT)
        say(f"gatewayd: peg-in of {GATEWAYD_PEGIN_SAT} sat credited {credited} msat")
        notes = str(user("module", "mintv2", "send", "64000"))  # and e-cash given at its door
        say(f"gatewayd: took 64,000 msat of the user's e-cash: {gw.receive_ecash(notes)} msat")
    except BaseException:
        gw.stop()
        raise
    return gw, gw.url


def start_ours(
    base: Path, world: LndWorld, fed: Federation, user: User, settings: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], httpx.Client, str]:
    """Ours deployed on the lnd node `gateway` (with `settings`, more lines of its environment
    file): (its process, an admin client, its LNv2 URL)."""
    proc, url, password = deploy_gateway(base / "ours", world.node("gateway"), settings)
    try:
        gw = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {password}"}, timeout=150
        )
        r = gw.post("/connect-fed", json={"invite_code": fed.invite_code})
        assert r.status_code == 200, r.text
        r = gw.post(
            "/set_fees",
            json={
                "federation_id": fed.federation_id,
                "base_msat": 0,
                "proportional_millionths": 0,
            },
        )
        assert r.status_code == 200, r.text
        notes = str(user("module", "mintv2", "send", str(OURS_ECASH_MSAT)))
        r = httpx.post(url + "/receive_ecash", json={"notes": notes}, timeout=150)
        assert r.is_success, r.text
        info = gw.post("/info").json()["federations"]
        lnv2_url = next(f for f in info if f["federation_id"] == fed.federation_id)[
            "lnv2_gateway_url"
        ]
        fed.add_gateway(lnv2_url)
        listed_everywhere(fed, user, lnv2_url)
        say(f"ours {lnv2_url}: joined, funded with {OURS_ECASH_MSAT} msat of e-cash")
    except BaseException:
        stop_ours(proc)
        raise
    return proc, gw, lnv2_url


def stop_ours(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(90)


def measure(
    urls: dict[str, str], user: User, world: LndWorld, rounds: int, msat: int
) -> dict[str, dict[str, list[float]]]:
    alice, bob = world.node("alice"), world.node("bob")
    times: dict[str, dict[str, list[float]]] = {g: {d: [] for d in DIRECTIONS} for g in urls}
    names = list(urls)
    for i in range(rounds + 1):  # the first warms up
        order = names if i % 2 == 0 else names[::-1]
        for name in order:
            invoice = bob.cli("addinvoice", f"--amt_msat={msat}")["payment_request"]
            took = send(user, invoice, urls[name])
            if i:
                times[name]["send"].append(took)
        for name in order:
            took, htlc = receive(user, alice, urls[name], msat)
            if i:
                times[name]["receive"].append(took)
                times[name]["alice_pays"].append(htlc)
        last = {n: {d: round(v[-1], 3) for d, v in t.items() if v} for n, t in times.items()}
        say(f"round {i}{' (warm-up)' if not i else ''}: {last if i else 'done'}")
    return times


def own_figures(gatewayd: Gatewayd | None, ours: httpx.Client | None) -> dict[str, dict]:
    """Each gateway's own p50 latency per direction, warm-up included, from its own summary
    (gatewayd's `payment-summary` median_latency, from its event log: a payment's Started
    event to its Succeeded; ours `/payment_summary` latency_p50_s: a payment record's creation
    to its end). Not the same clocks as each other's, nor as the user's."""
    own: dict[str, dict] = {}
    if gatewayd is not None:
        summary = gatewayd.cli("payment-summary")
        own["gatewayd"] = {
            d: round(
                summary[k]["median_latency"]["secs"] + summary[k]["median_latency"]["nanos"] / 1e9,
                4,
            )
            for d, k in (("send", "outgoing"), ("receive", "incoming"))
        }
    if ours is not None:
        r = ours.post("/payment_summary", json={})
        assert r.status_code == 200, r.text
        dirs = r.json()["directions"]
        own["ours"] = {
            d: dirs[k]["latency_p50_s"] and round(dirs[k]["latency_p50_s"], 4)
            for d, k in (("send", "outgoing"), ("receive", "incoming"))
        }
    return own


@dataclass
class SideBySide:
    """The world both gateways serve, ready: `urls` each gateway's LNv2 URL; `leaders` the
    session leader of each gateway's processes (session_cpu_s)."""

    base: Path
    node: Bitcoind
    world: LndWorld
    fed: Federation
    user: User
    urls: dict[str, str]
    leaders: dict[str, int]
    gatewayd: Gatewayd | None
    ours: httpx.Client | None


@contextmanager
def side_by_side_world(
    wanted: list[str],
    guardians: int,
    prefix: str = "fmgw-side-",
    ours_settings: dict[str, str] | None = None,
) -> Iterator[SideBySide]:
    """Start the world and the `wanted` gateways (ours with `ours_settings`, more lines of its
    environment file); stop everything at the end (and remove its folder unless the body
    failed: the logs stay)."""
    base = Path(tempfile.mkdtemp(prefix=prefix, dir=None))
    node = Bitcoind.start(base / "bitcoind")
    world = fed = None
    stops: list[Callable[[], None]] = []
    done = False
    try:
        say(f"world in {base}")
        world = LndWorld.start(base / "lnd", chain=node, more_gateways={"gatewayd": []})
        fed = start_federation(base / "fed", node, guardians)
        user = funded_user(fed, node, base / "user", sat=3_000_000)
        say("bitcoind, lnd alice/bob/gateway/gatewayd, federation and a funded user ready")
        urls: dict[str, str] = {}
        leaders: dict[str, int] = {}
        gatewayd = ours = None
        if "gatewayd" in wanted:
            gatewayd, urls["gatewayd"] = start_gatewayd(base, world, node, fed, user)
            stops.append(gatewayd.stop)
            leaders["gatewayd"] = gatewayd.proc.popen.pid
        if "ours" in wanted:
            proc, ours, urls["ours"] = start_ours(base, world, fed, user, ours_settings)
            stops.append(lambda: stop_ours(proc))
            leaders["ours"] = proc.pid
        yield SideBySide(base, node, world, fed, user, urls, leaders, gatewayd, ours)
        done = True
    finally:
        stop_world(stops, fed, world, node, base, done)


def stop_world(
    stops: list[Callable[[], None]],
    fed: Federation | None,
    world: LndWorld | None,
    node: Bitcoind,
    base: Path,
    done: bool,
) -> None:
    """Stop the gateways (`stops`, the last started first), the federation, the lnd nodes and
    bitcoind; remove the folder unless the run failed (then its logs stay)."""
    for stop in reversed(stops):
        stop()
    if fed is not None:
        fed.stop()
    if world is not None:
        world.stop()
    node.stop()
    if done:
        shutil.rmtree(base, ignore_errors=True)
    else:
        say(f"failed: the logs stay in {base}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--gateways", default="gatewayd,ours")
    ap.add_argument("--msat", type=int, default=1_000_000)
    ap.add_argument("--guardians", type=int, default=1, choices=(1, 4))
    args = ap.parse_args()
    wanted = [g for g in args.gateways.split(",") if g]
    assert wanted and set(wanted) <= {"gatewayd", "ours"}, args.gateways
    with side_by_side_world(wanted, args.guardians) as w:
        cpu = {g: -session_cpu_s(w.leaders[g]) for g in wanted}
        times = measure(w.urls, w.user, w.world, args.rounds, args.msat)
        cpu = {g: round(cpu[g] + session_cpu_s(w.leaders[g]), 2) for g in wanted}
        own = own_figures(w.gatewayd, w.ours)
    report(times, own, cpu, args, wanted)


def session_cpu_s(leader: int) -> float:
    """CPU seconds (user + system) of the processes running now in the session `leader`
    started (each gateway is started in a session of its own: gatewayd alone; ours its
    supervisord, router, actors, API front and extension)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended meanwhile
        if int(fields[3]) == leader:  # the session id (stat's 6th field)
            total += int(fields[11]) + int(fields[12])  # utime, stime (14th, 15th)
    return total / tick


def report(
    times: dict[str, dict[str, list[float]]],
    own: dict[str, dict],
    cpu: dict[str, float],
    args: argparse.Namespace,
    wanted: list[str],
) -> None:
    row: dict[str, object] = {}
    print(
        f"LNv2 through each gateway, {args.rounds} rounds of {args.msat} msat, a"
        f" {args.guardians}-guardian federation (seconds)"
    )
    print(
        f"{'gateway':10} {'direction':10} {'p50':>7} {'p90':>7} {'min':>7} {'max':>7}"
        f" {'own p50':>8}"
    )
    for g in wanted:
        for direction in DIRECTIONS:
            xs = times[g][direction]
            p50 = statistics.median(xs)
            row[f"{g}_{direction}_p50_s"] = round(p50, 4)
            row[f"{g}_{direction}_p90_s"] = round(p90(xs), 4)
            mine = own[g].get(direction)
            if mine is not None:
                row[f"{g}_{direction}_own_p50_s"] = mine
            print(
                f"{g:10} {direction:10} {p50:7.3f} {p90(xs):7.3f} {min(xs):7.3f} {max(xs):7.3f}"
                f" {'-' if mine is None else f'{mine:.3f}':>8}"
            )
    for g in wanted:
        row[f"{g}_cpu_s_per_round"] = round(cpu[g] / args.rounds, 3)
        print(
            f"{g}: {cpu[g]:.2f} s of CPU over the measured rounds ({cpu[g] / args.rounds:.3f} a round)"
        )
    if len(wanted) == 2:
        for direction in DIRECTIONS:
            ratio = row[f"ours_{direction}_p50_s"] / row[f"gatewayd_{direction}_p50_s"]  # type: ignore[operator]
            row[f"{direction}_ours_over_gatewayd_p50"] = round(ratio, 3)
            print(f"{direction}: ours / gatewayd p50 = {ratio:.2f}")
    fees = {"gatewayd_routing": ROUTING_FEES, "gatewayd_transaction": TRANSACTION_FEES}
    print(
        json.dumps(
            {
                "bench": "side_by_side",
                "rounds": args.rounds,
                "msat": args.msat,
                "guardians": args.guardians,
                "gateways": wanted,
                "fees": {**fees, "ours": "0 msat + 0 ppm"},
                **row,
            }
        )
    )


if __name__ == "__main__":
    main()
