"""Real peers for tests: a regtest bitcoind (Bitcoin Knots), and real fedimintd federations of 1
and of 4 guardians on it, per module (the modules of shared/ share theirs), set up from scratch
(peers/). They are built by `make peers`, which `make test` runs first; missing, the tests fail and say so (never skip)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from peers.cache import fedimint_bin
from peers.harness.bitcoind import Bitcoind
from peers.harness.fedimintd import V1_MODULES, Federation, start_federation

from .bank import peg_in_ecash

# real peers on a machine whose cores the other workers keep busy: a fixture's set-up (4
# guardians, a fedimint-cli user's peg-in) may take minutes; only a hang should fail
REAL_PEERS_TIMEOUT_S = 900


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of this folder without a time limit of its own gets REAL_PEERS_TIMEOUT_S."""
    for item in items:
        if item.nodeid.startswith("tests/fedimint/") and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(REAL_PEERS_TIMEOUT_S))


@pytest.fixture(scope="session")
def peer_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fmgw-peers-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def bitcoind(peer_dir: Path) -> Iterator[Bitcoind]:
    """A fresh chain per module (a few seconds): guardians set up on a chain that every earlier
    test has grown took minutes to sync it (a 4-guardian federation over 100 s). (The modules
    of shared/ share one: shared/conftest.py.)"""
    yield from fresh_chain(peer_dir)


def fresh_chain(peer_dir: Path) -> Iterator[Bitcoind]:
    folder = peer_dir / f"bitcoind-{os.urandom(3).hex()}"
    node = Bitcoind.start(folder)
    try:
        yield node
    finally:
        node.stop()
        shutil.rmtree(folder, ignore_errors=True)


def running_federation(
    bitcoind: Bitcoind, folder: Path, guardians: int, modules: tuple[str, ...] | None = None
) -> Iterator[Federation]:
    extra = {"modules": modules} if modules else {}
    fed = start_federation(folder, bitcoind, guardians=guardians, **extra)
    try:
        yield fed
    finally:
        fed.stop()


@pytest.fixture(scope="module")
def federation1(
    bitcoind: Bitcoind, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Federation]:
    yield from running_federation(bitcoind, tmp_path_factory.mktemp("fed1"), 1)


@pytest.fixture(scope="module")
def federation4(
    bitcoind: Bitcoind, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Federation]:
    yield from running_federation(bitcoind, tmp_path_factory.mktemp("fed4"), 4)


@pytest.fixture(scope="module")
def federation1_other(
    bitcoind: Bitcoind, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Federation]:
    """A second 1-guardian federation on the same chain: two federations a gateway serves (a
    4-guardian one costs ~10 CPU-s to set up and a third of a core while it idles)."""
    yield from running_federation(bitcoind, tmp_path_factory.mktemp("fed1other"), 1)


@pytest.fixture(scope="module")
def federation1_v1(
    bitcoind: Bitcoind, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Federation]:
    """A 1-guardian federation with the modules fedimintd 0.11 set up by default (V1_MODULES:
    ln, lnv2, meta, mint, wallet), the shape of every federation that has users today."""
    yield from running_federation(bitcoind, tmp_path_factory.mktemp("fed1v1"), 1, V1_MODULES)


@pytest.fixture(scope="module")
def federation4_v1(
    bitcoind: Bitcoind, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Federation]:
    """The same with 4 guardians."""
    yield from running_federation(bitcoind, tmp_path_factory.mktemp("fed4v1"), 4, V1_MODULES)


class User:
    """A fedimint-cli 0.13.0 user: one data dir, one command per process, JSON out. A command
    may take minutes on a machine whose cores are kept busy (a 4-guardian federation's consensus
    starved of CPU): its time limit only catches a hang, never a slow machine.

    fedimint-cli 0.13 has a start-up race: walletv2's output scanner, spawned before the client
    is complete, may find a deposit to claim at once and panic ("client must be already set",
    fedimint-client-module module/mod.rs:177), and the command then waits forever. A panic ends
    the command at once; one that only waits or reads (`await-*`, `info`, `dev …`) is run again,
    others fail with the panic's message."""

    RETRIES = 2

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def __call__(self, *args: str, timeout: float = 400) -> object:
        rerun = args[:1] in (("info",), ("dev",)) or any(a.startswith("await-") for a in args)
        for attempt in range(self.RETRIES + 1):
            code, out, err = self._run(args, timeout)
            if code is not None or not rerun or attempt == self.RETRIES:
                break
        assert code == 0, f"fedimint-cli {args}: {out} {err[-1500:]}"
        return json.loads(out)

    def _run(self, args: tuple[str, ...], timeout: float) -> tuple[int | None, str, str]:
        """(exit code, stdout, stderr); exit code None: it panicked and was killed."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(
                [str(fedimint_bin("fedimint-cli")), "--data-dir", str(self.data_dir), *args],
                stdout=out,
                stderr=err,
                env={**os.environ, "FM_IN_DEVIMINT": "1"},
            )
            deadline, code, read = time.monotonic() + timeout, None, 0
            try:
                while (code := proc.poll()) is None:
                    err.seek(start := max(0, read - 16))  # what is new, with an overlap
                    new = err.read()
                    if b"panicked at" in new:
                        break
                    read = start + len(new)
                    assert time.monotonic() < deadline, f"fedimint-cli {args}: no answer"
                    time.sleep(0.05)
            finally:
                if code is None:
                    proc.kill()
                    proc.wait()
            out.seek(0)
            err.seek(0)
            return code, out.read().decode(), err.read().decode(errors="replace")


def funded_user(fed: Federation, bitcoind: Bitcoind, data_dir: Path, sat: int = 100_000) -> User:
    """A fedimint-cli user of `fed` with e-cash from a peg-in of `sat` (bank.py: ours, its
    notes spent to the user; 98 % of it, the rest paid the fees)."""
    ecash = peg_in_ecash(fed, bitcoind, data_dir.with_name(f"{data_dir.name}-bank.sqlite"), sat)
    u = User(data_dir)
    u("join", fed.invite_code)
    u("module", "mintv2", "receive", ecash)
    u("dev", "wait-complete")  # the notes in the wallet (`receive` answers before)
    return u


@pytest.fixture(scope="module")
def user(federation1: Federation, bitcoind: Bitcoind, tmp_path_factory) -> User:  # type: ignore[no-untyped-def]
    """A user of the 1-guardian federation with e-cash from a 100,000 sat peg-in."""
    return funded_user(federation1, bitcoind, tmp_path_factory.mktemp("fedimint-cli"))


@pytest.fixture(scope="module")
def user4(federation4: Federation, bitcoind: Bitcoind, tmp_path_factory) -> User:  # type: ignore[no-untyped-def]
    """A user of the 4-guardian federation with e-cash from a 100,000 sat peg-in."""
    return funded_user(federation4, bitcoind, tmp_path_factory.mktemp("fedimint-cli-4"))


@pytest.fixture(scope="module")
def user_other(federation1_other: Federation, bitcoind: Bitcoind, tmp_path_factory) -> User:  # type: ignore[no-untyped-def]
    """A user of the second 1-guardian federation with e-cash from a 100,000 sat peg-in."""
    return funded_user(federation1_other, bitcoind, tmp_path_factory.mktemp("fedimint-cli-other"))
