"""Memory of fedimint's gatewayd 0.13 and of ours, side by side in the world of
bench/side_by_side.py: all of each gateway's processes, idle and under load, with 1 federation
connected and then with `--federations` (20).

Per gateway, summed over the processes of its session (gatewayd is one process; ours is
supervisord, the router, the API front's gunicorn master and workers, the extension and an
actor per federation):
  RSS: resident memory as `ps` shows it, pages shared between processes counted in each;
  PSS: proportional set size (/proc/PID/smaps_rollup), each shared page divided among the
       processes sharing it: what the gateway costs the machine, the fair figure for a
       gateway of several processes.

The steps, each gateway measured at the same moments:
  1. both connected to the federation both serve (LNv2, funded), idle `--settle` s: idle;
  2. N users (`--users`, 10) paying bob through each gateway in turn for `--load-seconds`
     (bench/side_by_side_load.py's users), memory sampled every 0.25 s: the peak under load;
  3. `--federations` - 1 more 1-guardian federations on the same chain, each joined by both
     (ours `/connect-fed`, gatewayd `gateway-cli connect-fed`), idle `--settle` s: idle;
  4. the load of step 2 again: the peak under load with every federation connected.

    python bench/side_by_side_memory.py [--federations 20] [--users 10] [--load-seconds 10]
        [--settle 10]

Needs gatewayd (`make bench-peers`). Prints a table and, last, one JSON line
{"bench": "side_by_side_memory", ...}. Stops everything and removes its folder.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from bench.side_by_side import SideBySide, say, side_by_side_world
from bench.side_by_side_load import Invoices, make_users, run_load, warm_up
from peers.harness.fedimintd import Federation, start_federation
from tests.fedimint.bank import peg_in_ecash

GATEWAYS = ("gatewayd", "ours")


def session_memory_kib(leader: int) -> dict[str, int]:
    """RSS and PSS (KiB) summed over the processes now in the session `leader` started, and
    their count."""
    rss = pss = count = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[3]) != leader:
                continue
            rollup = (stat.parent / "smaps_rollup").read_text()
        except (OSError, IndexError, ValueError):
            continue  # it ended meanwhile
        fields = {
            line.split(":")[0]: int(line.split()[1])
            for line in rollup.splitlines()[1:]
            if line.endswith("kB")
        }
        rss, pss, count = rss + fields["Rss"], pss + fields["Pss"], count + 1
    return {"rss_kib": rss, "pss_kib": pss, "processes": count}


class PeakSampler:
    """The highest PSS (and the RSS beside it) of a session, sampled in a thread."""

    def __init__(self, leader: int, every_s: float = 0.25) -> None:
        self.leader, self.every_s = leader, every_s
        self.peak: dict[str, int] = {"rss_kib": 0, "pss_kib": 0, "processes": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = session_memory_kib(self.leader)
            if now["pss_kib"] > self.peak["pss_kib"]:
                self.peak = now
            self._stop.wait(self.every_s)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def connect_more(w: SideBySide, count: int) -> list[Federation]:
    """`count` more 1-guardian federations on the world's chain, each joined by both gateways."""
    assert w.gatewayd is not None and w.ours is not None
    feds = []
    for i in range(count):
        fed = start_federation(w.base / f"fed-more-{i}", w.node, 1, name=f"more-{i}")
        feds.append(fed)
        w.gatewayd.connect_fed(fed)
        r = w.ours.post("/connect-fed", json={"invite_code": fed.invite_code})
        assert r.status_code == 200, r.text
    say(f"{count} more federations, each joined by both gateways")
    return feds


async def load_peaks(
    w: SideBySide, users: list, invoices: Invoices, seconds: float, msat: int
) -> dict[str, dict[str, int]]:
    """Each gateway in turn under the users' load: its peak memory meanwhile."""
    peaks = {}
    guardians = [g.proc.popen.pid for g in w.fed.guardians]  # type: ignore[union-attr]
    for name in GATEWAYS:
        with PeakSampler(w.leaders[name]) as sampler:
            run = await run_load(
                users, name, w.urls[name], seconds, msat, invoices, w.leaders[name], guardians
            )
        assert not run.failures, run.failures[:5]
        peaks[name] = {**sampler.peak, "payments": len(run.payments)}
        say(f"{name} under load: {peaks[name]}")
    return peaks


