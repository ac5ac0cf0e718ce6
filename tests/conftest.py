"""Shared fixtures: a short private run directory (ipc paths must stay under 107 bytes) and a
ZeroMQ context per test; the real lnd nodes (one set per session); the hypothesis profiles
(tests/fuzzing.py says which runs use which); one default TLS context for the test process's
httpx clients (tests/tls_context.py); the temporary folders in RAM where the machine has room
(tests/scratch.py)."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import zmq.asyncio
from hypothesis import settings

from bus import HeartbeatPolicy
from peers.harness.lnd import LndWorld
from tests.fuzzing import CI_PROFILE, FUZZ_PROFILE, PROFILE_ENV
from tests.scheduling import (  # noqa: F401 - hooks
    pytest_collection_modifyitems,
    pytest_xdist_make_scheduler,
    register,
)
from tests.scratch import use_ram_folder
from tests.tls_context import share_the_default_context

# ci: the same examples on every run of a commit (derandomize: drawn from each test's name)
settings.register_profile(CI_PROFILE, derandomize=True, database=None, print_blob=True)
# fuzz: random draws (the seed comes from --hypothesis-seed, which `make fuzz` prints)
settings.register_profile(FUZZ_PROFILE, derandomize=False, database=None, print_blob=True)
settings.load_profile(os.environ.get(PROFILE_ENV, CI_PROFILE))


def pytest_configure(config: pytest.Config) -> None:
    use_ram_folder()  # before pytest's own tmp_path root is chosen (tests/scratch.py)
    register(config)
    share_the_default_context()


@pytest.fixture
def run_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fmgw-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def zctx() -> AsyncIterator[zmq.asyncio.Context]:
    """A context for the test. Its end never hangs the run: libzmq's term waits for every
    socket of the context, including those made through a shadow of it (the broker's), which
    `destroy` cannot close; one left open (a test that failed before stopping its broker) is
    a failure that says so, not a worker blocked for good."""
    ctx = zmq.asyncio.Context()
    try:
        yield ctx
    finally:
        for sock in list(ctx._sockets):  # what `destroy` closes, but term bounded below
            sock.close(linger=0)
        ended = threading.Thread(target=ctx.term, daemon=True)
        ended.start()
        ended.join(10)
        if ended.is_alive():
            pytest.fail("a zmq socket of this test was left open (a broker not stopped?)")


@pytest.fixture
def fast_heartbeat() -> HeartbeatPolicy:
    return HeartbeatPolicy(interval_s=0.1, liveness=3)


@pytest.fixture(scope="session")
def lnd_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LndWorld]:
    """Real lnd nodes alice -> gateway -> bob on a real btcd (about 40 s to start), shared by
    every test that needs them (the contract suite's real-lnd target, the dev tree and the
    operator's deployment on a real lnd). A test finds the channels as the last one left them
    (balances move; compare before and after) and alice's mission control reset."""
    world = LndWorld.start(tmp_path_factory.mktemp("lnd"))
    try:
        yield world
    finally:
        world.stop()


@pytest.fixture
def lnd(lnd_world: LndWorld) -> LndWorld:
    """`lnd_world`, with alice's mission control forgotten (a failure an earlier test caused on
    purpose must not steer this one's payments)."""
    lnd_world.node("alice").cli("resetmc")
    return lnd_world
