"""`MintWallet` serving a federation whose e-cash module is mint v1, against a fake federation of
four guardians that keeps the server's rules (fedimint-mint-server 0.13.0: a spent nonce is
refused with SpentCoin, inputs must cover outputs and 100 msat per note, each guardian's
outcome is its share of each output through `await_outputs_outcomes`), one of them lying.
(The real federation: tests/fedimint/test_mintv1.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from coincurve import PrivateKey

from fmclient import mintv1, mintv2, tbs
from fmclient.config import ClientConfig, ModuleConfig
from fmclient.ecash import EcashError
from fmclient.encoding import encode
from fmclient.tx import Transaction, from_serde, to_serde, v0
from fmclient.wallet import MintWallet
from fmclient.wallet_operations import Rejected

MODULE, TIERS, FEE = 7, range(21), 100
G2 = tbs.g2(tbs.G2_GENERATOR)


def secret(tier: int, x: int) -> int:
    """Tier 2^tier's key: 3-of-4 shares of a polynomial, guardian p at x = p + 1."""
    return (5_000 + tier + (11 * tier + 3) * x + 7 * x * x) % tbs.R


def _config() -> ClientConfig:
    mint = mintv1.MintConfig(
        {1 << t: tbs.to_bytes(G2.scalar_mul(secret(t, 0))) for t in TIERS},
        FEE,
        0,
        {
            p: {1 << t: tbs.to_bytes(G2.scalar_mul(secret(t, p + 1))) for t in TIERS}
            for p in range(4)
        },
        3,
    )
    endpoints = {p: (f"ws://127.0.0.1:{9000 + p}/", f"g{p}") for p in range(4)}
    modules = {
        0: ModuleConfig(0, "ln", (2, 0), b""),
        MODULE: ModuleConfig(MODULE, "mint", (2, 0), mint.to_bytes()),
    }
    return ClientConfig(endpoints, modules, {}, {})


CONFIG = _config()


class FakeFederation:
    """Four guardians; guardian 2 answers shares that do not verify. `verified` answers the
    first threshold (3) whose answers `verify` takes, in peer order."""

    def __init__(self) -> None:
        self.spent: set[bytes] = set()
        self.txs: dict[str, Transaction] = {}
        self.asked: list[int] = []
        self.answered: list[list[int]] = []  # the guardians of each threshold answered

    async def current_consensus(self, method: str, params: Any = None, **kw: Any) -> Any:
        if method == "await_transaction":
            assert params in self.txs
            return params
        assert method == "submit_transaction"
        tx = Transaction.from_bytes(from_serde(params))
        inputs = [mintv1.MintInput.from_bytes(i.body) for i in tx.inputs]
        outputs = [mintv1.MintOutput.from_bytes(o.body) for o in tx.outputs]
        assert all(i.module == MODULE for i in tx.inputs + tx.outputs)
        assert sum(i.amount_msat - FEE for i in inputs) >= sum(o.amount_msat + FEE for o in outputs)
        for i in inputs:
            key = CONFIG_MINT.aggregate_key(i.amount_msat.bit_length() - 1)
            assert tbs.verify(tbs.message_v1(i.nonce), tbs.g1(i.signature), key)
        if any(i.nonce in self.spent for i in inputs):  # Err(Input(module, SpentCoin))
            error = encode(lambda w: w.framed(MODULE, bytes([mintv1.SPENT_COIN, 0])))
            return to_serde(encode(lambda w: w.u8(0).framed(4, error)))
        self.spent |= {i.nonce for i in inputs}
        self.txs[tx.txid] = tx
        return to_serde(b"\x01" + bytes.fromhex(tx.txid))

    async def verified(self, method: str, params: Any, verify: Any, **kw: Any) -> dict:
        assert method == "await_outputs_outcomes"
        tx, rng = self.txs[params["txid"]], params["idx_range"]
        got = {}
        for peer in range(4):
            answer = []
            for o in tx.outputs[rng["start"] : rng["end"]]:
                out = mintv1.MintOutput.from_bytes(o.body)
                sk = secret(out.amount_msat.bit_length() - 1, peer + 1) + (peer == 2)
                share = tbs.to_bytes(tbs.sign_share(tbs.g1(out.blind_nonce), sk))
                answer.append(to_serde(encode(lambda w, s=share: w.framed(MODULE, v0(s)))))
            value = verify(peer, answer)
            self.asked.append(peer)
            if value is not None:
                got[peer] = value
                if len(got) == 3:  # a threshold, as FederationApi.verified answers
                    break
        self.answered.append(sorted(got))
        return got


CONFIG_MINT = mintv1.MintConfig.from_bytes(CONFIG.modules[MODULE].body)


def issue(amounts: list[int], prefix: str = CONFIG.federation_id[:8]) -> str:
    """E-cash of these amounts, signed by the fake federation (as a user would hold it)."""
    notes = []
    for amount in sorted(amounts):
        key = PrivateKey()
        nonce = key.public_key.format(compressed=True)
        sig = tbs.sign_share(tbs.message_v1(nonce), secret(amount.bit_length() - 1, 0))
        notes.append((amount, tbs.to_bytes(sig), key.secret))
    return str(mintv1.OOBNotes(tuple(notes), prefix))


def _wallet(tmp_path: Path, name: str = "w", fed: FakeFederation | None = None) -> MintWallet:
    return MintWallet(tmp_path / f"{name}.sqlite", CONFIG, fed or FakeFederation())  # type: ignore[arg-type]


