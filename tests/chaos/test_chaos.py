"""The short chaos run of `make test`: 60 payments, a fixed seed, on the session's lnd nodes
(tests/chaos/driver.py says what is made, what is killed and what must balance)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from peers.harness.lnd import LndWorld

from .driver import TARGETS
from .run import print_result, run_chaos
from .world import chaos_world

pytestmark = pytest.mark.timeout(900)
SEED, PAYMENTS = 20261207, 60


def test_sixty_payments_under_the_killer_lose_nothing(lnd: LndWorld) -> None:
    # a short folder: the gateway's ipc socket paths are bounded; removed after unless it failed
    with chaos_world(Path(tempfile.mkdtemp(prefix="fmgw-chaos-")), lnd) as world:
        result = run_chaos(world, SEED, PAYMENTS)
        print_result(result)
    assert not result.problems, result.problems
    assert set(result.kills) == set(TARGETS), result.kills  # every kind of process was hit
    settled = sum(s["settled"] for s in result.states().values())
    assert settled >= PAYMENTS // 2, result.states()  # not a run where nothing could pay
