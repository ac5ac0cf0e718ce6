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


def test_the_gatewayd_harness_needs_gatewayd_only_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """peers/harness/gatewayd.py imports and makes gatewayd's environment without gatewayd
    (what the side-by-side benchmark runs, as devimint runs it); starting it says how to build
    it, and nothing is left running."""
    import bcrypt

    from peers.harness.bitcoind import Bitcoind
    from peers.harness.gatewayd import Gatewayd
    from peers.harness.lnd import Lnd
    from peers.harness.procs import Process

    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))  # an empty cache: gatewayd missing
    monkeypatch.setenv("FM_GATEWAY_MNEMONIC", "not for gatewayd")  # the caller's FM_ stay out
    node = Lnd("gatewayd", tmp_path / "lnd", [], 10_009, 9_735)
    chain = Bitcoind(Process(), 18_443, "user", "secret", [28_332, 28_333])
    gw = Gatewayd(tmp_path / "gw", node, chain, 8_175)
    assert gw.url == "http://127.0.0.1:8175/v1"
    env = gw.env
    assert "FM_GATEWAY_MNEMONIC" not in env
    assert bcrypt.checkpw(gw.password.encode(), env["FM_GATEWAY_BCRYPT_PASSWORD_HASH"].encode())
    assert {
        k: env[k] for k in ("FM_GATEWAY_SKIP_SETUP", "FM_GATEWAY_NETWORK", "FM_IN_DEVIMINT")
    } == {
        "FM_GATEWAY_SKIP_SETUP": "true",
        "FM_GATEWAY_NETWORK": "regtest",
        "FM_IN_DEVIMINT": "1",
    }
    assert env["FM_LND_RPC_ADDR"] == "https://127.0.0.1:10009"
    assert env["FM_LND_MACAROON"].endswith("regtest/admin.macaroon")
    assert (env["FM_BITCOIND_URL"], env["FM_BITCOIND_PASSWORD"]) == (chain.url, "secret")
    with pytest.raises(cache.PeerMissing, match="make bench-peers"):
        gw.restart()
    assert gw.proc is None
