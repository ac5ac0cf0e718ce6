"""Throughput of LNv2 sends through fedimint's gatewayd 0.13 and through ours, side by side in
the world of bench/side_by_side.py: N users (N = 1, 10, 50) pay bob's invoices through one
gateway at a time, each user paying one invoice after the other, for a bounded time.

The users are `bench/_lnv2_users.py`: a user-side LNv2 send on fmclient that speaks the
protocol as fedimint-cli 0.13's `module lnv2 send --gateway URL` + `await-send` does (routing
info, outgoing contract funded with the user's mintv2 e-cash and change, `/send_payment`
beside the federation's `await_preimage`, a refund on a forfeit), many in one process: a
fedimint-cli process per payment would cost more CPU than the gateways at N = 50. Each user
has a wallet of its own (its own SQLite file and guardian connections) and an HTTP client of
its own. Their e-cash: one peg-in of ours (tests/fedimint/bank.py), split into one note of
2^24 msat (16,777 sat) per user, which each user reissues into its wallet.

A payment: bob's lnd makes an invoice of `--load-msat` with a preimage we chose (lnd's gRPC
AddInvoice, not timed), the user pays it through the gateway; timed from the routing info
request to the preimage. A run starts payments until `--load-seconds` have passed and counts
those that finished; payments/s = successes / (start to the last end). Checked per payment:
the preimage is the invoice's; after each run: bob's lnd says every paid invoice settled with
that preimage, and each user's balance is its balance before less what its funding
transactions took (notes in less change) plus refunds.

Reported per N and gateway: payments/s, p50/p90 latency (s), failures, the p50 of a payment's
two parts (start to the funding's acceptance by the federation; from there to the gateway's
answer), the load generator's
own CPU (this process's CPU seconds over the run and as a share of one core: near 1.0 it would
be the bottleneck; the machine has 2 cores that every peer shares), the gateway's CPU seconds
per payment (all its processes) and the guardians' CPU as a share of one core (all fedimintd
processes), and how busy the whole machine was (the share of all cores' time not idle: near
1.0 every process waits for a core, theirs and the other users' of the machine alike). Before
the runs every user pays once through each gateway (warm-up: its first
connections); the gateway going first alternates with N.

Every user here comes from one address, where real users each have their own: our API front's
per-client limit on public routes (20 requests/s, burst 40 by default) would refuse some of
them at N = 50 (429 on /routing_info, which fedimint-cli does not retry: a failure), so ours
runs with `--ours-public-rate` (1000/s and burst by default; 0 keeps the product's). gatewayd
limits only /create_bolt11_invoice (FM_GATEWAY_INVOICE_RATE_LIMIT_*), not sends.

    python bench/side_by_side_load.py [--load-seconds 20] [--users 1,10,50]
        [--gateways gatewayd,ours] [--load-msat 10000] [--guardians 1|4]
        [--ours-public-rate 1000]

Needs gatewayd (`make bench-peers`). Prints a table and, last, one JSON line
{"bench": "side_by_side_load", ...}. Stops everything and removes its folder.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._lnv2_users import Lnv2User, Payment
from bench.lnd_gateway import p90
from bench.side_by_side import SideBySide, say, session_cpu_s, side_by_side_world
from fmclient.api import FederationApi
from fmclient.config import parse_client_config
from fmclient.wallet import MintWallet
from gwproto import lnd_lightning_pb2 as ln
from gwproto import lnd_lightning_pb2_grpc as ln_grpc
from peers.harness.lnd import Lnd
from services.lnrpc.lnd_connection import secure_channel
from tests.fedimint.bank import peg_in_ecash

USER_NOTE = 24  # each user's e-cash: one note of 2^24 msat, reissued into its wallet


class Invoices:
    """bob's invoices over lnd's gRPC, with preimages we choose."""

    def __init__(self, bob: Lnd) -> None:
        self.channel = secure_channel(
            bob.rpc_host, bob.tls_cert.read_bytes(), bob.macaroon.read_bytes().hex()
        )
        self.stub = ln_grpc.LightningStub(self.channel)
        # the project's lnd stubs leave AddInvoice out: called by name, its answer read below
        self.add_invoice = self.channel.unary_unary(
            "/lnrpc.Lightning/AddInvoice",
            request_serializer=ln.Invoice.SerializeToString,
            response_deserializer=lambda data: data,
        )

    async def new(self, msat: int) -> tuple[str, bytes]:
        preimage = os.urandom(32)
        answer = await self.add_invoice(ln.Invoice(value_msat=msat, r_preimage=preimage))
        return payment_request(answer), preimage

    async def settled_with(self, preimage: bytes) -> bool:
        inv = await self.stub.LookupInvoice(
            ln.PaymentHash(r_hash=hashlib.sha256(preimage).digest())
        )
        return inv.state == ln.Invoice.SETTLED and inv.r_preimage == preimage

    async def close(self) -> None:
        await self.channel.close()


def payment_request(answer: bytes) -> str:
    """Field 2 (`payment_request`, a string) of lnd's AddInvoiceResponse, in protobuf's wire
    format: (field << 3 | wire type) tags, each a varint, then the field."""

    def varint(at: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            byte = answer[at]
            value, shift, at = value | (byte & 0x7F) << shift, shift + 7, at + 1
            if byte < 0x80:
                return value, at

    at = 0
    while at < len(answer):
        tag, at = varint(at)
        if tag & 7 == 0:  # varint
            _, at = varint(at)
            continue
        if tag & 7 != 2:
            raise ValueError(f"unexpected wire type {tag & 7} in AddInvoiceResponse")
        size, at = varint(at)
        if tag >> 3 == 2:
            return answer[at : at + size].decode()
        at += size
    raise ValueError("AddInvoiceResponse without a payment_request")


def machine_times() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far, all cores (/proc/stat: idle and
    iowait are not busy)."""
    ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)


