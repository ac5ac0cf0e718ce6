"""LNv1 beside LNv2 through the whole gateway, on one real fedimintd federation with the v1
modules (ln, lnv2, meta, mint, wallet; 1 guardian, a real bitcoind), in the same run, as a
fedimint-cli 0.13.0 user sees it:

  lnv1 out: `module ln pay <bob's invoice> --gateway-id <ours>` (one command: it funds the
            outgoing contract, calls our POST /pay_invoice and waits for the preimage),
            start to Success;
  lnv2 out: `module lnv2 send` + `await-send` (two commands), start to Success;
  lnv1 in:  `module ln invoice`, alice pays it (our node intercepts the HTLC for the
            federation's scid, the actor funds the incoming contract, the guardians decrypt
            the preimage, the HTLC is settled), `module ln await-invoice`: start to paid;
            and alone alice's payment (the gateway's part);
  lnv2 in:  `module lnv2 receive`, alice pays, `await-receive`: start to Claimed; and alone
            alice's payment.

The gateway's v1 e-cash comes from a peg-in through wallet v1 (its chain source: the bitcoind),
the user's from our notes (`module mint reissue`). Ratios are LNv1 over LNv2; `cli` is one
fedimint-cli command that does nothing much (`info`): the cost of a command's process, which
the LNv2 send pays twice and the LNv1 send once.

    python bench/fedimint_lnv1.py [--rounds 20] [--msat 10000]

Prints a table and, last, one JSON line {"bench": "fedimint_lnv1", ...}. Stops everything.
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
from bench.fedimint_gateway import p90
from peers.harness.bitcoind import Bitcoind
from peers.harness.fedimintd import V1_MODULES, start_federation
from tests.fedimint.conftest import User
from tests.fedimint.lnv1_world import chain_env, fund_user, peg_in, v1_gateway_id
from tests.fedimint.test_gateway_fedimint import Gateway, _until

KINDS = ("lnv1_send", "lnv2_send", "lnv1_receive", "lnv2_receive", "lnv1_htlc", "lnv2_htlc")
KINDS += ("cli",)  # one fedimint-cli command that does nothing (`info`): the floor


def _timed(work) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    work()
    return time.perf_counter() - t


def measure(gw: Gateway, ln: httpx.Client, node: Bitcoind, base: Path, args) -> dict:  # type: ignore[no-untyped-def]
    fed = start_federation(base / "fed", node, 1, modules=V1_MODULES)
    try:
        fid = gw.post("/connect-fed", {"invite_code": fed.invite_code})["federation_id"]
        peg_in(gw, fid, node, 200_000)
        user = User(base / "user")
        user("join", fed.invite_code)
        fund_user(gw, fid, user, 40 * args.msat * (args.rounds + 1))
        gateway_id = v1_gateway_id(gw, fid)
        _until(
            "the user lists our LNv1 registration",
            60,
            lambda: any(g["info"]["gateway_id"] == gateway_id for g in user("list-gateways")),  # type: ignore[union-attr,index]
        )
        url = next(f for f in gw.post("/info", {})["federations"] if f["federation_id"] == fid)
        url = url["lnv2_gateway_url"]
        fed.add_gateway(url)
        times: dict[str, list[float]] = {k: [] for k in KINDS}

        def bob_invoice() -> str:
            return ln.post("/v1/nodes/bob/invoices", json={"amount_msat": args.msat}).json()[
                "bolt11"
            ]

        def alice_pays(invoice: str) -> float:
            t = time.perf_counter()
            paid = ln.post("/v1/nodes/alice/pay", json={"bolt11": invoice, "timeout_s": 60})
            assert paid.json()["status"] == "succeeded", paid.text
            return time.perf_counter() - t

        def lnv1_send() -> None:
            out = user("module", "ln", "pay", bob_invoice(), "--gateway-id", gateway_id)
            assert "Success" in out, out  # type: ignore[operator]

        def lnv2_send() -> None:
            op = str(user("module", "lnv2", "send", bob_invoice(), "--gateway", url))
            assert "Success" in user("module", "lnv2", "await-send", op)  # type: ignore[operator]

        def lnv1_receive() -> None:
            got = user(
                "module", "ln", "invoice", str(args.msat), "--gateway-id", gateway_id
            )  # fmt: skip
            htlc.append(alice_pays(got["invoice"]))  # type: ignore[index]
            assert user("module", "ln", "await-invoice", got["operation_id"]) == {  # type: ignore[index]
                "status": "paid"
            }

        def lnv2_receive() -> None:
            invoice, op = user("module", "lnv2", "receive", str(args.msat), "--gateway", url)  # type: ignore[misc]
            htlc.append(alice_pays(invoice))
            assert user("module", "lnv2", "await-receive", str(op)) == "Claimed"

        flows = {"cli": lambda: user("info"), "lnv1_send": lnv1_send, "lnv2_send": lnv2_send}
        flows |= {"lnv1_receive": lnv1_receive, "lnv2_receive": lnv2_receive}
        for i in range(args.rounds + 1):  # the first round warms up; the kinds interleaved
            for kind, work in flows.items():
                htlc: list[float] = []
                took = _timed(work)
                if i:
                    times[kind].append(took)
                    if htlc:
                        times[kind.replace("receive", "htlc")].append(htlc[0])
        gw.post("/leave-fed", {"federation_id": fid, "force": True})
    finally:
        fed.stop()
    row: dict = {}
    for kind, xs in times.items():
        row[f"{kind}_p50_s"] = statistics.median(xs)
        row[f"{kind}_p90_s"] = p90(xs)
    for kind in ("send", "receive", "htlc"):
        for q in ("p50", "p90"):
            row[f"{kind}_lnv1_over_lnv2_{q}"] = (
                row[f"lnv1_{kind}_{q}_s"] / row[f"lnv2_{kind}_{q}_s"]
            )
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--msat", type=int, default=10_000)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="fmgw-bench-lnv1-"))
    node = Bitcoind.start(base / "bitcoind")
    try:
        with devnet_world(chain_env(base, node)) as world:
            gw = Gateway(world["gateway"])
            regtest = json.loads((Path(world["regtest"]["data_dir"]) / "regtestd.json").read_text())
            ln = httpx.Client(
                base_url=regtest["api_url"],
                headers={"Authorization": f"Bearer {regtest['api_token']}"},
                timeout=120,
            )
            row = measure(gw, ln, node, base, args)
    finally:
        node.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(f"LNv1 beside LNv2, {args.msat} msat payments, {args.rounds} rounds, 1 guardian")
    print(f"{'':>13} {'p50 s':>8} {'p90 s':>8}")
    for kind in KINDS:
        print(f"{kind:>13} {row[kind + '_p50_s']:>8.3f} {row[kind + '_p90_s']:>8.3f}")
    for kind in ("send", "receive", "htlc"):
        print(
            f"{kind + ' v1/v2':>13} {row[f'{kind}_lnv1_over_lnv2_p50']:>8.2f}"
            f" {row[f'{kind}_lnv1_over_lnv2_p90']:>8.2f}"
        )
    print(json.dumps({"bench": "fedimint_lnv1", "msat": args.msat, "rounds": args.rounds, **row}))


if __name__ == "__main__":
    main()
