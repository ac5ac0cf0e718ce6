"""Fixtures of the contract suite: the simulated regtest world (`regtestd`, a process of its own),
one per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.regtest.test_regtestd_process import Regtestd


@pytest.fixture(scope="module")
def regtestd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Regtestd]:
    r = Regtestd(tmp_path_factory.mktemp("regtestd") / "rt")
    r.info = r.start()  # type: ignore[attr-defined]
    yield r
    r.kill()
