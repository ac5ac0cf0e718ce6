"""LNv1 payments through fedimint's own gateway (gatewayd 0.13.0, LND mode) and through ours,
side by side on a real federation with the v1 modules, made by the same real fedimint-cli user.

The world is bench/side_by_side.py's with a federation of the v1 modules (mint, wallet, ln;
lnv2 and meta beside them, as fedimintd 0.11 set them up; 1 guardian, or 4 with `--guardians
4`): one regtest bitcoind, lnd alice (payer), bob (payee) and one gateway node per gateway,
alice -> gateway -> bob with channels of the same size. Ours is deployed as an operator deploys
it, its chain source the bitcoind (wallet v1 reads deposits from it), and pegs in through
wallet v1; gatewayd joins (it registers with the ln module in LND mode) and gets its e-cash
from ours (`/spend_ecash`, `gateway-cli ecash receive`), the user likewise (`module mint
reissue`: fedimint-cli's wallet v1 reads the chain only through Esplora). Fees: none on
either. Both are registered gateways of the federation (`list-gateways` lists each id).

  send:     `ln-pay <bob's invoice> --gateway-id <gateway>` (one command: it funds the
            outgoing contract, asks the gateway's /pay_invoice and waits for the preimage),
            start to Success;
  receive:  `ln-invoice --amount <msat> --gateway-id <gateway>`, alice pays it (the gateway
            intercepts the HTLC for the federation's scid, funds the incoming contract, the
            guardians decrypt the preimage, the HTLC is settled), `await-invoice`: start to paid;
  alice_pays: alice's payment alone (the gateway's part of a receive, the same clock for both).

Each round does both directions on both gateways, the gateway going first alternating; the first
round warms up. Every payment must succeed: a failure ends the run. Also each gateway's CPU
seconds over the measured rounds (all its processes).

    python bench/side_by_side_lnv1.py [--rounds 5] [--msat 1000000] [--guardians 1|4]

Needs gatewayd (`make bench-peers`). Prints a table and, last, one JSON line
{"bench": "side_by_side_lnv1", ...}. Stops everything and removes its folder.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.lnd_gateway import deploy_gateway, p90, pay
from bench.side_by_side import say, session_cpu_s, stop_ours, stop_world
from peers.harness.bitcoind import Bitcoind
from peers.harness.fedimintd import V1_MODULES, start_federation
from peers.harness.gatewayd import Gatewayd
from peers.harness.lnd import LndWorld
from tests.chaos.world import Gateway, peg_in
from tests.fedimint.conftest import User
from tests.fedimint.lnv1_world import chain_env

PEG_IN_SAT = 3_000_000  # ours, through wallet v1
USER_MSAT = 600_000_000  # our notes to the user
GATEWAYD_MSAT = 1_000_000_000  # our notes to gatewayd: what it funds incoming contracts with
DIRECTIONS = ("send", "receive", "alice_pays")


def registered(user: User, port: int) -> str:
    """The LNv1 gateway id the user's client lists for the gateway whose API is at `port`."""
    deadline = time.monotonic() + 120
    while True:
        listed = user("list-gateways")
        assert isinstance(listed, list), listed
        for g in listed:
            if f":{port}/" in g["info"]["api"] or g["info"]["api"].endswith(f":{port}"):
                return str(g["info"]["gateway_id"])
        assert time.monotonic() < deadline, f"no gateway at port {port} registered: {listed}"
        time.sleep(1)


def send(user: User, bolt11: str, gateway_id: str) -> float:
    t = time.perf_counter()
    out = user("ln-pay", bolt11, "--gateway-id", gateway_id)
    took = time.perf_counter() - t
    assert isinstance(out, dict) and "Success" in out, out
    return took


