"""`make chaos`: the long chaos run on a world of its own (about 1,000 payments; see
tests/chaos/driver.py). Prints its seed, the payments' outcomes, the books, and a JSON line;
exits 1 if anything is off.

    python -m tests.chaos [--payments 1000] [--seed N] [--threads 4]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

from .run import print_result, run_chaos
from .world import chaos_world


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m tests.chaos")
    ap.add_argument("--payments", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    print(f"chaos: seed {seed} (again: python -m tests.chaos --seed {seed})", flush=True)
    base = Path(tempfile.mkdtemp(prefix="fmgw-chaos-"))
    with chaos_world(base) as world:
        result = run_chaos(world, seed, args.payments, args.threads, progress_every=50)
        print_result(result)
    sys.exit(1 if result.problems else 0)


if __name__ == "__main__":
    main()