def idle(w: SideBySide, settle: float) -> dict[str, dict[str, int]]:
    time.sleep(settle)
    return {name: session_memory_kib(w.leaders[name]) for name in GATEWAYS}


async def measure(w: SideBySide, ecash: str, args: argparse.Namespace) -> dict[str, dict]:
    users = await make_users(w, ecash, args.users)
    invoices = Invoices(w.world.node("bob"))
    steps: dict[str, dict] = {}
    more: list[Federation] = []
    try:
        for name in GATEWAYS:  # every user's first connections, on both
            await asyncio.gather(
                *(warm_up(u, w.urls[name], args.load_msat, invoices) for u in users)
            )
        steps["idle_1"] = idle(w, args.settle)
        steps["load_1"] = await load_peaks(w, users, invoices, args.load_seconds, args.load_msat)
        more = await asyncio.to_thread(connect_more, w, args.federations - 1)
        steps[f"idle_{args.federations}"] = idle(w, args.settle)
        steps[f"load_{args.federations}"] = await load_peaks(
            w, users, invoices, args.load_seconds, args.load_msat
        )
    finally:
        await invoices.close()
        for u in users:
            await u.close()
            await u.wallet.api.close()
        for fed in more:
            fed.stop()
    return steps


def report(steps: dict[str, dict], args: argparse.Namespace) -> None:
    print(
        f"Memory of each gateway, all its processes (MiB), 1 and {args.federations} federations;"
        f" load: {args.users} users paying {args.load_msat} msat for {args.load_seconds} s"
    )
    print(f"{'step':10} {'gateway':9} {'procs':>5} {'RSS':>8} {'PSS':>8} {'PSS ours/gatewayd':>18}")
    out: dict[str, object] = {}
    for step, by_gateway in steps.items():
        for name in GATEWAYS:
            m = by_gateway[name]
            ratio = ""
            if name == "ours":
                ratio = f"{m['pss_kib'] / by_gateway['gatewayd']['pss_kib']:.2f}"
                out[f"{step}_pss_ours_over_gatewayd"] = float(ratio)
            print(
                f"{step:10} {name:9} {m['processes']:5d} {m['rss_kib'] / 1024:8.1f}"
                f" {m['pss_kib'] / 1024:8.1f} {ratio:>18}"
            )
            out[f"{name}_{step}_rss_mib"] = round(m["rss_kib"] / 1024, 1)
            out[f"{name}_{step}_pss_mib"] = round(m["pss_kib"] / 1024, 1)
            out[f"{name}_{step}_processes"] = m["processes"]
    print(
        json.dumps(
            {
                "bench": "side_by_side_memory",
                "federations": args.federations,
                "users": args.users,
                "load_seconds": args.load_seconds,
                **out,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--federations", type=int, default=20)
    ap.add_argument("--users", type=int, default=10)
    ap.add_argument("--load-seconds", type=float, default=10.0)
    ap.add_argument("--load-msat", type=int, default=10_000)
    ap.add_argument("--settle", type=float, default=10.0)
    args = ap.parse_args()
    assert args.federations >= 1
    rate = {"GATEWAY_API_PUBLIC_RATE_PER_S": "1000", "GATEWAY_API_PUBLIC_BURST": "1000"}
    with side_by_side_world(list(GATEWAYS), 1, "memory-side-", rate) as w:
        (w.base / "load").mkdir()
        sat = args.users * 17_500 + 20_000  # 98 % of it is the bank's e-cash (bank.py)
        ecash = peg_in_ecash(w.fed, w.node, w.base / "load" / "peg-in.sqlite", sat)
        steps = asyncio.run(measure(w, ecash, args))
    report(steps, args)


if __name__ == "__main__":
    main()
