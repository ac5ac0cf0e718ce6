"""Real peers for tests: a regtest bitcoind (Bitcoin Knots) per session, and real fedimintd
federations of 1 and of 4 guardians per module, set up from scratch (peers/). They are built by
`make peers`, which `make test` runs first; missing, the tests fail and say so (never skip)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from peers.harness.bitcoind import Bitcoind
from peers.harness.fedimintd import Federation, start_federation


@pytest.fixture(scope="session")
def peer_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fmgw-peers-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def bitcoind(peer_dir: Path) -> Iterator[Bitcoind]:
    node = Bitcoind.start(peer_dir / "bitcoind")
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def federation1(
    bitcoind: Bitcoind, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Federation]:
    fed = start_federation(tmp_path_factory.mktemp("fed1"), bitcoind, guardians=1)
    try:
        yield fed
    finally:
        fed.stop()


@pytest.fixture(scope="module")
def federation4(
    bitcoind: Bitcoind, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Federation]:
    fed = start_federation(tmp_path_factory.mktemp("fed4"), bitcoind, guardians=4)
    try:
        yield fed
    finally:
        fed.stop()
