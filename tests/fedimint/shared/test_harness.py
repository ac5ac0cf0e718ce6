"""The harness itself, against the real binaries: federations of 1 and 4 guardians come up from
nothing with usable invite codes, their guardians agree, a real fedimint-cli user joins, three of
four guardians keep consensus going, and a guardian that cannot start is reported with its log
and leaves nothing running."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

import peers.harness.fedimintd as harness
from fmclient.config import parse_client_config
from fmclient.invite import parse_invite
from peers.harness.bitcoind import Bitcoind
from peers.harness.fedimintd import Federation, GuardianApiError, start_federation
from peers.harness.procs import PeerFailed

from ..conftest import User


def test_one_guardian(federation1: Federation, bitcoind: Bitcoind, tmp_path: Path) -> None:
    fed = federation1
    assert fed.invite_code.startswith("fed11")
    assert fed.module_ids == {"lnv2": 0, "meta": 1, "mintv2": 2, "walletv2": 3}
    (g,) = fed.guardians
    assert g.api_url.startswith("ws://127.0.0.1:") and fed.api_urls == [g.api_url]
    assert g.call("invite_code") == fed.invite_code
    assert g.call("status")["server"] == "consensus_running"
    assert "net_assets" in g.call("audit", auth=True)  # an admin call: its password works
    g.password, right = "wrong", g.password
    with pytest.raises(GuardianApiError):
        g.call("audit", auth=True)
    g.password = right
    # a real user joins with the invite code and sees the same federation
    user = User(tmp_path / "user")
    assert user("join", fed.invite_code) == {"joined": fed.invite_code}
    info = user("info")
    assert info["federation_id"] == fed.federation_id and info["network"] == "regtest"
    bitcoind.mine(1)
    fed.wait_synced(bitcoind, timeout=30)


def test_a_guardian_that_cannot_start_is_reported_and_nothing_is_left(
    bitcoind: Bitcoind, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    real = harness.free_ports
    monkeypatch.setattr(harness, "free_ports", lambda n: [*real(n - 3), port, *real(2)])
    started: list[harness.Guardian] = []
    original = harness.Guardian.start

    def start(self: harness.Guardian) -> None:
        original(self)
        started.append(self)

    monkeypatch.setattr(harness.Guardian, "start", start)
    try:
        with pytest.raises(PeerFailed) as err:
            start_federation(tmp_path, bitcoind, guardians=1, timeout=5)  # it never sets up
    finally:
        taken.close()
    assert "fedimintd g0" in str(err.value) and "its log" in str(err.value)
    assert started and all(not g.proc.alive() for g in started if g.proc)


@pytest.mark.parametrize("which", ["federation1", "federation4"])
def test_our_client_reads_what_real_guardians_serve(
    which: str, request: pytest.FixtureRequest
) -> None:
    """Every guardian's `client_config` parses, its federation id recomputed by fmclient is the
    one the guardian names, and every guardian's invite code decodes to it."""
    fed: Federation = request.getfixturevalue(which)
    for g in fed.guardians:
        cfg = parse_client_config(g.call("client_config"))
        assert cfg.federation_id == g.call("federation_id") == fed.federation_id
        assert cfg.module_id("walletv2") == fed.module_ids["walletv2"]
        invite = parse_invite(g.call("invite_code"))
        assert invite.federation_id == fed.federation_id
        assert invite.peers == {g.peer_id: g.api_url}


def test_four_guardians(federation4: Federation, bitcoind: Bitcoind) -> None:
    fed = federation4
    assert [g.peer_id for g in fed.guardians] == [0, 1, 2, 3]
    assert len(set(fed.api_urls)) == 4 and len(set(fed.passwords.values())) == 4
    assert {g.call("federation_id") for g in fed.guardians} == {fed.federation_id}
    assert sorted(fed.client_config["api_endpoints"]) == ["0", "1", "2", "3"]
    # each guardian's invite names its own URL; all name the same federation
    invites = {g.call("invite_code") for g in fed.guardians}
    assert len(invites) == 4 and fed.invite_code in invites
    # with one of four gone, the other three (the threshold) still agree on new blocks
    fed.guardians[3].kill()
    try:
        bitcoind.mine(2)
        fed.wait_synced(bitcoind, timeout=60)
    finally:
        fed.guardians[3].start()  # back on its data dir: straight into consensus
    fed.wait_synced(bitcoind, timeout=60)
    assert fed.block_count(fed.guardians[3]) == int(bitcoind.rpc("getblockcount")) + 1
