"""fmclient.onchain_v1's steps against fakes of the e-cash wallet, the guardians and the chain
(the real ones: tests/fedimint/test_walletv1.py): a deposit waits for the federation's blocks,
is claimed once (V1 when the federation tracks it, else the proof), resumes after a crash
between steps, is claimed again only after a passing refusal; withdrawals cost the quote, are
idempotent by id, and bad ones change nothing."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from fmclient import walletv1
from fmclient.chain import ChainOutput
from fmclient.config import ClientConfig, ModuleConfig
from fmclient.encoding import encode
from fmclient.mintv2 import EcashError
from fmclient.onchain import OnchainError
from fmclient.onchain_v1 import DEPOSIT, OnchainWalletV1
from fmclient.tx import TxRejected, to_serde
from fmclient.wallet import MintWallet
from fmclient.wallet_operations import Foreign, Rejected
from fmclient.walletv2 import PegInAddress
from gwcore.states import IllegalTransition

V = json.loads((Path(__file__).parent / "data" / "walletv1_vectors.json").read_text())
CASE = V["peg_in"][0]
MODULE = 4


class Crash(Exception):
    pass


class FakeApi:
    def __init__(self) -> None:
        self.block_count = 0
        self.utxo_confirmed = True
        self.fees: dict | None = {"fee_rate": {"sats_per_kvb": 2000}, "total_weight": 871}
        self.calls: list[tuple[str, Any]] = []

    async def current_consensus(self, method: str, params: Any = None, **_: Any) -> Any:
        self.calls.append((method, params))
        name = method.removeprefix(f"module_{MODULE}_")
        if name == "block_count":
            return self.block_count
        if name == "utxo_confirmed":
            return self.utxo_confirmed
        if name == "peg_out_fees":
            return self.fees
        if name == "await_output_outcome":
            return to_serde(
                encode(lambda w: w.framed(MODULE, bytes.fromhex(V["outcome"]["encoding"])))
            )
        raise AssertionError(method)


class FakeMint:
    """The MintWallet calls OnchainWalletV1 makes; the federation's verdict set by the test."""

    def __init__(self, db: sqlite3.Connection, api: FakeApi) -> None:
        body = bytes.fromhex(CASE["config"])
        self.config = ClientConfig(
            {0: ("ws://g", "g")}, {MODULE: ModuleConfig(MODULE, "wallet", (2, 3), body)}, {}, {}
        )
        self.api, self.db = api, db
        db.execute(
            "CREATE TABLE IF NOT EXISTS operations (id TEXT PRIMARY KEY, kind TEXT, state TEXT,"
            " txid TEXT, amount_msat INTEGER, error TEXT, created REAL, updated REAL, foreign_ TEXT)"
        )
        self.verdict: TxRejected | None = None
        self.balance_msat = 100_000_000
        self.crash_after_create = False

    transaction = MintWallet.transaction

    def choose(self, need_msat: int) -> list:
        if need_msat > self.balance_msat:
            raise EcashError(
                f"the balance {self.balance_msat} msat does not cover {need_msat} msat"
            )
        return []

    def create_operation(
        self, op_id: str, kind: str, notes: list, external: bool, foreign: Foreign, also: Any
    ) -> None:
        if foreign.net_msat > 0 and foreign.net_msat < 512:
            raise EcashError("the e-cash is worth less than the fees of reissuing it")
        record = {"inputs": [i.body.hex() for i in foreign.inputs], "keys": [k.hex() for k in foreign.keys],
                  "outputs": [o.body.hex() for o in foreign.outputs], "net_msat": foreign.net_msat}  # fmt: skip
        with self.transaction() as db:
            db.execute(
                "INSERT INTO operations VALUES (?, ?, 'created', ?, 0, NULL, 1.0, 1.0, ?)",
                (op_id, kind, "ab" * 32, json.dumps(record)),
            )
            also(db)
        if self.crash_after_create:
            raise Crash

    async def finish(self, op_id: str) -> dict:
        row = self.db.execute("SELECT * FROM operations WHERE id = ?", (op_id,)).fetchone()
        if row["state"] == "created":
            if self.verdict is not None:
                self.db.execute(
                    "UPDATE operations SET state = 'rejected', error = ? WHERE id = ?",
                    (str(self.verdict), op_id),
                )
                raise Rejected(f"rejected: {self.verdict}", self.verdict)
            net = json.loads(row["foreign_"])["net_msat"]
            self.db.execute(
                "UPDATE operations SET state = 'done', amount_msat = ? WHERE id = ?",
                (max(net, 0), op_id),
            )
            self.balance_msat += net
        return self.operation(op_id) or {}

    def operation(self, op_id: str) -> dict | None:
        row = self.db.execute("SELECT * FROM operations WHERE id = ?", (op_id,)).fetchone()
        return (
            None
            if row is None
            else {k: row[k] for k in ("id", "kind", "state", "txid", "amount_msat", "error")}
        )

    def ops(self) -> list[dict]:
        rows = self.db.execute("SELECT * FROM operations ORDER BY rowid").fetchall()
        return [{"id": r["id"], "state": r["state"]} | json.loads(r["foreign_"]) for r in rows]


