"""The peer cache: `make peers` (what `make test` runs) never builds fedimint's own gatewayd,
which only the benchmarks need (`make bench-peers`); each peer is looked for in a folder named by
its pinned version."""

from __future__ import annotations

from pathlib import Path

import pytest

from peers import cache


def test_gatewayd_is_built_for_the_benchmarks_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))  # an empty cache: every peer missing
    for_tests = [script for _, script, _ in cache._missing()]
    for_benches = [script for _, script, _ in cache._missing(cache._PEERS + cache._BENCH_PEERS)]
    assert "gatewayd/build.sh" not in for_tests
    assert for_benches == [*for_tests, "gatewayd/build.sh"]
    with pytest.raises(cache.PeerMissing, match="make bench-peers"):
        cache.gatewayd_bin("gatewayd")
    made = tmp_path / f"gatewayd-{cache.fedimint_version()}" / "bin" / "gateway-cli"
    made.parent.mkdir(parents=True)
    made.touch()
    assert cache.gatewayd_bin("gateway-cli") == made