@dataclass
class Run:
    gateway: str
    users: int
    seconds: float = 0.0
    payments: list[Payment] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    load_cpu_s: float = 0.0
    gateway_cpu_s: float = 0.0
    federation_cpu_s: float = 0.0
    machine_busy: float = 0.0  # the share of the machine's CPU time (all cores) not idle

    @property
    def row(self) -> dict:
        took = [p.seconds for p in self.payments]
        funded = [p.funded_seconds for p in self.payments]
        answer = [p.seconds - p.funded_seconds for p in self.payments]
        return {
            "pps": round(len(took) / self.seconds, 3) if self.seconds else 0.0,
            "p50_s": round(statistics.median(took), 4) if took else None,
            "p90_s": round(p90(took), 4) if took else None,
            # start to the funding's acceptance / from there to the gateway's answer
            "fund_p50_s": round(statistics.median(funded), 4) if funded else None,
            "gateway_p50_s": round(statistics.median(answer), 4) if answer else None,
            "ok": len(took),
            "failures": len(self.failures),
            "load_cpu_s": round(self.load_cpu_s, 2),
            "load_cpu_share": round(self.load_cpu_s / self.seconds, 3) if self.seconds else 0.0,
            "gateway_cpu_s_per_payment": round(self.gateway_cpu_s / len(took), 4) if took else None,
            "federation_cpu_share": round(self.federation_cpu_s / self.seconds, 3)
            if self.seconds
            else 0.0,
            "machine_busy": round(self.machine_busy, 3),
        }