async def test_receive_credits_the_amount_less_fees_once_and_spend_gives_exact_notes(
    tmp_path: Path,
) -> None:
    fed = FakeFederation()
    wallet = _wallet(tmp_path, fed=fed)
    assert wallet.mint.kind == "mint" and wallet.module == MODULE
    text = issue([4096, 1024, 1024, 64, 2])
    got = await wallet.receive(text)
    # in 6210 - 5 x 100 = 5710; out: 4096 + 1024 + 100 x 2 = 5320, 390 below 512 + 100 lost
    assert got["state"] == "done" and got["amount_msat"] == 5120
    assert sorted(wallet.note_amounts()) == [1024, 4096] and wallet.balance_msat() == 5120
    assert await wallet.receive(text) == got and wallet.balance_msat() == 5120
    # the same notes in another wrapping (base32) are the same receive
    base32_form = "fedimint" + mintv1.base32.encode(mintv1.parse_oob_notes(text).to_bytes())
    assert await wallet.receive(base32_form) == got and len(fed.txs) == 1

    spent = await wallet.spend(2_000)  # up to 2048: a split of the 4096 first
    assert spent["amount_msat"] == 2048
    oob = mintv1.parse_oob_notes(spent["ecash"])
    assert oob.federation_prefix == CONFIG.federation_id[:8]
    assert [a for a, _, _ in oob.notes] == [2048]
    # the split: 4096 in; 2048 wanted, 512 + 1024 change, 4 x 100 fees, 112 below a note lost
    assert sorted(wallet.note_amounts()) == [512, 1024, 1024] and wallet.balance_msat() == 2560
    again = await wallet.spend(2_000, spent["operation_id"])
    assert again == spent  # the same spend, by id

    other = _wallet(tmp_path, "other", fed)  # whom we gave the notes: 2048 - 100 in, 2 out
    assert (await other.receive(spent["ecash"]))["amount_msat"] == 1536
    assert other.balance_msat() == 1536
    with pytest.raises(Rejected, match="already spent"):  # and they are no longer ours
        await wallet.receive(spent["ecash"])
    assert wallet.balance_msat() == 2560
    # each issuance: the liar's shares combined first spoil a signature, so every share is
    # checked and the note signed by the honest three; never one of the liar's
    assert fed.answered == [[0, 1, 2], [0, 1, 3]] * len(fed.txs)


async def test_notes_spent_by_someone_else_are_refused_and_nothing_is_kept(
    tmp_path: Path,
) -> None:
    fed = FakeFederation()
    text = issue([2048, 512])
    first = await _wallet(tmp_path, "a", fed).receive(text)
    assert first["amount_msat"] == 2048  # 2560 - 200 in, 2048 + 100 out, 212 lost
    late = _wallet(tmp_path, "b", fed)
    with pytest.raises(Rejected, match="already spent"):
        await late.receive(text)
    assert late.balance_msat() == 0
    assert late.db.execute("SELECT COUNT(*) FROM notes").fetchone()[0] == 0
    assert late.db.execute("SELECT state, amount_msat FROM operations").fetchall()[0][:] == (
        "rejected",
        0,
    )


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (
            str(
                mintv2.ECash(
                    CONFIG.federation_id, (mintv2.SpendableNote(10, b"\x01" * 32, b"\x02" * 48),)
                )
            ),
            "this is mintv2 e-cash; this federation's e-cash module is mint",
        ),
        (issue([1024], prefix="00" * 4), "of federation 00000000"),
        ("not e-cash", "neither"),
    ],
)
async def test_foreign_or_bad_ecash_is_refused_and_nothing_recorded(
    tmp_path: Path, text: str, why: str
) -> None:
    wallet = _wallet(tmp_path)
    with pytest.raises(EcashError, match=why):
        await wallet.receive(text)
    assert wallet.db.execute("SELECT COUNT(*) FROM operations").fetchone()[0] == 0


async def test_a_note_the_federation_did_not_sign_is_refused(tmp_path: Path) -> None:
    oob = mintv1.parse_oob_notes(issue([1024, 512]))
    amount, sig, _ = oob.notes[1]
    forged = mintv1.OOBNotes(
        (oob.notes[0], (amount, sig, PrivateKey().secret)), oob.federation_prefix
    )
    wallet = _wallet(tmp_path)
    with pytest.raises(EcashError, match=r"notes \[1\] do not carry"):
        await wallet.receive(str(forged))
    assert wallet.db.execute("SELECT COUNT(*) FROM operations").fetchone()[0] == 0


def _most(available: int, fee: Any, denominations: range) -> int:
    """The largest amount a note per binary digit can hold with its notes' fees (brute)."""
    lo = denominations[0]
    credit = available >> lo << lo
    while credit >= 1 << lo:
        ds = [d for d in denominations if credit >> d & 1]
        if sum((1 << d) + fee(d) for d in ds) <= available:
            return credit
        credit -= 1 << lo
    return 0


@pytest.mark.parametrize(
    ("base", "ppm", "denominations"),
    [(100, 0, range(9, 42)), (100, 1000, range(9, 42)), (0, 0, range(0, 42))],
)
def test_change_is_the_most_the_notes_can_hold(base: int, ppm: int, denominations: range) -> None:
    """New notes for what an operation leaves: the largest amount that fits with each new
    note's fee, never 512 msat less (the fewest notes are not always the most money: for
    268,365,356 msat they held 268,363,264, one 512 msat note less than fits)."""

    def fee(d: int) -> int:
        return base + (1 << d) * ppm // 1_000_000

    wallet: Any = type("W", (), {"mint": type("M", (), {"denominations": denominations})})()
    wallet.mint.fee = fee
    for available in (268_365_356, 1_010_000, 511, 512 + base, 999_999_999, 123_456_789_012):
        if available > 10**10 and ppm:
            continue  # the brute search is slow there
        issued = MintWallet._outputs_for(wallet, available)
        assert sum(1 << d for d in issued) == _most(available, fee, denominations), available
        assert sum((1 << d) + fee(d) for d in issued) <= available
