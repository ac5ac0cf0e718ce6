"""The Lightning extension on the sim backend: PayInvoice and intercept->complete round trips/s.

    python bench/lnrpc_sim.py [--n 200]

A real regtestd; the extension's gRPC server in this process on a free port; a real gRPC client.
  PayInvoice:  gateway node pays bob's invoices (one hop), one call at a time.
  intercept:   alice pays an invoice routed to a virtual channel of the gateway's node; the time
               from alice's payment starting to the HTLC arriving on RouteHtlcs, CompleteHtlc
               settling it, and alice's payment succeeding; one at a time.
Prints a table and, last, one JSON line {"bench": "lnrpc_sim", ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gwcore.extension import ExtensionEndpoint
from gwproto import gateway_lnrpc_pb2 as pb
from gwproto import gateway_lnrpc_pb2_grpc as pb_grpc
from services.lnrpc.server import ExtensionServer
from services.lnrpc.sim import SimBackend
from tests.regtest.helpers import federation_invoice

BIN = Path(sys.executable).parent


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


async def measure(data_dir: Path, n: int) -> dict:
    info = json.loads((data_dir / "regtestd.json").read_text())
    http = httpx.AsyncClient(
        base_url=info["api_url"],
        headers={"Authorization": f"Bearer {info['api_token']}"},
        timeout=60,
    )

    async def post(path: str, body: dict) -> dict:
        r = await http.post(path, json=body)
        r.raise_for_status()
        return r.json()

    server = ExtensionServer(
        SimBackend.from_data_dir(data_dir, "gateway"), f"unix:{data_dir}/lnrpc/extension.sock"
    )
    await server.start()
    for name in ("alice", "bob"):
        await post("/v1/nodes", {"name": name})
    await post("/v1/nodes/alice/fund", {"amount_sat": 20_000_000})
    await post("/v1/nodes/gateway/fund", {"amount_sat": 20_000_000})
    await post("/v1/channels", {"from": "alice", "to": "gateway", "capacity_sat": 16_000_000})
    await post("/v1/channels", {"from": "gateway", "to": "bob", "capacity_sat": 16_000_000})
    gw_pub = (await http.get("/v1/nodes/gateway")).json()["pubkey"]
    async with ExtensionEndpoint.parse(server.listen).channel() as channel:
        stub = pb_grpc.GatewayLightningStub(channel)
        invoices = [
            await post("/v1/nodes/bob/invoices", {"amount_msat": 1000 + i}) for i in range(n + 10)
        ]
        pay_lat = []
        for i, inv in enumerate(invoices):
            t0 = time.perf_counter()
            req = pb.PayInvoiceRequest(
                invoice=inv["bolt11"],
                max_delay=500,
                max_fee_msat=10_000,
                payment_hash=bytes.fromhex(inv["payment_hash"]),
            )
            r = await stub.PayInvoice(req, timeout=30)
            assert r.status == pb.SETTLED
            if i >= 10:
                pay_lat.append(time.perf_counter() - t0)
        stream = stub.RouteHtlcs(pb.RouteHtlcsRequest())
        loop_lat = []
        for i in range(n + 10):
            pre = os.urandom(32)
            bolt11 = federation_invoice(gw_pub, 5000, pre)
            t0 = time.perf_counter()
            pay = asyncio.create_task(post("/v1/nodes/alice/pay", {"bolt11": bolt11}))
            htlc = await stream.read()
            req = pb.CompleteHtlcRequest(
                incoming_chan_id=htlc.incoming_chan_id, htlc_id=htlc.htlc_id
            )
            req.settle.preimage = pre
            await stub.CompleteHtlc(req)
            assert (await pay)["status"] == "succeeded"
            if i >= 10:
                loop_lat.append(time.perf_counter() - t0)
        stream.cancel()
    await server.stop(0.5)
    await http.aclose()
    return {
        "pay_invoice_per_s": round(len(pay_lat) / sum(pay_lat), 1),
        "pay_invoice_p50_ms": round(statistics.median(pay_lat) * 1000, 2),
        "pay_invoice_p99_ms": round(pct(pay_lat, 0.99) * 1000, 2),
        "intercept_complete_per_s": round(len(loop_lat) / sum(loop_lat), 1),
        "intercept_complete_p50_ms": round(statistics.median(loop_lat) * 1000, 2),
        "intercept_complete_p99_ms": round(pct(loop_lat, 0.99) * 1000, 2),
        "n": n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fmgw-lnrpcbench-"))
    proc = subprocess.Popen(
        [str(BIN / "regtestd"), "--data-dir", str(tmp)], stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while not (tmp / "regtestd.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        r = asyncio.run(measure(tmp, args.n))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"{'gRPC on the sim backend, one at a time':<44}{'per s':>10}{'p50 ms':>10}{'p99 ms':>10}"
    )
    print(
        f"{'PayInvoice (1 hop)':<44}{r['pay_invoice_per_s']:>10}{r['pay_invoice_p50_ms']:>10}{r['pay_invoice_p99_ms']:>10}"
    )
    row = "intercept -> CompleteHtlc -> payer settled"
    print(
        f"{row:<44}{r['intercept_complete_per_s']:>10}{r['intercept_complete_p50_ms']:>10}{r['intercept_complete_p99_ms']:>10}"
    )
    print(json.dumps({"bench": "lnrpc_sim", **r}))


if __name__ == "__main__":
    main()