def receive(user: User, alice, gateway_id: str, msat: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    made = user("ln-invoice", "--amount", str(msat), "--description", "side by side", "--gateway-id", gateway_id)  # fmt: skip
    htlc = pay(alice, str(made["invoice"]))  # type: ignore[index]
    got = user("await-invoice", str(made["operation_id"]))  # type: ignore[index]
    took = time.perf_counter() - t
    assert isinstance(got, dict) and "total_amount_msat" in got, got  # the wallet, paid
    return took, htlc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--msat", type=int, default=1_000_000)
    ap.add_argument("--guardians", type=int, default=1, choices=(1, 4))
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="fmgw-side-v1-"))
    node = Bitcoind.start(base / "bitcoind")
    world = fed = gd = proc = None
    done = False
    try:
        say(f"world in {base}")
        world = LndWorld.start(base / "lnd", chain=node, more_gateways={"gatewayd": []})
        fed = start_federation(base / "fed", node, args.guardians, modules=V1_MODULES)
        fid = fed.federation_id
        proc, url, password = deploy_gateway(
            base / "ours", world.node("gateway"), chain_env(base, node)
        )
        gw = Gateway(url, password)
        gw.ok("/connect-fed", {"invite_code": fed.invite_code})
        gw.ok("/set_fees", {"federation_id": fid, "base_msat": 0, "proportional_millionths": 0})
        peg_in(gw, node, fid, PEG_IN_SAT, txid=True)
        user = User(base / "user")
        user("join", fed.invite_code)
        notes = gw.ok("/spend_ecash", {"federation_id": fid, "amount_msat": USER_MSAT})
        assert user("module", "mint", "reissue", notes["notes"]) == notes["amount_msat"]
        info = next(f for f in gw.ok("/info", {})["federations"] if f["federation_id"] == fid)
        ids = {"ours": str(info["registration"]["gateway_id"])}
        assert registered(user, urlsplit(url).port or 0) == ids["ours"]
        say(f"ours {url}: pegged in {PEG_IN_SAT} sat, LNv1 gateway {ids['ours'][:16]}…")
        gd = Gatewayd.start(base / "gatewayd", world.node("gatewayd"), node)
        gd.connect_fed(fed)
        notes = gw.ok("/spend_ecash", {"federation_id": fid, "amount_msat": GATEWAYD_MSAT})
        say(f"gatewayd {gd.url}: joined, took {gd.receive_ecash(notes['notes'])} msat of ours")
        ids["gatewayd"] = registered(user, urlsplit(gd.url).port or 0)
        say(f"both registered: {ids}")
        leaders = {"gatewayd": gd.proc.popen.pid, "ours": proc.pid}
        alice, bob = world.node("alice"), world.node("bob")
        times: dict[str, dict[str, list[float]]] = {g: {d: [] for d in DIRECTIONS} for g in ids}
        cpu: dict[str, float] = {}
        names = list(ids)
        for i in range(args.rounds + 1):  # the first warms up
            if i == 1:
                cpu = {g: session_cpu_s(p) for g, p in leaders.items()}
            order = names if i % 2 == 0 else names[::-1]
            for name in order:
                bolt11 = bob.cli("addinvoice", f"--amt_msat={args.msat}")["payment_request"]
                took = send(user, bolt11, ids[name])
                if i:
                    times[name]["send"].append(took)
            for name in order:
                took, htlc = receive(user, alice, ids[name], args.msat)
                if i:
                    times[name]["receive"].append(took)
                    times[name]["alice_pays"].append(htlc)
            say(f"round {i}{' (warm-up)' if not i else ''} done")
        cpu = {g: session_cpu_s(p) - cpu[g] for g, p in leaders.items()}
        report(times, cpu, args)
        done = True
    finally:
        stops = [lambda: stop_ours(proc)] if proc is not None else []
        stops += [gd.stop] if gd is not None else []
        stop_world(stops, fed, world, node, base, done)


def report(times: dict, cpu: dict, args: argparse.Namespace) -> None:
    stats = {
        g: {
            d: {"p50_s": round(statistics.median(v), 3), "p90_s": round(p90(v), 3)}
            for d, v in t.items()
        }
        for g, t in times.items()
    }
    print(
        f"\nLNv1 through each gateway, {args.rounds} rounds of {args.msat} msat, "
        f"{args.guardians} guardian(s): seconds p50 / p90"
    )
    print(f"  {'':<12}{'gatewayd':>18}{'ours':>18}{'ours/gatewayd':>15}")
    for d in DIRECTIONS:
        g, o = stats["gatewayd"][d], stats["ours"][d]
        ratio = o["p50_s"] / g["p50_s"] if g["p50_s"] else float("nan")
        print(
            f"  {d:<12}{g['p50_s']:>9.3f} / {g['p90_s']:<6.3f}"
            f"{o['p50_s']:>9.3f} / {o['p90_s']:<6.3f}{ratio:>15.2f}"
        )
    per_round = {g: round(c / args.rounds, 3) for g, c in cpu.items()}
    print(f"  gateway CPU per round (every process): {per_round}")
    print(
        json.dumps(
            {
                "bench": "side_by_side_lnv1",
                "rounds": args.rounds,
                "msat": args.msat,
                "guardians": args.guardians,
                "latency": stats,
                "cpu_s_per_round": per_round,
            }
        )
    )


if __name__ == "__main__":
    main()
