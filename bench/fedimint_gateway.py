"""E-cash through the whole gateway on real fedimintd federations (1 and 4 guardians, a real
bitcoind), as a user and an operator see it:

  receive:  a fedimint-cli user's notes given at the public POST /receive_ecash (HTTP front ->
            bus -> the federation's actor -> reissued with every share verified), start to
            answer; beside fedimint-cli's own `module mintv2 receive` + `dev wait-complete` of
            the same amount (notes from POST /spend_ecash), in the same run;
  address:  POST /address (a walletv2 peg-in address, ground ahead of time);
  lnv2 out: a fedimint-cli user pays bob's invoice through the gateway (`module lnv2 send` +
            `await-send`, start to Success), every guardian listing the gateway;
  lnv2 in:  a fedimint-cli user receives through the gateway: `module lnv2 receive`, alice
            pays the hold invoice, `await-receive` says Claimed (start to Claimed), and alone
            alice's payment (HTLC held -> contract funded -> shares combined -> settled: the
            gateway's part), beside a plain two-hop payment alice -> gateway -> bob in the
            same world (the Lightning floor; the ratio is what the receive adds).

    python bench/fedimint_gateway.py [--rounds 10] [--msat 32768]

Starts the local world of `make run` in a temporary devnet directory for the gateway. Prints a
table and, last, one JSON line {"bench": "fedimint_gateway", ...}. Stops everything.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._devnet import devnet_world
from peers.harness.bitcoind import Bitcoind
from peers.harness.fedimintd import start_federation
from tests.fedimint.conftest import funded_user


def p90(xs: list[float]) -> float:
    return sorted(xs)[max(0, int(len(xs) * 0.9 + 0.5) - 1)]


def measure(
    gw: httpx.Client, ln: httpx.Client, guardians: int, node: Bitcoind, base: Path, args
) -> dict:  # type: ignore[no-untyped-def]
    fed = start_federation(base / f"fed{guardians}", node, guardians)
    try:
        user = funded_user(fed, node, base / f"user{guardians}", sat=200_000)
        r = gw.post("/connect-fed", json={"invite_code": fed.invite_code})
        assert r.status_code == 200, r.text
        fid = fed.federation_id
        float_notes = str(user("module", "mintv2", "send", str(8 * args.msat)))  # to spend from
        r = httpx.post(gw.base_url.join("/receive_ecash"), json={"notes": float_notes}, timeout=150)
        assert r.status_code == 200, r.text
        ours, theirs, addresses = [], [], []
        for i in range(args.rounds + 1):  # the first warms up
            text = str(user("module", "mintv2", "send", str(args.msat)))
            t = time.perf_counter()
            r = httpx.post(gw.base_url.join("/receive_ecash"), json={"notes": text}, timeout=150)
            took = time.perf_counter() - t
            assert r.status_code == 200, r.text
            back = gw.post("/spend_ecash", json={"federation_id": fid, "amount_msat": args.msat})
            assert back.status_code == 200, back.text
            t = time.perf_counter()
            assert user("module", "mintv2", "receive", back.json()["notes"]) == "Success"
            user("dev", "wait-complete")
            cli = time.perf_counter() - t
            t = time.perf_counter()
            assert gw.post("/address", json={"federation_id": fid}).status_code == 200
            addr = time.perf_counter() - t
            if i:
                ours.append(took)
                theirs.append(cli)
                addresses.append(addr)
            time.sleep(2.5)  # the next address is ground in the background meanwhile
        # LNv2 out: the user pays bob's invoice through us (send + await-send, as a user runs
        # them: the client's process start included), every guardian listing our gateway
        url = next(f for f in gw.post("/info").json()["federations"] if f["federation_id"] == fid)
        fed.add_gateway(url["lnv2_gateway_url"])
        sends = []
        for i in range(args.rounds + 1):
            bolt11 = ln.post("/v1/nodes/bob/invoices", json={"amount_msat": 10_000}).json()[
                "bolt11"
            ]
            t = time.perf_counter()
            op = str(user("module", "lnv2", "send", bolt11))
            assert "Success" in user("module", "lnv2", "await-send", op)  # type: ignore[operator]
            if i:
                sends.append(time.perf_counter() - t)
        # LNv2 in: receive through us, alice pays; beside a plain payment alice -> bob
        receives, htlcs, plain = [], [], []
        for i in range(args.rounds + 1):
            t = time.perf_counter()
            invoice, op = user("module", "lnv2", "receive", "10000")  # type: ignore[misc]
            t_pay = time.perf_counter()
            paid = ln.post("/v1/nodes/alice/pay", json={"bolt11": invoice, "timeout_s": 60})
            htlc = time.perf_counter() - t_pay
            assert paid.json()["status"] == "succeeded", paid.text
            assert user("module", "lnv2", "await-receive", str(op)) == "Claimed"
            took = time.perf_counter() - t
            bob = ln.post("/v1/nodes/bob/invoices", json={"amount_msat": 10_000}).json()
            t = time.perf_counter()
            direct = ln.post("/v1/nodes/alice/pay", json={"bolt11": bob["bolt11"]})
            assert direct.json()["status"] == "succeeded", direct.text
            if i:
                receives.append(took)
                htlcs.append(htlc)
                plain.append(time.perf_counter() - t)
        gw.post("/leave-fed", json={"federation_id": fid, "force": True})
        return {
            "lnv2_receive_p50_s": statistics.median(receives),
            "lnv2_receive_p90_s": p90(receives),
            "lnv2_receive_htlc_p50_s": statistics.median(htlcs),
            "lnv2_receive_htlc_p90_s": p90(htlcs),
            "ln_direct_p50_s": statistics.median(plain),
            "lnv2_receive_htlc_over_direct_p50": statistics.median(htlcs)
            / statistics.median(plain),
            "lnv2_send_p50_s": statistics.median(sends),
            "lnv2_send_p90_s": p90(sends),
            "guardians": guardians,
            "receive_p50_s": statistics.median(ours),
            "receive_p90_s": p90(ours),
            "cli_p50_s": statistics.median(theirs),
            "cli_p90_s": p90(theirs),
            "ratio_p50": statistics.median(theirs) / statistics.median(ours),
            "address_p50_s": statistics.median(addresses),
            "address_p90_s": p90(addresses),
        }
    finally:
        fed.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--msat", type=int, default=32768)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="fmgw-bench-"))
    node = Bitcoind.start(base / "bitcoind")
    try:
        with devnet_world() as world:
            gw = httpx.Client(
                base_url=world["gateway"]["api_url"],
                headers={"Authorization": f"Bearer {world['gateway']['password']}"},
                timeout=150,
            )
            regtest = json.loads((Path(world["regtest"]["data_dir"]) / "regtestd.json").read_text())
            ln = httpx.Client(
                base_url=regtest["api_url"],
                headers={"Authorization": f"Bearer {regtest['api_token']}"},
                timeout=120,
            )
            rows = [measure(gw, ln, g, node, base, args) for g in (1, 4)]
    finally:
        node.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(f"e-cash of {args.msat} msat through the gateway, {args.rounds} rounds")
    head = (
        "guardians",
        "recv p50",
        "recv p90",
        "cli p50",
        "cli p90",
        "cli/gw",
        "addr p50",
        "out p50",
        "in p50",
        "in p90",
        "htlc p50",
        "htlc p90",
        "direct",
    )
    print(" ".join(f"{h:>9}" for h in head))
    for r in rows:
        values = [r["receive_p50_s"], r["receive_p90_s"], r["cli_p50_s"], r["cli_p90_s"]]
        print(
            f"{r['guardians']:>9} "
            + " ".join(f"{v:>9.3f}" for v in values)
            + f" {r['ratio_p50']:>9.2f} {r['address_p50_s']:>9.3f} {r['lnv2_send_p50_s']:>9.3f}"
            + "".join(
                f" {r[k]:>9.3f}"
                for k in (
                    "lnv2_receive_p50_s",
                    "lnv2_receive_p90_s",
                    "lnv2_receive_htlc_p50_s",
                    "lnv2_receive_htlc_p90_s",
                    "ln_direct_p50_s",
                )
            )
        )
    print(json.dumps({"bench": "fedimint_gateway", "msat": args.msat, "results": rows}))


if __name__ == "__main__":
    main()