class FakeChain:
    def __init__(self, value_sat: int = 150_000) -> None:
        self.outputs = [
            ChainOutput(CASE["address"], CASE["txid"], 1, value_sat, 200, CASE["block_hash"])
        ]

    async def unspent(self, addresses: list[str]) -> list[ChainOutput]:
        return [o for o in self.outputs if o.address in addresses]

    async def transaction(self, txid: str, block_hash: str) -> bytes:
        assert (txid, block_hash) == (CASE["txid"], CASE["block_hash"])
        return bytes.fromhex(CASE["transaction"])

    async def txout_proof(self, txid: str, block_hash: str) -> bytes:
        return bytes.fromhex(CASE["txout_proof_bitcoin"])

    async def tip_height(self) -> int:
        return 300

    async def close(self) -> None:
        pass


def _world(tmp_path: Path, value_sat: int = 150_000, proof_only: bool = False):  # type: ignore[no-untyped-def]
    db = sqlite3.connect(tmp_path / "w.sqlite", isolation_level=None)
    db.row_factory = sqlite3.Row
    api = FakeApi()
    mint = FakeMint(db, api)
    chain = FakeChain(value_sat)
    wallet = OnchainWalletV1(mint, chain, proof_only=proof_only)  # type: ignore[arg-type]
    secret = bytes.fromhex(CASE["tweak_secret"])
    wallet.store_address(
        PegInAddress(CASE["address"], secret, bytes.fromhex(CASE["script_pubkey"]))
    )
    return wallet, mint, api, chain


@pytest.fixture
def world(tmp_path: Path):  # type: ignore[no-untyped-def]
    return _world(tmp_path)


async def test_a_deposit_waits_for_the_federations_blocks_then_is_claimed_once(world) -> None:  # type: ignore[no-untyped-def]
    wallet, mint, api, _ = world
    api.block_count = 200  # the deposit's block (200) is not below the count yet
    [dep] = await wallet.scan()
    assert dep["state"] == "seen" and mint.ops() == []
    api.block_count = 201
    [dep] = await wallet.scan()
    assert dep == {
        "output_index": 1, "address": CASE["address"], "outpoint": f"{CASE['txid']}:1",
        "value_sat": 150_000, "fee_sat": 1000, "credit_msat": 149_000_000, "height": 200,
        "state": "claimed",
    }  # fmt: skip
    [op] = mint.ops()
    assert op["inputs"] == [CASE["input_v1"]] and op["keys"] == [CASE["tweak_secret"]]
    assert op["net_msat"] == 150_000_000 - 1_000_000 and op["outputs"] == []
    assert ("module_4_utxo_confirmed", f"{CASE['txid']}:1") in api.calls
    assert await wallet.scan() == [dep] and len(mint.ops()) == 1  # never claimed twice
    assert wallet.pending_deposits() == 0


@pytest.mark.parametrize(("tracked", "proof_only"), [(False, False), (True, True)])
async def test_the_proof_when_the_federation_does_not_track_the_output_or_asked(
    tmp_path: Path, tracked: bool, proof_only: bool
) -> None:
    wallet, mint, api, _ = _world(tmp_path, proof_only=proof_only)
    api.block_count, api.utxo_confirmed = 201, tracked
    await wallet.scan()
    assert [o["inputs"] for o in mint.ops()] == [[CASE["input_v0"]]]


async def test_a_crash_after_the_claim_is_stored_resumes_it(world) -> None:  # type: ignore[no-untyped-def]
    wallet, mint, api, chain = world
    api.block_count = 201
    mint.crash_after_create = True
    with pytest.raises(Crash):
        await wallet.scan()
    assert wallet.deposits()[0]["state"] == "claiming"
    mint.crash_after_create = False
    again = OnchainWalletV1(mint, chain)  # type: ignore[arg-type]  # the restarted process
    [dep] = await again.scan()
    assert dep["state"] == "claimed" and dep["credit_msat"] == 149_000_000
    assert [o["state"] for o in mint.ops()] == ["done"]


async def test_a_passing_refusal_is_claimed_again_a_final_one_is_not(world) -> None:  # type: ignore[no-untyped-def]
    wallet, mint, api, _ = world
    api.block_count = 201
    mint.verdict = TxRejected(4, "", MODULE, 0)  # UnknownPegInProofBlock
    with pytest.raises(OnchainError, match="not synced the deposit's block yet"):
        await wallet.scan()
    assert wallet.deposits()[0]["state"] == "seen"
    mint.verdict = TxRejected(4, "", MODULE, 2)  # PegInAlreadyClaimed
    with pytest.raises(OnchainError, match="already claimed"):
        await wallet.scan()
    assert wallet.deposits()[0]["state"] == "rejected"
    assert await wallet.scan() == wallet.deposits()  # given up: no third claim
    assert [o["id"].rsplit("-", 1)[1] for o in mint.ops()] == ["0", "1"]


