"""How hard the property and fuzz tests look.

`make test` loads the hypothesis profile "ci" (tests/conftest.py): derandomized, no example
database, so a commit always gets the same answer. `make fuzz` loads "fuzz": random, with the
seed it chose printed first (`make fuzz SEED=n` repeats a run), and every test's example budget
multiplied by FMGW_FUZZ_SCALE. A failure a random run finds becomes an `@example` (or an entry
in a test's table of regression cases) so that `make test` checks it from then on.
"""

from __future__ import annotations

import os

PROFILE_ENV = "FMGW_HYPOTHESIS_PROFILE"
SCALE_ENV = "FMGW_FUZZ_SCALE"
CI_PROFILE = "ci"
FUZZ_PROFILE = "fuzz"


def examples(n: int) -> int:
    """`n` examples under `make test`; FMGW_FUZZ_SCALE (default 20) times as many under
    `make fuzz`."""
    if os.environ.get(PROFILE_ENV) != FUZZ_PROFILE:
        return n
    return n * max(1, int(os.environ.get(SCALE_ENV, "20")))
