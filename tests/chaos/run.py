"""One chaos run: the books, the payments under the killer, the books again, the verdict."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field

from .books import Books, lightning_checks, settled_books
from .driver import Driver, Killer, Op
from .world import ChaosWorld

FINAL = ("settled", "failed")


@dataclass
class Result:
    seed: int
    payments: int
    before: Books
    after: Books
    ops: list[Op]
    kills: Counter[str]
    missed: Counter[str]
    retries: int
    took_s: float
    phases_s: dict[str, float]
    problems: list[str] = field(default_factory=list)

    def states(self) -> dict[str, Counter[str]]:
        out: dict[str, Counter[str]] = {}
        for o in self.ops:
            out.setdefault(o.kind, Counter())[o.state] += 1
        return out

    def summary(self) -> dict:
        return {
            "bench": "chaos",
            "seed": self.seed,
            "payments": self.payments,
            "took_s": round(self.took_s, 1),
            "phases_s": self.phases_s,
            "states": {k: dict(v) for k, v in sorted(self.states().items())},
            "kills": dict(sorted(self.kills.items())),
            "kills_missed": dict(sorted(self.missed.items())),
            "api_retries": self.retries,
            "books_before_msat": self.before.total_msat,
            "books_after_msat": self.after.total_msat,
            "moved": self.after.diff(self.before),
            "problems": self.problems,
        }


def run_chaos(
    world: ChaosWorld,
    seed: int,
    payments: int,
    threads: int = 4,
    progress_every: int = 0,
) -> Result:
    t0 = time.monotonic()
    before = settled_books(world)
    t1 = time.monotonic()
    driver = Driver(world, seed, payments, progress_every)
    killer = Killer(world, seed, lambda: driver.ended)
    started = time.monotonic()
    killer.start()
    try:
        driver.run(threads)
    finally:
        killer.stop_event.set()
        killer.join(120)
    took = time.monotonic() - started
    after = settled_books(world)
    phases = {
        "books_before_s": t1 - t0,
        "payments_s": took,
        "books_after_s": time.monotonic() - t0 - took - (t1 - t0),
    }
    result = Result(
        seed,
        payments,
        before,
        after,
        driver.ops,
        killer.done,
        killer.missed,
        world.gateway.retries,
        took,
        {k: round(v, 1) for k, v in phases.items()},
    )
    if killer.error is not None:
        result.problems.append(f"the killer failed: {killer.error!r}")
    open_ops = [o for o in driver.ops if o.state not in FINAL]
    if open_ops:
        result.problems.append(f"not final: {[(o.n, o.kind, o.state, o.detail) for o in open_ops]}")
    if len(driver.ops) != payments:
        result.problems.append(f"{len(driver.ops)} payments made of {payments}")
    if after.total_msat != before.total_msat:
        result.problems.append(
            f"the books moved by {after.total_msat - before.total_msat} msat: {after.diff(before)}"
        )
    if after.pending_htlcs:
        result.problems.append(f"{after.pending_htlcs} HTLCs left pending")
    result.problems += lightning_checks(world, driver.ops)
    world.keep = bool(result.problems)  # the logs stay for whoever looks into it
    return result


def print_result(result: Result) -> None:
    print(
        f"chaos: seed {result.seed}, {result.payments} payments in {result.took_s:.0f} s "
        f"(books read in {result.phases_s['books_before_s']:.0f} s before, "
        f"{result.phases_s['books_after_s']:.0f} s after)"
    )
    print(f"  {'kind':<12}{'settled':>9}{'failed':>8}{'other':>7}")
    for kind, states in sorted(result.states().items()):
        other = sum(v for k, v in states.items() if k not in FINAL)
        print(f"  {kind:<12}{states['settled']:>9}{states['failed']:>8}{other:>7}")
    print(
        f"  kills: {dict(sorted(result.kills.items()))} (drawn while down: "
        f"{dict(result.missed)}); API calls retried: {result.retries}"
    )
    for o in result.ops:
        if o.state != "settled":
            detail = " ".join(o.detail.split())[:200]
            print(f"    #{o.n} {o.kind} {o.msat} msat, user {o.user}: {o.state}: {detail}")
    print(f"  books: {result.before.total_msat} msat before, {result.after.total_msat} after")
    for holder, moved in result.after.diff(result.before).items():
        print(f"    {holder:<24}{moved:>+16} msat")
    for problem in result.problems:
        print(f"  PROBLEM: {problem}")
    print(json.dumps(result.summary()), flush=True)
