"""The real lnd nodes the contract tests share: btcd and alice -> gateway -> bob, started once
for the package (about 40 s) and stopped after its last test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from peers.harness.lnd import LndWorld


@pytest.fixture(scope="package")
def lnd_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LndWorld]:
    world = LndWorld.start(tmp_path_factory.mktemp("lnd"))
    try:
        yield world
    finally:
        world.stop()
