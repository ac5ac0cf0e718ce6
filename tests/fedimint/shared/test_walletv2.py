"""walletv2 peg-in addresses made by fmclient are the federation's: paid from a real bitcoind,
the real guardians (1 and 4) list the output as theirs to claim (`output_info_slice`). And a
real fedimint-cli user's own peg-in (the tests' other users get e-cash from ours: bank.py)."""

from __future__ import annotations

import asyncio
import time

import pytest

from fmclient.api import FederationApi
from fmclient.config import parse_client_config
from fmclient.walletv2 import WalletConfig, new_peg_in_address
from peers.harness.bitcoind import Bitcoind
from peers.harness.fedimintd import Federation

from ..conftest import User


def test_a_real_users_peg_in(federation1: Federation, bitcoind: Bitcoind, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """fedimint-cli's `module walletv2 receive` (its seed's next valid index), paid on chain,
    `await-receive` from the event log position read before: the user holds the e-cash."""
    user = User(tmp_path / "fedimint-cli")
    user("join", federation1.invite_code)
    pos = str(user("dev", "next-event-log-id"))
    address = str(user("module", "walletv2", "receive"))
    bitcoind.send(address, 100_000)
    bitcoind.mine(21)
    assert user("module", "walletv2", "await-receive", pos)[0] == "Success"  # type: ignore[index]
    held = user("info")["total_amount_msat"]  # type: ignore[index]
    assert 90_000_000 < held < 100_000_000  # less the federation's fees


@pytest.mark.parametrize("which", ["federation1", "federation4"])
async def test_our_peg_in_address_is_seen_by_the_federation(
    which: str, bitcoind: Bitcoind, request: pytest.FixtureRequest
) -> None:
    fed: Federation = request.getfixturevalue(which)
    api = FederationApi(dict(enumerate(fed.api_urls)))
    try:
        cfg = parse_client_config(await api.current_consensus("client_config"))
        module = cfg.module_id("walletv2")
        wallet = WalletConfig.from_bytes(cfg.modules[module].body)
        assert wallet.network == "regtest" and len(wallet.bitcoin_pks) == len(fed.guardians)
        address = new_peg_in_address(wallet)
        bitcoind.send(address.address, 50_000)
        bitcoind.mine(21)  # walletv2 records an output once the tip is 7 blocks past it
        deadline = time.monotonic() + 60
        ours: list[dict] = []
        while not ours and time.monotonic() < deadline:
            outputs = await api.current_consensus(f"module_{module}_output_info_slice", [0, 10_000])
            ours = [o for o in outputs if o["script"] == address.script_pubkey.hex()]
            await asyncio.sleep(0.3)
        assert len(ours) == 1 and ours[0]["value"] == 50_000 and not ours[0]["spent"]
    finally:
        await api.close()
