"""fmclient's mintv2 wallet against a real 1-guardian federation and a real fedimint-cli user:
e-cash the user sends is reissued into the wallet (credited exactly the amount less the
federation's fees), taking it again credits nothing, another wallet taking the same notes is
refused and holds nothing, and e-cash the wallet spends is received by the user."""

from __future__ import annotations

from pathlib import Path

import pytest

from fmclient.api import FederationApi
from fmclient.config import parse_client_config
from fmclient.mintv2 import EcashError, parse_ecash
from fmclient.wallet import MintWallet
from peers.harness.fedimintd import Federation

from .conftest import User


async def _wallet(fed: Federation, path: Path) -> MintWallet:
    api = FederationApi(dict(enumerate(fed.api_urls)))
    cfg = parse_client_config(await api.current_consensus("client_config"))
    assert cfg.federation_id == fed.federation_id
    return MintWallet(path, cfg, api)


async def test_receive_and_spend_with_a_real_user(
    federation1: Federation,
    user: User,
    tmp_path: Path,
) -> None:
    ours = await _wallet(federation1, tmp_path / "ours.sqlite")
    theirs = await _wallet(federation1, tmp_path / "theirs.sqlite")
    try:
        text = str(user("module", "mintv2", "send", "64000"))
        ecash = parse_ecash(text)
        got = await ours.receive(text)
        assert got["state"] == "done" and ours.balance_msat() == got["amount_msat"]
        # exactly the amount less the fees: 100 msat per input and output note, and what is
        # below the smallest note (512 msat) cannot be issued
        n_in = len(ecash.notes)
        outputs = ours.db.execute("SELECT COUNT(*) FROM notes WHERE state = 'unspent'").fetchone()[
            0
        ]
        leftover = ecash.amount_msat - 100 * (n_in + outputs) - got["amount_msat"]
        assert 0 <= leftover < 512, (ecash.amount_msat, n_in, outputs, got)
        # the same e-cash again: the same operation, nothing more credited
        assert await ours.receive(text) == got and ours.balance_msat() == got["amount_msat"]
        # another wallet taking the same notes is refused by the federation: nothing held
        with pytest.raises(EcashError, match="already spent"):
            await theirs.receive(text)
        assert theirs.balance_msat() == 0
        # and e-cash we spend is the user's
        before = user("info")["total_amount_msat"]  # type: ignore[index]
        spent = await ours.spend(20_000)
        assert spent["amount_msat"] == 20_480  # rounded up to 512 msat
        assert user("module", "mintv2", "receive", spent["ecash"]) == "Success"
        user("dev", "wait-complete")
        after = user("info")["total_amount_msat"]  # type: ignore[index]
        assert after > before
        assert ours.balance_msat() == got["amount_msat"] - spent["amount_msat"] - ours_fees(ours)
    finally:
        await ours.api.close()
        await theirs.api.close()


def ours_fees(wallet: MintWallet) -> int:
    """What the split before the spend paid the federation (inputs + outputs, leftover)."""
    rows = wallet.db.execute("SELECT * FROM operations WHERE kind = 'split'").fetchall()
    paid = 0
    for r in rows:
        spent = wallet.db.execute(
            "SELECT COALESCE(SUM(1 << denomination), 0) FROM notes WHERE op_id = ? AND state = 'spent'",
            (r["id"],),
        ).fetchone()[0]
        paid += spent - r["amount_msat"]
    return paid
