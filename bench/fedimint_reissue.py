"""Reissue of mintv2 e-cash against real fedimintd federations (1 and 4 guardians, on a real
bitcoind): our client (fmclient.wallet.MintWallet.receive) beside fedimint-cli's own
`module mintv2 receive` (+ `dev wait-complete`) of the same amount, in the same run, as a user
sees it (its process start and database open included). Prints per federation the median
and p90 latency of a reissue and the notes issued per second, then a JSON line.

    python bench/fedimint_reissue.py [--rounds 10] [--msat 32768]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from fmclient.api import FederationApi
from fmclient.config import parse_client_config
from fmclient.wallet import MintWallet
from peers.harness.bitcoind import Bitcoind
from peers.harness.fedimintd import start_federation
from tests.fedimint.conftest import funded_user


def p90(xs: list[float]) -> float:
    return sorted(xs)[max(0, int(len(xs) * 0.9 + 0.5) - 1)]


async def measure(guardians: int, node: Bitcoind, base: Path, rounds: int, msat: int) -> dict:
    fed = start_federation(base / f"fed{guardians}", node, guardians)
    try:
        user = funded_user(fed, node, base / f"user{guardians}", sat=200_000)
        api = FederationApi(dict(enumerate(fed.api_urls)))
        cfg = parse_client_config(await api.current_consensus("client_config"))
        wallet = MintWallet(base / f"wallet{guardians}.sqlite", cfg, api)
        await wallet.receive(str(user("module", "mintv2", "send", str(4 * msat))))  # a float
        ours, theirs, our_notes = [], [], 0
        for _ in range(rounds):
            text = str(user("module", "mintv2", "send", str(msat)))
            before = wallet.db.execute(
                "SELECT COUNT(*) FROM notes WHERE state = 'unspent'"
            ).fetchone()[0]
            t = time.perf_counter()
            await wallet.receive(text)
            ours.append(time.perf_counter() - t)
            our_notes += (
                wallet.db.execute("SELECT COUNT(*) FROM notes WHERE state = 'unspent'").fetchone()[
                    0
                ]
                - before
            )
            back = (await wallet.spend(msat))["ecash"]  # the same amount back, for fedimint-cli
            t = time.perf_counter()
            assert user("module", "mintv2", "receive", back) == "Success"
            user("dev", "wait-complete")
            theirs.append(time.perf_counter() - t)
        await api.close()
        return {
            "guardians": guardians,
            "ours_p50_s": statistics.median(ours),
            "ours_p90_s": p90(ours),
            "ours_notes_per_s": our_notes / sum(ours),
            "cli_p50_s": statistics.median(theirs),
            "cli_p90_s": p90(theirs),
            "ratio_p50": statistics.median(theirs) / statistics.median(ours),
        }
    finally:
        fed.stop()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--msat", type=int, default=32768)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="fmgw-bench-"))
    node = Bitcoind.start(base / "bitcoind")
    try:
        rows = [await measure(g, node, base, args.rounds, args.msat) for g in (1, 4)]
    finally:
        node.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(
        f"reissue of {args.msat} msat, {args.rounds} rounds (fedimint-cli: receive + wait-complete)"
    )
    print(
        f"{'guardians':>9} {'ours p50':>9} {'ours p90':>9} {'notes/s':>8} {'cli p50':>8} {'cli p90':>8} {'cli/ours':>8}"
    )
    for r in rows:
        print(
            f"{r['guardians']:>9} {r['ours_p50_s']:>9.3f} {r['ours_p90_s']:>9.3f} {r['ours_notes_per_s']:>8.1f}"
            f" {r['cli_p50_s']:>8.3f} {r['cli_p90_s']:>8.3f} {r['ratio_p50']:>8.2f}"
        )
    print(
        json.dumps(
            {"bench": "fedimint_reissue", "msat": args.msat, "rounds": args.rounds, "results": rows}
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