async def test_a_deposit_worth_no_more_than_the_fee_is_left(tmp_path: Path) -> None:
    wallet, mint, api, _ = _world(tmp_path, value_sat=1000)
    api.block_count = 201
    [dep] = await wallet.scan()
    assert dep["state"] == "too_small" and mint.ops() == []


def test_the_deposit_table_refuses_illegal_moves() -> None:
    with pytest.raises(IllegalTransition):
        DEPOSIT.check("claimed", "claiming")
    with pytest.raises(IllegalTransition):
        DEPOSIT.check("seen", "claimed")


async def test_a_withdrawal_costs_the_quote_and_is_idempotent_by_id(world) -> None:  # type: ignore[no-untyped-def]
    wallet, mint, _, _ = world
    to = V["peg_outs"]["p2wpkh"]["address"]
    quote = await wallet.quote(to, 25_000)
    assert (quote.fee_sat, quote.federation_fee_msat) == (218 * 2, 0)
    assert quote.total_msat == (25_000 + 436) * 1000
    done = await wallet.withdraw(quote, "w1")
    assert done["state"] == "done" and done["value_sat"] == 25_000 and done["fee_sat"] == 436
    assert await wallet.withdraw(quote, "w1") == done and len(mint.ops()) == 1
    [op] = mint.ops()
    fees = walletv1.PegOutFees(2000, 871)
    assert op["outputs"] == [walletv1.peg_out_output(to, "regtest", 25_000, fees).hex()]
    assert op["net_msat"] == -quote.total_msat
    assert await wallet.withdrawal_txid("w1") == V["outcome"]["btc_txid"]
    assert wallet.withdrawal("w1")["btc_txid"] == V["outcome"]["btc_txid"]  # type: ignore[index]
    assert [w["state"] for w in wallet.withdrawals(0, None, 10)] == ["done"]


async def test_a_withdrawal_asked_again_by_id_is_finished_never_quoted_again(world) -> None:  # type: ignore[no-untyped-def]
    wallet, mint, api, _ = world
    assert await wallet.finish_withdrawal("w3") is None and mint.ops() == []
    quote = await wallet.quote(V["peg_outs"]["p2wpkh"]["address"], 25_000)
    mint.crash_after_create = True  # stored, then the process died before submitting it
    with pytest.raises(Crash):
        await wallet.withdraw(quote, "w3")
    mint.crash_after_create = False
    api.fees, api.calls = None, []  # the federation could quote nothing now
    done = await wallet.finish_withdrawal("w3")
    assert done is not None and (done["state"], done["value_sat"]) == ("done", 25_000)
    assert api.calls == [] and len(mint.ops()) == 1
    assert mint.balance_msat == 100_000_000 - quote.total_msat  # paid once


async def test_a_stale_quote_is_refused_and_says_so(world) -> None:  # type: ignore[no-untyped-def]
    wallet, mint, _, _ = world
    quote = await wallet.quote(V["peg_outs"]["p2tr"]["address"], 25_000)
    mint.verdict = TxRejected(5, "", MODULE, 5)  # TxWeightIncorrect
    with pytest.raises(OnchainError, match="ask for a new quote"):
        await wallet.withdraw(quote, "w2")
    assert wallet.withdrawal("w2")["state"] == "rejected"  # type: ignore[index]
    assert await wallet.withdrawal_txid("w2") is None


@pytest.mark.parametrize(
    ("to", "value", "why"),
    [
        ("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", 10_000, "bad address"),
        ("not an address", 10_000, "bad address"),
        (V["peg_outs"]["p2pkh"]["address"], 545, "below the dust limit of 546 sat"),
        (V["peg_outs"]["p2wpkh"]["address"], 293, "below the dust limit of 294 sat"),
        (V["peg_outs"]["p2wpkh"]["address"], 0, "positive"),
        (V["peg_outs"]["p2wpkh"]["address"], 10**9, "balance"),
    ],
)
async def test_bad_withdrawals_change_nothing(world, to: str, value: int, why: str) -> None:  # type: ignore[no-untyped-def]
    wallet, mint, _, _ = world
    with pytest.raises(OnchainError, match=why):
        await wallet.withdraw(await wallet.quote(to, value), "bad")
    assert mint.ops() == [] and wallet.withdrawal("bad") is None


async def test_no_quote_when_the_federation_cannot_pay_out(world) -> None:  # type: ignore[no-untyped-def]
    wallet, _, api, _ = world
    api.fees = None
    with pytest.raises(OnchainError, match="too little on chain"):
        await wallet.quote(V["peg_outs"]["p2sh"]["address"], 10_000)