async def make_users(w: SideBySide, ecash: str, n: int) -> list[Lnv2User]:
    """`n` users, each with a wallet holding one 2^USER_NOTE msat note of the bank's, reissued."""
    endpoints = dict(enumerate(w.fed.api_urls))
    bank_api = FederationApi(endpoints)
    cfg = parse_client_config(await bank_api.current_consensus("client_config"))
    bank = MintWallet(w.base / "load" / "bank.sqlite", cfg, bank_api)
    await bank.receive(ecash)
    chosen = bank.choose(n * ((1 << USER_NOTE) + bank.mint.fee(USER_NOTE)))
    bank.create_operation("split-users", "split", chosen, external=False, wanted=[USER_NOTE] * n)
    await bank.finish("split-users")
    notes = [str((await bank.spend(1 << USER_NOTE))["ecash"]) for _ in range(n)]
    await bank_api.close()
    users = [
        Lnv2User(MintWallet(w.base / "load" / f"user{i}.sqlite", cfg, FederationApi(endpoints)))
        for i in range(n)
    ]
    await asyncio.gather(*(u.wallet.receive(s) for u, s in zip(users, notes, strict=True)))
    return users


async def run_load(
    users: list[Lnv2User], name: str, url: str, seconds: float, msat: int, invoices: Invoices,
    leader: int, guardians: list[int],
) -> Run:  # fmt: skip
    """`leader`: the gateway's session (its CPU); `guardians`: each guardian's (theirs)."""
    run = Run(name, len(users))
    before = {id(u): u.wallet.balance_msat() for u in users}
    paid: list[tuple[Lnv2User, Payment, bytes]] = []

    async def one(user: Lnv2User) -> None:
        while time.perf_counter() < deadline:
            bolt11, preimage = await invoices.new(msat)
            try:
                p = await user.pay(bolt11, url)
            except Exception as exc:  # every failure is counted, with its reason
                run.failures.append(f"{type(exc).__name__}: {exc}"[:200])
                await asyncio.sleep(0.5)
                continue
            paid.append((user, p, preimage))
            if p.preimage == preimage:
                run.payments.append(p)
            else:
                run.failures.append(
                    f"refunded {p.refunded_msat} msat" if p.refunded_msat else "wrong preimage"
                )

    gateway_cpu, cpu, start = session_cpu_s(leader), time.process_time(), time.perf_counter()
    fed_cpu, machine = sum(session_cpu_s(g) for g in guardians), machine_times()
    deadline = start + seconds
    await asyncio.gather(*(one(u) for u in users))
    run.seconds = time.perf_counter() - start
    run.load_cpu_s = time.process_time() - cpu
    run.gateway_cpu_s = session_cpu_s(leader) - gateway_cpu
    run.federation_cpu_s = sum(session_cpu_s(g) for g in guardians) - fed_cpu
    busy, total = (b - a for a, b in zip(machine, machine_times(), strict=True))
    run.machine_busy = busy / total if total else 0.0
    await asyncio.gather(*(u.settled() for u in users))
    for _, p, preimage in paid:  # bob has each paid invoice, settled with its preimage
        assert p.preimage != preimage or await invoices.settled_with(preimage), p
    for u in users:  # each wallet: what its fundings took, less refunds, and nothing else
        spent = sum(p.spent_msat - p.refunded_msat for v, p, _ in paid if v is u)
        assert u.wallet.balance_msat() == before[id(u)] - spent, (before[id(u)], spent)
    return run


async def warm_up(user: Lnv2User, url: str, msat: int, invoices: Invoices) -> None:
    bolt11, preimage = await invoices.new(msat)
    assert (await user.pay(bolt11, url)).preimage == preimage


