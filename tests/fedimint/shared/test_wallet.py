"""fmclient's mintv2 wallet against a real 1-guardian federation and a real fedimint-cli user:
e-cash the user sends is reissued into the wallet (credited exactly the amount less the
federation's fees), taking it again credits nothing, another wallet taking the same notes is
refused and holds nothing, and e-cash the wallet spends is received by the user."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path

import pytest

from fmclient.api import FederationApi
from fmclient.config import parse_client_config
from fmclient.mintv2 import EcashError, parse_ecash
from fmclient.wallet import MintWallet
from peers.harness.fedimintd import Federation

from .. import crash_receive
from ..conftest import User


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


@pytest.mark.parametrize("crash_at", ["created", "sent", "submitted"])
def test_kill_9_during_a_receive_loses_and_duplicates_nothing(
    federation1: Federation, user: User, tmp_path: Path, crash_at: str
) -> None:
    """The receiving process is killed after each committed step (and once between the
    federation accepting the transaction and our recording it); a new process resumes: the
    wallet ends with exactly what an uninterrupted receive credits, once."""
    text = str(user("module", "mintv2", "send", "8192"))
    path = tmp_path / f"crash-{crash_at}.sqlite"

    def run(step: str) -> subprocess.CompletedProcess[str]:
        return crash_receive.run(path, federation1.api_urls, step, text)

    killed = run(crash_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    resumed = run("resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    balance = json.loads(resumed.stdout)["balance_msat"]
    again = run("never")  # the same e-cash again, uninterrupted: the same operation
    assert again.returncode == 0 and json.loads(again.stdout)["balance_msat"] == balance
    # what an uninterrupted receive of 8192 msat in 2^13 notes credits: 8192 - 100 (input)
    # - 100 per output, in notes of at least 512 msat
    n_notes = len(parse_ecash(text).notes)
    assert 8192 - 100 * n_notes - 100 * 8 - 512 < balance <= 8192 - 100 * n_notes - 100


async def test_four_guardians_one_down_and_then_two(
    federation4: Federation, user4: User, tmp_path: Path
) -> None:
    """With one of four guardians killed a receive completes; with two killed it waits, and
    completes when one of them returns."""
    wallet = await _wallet(federation4, tmp_path / "w4.sqlite")
    g2, g3 = federation4.guardians[2], federation4.guardians[3]
    try:
        first = str(user4("module", "mintv2", "send", "16384"))
        g3.kill()
        got = await wallet.receive(first)
        assert got["state"] == "done" and wallet.balance_msat() == got["amount_msat"] > 0
        second = str(user4("module", "mintv2", "send", "8192"))  # 3 of 4 still make e-cash
        g2.kill()
        waiting = asyncio.create_task(wallet.receive(second))
        await asyncio.sleep(5)
        assert not waiting.done()  # two of four: no threshold, it waits
        g2.start()
        more = await asyncio.wait_for(waiting, 120)
        assert more["state"] == "done"
        assert wallet.balance_msat() == got["amount_msat"] + more["amount_msat"]
    finally:
        for g in (g2, g3):
            if g.proc is None or not g.proc.alive():
                g.start()
        await wallet.api.close()
