"""Bus round-trip latency and throughput against a bare pyzmq floor, measured in the same run.

    python bench/bus_rtt.py [--rounds 5] [--per-round 1000] [--payload 128]

Measures, over ipc:// in a private temp run dir, each peer in its own OS process:
  floor   bare pyzmq: a blocking DEALER ping-pongs frames with a ROUTER echo process
  bus     Broker.request() -> Worker (child process) -> reply: the router->actor path
  client  BusClient (this process) -> Broker (child) -> Worker (child): the API->actor path
Rounds alternate between the three so that machine noise hits them alike. Prints a table and,
last, one JSON line {"bench": "bus_rtt", ...} whose keys carry their units.
Target (issue 2): bus rtt p50 within 2x the floor p50 (aim 1.5x).
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

import zmq
import zmq.asyncio

from bus import Broker, BusClient, Call, HeartbeatPolicy, Worker, ipc_endpoint

SERVICE = "bench-fed"


# --- child roles ------------------------------------------------------------------------------
def role_bare_echo(endpoint: str) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.bind(endpoint)
    while True:
        sock.send_multipart(sock.recv_multipart())


async def role_worker(endpoint: str) -> None:
    async def echo(call: Call) -> bytes:
        return call.payload

    ctx = zmq.asyncio.Context()
    w = Worker(endpoint=endpoint, service=SERVICE, handler=echo, ctx=ctx, identity="bench-worker")
    await w.start()
    await asyncio.Event().wait()


async def role_broker(endpoint: str) -> None:
    b = Broker(endpoints=[endpoint], ctx=zmq.asyncio.Context())
    await b.start()
    await asyncio.Event().wait()


def spawn(role: str, endpoint: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, "--role", role, endpoint])


# --- measurements ----------------------------------------------------------------------------
def bare_round(sock: zmq.Socket, n: int, payload: bytes) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        sock.send_multipart([b"", payload])
        sock.recv_multipart()
        out.append((time.perf_counter_ns() - t0) / 1000)
    return out


async def bus_round(call, n: int, payload: bytes) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        await call(payload)
        out.append((time.perf_counter_ns() - t0) / 1000)
    return out


async def throughput(call, payload: bytes, seconds: float, concurrency: int) -> float:  # type: ignore[no-untyped-def]
    done = 0
    stop_at = time.perf_counter() + seconds

    async def pump() -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            await call(payload)
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(pump() for _ in range(concurrency)))
    return done / (time.perf_counter() - start)


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


async def measure(args: argparse.Namespace, run_dir: Path) -> dict[str, float]:
    payload = os.urandom(args.payload)
    children = []
    try:
        bare_ep = ipc_endpoint(run_dir, "bare")
        children.append(spawn("bare-echo", bare_ep))
        bare_ctx = zmq.Context()
        bare = bare_ctx.socket(zmq.DEALER)
        bare.connect(bare_ep)

        ctx = zmq.asyncio.Context()
        broker_ep = ipc_endpoint(run_dir, "router")
        broker = Broker(endpoints=[broker_ep], ctx=ctx, heartbeat=HeartbeatPolicy())
        await broker.start()
        children.append(spawn("worker", broker_ep))

        remote_ep = ipc_endpoint(run_dir, "router2")
        children.append(spawn("broker", remote_ep))
        children.append(spawn("worker", remote_ep))
        client = BusClient(remote_ep, ctx=ctx)

        async def via_broker(p: bytes) -> bytes:
            return await broker.request(SERVICE, "echo", p, timeout=5, retries=0)

        async def via_client(p: bytes) -> bytes:
            return await client.request(SERVICE, "echo", p, timeout=5, retries=0)

        # warm up (also waits for the workers to say READY)
        await via_broker(payload)
        await via_client(payload)
        bare_round(bare, 200, payload)
        await bus_round(via_broker, 200, payload)
        await bus_round(via_client, 200, payload)

        floor: list[float] = []
        bus: list[float] = []
        cli: list[float] = []
        for _ in range(args.rounds):
            floor += bare_round(bare, args.per_round, payload)
            bus += await bus_round(via_broker, args.per_round, payload)
            cli += await bus_round(via_client, args.per_round, payload)
        msgs = await throughput(via_broker, payload, args.seconds, args.concurrency)
        cli_msgs = await throughput(via_client, payload, args.seconds, args.concurrency)
        await client.close()
        await broker.stop()
        bare.close(0)
        bare_ctx.term()
    finally:
        for c in children:
            c.send_signal(signal.SIGKILL)
            c.wait()

    floor_p50 = statistics.median(floor)
    return {
        "rtt_p50_us": round(statistics.median(bus), 1),
        "rtt_p99_us": round(pct(bus, 0.99), 1),
        "msgs_per_s": round(msgs),
        "floor_rtt_p50_us": round(floor_p50, 1),
        "floor_rtt_p99_us": round(pct(floor, 0.99), 1),
        "ratio_to_floor": round(statistics.median(bus) / floor_p50, 2),
        "client_rtt_p50_us": round(statistics.median(cli), 1),
        "client_rtt_p99_us": round(pct(cli, 0.99), 1),
        "client_msgs_per_s": round(cli_msgs),
        "client_ratio_to_floor": round(statistics.median(cli) / floor_p50, 2),
        "samples_per_series": len(bus),
        "payload_bytes": args.payload,
        "concurrency": args.concurrency,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["bare-echo", "worker", "broker"])
    parser.add_argument("endpoint", nargs="?")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=1000)
    parser.add_argument("--payload", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    if args.role == "bare-echo":
        return role_bare_echo(args.endpoint)
    if args.role == "worker":
        return asyncio.run(role_worker(args.endpoint))
    if args.role == "broker":
        return asyncio.run(role_broker(args.endpoint))

    run_dir = Path(tempfile.mkdtemp(prefix="fmgw-bench-"))
    try:
        r = asyncio.run(measure(args, run_dir))
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    rows = [
        ("path (ipc, 2 processes unless noted)", "p50 us", "p99 us", "msgs/s"),
        ("floor: bare pyzmq DEALER<->ROUTER", r["floor_rtt_p50_us"], r["floor_rtt_p99_us"], ""),
        ("bus: Broker.request <-> Worker", r["rtt_p50_us"], r["rtt_p99_us"], r["msgs_per_s"]),
        (
            "bus: BusClient -> Broker -> Worker (3 proc)",
            r["client_rtt_p50_us"],
            r["client_rtt_p99_us"],
            r["client_msgs_per_s"],
        ),
    ]
    for name, p50, p99, rate in rows:
        print(f"{name:<46}{p50:>10}{p99:>10}{rate:>10}")
    print(
        f"ratio to floor (p50): bus {r['ratio_to_floor']}x, "
        f"client path {r['client_ratio_to_floor']}x (target <= 2x, aim 1.5x)"
    )
    print(json.dumps({"bench": "bus_rtt", **r}))


if __name__ == "__main__":
    main()
