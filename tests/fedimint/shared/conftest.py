"""The modules of this folder share one chain and its federations (1 and 4 guardians), set up
once for the folder (package scope) instead of once per module: each is small and uses the
federations as a client would, and a 4-guardian federation costs ~10 CPU-s and ~10 s to set up
and a third of a core while it idles. tests/scheduling.py runs the folder on one worker, its
modules one after another; the federations stop after its last test.

A module here leaves the federations as it found them: every guardian it stops is started again
(in `finally`), and it makes its own wallets and users."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from peers.harness.bitcoind import Bitcoind
from peers.harness.fedimintd import Federation

from ..conftest import fresh_chain, running_federation


@pytest.fixture(scope="package")
def bitcoind(peer_dir: Path) -> Iterator[Bitcoind]:
    yield from fresh_chain(peer_dir)


@pytest.fixture(scope="package")
def federation1(
    bitcoind: Bitcoind, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Federation]:
    yield from running_federation(bitcoind, tmp_path_factory.mktemp("shared-fed1"), 1)


@pytest.fixture(scope="package")
def federation4(
    bitcoind: Bitcoind, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Federation]:
    yield from running_federation(bitcoind, tmp_path_factory.mktemp("shared-fed4"), 4)
