"""Payments through the whole gateway, as its users see them.

    python bench/gateway_payments.py [--n 40]

Starts the gateway on the simulated world in a temporary folder (bench/_devnet.py: supervisord,
regtestd, two dev federations, the extension on the sim backend, the router, the actors, the API
front under gunicorn; its move to the real world of `make run` is still to come), then, one
payment at a time:
  outgoing:  a federation user pays bob's invoice through the gateway: fund the outgoing
             contract, POST /pay_invoice, the gateway pays over Lightning and claims, the user
             gets the preimage (fedlib's ln_pay, start to preimage);
  incoming:  alice pays a federation user's invoice over Lightning: the HTLC is intercepted,
             the actor buys the preimage by funding the incoming contract, the HTLC settles
             (alice's payment call, start to success);
  swap:      a user of alpha pays a user of beta: no Lightning payment at all.
Prints a table and, last, one JSON line {"bench": "gateway_payments", ...}. Stops the world.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._devnet import devnet_world
from devworld.fedlib.client import FederationClient


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40)
    args = ap.parse_args()
    with devnet_world() as world:
        regtest = json.loads((Path(world["regtest"]["data_dir"]) / "regtestd.json").read_text())
        ln = httpx.Client(
            base_url=regtest["api_url"],
            headers={"Authorization": f"Bearer {regtest['api_token']}"},
            timeout=120,
        )
        alpha, beta = world["federations"]
        user = FederationClient(Path(alpha["user_wallet"]) / "wallet.sqlite")
        other = FederationClient(Path(beta["user_wallet"]) / "wallet.sqlite")
        series: dict[str, list[float]] = {"outgoing": [], "incoming": [], "swap": []}
        for i in range(args.n + 3):  # the first three warm up
            warm = i < 3
            bolt11 = ln.post("/v1/nodes/bob/invoices", json={"amount_msat": 10_000}).json()[
                "bolt11"
            ]
            t = time.perf_counter()
            assert user.ln_pay(bolt11)["preimage"]
            if not warm:
                series["outgoing"].append(time.perf_counter() - t)

            op, invoice = user.ln_receive(10_000, f"bench {i}")
            t = time.perf_counter()
            paid = ln.post("/v1/nodes/alice/pay", json={"bolt11": invoice}).json()
            assert paid["status"] == "succeeded", paid
            if not warm:
                series["incoming"].append(time.perf_counter() - t)
            user.await_ln_receive(op, timeout=30)

            op, invoice = other.ln_receive(10_000, f"swap {i}")
            t = time.perf_counter()
            assert user.ln_pay(invoice)["preimage"]
            if not warm:
                series["swap"].append(time.perf_counter() - t)
            other.await_ln_receive(op, timeout=30)
        result: dict = {"bench": "gateway_payments", "n": args.n}
        print(f"{'direction':<10}{'p50 ms':>10}{'p90 ms':>10}{'max ms':>10}")
        for name, xs in series.items():
            xs.sort()
            p50, p90 = statistics.median(xs), xs[int(0.9 * (len(xs) - 1))]
            print(f"{name:<10}{p50 * 1e3:>10.1f}{p90 * 1e3:>10.1f}{xs[-1] * 1e3:>10.1f}")
            result[f"{name}_p50_ms"] = round(p50 * 1e3, 1)
            result[f"{name}_p90_ms"] = round(p90 * 1e3, 1)
        print(json.dumps(result))


if __name__ == "__main__":
    main()
