"""Two-hop Lightning payments in the simulated world: the floor for the gateway's figures.

    python bench/ln_payments.py [--payments 300] [--concurrency 16]

Starts a real regtestd (its own process, temp data dir), builds alice -> bob -> carol, then pays
carol's invoices from alice through the Lightning API over HTTP, as the gateway's extension will:
first one at a time (latency), then with N in flight (throughput). Invoices are made before the
clock starts. Prints a table and, last, one JSON line {"bench": "ln_payments", ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent


def start(data_dir: Path) -> tuple[subprocess.Popen[bytes], dict]:
    proc = subprocess.Popen(
        [str(BIN / "regtestd"), "--data-dir", str(data_dir)], stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            info = json.loads((data_dir / "regtestd.json").read_text())
            if info["pid"] == proc.pid:
                return proc, info
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("regtestd did not start")


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


async def measure(info: dict, n: int, concurrency: int) -> dict:
    headers = {"Authorization": f"Bearer {info['api_token']}"}
    async with httpx.AsyncClient(base_url=info["api_url"], headers=headers, timeout=60) as http:

        async def post(path: str, body: dict) -> dict:
            r = await http.post(path, json=body)
            r.raise_for_status()
            return r.json()

        await post("/v1/nodes", {"name": "alice"})
        await post("/v1/nodes/alice/fund", {"amount_sat": 50_000_000})
        await post("/v1/nodes", {"name": "bob"})
        await post("/v1/nodes/bob/fund", {"amount_sat": 50_000_000})
        await post("/v1/nodes", {"name": "carol"})
        await post("/v1/channels", {"from": "alice", "to": "bob", "capacity_sat": 16_000_000})
        await post("/v1/channels", {"from": "bob", "to": "carol", "capacity_sat": 16_000_000})

        async def invoices(k: int) -> list[str]:
            return [
                (await post("/v1/nodes/carol/invoices", {"amount_msat": 10_000 + i}))["bolt11"]
                for i in range(k)
            ]

        async def pay(bolt11: str) -> float:
            t0 = time.perf_counter()
            res = await post("/v1/nodes/alice/pay", {"bolt11": bolt11})
            assert res["status"] == "succeeded", res
            return (time.perf_counter() - t0) * 1e6

        for b in await invoices(20):  # warm up
            await pay(b)
        seq = await invoices(n)
        lat = [await pay(b) for b in seq]
        par = await invoices(n)
        sem = asyncio.Semaphore(concurrency)

        async def limited(b: str) -> float:
            async with sem:
                return await pay(b)

        t0 = time.perf_counter()
        par_lat = await asyncio.gather(*(limited(b) for b in par))
        elapsed = time.perf_counter() - t0
    return {
        "pay_p50_us": round(statistics.median(lat)),
        "pay_p99_us": round(pct(lat, 0.99)),
        "payments_per_s_sequential": round(n / (sum(lat) / 1e6), 1),
        "payments_per_s": round(n / elapsed, 1),
        "concurrent_p50_us": round(statistics.median(par_lat)),
        "concurrent_p99_us": round(pct(par_lat, 0.99)),
        "concurrency": concurrency,
        "payments": n,
        "hops": 2,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="fmgw-lnbench-"))
    proc, info = start(data_dir)
    try:
        r = asyncio.run(measure(info, args.payments, args.concurrency))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"{'two-hop payments over the regtest API':<44}{'p50 us':>10}{'p99 us':>10}{'pay/s':>10}")
    print(
        f"{'one at a time':<44}{r['pay_p50_us']:>10}{r['pay_p99_us']:>10}{r['payments_per_s_sequential']:>10}"
    )
    row = f"{args.concurrency} in flight"
    print(
        f"{row:<44}{r['concurrent_p50_us']:>10}{r['concurrent_p99_us']:>10}{r['payments_per_s']:>10}"
    )
    print(json.dumps({"bench": "ln_payments", **r}))


if __name__ == "__main__":
    main()