async def measure(
    w: SideBySide, ecash: str, args: argparse.Namespace, wanted: list[str]
) -> list[Run]:
    counts = [int(n) for n in args.users.split(",")]
    users = await make_users(w, ecash, max(counts))
    say(f"{len(users)} users, {users[0].wallet.balance_msat()} msat each")
    invoices = Invoices(w.world.node("bob"))
    runs = []
    try:
        for name in wanted:  # warm-up: every user pays once through each gateway
            await asyncio.gather(
                *(warm_up(u, w.urls[name], args.load_msat, invoices) for u in users)
            )
        guardians = [g.proc.popen.pid for g in w.fed.guardians]  # type: ignore[union-attr]
        for i, n in enumerate(counts):
            for name in wanted if i % 2 == 0 else wanted[::-1]:
                run = await run_load(
                    users[:n], name, w.urls[name], args.load_seconds, args.load_msat,
                    invoices, w.leaders[name], guardians,
                )  # fmt: skip
                say(f"N={n} {name}: {run.row}")
                if run.failures:
                    say(f"  failures: {sorted(set(run.failures))[:5]}")
                runs.append(run)
    finally:
        await invoices.close()
        for u in users:
            await u.close()
            await u.wallet.api.close()
    return runs


def report(runs: list[Run], args: argparse.Namespace, wanted: list[str]) -> None:
    print(
        f"LNv2 sends of {args.load_msat} msat to bob, N users each paying one after the other for"
        f" {args.load_seconds} s, a {args.guardians}-guardian federation"
    )
    print(
        f"{'N':>3} {'gateway':9} {'pay/s':>7} {'p50 s':>7} {'p90 s':>7} {'ok':>5} {'fail':>5}"
        f" {'fund p50':>8} {'gw p50':>7} {'gen CPU s':>9} {'gen/core':>8} {'gw CPU s/pay':>12}"
        f" {'fed/core':>8} {'busy':>5}"
    )
    out: dict[str, object] = {}
    for r in runs:
        row = r.row
        print(
            f"{r.users:3d} {r.gateway:9} {row['pps']:7.2f} {row['p50_s'] or 0:7.3f}"
            f" {row['p90_s'] or 0:7.3f} {row['ok']:5d} {row['failures']:5d}"
            f" {row['fund_p50_s'] or 0:8.3f} {row['gateway_p50_s'] or 0:7.3f}"
            f" {row['load_cpu_s']:9.2f} {row['load_cpu_share']:8.2f}"
            f" {row['gateway_cpu_s_per_payment'] or 0:12.4f} {row['federation_cpu_share']:8.2f}"
            f" {row['machine_busy']:5.2f}"
        )
        for k, v in row.items():
            out[f"{r.gateway}_n{r.users}_{k}"] = v
    print(
        json.dumps(
            {
                "bench": "side_by_side_load",
                "load_seconds": args.load_seconds,
                "load_msat": args.load_msat,
                "guardians": args.guardians,
                "gateways": wanted,
                "users": args.users,
                **out,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--load-seconds", type=float, default=20.0)
    ap.add_argument("--users", default="1,10,50")
    ap.add_argument("--gateways", default="gatewayd,ours")
    ap.add_argument("--load-msat", type=int, default=10_000)
    ap.add_argument("--guardians", type=int, default=1, choices=(1, 4))
    ap.add_argument(
        "--ours-public-rate",
        type=int,
        default=1000,
        help="our API front's per-client limit on public routes, requests/s and burst (0: the"
        " product's 20/s, burst 40)",
    )
    args = ap.parse_args()
    wanted = [g for g in args.gateways.split(",") if g]
    assert wanted and set(wanted) <= {"gatewayd", "ours"}, args.gateways
    rate = args.ours_public_rate
    settings = (
        {"GATEWAY_API_PUBLIC_RATE_PER_S": str(rate), "GATEWAY_API_PUBLIC_BURST": str(rate)}
        if rate
        else {}
    )
    with side_by_side_world(wanted, args.guardians, "load-side-", settings) as w:
        (w.base / "load").mkdir()
        users = max(int(n) for n in args.users.split(","))
        sat = users * 17_500 + 20_000  # 98 % of it is the bank's e-cash (bank.py)
        ecash = peg_in_ecash(w.fed, w.node, w.base / "load" / "peg-in.sqlite", sat)
        runs = asyncio.run(measure(w, ecash, args, wanted))
    report(runs, args, wanted)


if __name__ == "__main__":
    main()
